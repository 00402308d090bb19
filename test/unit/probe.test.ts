import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { probe } from '../../src/engines/podman/probe.js';

/** Readiness probes of the Podman engine against a real HTTP server on loopback. */
describe('podman readiness probes', () => {
  let server: Server;
  let port: number;
  const noExec = async () => ({ exitCode: 1, output: '' });
  before(async () => {
    // Answers as Django does with ALLOWED_HOSTS: 400 to a Host it does not know.
    server = createServer((req, res) => {
      res.statusCode = req.headers.host === 'localhost' ? 200 : 400;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("httpGet sends the probe's headers (Host), as the kubelet does", async () => {
    const withHost = await probe(
      { httpGet: { path: '/auth/login/', port, httpHeaders: [{ name: 'Host', value: 'localhost' }] } },
      '127.0.0.1',
      noExec,
    );
    assert.deepEqual(withHost, { ok: true, detail: 'GET /auth/login/: HTTP 200' });
    const without = await probe({ httpGet: { path: '/auth/login/', port } }, '127.0.0.1', noExec);
    assert.deepEqual(without, { ok: false, detail: 'GET /auth/login/: HTTP 400' });
  });

  it('a closed port is not ready, and says why', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const r = await probe({ httpGet: { path: '/', port: closed } }, '127.0.0.1', noExec);
    assert.deepEqual(r, { ok: false, detail: 'GET /: ECONNREFUSED' });
  });

  it('an exec probe that fails says the last line its command printed (which ports are down)', async () => {
    const down = await probe({ exec: { command: ['podstack-ovs-ports'] } }, '127.0.0.1', async () => ({
      exitCode: 1,
      output: 'checking\nguest port(s) administratively down: tap1 (port p1)\n',
    }));
    assert.deepEqual(down, {
      ok: false,
      detail: 'exec podstack-ovs-ports: exit 1: guest port(s) administratively down: tap1 (port p1)',
    });
    const fine = await probe({ exec: { command: ['true'] } }, '127.0.0.1', async () => ({
      exitCode: 0,
      output: 'all well',
    }));
    assert.deepEqual(fine, { ok: true, detail: 'exec true: exit 0' });
  });
});
