import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api } from '@kubernetes/client-node';
import { exec } from '../../src/_exec.js';
import { ROTATION_CONTAINER, ROTATION_UNIT } from '../../src/catalog/keystone.js';
import { MARIADB_CONTAINER, MARIADB_UNIT } from '../../src/catalog/mariadb.js';
import { connect } from '../../src/engines/kubernetes/client.js';
import { addressIn } from '../../src/engines/podman/network.js';
import { GuestRestartError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/events.js';
import { ensurePackages } from '../../src/host/packages.js';
import { type EngineChoice, engineFor } from '../../src/lifecycle/engine.js';
import { writeOpenrc } from '../../src/lifecycle/openrc.js';
import { openProject } from '../../src/lifecycle/project.js';
import { history } from '../../src/lifecycle/revisions.js';
import { rollback } from '../../src/lifecycle/rollback.js';
import { rotateKeys } from '../../src/lifecycle/rotate-keys.js';
import { up } from '../../src/lifecycle/up.js';
import { LABEL, NODE_DATA_ROOT } from '../../src/model/objects.js';
import { backupPurgeRestore } from '../_backup.js';
import { BLOCK_STORAGE, checkCluster, checkImageSurvives, checkNoKeyIn, type InMon } from '../_ceph.js';
import {
  type Change,
  CONFIG_ROLLS,
  changesUnderLoad,
  keystoneImageRolls,
  loopEndpoints,
  MIN_REQUESTS,
} from '../_client-loop.js';
import {
  bootServer,
  CHECK_PACKAGES,
  checkCatalog,
  checkComputeUp,
  checkImageBytes,
  checkInternalFromHost,
  checkPlacement,
  dashboardUrl,
  fromHost,
  kubernetesNode,
  makeDiskImage,
  pidWithAddress,
  publishedUrls,
  servicesYaml,
  sshOptions,
  until,
  uploadImage,
} from '../_cloud-checks.js';
import { BROWSER_PACKAGES, checkDashboardWith } from '../_dashboard.js';
import {
  bootGuests,
  checkDownPortIsSeen,
  checkFloatingIpAndRouterInterface,
  checkNodeRecreated,
  deleteGuests,
  GUEST_COUNTS,
  type Guest,
  soakGuests,
} from '../_guest-network.js';
import { keysRotateUnderTokens } from '../_key-rotation.js';
import { checkGuestSurvives, checkPartsComeBack } from '../_node-survival.js';
import { rollbackAcrossSchemaMove } from '../_schema-move.js';
import { imageRollSnapshots } from '../_snapshots.js';
import { checkTwoNodes, forgetNode } from '../_two-nodes.js';
import { checkGuestVolumes, checkVolumes } from '../_volumes.js';
import { type Cluster, removeSecondNode, startCluster, stopSecondNode } from '../kube-cluster/cluster.js';
import { objectsOf } from './_objects.js';

/**
 * The full tier: the same cloud file as on Podman, deployed by the Kubernetes
 * engine to a real single-node cluster (kubelet, containerd, kube-proxy), with
 * images pushed through a local registry, and used with the real openstack CLI.
 */
const CLOUD = 'podstack-k8s';
const NAMESPACE = 'podstack-e2e';
/** Each API on its own port + this, as the Podman end-to-end test does with its own offset. */
const OFFSET = 10300;
const isRoot = process.getuid?.() === 0;
/** The node folder of the guests' disks: the test cluster's one node is this host. */
const NODE_FOLDER = `${NODE_DATA_ROOT}/${CLOUD}/nova-instances`;

let cluster: Cluster;
let dir: string;
let file: string;
let engine: EngineChoice;
let disk: string;
/** vm1, booted by the first server test: it runs to the backup test. */
let server: Guest | undefined;

/**
 * Lines under services that the cloud keeps from the roll test on: its last change leaves nova's
 * and Horizon's config changed, and rolling them back would be six more rolls of CI's budget.
 */
let settled: Record<string, string> = {};
/** Block storage (off by default) is turned on at the end: see BLOCK_STORAGE. */
let blockStorage = false;

/** The test cloud's file; `keystone` adds lines under services.keystone, `more` under others. */
const cloudYaml = (keystone = '', more: Record<string, string> = {}) =>
  [
    `name: ${CLOUD}`,
    `dataDir: ${join(dir, 'data')}`,
    `endpoints: {address: ${cluster.nodeIp}}`,
    `images: {prefix: ${cluster.registry}/podstack, tlsVerify: false}`,
    `network: {external: ${cluster.externalSubnet}, externalBridge: ${cluster.externalBridge}}`,
    servicesYaml(OFFSET, { ...settled, ...(blockStorage ? BLOCK_STORAGE : {}), keystone, ...more }),
  ].join('\n');

/**
 * The cloud's node pod (on node `name`, by default the first running one). Floating IPs answer
 * from this host: the cloud's external network is the test cluster's bridge on every node
 * (network.externalBridge), on which the host has the subnet's gateway address.
 */
const nodePod = (name?: string) =>
  kubernetesNode(cluster.kubeconfig, NAMESPACE, CLOUD, name, fromHost(cluster.externalBridge, fipProbe()));
/** An address of the external subnet's floating IP pool (its 100th): its route must be the cluster's bridge. */
const fipProbe = () => addressIn(cluster.externalSubnet, 100);

/** Every event podstack reported, for the check that no Ceph key is among them. */
const events: ProgressEvent[] = [];
const report = (e: ProgressEvent) => {
  events.push(e);
  if (e.type !== 'unit' || e.state !== 'unchanged') process.stderr.write(`    ${JSON.stringify(e)}\n`);
};

// Resolved here: the CLI runs with the test's temporary folder as its working directory, where Node
// would not find tsx (see the Podman end-to-end test).
const tsxLoader = import.meta.resolve('tsx');
const root = new URL('../..', import.meta.url).pathname;

/** The podstack CLI from source, as a user runs it (engine flags are the caller's). */
const podstack = (...args: string[]) =>
  exec(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), '-f', file, ...args], {
    cwd: dir,
    env: { NODE_OPTIONS: '' },
  });

