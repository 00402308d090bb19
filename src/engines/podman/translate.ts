import type { V1Container, V1PodSpec, V1Probe, V1Volume } from '@kubernetes/client-node';
import { hashOf } from '../../model/hash.js';
import {
  ANNOTATION,
  isWorkload,
  type KubeObject,
  LABEL,
  type Service,
  type Workload,
} from '../../model/objects.js';
import type { Plan, PlannedUnit } from '../../model/unit.js';

/**
 * Podman 4.3 has no Services, Jobs or readiness probes (DESIGN.md), so the
 * Podman engine maps the plan's Kubernetes objects onto what Podman has:
 *   Deployment -> a pod (shared network namespace, like a Kubernetes pod)
 *   Job        -> containers run to completion, kept afterwards as the record
 *   Service    -> network aliases on the pods it selects; with externalIPs (a published
 *                 Service), ports published on those addresses instead
 *   hostPort   -> a published port
 *   PVC        -> a named volume; ConfigMap/Secret -> a host folder mounted read-only
 * A plan made for Podman has no in-cluster waiting (podstack orders the units itself), so
 * ServiceAccounts and RBAC never reach this engine.
 * This file is the pure half of that mapping: objects in, podman arguments out.
 */

export const PODMAN_LABEL = {
  /** On a container: what it runs (its spec and the config it mounts); a Job's: the unit's hash. */
  hash: 'podstack.dev/hash',
  /** On a pod and its containers: what the pod itself is (ports, names, volumes, namespaces). */
  podHash: 'podstack.dev/pod-hash',
  role: 'podstack.dev/role',
  /** On the volumes of emptyDirs: they belong to a pod, and go with it on `down`. */
  scratch: 'podstack.dev/scratch',
} as const;

export interface ContainerRun {
  readonly name: string;
  readonly role: 'init' | 'main';
  /** Arguments for `podman create`, without the name, pod and labels. */
  readonly args: readonly string[];
  readonly readiness?: V1Probe;
  /**
   * What this container runs: its arguments and probe, and the data of the ConfigMaps and
   * Secrets it mounts. A Deployment's container whose hash changed is replaced alone, in the pod
   * that stays.
   */
  readonly hash: string;
}

export type Surge = { readonly socket: string } | { readonly logged: string };

export interface PodmanWorkload {
  readonly unit: string;
  readonly kind: 'deployment' | 'job';
  readonly hash: string;
  /** What the pod itself is; a change makes a new pod (see PODMAN_LABEL.podHash). */
  readonly podHash: string;
  /** The pod's containers share one PID namespace (the pod's shareProcessNamespace). */
  readonly sharePid: boolean;
  /**
   * Set on an API that can run two generations on one port: how to tell that the new one alone
   * is ready. A uWSGI server is asked through a Unix socket inside its container
   * (ANNOTATION.surge); an eventlet server, which binds the port itself beside the old one, says
   * so in its log (ANNOTATION.surgeLog).
   */
  readonly surge?: Surge;
  /**
   * Set on a Deployment that rolls with no port to share (a queue worker: RollingUpdate, no
   * surge): the new container starts beside the old one, must keep running `settleSeconds`
   * (minReadySeconds), and the old one then has `graceSeconds` (terminationGracePeriodSeconds).
   */
  readonly overlap?: { readonly settleSeconds: number; readonly graceSeconds: number };
  /** Set on a pod that runs guests (ANNOTATION.guests): a new pod stops them. */
  readonly guests?: { readonly container: string; readonly list: readonly string[] };
  /** Pod name for deployments; the prefix of container names for jobs. */
  readonly name: string;
  readonly hostname?: string;
  readonly aliases: readonly string[];
  /** host-address:host-port:container-port */
  readonly publish: readonly string[];
  readonly containers: readonly ContainerRun[];
  readonly claims: readonly string[];
  /** Its emptyDirs' volumes (full names), made empty again with every new pod. */
  readonly scratch: readonly string[];
  readonly backoffLimit: number;
}

export interface PodmanNames {
  readonly cloud: string;
  /** The node's name, as the downward API's spec.nodeName gives it: this host's. */
  readonly node: string;
  readonly network: string;
  volume(claim: string): string;
  /** Host folder holding a ConfigMap's or Secret's files. */
  configDir(kind: 'Secret' | 'ConfigMap', name: string): string;
}

