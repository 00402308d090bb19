import { exec } from '../../_exec.js';
import { PodstackError } from '../../errors.js';
import type { Reporter } from '../../events.js';
import { hashOf } from '../../model/hash.js';
import type { Podman } from '../../podman/runner.js';
import { addressIn } from './network.js';

/**
 * The host's link to the cloud's external network, as devstack's br-ex gives the host an address
 * on the public network: a veth pair whose one end is a port of the node pod's br-ex and whose
 * other end, on the host, has the external network's second address (the first is the node's
 * own, the floating IPs' gateway). The host then has a route of its own to every floating IP,
 * and `ping`/`ssh` to one work from where `up` ran.
 *
 * Nothing else changes on the host, and a guest reaches nothing on it: packets that come in on
 * the link are accepted only as replies to what the host sent (conntrack), and nothing is
 * forwarded to or from it (the host forwards for Podman's own networks, so a guest's router
 * pointed at the host's address would otherwise leave the machine through it).
 *
 * With a real external network (network.externalBridge) the host's end is a port of that bridge
 * instead, with no address and no fence: the network is the operator's, and so are its addresses
 * (the bridge's own, if any, is the host's) and its routers.
 */
export interface HostLink {
  /** The host's interface (its name fits IFNAMSIZ: 15 characters). */
  readonly device: string;
  /** The host's address on the external network, with its prefix. */
  readonly address: string;
  /** The external network's subnet. */
  readonly subnet: string;
  /** network.externalBridge: the host's end is its port and has no address. */
  readonly bridge?: string;
}

/** The pod's end of the pair, a port of br-ex in the node pod's network namespace. */
export const POD_END = 'podstack-host';
const BRIDGE = 'br-ex';

/** The link of a cloud whose external network is `subnet`: its name from the cloud's. */
export function hostLinkOf(cloud: string, subnet: string, bridge = ''): HostLink {
  const bits = subnet.split('/')[1];
  const address = addressIn(subnet, 2);
  return {
    device: `psx${hashOf(cloud).slice(0, 8)}`,
    address: `${address}/${bits}`,
    subnet,
    ...(bridge ? { bridge } : {}),
  };
}

/** The rules (iptables arguments after the chain operation) that fence the link, in order. */
export function fenceRules(link: HostLink, cloud: string): { chain: string; rule: string[] }[] {
  const tag = ['-m', 'comment', '--comment', `podstack:${cloud}`];
  return [
    // Replies to what the host sent (a ping, an SSH session) come in; nothing else does.
    {
      chain: 'INPUT',
      rule: [
        '-i',
        link.device,
        ...tag,
        '-m',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '-j',
        'ACCEPT',
      ],
    },
    { chain: 'INPUT', rule: ['-i', link.device, ...tag, '-j', 'DROP'] },
    { chain: 'FORWARD', rule: ['-i', link.device, ...tag, '-j', 'DROP'] },
    { chain: 'FORWARD', rule: ['-o', link.device, ...tag, '-j', 'DROP'] },
  ];
}

async function run(file: string, args: readonly string[]) {
  const r = await exec(file, args);
  if (r.notFound)
    throw new PodstackError(`${file} is not installed`, {
      hint: 'podstack up installs it (iproute2, iptables, ethtool); or set network.hostLink: false.',
    });
  return r;
}

async function must(file: string, args: readonly string[]): Promise<string> {
  const r = await run(file, args);
  if (r.exitCode !== 0)
    throw new PodstackError(
      `the host link to the external network: ${file} ${args.join(' ')}: ${r.output.trim()}`,
      {
        hint: 'Set network.hostLink: false to leave floating IPs reachable from the node pod only.',
      },
    );
  return r.stdout;
}

async function linkExists(device: string, netnsPid?: number): Promise<boolean> {
  const args = ['link', 'show', 'dev', device];
  const r = netnsPid
    ? await run('nsenter', ['-t', String(netnsPid), '-n', 'ip', ...args])
    : await run('ip', args);
  return r.exitCode === 0;
}

export interface EnsureHostLinkOptions {
  readonly podman: Podman;
  readonly cloud: string;
  readonly link: HostLink;
  /** The node pod's container that runs ovs-vsctl (and whose network namespace is the pod's). */
  readonly container: string;
  readonly report: Reporter;
}

/**
 * Makes the link (again, when the node pod is new: its end went with the old pod's namespace),
 * and its fence; keeps what is already right. Returns why it made none, or undefined.
 */
