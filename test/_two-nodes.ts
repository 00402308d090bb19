// Two hypervisors: a second node joins a running cloud, guests on the two nodes talk over
// Geneve, and the second node is lost and comes back. What #19 asks of "multi-host networking".
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  bootServer,
  type CloudNode,
  checkServerBack,
  fixedIp,
  makeKey,
  type OpenStack,
  sshOptions,
  until,
} from './_cloud-checks.js';
import type { Guest } from './_guest-network.js';
import { guestUptime, longestGap, pingLoop } from './_node-survival.js';

type Row = Record<string, unknown>;

export interface TwoNodes {
  readonly openstack: OpenStack;
  readonly dir: string;
  /** The two nodes' names, the first (the one the cloud started on) first. */
  readonly names: readonly [string, string];
  /** The node pod on a node. */
  readonly node: (name: string) => CloudNode;
  /** The second node goes as a lost machine goes (kubelet, its pods' containers, runtime)... */
  readonly loseSecond: () => Promise<void>;
  /** ...and comes back under the same name. */
  readonly bringBackSecond: () => Promise<void>;
  /** What the test printed, for its numbers. */
  readonly say: (line: string) => void;
  /** A guest that runs on the first node, answering SSH on its floating IP (it is left running). */
  readonly onFirst: Guest;
  /** The guests it boots go here as they boot (for the caller to delete, whatever happens). */
  readonly made: Guest[];
}

/** Both nodes are hypervisors that are up, and both are OVN chassis that are alive. */
export async function checkTwoHypervisors(o: Pick<TwoNodes, 'openstack' | 'names'>): Promise<void> {
  await until('two hypervisors up', 60, 3000, async () => {
    const h = JSON.parse(await o.openstack('hypervisor', 'list', '-f', 'json')) as Row[];
    const up = h.filter((x) => x.State === 'up').map((x) => String(x['Hypervisor Hostname']));
    return o.names.every((n) => up.includes(n)) ? undefined : JSON.stringify(h);
  });
  await until('a chassis on each node, alive', 40, 3000, async () => {
    const agents = JSON.parse(await o.openstack('network', 'agent', 'list', '-f', 'json')) as Row[];
    const controllers = agents.filter((a) => /OVN Controller/.test(String(a['Agent Type'])));
    return o.names.every((n) => controllers.some((a) => a.Host === n && a.Alive === true))
      ? undefined
      : JSON.stringify(controllers.map((a) => [a.Host, a.Alive]));
  });
}

/** `guest` answers SSH on its floating IP from `node`'s pod, as itself, within 3 minutes. */
async function sshAnswers(node: CloudNode, guest: Guest, when: string): Promise<void> {
  await until(`ssh ${guest.name} on ${guest.fip} ${when}`, 60, 3000, async () => {
    const r = await node.reach('ssh', [...sshOptions(guest.key), `root@${guest.fip}`, 'hostname']);
    return r.exitCode === 0 && r.output.trim().split('\n').pop() === guest.name
      ? undefined
      : r.output.slice(-200);
  });
}

/** SSH from `via`'s node pod to `to`'s fixed address through `via` (on its floating IP): Geneve. */
async function sshAcross(node: CloudNode, via: Guest, to: Guest & { ip: string }) {
  const jump = ['ssh', ...sshOptions(via.key), '-W', '%h:%p', `root@${via.fip}`].join(' ');
  await until(`ssh ${to.name} (${to.ip}) through ${via.name}`, 15, 2000, async () => {
    const ping = await node.reach('ssh', [
      ...sshOptions(via.key),
      `root@${via.fip}`,
      `ping -c 3 -W 2 ${to.ip}`,
    ]);
    if (ping.exitCode !== 0) return `${via.name} cannot ping ${to.ip}: ${ping.output.slice(-300)}`;
    const r = await node.reach('ssh', [...sshOptions(to.key), '-o', `ProxyCommand=${jump}`, `root@${to.ip}`, 'hostname']); // biome-ignore format: one call
    return r.exitCode === 0 && r.output.trim().split('\n').pop() === to.name
      ? undefined
      : r.output.slice(-300);
  });
}

/**
 * A server on each node (o.onFirst, and one it boots on the second), on one tenant network:
 * each answers ping and SSH on its floating IP (NATed on its own node: floating IPs are
 * distributed on Kubernetes), and each reaches the other's fixed address, ping and SSH, through
 * the tunnel between the nodes. Then the second node is lost: the first node's guest keeps
 * running and answering, nova says the second compute service is down; the node comes back and
 * so does its guest, which then live-migrates to the first node and cold-migrates back. The
 * guests are the caller's to delete (o.made).
 */
