import type {
  V1ConfigMap,
  V1Container,
  V1DaemonSet,
  V1Deployment,
  V1Job,
  V1ObjectMeta,
  V1PersistentVolumeClaim,
  V1PodSpec,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';

/**
 * The one intermediate form both engines consume: plain Kubernetes objects.
 * These builders are pure and only fill in what every podstack object shares;
 * the catalog says everything else.
 */

type Named<T> = Omit<T, 'metadata' | 'kind' | 'apiVersion'> & { metadata: V1ObjectMeta & { name: string } };

export type ConfigMap = Named<V1ConfigMap> & { apiVersion: 'v1'; kind: 'ConfigMap' };
export type Secret = Named<V1Secret> & { apiVersion: 'v1'; kind: 'Secret' };
export type Service = Named<V1Service> & { apiVersion: 'v1'; kind: 'Service' };
export type PersistentVolumeClaim = Named<V1PersistentVolumeClaim> & {
  apiVersion: 'v1';
  kind: 'PersistentVolumeClaim';
};
export type Deployment = Named<V1Deployment> & { apiVersion: 'apps/v1'; kind: 'Deployment' };
export type DaemonSet = Named<V1DaemonSet> & { apiVersion: 'apps/v1'; kind: 'DaemonSet' };
export type Job = Named<V1Job> & { apiVersion: 'batch/v1'; kind: 'Job' };
export type ServiceAccount = Named<V1ServiceAccount> & { apiVersion: 'v1'; kind: 'ServiceAccount' };
export type Role = Named<V1Role> & { apiVersion: 'rbac.authorization.k8s.io/v1'; kind: 'Role' };
export type RoleBinding = Named<V1RoleBinding> & {
  apiVersion: 'rbac.authorization.k8s.io/v1';
  kind: 'RoleBinding';
};

export type KubeObject =
  | ConfigMap
  | Secret
  | Service
  | PersistentVolumeClaim
  | Deployment
  | DaemonSet
  | Job
  | ServiceAccount
  | Role
  | RoleBinding;
export type Workload = Deployment | DaemonSet | Job;

/**
 * Where a cloud's data on a node (a hostPath: guests' disks) lives: podstack's own, under
 * NODE_DATA_ROOT/<cloud>/, so `down --purge` knows what it may delete on the node.
 */
export const NODE_DATA_ROOT = '/var/lib/podstack';

export const LABEL = {
  name: 'app.kubernetes.io/name',
  component: 'app.kubernetes.io/component',
  instance: 'app.kubernetes.io/instance',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  unit: 'podstack.dev/unit',
} as const;

export const ANNOTATION = {
  /** Hash of every ConfigMap and Secret a pod uses: a change rolls exactly those pods. */
  configHash: 'podstack.dev/config-hash',
  /** Hash of the unit an object belongs to: engines compare it to decide what changed. */
  unitHash: 'podstack.dev/unit-hash',
  /** Hash of the object as the Kubernetes engine last applied it (see writes.ts upToDate). */
  applied: 'podstack.dev/applied-hash',
  /**
   * On a workload whose pod runs guests (the value: the container that runs them): replacing the pod
   * stops them, so engines replace its changed containers alone, and replace the pod only when
   * the user allows guests to restart.
   */
  guests: 'podstack.dev/guests',
  /**
   * On an API's Deployment: a Unix socket inside its container where it also serves HTTP. The
   * API can run two generations at once on one port (both take the socket from the pod's
   * listener), and this socket lets an engine ask the new one alone whether it is ready before
   * the old one stops.
   */
  surge: 'podstack.dev/surge-socket',
  /**
   * On an API's Deployment whose every generation binds the port itself, with SO_REUSEPORT (an
   * eventlet server, which cannot take a socket from a listener): the line its log shows once it
   * serves. Two generations then share the port's connections, and an engine waits for this line
   * from the new one before the old one stops; what is queued on the old one's socket when it
   * closes moves to the new one (net.ipv4.tcp_migrate_req).
   */
  surgeLog: 'podstack.dev/surge-log',
  /** With `guests`: the command (JSON argv) that prints the running guests' names, one a line, in that container. */
  listGuests: 'podstack.dev/list-guests',
} as const;

/** Selector labels for a component of a service; the plan adds the cloud-wide ones. */
export function componentLabels(service: string, component: string): Record<string, string> {
  return { [LABEL.name]: service, [LABEL.component]: component };
}

export function secret(name: string, labels: Record<string, string>, files: Record<string, string>): Secret {
  const data = Object.fromEntries(
    Object.entries(files)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
  );
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, labels }, type: 'Opaque', data };
}

export function configMap(
  name: string,
  labels: Record<string, string>,
  files: Record<string, string>,
): ConfigMap {
  const data = Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b)));
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data };
}

export function persistentVolumeClaim(
  name: string,
  labels: Record<string, string>,
  size: string,
): PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, labels },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  };
}

export interface ServicePort {
  readonly name: string;
  readonly port: number;
  /** The container's port, when it is not `port` (a published port). */
  readonly targetPort?: number;
}

/**
 * In-cloud name and port of a component. With `externalIPs`, a published Service instead:
 * clients outside the cloud reach an API on those addresses (kube-proxy forwards them to the
 * ready pods; Podman publishes the ports on them), so the port outlives any one pod, and a
 * Deployment can start its new pod before the old one stops.
 */
