import { spawn } from 'node:child_process';
import { pathWithSbin } from './_exec.js';
import { HostError } from './errors.js';

/**
 * Takes flock(1)'s lock on `path` in a child process that keeps it until `release`: Node has no
 * flock of its own, and the child's lock dies with this process (its stdin closes, `cat` ends,
 * the kernel drops the lock), so a podstack killed in the middle never leaves a host locked.
 * `onWait` is called once when another holder makes this wait.
 */
export async function hostLock(
  path: string,
  o: { readonly onWait?: () => void; readonly timeoutSeconds?: number } = {},
): Promise<() => Promise<void>> {
  const timeout = o.timeoutSeconds ?? 3600;
  const child = spawn('flock', ['-w', String(timeout), path, 'sh', '-c', 'echo held; exec cat'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: pathWithSbin() },
  });
  const waiting = setTimeout(() => o.onWait?.(), 500);
  try {
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.stdout.once('data', () => resolve());
      child.once('error', (e) => reject(new HostError(`cannot take the lock ${path}: ${e.message}`)));
      child.once('exit', (code) =>
        reject(
          new HostError(
            code === 1
              ? `another podstack held ${path} for more than ${timeout} s`
              : `cannot take the lock ${path}: ${stderr.trim() || `flock exited with ${code}`}`,
            { hint: `See which podstack process holds it: \`fuser -v ${path}\`.` },
          ),
        ),
      );
    });
  } finally {
    clearTimeout(waiting);
  }
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.stdin.end();
    });
}
