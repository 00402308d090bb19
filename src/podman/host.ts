import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileIfChanged } from '../_fs.js';
import { Podman } from './runner.js';

/**
 * Podman works differently from host to host. On some (this project's CI among
 * them) root lacks CAP_SYS_RESOURCE, so Podman's default rlimits (far above the
 * process's own hard limits) fail with "setrlimit: Operation not permitted", and
 * crun fails on hybrid cgroup v1 hosts. podstack detects these facts and writes
 * a containers.conf it owns (passed as CONTAINERS_CONF), never touching /etc.
 */

export interface HostFacts {
  /** Effective capabilities of this process (the CapEff mask from /proc/self/status). */
  readonly capEff: bigint;
  /** Hard limits of this process: a container may not be given more without CAP_SYS_RESOURCE. */
  readonly hardNofile: number;
  readonly hardNproc: number;
  readonly runtime: string;
  readonly runcAvailable: boolean;
  /** cgroup v1 with a v2 hierarchy beside it (/sys/fs/cgroup/unified): crun refuses to run there. */
  readonly cgroupHybrid: boolean;
}

export interface HostAdaptation {
  readonly containersConf: string | undefined;
  readonly reasons: readonly string[];
}

const CAP_SYS_RESOURCE = 24n;
/** Podman gives rootful containers this many open files and processes unless told otherwise. */
const PODMAN_DEFAULT_RLIMIT = 1048576;
/**
 * Podman 4.3 starts conmon (the parent of every container's runtime) with an nproc
 * limit of 32768 on such hosts, whatever its own limit: a container asking for more
 * fails with "error setting rlimit type 6". Measured, not documented.
 */
const CONMON_NPROC = 32768;

export function adaptationFor(facts: HostFacts): HostAdaptation {
  const containers: string[] = [];
  const engine: string[] = [];
  const reasons: string[] = [];
  const canRaise = (facts.capEff >> CAP_SYS_RESOURCE) & 1n;
  if (!canRaise && (facts.hardNofile < PODMAN_DEFAULT_RLIMIT || facts.hardNproc < PODMAN_DEFAULT_RLIMIT)) {
    const nofile = Math.min(facts.hardNofile, PODMAN_DEFAULT_RLIMIT);
    const nproc = Math.min(facts.hardNproc, CONMON_NPROC);
    containers.push(`default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`);
    reasons.push(
      `no CAP_SYS_RESOURCE: container rlimits capped at this process's hard limits (nofile ${nofile}, nproc ${nproc})`,
    );
  }
  if (facts.runtime === 'crun' && facts.cgroupHybrid && facts.runcAvailable) {
    engine.push('runtime = "runc"');
    reasons.push('crun does not support hybrid cgroups: using runc');
  }
  if (containers.length === 0 && engine.length === 0) return { containersConf: undefined, reasons };
  const conf = [
    '# Written by podstack for its own podman calls (CONTAINERS_CONF); see src/podman/host.ts.',
    ...(containers.length > 0 ? ['[containers]', ...containers] : []),
    ...(engine.length > 0 ? ['[engine]', ...engine] : []),
  ];
  return { containersConf: `${conf.join('\n')}\n`, reasons };
}

export function parseLimits(procLimits: string): { nofile: number; nproc: number } {
  const hard = (label: string) => {
    const line = procLimits.split('\n').find((l) => l.startsWith(label));
    const value = line?.slice(26).trim().split(/\s+/)[1];
    return value === undefined || value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
  };
  return { nofile: hard('Max open files'), nproc: hard('Max processes') };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export async function readHostFacts(): Promise<HostFacts> {
  const [status, limits] = await Promise.all([
    readFile('/proc/self/status', 'utf8'),
    readFile('/proc/self/limits', 'utf8'),
  ]);
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
  const { nofile, nproc } = parseLimits(limits);
  const paths = (process.env.PATH ?? '/usr/bin').split(':');
  const onPath = async (binary: string) =>
    (await Promise.all(paths.map((p) => exists(join(p, binary))))).some(Boolean);
  // `podman info` takes most of a second; its runtime answer only matters where crun exists.
  const runtime = (await onPath('crun'))
    ? ((await new Podman().json<{ host?: { ociRuntime?: { name?: string } } }>(['info', '--format', 'json']))
        .host?.ociRuntime?.name ?? 'unknown')
    : 'runc';
  const runcAvailable = await onPath('runc');
  return {
    capEff,
    hardNofile: nofile,
    hardNproc: nproc,
    runtime,
    runcAvailable,
    cgroupHybrid: await exists('/sys/fs/cgroup/unified/cgroup.controllers').then(
      async (v2) => v2 && (await exists('/sys/fs/cgroup/memory')),
    ),
  };
}

/**
 * Detects what this host needs and returns a Podman runner set up for it.
 * stateDir holds podstack's containers.conf when one is needed.
 */
export async function podmanForHost(
  stateDir: string,
): Promise<{ podman: Podman; adaptation: HostAdaptation }> {
  const adaptation = adaptationFor(await readHostFacts());
  if (adaptation.containersConf === undefined) return { podman: new Podman(), adaptation };
  await mkdir(stateDir, { recursive: true });
  const file = join(stateDir, 'containers.conf');
  await writeFileIfChanged(file, adaptation.containersConf);
  return { podman: new Podman({ CONTAINERS_CONF: file }), adaptation };
}
