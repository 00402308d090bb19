import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../src/_exec.js';
import { catalog } from '../src/catalog/index.js';
import { connect } from '../src/engines/kubernetes/client.js';
import { LABEL } from '../src/model/objects.js';
import { describeServer } from './_diagnose.js';

/**
 * What a user does with a cloud, as the end-to-end tests of both engines do it: the real
 * openstack CLI against every service the catalog publishes. Expectations come from the
 * catalog, so a service added there is checked here without a hand-written list.
 */

export type OpenStack = (...args: string[]) => Promise<string>;

/**
 * Every service of the default cloud (those on by default), and those of `also`, with an API, and
 * the test port it is published on (its own port + offset).
 */
export function apiPorts(
  offset: number,
  also: readonly string[] = [],
): { service: string; type: string; port: number; path: string }[] {
  return catalog.flatMap((s) =>
    s.api && (s.enabledByDefault || also.includes(s.name))
      ? [{ service: s.name, type: s.api.type, port: s.api.port + offset, path: s.api.path ?? '' }]
      : [],
  );
}

/** What `up` prints, in its order: every API's public URL on `host`, then the browser pages. */
export function publishedUrls(host: string, offset: number, also: readonly string[] = []): string[] {
  const pages = catalog.flatMap((s) =>
    Object.entries(s.pages ?? {}).map(
      ([port, path]) => `http://${host}:${(s.ports?.[port] ?? 0) + offset}${path}`,
    ),
  );
  return [...apiPorts(offset, also).map((a) => `http://${host}:${a.port}${a.path}`), ...pages];
}

/** The dashboard's URL in a test cloud. */
export function dashboardUrl(host: string, offset: number): string {
  const horizon = catalog.find((s) => s.pages?.dashboard !== undefined);
  const port = horizon?.ports?.dashboard;
  assert.ok(horizon?.pages && port !== undefined, 'no service of the catalog publishes the dashboard');
  return `http://${host}:${port + offset}${horizon.pages.dashboard}`;
}

/** The services: section of a test cloud file, publishing every API on its test port. */
export function servicesYaml(offset: number, extra: Record<string, string> = {}): string {
  const lines = ['services:'];
  for (const s of catalog) {
    const port = [
      ...(s.api ? [`    port: ${s.api.port + offset}`] : []),
      ...(s.ports
        ? ['    ports:', ...Object.entries(s.ports).map(([name, p]) => `      ${name}: ${p + offset}`)]
        : []),
    ];
    const more = extra[s.name] ? [extra[s.name]!.trimEnd()] : [];
    if (port.length + more.length > 0) lines.push(`  ${s.name}:`, ...port, ...more);
  }
  return `${lines.join('\n')}\n`;
}

type Row = Record<string, string>;

/** The Keystone catalog has public, internal and admin endpoints of every API, public ones on `host`. */
export async function checkCatalog(
  openstack: OpenStack,
  host: string,
  offset: number,
  also: readonly string[] = [],
): Promise<void> {
  const endpoints = JSON.parse(await openstack('endpoint', 'list', '-f', 'json')) as Row[];
  for (const api of apiPorts(offset, also)) {
    const of = (iface: string) =>
      endpoints.filter((e) => e['Service Type'] === api.type && e.Interface === iface);
    for (const iface of ['public', 'internal', 'admin'])
      assert.equal(of(iface).length, 1, `${api.type} has ${of(iface).length} ${iface} endpoints`);
    assert.equal(of('public')[0]?.URL, `http://${host}:${api.port}${api.path}`);
  }
}

/**
 * Internal and admin endpoints answer from the host, as they do from the cloud's own
 * containers: an operator's tools (and Tempest) use them.
 */
export async function checkInternalFromHost(openstack: OpenStack): Promise<void> {
  await openstack('--os-interface', 'internal', 'image', 'list', '-f', 'json');
  await openstack('--os-interface', 'admin', 'image', 'list', '-f', 'json');
  const endpoints = JSON.parse(await openstack('endpoint', 'list', '-f', 'json')) as Row[];
  for (const e of endpoints.filter((x) => x.Interface !== 'public')) {
    const r = await fetch(e.URL!, { signal: AbortSignal.timeout(5000) });
    await r.body?.cancel();
    assert.ok(r.status < 500, `${e.Interface} ${e['Service Type']} ${e.URL}: HTTP ${r.status}`);
  }
}

