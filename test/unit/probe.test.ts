import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import { CONNECTED_PROBE } from '../../src/catalog/_pod.js';
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

/**
 * The queue workers' readiness script (CONNECTED_PROBE), run by python3 against real sockets on
 * loopback: a process holding a connection to the port makes it pass, and nothing else does. As
 * in a container, root without CAP_SYS_PTRACE cannot read another user's sockets: the script
 * asks again as that user.
 */
describe("the queue workers' readiness script", { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  let server: NetServer;
  let port: number;
  const holders: ChildProcess[] = [];
  // Debian's, as in the images: one another user can run (not a python3 under /root).
  const PYTHON = '/usr/bin/python3';
  before(async () => {
    server = createNetServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const h of holders) h.kill('SIGKILL');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A python3 process, as `user` (setpriv), connected to the port until killed. */
  const holder = async (user?: number) => {
    const hold = `import socket, sys, time\ns = socket.create_connection(('127.0.0.1', ${port}))\nprint('held', flush=True)\ntime.sleep(600)`;
    const argv =
      user === undefined
        ? [PYTHON, '-c', hold]
        : ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--clear-groups', PYTHON, '-c', hold];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    holders.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the holder exited ${code}`)));
    });
    return child;
  };
  /** The script's exit code, run as root, or as root without CAP_SYS_PTRACE (a container's root). */
  const check = async (p: number, withoutPtrace = false) => {
    const argv = withoutPtrace
      ? [
          'setpriv',
          '--bounding-set=-sys_ptrace',
          '--inh-caps=-sys_ptrace',
          PYTHON,
          '-c',
          CONNECTED_PROBE,
          String(p),
        ]
      : [PYTHON, '-c', CONNECTED_PROBE, String(p)];
    return (await exec(argv[0]!, argv.slice(1))).exitCode;
  };

  it('passes while a process holds a connection to the port, and fails without one', async () => {
    assert.equal(await check(port), 1, 'no connection yet, and it passed');
    const h = await holder();
    assert.equal(await check(port), 0);
    // Another port: the listening side (this process) and its accepted socket do not count.
    assert.equal(await check(port + 1 === 65536 ? port - 1 : port + 1), 1);
    h.kill('SIGKILL');
    await new Promise((r) => h.once('exit', r));
    assert.equal(await check(port), 1, 'the holder is gone, and it passed');
  });

  it("finds a connection of another user's process as root without CAP_SYS_PTRACE", async () => {
    const h = await holder(65534);
    assert.equal(await check(port, true), 0);
    h.kill('SIGKILL');
    await new Promise((r) => h.once('exit', r));
    assert.equal(await check(port, true), 1);
  });
});
