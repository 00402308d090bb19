import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import { catalog } from '../../src/catalog/index.js';
import { cephxKey } from '../../src/config/ceph.js';
import { cloudSubnet, gatewayOf } from '../../src/engines/podman/network.js';
import type { ProgressEvent } from '../../src/events.js';
import { openProject } from '../../src/lifecycle/project.js';
import { up } from '../../src/lifecycle/up.js';
import { until } from '../_cloud-checks.js';

/**
 * Ceph on Podman, for real, in a cloud of its own with nothing else in it: the monitor, the
 * manager and the OSD (BlueStore in a file on a volume) from Debian's packages, checked with
 * Ceph's own CLI, an RBD image written and read back through them, and crashed on purpose.
 */
const CLOUD = 'podstack-ceph-e2e';
const root = new URL('../..', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const tsxLoader = import.meta.resolve('tsx');
const MON = `${CLOUD}-ceph-mon-ceph-mon`;

let dir: string;
let file: string;
const events: ProgressEvent[] = [];
const report = (e: ProgressEvent) => {
  events.push(e);
  if (e.type !== 'unit' || e.state !== 'unchanged') process.stderr.write(`    ${JSON.stringify(e)}\n`);
};

const podstack = (...args: string[]) =>
  exec(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), '-f', file, ...args], {
    cwd: dir,
    env: { NODE_OPTIONS: '' },
  });

/** Ceph's CLI in the monitor's container, as the monitor itself (mon.: every monitor command). */
async function ceph(...args: string[]): Promise<string> {
  const r = await exec('podman', [
    'exec',
    MON,
    'ceph',
    '--connect-timeout',
    '30',
    '-n',
    'mon.',
    '-k',
    '/var/lib/ceph/mon/ceph-a/keyring',
    ...args,
  ]);
  assert.equal(r.exitCode, 0, `ceph ${args.join(' ')}:\n${r.output}`);
  return r.stdout;
}

/** A shell in the monitor's container, with the test client's key (made by the test). */
async function inMon(script: string): Promise<string> {
  const r = await exec('podman', ['exec', MON, 'sh', '-c', script]);
  assert.equal(r.exitCode, 0, `${script}:\n${r.output}`);
  return r.stdout;
}
const RBD = 'rbd --id e2e --keyring /tmp/e2e.keyring';

async function healthy(): Promise<string | undefined> {
  const r = await exec('podman', [
    'exec',
    MON,
    'ceph',
    '--connect-timeout',
    '10',
    '-n',
    'mon.',
    '-k',
    '/var/lib/ceph/mon/ceph-a/keyring',
    'health',
  ]);
  return r.stdout.trim() === 'HEALTH_OK' ? undefined : r.output.trim().slice(-300);
}

/** A Ceph daemon's pid on the host: the child of its container's tini. */
async function daemonPid(unit: string, comm: string): Promise<number> {
  const inspect = await exec('podman', ['inspect', '--format', '{{.State.Pid}}', `${CLOUD}-${unit}-${unit}`]);
  const pid = inspect.stdout.trim();
  const child = (await exec('pgrep', ['-P', pid, '-x', comm])).stdout.trim();
  assert.match(child, /^\d+$/, `no ${comm} under ${pid}`);
  return Number(child);
}

/** The daemons' resident memory (VmRSS), for the test log. */
async function residentMemory(): Promise<string> {
  const rss: string[] = [];
  for (const d of ['mon', 'mgr', 'osd']) {
    const status = await readFile(`/proc/${await daemonPid(`ceph-${d}`, `ceph-${d}`)}/status`, 'utf8');
    rss.push(`ceph-${d} ${Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]) / 1024)} MiB`);
  }
  return rss.join(', ');
}

/** SIGKILL from the host, as the OOM killer sends it. */
async function killDaemon(unit: string, comm: string): Promise<void> {
  process.kill(await daemonPid(unit, comm), 'SIGKILL');
}

/** Container name -> ID of every container of the test cloud. */
async function containers(): Promise<Record<string, string>> {
  const r = await exec('podman', [
    'ps',
    '-a',
    '--format',
    '{{.Names}} {{.ID}}',
    '--filter',
    `label=app.kubernetes.io/instance=${CLOUD}`,
  ]);
  return Object.fromEntries(
    r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );
}

