import { connect } from 'node:net';
import type { V1Probe } from '@kubernetes/client-node';

/**
 * Readiness probes run from the host against the pod's address, as the
 * kubelet runs them, because Podman 4.3 has no readiness probes of its own.
 */
export interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

function tcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: ProbeResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, detail: `tcp ${port}: timed out` }));
    socket.once('connect', () => done({ ok: true, detail: `tcp ${port}: open` }));
    socket.once('error', (e) =>
      done({ ok: false, detail: `tcp ${port}: ${(e as NodeJS.ErrnoException).code}` }),
    );
  });
}

async function http(host: string, port: number, path: string, timeoutMs: number): Promise<ProbeResult> {
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.body?.cancel();
    const ok = res.status >= 200 && res.status < 400;
    return { ok, detail: `GET ${path}: HTTP ${res.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    return { ok: false, detail: `GET ${path}: ${cause}` };
  }
}

export async function probe(
  p: V1Probe,
  host: string,
  exec: (command: readonly string[]) => Promise<number>,
): Promise<ProbeResult> {
  const timeoutMs = (p.timeoutSeconds ?? 2) * 1000;
  if (p.tcpSocket) return tcp(host, Number(p.tcpSocket.port), timeoutMs);
  if (p.httpGet) return http(host, Number(p.httpGet.port), p.httpGet.path ?? '/', timeoutMs);
  if (p.exec?.command) {
    const code = await exec(p.exec.command);
    return { ok: code === 0, detail: `exec ${p.exec.command.join(' ')}: exit ${code}` };
  }
  return { ok: true, detail: 'no probe' };
}
