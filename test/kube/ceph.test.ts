import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import { connect } from '../../src/engines/kubernetes/client.js';
import type { ProgressEvent } from '../../src/events.js';
import { type EngineChoice, engineFor } from '../../src/lifecycle/engine.js';
import { writeOpenrc } from '../../src/lifecycle/openrc.js';
import { openProject } from '../../src/lifecycle/project.js';
import { up } from '../../src/lifecycle/up.js';
import { LABEL } from '../../src/model/objects.js';
import { BLOCK_STORAGE_ONLY, checkCluster, checkImageSurvives, checkNoKeyIn, type InMon } from '../_ceph.js';
import { until } from '../_cloud-checks.js';
import { checkVolumes } from '../_volumes.js';
import { type Cluster, startCluster } from '../kube-cluster/cluster.js';

/**
 * Block storage on the test cluster: the same plan as on Podman, Ceph's claims from the
 * StorageClass, the monitor reached through its Service's external IP (the node's address, as
 * the APIs' internal endpoints), checked with Ceph's own CLI and crashed on purpose as on
 * Podman; then Cinder's volumes with the real openstack CLI, as on Podman. (Volumes attached to
 * guests are checked in the Podman cloud, which has compute.)
 */
const CLOUD = 'podstack-ceph-k8s';
const NAMESPACE = 'podstack-ceph-e2e';
const isRoot = process.getuid?.() === 0;
const tsxLoader = import.meta.resolve('tsx');
const root = new URL('../..', import.meta.url).pathname;

let cluster: Cluster;
let dir: string;
let file: string;
let engine: EngineChoice;
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

const kubeEngine = async () =>
  (await engineFor(await openProject({ file, report, engine: 'kubernetes' }), engine)).engine;

/**
 * In the monitor's container. While it restarts (killed) or its pod is made again, the exec
 * fails (no running pod; the kubelet's 500 for a container that is not running): a failed
 * command, which the checks that wait try again.
 */
const inMon: InMon = async (argv) => {
  try {
    return await (await kubeEngine()).exec('ceph-mon', 'ceph-mon', argv);
  } catch (e) {
    return { exitCode: -1, stdout: '', stderr: e instanceof Error ? e.message : String(e) };
  }
};

describe('block storage (ceph, cinder) on kubernetes, end to end', {
  skip: isRoot ? false : 'needs root (a node of its own)',
}, () => {
  before(async () => {
    cluster = await startCluster({ tier: 'full', report: (line) => process.stderr.write(`    ${line}\n`) });
    dir = await mkdtemp(join(tmpdir(), 'podstack-ceph-k8s-'));
    file = join(dir, 'cloud.yaml');
    engine = { name: 'kubernetes', cluster: { kubeconfig: cluster.kubeconfig, namespace: NAMESPACE } };
    await writeFile(
      file,
      [
        `name: ${CLOUD}`,
        `dataDir: ${join(dir, 'data')}`,
        `endpoints: {address: ${cluster.nodeIp}}`,
        `images: {prefix: ${cluster.registry}/podstack, tlsVerify: false}`,
        `services:\n${BLOCK_STORAGE_ONLY}\n`,
      ].join('\n'),
    );
    await (await kubeEngine()).destroy({ purge: true, report });
  });

  after(async () => {
    if (process.env.PODSTACK_E2E_KEEP || !file) return;
    await (await kubeEngine()).destroy({ purge: true, report });
    await rm(dir, { recursive: true, force: true });
  });

  it("up brings up Ceph healthy on the cluster: one OSD up and in, the volumes pool at one replica for RBD, the monitor on the node's address", async () => {
    const start = Date.now();
    await up({ file, report, engine });
    console.log(
      `    up --engine kubernetes (keystone, glance, ceph, cinder): ${((Date.now() - start) / 1000).toFixed(1)}s`,
    );
    await checkCluster(inMon, cluster.nodeIp);
  });

  it('no Ceph key is in what podstack printed or in its plan', async () => {
    const { secrets } = await openProject({ file, engine: 'kubernetes' });
    const plan = await podstack(
      'plan',
      '--engine',
      'kubernetes',
      '--kubeconfig',
      cluster.kubeconfig,
      '--namespace',
      NAMESPACE,
      '-o',
      'yaml',
    );
    assert.equal(plan.exitCode, 0, plan.output);
    checkNoKeyIn(secrets, [JSON.stringify(events), plan.output].join('\n'));
  });

  it("an RBD image reads back after SIGKILL of the OSD and the monitor, and after the monitor's pod is deleted (its Deployment makes it again, at the same address)", async () => {
    await checkImageSurvives(inMon, async () => {
      const c = connect({ kubeconfig: cluster.kubeconfig, namespace: NAMESPACE });
      const pods = await c.core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `${LABEL.unit}=ceph-mon`,
      });
      assert.equal(pods.items.length, 1);
      const old = pods.items[0]!.metadata!.uid;
      await c.core.deleteNamespacedPod({ namespace: NAMESPACE, name: pods.items[0]!.metadata!.name! });
      await until('a new monitor pod', 120, 1000, async () => {
        const now = await c.core.listNamespacedPod({
          namespace: NAMESPACE,
          labelSelector: `${LABEL.unit}=ceph-mon`,
        });
        const fresh = now.items.filter((p) => p.metadata?.uid !== old && !p.metadata?.deletionTimestamp);
        return fresh.some((p) => p.status?.phase === 'Running') ? undefined : `${now.items.length} pods`;
      });
    });
  });

  it('volumes with the openstack CLI: empty, from a snapshot, from an image (its bytes in Ceph), too big (refused, with the reason), and deleted (gone from Ceph)', async () => {
    await writeOpenrc(await openProject({ file, engine: 'kubernetes' }));
    await checkVolumes(
      async (...args) => {
        const r = await exec('openstack', args, { cwd: dir, env: { OS_CLOUD: CLOUD } });
        assert.equal(r.exitCode, 0, `openstack ${args.join(' ')} failed:\n${r.stderr}`);
        return r.stdout;
      },
      inMon,
      dir,
    );
  });
});
