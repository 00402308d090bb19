import { exec } from '../_exec.js';
import { PodstackError } from '../errors.js';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface RunOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  /** stdout and stderr merged in the order they were written, as stdout (for logs people read). */
  readonly merge?: boolean;
}

/**
 * Runs podman with the environment and global flags this host needs (see
 * host.ts). Every podman call of podstack goes through one of these, so the
 * host's quirks are handled in exactly one place.
 */
export class Podman {
  constructor(
    readonly env: Readonly<Record<string, string>> = {},
    readonly globalArgs: readonly string[] = [],
  ) {}

  /** Runs podman; never throws on a non-zero exit (callers decide what failure means). */
  async run(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const r = await exec('podman', [...this.globalArgs, ...args], {
      env: this.env,
      ...(options.input === undefined ? {} : { input: options.input }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    if (r.notFound) {
      throw new PodstackError('podman is not installed', {
        hint: 'Run `podstack up` as root to install it, or `apt-get install podman`.',
      });
    }
    return {
      stdout: options.merge ? r.output : r.stdout,
      stderr: options.merge ? '' : r.stderr,
      exitCode: r.exitCode ?? 1,
    };
  }

  /** Runs podman and returns stdout, throwing a PodstackError that quotes podman's error on failure. */
  async ok(args: readonly string[], options: RunOptions = {}): Promise<string> {
    const r = await this.run(args, options);
    if (r.exitCode !== 0) {
      const detail = (r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n');
      throw new PodstackError(`podman ${args.slice(0, 2).join(' ')} failed (exit ${r.exitCode}): ${detail}`);
    }
    return r.stdout;
  }

  async json<T>(args: readonly string[]): Promise<T> {
    const out = await this.ok(args);
    return (out.trim() === '' ? [] : JSON.parse(out)) as T;
  }
}