describe('ceph on podman, end to end', { skip: isRoot ? false : 'needs root (rootful Podman)' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podstack-ceph-e2e-'));
    file = join(dir, 'cloud.yaml');
    const off = catalog.filter((s) => s.name !== 'ceph').map((s) => `  ${s.name}: {enabled: false}`);
    await writeFile(
      file,
      `name: ${CLOUD}\ndataDir: ${join(dir, 'data')}\nservices:\n  ceph: {enabled: true, osdSize: 4Gi}\n${off.join('\n')}\n`,
    );
    await podstack('down', '--purge');
  });

  after(async () => {
    if (process.env.PODSTACK_E2E_KEEP) return;
    const r = await podstack('down', '--purge');
    assert.equal(r.exitCode, 0, r.output);
    const left = await exec('podman', [
      'volume',
      'ls',
      '-q',
      '--filter',
      `label=app.kubernetes.io/instance=${CLOUD}`,
    ]);
    assert.equal(left.stdout.trim(), '', 'down --purge left volumes');
    await rm(dir, { recursive: true, force: true });
  });

  it('up brings up Ceph healthy: one OSD up and in, the volumes pool at one replica for RBD, the monitor on the internal address', async () => {
    const start = Date.now();
    await up({ file, report, installHostPackages: false });
    console.log(`    up (ceph alone): ${((Date.now() - start) / 1000).toFixed(1)}s`);
    const status = JSON.parse(await ceph('status', '-f', 'json')) as {
      health: { status: string };
      osdmap: { num_osds: number; num_up_osds: number; num_in_osds: number };
    };
    assert.equal(status.health.status, 'HEALTH_OK', await ceph('health', 'detail'));
    assert.deepEqual(
      [status.osdmap.num_osds, status.osdmap.num_up_osds, status.osdmap.num_in_osds],
      [1, 1, 1],
    );
    assert.equal((await ceph('osd', 'pool', 'get', 'volumes', 'size')).trim(), 'size: 1');
    assert.match(await ceph('osd', 'pool', 'application', 'get', 'volumes'), /"rbd"/);
    const project = await openProject({ file });
    // The cloud's internal address (on Podman its network's gateway), where its ports are published.
    const address = gatewayOf(cloudSubnet(CLOUD, project.spec.network.subnet));
    const monmap = JSON.parse(await ceph('mon', 'dump', '-f', 'json')) as {
      mons: { name: string; public_addrs: { addrvec: { type: string; addr: string }[] } }[];
    };
    assert.deepEqual(
      monmap.mons.map((m) => [m.name, m.public_addrs.addrvec.map((a) => `${a.type}:${a.addr}`)]),
      [['a', [`v2:${address}:3300`, `v1:${address}:6789`]]],
    );
    console.log(`    resident memory, idle: ${await residentMemory()}`);
  });

  it('no Ceph key is in what podstack printed, in its plan, or in a daemon log', async () => {
    const { secrets } = await openProject({ file });
    const keys = Object.entries(secrets)
      .filter(([name]) => name.startsWith('ceph_') && name.endsWith('_key'))
      .map(([, v]) => cephxKey(v));
    assert.equal(keys.length, 5);
    const plan = await podstack('plan', '-o', 'yaml');
    const logs = await Promise.all(
      ['ceph-mon', 'ceph-mgr', 'ceph-osd'].map((u) => exec('podman', ['logs', `${CLOUD}-${u}-${u}`])),
    );
    const printed = [JSON.stringify(events), plan.output, ...logs.map((l) => l.output)].join('\n');
    for (const k of keys) assert.ok(!printed.includes(k), 'a Ceph key was printed');
  });

  it('an RBD image reads back after SIGKILL of the OSD and the monitor, and after the monitor is made again at its address', async () => {
    // A client of the volumes pool, as Cinder will be: its key goes to a file, never to output.
    await ceph(
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
    const sum = (
      await inMon(
        `head -c 8388608 /dev/urandom > /tmp/data && ${RBD} import /tmp/data volumes/e2e >/dev/null 2>&1 && md5sum < /tmp/data`,
      )
    ).trim();
    const readBack = async () => (await inMon(`${RBD} export volumes/e2e - 2>/dev/null | md5sum`)).trim();
    assert.equal(await readBack(), sum);

    for (const [unit, comm] of [
      ['ceph-osd', 'ceph-osd'],
      ['ceph-mon', 'ceph-mon'],
    ] as const) {
      const killed = Date.now();
      await killDaemon(unit, comm);
      await until(`HEALTH_OK after SIGKILL of ${comm}`, 120, 1000, healthy);
      assert.equal(await readBack(), sum, `the image after SIGKILL of ${comm}`);
      console.log(`    ${comm} back and healthy ${((Date.now() - killed) / 1000).toFixed(1)}s after SIGKILL`);
    }

    // A new monitor pod, as after a host reboot: the same address, the same store.
    const rmPod = await exec('podman', ['pod', 'rm', '-f', `${CLOUD}-ceph-mon`]);
    assert.equal(rmPod.exitCode, 0, rmPod.output);
    const r = await up({ file, report, installHostPackages: false });
    assert.deepEqual(r.apply.changed, ['ceph-mon']);
    await until('HEALTH_OK with a new monitor pod', 120, 1000, healthy);
    await ceph('auth', 'get', 'client.e2e', '-o', '/tmp/e2e.keyring');
    assert.equal(await readBack(), sum, 'the image after a new monitor pod');
    console.log(
      `    resident memory, after the image was written and read 4 times: ${await residentMemory()}`,
    );
  });

  it('up again with nothing changed restarts nothing', async () => {
    const before = await containers();
    const r = await up({ file, report, installHostPackages: false });
    assert.deepEqual(r.apply.changed, []);
    assert.deepEqual(await containers(), before);
  });
});
