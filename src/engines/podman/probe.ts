import { get } from 'node:http';
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

/**
 * An HTTP GET with the probe's headers. node:http, not fetch: fetch may not set Host, and an
 * application that checks it (Django's ALLOWED_HOSTS) is probed with the name it answers to.
 */
function http(
  host: string,
  port: number,
  path: string,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = get({ host, port, path, headers, timeout: timeoutMs }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve({ ok: status >= 200 && status < 400, detail: `GET ${path}: HTTP ${status}` });
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.once('error', (e) =>
      resolve({ ok: false, detail: `GET ${path}: ${(e as NodeJS.ErrnoException).code ?? e.message}` }),
    );
  });
}

/** What an exec probe's command did: its exit code and what it printed. */
export interface ExecResult {
  readonly exitCode: number;
  readonly output: string;
}

export async function probe(
  p: V1Probe,
  host: string,
  exec: (command: readonly string[]) => Promise<ExecResult>,
): Promise<ProbeResult> {
  const timeoutMs = (p.timeoutSeconds ?? 2) * 1000;
  if (p.tcpSocket) return tcp(host, Number(p.tcpSocket.port), timeoutMs);
  if (p.httpGet) {
    const headers = Object.fromEntries((p.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]));
    return http(host, Number(p.httpGet.port), p.httpGet.path ?? '/', headers, timeoutMs);
  }
  if (p.exec?.command) {
    const r = await exec(p.exec.command);
    // A check that says why it failed (podstack-ovs-ports names the ports) is worth its last line.
    const said = r.exitCode === 0 ? '' : r.output.trim().split('\n').pop()?.slice(0, 300);
    return {
      ok: r.exitCode === 0,
      // An inline script (python3 -c ...) is named, not printed.
      detail: `exec ${p.exec.command.map((a) => (a.includes('\n') ? '<script>' : a)).join(' ')}: exit ${r.exitCode}${said ? `: ${said}` : ''}`,
    };
  }
  return { ok: true, detail: 'no probe' };
}