/** A real qcow2 disk image of `megabytes`, made with qemu-img. */
export async function makeDiskImage(dir: string, megabytes = 16): Promise<string> {
  const file = join(dir, 'disk.qcow2');
  const r = await exec('qemu-img', ['create', '-f', 'qcow2', file, `${megabytes}M`]);
  assert.equal(r.exitCode, 0, r.output);
  return file;
}

/** Uploads a disk image to Glance, checks it is active, and returns its checksum. */
export async function uploadImage(openstack: OpenStack, file: string, name: string): Promise<void> {
  await openstack(
    'image',
    'create',
    '--file',
    file,
    '--disk-format',
    'qcow2',
    '--container-format',
    'bare',
    name,
  );
  const image = JSON.parse(await openstack('image', 'show', name, '-f', 'json')) as Row;
  assert.equal(image.status, 'active');
  const list = JSON.parse(await openstack('image', 'list', '-f', 'json')) as Row[];
  assert.ok(
    list.some((i) => i.Name === name),
    `${name} is not in image list`,
  );
}

/** Downloads an image and compares it with the file it was made from, byte for byte. */
export async function checkImageBytes(
  openstack: OpenStack,
  dir: string,
  file: string,
  name: string,
): Promise<void> {
  const back = join(dir, 'back.qcow2');
  await openstack('image', 'save', '--file', back, name);
  assert.ok((await readFile(back)).equals(await readFile(file)), 'the image came back different');
}

/** Placement answers the osc-placement plugin's calls. */
export async function checkPlacement(openstack: OpenStack): Promise<void> {
  JSON.parse(await openstack('resource', 'provider', 'list', '-f', 'json'));
  const classes = JSON.parse(await openstack('resource', 'class', 'list', '-f', 'json')) as Row[];
  assert.ok(
    classes.some((c) => c.name === 'VCPU'),
    'resource class VCPU missing',
  );
}

/** The host packages the checks use: the CLI, its Placement plugin, qemu-img, ping and ssh. */
export const CHECK_PACKAGES = [
  'python3-openstackclient',
  'python3-osc-placement',
  'qemu-utils',
  'iputils-ping',
  'openssh-client',
];

/** What a program run for a check printed, and how it ended. */
export interface Ran {
  readonly exitCode: number;
  readonly output: string;
}

/**
 * The cloud's hypervisor node pod, as the checks reach it from the host. The floating IPs
 * answer only in its network namespace, where the external network's bridge is (forwarding is
 * off there, so the external network ends in the pod).
 */
export interface CloudNode {
  /** A host program (ip, readlink) in the pod's network namespace. */
  readonly run: (program: string, args: readonly string[]) => Promise<Ran>;
  /**
   * A host program (ping, ssh) where floating IPs answer: the pod's network namespace, or the
   * host, for a cloud on an external network the host is on (network.externalBridge).
   */
  readonly reach: (program: string, args: readonly string[]) => Promise<Ran>;
  /** A program of the pod's ovn-controller container, in all its namespaces (ovs-vsctl, ovn-nbctl). */
  readonly runInPod: (program: string, args: readonly string[]) => Promise<Ran>;
  /** The last `lines` lines of the log of one of the pod's containers (`nova-compute`, `libvirt`...). */
  readonly logs: (container: string, lines: number) => Promise<string>;
}

/** Where the images' programs are: Debian's PATH for root, as a container starts with it. */
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A node pod entered through the process `pid` (its ovn-controller), with its logs from `logs`. */
function nsenterNode(pid: () => Promise<string | undefined>, logs: CloudNode['logs']): CloudNode {
  // The process the node is entered through may be restarting (a test just killed it, or a part
  // it depends on): wait for it rather than run nsenter without a target (seen in a cold CI run).
  const target = async () => {
    let found: string | undefined;
    await until('a process to enter the node through', 120, 500, async () => {
      found = await pid();
      return found ? undefined : 'none running';
    });
    return found!;
  };
  const nsenter = async (namespaces: string, program: string, args: readonly string[], env = {}) => {
    const r = await exec('nsenter', ['-t', await target(), namespaces, program, ...args], { env });
    return { exitCode: r.exitCode ?? -1, output: r.output };
  };
  const run: CloudNode['run'] = (program, args) => nsenter('-n', program, args);
  return {
    run,
    reach: run,
    // nsenter looks the program up in the container's files but on the test's own PATH: from a
    // shell with no /usr/local/bin on it (`env -i`), the image's checks there were not found.
    runInPod: (program, args) => nsenter('-a', program, args, { PATH: CONTAINER_PATH }),
    logs,
  };
}