export async function checkTwoNodes(o: TwoNodes): Promise<void> {
  const [first, second] = o.names;
  await checkTwoHypervisors(o);
  // A floating IP answers where its node's `reach` is: the host on the cluster's external bridge
  // (network.externalBridge), or its own node's pod when each node's br-ex is its own.
  const nodeOf = { first: o.node(first), second: o.node(second) };
  const a = o.onFirst;
  const key = await makeKey(o.openstack, o.dir, 'on-second-key');
  const t = await bootServer(o.openstack, o.dir, nodeOf.second, 'on-second', { key, host: second });
  const b: Guest = { name: 'on-second', fip: t.fip, key: key.file };
  o.made.push(b);
  const where = (
    await o.openstack('server', 'show', b.name, '-f', 'value', '-c', 'OS-EXT-SRV-ATTR:host')
  ).trim();
  assert.equal(where, second, `${b.name} was to boot on ${second}`);
  o.say(`${b.name} on ${second}: ACTIVE in ${t.activeSeconds.toFixed(1)} s, SSH on ${t.fip} ${t.sshSeconds.toFixed(1)} s after`); // biome-ignore format: one line
  await sshAcross(nodeOf.first, a, { ...b, ip: await fixedIp(o.openstack, b.name) });
  await sshAcross(nodeOf.second, b, { ...a, ip: await fixedIp(o.openstack, a.name) });
  o.say(`${a.name} on ${first} and ${b.name} on ${second} ping and SSH to each other over Geneve`);

  // The second node is lost.
  const firstNode = nodeOf.first;
  const before = await guestUptime(firstNode, a);
  const loop = pingLoop(firstNode, a.fip);
  const lost = Date.now();
  await o.loseSecond();
  await until(`nova-compute on ${second} reported down`, 60, 5000, async () => {
    const services = JSON.parse(await o.openstack('compute', 'service', 'list', '--service', 'nova-compute', '-f', 'json')) as Row[]; // biome-ignore format: one call
    const state = services.find((s) => s.Host === second)?.State;
    return state === 'down' ? undefined : `${second}: ${String(state)}`;
  });
  const downAfter = (Date.now() - lost) / 1000;
  const after = await guestUptime(firstNode, a);
  const { gap, lost: unanswered } = await loop.stop();
  assert.ok(
    after > before,
    `${a.name} restarted while ${second} was lost (uptime ${before} s, then ${after} s)`,
  );
  assert.ok(gap < 5, `${a.name} on its floating IP went unanswered for ${gap.toFixed(1)} s while ${second} was lost`); // biome-ignore format: one line
  o.say(`${second} lost: its nova-compute reported down after ${downAfter.toFixed(0)} s; ${a.name} kept running (uptime ${before.toFixed(0)} -> ${after.toFixed(0)} s), longest ping gap ${gap.toFixed(1)} s, ${unanswered} unanswered`); // biome-ignore format: one line

  const back = new Date();
  await o.bringBackSecond();
  await checkServerBack(o.openstack, o.node(second), b.name, back);
  await sshAnswers(o.node(second), b, `after ${second} came back`);
  o.say(`${second} back: ${b.name} answered SSH again ${((Date.now() - back.getTime()) / 1000).toFixed(0)} s later`); // biome-ignore format: one line

  // To the first node while it runs, then back, stopped.
  await checkLiveMigration(o, b, second, first);
  await checkColdMigration(o, b, first, second);
}

/**
 * Live migration: `guest` moves from node `from` to node `to` while it runs (Nova chooses block
 * migration or not by whether the instances folder is shared). It keeps its addresses, its
 * floating IP and its uptime. Its floating IP is pinged from where each node reaches it, at once:
 * the host, on a shared external network (network.externalBridge); otherwise each node's pod,
 * which reaches it only while the guest is on its own node (floating IPs are NATed on their
 * guest's node), so that the longest gap between answers of either is how long a client on a
 * shared external network would have lost it. Returns the numbers it prints.
 */