function matches(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/**
 * host-address:host-port:container-port for every port the pod publishes: a published Service's
 * ports on each of its externalIPs, and any container port with a hostPort.
 */
function publishedPorts(pod: V1PodSpec, published: readonly Service[]): string[] {
  const at = (address: string, hostPort: number, containerPort: number | string) =>
    `${address.includes(':') ? `[${address}]` : address}:${hostPort}:${containerPort}`;
  return [
    ...published.flatMap((s) =>
      (s.spec?.externalIPs ?? []).flatMap((ip) =>
        (s.spec?.ports ?? []).map((p) => at(ip, p.port, p.targetPort ?? p.port)),
      ),
    ),
    ...pod.containers.flatMap((c) =>
      (c.ports ?? []).flatMap((p) =>
        p.hostPort === undefined ? [] : [at(p.hostIP ?? '', p.hostPort, p.containerPort)],
      ),
    ),
  ];
}

/**
 * The volume that stands for a hostPath. With one host, a node folder is a folder that outlives
 * the pod, which a named volume is; as a volume it also carries the cloud's labels, so `down
 * --purge` finds it, and two clouds on one host never share it.
 */
export function hostPathClaim(path: string): string {
  return `host${path.replace(/[^A-Za-z0-9]+/g, '-').replace(/-$/, '')}`;
}

/** The volume that stands for a pod's emptyDir: emptied whenever the pod is made again. */
export function scratchClaim(unit: string, volume: string): string {
  return `${unit}-${volume}`;
}

function volumeArg(
  v: V1Volume,
  mountPath: string,
  readOnly: boolean,
  names: PodmanNames,
  unit: string,
): string {
  const ro = readOnly ? ':ro' : '';
  if (v.emptyDir) return `${names.volume(scratchClaim(unit, v.name))}:${mountPath}${ro}`;
  if (v.persistentVolumeClaim) return `${names.volume(v.persistentVolumeClaim.claimName)}:${mountPath}${ro}`;
  if (v.hostPath) return `${names.volume(hostPathClaim(v.hostPath.path))}:${mountPath}${ro}`;
  if (v.secret?.secretName) {
    if (v.secret.items)
      throw new Error(`volume ${v.name}: secret items are not supported by the Podman engine`);
    return `${names.configDir('Secret', v.secret.secretName)}:${mountPath}:ro`;
  }
  if (v.configMap?.name) {
    if (v.configMap.items)
      throw new Error(`volume ${v.name}: configMap items are not supported by the Podman engine`);
    return `${names.configDir('ConfigMap', v.configMap.name)}:${mountPath}:ro`;
  }
  throw new Error(
    `volume ${v.name}: only persistentVolumeClaim, hostPath, emptyDir, secret and configMap volumes are supported`,
  );
}

function containerArgs(c: V1Container, pod: V1PodSpec, names: PodmanNames, unit: string): string[] {
  const args: string[] = [];
  for (const e of c.env ?? []) {
    // The downward API's node name: on Podman, the one node is this host.
    if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') {
      args.push('--env', `${e.name}=${names.node}`);
      continue;
    }
    if (e.valueFrom)
      throw new Error(`container ${c.name}: env ${e.name} uses valueFrom; mount the Secret instead`);
    args.push('--env', `${e.name}=${e.value ?? ''}`);
  }
  for (const m of c.volumeMounts ?? []) {
    const v = pod.volumes?.find((x) => x.name === m.name);
    if (!v) throw new Error(`container ${c.name}: volume ${m.name} is not defined in the pod`);
    if (m.subPath)
      throw new Error(`container ${c.name}: subPath mounts are not supported by the Podman engine`);
    args.push('--volume', volumeArg(v, m.mountPath, m.readOnly ?? false, names, unit));
  }
  if (c.securityContext?.privileged) args.push('--privileged');
  if (c.workingDir) args.push('--workdir', c.workingDir);
  if (c.command) args.push('--entrypoint', JSON.stringify(c.command));
  if (!c.image) throw new Error(`container ${c.name} has no image`);
  args.push(c.image, ...(c.args ?? []));
  return args;
}

/** The data of every ConfigMap and Secret in the plan, by kind and name. */
type ConfigData = ReadonlyMap<string, unknown>;
const configKey = (kind: string, name: string) => `${kind}/${name}`;

/** The data of the ConfigMaps and Secrets a container mounts: part of what it runs. */
function mountedConfig(c: V1Container, pod: V1PodSpec, config: ConfigData): unknown[] {
  return (c.volumeMounts ?? []).flatMap((m) => {
    const v = pod.volumes?.find((x) => x.name === m.name);
    if (v?.secret?.secretName) return [config.get(configKey('Secret', v.secret.secretName)) ?? null];
    if (v?.configMap?.name) return [config.get(configKey('ConfigMap', v.configMap.name)) ?? null];
    return [];
  });
}

/**
 * How a Deployment's changed container is replaced in its running pod: an API beside the old
 * one on the same port (surge), a queue worker beside the old one (its RollingUpdate), or
 * neither (stopped, then started).
 */
