// podstack's speed targets, measured (never asserted in tests): prints one line per number.
//   npm run bench                    --help and a no-op up as whole processes, no-op build, cold up
//                                    with images built (until a token is issued and an image
//                                    uploaded, then until a server can be booted) beside its critical
//                                    path, a first server (create to ACTIVE, ACTIVE to SSH), the
//                                    dashboard in a browser (login page, Sign In to Instances,
//                                    Launch to Active), no-op up, and what adding Placement touched
//                                    and rolls under a client loop: one API's config (Keystone),
//                                    and the node's (nova.conf: nova-compute replaced, guests kept)
//   npm run bench -- --from-scratch  also a build from nothing, with an image prefix of its own
//   npm run bench -- --volumes       the default cloud with Ceph and Cinder: cold up, a volume
//                                    made, attached until the guest sees it, a server booted from a
//                                    volume until SSH
//   npm run bench -- --kubernetes    the same cloud on the test cluster: Podman's cold up first (for
//                                    the ratio), harness start from cached binaries, cold up until a
//                                    token, no-op re-apply (objects written; in process and as a whole
//                                    process), a redeploy (against Podman's), then a first server (create to ACTIVE, to SSH), the
//                                    dashboard, and rolls under a client loop: Keystone's config and
//                                    the node's (nova.conf: a new node pod; no guest runs then),
//                                    and a live migration between the test cluster's two nodes
//                                    (its duration, and how long the floating IP went unanswered)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../src/_exec.js';
import { type ProgressEvent, silent } from '../src/events.js';
import { buildProject } from '../src/lifecycle/build.js';
import { type EngineChoice, engineFor } from '../src/lifecycle/engine.js';
import { writeOpenrc } from '../src/lifecycle/openrc.js';
import { openProject } from '../src/lifecycle/project.js';
import { up } from '../src/lifecycle/up.js';
import type { Plan } from '../src/model/unit.js';
import { clientLoop, type Endpoint } from '../test/_client-loop.js';
import {
  apiPorts,
  bootServer,
  type CloudNode,
  checkComputeUp,
  dashboardUrl,
  deleteServer,
  kubernetesNode,
  makeDiskImage,
  makeKey,
  podmanNode,
  servicesYaml,
  sshOptions,
} from '../test/_cloud-checks.js';
import { checkDashboardWith } from '../test/_dashboard.js';

const CLOUD = 'podstack-bench';
const fromScratch = process.argv.includes('--from-scratch');
const dir = await mkdtemp(join(tmpdir(), 'podstack-bench-'));
const file = join(dir, 'cloud.yaml');
const prefix = fromScratch ? `localhost/podstack-bench-${Date.now()}` : 'localhost/podstack';
const root = new URL('..', import.meta.url).pathname;
// Every API on its own port + 10100: a developer's default cloud and the tests' are left alone.
const OFFSET = 10100;
await writeFile(
  file,
  `name: ${CLOUD}\ndataDir: ${join(dir, 'data')}\nimages:\n  prefix: ${prefix}\n${servicesYaml(OFFSET)}`,
);

const time = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e9, value];
};
const line = (metric: string, seconds: number, note = '') =>
  console.log(`${metric.padEnd(56)} ${seconds.toFixed(2).padStart(8)} s${note ? `   ${note}` : ''}`);

/** The moment a cloud counts as up: the openstack CLI got a token from it. */
async function issueToken(): Promise<void> {
  const r = await exec('openstack', ['token', 'issue', '-f', 'value', '-c', 'id'], {
    cwd: dir,
    env: { OS_CLOUD: CLOUD },
  });
  if (r.exitCode !== 0) throw new Error(`openstack token issue failed: ${r.stderr}`);
}

/** ...and can store an image: Glance took a real disk image. */
async function uploadImage(): Promise<void> {
  const disk = await makeDiskImage(dir, 16);
  const r = await exec(
    'openstack',
    ['image', 'create', '--file', disk, '--disk-format', 'qcow2', '--container-format', 'bare', 'bench'],
    { cwd: dir, env: { OS_CLOUD: CLOUD } },
  );
  if (r.exitCode !== 0) throw new Error(`openstack image create failed: ${r.stderr}`);
}

/**
 * The longest chain of bootstrap steps, each weighted by how long its unit took: the least
 * a cold up could take with unlimited parallelism, to set beside what it took.
 */