export async function checkLiveMigration(
  o: Pick<TwoNodes, 'openstack' | 'node' | 'say'>,
  guest: Guest,
  from: string,
  to: string,
): Promise<{ seconds: number; gap: number }> {
  const hostOf = async () =>
    (await o.openstack('server', 'show', guest.name, '-f', 'value', '-c', 'OS-EXT-SRV-ATTR:host')).trim();
  assert.equal(await hostOf(), from, `${guest.name} was to start on ${from}`);
  const ip = await fixedIp(o.openstack, guest.name);
  const uptime = await guestUptime(o.node(from), guest);
  const loops = [pingLoop(o.node(from), guest.fip), pingLoop(o.node(to), guest.fip)];
  await sleep(3000);
  const start = Date.now();
  // --host needs compute API 2.30; block migration is "auto" from 2.25.
  await o.openstack('--os-compute-api-version', '2.79', 'server', 'migrate', '--live-migration', '--host', to, '--wait', guest.name); // biome-ignore format: one call
  const seconds = (Date.now() - start) / 1000;
  const where = await hostOf();
  if (where !== to) {
    const migrations = await o.openstack('server', 'migration', 'list', '--server', guest.name, '-f', 'json');
    assert.fail(`${guest.name} is still on ${where} after its live migration to ${to}:\n${migrations}`);
  }
  const after = await guestUptime(o.node(to), guest);
  await sleep(2000);
  const answers = (await Promise.all(loops.map((l) => l.stop())))
    .flatMap((r) => r.times)
    .sort((a, b) => a - b);
  const gap = longestGap(answers);
  assert.equal(await fixedIp(o.openstack, guest.name), ip, `${guest.name} changed its address`);
  const addresses = await o.openstack('server', 'show', guest.name, '-f', 'value', '-c', 'addresses');
  assert.ok(addresses.includes(guest.fip), `${guest.name} lost its floating IP ${guest.fip}: ${addresses}`);
  assert.ok(after > uptime, `${guest.name} restarted in its migration (uptime ${uptime} s, then ${after} s)`);
  assert.ok(gap < 10, `${guest.name}'s floating IP went unanswered for ${gap.toFixed(1)} s in its migration`);
  o.say(`${guest.name} live-migrated from ${from} to ${to} in ${seconds.toFixed(1)} s, kept ${ip} and ${guest.fip} and ran on (uptime ${uptime.toFixed(0)} -> ${after.toFixed(0)} s); its floating IP went unanswered for ${gap.toFixed(1)} s at most`); // biome-ignore format: one line
  return { seconds, gap };
}

/**
 * Cold migration: `guest` is stopped on node `from` and started on node `to` (Nova asks the other
 * node over SSH whether the instances folder is shared, and copies the disk over SSH when it is
 * not), then the move is confirmed. It keeps its addresses and answers SSH on its floating IP on
 * the new node.
 */
export async function checkColdMigration(
  o: Pick<TwoNodes, 'openstack' | 'node' | 'say'>,
  guest: Guest,
  from: string,
  to: string,
): Promise<{ seconds: number }> {
  const show = async () => JSON.parse(await o.openstack('server', 'show', guest.name, '-f', 'json')) as Row;
  const ip = await fixedIp(o.openstack, guest.name);
  const start = Date.now();
  // --host needs compute API 2.56.
  await o.openstack('--os-compute-api-version', '2.56', 'server', 'migrate', '--host', to, '--wait', guest.name); // biome-ignore format: one call
  const moved = await show();
  if (moved.status !== 'VERIFY_RESIZE' || moved['OS-EXT-SRV-ATTR:host'] !== to) {
    const migrations = await o.openstack('server', 'migration', 'list', '--server', guest.name, '-f', 'json');
    assert.fail(`${guest.name} is ${String(moved.status)} on ${String(moved['OS-EXT-SRV-ATTR:host'])} after its cold migration to ${to}:\n${String(moved.fault ?? '')}\n${migrations}`); // biome-ignore format: one line
  }
  await o.openstack('server', 'resize', 'confirm', guest.name);
  await until(`${guest.name} ACTIVE after its migration was confirmed`, 30, 2000, async () => {
    const s = await show();
    return s.status === 'ACTIVE' ? undefined : String(s.status);
  });
  await sshAnswers(o.node(to), guest, `on ${to}`);
  const seconds = (Date.now() - start) / 1000;
  assert.equal(await fixedIp(o.openstack, guest.name), ip, `${guest.name} changed its address`);
  o.say(`${guest.name} cold-migrated from ${from} to ${to}: SSH on ${guest.fip} there ${seconds.toFixed(1)} s after the migrate command, same address ${ip}`); // biome-ignore format: one line
  return { seconds };
}

/**
 * A node that left for good leaves records: its compute service (with its hypervisor) and its
 * network agents, which would count as down from then on. An operator removes them so.
 */
export async function forgetNode(openstack: OpenStack, name: string): Promise<void> {
  const services = JSON.parse(await openstack('compute', 'service', 'list', '-f', 'json')) as Row[];
  for (const s of services.filter((x) => x.Host === name)) {
    await openstack('compute', 'service', 'delete', String(s.ID));
  }
  const agents = JSON.parse(await openstack('network', 'agent', 'list', '-f', 'json')) as Row[];
  for (const a of agents.filter((x) => x.Host === name)) {
    await openstack('network', 'agent', 'delete', String(a.ID));
  }
}
