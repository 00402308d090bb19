import {
  AuthorizationV1Api,
  StorageV1Api,
  type V1Container,
  type V1Namespace,
  type V1PersistentVolumeClaim,
  type V1PodSpec,
  type V1ResourceAttributes,
  type V1StorageClass,
  VersionApi,
} from '@kubernetes/client-node';
import { isWorkload, type KubeObject, type PersistentVolumeClaim } from '../../model/objects.js';
import type { Plan } from '../../model/unit.js';
import type { PreflightProblem } from '../preflight.js';
import { type Cluster, statusOf } from './client.js';
import { WRITABLE_VERSIONS } from './discovery.js';

/**
 * Before anything is applied: what the plan needs of the cluster, and whether the cluster has
 * it. What is fetched is gathered by clusterFacts(); clusterProblems() is a pure function of the
 * plan and those facts (objects as the API returns them), so every rule is tested without a
 * cluster. A cluster that cannot take the cloud fails the command at once, naming every problem
 * and its fix, instead of leaving claims Pending for minutes and only then saying why.
 */

/** One access review: what was asked, and the answer. */
export interface AccessAnswer {
  readonly attributes: V1ResourceAttributes;
  /** undefined: the review itself failed, so it is not known. */
  readonly allowed: boolean | undefined;
}

export interface ClusterFacts {
  /** The cloud's namespace. */
  readonly namespace: string;
  /** Every group/version the cluster serves ("v1" for the core group). */
  readonly served: ReadonlySet<string>;
  /** The API server's /version; undefined when it could not be read. */
  readonly version?: { readonly major?: string; readonly minor?: string; readonly gitVersion?: string };
  /** The cluster's StorageClasses; undefined when they could not be listed (no right to). */
  readonly storageClasses: readonly V1StorageClass[] | undefined;
  /** The claims already in the namespace (any of them; those of the plan are picked by name). */
  readonly claims: readonly V1PersistentVolumeClaim[];
  /** The namespace: null when it does not exist, undefined when it could not be read. */
  readonly namespaceObject: V1Namespace | null | undefined;
  /** The answers to the access reviews neededAccess() asks for. */
  readonly access: readonly AccessAnswer[];
}

export interface PreflightResult {
  readonly problems: PreflightProblem[];
  /** What could not be checked (no right to read it): said, but not a reason to stop. */
  readonly warnings: string[];
}

/** The resource (plural, as RBAC names it) of each kind podstack writes. */
const RESOURCE: Readonly<Record<KubeObject['kind'], string>> = {
  ConfigMap: 'configmaps',
  Secret: 'secrets',
  Service: 'services',
  ServiceAccount: 'serviceaccounts',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  Deployment: 'deployments',
  DaemonSet: 'daemonsets',
  Job: 'jobs',
  Role: 'roles',
  RoleBinding: 'rolebindings',
};

const KINDS = Object.keys(WRITABLE_VERSIONS) as KubeObject['kind'][];
const groupOf = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');
const resourceName = (a: V1ResourceAttributes) =>
  `${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.group ? `.${a.group}` : ''}`;

const DEFAULT_CLASS = 'storageclass.kubernetes.io/is-default-class';
const BETA_DEFAULT_CLASS = 'storageclass.beta.kubernetes.io/is-default-class';
const ENFORCE = 'pod-security.kubernetes.io/enforce';

/**
 * What podstack does in the namespace, as access reviews: it applies (create, patch), reads
 * (get, list) and prunes or replaces (delete) every kind of the plan, lists every kind it writes
 * (to find what it made), lists pods and reads their logs (to say why one fails). A Role can be
 * made only by someone who holds what it grants, so the plan's Roles' rules are asked too. And
 * a namespace that does not exist yet is created.
 */
