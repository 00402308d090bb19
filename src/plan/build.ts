import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { WAIT_IMAGE } from '../catalog/index.js';
import { type EndpointAddresses, EndpointRegistry, type PublishedApi } from '../catalog/registry.js';
import type { Capability, RenderContext, ServiceDefinition } from '../catalog/types.js';
import type { IniOverrides } from '../config/ini.js';
import type { PythonSettings } from '../config/python.js';
import { topologicalWaves } from '../model/graph.js';
import { hashOf } from '../model/hash.js';
import {
  ANNOTATION,
  isWorkload,
  type KubeObject,
  LABEL,
  WAIT_ACCOUNT,
  WAIT_CONTAINER,
  waitAccess,
} from '../model/objects.js';
import type { Plan, PlannedUnit, Unit, UnitKind } from '../model/unit.js';
import type { CloudSpec } from '../spec/schema.js';

/**
 * What differs between the places a plan is made for. The objects are the same Kubernetes
 * objects on every engine; what an engine asks of the plan is said here.
 */
export interface PlanTarget {
  /** The host of internal and admin endpoints: reachable from the host and from the cloud's pods. */
  readonly internalAddress: string;
  /**
   * Pods wait for their dependencies themselves, in the cluster (Kubernetes: the podstack-wait
   * init container and its read-only API access). Where the engine starts units in order
   * (Podman), they are not added.
   */
  readonly inClusterWaits: boolean;
  /**
   * Guests' networks cross between nodes in Geneve tunnels (Kubernetes with network.tunnels).
   * Podman's one host needs none.
   */
  readonly manyNodes: boolean;
  /**
   * A hostPath is the node's own (Kubernetes), so the node pod can do on its node what needs the
   * node (join br-ex to network.externalBridge). On Podman a hostPath is a volume, and the engine,
   * on the one host, does that itself.
   */
  readonly nodeHostPaths: boolean;
  /**
   * Kubernetes: the StorageClass every PersistentVolumeClaim names (kubernetes.storageClass).
   * Unset: claims name none, and the cluster's default StorageClass provisions them.
   */
  readonly storageClass?: string;
}

export interface PlanInputs {
  readonly spec: CloudSpec;
  readonly secrets: Readonly<Record<string, string>>;
  readonly catalog: readonly ServiceDefinition[];
  /** image name -> full reference, from the image graph. */
  readonly imageRefs: Readonly<Record<string, string>>;
  readonly target: PlanTarget;
}

/** Every URL of the cloud, from the enabled services' declarations and the cloud file. */
export function endpointRegistry(
  spec: CloudSpec,
  services: readonly ServiceDefinition[],
  internalAddress: string,
): EndpointRegistry {
  const addresses: EndpointAddresses = {
    public: spec.endpoints.address,
    bind: spec.endpoints.bind,
    internal: internalAddress,
  };
  const apis = services.flatMap((def): PublishedApi[] =>
    def.api
      ? [{ ...def.api, service: def.name, published: spec.services[def.name]?.port ?? def.api.port }]
      : [],
  );
  const inCloud = new Map<Capability, string>();
  for (const def of services)
    for (const [cap, p] of Object.entries(def.provides))
      if (p?.address) inCloud.set(cap as Capability, p.address);
  const extra = new Map<string, number>();
  for (const def of services)
    for (const [name, port] of Object.entries(def.ports ?? {}))
      extra.set(name, spec.services[def.name]?.ports?.[name] ?? port);
  const pages = services.flatMap((def) =>
    Object.entries(def.pages ?? {}).map(([port, path]) => ({ service: def.name, port, path })),
  );
  return new EndpointRegistry(addresses, apis, inCloud, extra, pages);
}
/** The unit holding the waiting pods' ServiceAccount and its Role. */
export const ACCESS_UNIT = 'podstack-access';

export function enabledServices(spec: CloudSpec, catalog: readonly ServiceDefinition[]): ServiceDefinition[] {
  return catalog.filter((def) => spec.services[def.name]?.enabled);
}

/**
 * catalog x spec -> plan. A pure function of its inputs: the same cloud file,
 * secrets and images always give the same plan, byte for byte, so hashes of it
 * decide what an engine has to do.
 */
