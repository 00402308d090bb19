import assert from 'node:assert/strict';
import {
  bootServer,
  type CloudNode,
  checkServerBack,
  checkSsh,
  makeKey,
  type OpenStack,
  type ServerKey,
  type ServerTimes,
  sshOptions,
  until,
} from './_cloud-checks.js';
import { southboundRemote } from './_diagnose.js';

/**
 * Every guest gets its network, every time: the checks both end-to-end tests (and `npm run soak`,
 * with larger counts) run against one cloud. Each guest must show its DHCP lease on its console,
 * answer ping and SSH on its floating IP, and no guest port of the node may be down.
 */

/** How many guests: the end-to-end tests' counts, or the soak's (PODSTACK_SOAK=1). */
export const GUEST_COUNTS = process.env.PODSTACK_SOAK
  ? { sequential: 20, concurrent: 10, recreate: 5 }
  : { sequential: 1, concurrent: 3, recreate: 1 };

export interface Guest {
  readonly name: string;
  readonly fip: string;
  readonly key: string;
}

type Booted = { name: string; times: ServerTimes & Omit<Guest, 'name'> } | { name: string; error: string };

const guestsOf = (batch: readonly Booted[]): Guest[] =>
  batch.flatMap((b) => ('times' in b ? [{ name: b.name, fip: b.times.fip, key: b.times.key }] : []));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** Boots `names` at once (all of them, so a batch of one is one after another), never throwing. */
async function bootBatch(
  openstack: OpenStack,
  dir: string,
  node: CloudNode,
  names: readonly string[],
  key: ServerKey,
): Promise<Booted[]> {
  // Many CLI processes polling consoles at once would take the two cores from the guests.
  const pollMs = names.length > 1 ? 5000 : 2000;
  return Promise.all(
    names.map(async (name): Promise<Booted> => {
      try {
        return { name, times: await bootServer(openstack, dir, node, name, { key, pollMs }) };
      } catch (err) {
        return { name, error: (err as Error).message };
      }
    }),
  );
}

/**
 * Nova's default quota is 10 instances and 20 cores a project: a batch of 10 beside the servers
 * the other tests keep would be refused before any network is tried. The admin project gets room
 * for the batch and a few more.
 */
async function roomFor(openstack: OpenStack, batch: number): Promise<void> {
  const project = (await openstack('token', 'issue', '-f', 'value', '-c', 'project_id')).trim();
  const room = String(batch + 10);
  await openstack('quota', 'set', '--instances', room, '--cores', String(2 * (batch + 10)), project);
}

/** The node's own readiness check: no port of a guest is administratively down. */
export async function checkNoPortDown(node: CloudNode): Promise<void> {
  const r = await node.runInPod('podstack-ovs-ports', []);
  assert.equal(r.exitCode, 0, r.output);
}

/** Deletes servers and their floating IPs (the soak's guests must not pile up on two cores). */
export async function deleteGuests(openstack: OpenStack, guests: readonly Guest[]): Promise<void> {
  if (guests.length === 0) return;
  await openstack('server', 'delete', '--wait', ...guests.map((g) => g.name));
  await openstack('floating', 'ip', 'delete', ...guests.map((g) => g.fip));
}

/**
 * `sequential` guests one after another, then `concurrent` at once, each to its lease, ping and
 * SSH, each deleted after. Prints the boots and the slowest lease; fails on any guest that did
 * not get there, with what the cloud knew of it.
 */
export async function soakGuests(
  openstack: OpenStack,
  dir: string,
  node: CloudNode,
  o: { prefix: string; label: string; sequential: number; concurrent: number },
): Promise<void> {
  await roomFor(openstack, o.concurrent);
  const key = await makeKey(openstack, dir, `${o.prefix}-key`);
  const results: Booted[] = [];
  // One batch of one per sequential guest, then one batch of them all at once.
  const batches = [
    ...Array.from({ length: o.sequential }, (_, i) => [`${o.prefix}-s${i + 1}`]),
    ...(o.concurrent > 0 ? [Array.from({ length: o.concurrent }, (_, i) => `${o.prefix}-c${i + 1}`)] : []),
  ];
  for (const names of batches) {
    const batch = await bootBatch(openstack, dir, node, names, key);
    results.push(...batch);
    await checkNoPortDown(node);
    await deleteGuests(openstack, guestsOf(batch));
    // A failed one has no floating IP of its own to delete here (or it was never made).
    const failed = batch.filter((b) => 'error' in b).map((b) => b.name);
    if (failed.length > 0) await openstack('server', 'delete', '--wait', ...failed).catch(() => undefined);
  }
  await openstack('keypair', 'delete', key.name);
  const ok = results.flatMap((r) => ('times' in r ? [{ name: r.name, ...r.times }] : []));
  const failed = results.flatMap((r) => ('error' in r ? [r] : []));
  const slowest = [...ok].sort((a, b) => b.leaseSeconds - a.leaseSeconds)[0];
  console.log(
    `    guests (${o.label}): ${ok.length} of ${results.length} got a lease, ping and SSH ` +
      `(${o.sequential} one after another, ${o.concurrent} at once); ` +
      `create->ACTIVE median ${median(ok.map((t) => t.activeSeconds)).toFixed(1)}s; ` +
      `ACTIVE->lease median ${median(ok.map((t) => t.leaseSeconds)).toFixed(1)}s, ` +
      `slowest ${slowest ? `${slowest.leaseSeconds.toFixed(1)}s (${slowest.name})` : '-'}; ` +
      `ACTIVE->SSH max ${Math.max(0, ...ok.map((t) => t.sshSeconds)).toFixed(1)}s`,
  );
  assert.deepEqual(
    failed.map((f) => f.name),
    [],
    failed.map((f) => `${f.name}: ${f.error}`).join('\n\n'),
  );
}