function criticalPath(plan: Plan, seconds: ReadonlyMap<string, number>): [number, string[]] {
  const finish = new Map<string, [number, string[]]>();
  for (const u of plan.units) {
    const before = u.dependsOn
      .map((d): [number, string[]] => finish.get(d) ?? [0, []])
      .reduce<[number, string[]]>((a, b) => (b[0] > a[0] ? b : a), [0, []]);
    finish.set(u.name, [before[0] + (seconds.get(u.name) ?? 0), [...before[1], u.name]]);
  }
  return [...finish.values()].reduce<[number, string[]]>((a, b) => (b[0] > a[0] ? b : a), [0, []]);
}

/** A command as a user runs it, timed from outside: Node's start and module loading included. */
async function wholeProcess(args: string[], runs = 3): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const [s, r] = await time(() => exec(join(root, 'podstack'), args, { cwd: dir }));
    if (r.exitCode !== 0) throw new Error(`podstack ${args.join(' ')} failed: ${r.output}`);
    out.push(s);
  }
  return out;
}

async function destroy(): Promise<void> {
  const { engine } = await engineFor(await openProject({ file }));
  await engine.destroy({ purge: true, report: silent });
}

if (process.argv.includes('--volumes')) {
  await benchVolumes();
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}

if (process.argv.includes('--kubernetes')) {
  await benchKubernetes();
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}

try {
  const project = await openProject({ file });
  if (fromScratch) {
    const [s, r] = await time(() => buildProject(project, silent));
    line('build from scratch', s, `${r.built.length} images`);
  } else {
    await buildProject(project, silent); // make sure every image exists before timing
  }
  const [noop] = await time(() => buildProject(project, silent));
  line('build with nothing changed (target < 3 s)', noop);

  const help = await wholeProcess(['--help']);
  line('podstack --help, whole process (target 0.3 s)', Math.min(...help), runsOf(help));

  await destroy();
  const took = new Map<string, number>();
  let dashboardAt = 0;
  const record = (e: ProgressEvent) => {
    if (e.type === 'unit' && e.seconds !== undefined && e.state !== 'failed') took.set(e.unit, e.seconds);
    if (e.type === 'unit' && e.unit === 'horizon' && e.state === 'ready') dashboardAt = Date.now();
  };
  const coldStart = Date.now();
  const [cold, result] = await time(async () => {
    const r = await up({ file, report: record, installHostPackages: false });
    await writeOpenrc(r.project, dir);
    await issueToken();
    await uploadImage();
    return r;
  });
  line('cold up, images built, until a token and an image upload', cold);
  line('cold up until the dashboard answers (its login page)', (dashboardAt - coldStart) / 1000);
  const [path, chain] = criticalPath(result.project.plan, took);
  line('  its critical path of bootstrap steps', path, chain.join(' > '));
  const [computeUp] = await time(() => checkComputeUp(openstack));
  line('cold up until a server can be booted (hypervisor up)', cold + computeUp);
  const node = podmanNode(CLOUD);
  await firstServer(node, dashboardUrl('127.0.0.1', OFFSET), 'podman');

  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [s, r] = await time(() => up({ file, report: silent, installHostPackages: false }));
    if (r.apply.changed.length > 0) throw new Error(`a no-op up changed ${r.apply.changed.join(', ')}`);
    runs.push(s);
  }
  line('up with nothing changed, in process', Math.min(...runs), runsOf(runs));
  const noopUp = await wholeProcess(['-f', file, 'up', '--no-install']);
  line('podstack up with nothing changed, whole process (target < 1 s)', Math.min(...noopUp), runsOf(noopUp));
  await roll('keystone', 'keystone.conf', 'podman', '127.0.0.1');
  await roll('nova', 'nova.conf', 'podman', '127.0.0.1');
  await addingAService('placement');
} finally {
  await destroy();
  if (fromScratch) {
    const images = await exec('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    const ours = images.stdout.split('\n').filter((i) => i.startsWith(`${prefix}/`));
    if (ours.length > 0) await exec('podman', ['rmi', ...ours]);
  }
  await rm(dir, { recursive: true, force: true });
}

async function openstack(...args: string[]): Promise<string> {
  const r = await exec('openstack', args, { cwd: dir, env: { OS_CLOUD: CLOUD } });
  if (r.exitCode !== 0) throw new Error(`openstack ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * server create until ACTIVE, and ACTIVE until SSH answers on the floating IP; then the dashboard
 * in a real browser, which must list that server.
 */
async function firstServer(node: CloudNode, dashboard: string, label: string): Promise<void> {
  const vm = await bootServer(openstack, dir, node, 'bench-vm');
  line('server create until ACTIVE', vm.activeSeconds);
  line('ACTIVE until SSH answers on the floating IP', vm.sshSeconds);
  const project = await openProject({ file, engine: label === 'podman' ? 'podman' : 'kubernetes' });
  const times = await checkDashboardWith(openstack, {
    url: dashboard,
    password: project.secrets.keystone_admin_password ?? '',
    server: 'bench-vm',
    label: `bench-${label}`,
  });
  line('dashboard: login page drawn, fresh browser', times.loginPageSeconds);
  line('dashboard: Sign In until Instances lists the server', times.loginToInstancesSeconds);
  line('dashboard: Launch until the instance is Active', times.launchToActiveSeconds);
  await deleteServer(openstack, 'bench-vm');
}

/**
 * A config change of one service (`debug` in its `conf`), applied by `up` while 8 clients send
 * requests to every API and the dashboard: how long `up` took, and what the clients felt.
 */
async function roll(
  service: string,
  conf: string,
  label: string,
  host: string,
  engine?: EngineChoice,
  lines: readonly string[] = [],
): Promise<void> {
  const project = await openProject({ file, engine: engine ? 'kubernetes' : 'podman' });
  const endpoints: Endpoint[] = [
    ...apiPorts(OFFSET).map((a) => ({
      type: a.type as Endpoint['type'],
      url: `http://${host}:${a.port}${a.path}`,
    })),
    { type: 'dashboard', url: dashboardUrl(host, OFFSET).replace(/\/$/, '') },
  ];
  const loop = clientLoop({
    endpoints,
    user: 'admin',
    password: project.secrets.keystone_admin_password ?? '',
    project: 'admin',
  });
  const yaml = (extra: string) =>
    [
      `name: ${CLOUD}`,
      `dataDir: ${join(dir, 'data')}`,
      ...lines,
      servicesYaml(OFFSET, { [service]: extra }),
    ].join('\n');
  let seconds = 0;
  try {
    await new Promise((r) => setTimeout(r, 5000));
    await writeFile(file, yaml(`    config:\n      ${conf}:\n        DEFAULT: {debug: true}`));
    [seconds] = await time(() =>
      up({ file, report: silent, installHostPackages: false, ...(engine ? { engine } : {}) }),
    );
    await new Promise((r) => setTimeout(r, 5000));
  } finally {
    const r = await loop.stop();
    await writeFile(file, yaml(''));
    line(
      `${label}: ${service} config roll under 8 clients`,
      seconds,
      `${r.requests} requests, ${r.failed} failed, longest gap a client saw ${r.longestGap.toFixed(2)} s`,
    );
  }
}

