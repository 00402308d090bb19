import assert from 'node:assert/strict';
import { readlink } from 'node:fs/promises';
import { exec } from '../src/_exec.js';
import { type CloudNode, sshOptions, until } from './_cloud-checks.js';
import type { Guest } from './_guest-network.js';

/**
 * Guests outlive everything on their node but the node pod itself: a config change that replaces
 * a container, and a crash (SIGKILL from the host, as the OOM killer sends) of any process of the
 * node. Measured as a user feels it: the guest's uptime over SSH, and pings to its floating IP
 * five times a second from the node, whose longest gap is printed.
 */

/** A node process by its command name (the kernel's comm, 15 characters at most). */
export const NODE_PARTS = [
  'ovn-controller',
  'nova-compute',
  'libvirtd',
  'ovs-vswitchd',
  'ovsdb-server',
  'neutron-ovn-met',
] as const;
export type NodePart = (typeof NODE_PARTS)[number];

/**
 * The node's network namespace, as the host names it (net:[inode]). Asked again while the
 * process the node is entered through is itself restarting (just killed).
 */
async function nodeNetns(node: CloudNode): Promise<string> {
  let ns = '';
  await until('the node network namespace', 60, 500, async () => {
    const r = await node.run('readlink', ['/proc/self/ns/net']);
    ns = r.output.trim();
    return r.exitCode === 0 && ns.startsWith('net:') ? undefined : r.output.slice(-200);
  });
  return ns;
}

/** The oldest process named `part` in the node's network namespace `ns` (the parent of its workers). */
export async function partPid(node: CloudNode, part: NodePart, netns?: string): Promise<number | undefined> {
  const ns = netns ?? (await nodeNetns(node));
  const pids = (await exec('pgrep', ['-x', part])).stdout.split('\n').filter(Boolean).map(Number);
  const mine: { pid: number; start: number }[] = [];
  for (const pid of pids) {
    const net = await readlink(`/proc/${pid}/ns/net`).catch(() => '');
    if (net !== ns) continue;
    const stat = await exec('ps', ['-o', 'etimes=', '-p', String(pid)]);
    mine.push({ pid, start: -Number(stat.stdout.trim() || 0) });
  }
  mine.sort((a, b) => a.start - b.start);
  return mine[0]?.pid;
}

/** SIGKILL from the host, as the OOM killer sends it: the pid that was killed. */
export async function killPart(node: CloudNode, part: NodePart, netns?: string): Promise<number> {
  // A part may be starting again as this begins: the metadata agent, for one, exits when the
  // switch's database does, and its runtime restarts it. Wait for it first.
  // It may also exit by itself between being found and being killed (ESRCH): find it again.
  let pid: number | undefined;
  await until(`a ${part} process in the node`, 120, 500, async () => {
    pid = await partPid(node, part, netns);
    if (pid === undefined) return 'none';
    try {
      process.kill(pid, 'SIGKILL');
      return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return `${pid} exited before it was killed`;
      throw e;
    }
  });
  return pid!;
}

/** SIGKILL from the host, then the time until a new process of the same name runs. */
export async function crashPart(node: CloudNode, part: NodePart): Promise<number> {
  const ns = await nodeNetns(node);
  const killed = Date.now();
  const pid = await killPart(node, part, ns);
  await until(`${part} running again after SIGKILL`, 120, 500, async () => {
    const now = await partPid(node, part, ns);
    return now !== undefined && now !== pid ? undefined : `still ${now ?? 'none'}`;
  });
  return (Date.now() - killed) / 1000;
}

/** The guest's uptime in seconds, read over SSH from the node. */
export async function guestUptime(node: CloudNode, guest: Guest): Promise<number> {
  let seconds = 0;
  await until(`uptime of ${guest.name} over ssh`, 20, 2000, async () => {
    const r = await node.reach('ssh', [...sshOptions(guest.key), `root@${guest.fip}`, 'cat /proc/uptime']);
    const up = Number(r.output.trim().split('\n').pop()?.split(' ')[0]);
    if (r.exitCode !== 0 || !Number.isFinite(up)) return r.output.slice(-200);
    seconds = up;
    return undefined;
  });
  return seconds;
}

/**
 * Pings `fip` from the node five times a second until stopped; `stop` returns the longest time
 * between two answers (from the first answer to the last), how many pings went unanswered, and
 * when each answer came (epoch seconds).
 */
