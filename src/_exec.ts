import type { Writable } from 'node:stream';
import spawn, { SubprocessError } from 'nano-spawn';

/**
 * Runs a program and returns its result; a non-zero exit is a result, not an
 * exception (callers decide what failure means). nano-spawn rather than execa:
 * the same authors, and it loads in no time, which matters for a no-op `up`.
 */
export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr interleaved in the order they were written. */
  readonly output: string;
  /** undefined when the program could not be started or was killed. */
  readonly exitCode: number | undefined;
  /** Why it did not run to an exit code (not found, killed by a signal, timed out). */
  readonly failure?: string;
  readonly notFound: boolean;
}

export interface ExecOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Where output goes instead of being captured: 'inherit', or an open stream (a log file). */
  readonly output?: 'inherit' | Writable;
}

/**
 * podstack drives system tools that Debian keeps in the sbin folders (debootstrap, iptables, which
 * Podman's network plugins run). A root shell reached through `env -i`, cron or some sudo setups
 * has none of them on its PATH, and then every pod failed to start: they are added where missing.
 */
export function pathWithSbin(path = process.env.PATH ?? '/usr/bin:/bin'): string {
  const have = path.split(':').filter(Boolean);
  const missing = ['/usr/local/sbin', '/usr/sbin', '/sbin'].filter((p) => !have.includes(p));
  return [...have, ...missing].join(':');
}
const PATH = pathWithSbin();

export async function exec(file: string, args: readonly string[], o: ExecOptions = {}): Promise<ExecResult> {
  const out = o.output ?? 'pipe';
  try {
    const r = await spawn(file, [...args], {
      env: { PATH, ...o.env },
      ...(o.cwd ? { cwd: o.cwd } : {}),
      ...(o.timeoutMs ? { timeout: o.timeoutMs } : {}),
      stdin: o.input === undefined ? (out === 'inherit' ? 'inherit' : 'ignore') : { string: o.input },
      stdout: out,
      stderr: out,
    });
    return { stdout: r.stdout, stderr: r.stderr, output: r.output, exitCode: 0, notFound: false };
  } catch (err) {
    if (!(err instanceof SubprocessError)) throw err;
    const notFound = (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    return {
      stdout: err.stdout,
      stderr: err.stderr,
      output: err.output,
      exitCode: err.exitCode,
      notFound,
      ...(err.exitCode === undefined
        ? { failure: notFound ? `${file}: command not found` : err.message }
        : {}),
    };
  }
}