function runsOf(runs: readonly number[]): string {
  return `runs: ${runs.map((r) => r.toFixed(2)).join(', ')}`;
}

/** What adding a service cost: the commit that added its catalog file, by git's count. */
async function addingAService(name: string): Promise<void> {
  const log = await exec('git', ['log', '--format=%h', '--diff-filter=A', '--', `src/catalog/${name}.ts`], {
    cwd: root,
  });
  const commit = log.stdout.trim().split('\n').at(-1);
  if (!commit) return console.log(`adding ${name}: no commit adds src/catalog/${name}.ts`);
  const stat = await exec('git', ['show', '--stat', '--format=', commit], { cwd: root });
  const summary = stat.stdout.trim().split('\n').at(-1)?.trim();
  console.log(`${`adding ${name} (commit ${commit})`.padEnd(56)} ${summary}`);
  for (const l of stat.stdout.trim().split('\n').slice(0, -1)) console.log(`    ${l.trim()}`);
}

async function benchKubernetes(): Promise<void> {
  const { startCluster, stopCluster } = await import('../test/kube-cluster/cluster.js');
  const { ensureKubernetesBinaries } = await import('../test/kube-cluster/binaries.js');
  await ensureKubernetesBinaries(() => {});
  await stopCluster();
  // Podman's beside it, on the same machine with nothing else running: the target is a ratio.
  const podmanCold = await podmanColdUp();
  line('cold up on Podman until a token (images built), for the ratio', podmanCold);
  const [start, cluster] = await time(() => startCluster({ tier: 'full' }));
  line('test cluster up from cached binaries', start);
  await writeFile(
    file,
    [
      `name: ${CLOUD}`,
      `dataDir: ${join(dir, 'data')}`,
      `endpoints: {address: ${cluster.nodeIp}}`,
      `images: {prefix: ${cluster.registry}/podstack, tlsVerify: false}`,
      servicesYaml(OFFSET),
    ].join('\n'),
  );
  const engine = {
    name: 'kubernetes' as const,
    cluster: { kubeconfig: cluster.kubeconfig, namespace: 'podstack-bench' },
  };
  const project = await openProject({ file, engine: 'kubernetes' });
  await buildProject(project, silent);
  const { pushProject } = await import('../src/lifecycle/build.js');
  await pushProject(project, silent);
  try {
    const [cold] = await time(async () => {
      const r = await up({ file, report: silent, engine, installHostPackages: false });
      await writeOpenrc(r.project, dir);
      await issueToken();
      await uploadImage();
    });
    line('up --engine kubernetes until a token and an image upload (node pulls images)', cold);
    const runs: [number, number][] = [];
    for (let i = 0; i < 3; i++) {
      const [s, r] = await time(() => up({ file, report: silent, engine, installHostPackages: false }));
      runs.push([s, r.apply.written ?? -1]);
    }
    line(
      're-apply with nothing changed, in process',
      Math.min(...runs.map(([s]) => s)),
      `runs: ${runs.map(([s, w]) => `${s.toFixed(2)} s, ${w} written`).join('; ')}`,
    );
    const noop = await wholeProcess(['-f', file, 'up', '--engine', 'kubernetes', '--kubeconfig', cluster.kubeconfig, '-n', 'podstack-bench', '--no-install']); // biome-ignore format: one call
    line('podstack up --engine kubernetes, nothing changed, whole process (target < 2 s)', Math.min(...noop), runsOf(noop)); // biome-ignore format: one call
    // The same cloud again from nothing on a node that has its images: what a redeploy costs.
    const { engine: k8s } = await engineFor(project, engine);
    await k8s.destroy({ purge: true, report: silent });
    const [warm] = await time(async () => {
      await up({ file, report: silent, engine, installHostPackages: false });
      await issueToken();
    });
    line('up --engine kubernetes until a token (images on the node)', warm, `${(warm / podmanCold).toFixed(2)}x Podman's (target 1.5x)`); // biome-ignore format: one call
    const [computeUp] = await time(() => checkComputeUp(openstack));
    line('  then until a server can be booted (hypervisor up)', computeUp);
    await firstServer(
      kubernetesNode(cluster.kubeconfig, 'podstack-bench', CLOUD),
      dashboardUrl(cluster.nodeIp, OFFSET),
      'kubernetes',
    );
    await liveMigration(cluster.kubeconfig);
    const clusterLines = [
      `endpoints: {address: ${cluster.nodeIp}}`,
      `images: {prefix: ${cluster.registry}/podstack, tlsVerify: false}`,
    ];
    await roll('keystone', 'keystone.conf', 'kubernetes', cluster.nodeIp, engine, clusterLines);
    // The whole node: nova.conf's DEFAULT is in the node's copy too, so its DaemonSet makes the
    // node pod again (allowed: the bench's server is gone, no guest runs).
    await roll('nova', 'nova.conf', 'kubernetes', cluster.nodeIp, engine, clusterLines);
  } finally {
    const { engine: k8s } = await engineFor(await openProject({ file, engine: 'kubernetes' }), engine);
    await k8s.destroy({ purge: true, report: silent });
  }
}