export function pingLoop(
  node: CloudNode,
  fip: string,
): { stop: () => Promise<{ gap: number; lost: number; times: number[] }> } {
  const marker = `${200 + Math.floor(Math.random() * 50)}`;
  // -s makes this loop's command line unique, so that stopping it kills this one alone.
  const running = node.reach('timeout', [
    '900',
    'ping',
    '-D',
    '-n',
    '-i',
    '0.2',
    '-W',
    '1',
    '-s',
    marker,
    fip,
  ]);
  return {
    async stop() {
      await exec('pkill', ['-INT', '-f', `ping -D -n -i 0.2 -W 1 -s ${marker} ${fip}`]);
      const r = await running;
      const times = [...r.output.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]));
      assert.ok(times.length > 10, `the ping loop got ${times.length} answers:\n${r.output.slice(-400)}`);
      const gap = longestGap(times);
      const sent = /(\d+) packets transmitted, (\d+) received/.exec(r.output);
      return { gap, lost: sent ? Number(sent[1]) - Number(sent[2]) : -1, times };
    },
  };
}

/** The longest time between two of `times` (sorted, seconds); 0 for fewer than two. */
export function longestGap(times: readonly number[]): number {
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  return gap;
}

/** The parts whose crash the guest must not notice on the network (ping within 2 s). */
export const GUEST_PARTS = ['ovn-controller', 'nova-compute', 'libvirtd', 'ovs-vswitchd'] as const;

export interface SurvivalOptions {
  readonly label: string;
  /**
   * A nova-compute config change as `up` applies it: replaced in place (Podman), or refused
   * while guests run (Kubernetes, whose DaemonSet would make the node pod again).
   */
  readonly change: () => Promise<void>;
}

/**
 * The guest keeps running through a nova-compute config change and a SIGKILL of each of
 * GUEST_PARTS: its uptime over SSH never goes back, and its floating IP never stops answering
 * for 2 s. Prints the longest ping gap and how long each part took to come back.
 */
export async function checkGuestSurvives(node: CloudNode, guest: Guest, o: SurvivalOptions): Promise<void> {
  await withGuestWatched(
    node,
    guest,
    o.label,
    async (back) => {
      const changeStart = Date.now();
      await o.change();
      back.push(`config change ${((Date.now() - changeStart) / 1000).toFixed(1)}s`);
      for (const part of GUEST_PARTS) back.push(`${part} ${(await crashPart(node, part)).toFixed(1)}s`);
    },
    2,
  );
}

/**
 * Every node part killed `kills` times in a row comes back by itself, the guest keeps running,
 * and `status` is healthy again within a minute, with no `up` (`unhealthy` says why it is not).
 * The ping gap is printed, not bounded: a runtime may wait before restarting a container that
 * died twice (the kubelet's back-off).
 */
export async function checkPartsComeBack(
  node: CloudNode,
  guest: Guest,
  o: { label: string; kills: number; unhealthy: () => Promise<string | undefined> },
): Promise<void> {
  await withGuestWatched(node, guest, o.label, async (back) => {
    for (const part of NODE_PARTS) {
      const times: string[] = [];
      for (let i = 0; i < o.kills; i++) times.push((await crashPart(node, part)).toFixed(1));
      back.push(`${part} ${times.join('+')}s`);
    }
    await until('the node healthy in status again, with no up', 60, 1000, o.unhealthy);
  });
}

/**
 * Runs `act` with the guest watched: its uptime over SSH before and after (it must not go back)
 * and pings to its floating IP throughout, whose longest gap must stay under `maxGap` seconds.
 */
async function withGuestWatched(
  node: CloudNode,
  guest: Guest,
  label: string,
  act: (back: string[]) => Promise<void>,
  maxGap = Number.POSITIVE_INFINITY,
): Promise<void> {
  const before = await guestUptime(node, guest);
  const since = Date.now();
  const ping = pingLoop(node, guest.fip);
  const back: string[] = [];
  let stopped: { gap: number; lost: number } | undefined;
  try {
    await act(back);
  } finally {
    stopped = await ping.stop();
  }
  const after = await guestUptime(node, guest);
  const elapsed = (Date.now() - since) / 1000;
  console.log(
    `    ${label}: guest ${guest.name} kept running (uptime ${before.toFixed(0)}s -> ${after.toFixed(0)}s over ${elapsed.toFixed(0)}s); ` +
      `longest ping gap ${stopped.gap.toFixed(2)}s, ${stopped.lost} pings unanswered; back after: ${back.join(', ')}`,
  );
  assert.ok(
    after >= before + elapsed - 5,
    `the guest restarted: uptime ${before}s, then ${after}s ${elapsed}s later`,
  );
  assert.ok(stopped.gap < maxGap, `the floating IP did not answer for ${stopped.gap.toFixed(2)}s`);
}
