import { PatchStrategy } from '@kubernetes/client-node';
import { PodstackError, UnitFailedError } from '../../errors.js';
import type { Reporter } from '../../events.js';
import { ANNOTATION, isWorkload, type KubeObject, LABEL } from '../../plan/objects.js';
import type { Plan, PlannedUnit } from '../../plan/unit.js';
import type { ApplyOptions, ApplyResult, Engine, UnitChange, UnitStatus } from '../types.js';
import { type Cluster, messageOf, statusOf, unreachable } from './client.js';
import { changedFields } from './diff.js';
import { chooseVersions, servedVersions, WRITABLE_VERSIONS } from './discovery.js';
import { type Health, isHealthy, keyOf, type Live, type Observed, unitHealth } from './health.js';

/** Server-side apply's field manager: the fields podstack owns in every object it applies. */
export const FIELD_MANAGER = 'podstack';

const KINDS = Object.keys(WRITABLE_VERSIONS) as KubeObject['kind'][];

type ObjectResult = 'created' | 'updated' | 'replaced' | 'unchanged';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type WaitOptions = Required<Pick<ApplyOptions, 'readyTimeout' | 'jobTimeout'>> & ApplyOptions;

interface WatchState {
  readonly healthy: Set<string>;
  /** When each unit's dependencies were all healthy: its deadline counts from then. */
  readonly since: Map<string, number>;
  /** The last reason reported per unit, so each is said once. */
  readonly said: Map<string, string>;
  /**
   * The log of each unit's last failed container, read when the failure was seen: by the time
   * a Job gives up, its controller may have deleted the pods that held the log.
   */
  readonly failedLog: Map<string, string>;
}

export interface KubernetesEngineOptions {
  readonly cluster: Cluster;
  readonly cloud: string;
  /** Seconds between looks at the cluster while waiting. */
  readonly pollSeconds?: number;
}

/**
 * Applies the plan's objects to a cluster with server-side apply and lets the
 * cluster do the rest: pods wait for their dependencies themselves (the
 * podstack-wait init container), so everything is applied at once and podstack
 * only watches. What podstack made is found again by its labels, which is how
 * objects that left the plan are pruned and how `down` removes only podstack's.
 */
export class KubernetesEngine implements Engine {
  readonly name = 'kubernetes' as const;
  private readonly cluster: Cluster;
  private readonly cloud: string;
  private readonly pollMs: number;
  private versions: Promise<Map<KubeObject['kind'], string>> | undefined;

  constructor(o: KubernetesEngineOptions) {
    this.cluster = o.cluster;
    this.cloud = o.cloud;
    this.pollMs = (o.pollSeconds ?? 1) * 1000;
  }

  get namespace(): string {
    return this.cluster.namespace;
  }

  private get selector(): string {
    return `${LABEL.instance}=${this.cloud},${LABEL.managedBy}=podstack`;
  }

  private apiVersions(): Promise<Map<KubeObject['kind'], string>> {
    this.versions ??= servedVersions(this.cluster).then(
      (served) => chooseVersions(KINDS, served),
      (e) => {
        throw unreachable(this.cluster, e);
      },
    );
    return this.versions;
  }

  /** A plan object as this cluster takes it: its API version, the namespace, the unit hash. */
  private async toCluster(unit: PlannedUnit, o: KubeObject): Promise<Live> {
    const versions = await this.apiVersions();
    const out = structuredClone(o) as unknown as Live;
    out.apiVersion = versions.get(o.kind)!;
    out.metadata.namespace = this.namespace;
    // On the object, not the pod template: it marks what the object was made from without rolling pods.
    if (isWorkload(o))
      out.metadata.annotations = { ...o.metadata.annotations, [ANNOTATION.unitHash]: unit.hash };
    return out;
  }