/**
 * The pid of a process in the network namespace that has `address` (a pod's IP): for a pod that
 * runs under another runtime (containerd), found from the host by its address.
 */
export async function pidWithAddress(address: string, program = 'ovn-controller'): Promise<string> {
  const pids = (await exec('pgrep', ['-x', program])).stdout.split('\n').filter(Boolean);
  for (const pid of pids) {
    const r = await exec('nsenter', ['-t', pid, '-n', 'ip', '-4', '-o', 'addr', 'show']);
    if (r.exitCode === 0 && r.stdout.includes(` ${address}/`)) return pid;
  }
  throw new Error(`no ${program} process has address ${address} (pids: ${pids.join(' ') || 'none'})`);
}

/** The node pod of a Podman cloud: entered through its ovn-controller container's process. */
export function podmanNode(cloud: string): CloudNode {
  const container = (name: string) => `${cloud}-nova-compute-${name}`;
  return nsenterNode(
    async () => {
      const r = await exec('podman', ['inspect', '--format', '{{.State.Pid}}', container('ovn-controller')]);
      assert.equal(r.exitCode, 0, r.output);
      // 0 while the container is between a crash and its restart.
      const pid = r.stdout.trim();
      return Number(pid) > 0 ? pid : undefined;
    },
    async (name, lines) => (await exec('podman', ['logs', '--tail', String(lines), container(name)])).output,
  );
}

/**
 * Floating IPs from the host, on an external network the host has an address on (the test
 * cluster's bridge): every program runs only once `ip route get` says that an address of the
 * subnet (`probe`) is routed through `device`. Otherwise it would leave the machine by the
 * default route.
 */
export function fromHost(device: string, probe: string): CloudNode['reach'] {
  return async (program, args) => {
    const route = (await exec('ip', ['-o', 'route', 'get', probe])).stdout;
    assert.match(
      route,
      new RegExp(` dev ${device} `),
      `not sending to the floating IPs: ${probe}'s route is ${route}`,
    );
    const r = await exec(program, args);
    return { exitCode: r.exitCode ?? -1, output: r.output };
  };
}

/**
 * The node pod of a cloud on Kubernetes (containerd): found from the host by the pod's address.
 * `nodeName`: the pod on that node (with two nodes); by default the first running one. `reach`:
 * where floating IPs answer, when not in the pod (fromHost).
 */