async function openstack(...args: string[]) {
  const r = await exec('openstack', args, { cwd: dir, env: { OS_CLOUD: CLOUD } });
  assert.equal(r.exitCode, 0, `openstack ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** Pod name -> uid of every pod of the cloud that is running (Deployments' pods). */
async function runningPods(): Promise<Record<string, string>> {
  const c = connect({ kubeconfig: cluster.kubeconfig, namespace: NAMESPACE });
  const pods = await c.core.listNamespacedPod({
    namespace: NAMESPACE,
    labelSelector: `${LABEL.instance}=${CLOUD}`,
  });
  return Object.fromEntries(
    pods.items
      .filter((p) => p.status?.phase === 'Running')
      .map((p) => [p.metadata?.labels?.[LABEL.unit] ?? '', p.metadata?.uid ?? '']),
  );
}

/**
 * Deletes the nova-compute DaemonSet's pod, as a node drain or a crash would, and waits until the
 * DaemonSet's new pod is ready (the old one gone: the checks find the pod by its phase).
 */
async function recreateNodePod(): Promise<void> {
  const c = connect({ kubeconfig: cluster.kubeconfig, namespace: NAMESPACE });
  const selector = `${LABEL.instance}=${CLOUD},${LABEL.unit}=nova-compute`;
  const list = async () =>
    (await c.core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: selector })).items;
  const old = await list();
  assert.equal(old.length, 1, `expected one nova-compute pod, found ${old.length}`);
  await c.core.deleteNamespacedPod({
    namespace: NAMESPACE,
    name: old[0]!.metadata!.name!,
    gracePeriodSeconds: 10,
  });
  const ready = (p: (typeof old)[number]) =>
    p.metadata?.uid !== old[0]!.metadata?.uid &&
    (p.status?.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'True');
  for (let i = 0; i < 150; i++) {
    const pods = await list();
    if (pods.length === 1 && ready(pods[0]!)) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
  assert.fail("the nova-compute DaemonSet's new pod did not become ready in 5 minutes");
}

/**
 * In Ceph's monitor container. While it restarts (killed) or its pod is made again, the exec
 * fails (no running pod): a failed command, which the checks that wait try again.
 */
const inMon: InMon = async (argv) => {
  try {
    const { engine: k8s } = await engineFor(await openProject({ file, engine: 'kubernetes' }), engine);
    return await k8s.exec('ceph-mon', 'ceph-mon', argv);
  } catch (e) {
    return { exitCode: -1, stdout: '', stderr: e instanceof Error ? e.message : String(e) };
  }
};

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/** Why the node's unit is not ready in the engine's status, or undefined when it is. */
async function nodeUnhealthy(): Promise<string | undefined> {
  const project = await openProject({ file, report, engine: 'kubernetes' });
  const { engine: k8s } = await engineFor(project, engine);
  const compute = (await k8s.status(project.plan)).find((u) => u.unit === 'nova-compute');
  return compute?.state === 'ready' ? undefined : `${compute?.state}: ${compute?.reason}`;
}

/**
 * Checks that CI runs on Podman only, where the same shared code checks the same thing, and that
 * `npm run soak` runs on both engines: CI's 90 minutes on 2 cores do not hold every check twice.
 * On Kubernetes CI still boots guests, kills every node part once under a guest, and rolls every
 * API under the client loop.
 */
/**
 * The roll test's two ups (all six servers one by one took nine ups and 570 s of CI's budget;
 * three groups forward and all back, 20 rolls and 330 s): the uWSGI APIs with neutron-server
 * (eventlet, its own readiness) forward, then nova's services and Horizon forward with those four
 * back, ten rolls in one up. Podman's roll test rolls them in one up.
 */
const FIRST_ROLLS = ['keystone', 'glance', 'placement', 'neutron'];
const LAST_ROLLS = ['nova', 'horizon'];

const SOAK_ONLY = process.env.PODSTACK_SOAK ? false : 'in npm run soak (CI runs it on Podman)';

describe('the default cloud on kubernetes, end to end', {
  skip: isRoot ? false : 'needs root (a node of its own)',
}, () => {
  before(async () => {
    cluster = await startCluster({ tier: 'full', report: (line) => process.stderr.write(`    ${line}\n`) });
    dir = await mkdtemp(join(tmpdir(), 'podstack-k8s-'));
    file = join(dir, 'cloud.yaml');
    engine = { name: 'kubernetes', cluster: { kubeconfig: cluster.kubeconfig, namespace: NAMESPACE } };
    await writeFile(file, cloudYaml());
    await ensurePackages([...CHECK_PACKAGES, ...BROWSER_PACKAGES], report);
    disk = await makeDiskImage(dir);
    const project = await openProject({ file, report, engine: 'kubernetes' });
    await (await engineFor(project, engine)).engine.destroy({ purge: true, report });
  });

  after(async () => {
    if (process.env.PODSTACK_E2E_KEEP || !file) return;
    const project = await openProject({ file, report, engine: 'kubernetes' });
    await (await engineFor(project, engine)).engine.destroy({ purge: true, report });
    await rm(dir, { recursive: true, force: true });
  });

  it('up brings up a cloud the openstack CLI uses: tokens, projects, images, placement', async () => {
    const start = process.hrtime.bigint();
    const r = await up({ file, report, engine });
    console.log(
      `    up --engine kubernetes (images ${r.build.built.length > 0 ? 'built' : 'cached'}): ${seconds(start).toFixed(1)}s`,
    );
    assert.deepEqual(
      r.endpoints.map((e) => e.url),
      publishedUrls(cluster.nodeIp, OFFSET),
    );
    await writeOpenrc(r.project);
    const token = JSON.parse(await openstack('token', 'issue', '-f', 'json'));
    assert.match(token.id, /^gAAAAA/);
    await openstack('project', 'create', 'demo');
    await checkCatalog(openstack, cluster.nodeIp, OFFSET);
    await uploadImage(openstack, disk, 'k8s-disk');
    await checkImageBytes(openstack, dir, disk, 'k8s-disk');
    await checkPlacement(openstack);
    await checkInternalFromHost(openstack);
  });

  it('up again with nothing changed pushes no image, writes no object and restarts nothing', async () => {
    const before = await runningPods();
    const from = events.length;
    const start = process.hrtime.bigint();
    const r = await up({ file, report, engine, installHostPackages: false });
    console.log(`    up --engine kubernetes (nothing changed): ${seconds(start).toFixed(2)}s`);
    const pushes = events.slice(from).filter((e) => e.type === 'image' && e.state === 'pushing');
    assert.deepEqual(pushes, [], 'the registry has every image as the first up pushed it');
    assert.equal(r.apply.written, 0);
    assert.deepEqual(r.apply.changed, []);
    assert.deepEqual(await runningPods(), before);
  });

  it('status reports every unit healthy from the cluster', async () => {
    const project = await openProject({ file, report, engine: 'kubernetes' });
    const statuses = await (await engineFor(project, engine)).engine.status(project.plan);
    const unhealthy = statuses.filter((s) => !['ready', 'completed', 'applied'].includes(s.state));
    assert.deepEqual(unhealthy, []);
  });

  it('a server boots on the hypervisor DaemonSet and answers ping and SSH on its floating IP', async () => {
    await checkComputeUp(openstack);
    // The node pod runs under containerd: its network namespace is found by the pod's address.
    const node = nodePod();
    const vm = await bootServer(openstack, dir, node, 'vm1');
    server = { ...vm, name: 'vm1' };
    console.log(
      `    server create to ACTIVE: ${vm.activeSeconds.toFixed(1)}s; ACTIVE to SSH answering: ${vm.sshSeconds.toFixed(1)}s`,
    );
  });

  it('the dashboard, in a browser: log in, see the server, launch an instance, open its console, log out', {
    skip: SOAK_ONLY,
  }, async () => {
    const project = await openProject({ file, report, engine: 'kubernetes' });
    const times = await checkDashboardWith(openstack, {
      url: dashboardUrl(cluster.nodeIp, OFFSET),
      password: project.secrets.keystone_admin_password ?? assert.fail('no admin password'),
      server: 'vm1',
      label: 'kubernetes',
    });
    console.log(`    dashboard: ${JSON.stringify(times)}`);
  });

  it('every guest gets its network: one after another and many at once, each to its lease, ping and SSH', {
    skip: SOAK_ONLY,
  }, async () => {
    const node = nodePod();
    await soakGuests(openstack, dir, node, { prefix: 'soak', label: 'kubernetes', ...GUEST_COUNTS });
  });

  let kept: Guest[] = [];
  it('three guests boot beside the first, each to its lease, ping and SSH', async () => {
    // The first server stays, as on Podman: the backup's test needs a server that ran all along.
    kept = await bootGuests(openstack, dir, nodePod(), 'keep', 3);
  });

  it("the node pod deleted, with guests running: the DaemonSet's new pod runs every guest again, reachable by SSH", {
    skip: SOAK_ONLY,
  }, async () => {
    const node = nodePod();
    await checkNodeRecreated(openstack, node, kept, {
      label: 'kubernetes',
      times: GUEST_COUNTS.recreate,
      recreate: () => recreateNodePod(),
    });
  });

  it("a guest's tap that is down makes the node not ready in status (its switch's readiness check)", async () => {
    const node = nodePod();
    const guest = kept[2];
    assert.ok(guest, 'the guests of the previous test did not boot');
    await checkDownPortIsSeen(openstack, node, guest, {
      unitReason: nodeUnhealthy,
      // The probe's words: status runs the probe again (the kubelet's event may be dropped).
      wording: (tap) => new RegExp(`not-ready: ovs-vswitchd: not ready: .*administratively down.*${tap}`),
    });
  });

  it('a guest keeps running through a SIGKILL of ovn-controller, nova-compute, libvirtd and ovs-vswitchd; a nova.conf change, which needs a new node pod, is refused naming the guest', async () => {
    const node = nodePod();
    const guest = kept[0];
    assert.ok(guest, 'the guests of an earlier test did not boot');
    const daemonSet = async () =>
      (await objectsOf(cluster.kubeconfig, NAMESPACE, CLOUD, 'apps/v1', 'DaemonSet'))[0]?.metadata
        ?.generation;
    await checkGuestSurvives(node, guest, {
      label: 'kubernetes',
      change: async () => {
        const generation = await daemonSet();
        await writeFile(
          file,
          cloudYaml('', { nova: '    config:\n      nova.conf:\n        DEFAULT: {debug: true}' }),
        );
        await assert.rejects(up({ file, report, engine, installHostPackages: false }), (err: unknown) => {
          assert.ok(err instanceof GuestRestartError, String(err));
          assert.match(err.message, /nova-compute: .*instance-[0-9a-f]{8}/);
          return true;
        });
        assert.equal(await daemonSet(), generation, 'the refused change was applied');
        await writeFile(file, cloudYaml());
      },
    });
  });

  it('every node part killed twice in a row comes back by itself; the guest keeps running; status is healthy within a minute, with no up', {
    skip: SOAK_ONLY,
  }, async () => {
    const node = nodePod();
    const guest = kept[0];
    assert.ok(guest, 'the guests of an earlier test did not boot');
    await checkPartsComeBack(node, guest, { label: 'kubernetes', kills: 2, unhealthy: nodeUnhealthy });
  });

  // CI runs it on Podman; here the two-node test's migrations move a floating IP with its guest
  // between chassis.
  let fipMoved = false;
  it('a floating IP moves to another server, and a router interface goes, without errors or stale MAC bindings', {
    skip: SOAK_ONLY,
  }, async () => {
    const node = nodePod();
    const [from, to] = kept;
    assert.ok(from && to, 'the guests of the previous test did not boot');
    await checkFloatingIpAndRouterInterface(openstack, node, from, to);
    fipMoved = true;
  });

  it('the three guests are deleted, with their floating IPs', async () => {
    const [from, to, ...rest] = kept;
    assert.ok(from && to, 'the guests of an earlier test did not boot');
    if (fipMoved) {
      await deleteGuests(openstack, [{ ...to, fip: from.fip }, ...rest]);
      await openstack('server', 'delete', '--wait', from.name);
    } else {
      await deleteGuests(openstack, kept);
    }
  });

  it("a second node joins: two hypervisors and two chassis; vm1 on the first node and a server booted on the second, on one tenant network, each answer on their floating IP and ping and SSH to each other over Geneve; the second node lost, the first node's guest keeps running and nova says the second is down; back, its guest runs again, and live-migrates to the first node and cold-migrates back keeping its addresses", async () => {
    const say = (line: string) => console.log(`    ${line}`);
    assert.ok(server, 'the first server (vm1) did not boot');
    const joined = Date.now();
    const two = await startCluster({ tier: 'full', nodes: 2, report: (line) => process.stderr.write(`    ${line}\n`) }); // biome-ignore format: one call
    const [first, second] = two.nodes as [string, string];
    say(`${second} joined the cluster in ${((Date.now() - joined) / 1000).toFixed(1)} s`);
    const guests: Guest[] = [];
    try {
      await checkTwoNodes({
        openstack,
        dir,
        names: [first, second],
        node: (name) => nodePod(name),
        loseSecond: () => stopSecondNode(cluster.stateDir),
        bringBackSecond: async () => {
          await startCluster({ tier: 'full', nodes: 2 });
        },
        say,
        onFirst: server!,
        made: guests,
      });
    } finally {
      await deleteGuests(openstack, guests).catch(() => {});
      await removeSecondNode(cluster.stateDir);
      await forgetNode(openstack, second);
    }
  });

  it("a config change to each API server rolls only its service's Deployments, one server at a time, with no failed request, public or internal, under 8 clients (and a new Keystone image, in npm run soak)", async () => {
    const before = await runningPods();
    const project = await openProject({ file, report, engine: 'kubernetes' });
    // Each server's own config changed, a few services per up (the changes add up: the uWSGI
    // APIs, then neutron-server, then nova's services and Horizon), then all of them back in one
    // up: every API rolls at once. Nova's change is to a section the node's nova.conf does not
    // have: nova.conf's DEFAULT would change the node's pod too, which is refused while guests run.
    const changes = (services: readonly string[]) =>
      Object.fromEntries(CONFIG_ROLLS.filter(([s]) => services.includes(s)).map(([s, , c]) => [s, c]));
    /** Applies `services`' changes (and no other), and the units that waited their turn to roll. */
    const upWith = async (services: readonly string[]) => {
      await writeFile(file, cloudYaml('', changes(services)));
      const waited: string[] = [];
      const r = await up({
        file,
        report: (e) => {
          if (e.type === 'unit' && e.detail?.includes('one server at a time')) waited.push(e.unit);
          report(e);
        },
        engine,
        installHostPackages: false,
      });
      // No bootstrap Job runs again (none of their inputs changed), and the node stays.
      assert.ok(!r.apply.changed.includes('nova-compute'), r.apply.changed.join(' '));
      return { changed: r.apply.changed, waited };
    };
    const first: Change = {
      name: FIRST_ROLLS.join(', '),
      apply: async () => {
        const r = await upWith(FIRST_ROLLS);
        const said = r.changed.join(' ');
        // Each server and its config, and nothing else.
        for (const [service, unit] of CONFIG_ROLLS.filter(([s]) => FIRST_ROLLS.includes(s)))
          assert.ok(r.changed.includes(unit) && r.changed.includes(`${service}-config`), said);
        assert.equal(
          r.changed.length,
          FIRST_ROLLS.length * 2,
          `only ${FIRST_ROLLS.join(', ')} changed: ${said}`,
        );
      },
    };
    const last: Change = {
      name: `${LAST_ROLLS.join(', ')}, and the others back`,
      apply: async () => {
        const r = await upWith(LAST_ROLLS);
        // Ten servers roll, one after another: the later ones were told they wait.
        for (const [, unit] of CONFIG_ROLLS) assert.ok(r.changed.includes(unit), r.changed.join(' '));
        assert.ok(r.waited.length >= 4, `rolls that waited their turn: ${r.waited.join(' ') || 'none'}`);
        settled = changes(LAST_ROLLS);
      },
    };
    // Pushed to the cluster's registry under a new reference: the Deployment's image changes. In
    // the soak only: it is the same Deployment roll as a config change (CI rolls a new image on
    // Podman), and its two ups were 200 s of CI's budget.
    const images = !process.env.PODSTACK_SOAK
      ? []
      : await keystoneImageRolls(
          dir,
          async (imagesDir) => {
            await writeFile(file, cloudYaml());
            return up({
              file,
              report,
              engine,
              installHostPackages: false,
              ...(imagesDir ? { imagesDir } : {}),
            });
          },
          async (imagesDir) =>
            (await openProject({ file, engine: 'kubernetes', ...(imagesDir ? { imagesDir } : {}) })).imageRefs
              .keystone!,
        );
    const { result, summary } = await changesUnderLoad({
      endpoints: loopEndpoints(
        await openstack('endpoint', 'list', '-f', 'json'),
        dashboardUrl(cluster.nodeIp, OFFSET),
      ),
      user: 'admin',
      password: project.secrets.keystone_admin_password ?? assert.fail('no admin password'),
      project: 'admin',
      changes: [first, last, ...images],
      minRequests: MIN_REQUESTS,
    });
    console.log(`    api rolls (${summary}`);
    assert.equal(result.failed, 0, result.failures.join('\n'));
    const after = await runningPods();
    for (const unit of ['mariadb', 'rabbitmq', 'memcached', 'nova-compute'])
      assert.equal(after[unit], before[unit], `${unit} restarted`);
    assert.notEqual(after['keystone-api'], before['keystone-api']);
    const projects = JSON.parse(await openstack('project', 'list', '-f', 'json')) as { Name: string }[];
    assert.ok(
      projects.some((p) => p.Name === 'demo'),
      'the database did not survive the rollout',
    );
  });

  it('up repairs what status calls failed: a crash-looping API pod is made again, and up exits 0 once it is healthy', async () => {
    const c = connect({ kubeconfig: cluster.kubeconfig, namespace: NAMESPACE });
    const unit = 'placement-api';
    const pods = async () =>
      (
        await c.core.listNamespacedPod({
          namespace: NAMESPACE,
          labelSelector: `${LABEL.instance}=${CLOUD},${LABEL.unit}=${unit}`,
        })
      ).items;
    // Not one on its way out: right after the roll test's last up, placement's old pod may still be
    // in its grace period, Running with its server gone (seen once it rolled last).
    const old = (await pods()).find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
    assert.ok(old?.status?.podIP, `no running ${unit} pod`);
    // Its server killed from the host (SIGKILL, as the OOM killer would) each time it starts, for
    // as long as this pod lives: a crash loop the kubelet's restarts never end. The pod is found by
    // its network namespace, and only until it is being deleted: the kernel reuses a freed
    // namespace's inode number, so the replacement pod may get the same one (seen in CI).
    const netns = await readlink(`/proc/${await pidWithAddress(old.status.podIP, 'uwsgi_python3')}/ns/net`);
    const oldName = old.metadata?.name ?? '';
    const oldLives = async () => {
      const p = await c.core
        .readNamespacedPod({ name: oldName, namespace: NAMESPACE })
        .catch(() => undefined);
      return p?.metadata?.uid === old.metadata?.uid && !p?.metadata?.deletionTimestamp;
    };
    let killing = true;
    const killer = (async () => {
      for (const deadline = Date.now() + 600_000; killing && Date.now() < deadline && (await oldLives()); ) {
        const pids = (await exec('pgrep', ['-x', 'uwsgi_python3'])).stdout.split('\n').filter(Boolean);
        for (const pid of pids) {
          if ((await readlink(`/proc/${pid}/ns/net`).catch(() => '')) === netns)
            await exec('kill', ['-KILL', pid]);
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      const project = await openProject({ file, report, engine: 'kubernetes' });
      const { engine: k8s } = await engineFor(project, engine);
      const stateOf = async () => (await k8s.status(project.plan)).find((u) => u.unit === unit);
      await until(`status to call ${unit} failed`, 180, 1000, async () => {
        const s = await stateOf();
        return s?.state === 'failed' ? undefined : `${s?.state}: ${s?.reason}`;
      });
      // The plan is unchanged, yet up makes the pod again, and returns once it serves.
      const r = await up({ file, report, engine, installHostPackages: false });
      assert.deepEqual(r.apply.changed, [unit]);
      const s = await stateOf();
      assert.equal(s?.state, 'ready', `up returned with ${unit} ${s?.state}: ${s?.reason}`);
      // Gone, or going: it may still be in its grace period.
      const left = (await pods()).find((p) => p.metadata?.uid === old.metadata?.uid);
      assert.ok(!left || left.metadata?.deletionTimestamp, 'the crash-looping pod is not being replaced');
      await checkPlacement(openstack);
      // The history says so, after the image the roll test moved to and back.
      const entries = await history(k8s.revisions());
      assert.deepEqual(
        [entries.at(-1)?.status, entries.at(-1)?.changes],
        ['deployed', ['repaired placement-api']],
      );
      assert.ok(
        entries.some((e) => e.changes.some((c) => /^image keystone [0-9a-f]{7} -> [0-9a-f]{7}$/.test(c))) ||
          !entries.some((e) => e.changes.includes('keystone.conf DEFAULT.debug (added)')) ||
          // The image roll is the soak's only (the roll test's config changes run in CI).
          !process.env.PODSTACK_SOAK,
        `the soak's roll test ran, yet no revision moved keystone's image: ${JSON.stringify(entries)}`,
      );
      if (entries.some((e) => e.changes.some((c) => c.startsWith('image keystone ')))) {
        const seen = await imageRollSnapshots(entries, async (script) => {
          const x = await k8s.exec(MARIADB_UNIT, MARIADB_CONTAINER, ['sh', '-ec', script]);
          assert.equal(x.exitCode, 0, x.stderr);
          return x.stdout;
        });
        console.log(`    snapshots: ${seen}`);
      }
    } finally {
      killing = false;
      await killer;
    }
  });

  it("rollback returns to a revision kept in the cluster: Keystone's config rolls back, and the cloud file is that revision's", async () => {
    const project = await openProject({ file, report, engine: 'kubernetes' });
    const { engine: k8s } = await engineFor(project, engine);
    const back = (await history(k8s.revisions())).at(-1)!.revision;
    const original = await readFile(file, 'utf8');
    await writeFile(file, cloudYaml(CONFIG_ROLLS[0][2]));
    await up({ file, report, engine, installHostPackages: false });
    const r = await rollback({ file, report, engine, revision: back });
    console.log(`    rollback to ${back}: ${r.seconds.toFixed(1)}s, units ${r.units.join(', ')}`);
    assert.deepEqual([...(r.apply?.changed ?? [])].sort(), ['keystone-api', 'keystone-config']);
    const last = (await history(k8s.revisions())).at(-1);
    assert.deepEqual(last?.changes, [`rolled back to ${back}`, 'keystone.conf DEFAULT.debug (removed)']);
    assert.equal(await readFile(file, 'utf8'), original);
    await openstack('token', 'issue');
  });

  // CI runs these two on Podman (the same lifecycle code); here they are in npm run soak, which
  // pays for the two-node test in CI's 60 minutes.
  it('rollback across a schema that moved puts back the snapshot taken before it, after naming what it loses: refused without --yes, then the old schema, image and data', {
    skip: SOAK_ONLY,
  }, async () => {
    const project = await openProject({ file, report, engine: 'kubernetes' });
    const { engine: k8s } = await engineFor(project, engine);
    const c = connect({ kubeconfig: cluster.kubeconfig, namespace: NAMESPACE });
    const measured = await rollbackAcrossSchemaMove(dir, {
      podstack: (...args) =>
        podstack(...args, '--engine', 'kubernetes', '--kubeconfig', cluster.kubeconfig, '-n', NAMESPACE),
      upWith: (imagesDir) =>
        up({ file, report, engine, installHostPackages: false, ...(imagesDir ? { imagesDir } : {}) }),
      keystoneRef: async (imagesDir) =>
        (await openProject({ file, engine: 'kubernetes', ...(imagesDir ? { imagesDir } : {}) })).imageRefs
          .keystone!,
      // The Deployment's pod template: what its pods run once its roll is done (up and rollback wait for it).
      keystoneRuns: async () => {
        const d = await c.config.makeApiClient(AppsV1Api).listNamespacedDeployment({
          namespace: NAMESPACE,
          labelSelector: `${LABEL.instance}=${CLOUD},${LABEL.unit}=keystone-api`,
        });
        return [
          ...new Set(d.items.flatMap((x) => (x.spec?.template.spec?.containers ?? []).map((k) => k.image))),
        ].join(' ');
      },
      openstack,
      inMariadb: async (script) => {
        const x = await k8s.exec(MARIADB_UNIT, MARIADB_CONTAINER, ['sh', '-ec', script]);
        assert.equal(x.exitCode, 0, x.stderr);
        return x.stdout;
      },
      removeImage: async (ref) => {
        await exec('podman', ['rmi', ref]);
      },
    });
    console.log(`    ${measured}`);
  });

  it('keys rotate with no token refused: 5 Fernet rotations and a credential rotation by hand under token clients, an EC2 secret reads back, and an old key 0 rotates by the schedule', {
    skip: SOAK_ONLY,
  }, async () => {
    const project = await openProject({ file, report, engine: 'kubernetes' });
    const { engine: k8s } = await engineFor(project, engine);
    const inRotator = async (script: string) => {
      const r = await k8s.exec(ROTATION_UNIT, ROTATION_CONTAINER, ['sh', '-ec', script]);
      assert.equal(r.exitCode, 0, `${script}: ${r.stderr}`);
      return r.stdout;
    };
    const r = await keysRotateUnderTokens({
      password: project.secrets.keystone_admin_password!,
      rotate: async (kind) => ({ rotations: await rotateKeys({ file, report, engine, kinds: [kind] }) }),
      inRotator,
      openstack,
    });
    console.log(`    key rotation: ${r.summary}`);
    assert.equal(r.failed, 0, r.failures.join('\n'));
  });

  it("backup while the cloud runs, down keeps the claims and the node folder and runs nothing, down --purge removes them and the namespace, restore: the project, the image's bytes, an EC2 secret, OVN's networks (Neutron's sync check finds nothing to repair), the history, and the running server with what it wrote on its disk, on its floating IP, come back; a damaged backup, another cloud's, and a restore onto a cloud that is there are refused, exit 2, nothing changed", async () => {
    assert.ok(server, 'no server was booted');
    const c = connect({ kubeconfig: cluster.kubeconfig, namespace: NAMESPACE });
    const printed = await backupPurgeRestore({
      cloud: CLOUD,
      file,
      dir,
      openstack,
      node: nodePod(),
      guest: server,
      image: { name: 'k8s-disk', file: disk },
      podstack: (...args) =>
        podstack(...args, '--engine', 'kubernetes', '--kubeconfig', cluster.kubeconfig, '-n', NAMESPACE),
      exec: async (unit, container, command) =>
        (await engineFor(await openProject({ file, engine: 'kubernetes' }), engine)).engine.exec(
          unit,
          container,
          command,
        ),
      // The claims, and the node folder of the guests' disks on this host (the cluster's one node).
      data: async () => {
        const claims = await c.core
          .listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })
          .then((l) => l.items.map((p) => `claim ${p.metadata?.name}`))
          .catch(() => []);
        const folder = await readdir(NODE_FOLDER).catch(() => undefined);
        return [...claims, ...(folder ? [`node folder with ${folder.length} entries`] : [])].sort();
      },
      // Nothing of podstack's is left but its claims and the node folder.
      afterDown: async () => {
        const left = async (apiVersion: string, kind: string) =>
          (await objectsOf(cluster.kubeconfig, NAMESPACE, CLOUD, apiVersion, kind)).length;
        assert.equal(await left('apps/v1', 'Deployment'), 0);
        assert.equal(await left('apps/v1', 'DaemonSet'), 0);
        assert.equal(await left('batch/v1', 'Job'), 0);
        assert.equal(await left('v1', 'Pod'), 0);
        assert.equal(await left('v1', 'Secret'), 0);
      },
      // podstack made the namespace and nothing else is in it: it goes too.
      afterPurge: async () => {
        const namespaces = await c.core.listNamespace();
        assert.ok(
          !namespaces.items.some((n) => n.metadata?.name === NAMESPACE),
          `${NAMESPACE} is still there`,
        );
      },
    });
    console.log(`    ${printed}`);
  });

  it("block storage turned on in the running cloud: up brings Ceph and Cinder up and gives the node Nova's RBD client, which needs a new node pod (--allow-guest-restart); the guest comes back; Ceph is healthy, the monitor on the node's address; no Ceph key in what podstack printed or its plan", async () => {
    assert.ok(server, 'no server was booted');
    blockStorage = true;
    await writeFile(file, cloudYaml());
    const start = Date.now();
    // The node DaemonSet's pod template changes (nova.conf's [cinder], the key as a libvirt
    // secret): a new pod, whose libvirt starts the guests again. (A refusal without the flag is
    // checked by the nova.conf change above.)
    const r = await up({ file, report, engine, installHostPackages: false, allowGuestRestart: true });
    console.log(`    up turning Ceph and Cinder on: ${((Date.now() - start) / 1000).toFixed(1)}s`);
    for (const unit of ['ceph-mon', 'ceph-osd', 'cinder-api', 'cinder-volume', 'nova-compute'])
      assert.ok(r.apply.changed.includes(unit), r.apply.changed.join(' '));
    await checkCatalog(openstack, cluster.nodeIp, OFFSET, ['cinder']);
    await checkCluster(inMon, cluster.nodeIp);
    const node = nodePod();
    await until('vm1 answers SSH on the new node pod', 300, 3000, async () => {
      const x = await node.reach('ssh', [...sshOptions(server!.key), `root@${server!.fip}`, 'true']);
      return x.exitCode === 0 ? undefined : x.output.slice(-200);
    });
    const { secrets } = await openProject({ file, engine: 'kubernetes' });
    const plan = await podstack(
      'plan',
      '--engine',
      'kubernetes',
      '--kubeconfig',
      cluster.kubeconfig,
      '-n',
      NAMESPACE,
      '-o',
      'yaml',
    );
    assert.equal(plan.exitCode, 0, plan.output);
    checkNoKeyIn(secrets, [JSON.stringify(events), plan.output].join('\n'));
  });

  it("an RBD image reads back after SIGKILL of the OSD and the monitor, and after the monitor's pod is deleted (its Deployment makes it again, at the same address)", {
    skip: SOAK_ONLY,
  }, async () => {
    const c = connect({ kubeconfig: cluster.kubeconfig, namespace: NAMESPACE });
    const monitors = async () =>
      (
        await c.core.listNamespacedPod({
          namespace: NAMESPACE,
          labelSelector: `${LABEL.instance}=${CLOUD},${LABEL.unit}=ceph-mon`,
        })
      ).items;
    await checkImageSurvives(inMon, async () => {
      const pods = await monitors();
      assert.equal(pods.length, 1);
      const old = pods[0]!.metadata!.uid;
      await c.core.deleteNamespacedPod({ namespace: NAMESPACE, name: pods[0]!.metadata!.name! });
      await until('a new monitor pod', 120, 1000, async () => {
        const now = await monitors();
        const fresh = now.filter((p) => p.metadata?.uid !== old && !p.metadata?.deletionTimestamp);
        return fresh.some((p) => p.status?.phase === 'Running') ? undefined : `${now.length} pods`;
      });
    });
  });

  // The same Cinder API calls as on Podman, in CI there: here only in npm run soak (CI's budget).
  it('volumes with the openstack CLI: empty, from a snapshot, from an image (its bytes in Ceph), too big (refused, with the reason), and deleted (gone from Ceph)', {
    skip: SOAK_ONLY,
  }, async () => {
    await checkVolumes(openstack, inMon, dir);
  });

  it('a volume attached to a guest on the node pod is a disk it writes a file system and a file on, which a second server reads after a detach; a server boots from a volume, and what it wrote there is there for the next server booted from it', async () => {
    assert.ok(server, 'no server was booted');
    const node = nodePod();
    await checkGuestVolumes(openstack, node, { keyName: 'vm1-key', ...server });
  });
});