/** Boots `count` guests at once and keeps them; fails if any does not reach SSH. */
export async function bootGuests(
  openstack: OpenStack,
  dir: string,
  node: CloudNode,
  prefix: string,
  count: number,
): Promise<Guest[]> {
  const key = await makeKey(openstack, dir, `${prefix}-key`);
  const names = Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
  const batch = await bootBatch(openstack, dir, node, names, key);
  const failed = batch.flatMap((b) => ('error' in b ? [`${b.name}: ${b.error}`] : []));
  assert.deepEqual(failed, [], failed.join('\n\n'));
  return guestsOf(batch);
}

/**
 * The node pod made again `times` times with `guests` running (`recreate` does it as the engine
 * would): each time every guest runs again (nova resumes it), answers SSH on its floating IP,
 * and no guest port is down. Prints how long each round took until the last guest answered.
 */
export async function checkNodeRecreated(
  openstack: OpenStack,
  node: CloudNode,
  guests: readonly Guest[],
  o: { label: string; times: number; recreate: () => Promise<void> },
): Promise<void> {
  const rounds: number[] = [];
  for (let i = 1; i <= o.times; i++) {
    const since = new Date();
    await o.recreate();
    for (const g of guests) {
      await checkServerBack(openstack, node, g.name, since);
      await checkSsh(openstack, node, g);
    }
    await checkNoPortDown(node);
    rounds.push((Date.now() - since.getTime()) / 1000);
  }
  console.log(
    `    node pod made again (${o.label}) ${o.times} times with ${guests.length} guests: ` +
      `every guest answered SSH again each time; rounds ${rounds.map((r) => `${r.toFixed(0)}s`).join(', ')}`,
  );
}

type Row = Record<string, string>;

/**
 * A guest tap set down by hand (as the switch once left one) is an error someone sees: the node's
 * unit is not ready in `status` (`unitReason` reads its reason), naming the port, until the tap
 * is up again. `wording` is what the engine's reason says (Podman: the check's own words).
 */
export async function checkDownPortIsSeen(
  openstack: OpenStack,
  node: CloudNode,
  guest: Guest,
  o: { unitReason: () => Promise<string | undefined>; wording: (tap: string) => RegExp },
): Promise<void> {
  const ports = JSON.parse(await openstack('port', 'list', '--server', guest.name, '-f', 'json')) as Row[];
  const tap = `tap${ports[0]?.ID?.slice(0, 11)}`;
  const set = async (state: 'up' | 'down') => {
    const r = await node.run('ip', ['link', 'set', tap, state]);
    assert.equal(r.exitCode, 0, r.output);
  };
  await set('down');
  try {
    await until(`status names ${tap} as down`, 30, 2000, async () => {
      const reason = await o.unitReason();
      return reason && o.wording(tap).test(reason) ? undefined : `nova-compute: ${reason ?? 'healthy'}`;
    });
  } finally {
    await set('up');
  }
  await until('status healthy again once the tap is up', 30, 2000, async () => {
    const reason = await o.unitReason();
    return reason === undefined ? undefined : reason;
  });
  await checkSsh(openstack, node, guest);
}

/** OVN's southbound database, through the node's ovn-controller container. */
async function southbound(node: CloudNode): Promise<(...args: string[]) => Promise<string>> {
  const db = await southboundRemote(node);
  return async (...args: string[]) => {
    const r = await node.runInPod('ovn-sbctl', [`--db=${db}`, ...args]);
    assert.equal(r.exitCode, 0, `ovn-sbctl ${args.join(' ')}: ${r.output}`);
    return r.output;
  };
}

