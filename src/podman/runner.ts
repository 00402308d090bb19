import { execa } from 'execa';
import { PodstackError } from '../errors.js';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
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
  async run(
    args: readonly string[],
    options: { input?: string; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    const result = await execa('podman', [...this.globalArgs, ...args], {
      env: this.env,
      reject: false,
      stripFinalNewline: true,
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
    });
    if (result.failed && result.exitCode === undefined) {
      const missing = (result as { code?: string }).code === 'ENOENT';
      throw new PodstackError(
        missing ? 'podman is not installed' : `podman ${args[0]} failed: ${result.message}`,
        {
          hint: missing ? 'Run `podstack up` as root to install it, or `apt-get install podman`.' : undefined,
        } as { hint?: string },
      );
    }
    return {
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? ''),
      exitCode: result.exitCode ?? 1,
    };
  }

  /** Runs podman and returns stdout, throwing a PodstackError that quotes podman's error on failure. */
  async ok(args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<string> {
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