export function neededAccess(
  plan: Plan,
  namespace: string,
  namespaceExists: boolean,
): V1ResourceAttributes[] {
  const out = new Map<string, V1ResourceAttributes>();
  const add = (a: V1ResourceAttributes) => out.set(JSON.stringify(a), a);
  const objects = plan.units.flatMap((u) => u.objects);
  const planned = new Set(objects.map((o) => o.kind));
  for (const kind of KINDS) {
    const group = groupOf(WRITABLE_VERSIONS[kind][0]!);
    const verbs = planned.has(kind) ? ['get', 'list', 'create', 'patch', 'delete'] : ['list'];
    for (const verb of verbs) add({ namespace, verb, group, resource: RESOURCE[kind] });
  }
  add({ namespace, verb: 'list', group: '', resource: 'pods' });
  add({ namespace, verb: 'get', group: '', resource: 'pods', subresource: 'log' });
  for (const o of objects) if (o.kind === 'Role') for (const a of granted(o, namespace)) add(a);
  if (!namespaceExists) add({ verb: 'create', group: '', resource: 'namespaces' });
  return [...out.values()];
}

/** What a Role grants, as access reviews: whoever makes it must hold all of it. */
function granted(role: Extract<KubeObject, { kind: 'Role' }>, namespace: string): V1ResourceAttributes[] {
  return (role.rules ?? []).flatMap((rule) =>
    (rule.apiGroups ?? ['']).flatMap((group) =>
      (rule.resources ?? []).flatMap((resource) =>
        rule.verbs.map((verb) => ({ namespace, verb, group, resource })),
      ),
    ),
  );
}

/** Every problem the cluster has with the plan; an empty list when it can take it. */
export function clusterProblems(plan: Plan, facts: ClusterFacts): PreflightResult {
  const problems: PreflightProblem[] = [];
  const warnings: string[] = [];
  problems.push(...versionProblems(facts));
  const storage = storageProblems(plan, facts);
  problems.push(...storage.problems);
  warnings.push(...storage.warnings);
  problems.push(...accessProblems(facts));
  const unasked = facts.access.filter((a) => a.allowed === undefined);
  if (unasked.length > 0)
    warnings.push(
      `could not ask the cluster whether this user may ${listed(unasked.map((a) => `${a.attributes.verb} ${resourceName(a.attributes)}`))}`,
    );
  problems.push(...podSecurityProblems(plan, facts));
  problems.push(...publishedAddressProblems(plan));
  return { problems, warnings };
}

/**
 * APIs are published as Services' externalIPs, which kube-proxy serves on the node that has the
 * address. A loopback or unspecified address is no node's: the Service would publish nothing
 * (and the API server refuses 0.0.0.0).
 */
function publishedAddressProblems(plan: Plan): PreflightProblem[] {
  const bad = new Set(
    plan.units
      .flatMap((u) => u.objects)
      .flatMap((o) => (o.kind === 'Service' ? (o.spec?.externalIPs ?? []) : []))
      .filter((ip) => /^(127\.|0\.0\.0\.0$|::1?$)/.test(ip)),
  );
  return [...bad].map((ip) => ({
    what: `the APIs would be published on ${ip}, which on Kubernetes is no node's address (they are Services' externalIPs, which kube-proxy serves on the node that has the address)`,
    fix: 'set endpoints.address (or endpoints.bind, and endpoints.internal if it differs) in the cloud file to an address of a node that clients reach',
  }));
}

function versionProblems(facts: ClusterFacts): PreflightProblem[] {
  const missing = KINDS.flatMap((kind) => {
    const candidates = WRITABLE_VERSIONS[kind];
    return candidates.some((v) => facts.served.has(v)) ? [] : [`${kind} (${candidates.join(' or ')})`];
  });
  if (missing.length === 0) return [];
  const version = facts.version?.gitVersion ? ` (it is ${facts.version.gitVersion})` : '';
  return [
    {
      what: `the cluster${version} serves no API version podstack can write these kinds in: ${missing.join(', ')}`,
      fix: 'use Kubernetes 1.20 or newer, with the apps, batch and rbac.authorization.k8s.io API groups enabled',
    },
  ];
}

const isDefaultClass = (c: V1StorageClass) =>
  c.metadata?.annotations?.[DEFAULT_CLASS] === 'true' ||
  c.metadata?.annotations?.[BETA_DEFAULT_CLASS] === 'true';

/** The cluster's minor version as a number (GKE and EKS say "27+"); undefined when unknown. */
function minorOf(facts: ClusterFacts): number | undefined {
  if (facts.version?.major !== '1') return undefined;
  const minor = Number.parseInt(facts.version.minor ?? '', 10);
  return Number.isNaN(minor) ? undefined : minor;
}