export async function ensureHostLink(o: EnsureHostLinkOptions): Promise<string | undefined> {
  const { link } = o;
  const inspect = await o.podman.run(['inspect', '--format', '{{.State.Pid}}', o.container]);
  const pid = Number(inspect.stdout.trim());
  if (inspect.exitCode !== 0 || !pid) return `${o.container} is not running`;
  const why = await (link.bridge ? checkBridge(link.bridge) : subnetTaken(link));
  if (why) return why;

  const hostEnd = await linkExists(link.device);
  const podEnd = await linkExists(POD_END, pid);
  if (!(hostEnd && podEnd)) {
    if (hostEnd) await must('ip', ['link', 'del', 'dev', link.device]);
    if (podEnd) await must('nsenter', ['-t', String(pid), '-n', 'ip', 'link', 'del', 'dev', POD_END]);
    await must('ip', [
      'link',
      'add',
      link.device,
      'type',
      'veth',
      'peer',
      'name',
      POD_END,
      'netns',
      String(pid),
    ]);
  }
  await setHostEnd(link);
  await must('nsenter', ['-t', String(pid), '-n', 'ip', 'link', 'set', 'dev', POD_END, 'up']);
  // The port stays in the OVS database (the pod's) across a new pair: --may-exist keeps it.
  const port = await o.podman.run([
    'exec',
    o.container,
    'ovs-vsctl',
    '--may-exist',
    'add-port',
    BRIDGE,
    POD_END,
  ]);
  if (port.exitCode !== 0)
    throw new PodstackError(`cannot add ${POD_END} to ${BRIDGE} in ${o.container}: ${port.stderr.trim()}`);
  await setFence(link, o.cloud);
  if (!(hostEnd && podEnd))
    o.report({
      type: 'step',
      message: link.bridge
        ? `the external network ${link.subnet} is this host's bridge ${link.bridge}: ${link.device} is its port`
        : `floating IPs answer on this host: ${link.subnet} through ${link.device} (${link.address}), which lets in replies only`,
    });
  return undefined;
}

/** Another interface routing the subnet (another cloud's link, a real network): two routes to the same addresses would send one cloud's traffic to the other. */
async function subnetTaken(link: HostLink): Promise<string | undefined> {
  const routes = JSON.parse((await must('ip', ['-j', 'route', 'show', 'match', link.subnet])) || '[]') as {
    dst: string;
    dev: string;
  }[];
  const taken = routes.find((r) => r.dst === link.subnet && r.dev !== link.device);
  return taken ? `${link.subnet} is already routed through ${taken.dev} on this host` : undefined;
}

/** network.externalBridge must name a Linux bridge of this host's: a clear error otherwise. */
async function checkBridge(bridge: string): Promise<undefined> {
  const kind = await run('ip', ['-d', '-j', 'link', 'show', 'dev', bridge]);
  if (kind.exitCode !== 0 || !kind.stdout.includes('"info_kind":"bridge"'))
    throw new PodstackError(`network.externalBridge: this host has no Linux bridge named ${bridge}`, {
      hint: "Make it (ip link add NAME type bridge) with the external network's NIC as its port, or fix the name.",
    });
  return undefined;
}

/** The host's end: the external network's second address, or a port of network.externalBridge. */
async function setHostEnd(link: HostLink): Promise<void> {
  if (link.bridge) {
    await must('ip', ['addr', 'flush', 'dev', link.device]);
    await must('ip', ['link', 'set', 'dev', link.device, 'master', link.bridge]);
    // What the host sends to a floating IP gets its checksums here: Open vSwitch's userspace
    // datapath reads the other end and does not fill them in.
    await must('ethtool', ['-K', link.device, 'tx', 'off']);
  } else {
    await must('ip', ['link', 'set', 'dev', link.device, 'nomaster']);
    await must('ip', ['addr', 'replace', link.address, 'dev', link.device]);
  }
  await must('ip', ['link', 'set', 'dev', link.device, 'up']);
}

/** The fence's rules, each at the top in order; none for a port of network.externalBridge. */
async function setFence(link: HostLink, cloud: string): Promise<void> {
  // Inserted from the last, each at the top: they end up in order, above anything else.
  for (const { chain, rule } of [...fenceRules(link, cloud)].reverse()) {
    const present = (await run('iptables', ['-w', '-C', chain, ...rule])).exitCode === 0;
    if (!present && !link.bridge) await must('iptables', ['-w', '-I', chain, '1', ...rule]);
    if (present && link.bridge) await must('iptables', ['-w', '-D', chain, ...rule]);
  }
}

/** Removes the link and its fence (`down`); what is not there is not an error. */
export async function removeHostLink(cloud: string, link: HostLink): Promise<void> {
  if (await linkExists(link.device)) await must('ip', ['link', 'del', 'dev', link.device]);
  for (const { chain, rule } of fenceRules(link, cloud)) {
    while ((await run('iptables', ['-w', '-C', chain, ...rule])).exitCode === 0)
      await must('iptables', ['-w', '-D', chain, ...rule]);
  }
}