export function service(
  name: string,
  selector: Record<string, string>,
  ports: readonly ServicePort[],
  externalIPs: readonly string[] = [],
): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: selector },
    spec: {
      selector,
      ports: ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: p.targetPort ?? p.port,
        protocol: 'TCP',
      })),
      ...(externalIPs.length > 0 ? { externalIPs: [...externalIPs] } : {}),
    },
  };
}

/**
 * How a Deployment replaces its pod. `recreate`: the old pod stops before the new one starts
 * (one writer, or a server that cannot run twice). `rolling`: the new pod starts, is ready,
 * and only then does the old one stop (maxSurge 1, maxUnavailable 0); `colocate` keeps the
 * new pod on the old one's node, where its ReadWriteOnce claims can be mounted by both.
 * `ready` says how an engine that runs both generations on one port (Podman) knows the new one
 * is ready: it is part of the type, so no rolling Deployment can leave it out.
 */
export type Rollout =
  | { readonly type: 'recreate' }
  | { readonly type: 'rolling'; readonly colocate?: boolean; readonly ready: RollReadiness };

/**
 * When a rolling Deployment's new generation counts as ready before the old one stops.
 * `socket`: it answers HTTP on this Unix socket in its own container (ANNOTATION.surge).
 * `logged`: its log shows this line (ANNOTATION.surgeLog). `settled`: it has kept running this
 * many seconds (minReadySeconds): a queue worker, which has no readiness of its own to show.
 */
export type RollReadiness =
  | { readonly socket: string }
  | { readonly logged: string }
  | { readonly settledSeconds: number };

function rolloutAnnotations(rollout: Rollout): Record<string, string> | undefined {
  if (rollout.type !== 'rolling') return undefined;
  const r = rollout.ready;
  if ('socket' in r) return { [ANNOTATION.surge]: r.socket };
  if ('logged' in r) return { [ANNOTATION.surgeLog]: r.logged };
  return undefined;
}

export function deployment(
  name: string,
  labels: Record<string, string>,
  pod: V1PodSpec,
  rollout: Rollout = { type: 'recreate' },
): Deployment {
  const annotations = rolloutAnnotations(rollout);
  const colocate: Pick<V1PodSpec, 'affinity'> = {
    affinity: {
      podAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: labels }, topologyKey: 'kubernetes.io/hostname' },
        ],
      },
    },
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels, ...(annotations ? { annotations } : {}) },
    spec: {
      replicas: 1,
      ...(rollout.type === 'rolling' && 'settledSeconds' in rollout.ready
        ? { minReadySeconds: rollout.ready.settledSeconds }
        : {}),
      strategy:
        rollout.type === 'rolling'
          ? { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
          : { type: 'Recreate' },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...pod,
          ...(rollout.type === 'rolling' && rollout.colocate ? colocate : {}),
          restartPolicy: 'Always',
        },
      },
    },
  };
}

/**
 * The taint of a node kept for guests (`kubectl taint node N podstack.dev/hypervisor=true:NoSchedule`):
 * the node pods tolerate it, nothing else of the cloud does, so its API servers and databases
 * stay off the hypervisors.
 */
export const HYPERVISOR_TAINT_KEY = 'podstack.dev/hypervisor';

/**
 * A pod on every node that runs servers (nova-compute and its hypervisor, the node's switch): what
 * openstack-helm and kolla run per host. On Podman, with one host, it is one pod.
 */
export function daemonSet(name: string, labels: Record<string, string>, pod: V1PodSpec): DaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, labels },
    spec: {
      selector: { matchLabels: labels },
      // The old pod goes before the new one starts: two hypervisors on one node would fight over its guests.
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels },
        spec: {
          ...pod,
          restartPolicy: 'Always',
          tolerations: [{ key: HYPERVISOR_TAINT_KEY, operator: 'Exists', effect: 'NoSchedule' }],
        },
      },
    },
  };
}

export function job(name: string, labels: Record<string, string>, pod: V1PodSpec): Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels },
    spec: {
      backoffLimit: 2,
      template: { metadata: { labels }, spec: { ...pod, restartPolicy: 'OnFailure' } },
    },
  };
}

export const CONFIG_DIR = '/etc/podstack/config';

/** A container started through the images' start protocol (podstack-start copies config, drops privileges). */
export function startContainer(
  name: string,
  image: string,
  args: readonly string[],
  options: Partial<V1Container> & { user?: string } = {},
): V1Container {
  const { user, env, ...rest } = options;
  return {
    name,
    image,
    imagePullPolicy: 'IfNotPresent',
    command: ['podstack-start'],
    args: [...args],
    env: [...(user ? [{ name: 'PODSTACK_USER', value: user }] : []), ...(env ?? [])],
    ...rest,
  };
}

export function isWorkload(o: KubeObject): o is Workload {
  return o.kind === 'Deployment' || o.kind === 'DaemonSet' || o.kind === 'Job';
}

/**
 * The init container that makes a pod wait, inside the cluster, for what its
 * unit depends on (openstack-helm's kubernetes-entrypoint, in a few lines of
 * Python): so a pod that Kubernetes restarts later still waits, without podstack.
 */
export const WAIT_CONTAINER = 'podstack-wait';
/** The ServiceAccount waiting pods run as: it may read Endpoints, Jobs and Deployments, nothing else. */
export const WAIT_ACCOUNT = 'podstack-wait';

export function waitAccess(labels: Record<string, string>): KubeObject[] {
  const metadata = { name: WAIT_ACCOUNT, labels };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata,
      rules: [
        { apiGroups: [''], resources: ['endpoints'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: WAIT_ACCOUNT },
      subjects: [{ kind: 'ServiceAccount', name: WAIT_ACCOUNT }],
    },
  ];
}