function plannedClaims(plan: Plan): PersistentVolumeClaim[] {
  return plan.units.flatMap((u) => u.objects).filter((o) => o.kind === 'PersistentVolumeClaim');
}

const listed = (names: readonly string[], max = 6) =>
  names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;

/**
 * The claims need a StorageClass that exists: the one kubernetes.storageClass names, else the
 * cluster's default. A claim that is already bound has its volume and needs none; one that
 * exists cannot move to another class (the field is immutable).
 */
function storageProblems(plan: Plan, facts: ClusterFacts): PreflightResult {
  const problems: PreflightProblem[] = [];
  const warnings: string[] = [];
  const existing = new Map(facts.claims.map((c) => [c.metadata?.name, c]));
  const needing = new Map<string, string[]>(); // class ('' for the default) -> claims
  for (const claim of plannedClaims(plan)) {
    const live = existing.get(claim.metadata.name);
    const wanted = claim.spec?.storageClassName ?? '';
    const liveClass = live?.spec?.storageClassName;
    if (live && wanted !== '' && liveClass && liveClass !== wanted) {
      problems.push({
        what: `claim ${claim.metadata.name} exists with StorageClass ${liveClass}, and kubernetes.storageClass is ${wanted}: a claim's class cannot change`,
        fix: `set kubernetes.storageClass to ${liveClass} (or "" if that is the default), or delete the claim yourself if its data can go`,
      });
      continue;
    }
    if (live?.status?.phase === 'Bound') continue;
    needing.set(wanted, [...(needing.get(wanted) ?? []), claim.metadata.name]);
  }
  if (needing.size === 0) return { problems, warnings };
  const classes = facts.storageClasses;
  if (classes === undefined) {
    warnings.push(
      `could not list the cluster's StorageClasses (no right to), so whether the plan's ${[...needing.values()].flat().length} claims can be provisioned was not checked`,
    );
    return { problems, warnings };
  }
  for (const [wanted, claims] of needing) problems.push(...classProblems(wanted, claims, classes, facts));
  return { problems, warnings };
}

/** Whether the cluster provisions `claims`, which name the class `wanted` ('' for the default). */
function classProblems(
  wanted: string,
  claims: readonly string[],
  classes: readonly V1StorageClass[],
  facts: ClusterFacts,
): PreflightProblem[] {
  const names = classes.map((c) => c.metadata?.name ?? '').filter(Boolean);
  const defaults = classes.filter(isDefaultClass).map((c) => c.metadata?.name ?? '');
  const choose =
    names.length > 0
      ? `set kubernetes.storageClass in the cloud file to one of: ${names.join(', ')}`
      : 'install a storage provisioner and its StorageClass (the cluster has none at all), then set kubernetes.storageClass in the cloud file to it';
  const n = `${claims.length} claim${claims.length === 1 ? '' : 's'} (${listed(claims)})`;
  if (wanted !== '') {
    if (names.includes(wanted)) return [];
    return [
      {
        what: `kubernetes.storageClass is ${wanted}, and the cluster has no StorageClass ${wanted}; the plan has ${n} that need it`,
        fix: `${names.length > 0 ? `set kubernetes.storageClass to one of: ${names.join(', ')}` : 'install a storage provisioner and its StorageClass (the cluster has none at all)'}${defaults.length === 1 ? `, or to "" for the default (${defaults[0]})` : ''}`,
      },
    ];
  }
  if (defaults.length === 0)
    return [
      {
        what: `the cluster has no default StorageClass, and the plan has ${n} that name none: they would stay Pending`,
        fix: `${choose}${names.length > 0 ? `; or mark one default: kubectl annotate storageclass ${names[0]} ${DEFAULT_CLASS}=true` : ''}`,
      },
    ];
  // Before 1.26 the DefaultStorageClass admission refuses a claim that names no class when more
  // than one is marked default; from 1.26 the newest wins.
  if (defaults.length > 1 && (minorOf(facts) ?? 0) < 26)
    return [
      {
        what: `${defaults.length} StorageClasses are marked default (${defaults.join(', ')}), and this cluster refuses the plan's ${n} that name none then`,
        fix: `set kubernetes.storageClass in the cloud file to one of them, or unmark all but one: kubectl annotate storageclass ${defaults[1]} ${DEFAULT_CLASS}=false --overwrite`,
      },
    ];
  return [];
}