export function buildPlan(inputs: PlanInputs): Plan {
  const { spec } = inputs;
  const units: Unit[] = [];
  const services = enabledServices(spec, inputs.catalog);
  const endpoints = endpointRegistry(spec, services, inputs.target.internalAddress);
  const provision = (capability: Capability) =>
    services.find((s) => s.provides[capability])?.provides[capability];
  const provider = (capability: Capability) => {
    const p = provision(capability);
    if (!p) throw new Error(`no enabled service provides ${capability}`);
    return p.unit;
  };
  const contexts = services.map((def) => {
    const secrets = Object.fromEntries(
      def.secrets.map((name) => {
        const value = inputs.secrets[name];
        if (value === undefined) throw new Error(`secrets.yaml has no ${name}, which ${def.name} needs`);
        return [name, value];
      }),
    );
    const ctx: RenderContext = {
      spec,
      secrets,
      endpoints,
      provider,
      provides: (capability) => provision(capability) !== undefined,
      image: (name) => {
        const ref = inputs.imageRefs[name];
        if (ref === undefined)
          throw new Error(`${def.name} uses image ${name}, which no catalog entry builds`);
        return ref;
      },
      // The schema gave each file the shape of its kind (settingsFiles are Django settings).
      overrides: (file) =>
        def.settingsFiles?.includes(file)
          ? {}
          : ((spec.services[def.name]?.config[file] ?? {}) as IniOverrides),
      settings: (file) =>
        def.settingsFiles?.includes(file)
          ? ((spec.services[def.name]?.config[file] ?? {}) as PythonSettings)
          : {},
      nodeParts: () => nodeParts,
      manyNodes: inputs.target.manyNodes,
      nodeHostPaths: inputs.target.nodeHostPaths,
    };
    return [def, ctx] as const;
  });
  const nodeParts = contexts.flatMap(([def, ctx]) => (def.node ? [def.node(ctx)] : []));
  for (const [def, ctx] of contexts) units.push(...def.render(ctx));
  checkNames(units);
  const waiting = inputs.target.inClusterWaits ? withWaiting(units, inputs.imageRefs[WAIT_IMAGE]) : units;
  const labelled = waiting.map((u) => ({
    ...u,
    objects: u.objects.map((o) => withStorageClass(withCloudLabels(o, spec.name, u.name), inputs.target)),
  }));
  const configs = new Map<string, KubeObject>();
  for (const o of labelled.flatMap((u) => u.objects)) {
    if (o.kind === 'Secret' || o.kind === 'ConfigMap') configs.set(`${o.kind}/${o.metadata.name}`, o);
  }
  const waves = topologicalWaves(new Map(labelled.map((u) => [u.name, u.dependsOn])));
  const byName = new Map(labelled.map((u) => [u.name, u]));
  const planned = waves.flat().map((name): PlannedUnit => {
    const unit = byName.get(name)!;
    const objects = unit.objects.map((o) => withConfigHash(o, configs));
    const kind = unitKind(unit);
    return { ...unit, objects, kind, hash: hashOf(kind === 'job' ? objects.map(jobKey) : objects) };
  });
  return { cloud: spec.name, units: planned, waves };
}

/** A claim names the target's StorageClass, when it has one; otherwise it is left as the catalog made it. */
function withStorageClass(o: KubeObject, target: PlanTarget): KubeObject {
  if (o.kind !== 'PersistentVolumeClaim' || !target.storageClass) return o;
  return { ...o, spec: { ...o.spec, storageClassName: target.storageClass } };
}

/**
 * What a workload waits for, per unit it depends on: a Job's completion, or a
 * Deployment's Service having ready endpoints (or, without a Service, the
 * Deployment being available). Config units need no wait: a pod cannot start
 * before the Secrets and ConfigMaps it mounts exist.
 */
function waitTargets(dep: Unit): string[] {
  const workload = dep.objects.find(isWorkload);
  if (!workload) return [];
  if (workload.kind === 'Job') return [`job/${workload.metadata.name}`];
  if (workload.kind === 'DaemonSet')
    throw new Error(
      `${dep.name} runs on every node (a DaemonSet): nothing may wait for it, since a node may have none`,
    );
  // A published Service selects the same pods as the in-cloud one: one wait says it all.
  const services = dep.objects
    .filter((o) => o.kind === 'Service' && !o.spec?.externalIPs)
    .map((o) => `service/${o.metadata.name}`);
  return services.length > 0 ? services : [`deployment/${workload.metadata.name}`];
}

/** Adds the wait init container to every workload with run-time dependencies (see WAIT_CONTAINER). */
function withWaiting(units: readonly Unit[], waitImage: string | undefined): Unit[] {
  const byName = new Map(units.map((u) => [u.name, u]));
  let anyWaits = false;
  const out = units.map((u): Unit => {
    const targets = u.dependsOn.flatMap((d) => {
      const dep = byName.get(d);
      if (!dep) throw new Error(`unit ${u.name} depends on ${d}, which no enabled service defines`);
      return waitTargets(dep);
    });
    if (targets.length === 0 || !u.objects.some(isWorkload)) return u;
    if (waitImage === undefined)
      throw new Error(`image ${WAIT_IMAGE} is needed by podstack-wait but not built`);
    anyWaits = true;
    const objects = u.objects.map((o) => {
      if (!isWorkload(o) || !o.spec?.template.spec) return o;
      const out = structuredClone(o);
      const pod = out.spec!.template.spec!;
      pod.serviceAccountName = WAIT_ACCOUNT;
      pod.initContainers = [
        {
          name: WAIT_CONTAINER,
          image: waitImage,
          imagePullPolicy: 'IfNotPresent',
          command: ['podstack-wait', ...targets],
        },
        ...(pod.initContainers ?? []),
      ];
      return out;
    });
    return { ...u, objects, dependsOn: [...u.dependsOn, ACCESS_UNIT] };
  });
  if (!anyWaits) return out;
  const access: Unit = {
    name: ACCESS_UNIT,
    service: 'podstack',
    description: 'lets waiting pods read Endpoints, Jobs and Deployments',
    dependsOn: [],
    objects: waitAccess({ [LABEL.name]: 'podstack', [LABEL.component]: 'wait' }),
  };
  return [access, ...out];
}