/** The MAC_Binding rows (as `ip mac` lines) that have `column` equal to `value`. */
async function macBindings(sb: (...a: string[]) => Promise<string>, column: 'ip' | 'mac', value: string) {
  const out = await sb('--bare', '--columns=ip,mac', 'find', 'MAC_Binding', `${column}="${value}"`);
  return out
    .split('\n\n')
    .map((r) => r.trim().replace(/\n/g, ' '))
    .filter(Boolean);
}

/**
 * A learned MAC_Binding row on `router`'s datapath, as a router on the external network would
 * have learned it: the cloud here has one router, so none learns another's addresses by itself.
 */
async function learnBinding(
  openstack: OpenStack,
  sb: (...a: string[]) => Promise<string>,
  row: { router: string; port: string; ip: string; mac: string },
): Promise<void> {
  const routerId = (await openstack('router', 'show', row.router, '-f', 'value', '-c', 'id')).trim();
  const datapath = (
    await sb('--bare', '--columns=_uuid', 'find', 'Datapath_Binding', `external_ids:name=neutron-${routerId}`)
  ).trim();
  assert.match(datapath, /^[0-9a-f-]{36}$/, `no datapath for router ${row.router}: ${datapath}`);
  await sb(
    'create',
    'MAC_Binding',
    `datapath=${datapath}`,
    `logical_port=lrp-${row.port}`,
    `ip="${row.ip}"`,
    `mac="${row.mac}"`,
  );
}

/**
 * Neutron's clean-ups of OVN's MAC_Binding rows work (they run `ovsdb-client` against the
 * southbound database by its Service's name): a floating IP taken from one server after traffic
 * loses its learned bindings and reaches the next server it is given to; a router interface
 * removed after traffic goes without an error and takes its bindings with it.
 */
export async function checkFloatingIpAndRouterInterface(
  openstack: OpenStack,
  node: CloudNode,
  from: Guest,
  to: Guest,
): Promise<void> {
  const sb = await southbound(node);
  const gateway = JSON.parse(
    await openstack('port', 'list', '--device-owner', 'network:router_gateway', '-f', 'json'),
  ) as Row[];
  const gatewayPort = gateway[0]?.ID;
  assert.ok(gatewayPort, 'router1 has no gateway port');
  await learnBinding(openstack, sb, {
    router: 'router1',
    port: gatewayPort,
    ip: from.fip,
    mac: '02:00:5e:00:53:01',
  });
  assert.equal((await macBindings(sb, 'ip', from.fip)).length, 1);

  // The floating IP moves: `to` gives up its own first (a port's address has one floating IP).
  await openstack('server', 'remove', 'floating', 'ip', to.name, to.fip);
  await openstack('server', 'remove', 'floating', 'ip', from.name, from.fip);
  await until(`no MAC_Binding row for ${from.fip} after it was disassociated`, 20, 1000, async () => {
    const rows = await macBindings(sb, 'ip', from.fip);
    return rows.length === 0 ? undefined : rows.join('; ');
  });
  await openstack('server', 'add', 'floating', 'ip', to.name, from.fip);
  await checkSsh(openstack, node, { fip: from.fip, key: to.key, name: to.name });
  await openstack('floating', 'ip', 'delete', to.fip);

  // A router interface, used, then removed.
  await openstack('network', 'create', 'ri-net');
  await openstack('subnet', 'create', '--network', 'ri-net', '--subnet-range', '10.99.0.0/24', 'ri-subnet');
  await openstack('router', 'add', 'subnet', 'router1', 'ri-subnet');
  try {
    const ports = JSON.parse(
      await openstack(
        'port',
        'list',
        '--network',
        'ri-net',
        '--device-owner',
        'network:router_interface',
        '-f',
        'json',
      ),
    ) as Row[];
    const id = ports[0]?.ID;
    const mac = ports[0]?.['MAC Address'];
    assert.ok(id && mac, `no router interface on ri-net: ${JSON.stringify(ports)}`);
    await learnBinding(openstack, sb, {
      router: 'router1',
      port: id,
      ip: '10.99.0.50',
      mac,
    });
    // Traffic through it: the guest on `private` pings the router's new address.
    const ping = await node.reach('ssh', [
      ...sshOptions(to.key),
      `root@${from.fip}`,
      'ping -c 2 -W 2 10.99.0.1',
    ]);
    assert.equal(ping.exitCode, 0, `the guest could not ping the new router interface: ${ping.output}`);
    // The API answers (a 500 here was neutron's ovsdb-client failing to reach the database).
    await openstack('router', 'remove', 'subnet', 'router1', 'ri-subnet');
    await until('no MAC_Binding row for the removed router interface', 20, 1000, async () => {
      const rows = await macBindings(sb, 'mac', mac);
      return rows.length === 0 ? undefined : rows.join('; ');
    });
  } finally {
    await openstack('router', 'remove', 'subnet', 'router1', 'ri-subnet').catch(() => undefined);
    await openstack('network', 'delete', 'ri-net');
  }
}