function accessProblems(facts: ClusterFacts): PreflightProblem[] {
  const denied = facts.access.filter((a) => a.allowed === false);
  const problems: PreflightProblem[] = [];
  const namespaces = denied.filter((a) => a.attributes.resource === 'namespaces');
  if (namespaces.length > 0)
    problems.push({
      what: `namespace ${facts.namespace} does not exist, and the user of this kubeconfig may not create namespaces`,
      fix: `have it created (kubectl create namespace ${facts.namespace}), or name one that exists with -n`,
    });
  const inNamespace = denied.filter((a) => a.attributes.resource !== 'namespaces');
  if (inNamespace.length === 0) return problems;
  const byResource = new Map<string, string[]>();
  for (const a of inNamespace) {
    const r = resourceName(a.attributes);
    byResource.set(r, [...(byResource.get(r) ?? []), a.attributes.verb ?? '']);
  }
  const first = inNamespace[0]!.attributes;
  problems.push({
    what: `the user of this kubeconfig may not, in namespace ${facts.namespace}: ${[...byResource]
      .map(([r, verbs]) => `${verbs.join(', ')} ${r}`)
      .join('; ')}`,
    fix: `grant them in namespace ${facts.namespace}, for instance the built-in admin role: kubectl create rolebinding podstack-admin --clusterrole=admin --user=<user> -n ${facts.namespace} (check with: kubectl auth can-i ${first.verb} ${resourceName(first)} -n ${facts.namespace})`,
  });
  return problems;
}

type Level = 'privileged' | 'baseline' | 'restricted';
const LEVELS: readonly Level[] = ['restricted', 'baseline', 'privileged'];

/** Capabilities the baseline level lets a container add (Pod Security Standards). */
const BASELINE_CAPS = new Set(
  'AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE SETFCAP SETGID SETPCAP SETUID SYS_CHROOT'.split(
    ' ',
  ),
);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
]);
const RESTRICTED_VOLUMES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

/**
 * The Pod Security Standards level a pod needs, with what makes it need more than restricted:
 * the checks pod-security admission makes, for the fields podstack's pods could carry.
 */
export function podSecurityLevel(pod: V1PodSpec): { level: Level; why: string[] } {
  const privileged = beyondBaseline(pod);
  if (privileged.length > 0) return { level: 'privileged', why: privileged };
  const baseline = beyondRestricted(pod);
  return baseline.length > 0 ? { level: 'baseline', why: baseline } : { level: 'restricted', why: [] };
}

const containersOf = (pod: V1PodSpec): V1Container[] => [...(pod.initContainers ?? []), ...pod.containers];

/** What of a pod only the privileged level allows. */
function beyondBaseline(pod: V1PodSpec): string[] {
  const privileged: string[] = [];
  if (pod.hostNetwork) privileged.push('hostNetwork');
  if (pod.hostPID) privileged.push('hostPID');
  if (pod.hostIPC) privileged.push('hostIPC');
  for (const v of pod.volumes ?? []) if (v.hostPath) privileged.push(`hostPath volume ${v.name}`);
  for (const s of pod.securityContext?.sysctls ?? [])
    if (!SAFE_SYSCTLS.has(s.name)) privileged.push(`sysctl ${s.name}`);
  if (pod.securityContext?.seccompProfile?.type === 'Unconfined')
    privileged.push('an Unconfined seccomp profile');
  return [...privileged, ...containersOf(pod).flatMap(privilegedOfContainer)];
}

function privilegedOfContainer(c: V1Container): string[] {
  const sc = c.securityContext;
  return [
    ...(sc?.privileged ? [`privileged container ${c.name}`] : []),
    ...(c.ports ?? []).flatMap((p) => (p.hostPort ? [`hostPort ${p.hostPort}`] : [])),
    ...(sc?.capabilities?.add ?? [])
      .filter((cap) => !BASELINE_CAPS.has(cap))
      .map((cap) => `capability ${cap} (container ${c.name})`),
    ...(sc?.procMount === 'Unmasked' ? [`Unmasked procMount (container ${c.name})`] : []),
    ...(sc?.seccompProfile?.type === 'Unconfined'
      ? [`an Unconfined seccomp profile (container ${c.name})`]
      : []),
  ];
}

