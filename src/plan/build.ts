import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import type { RenderContext, ServiceDefinition } from '../catalog/types.js';
import type { CloudSpec } from '../spec/schema.js';
import { topologicalWaves } from './graph.js';
import { hashOf } from './hash.js';
import {
  ANNOTATION,
  isWorkload,
  type KubeObject,
  LABEL,
  WAIT_ACCOUNT,
  WAIT_CONTAINER,
  waitAccess,
} from './objects.js';
import type { Plan, PlannedUnit, Unit, UnitKind } from './unit.js';

export interface PlanInputs {
  readonly spec: CloudSpec;
  readonly secrets: Readonly<Record<string, string>>;
  readonly catalog: readonly ServiceDefinition[];
  /** image name -> full reference, from the image graph. */
  readonly imageRefs: Readonly<Record<string, string>>;
}

/** The image that carries podstack-wait (it needs Python, which openstack-base has). */
export const WAIT_IMAGE = 'openstack-base';
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
  for (const def of enabledServices(spec, inputs.catalog)) {
    const ctx: RenderContext = {
      spec,
      secrets: inputs.secrets,
      image: (name) => {
        const ref = inputs.imageRefs[name];
        if (ref === undefined)
          throw new Error(`${def.name} uses image ${name}, which no catalog entry builds`);
        return ref;
      },
      overrides: (file) => spec.services[def.name]?.config[file] ?? {},
    };
    units.push(...def.render(ctx));
  }
  checkNames(units);
  const waiting = withWaiting(units, inputs.imageRefs[WAIT_IMAGE]);
  const labelled = waiting.map((u) => ({
    ...u,
    objects: u.objects.map((o) => withCloudLabels(o, spec.name, u.name)),
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
    return { ...unit, objects, kind: unitKind(unit), hash: hashOf(objects) };
  });
  return { cloud: spec.name, units: planned, waves };
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
  const services = dep.objects.filter((o) => o.kind === 'Service').map((o) => `service/${o.metadata.name}`);
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
  return workload.kind === 'Deployment' ? 'deployment' : 'job';
}

/** Adds the labels every podstack object carries, without touching the catalog's objects. */
function withCloudLabels(o: KubeObject, cloud: string, unit: string): KubeObject {
  const common = { [LABEL.instance]: cloud, [LABEL.partOf]: 'openstack', [LABEL.managedBy]: 'podstack' };
  const out = structuredClone(o);
  out.metadata.labels = { ...out.metadata.labels, ...common, [LABEL.unit]: unit };
  const instance = { [LABEL.instance]: cloud };
  if (out.kind === 'Deployment' && out.spec) {
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