/** The bench's cloud on Podman from nothing until a token, its images built; then gone again. */
async function podmanColdUp(): Promise<number> {
  const podmanFile = join(dir, 'podman.yaml');
  await writeFile(
    podmanFile,
    `name: ${CLOUD}\ndataDir: ${join(dir, 'podman-data')}\n${servicesYaml(OFFSET)}`,
  );
  const gone = async () =>
    (await engineFor(await openProject({ file: podmanFile }))).engine.destroy({
      purge: true,
      report: silent,
    });
  await buildProject(await openProject({ file: podmanFile }), silent);
  await gone();
  try {
    const [seconds] = await time(async () => {
      const r = await up({ file: podmanFile, report: silent, installHostPackages: false });
      await writeOpenrc(r.project, dir);
      await issueToken();
    });
    return seconds;
  } finally {
    await gone();
  }
}

/**
 * A second node joins the test cluster; a server booted on it live-migrates to the first node
 * while it runs (test/_two-nodes.ts checks what it keeps); the node then leaves for good.
 */
async function liveMigration(kubeconfig: string): Promise<void> {
  const { removeSecondNode, startCluster } = await import('../test/kube-cluster/cluster.js');
  const { checkLiveMigration, checkTwoHypervisors, forgetNode } = await import('../test/_two-nodes.js');
  const [joined, two] = await time(() => startCluster({ tier: 'full', nodes: 2 }));
  line('a second node joins the test cluster', joined);
  const [first, second] = two.nodes as [string, string];
  const node = (name: string) => kubernetesNode(kubeconfig, 'podstack-bench', CLOUD, name);
  try {
    const [hypervisor] = await time(() => checkTwoHypervisors({ openstack, names: [first, second] }));
    line('  then until it is a hypervisor and a chassis', hypervisor);
    const key = await makeKey(openstack, dir, 'bench-migrate-key');
    const vm = await bootServer(openstack, dir, node(second), 'bench-migrate', { key, host: second });
    const guest = { name: 'bench-migrate', fip: vm.fip, key: key.file };
    const m = await checkLiveMigration({ openstack, node, say: () => {} }, guest, second, first);
    line('live migration: migrate --live-migration --wait', m.seconds);
    line('  its floating IP unanswered (longest gap, pinged 5/s)', m.gap);
  } finally {
    await deleteServer(openstack, 'bench-migrate').catch(() => {});
    await removeSecondNode();
    await forgetNode(openstack, second).catch(() => {});
  }
}

