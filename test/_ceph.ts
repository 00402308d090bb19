import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { exec } from '../src/_exec.js';
import { cephxKey } from '../src/config/ceph.js';
import type { ExecResult } from '../src/engines/types.js';
import { until } from './_cloud-checks.js';

/**
 * Ceph's checks, shared by the Podman and Kubernetes files: the cluster as Ceph's own CLI sees
 * it, no key printed, and an RBD image that reads back after its daemons are crashed (SIGKILL
 * from the host, as the OOM killer sends it) and after the monitor's pod is made again. The
 * commands run in the monitor's container (`inMon`), as the monitor itself (mon.) or as a
 * client the test makes.
 */

export type InMon = (argv: readonly string[]) => Promise<ExecResult>;

/**
 * What turns block storage on in a test cloud, as lines under each service (`servicesYaml`'s
 * extra): Ceph with a small OSD and Cinder. Both clouds turn it on near their end, as a user
 * turns it on in a running cloud, so every earlier check runs without Ceph's cost.
 */
export const BLOCK_STORAGE: Readonly<Record<string, string>> = {
  ceph: '    enabled: true\n    osdSize: 4Gi',
  cinder: '    enabled: true',
};

const AS_MON = ['--connect-timeout', '30', '-n', 'mon.', '-k', '/var/lib/ceph/mon/ceph-a/keyring'];
const RBD = 'rbd --id e2e --keyring /tmp/e2e.keyring';

async function ceph(inMon: InMon, ...args: string[]): Promise<string> {
  const r = await inMon(['ceph', ...AS_MON, ...args]);
  assert.equal(r.exitCode, 0, `ceph ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function shell(inMon: InMon, script: string): Promise<string> {
  const r = await inMon(['sh', '-c', script]);
  assert.equal(r.exitCode, 0, `${script}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Why the cluster is not HEALTH_OK, or undefined when it is. */
export async function unhealthy(inMon: InMon): Promise<string | undefined> {
  const r = await inMon(['ceph', ...AS_MON, 'health']);
  return r.stdout.trim() === 'HEALTH_OK' ? undefined : `${r.stdout}${r.stderr}`.trim().slice(-300);
}

/** The one process on this host with that command name (the test runs one Ceph at a time). */
async function daemonPid(comm: string): Promise<number> {
  const pids = (await exec('pgrep', ['-x', comm])).stdout.split('\n').filter(Boolean);
  assert.equal(pids.length, 1, `expected one ${comm} on this host, found ${pids.length}`);
  return Number(pids[0]);
}

/** The daemons' resident memory (VmRSS), for the test log. */
export async function residentMemory(): Promise<string> {
  const rss: string[] = [];
  for (const comm of ['ceph-mon', 'ceph-mgr', 'ceph-osd']) {
    const status = await readFile(`/proc/${await daemonPid(comm)}/status`, 'utf8');
    rss.push(`${comm} ${Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]) / 1024)} MiB`);
  }
  return rss.join(', ');
}

/**
 * HEALTH_OK, one OSD up and in, the volumes pool at one replica tagged for RBD, and the monitor
 * advertising `address` (the cloud's internal address) on both protocols.
 */
export async function checkCluster(inMon: InMon, address: string): Promise<void> {
  await until('HEALTH_OK', 60, 1000, () => unhealthy(inMon));
  const status = JSON.parse(await ceph(inMon, 'status', '-f', 'json')) as {
    osdmap: { num_osds: number; num_up_osds: number; num_in_osds: number };
  };
  assert.deepEqual([status.osdmap.num_osds, status.osdmap.num_up_osds, status.osdmap.num_in_osds], [1, 1, 1]);
  assert.equal((await ceph(inMon, 'osd', 'pool', 'get', 'volumes', 'size')).trim(), 'size: 1');
  assert.match(await ceph(inMon, 'osd', 'pool', 'application', 'get', 'volumes'), /"rbd"/);
  const monmap = JSON.parse(await ceph(inMon, 'mon', 'dump', '-f', 'json')) as {
    mons: { name: string; public_addrs: { addrvec: { type: string; addr: string }[] } }[];
  };
  assert.deepEqual(
    monmap.mons.map((m) => [m.name, m.public_addrs.addrvec.map((a) => `${a.type}:${a.addr}`)]),
    [['a', [`v2:${address}:3300`, `v1:${address}:6789`]]],
  );
  console.log(`    resident memory, idle: ${await residentMemory()}`);
}

/** No key derived from secrets.yaml is in `printed` (podstack's output, its plan, the daemons' logs). */
export function checkNoKeyIn(secrets: Readonly<Record<string, string>>, printed: string): void {
  const keys = Object.entries(secrets)
    .filter(([name]) => name.startsWith('ceph_') && name.endsWith('_key'))
    .map(([, v]) => cephxKey(v));
  assert.ok(keys.length >= 5, `${keys.length} keys`);
  for (const k of keys) assert.ok(!printed.includes(k), 'a Ceph key was printed');
}

/**
 * An 8 MiB RBD image, written through the OSD as a client of the volumes pool (as Cinder will
 * be), reads back the same after SIGKILL of the OSD, then of the monitor, and after
 * `remakeMonitor` makes the monitor's pod again (which must keep its address and its store).
 */
export async function checkImageSurvives(inMon: InMon, remakeMonitor: () => Promise<void>): Promise<void> {
  const client = async () =>
    ceph(
      inMon,
      'auth',
      'get-or-create',
      'client.e2e',
      'mon',
      'profile rbd',
      'osd',
      'profile rbd pool=volumes',
      '-o',
      '/tmp/e2e.keyring',
    );
  await client();
  const sum = (
    await shell(
      inMon,
      `head -c 8388608 /dev/urandom > /tmp/data && ${RBD} import /tmp/data volumes/e2e >/dev/null 2>&1 && md5sum < /tmp/data`,
    )
  ).trim();
  // The key file again first: a container the kubelet restarts has a new /tmp.
  const readBack = async () => {
    await client();
    const out = await shell(
      inMon,
      `rm -f /tmp/out && ${RBD} export volumes/e2e /tmp/out >/dev/null 2>&1 && md5sum < /tmp/out`,
    );
    return out.trim();
  };
  assert.equal(await readBack(), sum);
  for (const comm of ['ceph-osd', 'ceph-mon']) {
    const killed = Date.now();
    process.kill(await daemonPid(comm), 'SIGKILL');
    await until(`HEALTH_OK after SIGKILL of ${comm}`, 180, 1000, () => unhealthy(inMon));
    assert.equal(await readBack(), sum, `the image after SIGKILL of ${comm}`);
    console.log(`    ${comm} back and healthy ${((Date.now() - killed) / 1000).toFixed(1)}s after SIGKILL`);
  }
  const remade = Date.now();
  await remakeMonitor();
  await until('HEALTH_OK with a new monitor pod', 180, 1000, () => unhealthy(inMon));
  assert.equal(await readBack(), sum, 'the image after a new monitor pod');
  console.log(
    `    new monitor pod healthy and the image read back ${((Date.now() - remade) / 1000).toFixed(1)}s after`,
  );
  console.log(`    resident memory, after the image was written and read 4 times: ${await residentMemory()}`);
}