export function kubernetesNode(
  kubeconfig: string,
  namespace: string,
  cloud: string,
  nodeName?: string,
  reach?: CloudNode['reach'],
): CloudNode {
  const c = connect({ kubeconfig, namespace });
  const pod = async () => {
    const pods = await c.core.listNamespacedPod({
      namespace,
      labelSelector: `${LABEL.instance}=${cloud},${LABEL.unit}=nova-compute`,
    });
    const running = pods.items.find(
      (p) => p.status?.phase === 'Running' && (nodeName === undefined || p.spec?.nodeName === nodeName),
    );
    assert.ok(
      running?.metadata?.name && running.status?.podIP,
      `the nova-compute pod${nodeName ? ` on ${nodeName}` : ''} is not running`,
    );
    return { name: running.metadata.name, ip: running.status.podIP };
  };
  const node = nsenterNode(
    async () => pidWithAddress((await pod()).ip).catch(() => undefined),
    async (container, lines) =>
      c.core.readNamespacedPodLog({ namespace, name: (await pod()).name, container, tailLines: lines }),
  );
  return reach ? { ...node, reach } : node;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` up to `tries` times; the last failure's message if it never passes. */
export async function until(
  what: string,
  tries: number,
  everyMs: number,
  check: () => Promise<string | undefined>,
) {
  let why: string | undefined = 'not tried';
  for (let i = 0; i < tries; i++) {
    why = await check();
    if (why === undefined) return;
    await pause(everyMs);
  }
  assert.fail(`${what}: ${why}`);
}

export interface ServerTimes {
  /** From `server create` until ACTIVE. */
  readonly activeSeconds: number;
  /** From ACTIVE until the console shows the DHCP lease. */
  readonly leaseSeconds: number;
  /** From ACTIVE until SSH on the floating IP answers. */
  readonly sshSeconds: number;
}

/** Every compute service, network agent and hypervisor is up (a new node registers within ~30 s). */
export async function checkComputeUp(openstack: OpenStack): Promise<void> {
  await until('hypervisor up', 60, 3000, async () => {
    const h = JSON.parse(await openstack('hypervisor', 'list', '-f', 'json')) as Row[];
    return h.length > 0 && h.every((x) => x.State === 'up') ? undefined : JSON.stringify(h);
  });
  const services = JSON.parse(await openstack('compute', 'service', 'list', '-f', 'json')) as Row[];
  for (const binary of ['nova-conductor', 'nova-scheduler', 'nova-compute'])
    assert.ok(
      services.some((x) => x.Binary === binary && x.State === 'up'),
      `${binary} is not up: ${JSON.stringify(services)}`,
    );
  await until('network agents alive', 30, 2000, async () => {
    const agents = JSON.parse(await openstack('network', 'agent', 'list', '-f', 'json')) as Record<
      string,
      unknown
    >[];
    const types = agents.map((a) => a['Agent Type']);
    if (!types.includes('OVN Metadata agent') || !types.some((t) => /OVN Controller/.test(String(t))))
      return `missing agents: ${JSON.stringify(types)}`;
    return agents.every((a) => a.Alive === true) ? undefined : JSON.stringify(agents);
  });
}

/**
 * Waits until nova-compute has reported after `since` (its node pod started again), then until
 * the server runs. Before that report the API still says what the database said before the node
 * went away: ACTIVE is then only a record, not a running guest.
 */
export async function checkServerBack(
  openstack: OpenStack,
  node: CloudNode,
  name: string,
  since: Date,
): Promise<void> {
  await withDiagnosis(openstack, node, name, () => serverBack(openstack, name, since));
}

async function serverBack(openstack: OpenStack, name: string, since: Date): Promise<void> {
  await until('nova-compute reports again', 60, 2000, async () => {
    const services = JSON.parse(
      await openstack('compute', 'service', 'list', '--service', 'nova-compute', '-f', 'json'),
    ) as Row[];
    // The API gives UTC without a zone: 2026-11-30T05:23:40.000000.
    const reported = (s: Row) => new Date(`${s['Updated At']}Z`).getTime();
    return services.some((s) => s.State === 'up' && reported(s) > since.getTime())
      ? undefined
      : JSON.stringify(services);
  });
  await until(`${name} running`, 60, 2000, async () => {
    const server = JSON.parse(
      await openstack('server', 'show', name, '-f', 'json', '-c', 'status', '-c', 'OS-EXT-STS:power_state'),
    ) as Row;
    // JSON gives the power state as nova's number: 1 is running.
    return server.status === 'ACTIVE' && Number(server['OS-EXT-STS:power_state']) === 1
      ? undefined
      : JSON.stringify(server);
  });
}

/** An SSH key pair for servers: the private key's file and the Nova keypair's name. */
export interface ServerKey {
  readonly file: string;
  readonly name: string;
}

/** Makes an SSH key pair in `dir` and registers it with Nova as `name`. */
export async function makeKey(openstack: OpenStack, dir: string, name: string): Promise<ServerKey> {
  const file = join(dir, name);
  const keygen = await exec('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', file]);
  assert.equal(keygen.exitCode, 0, keygen.output);
  await openstack('keypair', 'create', '--public-key', `${file}.pub`, name);
  return { file, name };
}

export interface BootOptions {
  /** A key made by makeKey; by default one of its own, `<name>-key`. */
  readonly key?: ServerKey;
  /** Console polls between tries (a batch of servers booting at once polls less often). */
  readonly pollMs?: number;
  /** The hypervisor to boot on (`--availability-zone nova:<host>`, an admin's choice). */
  readonly host?: string;
}

/**
 * A user's first server, as the README tells it: boot it from the guest image podstack built on
 * the tenant network, watch it take its address by DHCP on the console, give it a floating IP,
 * ping that from the external network's side, and run a command over SSH with the key the
 * guest fetched from the metadata service.
 */
export async function bootServer(
  openstack: OpenStack,
  dir: string,
  node: CloudNode,
  name: string,
  options: BootOptions = {},
): Promise<ServerTimes & { fip: string; key: string }> {
  const key = options.key ?? (await makeKey(openstack, dir, `${name}-key`));
  const pollMs = options.pollMs ?? 2000;
  const start = Date.now();
  const server = JSON.parse(
    await openstack(
      'server',
      'create',
      '--image',
      'podstack-guest',
      '--flavor',
      'm1.nano',
      '--network',
      'private',
      '--key-name',
      key.name,
      ...(options.host ? ['--availability-zone', `nova:${options.host}`] : []),
      '--wait',
      '-f',
      'json',
      name,
    ),
  ) as Row;
  assert.equal(server.status, 'ACTIVE', JSON.stringify(server));
  const activeSeconds = (Date.now() - start) / 1000;
  const active = Date.now();
  const diagnosed = (check: () => Promise<void>) => withDiagnosis(openstack, node, name, check);
  await diagnosed(() =>
    until('console shows the DHCP lease', Math.ceil(120_000 / pollMs), pollMs, async () => {
      // An API error is retried within the bound (an RPC call to nova-compute on two busy cores).
      const log = await openstack('console', 'log', 'show', name).catch((e: Error) => `error: ${e.message}`);
      return /podstack-guest: lease \d+\.\d+\.\d+\.\d+/.test(log) ? undefined : log.slice(-300) || 'empty';
    }),
  );
  const leaseSeconds = (Date.now() - active) / 1000;
  const fip = (
    await openstack('floating', 'ip', 'create', 'public', '-f', 'value', '-c', 'floating_ip_address')
  ).trim();
  await openstack('server', 'add', 'floating', 'ip', name, fip);
  await diagnosed(() =>
    until(`ping ${fip}`, 30, 1000, async () => {
      const r = await node.reach('ping', ['-c', '1', '-W', '2', fip]);
      return r.exitCode === 0 ? undefined : r.output.slice(-200);
    }),
  );
  await checkSsh(openstack, node, { fip, key: key.file, name });
  return { activeSeconds, leaseSeconds, sshSeconds: (Date.now() - active) / 1000, fip, key: key.file };
}

/** ssh's options for a guest: this key only, no host key kept or asked about, a bounded connect. */
export function sshOptions(key: string): string[] {
  return [
    '-i',
    key,
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
  ];
}

/** SSH as root with the key, bounded; the guest's host name (from the metadata service) must be the server's. */
export async function checkSsh(
  openstack: OpenStack,
  node: CloudNode,
  server: { fip: string; key: string; name: string },
): Promise<void> {
  const { fip, key, name } = server;
  await withDiagnosis(openstack, node, name, () =>
    until(`ssh root@${fip}`, 40, 2000, async () => {
      const r = await node.reach('ssh', [...sshOptions(key), `root@${fip}`, 'hostname']);
      return r.exitCode === 0 && r.output.trim().split('\n').pop() === name
        ? undefined
        : r.output.slice(-200);
    }),
  );
}

/** Runs a check of a server's network; if it fails, the error also says what the cloud knew of the server. */
async function withDiagnosis(
  openstack: OpenStack,
  node: CloudNode,
  name: string,
  check: () => Promise<void>,
): Promise<void> {
  try {
    await check();
  } catch (err) {
    const known = await describeServer(openstack, node, name);
    throw new Error(`${(err as Error).message}\n\nwhat the cloud knew of ${name} then:\n${known}`);
  }
}

/** A server's address on the tenant network (`private=10.0.0.5, 172.24.4.9`: the first). */
export async function fixedIp(openstack: OpenStack, name: string): Promise<string> {
  const addresses = (await openstack('server', 'show', name, '-f', 'value', '-c', 'addresses')).trim();
  const ip = /(\d+\.\d+\.\d+\.\d+)/.exec(addresses)?.[1];
  assert.ok(ip, `${name} has no address: ${addresses}`);
  return ip;
}

/** Deleting a server removes it and its port. */
export async function deleteServer(openstack: OpenStack, name: string): Promise<void> {
  const id = (await openstack('server', 'show', name, '-f', 'value', '-c', 'id')).trim();
  await openstack('server', 'delete', '--wait', name);
  const ports = JSON.parse(await openstack('port', 'list', '--device-id', id, '-f', 'json')) as Row[];
  assert.deepEqual(ports, [], "the server's ports were not removed");
}

/** Container name -> ID of every container of a Podman cloud (its pods' infra containers aside). */
export async function cloudContainers(cloud: string): Promise<Record<string, string>> {
  const r = await exec('podman', [
    'ps',
    '-a',
    '--format',
    '{{.Names}} {{.ID}}',
    '--filter',
    `label=app.kubernetes.io/instance=${cloud}`,
  ]);
  return Object.fromEntries(
    r.stdout
      .split('\n')
      .filter((l) => l && !l.includes('-infra '))
      .map((l) => l.split(' ') as [string, string]),
  );
}