/**
 * Block storage on Podman: the default cloud with Ceph and Cinder, then what a user waits for:
 * a volume made, attached until the guest sees the disk, and a server booted from a volume made
 * from the guest image until SSH answers.
 */
async function benchVolumes(): Promise<void> {
  await writeFile(
    file,
    `name: ${CLOUD}\ndataDir: ${join(dir, 'data')}\n${servicesYaml(OFFSET, {
      ceph: '    enabled: true\n    osdSize: 4Gi',
      cinder: '    enabled: true',
    })}`,
  );
  await destroy();
  try {
    const [cold] = await time(async () => {
      const r = await up({ file, report: silent, installHostPackages: false });
      await writeOpenrc(r.project, dir);
      await checkComputeUp(openstack);
    });
    line('cold up with Ceph and Cinder until a server can be booted', cold);
    const node = podmanNode(CLOUD);
    const vm = await bootServer(openstack, dir, node, 'bench-vm');
    const available = async (name: string) => {
      for (let i = 0; ; i++) {
        if (i >= 300) throw new Error('gave up after 300 tries');
        const status = (await openstack('volume', 'show', name, '-f', 'value', '-c', 'status')).trim();
        if (status === 'available') return;
        if (status === 'error') throw new Error(`volume ${name} went to error`);
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    const [created] = await time(async () => {
      await openstack('volume', 'create', '--size', '1', 'bench-v1');
      await available('bench-v1');
    });
    line('volume create --size 1 until available', created);
    const ssh = (script: string) => node.run('ssh', [...sshOptions(vm.key), `root@${vm.fip}`, script]);
    const [attached] = await time(async () => {
      await openstack('server', 'add', 'volume', 'bench-vm', 'bench-v1');
      for (let i = 0; ; i++) {
        if (i >= 300) throw new Error('gave up after 300 tries');
        const r = await ssh('cat /proc/partitions');
        if (r.exitCode === 0 && /\svdb$/m.test(r.output)) return;
        await new Promise((r) => setTimeout(r, 500));
      }
    });
    line('server add volume until the guest sees the disk', attached);
    const [booted] = await time(async () => {
      await openstack('volume', 'create', '--image', 'podstack-guest', '--size', '1', 'bench-boot');
      await available('bench-boot');
      await openstack(
        'server',
        'create',
        '--volume',
        'bench-boot',
        '--flavor',
        'm1.nano',
        '--network',
        'private',
        '--key-name',
        'bench-vm-key',
        '--wait',
        'bench-from-volume',
      );
      const fip = (
        await openstack('floating', 'ip', 'create', 'public', '-f', 'value', '-c', 'floating_ip_address')
      ).trim();
      await openstack('server', 'add', 'floating', 'ip', 'bench-from-volume', fip);
      for (let i = 0; ; i++) {
        if (i >= 300) throw new Error('gave up after 300 tries');
        const r = await node.run('ssh', [...sshOptions(vm.key), `root@${fip}`, 'true']);
        if (r.exitCode === 0) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
    line('volume from the guest image, boot from it, until SSH answers', booted);
  } finally {
    await destroy();
  }
}