/**
 * What makes a Job run again: its image, command and the inputs it declares (the pod
 * template's spec, and the hash of the ConfigMaps and Secrets it mounts), never its labels or
 * other metadata, as openstack-k8s-operators key theirs. Other objects of a Job's unit (its
 * claims) count by their name and spec.
 */
function jobKey(o: KubeObject): unknown {
  if (o.kind !== 'Job')
    return { kind: o.kind, name: o.metadata.name, spec: 'spec' in o ? o.spec : undefined };
  return {
    pod: o.spec?.template.spec,
    inputs: o.spec?.template.metadata?.annotations?.[ANNOTATION.configHash] ?? '',
  };
}

function checkNames(units: readonly Unit[]): void {
  const seen = new Set<string>();
  const objects = new Set<string>();
  for (const u of units) {
    if (seen.has(u.name)) throw new Error(`two units are named ${u.name}`);
    seen.add(u.name);
    for (const o of u.objects) {
      const key = `${o.kind}/${o.metadata.name}`;
      if (objects.has(key)) throw new Error(`${key} is defined twice (second time in unit ${u.name})`);
      objects.add(key);
    }
    if (u.objects.filter(isWorkload).length > 1) throw new Error(`unit ${u.name} has more than one workload`);
  }
}

function unitKind(unit: Unit): UnitKind {
  const workload = unit.objects.find(isWorkload);
  if (!workload) return 'config';
  // A DaemonSet's pods are long-running like a Deployment's: engines treat both as 'deployment'.
  return workload.kind === 'Job' ? 'job' : 'deployment';
}

/** Adds the labels every podstack object carries, without touching the catalog's objects. */
function withCloudLabels(o: KubeObject, cloud: string, unit: string): KubeObject {
  const common = { [LABEL.instance]: cloud, [LABEL.partOf]: 'openstack', [LABEL.managedBy]: 'podstack' };
  const out = structuredClone(o);
  out.metadata.labels = { ...out.metadata.labels, ...common, [LABEL.unit]: unit };
  const instance = { [LABEL.instance]: cloud };
  if ((out.kind === 'Deployment' || out.kind === 'DaemonSet') && out.spec) {
    out.spec.selector = { matchLabels: { ...out.spec.selector.matchLabels, ...instance } };
    out.spec.template.metadata = labelTemplate(out.spec.template, { ...common, [LABEL.unit]: unit });
  } else if (out.kind === 'Job' && out.spec) {
    out.spec.template.metadata = labelTemplate(out.spec.template, { ...common, [LABEL.unit]: unit });
  } else if (out.kind === 'Service' && out.spec?.selector) {
    out.spec.selector = { ...out.spec.selector, ...instance };
  }
  return out;
}

function labelTemplate(t: V1PodTemplateSpec, labels: Record<string, string>) {
  return { ...t.metadata, labels: { ...t.metadata?.labels, ...labels } };
}

/** The names of the ConfigMaps and Secrets a pod template reads, as Kind/name. */
export function configRefs(t: V1PodTemplateSpec): string[] {
  const refs = new Set<string>();
  for (const v of t.spec?.volumes ?? []) {
    if (v.secret?.secretName) refs.add(`Secret/${v.secret.secretName}`);
    if (v.configMap?.name) refs.add(`ConfigMap/${v.configMap.name}`);
  }
  const containers = [...(t.spec?.initContainers ?? []), ...(t.spec?.containers ?? [])];
  for (const c of containers) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.secretKeyRef?.name) refs.add(`Secret/${e.valueFrom.secretKeyRef.name}`);
      if (e.valueFrom?.configMapKeyRef?.name) refs.add(`ConfigMap/${e.valueFrom.configMapKeyRef.name}`);
    }
  }
  return [...refs].sort();
}

function withConfigHash(o: KubeObject, configs: ReadonlyMap<string, KubeObject>): KubeObject {
  if (!isWorkload(o) || !o.spec) return o;
  const template = o.spec.template;
  const refs = configRefs(template);
  if (refs.length === 0) return o;
  const data = refs.map((ref) => {
    const c = configs.get(ref);
    if (!c) throw new Error(`${o.kind}/${o.metadata.name} uses ${ref}, which is not in the plan`);
    return [ref, c.kind === 'Secret' || c.kind === 'ConfigMap' ? c.data : undefined];
  });
  const annotations = { ...template.metadata?.annotations, [ANNOTATION.configHash]: hashOf(data) };
  const out = structuredClone(o);
  out.spec!.template.metadata = { ...out.spec!.template.metadata, annotations };
  return out;
}
