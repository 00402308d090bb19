import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import { hostLinkOf } from '../../src/engines/podman/host-link.js';
import { cloudSubnet, gatewayOf } from '../../src/engines/podman/network.js';
import { PODMAN_LABEL } from '../../src/engines/podman/translate.js';
import { UnitFailedError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/events.js';
import { ensurePackages } from '../../src/host/packages.js';
import { engineFor } from '../../src/lifecycle/engine.js';
import { openProject } from '../../src/lifecycle/project.js';
import type { HistoryEntry } from '../../src/lifecycle/revisions.js';
import { up } from '../../src/lifecycle/up.js';
import { systemdRuns } from '../../src/podman/boot.js';
import { backupPurgeRestore } from '../_backup.js';
import { BLOCK_STORAGE, checkCluster, checkImageSurvives, checkNoKeyIn, type InMon } from '../_ceph.js';
import {
  type Change,
  CONFIG_ROLLS,
  changesUnderLoad,
  keystoneImageVariant,
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
  cloudContainers,
  dashboardUrl,
  deleteServer,
  makeDiskImage,
  podmanNode,
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
import { checkExternalBridge, checkHostLink, checkHostLinkGone, routeIsTheLink } from '../_host-link.js';
import { keysRotateUnderTokens, type RotationHarness } from '../_key-rotation.js';
import { checkGuestSurvives, checkPartsComeBack, guestUptime, killPart } from '../_node-survival.js';
import { rollbackAcrossSchemaMove } from '../_schema-move.js';
import { imageRollSnapshots } from '../_snapshots.js';
import { runTempest, smokeOf, TEMPEST_PACKAGES, type TempestOptions } from '../_tempest.js';
import { checkGuestVolumes, checkVolumes } from '../_volumes.js';

/**
 * The default cloud, end to end, for real: podstack brings up every service of the catalog in
 * Podman, and the real openstack CLI uses it. A cloud of its own name and ports (each API on
 * its own port + 10200), so a developer's default cloud is left alone. Not + 10000: the dashboard
 * would be on 10080, which browsers refuse to open (the cloud file's schema says so).
 */
const CLOUD = 'podstack-e2e';
const OFFSET = 10200;
const root = new URL('../..', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;

let dir: string;
let file: string;
let disk: string;
/** Block storage (off by default) is turned on near the end: see BLOCK_STORAGE. */
let blockStorage = false;
/** The services section: each entry of `extra` adds lines under its service. */
const services = (extra: Record<string, string> = {}) =>
  servicesYaml(OFFSET, { ...(blockStorage ? BLOCK_STORAGE : {}), ...extra });
/** The test cloud's file; each entry of `extra` adds lines under its service. */
const cloudFile = (extra: Record<string, string> = {}) =>
  `name: ${CLOUD}\ndataDir: ${join(dir, 'data')}\n${services(extra)}`;
/** The test cloud's file; `keystone` adds lines under services.keystone. */
const cloudYaml = (keystone = '') => cloudFile({ keystone });

const events: ProgressEvent[] = [];
const report = (e: ProgressEvent) => {
  events.push(e);
  if (e.type !== 'unit' || e.state !== 'unchanged') process.stderr.write(`    ${JSON.stringify(e)}\n`);
};

// Resolved here, not by name: the CLI runs with the test's temporary folder as its
// working directory, where Node would look for tsx and not find it. And spawned as
// process.execPath, not `node`: nano-spawn gives a `node` child this process's own
// flags, which under the test runner include a bare `--import tsx`.
const tsxLoader = import.meta.resolve('tsx');

/**
 * The client loop (8 clients, as admin, on every public and internal endpoint and the dashboard)
 * while `changes` apply one after another, until it has sent `minRequests`.
 */
async function underLoad(changes: readonly Change[], minRequests: number) {
  const project = await openProject({ file, report });
  return changesUnderLoad({
    endpoints: loopEndpoints(
      await openstack('endpoint', 'list', '-f', 'json'),
      dashboardUrl('127.0.0.1', OFFSET),
    ),
    user: 'admin',
    password: project.secrets.keystone_admin_password ?? assert.fail('no admin password'),
    project: 'admin',
    changes,
    minRequests,
  });
}

/** Runs the podstack CLI from source, as a user would run it. */
const podstack = (...args: string[]) =>
  exec(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), '-f', file, ...args], {
    cwd: dir,
    env: { NODE_OPTIONS: '' },
  });

/** The openstack CLI with the credentials `podstack openrc` wrote (clouds.yaml in the cloud file's folder). */
async function openstack(...args: string[]) {
  const r = await exec('openstack', args, { cwd: dir, env: { OS_CLOUD: CLOUD } });
  assert.equal(r.exitCode, 0, `openstack ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** Tempest from the host against the test cloud, as its admin, at Keystone's public URL. */
async function tempestOnCloud(o: Pick<TempestOptions, 'cinder' | 'regex' | 'validation' | 'exclude'>) {
  const project = await openProject({ file });
  const args = ['--service', 'identity', '--interface', 'public', '-f', 'value', '-c', 'URL'];
  return runTempest({
    dir,
    openstack,
    authUrl: (await openstack('endpoint', 'list', ...args)).trim(),
    adminPassword: project.secrets.keystone_admin_password ?? assert.fail('no admin password'),
    ...o,
  });
}

/** Container name -> ID of every container of the test cloud. */
const containers = () => cloudContainers(CLOUD);

/** Ceph's CLI in the monitor's container, as the monitor itself. */
const inMon: InMon = async (argv) => {
  const r = await exec('podman', ['exec', `${CLOUD}-ceph-mon-ceph-mon`, ...argv]);
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
};

async function volumes(): Promise<string[]> {
  const r = await exec('podman', [
    'volume',
    'ls',
    '-q',
    '--filter',
    `label=app.kubernetes.io/instance=${CLOUD}`,
  ]);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** The cloud's data volumes: its volumes but the pods' scratch space (emptyDirs), which goes with the pods. */
async function dataVolumes(): Promise<string[]> {
  const r = await exec('podman', [
    'volume',
    'ls',
    '--format',
    'json',
    '--filter',
    `label=app.kubernetes.io/instance=${CLOUD}`,
  ]);
  assert.equal(r.exitCode, 0, r.output);
  const all = JSON.parse(r.stdout || '[]') as { Name: string; Labels?: Record<string, string> }[];
  return all
    .filter((v) => !v.Labels?.[PODMAN_LABEL.scratch])
    .map((v) => v.Name)
    .sort();
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * Runs `check` with `keystone` lines in the cloud file (a broken Keystone), then puts the file
 * back and brings Keystone up again, also when the check failed: the tests after it need a cloud.
 */
async function withKeystoneConfig(keystone: string, check: () => Promise<void>): Promise<void> {
  await writeFile(file, cloudYaml(keystone));
  try {
    await check();
  } finally {
    await writeFile(file, cloudYaml());
    await up({ file, report, installHostPackages: false });
    await openstack('token', 'issue');
  }
}

/** Host programs in the hypervisor node pod's network namespace, where the floating IPs answer. */
const node = podmanNode(CLOUD);
let server: { fip: string; key: string } | undefined;

/**
 * Applies a change that replaces nova's conductor and scheduler (new beside old, the old one
 * finishing its calls) while the old conductor is in the middle of a call: a server's build,
 * waiting on a scheduler that is paused until the old conductor has been told to stop. A
 * conductor stopped without finishing its call loses the build (the server stays in BUILD); a
 * graceful one gets the scheduler's answer, hands the build on, and the server goes ACTIVE.
 * nova-compute must stay (its restart cuts builds off).
 */
async function workersRollWithBuild(imagesDir?: string): Promise<void> {
  const scheduler = `${CLOUD}-nova-scheduler-nova-scheduler`;
  let paused = true;
  const unpause = async () => {
    if (!paused) return;
    paused = false;
    await exec('podman', ['unpause', scheduler]);
  };
  const pause = await exec('podman', ['pause', scheduler]);
  assert.equal(pause.exitCode, 0, pause.output);
  let id = '';
  let createdAt = 0;
  // What up did when, from the create on: a failure says which replacement met the build.
  const timeline: string[] = [];
  let unpauseAt: Promise<void> | undefined;
  const watch = (e: ProgressEvent) => {
    report(e);
    if (e.type === 'unit')
      timeline.push(
        `${((Date.now() - createdAt) / 1000).toFixed(1)}s ${e.unit} ${e.state} ${e.detail ?? ''}`,
      );
    // The new conductor is up; the old one is told to stop 5 s later, holding the build. The
    // scheduler answers 3 s after that: within the old conductor's grace, and before the
    // scheduler's own replacement can stop it.
    if (!unpauseAt && e.type === 'unit' && e.unit === 'nova-conductor' && e.state === 'waiting')
      unpauseAt = new Promise((resolve) => setTimeout(resolve, 8000)).then(unpause);
  };
  try {
    createdAt = Date.now();
    id = (
      await openstack(
        ...['server', 'create', '--image', 'podstack-guest', '--flavor', 'm1.nano', '--network', 'private'],
        ...['-f', 'value', '-c', 'id', 'during-roll'],
      )
    ).trim();
    // The only conductor takes the build request and calls the paused scheduler.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const r = await up({
      file,
      report: watch,
      installHostPackages: false,
      ...(imagesDir ? { imagesDir } : {}),
    });
    await unpauseAt;
    for (const unit of ['nova-api', 'nova-conductor', 'nova-scheduler'])
      assert.ok(r.apply.changed.includes(unit), r.apply.changed.join(' '));
    assert.ok(!r.apply.changed.includes('nova-compute'), r.apply.changed.join(' '));
    assert.ok(unpauseAt, 'nova-conductor was not replaced beside the old one');
    await until('the server whose build the old conductor held to be ACTIVE', 60, 2000, async () => {
      const status = (await openstack('server', 'show', id, '-f', 'value', '-c', 'status')).trim();
      if (status === 'ERROR')
        assert.fail(
          `the server built during the workers' roll went to ERROR:\n${await openstack('server', 'show', id, '-f', 'json', '-c', 'fault', '-c', 'OS-EXT-SRV-ATTR:host')}\n` +
            `what up did after the create:\n  ${timeline.join('\n  ')}`,
        );
      return status === 'ACTIVE'
        ? undefined
        : `${status}; what up did after the create:\n  ${timeline.join('\n  ')}`;
    });
    console.log(
      `    a build held by the old conductor through the workers' roll: ACTIVE after ${((Date.now() - createdAt) / 1000).toFixed(1)}s`,
    );
  } finally {
    await unpause();
    // A failed cleanup must not hide why the roll failed: it is only printed.
    if (id)
      await deleteServer(openstack, 'during-roll').catch((e: unknown) =>
        console.log(`    cleanup of during-roll: ${(e as Error).message}`),
      );
  }
}

