import { PassThrough, type Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Exec, type V1Status } from '@kubernetes/client-node';
import type { Cluster } from './client.js';

export interface PodExecStreams {
  /** Where stdout goes instead of the result (a file: a tar of a volume); waited for to the end. */
  readonly stdout?: Writable;
  /**
   * The command's stdin. It is never ended: kube-apiserver 1.20 speaks the v4 streaming protocol,
   * where the client's only way to end stdin closes the whole exec (and loses its exit code), so
   * a command that reads stdin must know where it ends (`head -c BYTES`).
   */
  readonly stdin?: Readable;
}

/** Runs a command in a pod's container through the API server (kubectl exec): exit code and output. */
export async function podExec(
  cluster: Cluster,
  pod: string,
  container: string,
  command: readonly string[],
  timeoutMs = 20_000,
  io: PodExecStreams = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        add(chunk.toString('utf8'));
        done();
      },
    });
  const out =
    io.stdout ??
    sink((s) => {
      stdout += s;
    });
  const input = io.stdin ? new PassThrough() : null;
  if (io.stdin && input) io.stdin.pipe(input, { end: false });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`exec in ${pod}/${container} took over ${timeoutMs / 1000}s`)),
      timeoutMs,
    );
  });
  try {
    const ran = new Promise<V1Status>((resolve, reject) => {
      new Exec(cluster.config)
        .exec(
          cluster.namespace,
          pod,
          container,
          [...command],
          out,
          sink((s) => {
            stderr += s;
          }),
          input,
          false,
          resolve,
        )
        .catch(reject);
    });
    const status = await Promise.race([ran, deadline]);
    // The status can come before the last of stdout: a file is whole once the socket closed it.
    if (io.stdout) await Promise.race([finished(io.stdout), deadline]);
    const code =
      status.status === 'Success'
        ? 0
        : Number(status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message ?? 1);
    return { exitCode: code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    io.stdin?.unpipe(input ?? undefined);
    io.stdin?.destroy();
    input?.destroy();
  }
}
