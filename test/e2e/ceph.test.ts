import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import { cloudSubnet, gatewayOf } from '../../src/engines/podman/network.js';
import type { ProgressEvent } from '../../src/events.js';
import { openProject } from '../../src/lifecycle/project.js';
import { up } from '../../src/lifecycle/up.js';
import { checkCluster, checkImageSurvives, checkNoKeyIn, type InMon } from '../_ceph.js';
import { cloudContainers, type OpenStack, servicesYaml } from '../_cloud-checks.js';
import { checkVolumes } from '../_volumes.js';

/**
 * Block storage on Podman, for real, in a cloud of its own (Keystone, Glance, Ceph and Cinder,
 * with their database, queue and cache): the monitor, the manager and the OSD (BlueStore in a
 * file on a volume) from Debian's packages, checked with Ceph's own CLI, an RBD image written
 * and read back through them and crashed on purpose; then Cinder's volumes with the real
 * openstack CLI.
 */
const CLOUD = 'podstack-ceph-e2e';
const OFFSET = 10400;
/** What the block storage needs, and nothing more. */
const ENABLED: Record<string, string> = {
  ceph: '    enabled: true\n    osdSize: 4Gi',
  cinder: '    enabled: true',
  ...Object.fromEntries(
    ['placement', 'ovn', 'neutron', 'nova', 'starter', 'horizon'].map((s) => [s, '    enabled: false']),
  ),
};
const root = new URL('../..', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const tsxLoader = import.meta.resolve('tsx');

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

const inMon: InMon = async (argv) => {
  const r = await exec('podman', ['exec', `${CLOUD}-ceph-mon-ceph-mon`, ...argv]);
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
};

/** Container name -> ID of every container of the test cloud. */
const containers = () => cloudContainers(CLOUD);

describe('block storage (ceph, cinder) on podman, end to end', {
  skip: isRoot ? false : 'needs root (rootful Podman)',
}, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podstack-ceph-e2e-'));
    file = join(dir, 'cloud.yaml');
    await writeFile(file, `name: ${CLOUD}\ndataDir: ${join(dir, 'data')}\n${servicesYaml(OFFSET, ENABLED)}`);
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
    console.log(
      `    up (keystone, glance, ceph, cinder; images cached): ${((Date.now() - start) / 1000).toFixed(1)}s`,
    );
    const project = await openProject({ file });
    // The cloud's internal address: on Podman its network's gateway, where the ports are published.
    await checkCluster(inMon, gatewayOf(cloudSubnet(CLOUD, project.spec.network.subnet)));
  });

  it('no Ceph key is in what podstack printed, in its plan, or in a daemon log', async () => {
    const { secrets } = await openProject({ file });
    const plan = await podstack('plan', '-o', 'yaml');
    const logs = await Promise.all(
      ['ceph-mon', 'ceph-mgr', 'ceph-osd', 'cinder-volume'].map((u) =>
        exec('podman', ['logs', `${CLOUD}-${u}-${u}`]),
      ),
    );
    checkNoKeyIn(secrets, [JSON.stringify(events), plan.output, ...logs.map((l) => l.output)].join('\n'));
  });

  it('an RBD image reads back after SIGKILL of the OSD and the monitor, and after the monitor is made again at its address', async () => {
    await checkImageSurvives(inMon, async () => {
      // A new monitor pod, as after `down` and `up`: the same address, the same store.
      const rmPod = await exec('podman', ['pod', 'rm', '-f', `${CLOUD}-ceph-mon`]);
      assert.equal(rmPod.exitCode, 0, rmPod.output);
      const r = await up({ file, report, installHostPackages: false });
      assert.deepEqual(r.apply.changed, ['ceph-mon']);
    });
  });

  it('volumes with the openstack CLI: empty, from a snapshot, from an image (its bytes in Ceph), too big (refused, with the reason), and deleted (gone from Ceph)', async () => {
    const r = await podstack('openrc');
    assert.equal(r.exitCode, 0, r.output);
    const openstack: OpenStack = async (...args) => {
      const o = await exec('openstack', args, { cwd: dir, env: { OS_CLOUD: CLOUD } });
      assert.equal(o.exitCode, 0, `openstack ${args.join(' ')} failed:\n${o.stderr}`);
      return o.stdout;
    };
    await checkVolumes(openstack, inMon, dir);
  });

  it('up again with nothing changed restarts nothing', async () => {
    const before = await containers();
    const r = await up({ file, report, installHostPackages: false });
    assert.deepEqual(r.apply.changed, []);
    assert.deepEqual(await containers(), before);
  });
});