  private async observe(): Promise<Observed> {
    const versions = await this.apiVersions();
    try {
      const [lists, pods] = await Promise.all([
        Promise.all(
          KINDS.map((kind) =>
            this.cluster.objects.list(
              versions.get(kind)!,
              kind,
              this.namespace,
              undefined,
              undefined,
              undefined,
              undefined,
              this.selector,
            ),
          ),
        ),
        this.cluster.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector }),
      ]);
      const objects = new Map<string, Live>();
      lists.forEach((list, i) => {
        for (const item of list.items)
          objects.set(`${KINDS[i]}/${item.metadata?.name}`, {
            ...item,
            // A list's items carry neither: the list request says what they are.
            apiVersion: versions.get(KINDS[i]!)!,
            kind: KINDS[i]!,
          } as Live);
      });
      return { objects, pods: pods.items };
    } catch (e) {
      if (statusOf(e) === undefined) throw unreachable(this.cluster, e);
      throw new PodstackError(`reading the cloud from namespace ${this.namespace} failed: ${messageOf(e)}`, {
        cause: e,
      });
    }
  }

  private async ensureNamespace(): Promise<void> {
    try {
      await this.cluster.core.readNamespace({ name: this.namespace });
    } catch (e) {
      if (statusOf(e) === 404) {
        await this.cluster.core.createNamespace({
          body: { metadata: { name: this.namespace, labels: { [LABEL.managedBy]: 'podstack' } } },
        });
      } else if (statusOf(e) !== 403) {
        // Without the right to read namespaces, the first apply says what is wrong.
        throw unreachable(this.cluster, e);
      }
    }
  }

  private async serverSideApply(o: Live, dryRun = false): Promise<Live> {
    return (await this.cluster.objects.patch(
      o,
      undefined,
      dryRun ? 'All' : undefined,
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    )) as Live;
  }

  /**
   * Applies one object. A change to an immutable field (a Job's pod template:
   * its inputs changed, so it must run again) deletes and recreates the object.
   */
  private async applyObject(o: Live, live: Live | undefined): Promise<ObjectResult> {
    // A Job is the record of a run: the same inputs (its unit hash) mean there is nothing to
    // apply. Not even a no-op apply: kube-apiserver 1.20 was seen to rewrite podstack's
    // managed-fields entry (a new resourceVersion, a write) on such an apply of a Job that mounts
    // claims, with no field changed.
    if (
      o.kind === 'Job' &&
      live &&
      live.metadata.annotations?.[ANNOTATION.unitHash] === o.metadata.annotations?.[ANNOTATION.unitHash]
    )
      return 'unchanged';
    try {
      const result = await this.serverSideApply(o);
      if (!live) return 'created';
      return sameWrite(result, live) ? 'unchanged' : 'updated';
    } catch (e) {
      if (live && isImmutableChange(e)) {
        await this.deleteAndWait(live);
        await this.serverSideApply(o);
        return 'replaced';
      }
      throw new PodstackError(`applying ${keyOf(o)} failed: ${messageOf(e)}`, { cause: e });
    }
  }

  private async deleteAndWait(o: Live, timeoutMs = 120_000): Promise<void> {
    try {
      // Background: the object goes at once and the garbage collector removes its pods;
      // Foreground would hang on a cluster without a controller-manager.
      await this.cluster.objects.delete(o, undefined, undefined, undefined, undefined, 'Background');
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw new PodstackError(`deleting ${keyOf(o)} failed: ${messageOf(e)}`, { cause: e });
    }
    const read = () =>
      this.cluster.objects.read({
        apiVersion: o.apiVersion!,
        kind: o.kind,
        metadata: { name: o.metadata.name, namespace: this.namespace },
      });
    if (await waitFor(() => gone(read), timeoutMs)) return;
    throw new PodstackError(`${keyOf(o)} was not gone ${timeoutMs / 1000}s after deleting it`);
  }

  async diff(plan: Plan): Promise<UnitChange[]> {
    const observed = await this.observe();
    const planned = new Set<string>();
    const changes: UnitChange[] = [];
    for (const unit of plan.units) {
      const details: string[] = [];
      let created = 0;
      for (const o of unit.objects) {
        const desired = await this.toCluster(unit, o);
        planned.add(keyOf(desired));
        const detail = await this.objectChange(desired, observed.objects.get(keyOf(desired)));
        if (detail === 'create') created++;
        if (detail) details.push(`${keyOf(desired)}: ${detail}`);
      }
      const action = created === unit.objects.length ? 'create' : details.length > 0 ? 'update' : 'unchanged';
      changes.push({ unit: unit.name, action, details });
    }
    const gone = new Map<string, string[]>();
    for (const [key, live] of observed.objects) {
      if (planned.has(key)) continue;
      const unit = live.metadata.labels?.[LABEL.unit] ?? '(unknown unit)';
      gone.set(unit, [...(gone.get(unit) ?? []), key]);
    }
    for (const [unit, keys] of gone) changes.push({ unit, action: 'delete', details: keys });
    return changes;
  }

  /**
   * What applying would change in one object, asked of the server itself (a
   * dry-run apply), so defaults and admission are accounted for: 'create', the
   * changed field paths, or undefined when nothing would change. Paths only:
   * Secret values are never shown.
   */
  private async objectChange(desired: Live, live: Live | undefined): Promise<string | undefined> {
    if (!live) return 'create';
    try {
      const fields = changedFields(live, await this.serverSideApply(desired, true));
      return fields.length > 0 ? fields.join(', ') : undefined;
    } catch (e) {
      if (!isImmutableChange(e))
        throw new PodstackError(`checking ${keyOf(desired)} failed: ${messageOf(e)}`);
      return `replace (${desired.kind === 'Job' ? 'runs again' : 'immutable fields changed'})`;
    }
  }

  async apply(plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
    const o = { readyTimeout: 300, jobTimeout: 900, concurrency: 8, wait: true, ...options };
    const started = Date.now();
    await this.apiVersions();
    await this.ensureNamespace();
    const observed = await this.observe();
    const changed: string[] = [];
    const unchanged: string[] = [];
    let written = 0;
    const planned = new Set<string>();
    // Everything at once (bounded): the cluster orders the start-up itself.
    await forEachLimit(plan.units, o.concurrency, async (unit) => {
      let unitChanged = false;
      let replaced = false;
      for (const object of unit.objects) {
        const desired = await this.toCluster(unit, object);
        planned.add(keyOf(desired));
        const result = await this.applyObject(desired, observed.objects.get(keyOf(desired)));
        if (result !== 'unchanged') {
          written++;
          unitChanged = true;
          replaced ||= result !== 'created';
        }
      }
      (unitChanged ? changed : unchanged).push(unit.name);
      o.report({
        type: 'unit',
        unit: unit.name,
        state: unitChanged ? (replaced ? 'replacing' : 'creating') : 'unchanged',
      });
    });
    if (o.wait) await this.waitHealthy(plan, new Set(changed), o, started);
    const removed = await this.prune(observed, planned, o.report);
    return { changed, unchanged, removed, written };
  }

  /** Deletes what podstack made earlier that is no longer in the plan; claims (data) stay. */
  private async prune(observed: Observed, planned: ReadonlySet<string>, report: Reporter): Promise<string[]> {
    const removed = new Set<string>();
    for (const [key, live] of observed.objects) {
      if (planned.has(key)) continue;
      const unit = live.metadata.labels?.[LABEL.unit] ?? key;
      if (live.kind === 'PersistentVolumeClaim') {
        report({
          type: 'warning',
          message: `${key} is no longer in the plan; kept, as it holds data (down --purge deletes it)`,
        });
        continue;
      }
      await this.deleteAndWait(live);
      if (!removed.has(unit)) report({ type: 'unit', unit, state: 'removed' });
      removed.add(unit);
    }
    return [...removed];
  }

  /**
   * Watches until every unit is healthy. A unit's clock starts when the units
   * it depends on are healthy, since until then its pods are rightly waiting.
   */
  private async waitHealthy(plan: Plan, changed: ReadonlySet<string>, o: WaitOptions, started: number) {
    const watch: WatchState = { healthy: new Set(), since: new Map(), said: new Map(), failedLog: new Map() };
    for (;;) {
      const observed = await this.observe();
      for (const unit of plan.units) {
        if (watch.healthy.has(unit.name) || !unit.dependsOn.every((d) => watch.healthy.has(d))) continue;
        await this.watchUnit(unit, unitHealth(unit, observed), watch, o, () => {
          if (changed.has(unit.name) && unit.kind !== 'config') {
            const seconds = Math.round((Date.now() - started) / 100) / 10;
            o.report({
              type: 'unit',
              unit: unit.name,
              state: unit.kind === 'job' ? 'completed' : 'ready',
              seconds,
            });
          }
        });
      }
      if (watch.healthy.size === plan.units.length) return;
      await sleep(this.pollMs);
    }
  }

  /** One look at one unit: healthy, still coming, or failed (fatally, or by its deadline). */
  private async watchUnit(
    unit: PlannedUnit,
    health: Health,
    w: WatchState,
    o: WaitOptions,
    onHealthy: () => void,
  ) {
    const now = Date.now();
    if (!w.since.has(unit.name)) w.since.set(unit.name, now);
    if (isHealthy(health)) {
      w.healthy.add(unit.name);
      onHealthy();
      return;
    }
    const timeout = (unit.kind === 'job' ? o.jobTimeout : o.readyTimeout) * 1000;
    const late = now - w.since.get(unit.name)! > timeout;
    if (health.fatal || late) {
      const reason = health.fatal
        ? (health.reason ?? 'failed')
        : `not ${unit.kind === 'job' ? 'complete' : 'ready'} after ${timeout / 1000}s: ${health.reason ?? ''}`;
      o.report({ type: 'unit', unit: unit.name, state: 'failed', detail: reason });
      const log = await this.logTail(health);
      throw new UnitFailedError(unit.name, reason, log || w.failedLog.get(unit.name) || '');
    }
    if (health.reason && w.said.get(unit.name) !== health.reason) {
      await this.rememberFailedLog(unit.name, health, w);
      w.said.set(unit.name, health.reason);
      o.report({ type: 'unit', unit: unit.name, state: 'waiting', detail: health.reason });
    }
  }

  private async rememberFailedLog(unit: string, health: Health, w: WatchState): Promise<void> {
    if (!/exited with [1-9]|CrashLoopBackOff|Error/.test(health.reason ?? '')) return;
    const log = await this.logTail({
      ...health,
      ...(health.logOf && { logOf: { ...health.logOf, previous: false } }),
    });
    if (log) w.failedLog.set(unit, log);
  }

  /** `down` returns when the cloud's pods are gone, not merely asked to go. */
  private async podsGone(timeoutMs = 120_000): Promise<void> {
    const pods = () =>
      this.cluster.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector });
    if (await waitFor(async () => (await pods()).items.length === 0, timeoutMs, 1000)) return;
    const left = (await pods()).items.length;
    throw new PodstackError(`${left} pod(s) of ${this.cloud} still there after ${timeoutMs / 1000}s`);
  }

  private async logTail(health: Health): Promise<string> {
    if (!health.logOf) return '';
    try {
      const log = await this.cluster.core.readNamespacedPodLog({
        name: health.logOf.pod,
        namespace: this.namespace,
        container: health.logOf.container,
        tailLines: 20,
        previous: health.logOf.previous,
      });
      return String(log).trimEnd();
    } catch {
      return '';
    }
  }

  async status(plan: Plan): Promise<UnitStatus[]> {
    const observed = await this.observe();
    return plan.units.map((unit) => {
      const h = unitHealth(unit, observed);
      return {
        unit: unit.name,
        service: unit.service,
        kind: unit.kind,
        state: h.state,
        ...(h.reason ? { reason: h.reason } : {}),
      };
    });
  }

  async destroy(options: { purge: boolean; report: Reporter }): Promise<{ removed: readonly string[] }> {
    const observed = await this.observe();
    const removed = new Set<string>();
    const doomed = [...observed.objects.values()].filter(
      (o) => options.purge || o.kind !== 'PersistentVolumeClaim',
    );
    await forEachLimit(doomed, 8, async (live) => {
      await this.deleteAndWait(live);
      const unit = live.metadata.labels?.[LABEL.unit] ?? keyOf(live);
      if (!removed.has(unit)) options.report({ type: 'unit', unit, state: 'removed' });
      removed.add(unit);
    });
    await this.podsGone();
    if (options.purge) await this.removeNamespaceIfEmpty(options.report);
    return { removed: [...removed] };
  }

  /**
   * After `down --purge` the namespace goes too, when podstack created it and nothing is left in
   * it: another cloud, or anything of anyone else's, keeps it. Waits until it is gone, so that an
   * `up` right after does not meet a namespace still terminating.
   */
  private async removeNamespaceIfEmpty(report: Reporter): Promise<void> {
    const ns = await this.cluster.core.readNamespace({ name: this.namespace }).catch(() => undefined);
    if (ns?.metadata?.labels?.[LABEL.managedBy] !== 'podstack') return;
    const versions = await this.apiVersions();
    const [pods, ...lists] = await Promise.all([
      this.cluster.core.listNamespacedPod({ namespace: this.namespace }),
      ...KINDS.map((kind) => this.cluster.objects.list(versions.get(kind)!, kind, this.namespace)),
    ]);
    const left = lists.flatMap((list, i) => list.items.filter((o) => !madeByCluster(KINDS[i]!, o)));
    if (pods.items.length > 0 || left.length > 0) return;
    await this.cluster.core.deleteNamespace({ name: this.namespace });
    await waitFor(() => gone(() => this.cluster.core.readNamespace({ name: this.namespace })), 120_000);
    report({
      type: 'step',
      message: `removed namespace ${this.namespace}: podstack made it, and it was empty`,
    });
  }
}

