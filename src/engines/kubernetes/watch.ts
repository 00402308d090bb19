import { UnitFailedError } from '../../errors.js';
import type { Plan, PlannedUnit } from '../../model/unit.js';
import { sleep } from '../shared/poll.js';
import type { ApplyOptions } from '../types.js';
import type { Cluster } from './client.js';
import { podExec } from './exec.js';
import { type Health, isHealthy, type Observed, unitHealth } from './health.js';

export type WaitOptions = Required<Pick<ApplyOptions, 'readyTimeout' | 'jobTimeout'>> & ApplyOptions;

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

/**
 * Watches a cloud come up on the cluster: the cluster orders the start-up itself (pods wait in
 * their init container), podstack only looks, reports each unit once it is healthy, and fails
 * with the pod's log as soon as waiting cannot help.
 */
export class HealthWatch {
  constructor(
    private readonly cluster: Cluster,
    private readonly observe: () => Promise<Observed>,
    private readonly pollMs: number,
  ) {}

  /**
   * Watches until every unit is healthy. A unit's clock starts when the units
   * it depends on are healthy, since until then its pods are rightly waiting.
   */
  async until(plan: Plan, changed: ReadonlySet<string>, o: WaitOptions, started: number) {
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
      const log = await readLog(this.cluster, health);
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
    const log = await readLog(this.cluster, {
      ...health,
      ...(health.logOf && { logOf: { ...health.logOf, previous: false } }),
    });
    if (log) w.failedLog.set(unit, log);
  }
}

/** The last lines of the log that explains a unit's health, or '' when there is none to read. */
export async function readLog(cluster: Cluster, health: Health): Promise<string> {
  if (!health.logOf) return '';
  try {
    const log = await cluster.core.readNamespacedPodLog({
      name: health.logOf.pod,
      namespace: cluster.namespace,
      container: health.logOf.container,
      tailLines: 20,
      previous: health.logOf.previous,
    });
    return String(log).trimEnd();
  } catch {
    return '';
  }
}

/**
 * Why a running container is not ready, in its readiness probe's own words. The kubelet keeps
 * them only in an Unhealthy event, and its event recorder drops an object's events past a burst
 * of 25 (one more per 5 minutes): a node pod that started a dozen containers may never record
 * its probe's failure. So podstack runs the probe's command again, as the kubelet does, and
 * reads the event only when it cannot (podstack-ovs-ports names the guest ports that are down).
 * Undefined when the probe passes now, or neither can be read.
 */
export async function probeMessage(cluster: Cluster, health: Health): Promise<string | undefined> {
  if (!health.logOf) return undefined;
  const again = await probeAgain(cluster, health.logOf);
  return again === undefined ? await probeEvent(cluster, health.logOf) : again || undefined;
}

/** The last line the container's exec readiness probe prints when it fails ('' when it passes); undefined if it cannot run. */
async function probeAgain(cluster: Cluster, of: NonNullable<Health['logOf']>): Promise<string | undefined> {
  try {
    const pod = await cluster.core.readNamespacedPod({ name: of.pod, namespace: cluster.namespace });
    const probe = pod.spec?.containers.find((c) => c.name === of.container)?.readinessProbe;
    const command = probe?.exec?.command;
    if (!command?.length) return undefined;
    const r = await podExec(
      cluster,
      of.pod,
      of.container,
      command,
      ((probe?.timeoutSeconds ?? 1) + 10) * 1000,
    );
    if (r.exitCode === 0) return '';
    return lastLine(`${r.stdout}\n${r.stderr}`);
  } catch {
    return undefined;
  }
}

/** The newest Unhealthy event's message for the container. */
async function probeEvent(cluster: Cluster, of: NonNullable<Health['logOf']>): Promise<string | undefined> {
  try {
    const events = await cluster.core.listNamespacedEvent({
      namespace: cluster.namespace,
      fieldSelector: `involvedObject.name=${of.pod},reason=Unhealthy`,
    });
    const when = (e: (typeof events.items)[number]) =>
      new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? 0).getTime();
    const newest = events.items
      .filter((e) => e.involvedObject.fieldPath === `spec.containers{${of.container}}`)
      .sort((a, b) => when(b) - when(a))[0];
    return lastLine(newest?.message ?? '');
  } catch {
    return undefined;
  }
}

function lastLine(text: string): string | undefined {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() || undefined
  );
}
