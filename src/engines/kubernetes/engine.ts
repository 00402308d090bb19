import { PatchStrategy, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import { GuestRestartError, NotRunningError, PodstackError } from '../../errors.js';
import type { Reporter } from '../../events.js';
import { ANNOTATION, isWorkload, type KubeObject, LABEL, NODE_DATA_ROOT } from '../../model/objects.js';
import type { ChangeEffect, Plan, PlannedUnit } from '../../model/unit.js';
import type { RevisionStore } from '../../revisions/store.js';
import { PreflightError, type PreflightProblem } from '../preflight.js';
import { LIMITS } from '../shared/limits.js';
import { waitFor } from '../shared/poll.js';
import { RollGate } from '../shared/roll-gate.js';
import { forEachLimit } from '../shared/schedule.js';
import type { ApplyOptions, ApplyResult, Engine, ExecResult, UnitChange, UnitStatus } from '../types.js';
import { type Cluster, messageOf, statusOf, unreachable } from './client.js';
import { KubernetesData } from './data.js';
import { changedFields } from './diff.js';
import { chooseVersions, servedVersions, WRITABLE_VERSIONS } from './discovery.js';
import { podExec } from './exec.js';
import { guestsOf } from './guests.js';
import { keyOf, type Live, type Observed, unitHealth } from './health.js';
import { ensureNamespace, removeNamespaceIfEmpty } from './namespace.js';
import { observeCloud } from './observe.js';
import { clusterFacts, clusterProblems } from './preflight.js';
import { SecretRevisionStore } from './revisions.js';
import { HealthWatch, probeMessage, readLog, type WaitOptions } from './watch.js';
import {
  appliedHash,
  FIELD_MANAGER,
  gone,
  isImmutableChange,
  refusedReplacement,
  sameKey,
  sameWrite,
  unitOf,
  upToDate,
} from './writes.js';

export { FIELD_MANAGER, sameWrite } from './writes.js';

const KINDS = Object.keys(WRITABLE_VERSIONS) as KubeObject['kind'][];

type ObjectResult = 'created' | 'updated' | 'replaced' | 'unchanged';

type JobWaitOptions = Pick<WaitOptions, 'jobTimeout' | 'report'>;

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
/** How a change to a unit's objects reaches its pods: a changed pod template makes new pods. */
function effectOf(unit: PlannedUnit, details: readonly string[]): ChangeEffect | undefined {
  const workload = unit.objects.find(isWorkload);
  if (!workload || workload.kind === 'Job' || !details.some((d) => d.includes('spec.template')))
    return undefined;
  if (workload.metadata.annotations?.[ANNOTATION.guests])
    return { kind: 'guests', detail: 'its DaemonSet makes the node pod again: every guest on it stops' };
  if (workload.kind === 'Deployment' && workload.spec?.strategy?.type === 'RollingUpdate')
    return { kind: 'rolled', detail: 'a new pod beside the old one, which stops once the new one is ready' };
  return { kind: 'restarted', detail: 'a new pod, after the old one stops (strategy Recreate)' };
}

export class KubernetesEngine implements Engine {
  readonly name = 'kubernetes' as const;
  private readonly cluster: Cluster;
  private readonly cloud: string;
  private readonly pollMs: number;
  private versions: Promise<Map<KubeObject['kind'], string>> | undefined;
  private served: Promise<Set<string>> | undefined;
  /** The plan the last preflight passed: `up` checks before building, apply need not ask again. */
  private checked: Plan | undefined;
  /** Files in and out of the cloud's claims, node folders and containers (`backup`, `restore`). */
  readonly data: KubernetesData;

  constructor(o: KubernetesEngineOptions) {
    this.cluster = o.cluster;
    this.cloud = o.cloud;
    this.pollMs = (o.pollSeconds ?? 1) * 1000;
    this.data = new KubernetesData({
      cluster: this.cluster,
      cloud: this.cloud,
      applyClaim: async (unit, claim) => {
        const object = unit.objects.find(
          (c) => c.kind === 'PersistentVolumeClaim' && c.metadata.name === claim,
        );
        if (!object) throw new PodstackError(`unit ${unit.name} plans no claim ${claim}`);
        await ensureNamespace(this.cluster);
        await this.serverSideApply(await this.toCluster(unit, object));
      },
      runningPod: (unit, container) => this.runningPod(unit, container),
    });
  }

  get namespace(): string {
    return this.cluster.namespace;
  }

  private get selector(): string {
    return `${LABEL.instance}=${this.cloud},${LABEL.managedBy}=podstack`;
  }

  private servedVersions(): Promise<Set<string>> {
    this.served ??= servedVersions(this.cluster).catch((e: unknown) => {
      throw unreachable(this.cluster, e);
    });
    return this.served;
  }

  private apiVersions(): Promise<Map<KubeObject['kind'], string>> {
    this.versions ??= this.servedVersions().then((served) => chooseVersions(KINDS, served));
    return this.versions;
  }

  /**
   * What the cluster lacks for this plan (a StorageClass for its claims, API versions, rights in
   * the namespace, pod security that admits its pods), read before anything is written; what
   * could not be checked is reported as a warning.
   */
  async preflight(plan: Plan, report: Reporter): Promise<PreflightProblem[]> {
    let facts: Awaited<ReturnType<typeof clusterFacts>>;
    try {
      facts = await clusterFacts(this.cluster, plan, await this.servedVersions());
    } catch (e) {
      if (statusOf(e) === undefined) throw unreachable(this.cluster, e);
      throw new PodstackError(`checking the cluster before applying failed: ${messageOf(e)}`, { cause: e });
    }
    const { problems, warnings } = clusterProblems(plan, facts);
    for (const message of warnings) report({ type: 'warning', message });
    if (problems.length === 0) this.checked = plan;
    return problems;
  }

  /** The preflight's problems as the one error that stops the command (exit code 2). */
  preflightError(problems: readonly PreflightProblem[]): PreflightError {
    return new PreflightError(
      `the cluster at ${this.cluster.server} (namespace ${this.namespace})`,
      problems,
    );
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
    withoutEmptyEnv(out);
    out.metadata.annotations = { ...out.metadata.annotations, [ANNOTATION.applied]: appliedHash(out) };
    return out;
  }

  private async observe(): Promise<Observed> {
    return observeCloud(this.cluster, await this.apiVersions(), KINDS, this.selector);
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
   * Applies one object. A Job whose inputs changed runs again: it is replaced, after a run still
   * in progress has finished (a killed bootstrap can leave the cloud half-made). Anything else
   * that would need replacing (a claim's immutable field) is refused: it may hold data.
   */
  private async applyObject(o: Live, live: Live | undefined, opts: JobWaitOptions): Promise<ObjectResult> {
    if (o.kind === 'Job' && live) {
      // A Job is the record of a run: the same inputs (its unit hash) mean there is nothing to
      // apply. Not even a no-op apply: kube-apiserver 1.20 was seen to rewrite podstack's
      // managed-fields entry (a new resourceVersion, a write) on such an apply of a Job that mounts
      // claims, with no field changed.
      if (sameKey(o, live)) return 'unchanged';
      await this.untilJobIdle(live, opts);
      await this.deleteAndWait(live);
      await this.serverSideApply(o);
      return 'replaced';
    }
    if (upToDate(o, live)) return 'unchanged';
    try {
      const result = await this.serverSideApply(o);
      if (!live) return 'created';
      return sameWrite(result, live) ? 'unchanged' : 'updated';
    } catch (e) {
      if (live && isImmutableChange(e)) throw refusedReplacement(o, e);
      throw new PodstackError(`applying ${keyOf(o)} failed: ${messageOf(e)}`, { cause: e });
    }
  }

  /**
   * Waits while a Job still has pods running: its run is finished, never cut short. The pods
   * themselves are counted, not the Job's status.active: that is the Job controller's report,
   * and a busy controller was seen to leave it stale for over 4 minutes after its pods had gone.
   */
  private async untilJobIdle(live: Live, opts: JobWaitOptions): Promise<void> {
    let said = false;
    const idle = async () => {
      const pods = await this.cluster.core.listNamespacedPod({
        namespace: this.namespace,
        labelSelector: `job-name=${live.metadata.name}`,
      });
      const running = pods.items.filter(
        (p) =>
          p.metadata?.ownerReferences?.some((r) => r.uid === live.metadata.uid) &&
          !p.metadata?.deletionTimestamp &&
          p.status?.phase !== 'Succeeded' &&
          p.status?.phase !== 'Failed',
      );
      if (running.length === 0) return true;
      if (!said) {
        opts.report({
          type: 'unit',
          unit: unitOf(live),
          state: 'waiting',
          detail: `${keyOf(live)} is still running: it finishes first`,
        });
        said = true;
      }
      return false;
    };
    if (await waitFor(idle, opts.jobTimeout * 1000, this.pollMs)) return;
    throw new PodstackError(
      `${keyOf(live)} was still running after ${opts.jobTimeout}s; it was left to finish`,
      {
        hint: 'Run `podstack up` again once it has finished.',
      },
    );
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
    for (const unit of plan.units) changes.push(await this.unitChange(unit, observed, planned));
    const gone = new Map<string, string[]>();
    for (const [key, live] of observed.objects) {
      if (planned.has(key)) continue;
      const unit = live.metadata.labels?.[LABEL.unit] ?? '(unknown unit)';
      gone.set(unit, [...(gone.get(unit) ?? []), key]);
    }
    for (const [unit, keys] of gone) changes.push({ unit, action: 'delete', details: keys });
    return changes;
  }

  /** What applying would change in one unit's objects, and how that reaches its pods. */
  private async unitChange(unit: PlannedUnit, observed: Observed, planned: Set<string>): Promise<UnitChange> {
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
    const effect = action === 'update' ? effectOf(unit, details) : undefined;
    return { unit: unit.name, action, details, ...(effect ? { effect } : {}) };
  }

  /**
   * What applying would change in one object, asked of the server itself (a
   * dry-run apply), so defaults and admission are accounted for: 'create', the
   * changed field paths, or undefined when nothing would change. Paths only:
   * Secret values are never shown.
   */
  private async objectChange(desired: Live, live: Live | undefined): Promise<string | undefined> {
    if (!live) return 'create';
    if (desired.kind === 'Job')
      return sameKey(desired, live) ? undefined : 'replace (its inputs changed: runs again)';
    if (upToDate(desired, live)) return undefined;
    try {
      const fields = changedFields(live, await this.serverSideApply(desired, true));
      return fields.length > 0 ? fields.join(', ') : undefined;
    } catch (e) {
      if (!isImmutableChange(e))
        throw new PodstackError(`checking ${keyOf(desired)} failed: ${messageOf(e)}`);
      return `refused: ${messageOf(e)}`;
    }
  }

  async apply(plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
    const o = {
      readyTimeout: LIMITS.readyTimeout,
      jobTimeout: LIMITS.jobTimeout,
      concurrency: 8,
      wait: true,
      ...options,
    };
    const started = Date.now();
    if (this.checked !== plan) {
      const problems = await this.preflight(plan, o.report);
      if (problems.length > 0) throw this.preflightError(problems);
    }
    await this.apiVersions();
    await ensureNamespace(this.cluster);
    const observed = await this.observe();
    const repairs = this.failedUnits(plan, observed);
    if (!o.allowGuestRestart) await this.refuseGuestRestarts(plan, observed, repairs);
    const gone = await this.repair(repairs, observed, o.report);
    const changed: string[] = [];
    const unchanged: string[] = [];
    let written = 0;
    const planned = new Set<string>();
    // Everything at once (bounded): the cluster orders the start-up itself. Except rolls of
    // running servers, one at a time: with every API rolling at once on 2 cores, each new pod's
    // start-up starved the others' requests (13-27 s a request; CI's slower run timed out at 30).
    const rolls = new RollGate();
    await forEachLimit(plan.units, o.concurrency, async (unit) => {
      let unitChanged = repairs.has(unit.name);
      let replaced = unitChanged;
      const applyUnit = async () => {
        for (const object of unit.objects) {
          const desired = await this.toCluster(unit, object);
          planned.add(keyOf(desired));
          const live = gone.has(keyOf(desired)) ? undefined : observed.objects.get(keyOf(desired));
          const result = await this.applyObject(desired, live, o);
          if (result !== 'unchanged') {
            written++;
            unitChanged = true;
            replaced ||= result !== 'created';
          }
        }
      };
      if (o.wait && this.rollsRunning(unit, observed)) {
        await rolls.turn(unit.name, o.report, async () => {
          await applyUnit();
          // Rolled out: the new pods ready and the old ones gone. Its dependencies are running
          // already, and the last watch below reports it.
          await new HealthWatch(this.cluster, () => this.observe(), this.pollMs).until(
            { ...plan, units: [{ ...unit, dependsOn: [] }] },
            new Set(),
            o,
            Date.now(),
          );
        });
      } else await applyUnit();
      (unitChanged ? changed : unchanged).push(unit.name);
      o.report({
        type: 'unit',
        unit: unit.name,
        state: unitChanged ? (replaced ? 'replacing' : 'creating') : 'unchanged',
      });
    });
    if (o.wait)
      await new HealthWatch(this.cluster, () => this.observe(), this.pollMs).until(
        plan,
        new Set(changed),
        o,
        started,
      );
    const removed = await this.prune(observed, planned, o.report);
    return { changed, unchanged, removed, written };
  }

  /** Whether applying the unit changes a Deployment that runs now: a roll of a running server. */
  private rollsRunning(unit: PlannedUnit, observed: Observed): boolean {
    return unit.objects.some((o) => {
      if (o.kind !== 'Deployment') return false;
      const live = observed.objects.get(keyOf(o));
      return live !== undefined && live.metadata.annotations?.[ANNOTATION.unitHash] !== unit.hash;
    });
  }

  /** Units `status` calls failed: `up` repairs them even when their plan did not change. */
  private failedUnits(plan: Plan, observed: Observed): Map<string, string> {
    const failed = new Map<string, string>();
    for (const unit of plan.units) {
      const h = unitHealth(unit, observed);
      if (h.state === 'failed' && unit.objects.some(isWorkload)) failed.set(unit.name, h.reason ?? 'failed');
    }
    return failed;
  }

  /**
   * Replaces what is failed with the same spec and data: a failed Job is deleted (and applied
   * again below, so it runs again), a failed Deployment's or DaemonSet's pods are deleted (their
   * controller makes them again). Returns the keys of the objects it deleted.
   */
  private async repair(
    repairs: ReadonlyMap<string, string>,
    observed: Observed,
    report: Reporter,
  ): Promise<Set<string>> {
    const gone = new Set<string>();
    for (const [unit, why] of repairs) {
      report({ type: 'unit', unit, state: 'replacing', detail: `repairing: ${why}` });
      const workload = [...observed.objects.values()].find(
        (o) => isWorkload(o as KubeObject) && o.metadata.labels?.[LABEL.unit] === unit,
      );
      if (workload?.kind === 'Job') {
        await this.deleteAndWait(workload);
        gone.add(keyOf(workload));
        continue;
      }
      for (const pod of observed.pods.filter((p) => p.metadata?.labels?.[LABEL.unit] === unit)) {
        await this.cluster.core
          .deleteNamespacedPod({ name: pod.metadata!.name!, namespace: this.namespace })
          .catch((e: unknown) => (statusOf(e) === 404 ? undefined : Promise.reject(e)));
      }
    }
    return gone;
  }

  /**
   * Refuses, before anything is written, to replace a pod that runs guests: a node pod whose
   * template changes (its DaemonSet replaces it) or that is failed (repair deletes it). The
   * guests are listed by asking the pod itself.
   */
  private async refuseGuestRestarts(
    plan: Plan,
    observed: Observed,
    repairs: ReadonlyMap<string, string>,
  ): Promise<void> {
    const refused: { unit: string; guests: string[]; why: string }[] = [];
    for (const unit of plan.units) {
      const workload = unit.objects.find(isWorkload);
      if (!workload?.metadata.annotations?.[ANNOTATION.guests]) continue;
      const desired = await this.toCluster(unit, workload);
      const live = observed.objects.get(keyOf(desired));
      if (!live) continue;
      // The same unit hash is the same template: only a changed unit is asked of the server.
      const same = live.metadata.annotations?.[ANNOTATION.unitHash] === unit.hash;
      const why = repairs.has(unit.name)
        ? `its pod is failed (${repairs.get(unit.name)}) and would be made again`
        : !same && (await this.templateChanges(desired, live))
          ? 'its pod template changed, so its DaemonSet makes the pod again'
          : undefined;
      if (!why) continue;
      const pods = observed.pods.filter((p) => p.metadata?.labels?.[LABEL.unit] === unit.name);
      const guests = await guestsOf(this.cluster, workload, pods);
      if (guests.length > 0) refused.push({ unit: unit.name, guests, why });
    }
    if (refused.length > 0) throw new GuestRestartError(refused);
  }

  /** Whether applying `desired` changes the live object's pod template (a dry-run apply says). */
  private async templateChanges(desired: Live, live: Live): Promise<boolean> {
    const fields = changedFields(live, await this.serverSideApply(desired, true), 1000);
    return fields.some((f) => f.startsWith('spec.template'));
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
   * The cloud's node folders (podstack's hostPath volumes, under NODE_DATA_ROOT/<cloud>/) on each
   * node that can run a pod, with an image to reach them by: `down --purge` deletes them there,
   * as it deletes the claims. What they are is read from the workloads, or, after a `down` that
   * removed those, from the newest revision's plan; which nodes held them is no longer known
   * then, so every node is asked (a folder that is not there is no error).
   */
  private async nodeFolders(observed: Observed): Promise<{ node: string; path: string; image: string }[]> {
    const root = `${NODE_DATA_ROOT}/${this.cloud}/`;
    const store = this.revisions();
    const newest = (await store.list()).filter((r) => !r.legacy).at(-1);
    const planned = newest ? await store.plan(newest.revision) : undefined;
    const templates = [...observed.objects.values(), ...(planned?.units.flatMap((u) => u.objects) ?? [])].map(
      (o) => (o as { spec?: { template?: { spec?: V1PodSpec } } }).spec?.template?.spec,
    );
    const paths = new Set<string>();
    let image: string | undefined;
    for (const spec of templates) {
      const mine = (spec?.volumes ?? []).flatMap((v) =>
        v.hostPath?.path.startsWith(root) ? [v.hostPath.path] : [],
      );
      for (const p of mine) paths.add(p);
      if (mine.length > 0) image ??= spec?.containers[0]?.image;
    }
    if (!image || paths.size === 0) return [];
    const nodes = (await this.cluster.core.listNode()).items.filter(
      (n) =>
        !n.spec?.unschedulable &&
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') &&
        n.metadata?.name,
    );
    return nodes.flatMap((n) => [...paths].map((path) => ({ node: n.metadata!.name!, path, image: image! })));
  }

  /**
   * `down` returns when the cloud's pods are gone, not merely asked to go. A deleted pod whose
   * every container the kubelet reports ended is removed at once (grace 0): nothing of it runs,
   * and kubelet 1.20 removes such objects only at its next 10-second status sync (down waited
   * about 40 s for them). One with a container still running is left to the kubelet.
   */
  private async podsGone(timeoutMs = 120_000): Promise<void> {
    const pods = () =>
      this.cluster.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector });
    const gone = async () => {
      const left = (await pods()).items;
      for (const name of endedPods(left)) {
        await this.cluster.core
          .deleteNamespacedPod({ name, namespace: this.namespace, gracePeriodSeconds: 0 })
          .catch((e: unknown) => {
            if (statusOf(e) !== 404) throw e;
          });
      }
      return left.length === 0;
    };
    if (await waitFor(gone, timeoutMs, 1000)) return;
    // Named, with what the kubelet last said of each: a pod that will not go is a node's problem
    // (a container that ignores SIGTERM, a volume that will not unmount), which its name points at.
    const left = (await pods()).items.map(
      (p) =>
        `${p.metadata?.name} (${p.status?.phase ?? 'unknown'}${p.metadata?.deletionTimestamp ? ', terminating' : ''})`,
    );
    throw new PodstackError(
      `${left.length} pod(s) of ${this.cloud} still there after ${timeoutMs / 1000}s: ${left.join(', ')}`,
      {
        hint: `Run \`kubectl -n ${this.namespace} describe pod\` on them; run down again once they are gone.`,
      },
    );
  }

  async status(plan: Plan): Promise<UnitStatus[]> {
    const observed = await this.observe();
    return Promise.all(
      plan.units.map(async (unit) => {
        const h = unitHealth(unit, observed);
        const log = h.state === 'failed' ? await readLog(this.cluster, h) : '';
        // A running container that is not ready: its probe says why (only in an event).
        const said = h.reason?.endsWith(': not ready') ? await probeMessage(this.cluster, h) : undefined;
        const reason = said ? `${h.reason}: ${said}` : h.reason;
        return {
          unit: unit.name,
          service: unit.service,
          kind: unit.kind,
          state: h.state,
          ...(reason ? { reason } : {}),
          ...(log ? { log } : {}),
        };
      }),
    );
  }

  async exec(unit: string, container: string, command: readonly string[]): Promise<ExecResult> {
    return podExec(this.cluster, await this.runningPod(unit, container), container, command, 300_000);
  }

  /** A pod of the unit whose container runs, not one on its way out. */
  private async runningPod(unit: string, container: string): Promise<string> {
    const pods = await this.cluster.core.listNamespacedPod({
      namespace: this.namespace,
      labelSelector: `${LABEL.unit}=${unit}`,
    });
    const pod = pods.items.find(
      (p) =>
        !p.metadata?.deletionTimestamp &&
        p.status?.containerStatuses?.some((c) => c.name === container && c.state?.running),
    );
    if (!pod?.metadata?.name) throw new NotRunningError(unit, container);
    return pod.metadata.name;
  }

  revisions(): RevisionStore {
    return new SecretRevisionStore(this.cluster, this.cloud);
  }

  async destroy(options: { purge: boolean; report: Reporter }): Promise<{ removed: readonly string[] }> {
    const observed = await this.observe();
    // Without the right to list nodes (a namespace's operator), the folders stay, and it says so.
    const folders = options.purge
      ? await this.nodeFolders(observed).catch((e: unknown) => {
          options.report({
            type: 'warning',
            message: `the cloud's node folders (${NODE_DATA_ROOT}/${this.cloud}) are left on the nodes: ${messageOf(e)}`,
          });
          return [];
        })
      : [];
    const removed = new Set<string>();
    const remove = async (live: Live) => {
      await this.deleteAndWait(live);
      const unit = live.metadata.labels?.[LABEL.unit] ?? keyOf(live);
      if (!removed.has(unit)) options.report({ type: 'unit', unit, state: 'removed' });
      removed.add(unit);
    };
    const all = [...observed.objects.values()];
    await forEachLimit(
      all.filter((o) => o.kind !== 'PersistentVolumeClaim'),
      8,
      remove,
    );
    await this.podsGone();
    // The claims last, once no pod uses them: a claim in use stays (its pvc-protection finalizer)
    // until its pods are gone, and workers waiting on claims first once held every slot while the
    // Deployments that kept them were never deleted.
    if (options.purge)
      await forEachLimit(
        all.filter((o) => o.kind === 'PersistentVolumeClaim'),
        8,
        remove,
      );
    if (folders.length > 0) {
      options.report({
        type: 'step',
        message: `removing the cloud's node folders: ${[...new Set(folders.map((f) => f.path))].join(', ')}`,
      });
      for (const f of await this.data.removeFolders(folders))
        options.report({
          type: 'warning',
          message: `the node folder ${f.path} on node ${f.node} is left (remove it there by hand): ${f.why}`,
        });
    }
    if (options.purge) await this.revisions().removeAll();
    if (options.purge)
      await removeNamespaceIfEmpty(this.cluster, await this.apiVersions(), KINDS, options.report);
    return { removed: [...removed] };
  }
}

/**
 * The deleted pods (deletionTimestamp set) of which the kubelet reports every container ended:
 * at least one container status, and each one terminated. A pod with no statuses yet (never
 * started, or not reported) is not among them: its containers may still be coming.
 */
export function endedPods(pods: readonly V1Pod[]): string[] {
  return pods.flatMap((p) => {
    const statuses = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])];
    const ended =
      p.metadata?.deletionTimestamp !== undefined &&
      (p.status?.containerStatuses?.length ?? 0) > 0 &&
      statuses.every((c) => c.state?.terminated !== undefined && c.state.running === undefined);
    return ended && p.metadata?.name ? [p.metadata.name] : [];
  });
}

/**
 * Drops `env: []` from a workload's containers. The API server stores an empty env as absent, and
 * kube-apiserver 1.20 then rewrites the object on every server-side apply that falls in a new
 * second (a new resourceVersion and managedFields time, nothing else; kubernetes#121404 is the
 * same pattern): measured on the node pod's DaemonSet, whose metadata-agent container has no
 * env, so a no-op `up` wrote it each time. Without the empty list the re-apply writes nothing.
 */
function withoutEmptyEnv(o: Live): void {
  const pod = (o as { spec?: { template?: { spec?: V1PodSpec } } }).spec?.template?.spec;
  for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])])
    if (c.env && c.env.length === 0) delete c.env;
}