function rollOf(workload: Workload): Pick<PodmanWorkload, 'surge' | 'overlap'> {
  const annotations = workload.metadata.annotations ?? {};
  const socket = annotations[ANNOTATION.surge];
  const logged = annotations[ANNOTATION.surgeLog];
  const surge: Surge | undefined = socket ? { socket } : logged ? { logged } : undefined;
  if (surge) return { surge };
  if (workload.kind !== 'Deployment' || workload.spec?.strategy?.type !== 'RollingUpdate') return {};
  return {
    overlap: {
      settleSeconds: workload.spec.minReadySeconds ?? 0,
      graceSeconds: workload.spec.template.spec?.terminationGracePeriodSeconds ?? 30,
    },
  };
}

export function translateWorkload(
  unit: PlannedUnit,
  workload: Workload,
  services: readonly Service[],
  names: PodmanNames,
  config: ConfigData = new Map(),
): PodmanWorkload {
  const template = workload.spec!.template;
  const pod = template.spec!;
  const labels = template.metadata?.labels;
  const selecting = services.filter((s) => matches(s.spec?.selector, labels));
  const published = selecting.filter((s) => (s.spec?.externalIPs ?? []).length > 0);
  const claims = (pod.volumes ?? []).flatMap((v) =>
    v.persistentVolumeClaim
      ? [v.persistentVolumeClaim.claimName]
      : v.hostPath
        ? [hostPathClaim(v.hostPath.path)]
        : [],
  );
  const kind = workload.kind === 'Job' ? 'job' : 'deployment';
  const run = (c: V1Container, role: 'init' | 'main'): ContainerRun => {
    const args = containerArgs(c, pod, names, unit.name);
    const readiness = c.readinessProbe;
    return {
      name: c.name,
      role,
      args,
      ...(readiness ? { readiness } : {}),
      hash:
        kind === 'job'
          ? unit.hash
          : hashOf({ role, args, readiness: readiness ?? null, config: mountedConfig(c, pod, config) }),
    };
  };
  const containers = [
    ...(pod.initContainers ?? []).map((c) => run(c, 'init')),
    ...pod.containers.map((c) => run(c, 'main')),
  ];
  const annotations = workload.metadata.annotations ?? {};
  const guestContainer = annotations[ANNOTATION.guests];
  const guests = guestContainer
    ? { container: guestContainer, list: JSON.parse(annotations[ANNOTATION.listGuests] ?? '[]') as string[] }
    : undefined;
  const { surge, overlap } = rollOf(workload);
  const shape = {
    hostname: pod.hostname ?? null,
    aliases: selecting
      .filter((s) => !published.includes(s))
      .map((s) => s.metadata.name)
      .sort(),
    publish: publishedPorts(pod, published),
    claims,
    scratch: (pod.volumes ?? []).flatMap((v) =>
      v.emptyDir ? [names.volume(scratchClaim(unit.name, v.name))] : [],
    ),
    sharePid: pod.shareProcessNamespace === true,
    // The pod's sysctl (createPod). Written as before the log-ready surge existed, so that a
    // podstack upgrade does not make the uWSGI servers' pods anew (an outage) for nothing.
    surge: surge === undefined ? null : 'socket' in surge ? surge.socket : surge,
  };
  return {
    unit: unit.name,
    kind,
    hash: unit.hash,
    // Init containers run once, when a pod is made: a change to one needs a new pod.
    podHash: hashOf({ ...shape, init: containers.filter((c) => c.role === 'init').map((c) => c.hash) }),
    ...(guests ? { guests } : {}),
    ...(surge ? { surge } : {}),
    ...(overlap ? { overlap } : {}),
    name: `${names.cloud}-${unit.name}`,
    ...(pod.hostname ? { hostname: pod.hostname } : {}),
    aliases: shape.aliases,
    publish: shape.publish,
    sharePid: shape.sharePid,
    containers,
    claims,
    scratch: shape.scratch,
    backoffLimit: workload.kind === 'Job' ? (workload.spec?.backoffLimit ?? 2) : 0,
  };
}

/** Every workload of the plan, mapped for Podman, keyed by unit name. */
export function translatePlan(plan: Plan, names: PodmanNames): Map<string, PodmanWorkload> {
  const all: KubeObject[] = plan.units.flatMap((u) => u.objects);
  const services = all.filter((o): o is Service => o.kind === 'Service');
  const config = new Map(
    all.flatMap((o) =>
      o.kind === 'Secret' || o.kind === 'ConfigMap'
        ? [[configKey(o.kind, o.metadata.name), o.data ?? null] as const]
        : [],
    ),
  );
  const out = new Map<string, PodmanWorkload>();
  for (const unit of plan.units) {
    const workload = unit.objects.find(isWorkload);
    if (workload) out.set(unit.name, translateWorkload(unit, workload, services, names, config));
  }
  return out;
}

/** Labels every podman object of a unit carries: the plan's identity labels plus the unit hash. */
export function podmanLabels(cloud: string, unit: string, hash: string): Record<string, string> {
  return {
    [LABEL.managedBy]: 'podstack',
    [LABEL.instance]: cloud,
    [LABEL.unit]: unit,
    [PODMAN_LABEL.hash]: hash,
  };
}