/** What of a pod the restricted level refuses (the baseline level allows it). */
function beyondRestricted(pod: V1PodSpec): string[] {
  const baseline: string[] = [];
  const seccomp = (t: string | undefined) => t === 'RuntimeDefault' || t === 'Localhost';
  for (const v of pod.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (type && !RESTRICTED_VOLUMES.has(type)) baseline.push(`${type} volume ${v.name}`);
  }
  for (const c of containersOf(pod)) {
    const sc = c.securityContext;
    if (sc?.allowPrivilegeEscalation !== false) baseline.push(`container ${c.name} may escalate privileges`);
    if (!(sc?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot))
      baseline.push(`container ${c.name} may run as root`);
    if (!sc?.capabilities?.drop?.includes('ALL'))
      baseline.push(`container ${c.name} does not drop ALL capabilities`);
    if (!seccomp(sc?.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type))
      baseline.push(`container ${c.name} sets no seccomp profile`);
  }
  return baseline;
}

/**
 * Pod security admission (enforced from 1.23) refuses, in a namespace labelled for a level, the
 * pods that need more. The hypervisor node's pod (libvirt, Open vSwitch) needs `privileged`.
 * A namespace without the label gets the cluster's default, which the API does not show.
 */
function podSecurityProblems(plan: Plan, facts: ClusterFacts): PreflightProblem[] {
  const minor = minorOf(facts);
  if (minor !== undefined && minor < 23) return [];
  const enforced = facts.namespaceObject?.metadata?.labels?.[ENFORCE] as Level | undefined;
  if (enforced === undefined || !LEVELS.includes(enforced)) return [];
  const refused = plan.units
    .flatMap((u) => u.objects)
    .filter(isWorkload)
    .flatMap((w) => {
      const pod = w.spec?.template.spec;
      if (!pod) return [];
      const { level, why } = podSecurityLevel(pod);
      return LEVELS.indexOf(level) > LEVELS.indexOf(enforced)
        ? [{ name: `${w.kind}/${w.metadata.name}`, level, why }]
        : [];
    });
  if (refused.length === 0) return [];
  const needed = refused.some((r) => r.level === 'privileged') ? 'privileged' : 'baseline';
  return [
    {
      what: `namespace ${facts.namespace} enforces pod security level ${enforced} (label ${ENFORCE}), which refuses the pods of ${listed(
        refused.map((r) => `${r.name} (${listed(r.why, 2)})`),
        3,
      )}`,
      fix: `kubectl label namespace ${facts.namespace} ${ENFORCE}=${needed} --overwrite, or put the cloud in a namespace that allows ${needed} pods (-n)`,
    },
  ];
}

/** Reads what clusterProblems() needs; `served` is the discovery the engine already made. */
export async function clusterFacts(
  cluster: Cluster,
  plan: Plan,
  served: ReadonlySet<string>,
): Promise<ClusterFacts> {
  const namespace = cluster.namespace;
  const forbiddenAs =
    <T>(value: T) =>
    (e: unknown) => {
      if (statusOf(e) === 403 || statusOf(e) === 401) return value;
      throw e;
    };
  const [version, storageClasses, namespaceObject] = await Promise.all([
    cluster.config
      .makeApiClient(VersionApi)
      .getCode()
      .catch(() => undefined),
    cluster.config
      .makeApiClient(StorageV1Api)
      .listStorageClass()
      .then((l) => l.items, forbiddenAs(undefined)),
    cluster.core
      .readNamespace({ name: namespace })
      .catch((e: unknown) => (statusOf(e) === 404 ? null : forbiddenAs(undefined)(e))),
  ]);
  const claims =
    namespaceObject === null
      ? []
      : await cluster.core
          .listNamespacedPersistentVolumeClaim({ namespace })
          .then((l) => l.items, forbiddenAs([]));
  const authorization = cluster.config.makeApiClient(AuthorizationV1Api);
  const access = await Promise.all(
    neededAccess(plan, namespace, namespaceObject !== null).map(async (attributes) => {
      const review = await authorization
        .createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attributes } } })
        .catch(() => undefined);
      return { attributes, allowed: review ? review.status?.allowed === true : undefined };
    }),
  );
  return {
    namespace,
    served,
    ...(version ? { version } : {}),
    storageClasses,
    claims,
    namespaceObject,
    access,
  };
}