describe('the default cloud on podman, end to end', {
  skip: isRoot ? false : 'needs root (rootful Podman)',
}, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podstack-e2e-'));
    file = join(dir, 'cloud.yaml');
    await writeFile(file, cloudYaml());
    await ensurePackages([...CHECK_PACKAGES, ...BROWSER_PACKAGES, ...TEMPEST_PACKAGES], report);
    disk = await makeDiskImage(dir);
    // A cloud left behind by an interrupted run would make the first assertions lie.
    await podstack('down', '--purge');
  });

  after(async () => {
    if (process.env.PODSTACK_E2E_KEEP) return;
    await podstack('down', '--purge');
    await rm(dir, { recursive: true, force: true });
  });

  it('up brings up a cloud the openstack CLI uses: tokens, projects, images, placement', async () => {
    const start = process.hrtime.bigint();
    const r = await up({ file, report });
    console.log(
      `    up (cold, images ${r.build.built.length > 0 ? 'built' : 'cached'}): ${seconds(start).toFixed(1)}s`,
    );
    assert.equal(r.apply.unchanged.length, 0);
    // A first server can be scheduled as soon as `up` returns: the node is mapped to its cell
    // (not only after the scheduler's next discovery, up to 30 s later).
    const hosts = await exec('podman', [
      'exec',
      '--user',
      'nova',
      `${CLOUD}-nova-conductor-nova-conductor`,
      'nova-manage',
      'cell_v2',
      'list_hosts',
    ]);
    assert.match(
      hosts.stdout,
      / cell1 /,
      `no compute node is mapped to cell1 when up returns:\n${hosts.output}`,
    );
    // Said once: whether the cloud comes back after a reboot (this host may have no systemd).
    const boot = events.filter((e) => e.type === 'warning' && /systemd/.test(e.message));
    assert.equal(boot.length, systemdRuns() ? 0 : 1, JSON.stringify(boot));
    assert.deepEqual(
      r.endpoints.map((e) => e.url),
      publishedUrls('127.0.0.1', OFFSET),
    );
    const openrc = await podstack('openrc');
    assert.equal(openrc.exitCode, 0, openrc.stderr);
    for (const f of ['admin-openrc.sh', 'clouds.yaml', 'secrets.yaml']) {
      assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, `${f} must be private`);
    }
    const token = JSON.parse(await openstack('token', 'issue', '-f', 'json'));
    assert.match(token.id, /^gAAAAA/); // a Fernet token
    await openstack('project', 'create', 'demo', '--description', 'made by the e2e test');
    await openstack('user', 'create', '--project', 'demo', '--password', 'alice-pw', 'alice');
    const projects = JSON.parse(await openstack('project', 'list', '-f', 'json')) as { Name: string }[];
    assert.ok(projects.some((p) => p.Name === 'demo'));
    await checkCatalog(openstack, '127.0.0.1', OFFSET);
    await uploadImage(openstack, disk, 'e2e-disk');
    await checkImageBytes(openstack, dir, disk, 'e2e-disk');
    await checkPlacement(openstack);
    const check = await exec('podman', [
      'exec',
      `${CLOUD}-placement-api-placement-api`,
      'placement-status',
      'upgrade',
      'check',
    ]);
    assert.equal(check.exitCode, 0, check.output);
  });

  it('a server boots from the starter image, takes its address by DHCP, and answers ping and SSH on its floating IP', async () => {
    // What `up` made for a first server (the starter Job), found by name.
    for (const [kind, name] of [
      ['image', 'podstack-guest'],
      ['flavor', 'm1.nano'],
      ['network', 'public'],
      ['network', 'private'],
      ['router', 'router1'],
    ] as const)
      await openstack(kind, 'show', name, '-f', 'json');
    await checkComputeUp(openstack);
    const vm = await bootServer(openstack, dir, node, 'vm1');
    console.log(
      `    server create to ACTIVE: ${vm.activeSeconds.toFixed(1)}s; ACTIVE to SSH answering: ${vm.sshSeconds.toFixed(1)}s`,
    );
    server = vm;
    // libvirtd chose the virtualisation type by booting a guest under KVM, and said which.
    const libvirt = await exec('podman', ['logs', `${CLOUD}-nova-compute-libvirt`]);
    assert.match(libvirt.output, /podstack-virt-type: (kvm|qemu): /);
  });

  it('a floating IP answers ping and SSH from the host, through the link up made to the external network; a guest opens no connection to the host through it, and nothing is forwarded', async () => {
    assert.ok(server, 'the server of the previous test did not boot');
    const project = await openProject({ file });
    const printed = await checkHostLink({
      openstack,
      cloud: CLOUD,
      link: hostLinkOf(CLOUD, project.spec.network.external),
      guest: server,
      otherHostAddress: gatewayOf(cloudSubnet(CLOUD, project.spec.network.subnet)),
      up: async () => {
        await up({ file, report, installHostPackages: false });
      },
    });
    console.log(`    ${printed}`);
  });

  it('with network.externalBridge the floating IPs are on a bridge of the host’s: the host link is its port, with no address or fence, and br-ex has none; the running guest answers ping and SSH from the host through the bridge; without it, all back', async () => {
    assert.ok(server, 'the server of the first server test did not boot');
    const project = await openProject({ file });
    const printed = await checkExternalBridge({
      cloud: CLOUD,
      link: hostLinkOf(CLOUD, project.spec.network.external),
      node,
      guest: { name: 'vm1', ...server },
      upWith: async (bridge) => {
        await writeFile(file, `${cloudYaml()}${bridge ? `\nnetwork: {externalBridge: ${bridge}}\n` : ''}`);
        await up({ file, report, installHostPackages: false });
      },
    });
    console.log(`    ${printed}`);
  });

  it('the dashboard, in a browser: log in, see the server, launch an instance, open its console, log out', async () => {
    const project = await openProject({ file, report });
    const times = await checkDashboardWith(openstack, {
      url: dashboardUrl('127.0.0.1', OFFSET),
      password: project.secrets.keystone_admin_password ?? assert.fail('no admin password'),
      server: 'vm1',
      label: 'podman',
    });
    console.log(`    dashboard: ${JSON.stringify(times)}`);
  });

  it('every guest gets its network: one after another and many at once, each to its lease, ping and SSH', async () => {
    await soakGuests(openstack, dir, node, { prefix: 'soak', label: 'podman', ...GUEST_COUNTS });
  });

  let kept: Guest[] = [];
  it('the node pod made again as up makes it, with guests running: each time every guest runs and answers SSH again', async () => {
    kept = await bootGuests(openstack, dir, node, 'keep', 3);
    await checkNodeRecreated(openstack, node, kept, {
      label: 'podman',
      times: GUEST_COUNTS.recreate,
      recreate: async () => {
        // Gone, as after a crash or a `podman pod rm`: up makes it again, as for a changed pod.
        const rm = await exec('podman', ['pod', 'rm', '-f', `${CLOUD}-nova-compute`]);
        assert.equal(rm.exitCode, 0, rm.output);
        await up({ file, report, installHostPackages: false });
      },
    });
  });

  /** Why the node's unit is not ready in `podstack status`, or undefined when it is. */
  const nodeUnhealthy = async () => {
    const r = await podstack('status', '-o', 'json');
    const units = (JSON.parse(r.stdout) as { units: { unit: string; state: string; reason?: string }[] })
      .units;
    const compute = units.find((u) => u.unit === 'nova-compute');
    return compute?.state === 'ready' ? undefined : `${compute?.state}: ${compute?.reason}`;
  };

  it("a guest's tap that is down makes the node not ready in status, naming the port", async () => {
    const guest = kept[2];
    assert.ok(guest, 'the guests of the previous test did not boot');
    await checkDownPortIsSeen(openstack, node, guest, {
      unitReason: nodeUnhealthy,
      wording: (tap) => new RegExp(`not-ready: .*administratively down.*${tap}`),
    });
  });

  it('a guest keeps running through a nova-compute config change and a SIGKILL of ovn-controller, nova-compute, libvirtd and ovs-vswitchd', async () => {
    const guest = kept[0];
    assert.ok(guest, 'the guests of an earlier test did not boot');
    const nodeContainers = async () =>
      Object.fromEntries(
        Object.entries(await containers()).filter(([n]) => n.startsWith(`${CLOUD}-nova-compute-`)),
      );
    await checkGuestSurvives(node, guest, {
      label: 'podman',
      change: async () => {
        // There and back: nova.conf's debug on, then off again, each an `up`.
        for (const nova of ['    config:\n      nova.conf:\n        DEFAULT:\n          debug: true', '']) {
          const before = await nodeContainers();
          await writeFile(file, cloudFile({ nova }));
          const r = await up({ file, report, installHostPackages: false });
          assert.ok(r.apply.changed.includes('nova-compute'), r.apply.changed.join(' '));
          const after = await nodeContainers();
          const replaced = Object.keys(after).filter((n) => after[n] !== before[n]);
          assert.deepEqual(replaced, [`${CLOUD}-nova-compute-nova-compute`], 'only nova-compute is replaced');
        }
      },
    });
  });

  it('every node part killed twice in a row comes back by itself; the guest keeps running; status is healthy within a minute, with no up', async () => {
    const guest = kept[0];
    assert.ok(guest, 'the guests of an earlier test did not boot');
    await checkPartsComeBack(node, guest, { label: 'podman', kills: 2, unhealthy: nodeUnhealthy });
  });

  it('up repairs what status calls failed: a crash-looping metadata agent is replaced alone, and up exits 0 once it is healthy', async () => {
    const guest = kept[0];
    assert.ok(guest, 'the guests of an earlier test did not boot');
    const agent = `${CLOUD}-nova-compute-ovn-metadata-agent`;
    // Parts an earlier test killed count as crashing until they have run a minute: up would
    // rightly replace them too, and this test would not say what it is about.
    await until('the node healthy before the agent breaks', 90, 1000, nodeUnhealthy);
    const uptime = await guestUptime(node, guest);
    const since = Date.now();
    // A file it needs, gone from its container: every restart of it fails, as after the crash
    // series of issue 16 (there: a stale namespace name).
    const rm = await exec('podman', ['exec', agent, 'rm', '/usr/bin/neutron-ovn-metadata-agent']);
    assert.equal(rm.exitCode, 0, rm.output);
    await killPart(node, 'neutron-ovn-met');
    await until('status to call the node failed', 60, 1000, async () => {
      const why = await nodeUnhealthy();
      return why?.startsWith('failed') ? undefined : `status says ${why ?? 'ready'}`;
    });
    const before = await containers();
    const r = await up({ file, report, installHostPackages: false });
    assert.deepEqual(r.apply.changed, ['nova-compute']);
    const after = await containers();
    const replaced = Object.keys(after).filter((n) => after[n] !== before[n]);
    assert.deepEqual(replaced, [agent]);
    assert.equal(await nodeUnhealthy(), undefined, 'up returned before the node was healthy');
    const now = await guestUptime(node, guest);
    assert.ok(
      now >= uptime + (Date.now() - since) / 1000 - 5,
      `the guest restarted: ${uptime}s, then ${now}s`,
    );
    // The new agent made its namespace and veth again: the guest reaches the metadata service
    // through them (the switch once kept reading the old veth, and no guest booted after a
    // repair got its SSH key).
    await until(`${guest.name} reaches the metadata service`, 30, 1000, async () => {
      const r = await node.run('ssh', [
        ...sshOptions(guest.key),
        `root@${guest.fip}`,
        'timeout 5 wget -q -O - http://169.254.169.254/latest/meta-data/hostname',
      ]);
      return r.exitCode === 0 && r.output.includes(guest.name)
        ? undefined
        : r.output.slice(-200) || `exit ${r.exitCode}`;
    });
  });

  it('a floating IP moves to another server, and a router interface goes, without errors or stale MAC bindings', async () => {
    const [from, to] = kept;
    assert.ok(from && to, 'the guests of the previous test did not boot');
    await checkFloatingIpAndRouterInterface(openstack, node, from, to);
    // `to` now has `from`'s address; its own was deleted.
    await deleteGuests(openstack, [{ ...to, fip: from.fip }]);
    await deleteGuests(openstack, kept.slice(2));
    await openstack('server', 'delete', '--wait', from.name);
  });

  it('internal and admin endpoints answer from the host too', async () => {
    await checkInternalFromHost(openstack);
  });

  it('the openrc file works as well as clouds.yaml', async () => {
    const r = await exec('bash', ['-c', 'source ./admin-openrc.sh && openstack token issue -f value -c id'], {
      cwd: dir,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^gAAAAA/);
  });

  it('up again with nothing changed restarts nothing', async () => {
    const before = await containers();
    const start = process.hrtime.bigint();
    const r = await up({ file, report, installHostPackages: false });
    console.log(`    up (nothing changed): ${seconds(start).toFixed(2)}s`);
    assert.deepEqual(r.apply.changed, []);
    assert.deepEqual(await containers(), before);
  });

  it('status reports every unit healthy, from the CLI, as JSON', async () => {
    const r = await podstack('status', '-o', 'json');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const status = JSON.parse(r.stdout) as { units: { unit: string; state: string }[] };
    for (const u of status.units)
      assert.ok(['ready', 'completed', 'applied'].includes(u.state), `${u.unit}: ${u.state}`);
    const project = await openProject({ file });
    assert.deepEqual(status.units.map((u) => u.unit).sort(), project.plan.units.map((u) => u.name).sort());
  });

  it("a config change to every API server with a new Keystone image, nova's with a build held by its old conductor, and all back at once, roll with no failed request, public or internal, under 8 clients", async () => {
    const write = (extra: Record<string, string>) => writeFile(file, cloudFile(extra));
    // Three ups, each rolling several services at once, as an upgrade does: every API server but
    // nova's with its own config changed and Keystone on a new image (its bootstrap Jobs run
    // again); then nova's services, whose conductor and scheduler are replaced while a server is
    // being created (workersRollWithBuild), the node's nova-compute staying, and the build needing
    // the new neutron-server to handle OVN's events (the port going ACTIVE: a roll once left it
    // deaf to them); then everything back to the packaged image and the first config. That only
    // the touched services roll is the plan test's; this one is about the requests.
    const variant = await keystoneImageVariant(
      dir,
      async (imagesDir) =>
        (await openProject({ file, ...(imagesDir ? { imagesDir } : {}) })).imageRefs.keystone!,
    );
    const notNova = CONFIG_ROLLS.filter(([service]) => service !== 'nova');
    const changed: Record<string, string> = Object.fromEntries(
      notNova.map(([service, , change]) => [service, change]),
    );
    const forward: Change = {
      name: `${notNova.map(([service]) => service).join(', ')} and a new keystone image`,
      apply: async () => {
        await write(changed);
        const r = await up({ file, report, installHostPackages: false, imagesDir: variant.imagesDir });
        assert.deepEqual(r.build.built, ['keystone']);
        for (const [, unit] of notNova) assert.ok(r.apply.changed.includes(unit), r.apply.changed.join(' '));
      },
    };
    const nova: Change = {
      name: 'nova with a build held',
      apply: async () => {
        changed.nova = CONFIG_ROLLS.find(([service]) => service === 'nova')![2];
        await write(changed);
        await workersRollWithBuild(variant.imagesDir);
      },
    };
    const allBack: Change = {
      name: 'all back at once',
      apply: async () => {
        await write({});
        const r = await up({ file, report, installHostPackages: false });
        for (const [, unit] of CONFIG_ROLLS)
          assert.ok(r.apply.changed.includes(unit), r.apply.changed.join(' '));
        await variant.remove();
      },
    };
    // A listener killed as the OOM killer would: it binds the port again, and the server,
    // which holds the old socket, restarts onto the new one; nothing hangs on a socket no one serves.
    const killListener: Change = {
      name: 'keystone listener killed',
      apply: async () => {
        const listener = `${CLOUD}-keystone-api-keystone-api-listener`;
        const keystoneServer = `${CLOUD}-keystone-api-keystone-api`;
        const restarts = async () =>
          (
            JSON.parse((await exec('podman', ['inspect', '--format', 'json', keystoneServer])).stdout) as {
              RestartCount: number;
            }[]
          )[0]?.RestartCount ?? 0;
        const restarted = await restarts();
        const pid = (await exec('podman', ['inspect', '--format', '{{.State.Pid}}', listener])).stdout.trim();
        await exec('kill', ['-KILL', pid]);
        await until("keystone's server restarted onto the new listener", 120, 500, async () =>
          (await restarts()) > restarted ? undefined : 'not yet',
        );
        await until('keystone answers', 120, 500, async () =>
          (await fetch(`http://127.0.0.1:${5000 + OFFSET}/v3`).catch(() => undefined))?.ok
            ? undefined
            : 'not yet',
        );
      },
    };
    const { result, summary } = await underLoad([forward, nova, allBack, killListener], MIN_REQUESTS);
    console.log(`    api rolls (${summary}`);
    assert.equal(result.failed, 0, result.failures.join('\n'));
  });

  it('an invalid cloud file is refused with exit code 2 and nothing changes', async () => {
    const good = await readFile(file, 'utf8');
    const before = await containers();
    await writeFile(file, cloudYaml('    enabeld: true'));
    const r = await podstack('up', '--no-install');
    await writeFile(file, good);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, /services\.keystone\.enabeld: unknown key; did you mean "enabled"\?/);
    assert.deepEqual(await containers(), before);
  });

  it('plan shows a config change before up applies it; only the services it touches restart', async () => {
    const before = await containers();
    await writeFile(
      file,
      cloudYaml('    config:\n      keystone.conf:\n        DEFAULT:\n          debug: true'),
    );
    const plan = await podstack('plan', '-o', 'json');
    assert.equal(plan.exitCode, 0, plan.stderr);
    const actions = Object.fromEntries(
      (JSON.parse(plan.stdout) as { units: { name: string; action: string }[] }).units.map((u) => [
        u.name,
        u.action,
      ]),
    );
    assert.equal(actions['keystone-api'], 'update');
    assert.equal(actions['keystone-config'], 'update');
    // No bootstrap Job runs again for a config change: their inputs did not change.
    for (const unit of Object.keys(actions).filter((u) => u !== 'keystone-api' && u !== 'keystone-config'))
      assert.equal(actions[unit], 'unchanged', unit);

    const r = await up({ file, report, installHostPackages: false });
    assert.deepEqual([...r.apply.changed].sort(), ['keystone-api', 'keystone-config']);
    for (const infra of ['mariadb', 'memcached', 'rabbitmq'])
      assert.ok(r.apply.unchanged.includes(infra), infra);
    const afterIds = await containers();
    for (const infra of ['mariadb', 'memcached', 'rabbitmq']) {
      const name = `${CLOUD}-${infra}-${infra}`;
      assert.equal(afterIds[name], before[name], `${infra} was restarted`);
    }
    assert.notEqual(
      afterIds[`${CLOUD}-keystone-api-keystone-api`],
      before[`${CLOUD}-keystone-api-keystone-api`],
    );
    await openstack('token', 'issue');
  });

  it('a unit that fails is named, with the last lines of its log', async () => {
    await withKeystoneConfig(
      '    config:\n      keystone-uwsgi.ini:\n        uwsgi:\n          wsgi-file: /nonexistent/keystone.wsgi',
      async () => {
        await assert.rejects(
          up({ file, report, installHostPackages: false, readyTimeout: 20 }),
          (err: unknown) => {
            assert.ok(err instanceof UnitFailedError, String(err));
            assert.equal(err.unit, 'keystone-api');
            assert.match(err.message, /keystone-api/);
            assert.ok(err.logTail.length > 0, 'no log lines');
            return true;
          },
        );
      },
    );
  });

  it('status reports a service that keeps crashing as failed, with its last log lines, and exits 3; up repairs it', async () => {
    // A broken config no longer breaks a running API (its new generation never replaces it), so
    // break the container itself: its server's program gone, every restart fails.
    const api = `${CLOUD}-keystone-api-keystone-api`;
    const rm = await exec('podman', ['exec', api, 'rm', '/usr/bin/uwsgi_python3']);
    assert.equal(rm.exitCode, 0, rm.output);
    // From the host, as a crash: `podman kill` would be a stop, which Podman does not undo.
    const pid = await exec('podman', ['inspect', '--format', '{{.State.Pid}}', api]);
    process.kill(Number(pid.stdout.trim()), 'SIGKILL');
    let repaired: Awaited<ReturnType<typeof up>> | undefined;
    try {
      // Until it has crashed often enough to be crash-looping: right after the kill it is only
      // `exited` (failed too, but not yet what `up` repairs without a change).
      let status = await podstack('status');
      for (
        let i = 0;
        i < 30 && !/keystone-api\s+deployment\s+failed\s+.*keeps exiting/.test(status.stdout);
        i++
      ) {
        await new Promise((r) => setTimeout(r, 1000));
        status = await podstack('status');
      }
      assert.equal(status.exitCode, 3, status.stdout + status.stderr);
      assert.match(
        status.stdout,
        /keystone-api\s+deployment\s+failed\s+.*keeps exiting \(restarted \d+ times/,
      );
      // Its own words, under the unit, even when Podman has started it again.
      assert.match(status.stdout, /\n {4}\| .*uwsgi_python3/);
      const json = await podstack('status', '-o', 'json');
      assert.equal(json.exitCode, 3);
    } finally {
      // The plan is unchanged, yet up replaces what is broken, and returns once it serves again
      // (also when a check above failed: the tests after this one need Keystone).
      repaired = await up({ file, report, installHostPackages: false });
    }
    assert.deepEqual(repaired.apply.changed, ['keystone-api']);
    const healthy = await podstack('status');
    assert.equal(healthy.exitCode, 0, healthy.stdout);
    await openstack('token', 'issue');
  });

  it('history says what each up changed, in words: config options, images, a failed up and why, a repair', async () => {
    const r = await podstack('history', '-o', 'json');
    assert.equal(r.exitCode, 0, r.stderr);
    const project = await openProject({ file });
    for (const value of Object.values(project.secrets))
      assert.ok(!r.stdout.includes(value), 'a secret value');
    const entries = (JSON.parse(r.stdout) as { revisions: HistoryEntry[] }).revisions;
    const has = (words: string | RegExp) =>
      entries.find((e) => e.changes.some((c) => (typeof words === 'string' ? c === words : words.test(c))));
    assert.deepEqual(entries[0]?.changes, ['first install']);
    assert.ok(has('keystone.conf DEFAULT.debug (added)'), JSON.stringify(entries));
    assert.ok(has('keystone.conf DEFAULT.debug (removed)'), JSON.stringify(entries));
    assert.ok(has('nova.conf conductor.workers (added)'), JSON.stringify(entries));
    assert.ok(has(/^image keystone [0-9a-f]{7} -> [0-9a-f]{7}$/), JSON.stringify(entries));
    const failed = has('keystone-uwsgi.ini uwsgi.wsgi-file (added)');
    assert.equal(failed?.status, 'failed');
    assert.match(failed?.error ?? '', /keystone-api/);
    const last = entries.at(-1);
    assert.deepEqual([last?.status, last?.changes], ['deployed', ['repaired keystone-api']]);
    assert.ok(
      entries.slice(0, -1).every((e) => ['superseded', 'failed'].includes(e.status)),
      r.stdout,
    );
    const text = await podstack('history');
    assert.match(text.stdout, /^\d+ +\S+ \S+ +deployed +repaired keystone-api$/m);
    // An up that changed many options names the first few and counts the rest.
    assert.match(text.stdout, /, and \d+ more, snapshot keystone \(\d+ KiB; schema unchanged\)/);
    assert.match(text.stdout, /^snapshots: \d+ kept, /m);
    const seen = await imageRollSnapshots(
      entries,
      async (script) =>
        (await exec('podman', ['exec', `${CLOUD}-mariadb-mariadb`, 'sh', '-ec', script])).stdout,
    );
    console.log(`    snapshots: ${seen}`);
  });

  it('rollback returns to a revision under a client loop: its config rolled back with no failed request, and its cloud file; refused where data would not read back', async () => {
    const revisions = async () =>
      (
        JSON.parse((await podstack('history', '-o', 'json')).stdout) as {
          revisions: { revision: number; status: string; changes: string[] }[];
        }
      ).revisions;
    const back = (await revisions()).at(-1)!.revision;
    const original = await readFile(file, 'utf8');
    await writeFile(
      file,
      cloudYaml('    config:\n      keystone.conf:\n        DEFAULT:\n          debug: true'),
    );
    await up({ file, report, installHostPackages: false });
    const keystoneConf = async () =>
      (
        await exec('podman', [
          'exec',
          `${CLOUD}-keystone-api-keystone-api`,
          'cat',
          '/etc/keystone/keystone.conf',
        ])
      ).stdout;
    assert.match(await keystoneConf(), /^debug = true$/m);
    const count = (await revisions()).length;

    const dry = await podstack('rollback', String(back), '--dry-run');
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /would undo: keystone\.conf DEFAULT\.debug \(removed\); units: .*keystone-api/);
    assert.equal((await revisions()).length, count, 'a dry run made a revision');
    assert.match(await readFile(file, 'utf8'), /debug: true/, 'a dry run changed the cloud file');

    let took = '';
    const { result, summary } = await underLoad(
      [
        {
          name: 'rollback',
          apply: async () => {
            const r = await podstack('rollback', String(back));
            assert.equal(r.exitCode, 0, r.stdout + r.stderr);
            took = r.stdout.trim();
          },
        },
      ],
      0,
    );
    console.log(`    ${took}\n    under the loop: ${summary}`);
    assert.equal(result.failed, 0, result.failures.join('\n'));
    assert.doesNotMatch(await keystoneConf(), /^debug = true$/m);
    const last = (await revisions()).at(-1);
    assert.deepEqual(
      [last?.status, last?.changes],
      ['deployed', [`rolled back to ${back}`, 'keystone.conf DEFAULT.debug (removed)']],
    );
    // The cloud file is the revision's again: up has nothing to do.
    assert.equal(await readFile(file, 'utf8'), original);
    const plan = await podstack('plan', '-o', 'json');
    const actions = (JSON.parse(plan.stdout) as { units: { name: string; action: string }[] }).units.filter(
      (u) => u.action !== 'unchanged',
    );
    assert.deepEqual(actions, []);
    await openstack('token', 'issue');

    // Refused, exit code 2, nothing changed: no such revision, one that failed, and one across
    // the Keystone image test (its db-sync ran with another image since).
    const all = await revisions();
    const failed = all.find((e) => e.status === 'failed')!.revision;
    const image = all.find((e) => e.changes.some((c) => c.startsWith('image keystone')))!.revision;
    // Back to the test image crosses keystone-db-sync: the snapshots say the schema did not move
    // (MariaDB is asked where it stands now), so only the image, gone from the host, stops it.
    for (const [n, why] of [
      [9999, /there is no revision 9999/],
      [failed, /never deployed \(it failed\)/],
      [
        image,
        /keystone-db-sync changed since revision \d+, but no schema moved \(keystone\)[\s\S]*ran image that this host no longer has: keystone/,
      ],
    ] as const) {
      const r = await podstack('rollback', String(n));
      assert.equal(r.exitCode, 2, `rollback ${n}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, why);
    }
    assert.equal((await revisions()).length, all.length);
    assert.equal(await readFile(file, 'utf8'), original);
  });

  it('rollback across a schema that moved puts back the snapshot taken before it, after naming what it loses: refused without --yes, then the old schema, image and data', async () => {
    const keystoneApi = `${CLOUD}-keystone-api-keystone-api`;
    const measured = await rollbackAcrossSchemaMove(dir, {
      podstack,
      upWith: (imagesDir) =>
        up({ file, report, installHostPackages: false, ...(imagesDir ? { imagesDir } : {}) }),
      keystoneRef: async (imagesDir) =>
        (await openProject({ file, ...(imagesDir ? { imagesDir } : {}) })).imageRefs.keystone!,
      keystoneRuns: async () =>
        (await exec('podman', ['inspect', '--format', '{{.Image}}', keystoneApi])).stdout.trim(),
      openstack,
      inMariadb: async (script) => {
        const r = await exec('podman', ['exec', `${CLOUD}-mariadb-mariadb`, 'sh', '-ec', script]);
        assert.equal(r.exitCode, 0, r.stderr);
        return r.stdout;
      },
      removeImage: async (ref) => {
        await exec('podman', ['rmi', ref]);
      },
    });
    console.log(`    ${measured}`);
  });

  it('keys rotate with no token refused: 5 Fernet rotations and a credential rotation by hand under token clients, an EC2 secret reads back, and an old key 0 rotates by the schedule', async () => {
    const rotator = `${CLOUD}-keystone-key-rotation-rotate`;
    const inRotator = async (script: string) => {
      const r = await exec('podman', ['exec', rotator, 'sh', '-ec', script]);
      assert.equal(r.exitCode, 0, `${script}: ${r.stderr}`);
      return r.stdout;
    };
    const project = await openProject({ file });
    const r = await keysRotateUnderTokens({
      password: project.secrets.keystone_admin_password!,
      rotate: async (kind) => {
        const out = await podstack('rotate-keys', kind, '-o', 'json');
        assert.equal(out.exitCode, 0, out.stderr);
        return JSON.parse(out.stdout) as Awaited<ReturnType<RotationHarness['rotate']>>;
      },
      inRotator,
      openstack,
    });
    console.log(`    key rotation: ${r.summary}`);
    assert.equal(r.failed, 0, r.failures.join('\n'));
  });

  it('MariaDB killed in the middle of writes comes back with its data; Keystone reconnects without a restart', async () => {
    const before = await containers();
    const mariadb = `${CLOUD}-mariadb-mariadb`;
    const made: string[] = [];
    const create = async (name: string) => {
      const r = await exec('openstack', ['project', 'create', name], { cwd: dir, env: { OS_CLOUD: CLOUD } });
      if (r.exitCode === 0) made.push(name);
    };
    // Writes in a bounded loop; the database is killed (SIGKILL: no clean shutdown) during them.
    const writes = (async () => {
      for (let i = 0; i < 12; i++) await create(`kill-${i}`);
    })();
    await new Promise((r) => setTimeout(r, 4000));
    // The server process itself, from the host, as a crash or the OOM killer would: `podman kill`
    // counts as a deliberate stop, after which Podman rightly restarts nothing.
    const pid = (await exec('podman', ['inspect', '--format', '{{.State.Pid}}', mariadb])).stdout.trim();
    assert.match(pid, /^[1-9]\d*$/);
    const kill = await exec('kill', ['-KILL', pid]);
    assert.equal(kill.exitCode, 0, kill.output);
    await writes;
    // Podman restarts it (restart policy always); Keystone's connections reconnect by themselves.
    let after = '';
    for (let i = 0; i < 60 && after === ''; i++) {
      const r = await exec('openstack', ['project', 'create', 'after-kill'], {
        cwd: dir,
        env: { OS_CLOUD: CLOUD },
      });
      if (r.exitCode === 0) after = 'after-kill';
      else await new Promise((res) => setTimeout(res, 2000));
    }
    assert.equal(after, 'after-kill', 'Keystone never wrote again after MariaDB came back');
    const inspect = JSON.parse((await exec('podman', ['inspect', mariadb])).stdout) as {
      RestartCount: number;
    }[];
    assert.ok((inspect[0]?.RestartCount ?? 0) >= 1, 'MariaDB was not restarted');
    const projects = (JSON.parse(await openstack('project', 'list', '-f', 'json')) as { Name: string }[]).map(
      (p) => p.Name,
    );
    for (const p of [...made, 'after-kill', 'demo']) assert.ok(projects.includes(p), `project ${p} was lost`);
    const now = await containers();
    assert.equal(now[`${CLOUD}-keystone-api-keystone-api`], before[`${CLOUD}-keystone-api-keystone-api`]);
    console.log(`    ${made.length} of 12 writes succeeded around the kill; none lost`);
  });

  it("backup while the cloud runs, down keeps the data (volumes) and runs nothing, down --purge removes it, restore: the project, the image's bytes, an EC2 secret, OVN's networks (Neutron's sync check finds nothing to repair), the history, and the running server with what it wrote on its disk, on its floating IP, come back; a damaged backup, another cloud's, and a restore onto a cloud that is there are refused, exit 2, nothing changed", async () => {
    assert.ok(server, 'no server was booted');
    const printed = await backupPurgeRestore({
      cloud: CLOUD,
      file,
      dir,
      openstack,
      node,
      guest: { ...server, name: 'vm1' },
      image: { name: 'e2e-disk', file: disk },
      podstack,
      exec: async (unit, container, command) =>
        (await engineFor(await openProject({ file }))).engine.exec(unit, container, command),
      data: dataVolumes,
      // Nothing runs; the claims and the node folders (the instances) are kept as volumes, the
      // pods' scratch space (emptyDir) is not.
      afterDown: async () => {
        assert.deepEqual(await containers(), {});
        const objects = (await openProject({ file })).plan.units.flatMap((u) => u.objects);
        const claims = objects.filter((o) => o.kind === 'PersistentVolumeClaim');
        const hostPaths = objects.flatMap((o) =>
          o.kind === 'DaemonSet' ? (o.spec?.template.spec?.volumes ?? []).filter((v) => v.hostPath) : [],
        );
        assert.equal((await volumes()).length, claims.length + hostPaths.length, (await volumes()).join(' '));
      },
    });
    console.log(`    ${printed}`);
  });

  it("block storage turned on in the running cloud: up brings Ceph and Cinder up and gives the node Nova's RBD client (nova.conf, and the key as a libvirt secret) while its guest keeps running; Ceph is healthy, the monitor on the internal address; no Ceph key in what podstack printed, its plan or a daemon log", async () => {
    assert.ok(server, 'the server of an earlier test did not boot');
    const guest = { name: 'vm1', ...server };
    const uptime = await guestUptime(node, guest);
    const since = Date.now();
    blockStorage = true;
    await writeFile(file, cloudYaml());
    const start = Date.now();
    // No --allow-guest-restart: on Podman only the node's nova-compute and libvirt containers are
    // replaced, and QEMU, which runs the guest, stays.
    const r = await up({ file, report, installHostPackages: false });
    console.log(
      `    up turning Ceph and Cinder on (images cached): ${((Date.now() - start) / 1000).toFixed(1)}s`,
    );
    for (const unit of ['ceph-mon', 'ceph-osd', 'cinder-api', 'cinder-volume', 'nova-compute'])
      assert.ok(r.apply.changed.includes(unit), r.apply.changed.join(' '));
    const now = await guestUptime(node, guest);
    assert.ok(
      now >= uptime + (Date.now() - since) / 1000 - 5,
      `the guest restarted: ${uptime}s, then ${now}s`,
    );
    await checkCatalog(openstack, '127.0.0.1', OFFSET, ['cinder']);
    const project = await openProject({ file });
    // The cloud's internal address: on Podman its network's gateway, where the ports are published.
    await checkCluster(inMon, gatewayOf(cloudSubnet(CLOUD, project.spec.network.subnet)));
    const plan = await podstack('plan', '-o', 'yaml');
    const logs = await Promise.all(
      ['ceph-mon', 'ceph-mgr', 'ceph-osd', 'cinder-volume'].map((u) =>
        exec('podman', ['logs', `${CLOUD}-${u}-${u}`]),
      ),
    );
    checkNoKeyIn(
      project.secrets,
      [JSON.stringify(events), plan.output, ...logs.map((l) => l.output)].join('\n'),
    );
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
    await checkVolumes(openstack, inMon, dir);
  });

  it('a volume attached to a guest is a disk it writes a file system and a file on, which a second server reads after a detach; a server boots from a volume, and what it wrote there is there for the next server booted from it', async () => {
    assert.ok(server, 'the server of an earlier test did not boot');
    await checkGuestVolumes(openstack, node, { name: 'vm1', keyName: 'vm1-key', ...server });
  });

  it('the dashboard with volumes: Launch Instance makes a new volume for the instance, and the Volumes page lists it in use', async () => {
    const project = await openProject({ file });
    const times = await checkDashboardWith(openstack, {
      url: dashboardUrl('127.0.0.1', OFFSET),
      password: project.secrets.keystone_admin_password ?? assert.fail('no admin password'),
      server: 'vm1',
      label: 'podman-volumes',
      volumes: true,
    });
    console.log(`    dashboard, an instance on a new volume: ${JSON.stringify(times)}`);
  });

  it("Tempest's volume smoke tests pass, run from the host as operators run it (Debian's tempest, dynamic credentials)", async () => {
    const r = await tempestOnCloud({ cinder: true, regex: smokeOf('volume') });
    console.log(
      `    tempest volume smoke: ${r.passed.length} passed, ${r.failed.length} failed, ${r.skipped.length} skipped, in ${r.seconds.toFixed(0)} s`,
    );
    assert.deepEqual(r.failed, [], r.output.slice(-4000));
    // Tempest 33's five: versions, list, create/get/update/delete (empty and from an image), and
    // attach to a server and detach.
    assert.ok(r.passed.length >= 5, `only ${r.passed.length} passed:\n${r.output.slice(-4000)}`);
  });

  it("Tempest's identity, image, compute and network smoke tests and its smoke scenarios pass from the host, reaching the servers they boot by SSH on floating IPs through the host link (npm run soak)", {
    skip: process.env.PODSTACK_SOAK ? false : 'in npm run soak (about 20 minutes)',
  }, async () => {
    const project = await openProject({ file });
    // Every floating IP is in the external subnet: Tempest may send to one only over the link.
    const [net] = project.spec.network.external.split('/');
    await routeIsTheLink(net!.replace(/\d+$/, '200'), hostLinkOf(CLOUD, project.spec.network.external));
    const r = await tempestOnCloud({
      cinder: blockStorage,
      regex: `(${smokeOf('identity', 'image', 'compute', 'network')})|(^tempest\\.scenario\\..*\\[.*\\bsmoke\\b)`,
      validation: true,
      // Tempest 33 changes an EC2 credential's project and type, which Debian's Keystone 22 refuses
      // (400, its credential update schema allows the blob alone): the two releases disagree.
      exclude: 'test_credentials_create_get_update_delete',
    });
    console.log(
      `    tempest identity/image/compute/network smoke and scenarios: ${r.passed.length} passed, ${r.failed.length} failed, ${r.skipped.length} skipped, in ${r.seconds.toFixed(0)} s`,
    );
    assert.deepEqual(r.failed, [], r.output.slice(-4000));
  });

  it('deleting a server removes it, its port and its disk', async () => {
    const id = (await openstack('server', 'show', 'vm1', '-f', 'value', '-c', 'id')).trim();
    await deleteServer(openstack, 'vm1');
    const ls = await exec('podman', [
      'exec',
      `${CLOUD}-nova-compute-nova-compute`,
      'ls',
      '/var/lib/nova/instances',
    ]);
    assert.equal(ls.exitCode, 0, ls.output);
    assert.ok(!ls.stdout.includes(id), `the instance folder ${id} is still there: ${ls.stdout}`);
  });

  it('down --purge removes containers and data', async () => {
    const project = await openProject({ file });
    const { engine } = await engineFor(project);
    await engine.destroy({ purge: true, report });
    assert.deepEqual(await containers(), {});
    assert.deepEqual(await volumes(), []);
    await checkHostLinkGone(CLOUD, hostLinkOf(CLOUD, project.spec.network.external));
  });
});