/** What Kubernetes itself puts in every namespace: it does not make a namespace anyone's. */
function madeByCluster(kind: string, o: { metadata?: { name?: string }; type?: string }): boolean {
  return (
    (kind === 'ConfigMap' && o.metadata?.name === 'kube-root-ca.crt') ||
    (kind === 'ServiceAccount' && o.metadata?.name === 'default') ||
    (kind === 'Secret' && o.type === 'kubernetes.io/service-account-token')
  );
}

/**
 * Whether an apply left the object as it was. The resourceVersion says so for objects only
 * podstack writes; a Deployment's or Job's also moves whenever its controller records status, so
 * for those the spec's generation and podstack's own managed-fields entry (whose time changes
 * only when podstack's apply changed something) decide.
 */
export function sameWrite(after: Live, before: Live): boolean {
  if (after.metadata.resourceVersion === before.metadata.resourceVersion) return true;
  if (before.metadata.generation === undefined) return false;
  const ours = (o: Live) =>
    JSON.stringify(
      (o.metadata.managedFields ?? []).find((f) => f.manager === FIELD_MANAGER && f.operation === 'Apply'),
    );
  return after.metadata.generation === before.metadata.generation && ours(after) === ours(before);
}

/** Polls `done` until it holds (true) or the time is up (false). */
async function waitFor(done: () => Promise<boolean>, timeoutMs: number, everyMs = 500): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

/** Whether reading an object answers 404; any other error is an error. */
async function gone(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (e) {
    if (statusOf(e) === 404) return true;
    throw e;
  }
}

function isImmutableChange(e: unknown): boolean {
  return statusOf(e) === 422 && /immutable/i.test(messageOf(e));
}

async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
