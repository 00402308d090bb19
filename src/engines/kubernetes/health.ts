import type {
  KubernetesObject,
  V1ContainerStatus,
  V1DaemonSet,
  V1Deployment,
  V1Job,
  V1Pod,
} from '@kubernetes/client-node';
import { ANNOTATION, isWorkload, LABEL, WAIT_CONTAINER } from '../../model/objects.js';
import type { PlannedUnit } from '../../model/unit.js';
import { isCrashing } from '../shared/limits.js';
import type { UnitState } from '../types.js';

/**
 * A unit's health read from the cluster's own state (rollout, Job completion,
 * pod conditions, restarts), with the reason when it is not healthy. Pure: the
 * engine fetches, this decides, and the tests feed it objects as the API returns them.
 */

export interface Live extends KubernetesObject {
  kind: string;
  metadata: NonNullable<KubernetesObject['metadata']> & { name: string };
}

export interface Observed {
  /** Kind/name -> the object as the cluster has it (podstack's labels only). */
  readonly objects: ReadonlyMap<string, Live>;
  readonly pods: readonly V1Pod[];
}

export interface Health {
  readonly state: UnitState;
  readonly reason?: string;
  /** Set when waiting longer cannot help. */
  readonly fatal?: boolean;
  /** The pod and container whose log explains it. */
  readonly logOf?: { pod: string; container: string; previous: boolean };
}

/** Container states that will not go away by waiting. */
const FATAL_WAITING = new Set([
  'ImagePullBackOff',
  'ErrImagePull',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

export const keyOf = (o: { kind?: string; metadata?: { name?: string } }) => `${o.kind}/${o.metadata?.name}`;

export const isHealthy = (h: Health) =>
  h.state === 'ready' || h.state === 'completed' || h.state === 'applied';

export function unitHealth(unit: PlannedUnit, observed: Observed): Health {
  const missing = unit.objects.map(keyOf).filter((k) => !observed.objects.has(k));
  if (missing.length > 0) return { state: 'missing', reason: `${missing.join(', ')} not in the cluster` };
  const workload = unit.objects.find(isWorkload);
  if (!workload) return { state: 'applied' };
  const live = observed.objects.get(keyOf(workload))!;
  // A pod being deleted says nothing of the unit's health: a crash-looping one that `up` repairs
  // crashes on until its grace period ends, and its replacement may not be listed yet.
  const pods = observed.pods
    .filter((p) => p.metadata?.labels?.[LABEL.unit] === unit.name && !p.metadata?.deletionTimestamp)
    .sort((a, b) =>
      String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp)),
    );
  const health =
    workload.kind === 'Job'
      ? jobHealth(live as V1Job, pods)
      : workload.kind === 'DaemonSet'
        ? daemonSetHealth(live as V1DaemonSet, pods)
        : deploymentHealth(live as V1Deployment, pods);
  if (isHealthy(health) && live.metadata.annotations?.[ANNOTATION.unitHash] !== unit.hash)
    return { state: 'outdated', reason: 'made from an older plan: `podstack up` applies the current one' };
  return health;
}

function jobHealth(job: V1Job, pods: readonly V1Pod[]): Health {
  if ((job.status?.succeeded ?? 0) >= 1) return { state: 'completed' };
  const pod = podProblem(pods);
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  if (failed) {
    const why = [failed.reason, failed.message].filter(Boolean).join(': ');
    return { ...pod, state: 'failed', fatal: true, reason: `job failed${why ? `: ${why}` : ''}` };
  }
  return { ...pod, state: pod.fatal ? 'failed' : 'running' };
}

/** Ready when every node that should run the pod runs the current one, ready. */
function daemonSetHealth(d: V1DaemonSet, pods: readonly V1Pod[]): Health {
  const s = d.status;
  const want = s?.desiredNumberScheduled ?? 0;
  const rolledOut =
    want > 0 &&
    (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
    s?.updatedNumberScheduled === want &&
    s?.numberReady === want;
  if (rolledOut) return restartsOf(pods);
  if (s && want === 0 && (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0))
    return { state: 'not-ready', reason: 'no node can run it (none matches, or all are tainted)' };
  const pod = podProblem(pods);
  return { ...pod, state: pod.fatal ? 'failed' : 'not-ready' };
}

function restartsOf(pods: readonly V1Pod[]): Health {
  const restarts = pods
    .flatMap((p) => p.status?.containerStatuses ?? [])
    .reduce((n, c) => n + c.restartCount, 0);
  return { state: 'ready', ...(restarts > 0 ? { reason: `${restarts} restart(s)` } : {}) };
}

function deploymentHealth(d: V1Deployment, pods: readonly V1Pod[]): Health {
  const want = d.spec?.replicas ?? 1;
  const s = d.status;
  const rolledOut =
    (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
    s?.updatedReplicas === want &&
    s?.readyReplicas === want &&
    s?.replicas === want;
  if (rolledOut) return restartsOf(pods);
  const pod = podProblem(pods);
  return { ...pod, state: pod.fatal ? 'failed' : 'not-ready' };
}

/**
 * Why the newest pod of a unit is not running, and whether waiting can help.
 * The wait container running is not a problem: it is the pod waiting for its
 * dependencies, as designed.
 */
export function podProblem(pods: readonly V1Pod[]): Health {
  const pod = pods[0];
  if (!pod) return { state: 'not-ready', reason: 'no pod yet' };
  const name = pod.metadata?.name ?? '';
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled)
    return { state: 'not-ready', reason: `not scheduled: ${unscheduled.message ?? unscheduled.reason}` };
  const statuses = [
    ...(pod.status?.initContainerStatuses ?? []).map((c) => ({ c, init: true })),
    ...(pod.status?.containerStatuses ?? []).map((c) => ({ c, init: false })),
  ];
  for (const { c, init } of statuses) {
    const problem = containerProblem(name, c, init);
    if (problem) return problem;
  }
  // The log worth showing is of a container that is not ready yet (a listener is ready at once).
  const first =
    statuses.find(({ c, init }) => !init && !c.ready)?.c.name ?? pod.spec?.containers[0]?.name ?? '';
  return {
    state: 'not-ready',
    reason: pod.status?.phase ?? 'starting',
    logOf: { pod: name, container: first, previous: false },
  };
}

function containerProblem(pod: string, c: V1ContainerStatus, init: boolean): Health | undefined {
  const waiting = c.state?.waiting;
  const logOf = { pod, container: c.name, previous: c.restartCount > 0 && !c.state?.running };
  // The kubelet's own pull rate limit is not the image's fault: it pulls again.
  const throttled = /QPS exceeded/.test(waiting?.message ?? '');
  if (waiting?.reason && FATAL_WAITING.has(waiting.reason) && !throttled)
    return {
      state: 'failed',
      fatal: true,
      reason: `${c.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
      logOf,
    };
  const running = c.state?.running;
  if (
    isCrashing({
      restarts: c.restartCount,
      running: !!running,
      ...(running?.startedAt ? { startedAt: new Date(running.startedAt).toISOString() } : {}),
    })
  )
    return {
      state: 'failed',
      // Down in a crash loop, `up` need not wait any longer; a run that just began may hold.
      fatal: !running,
      reason: `${c.name} keeps crashing (${c.restartCount} restarts)`,
      logOf,
    };
  if (init && c.name === WAIT_CONTAINER && c.state?.running)
    return { state: 'not-ready', reason: 'waiting for its dependencies', logOf };
  if (init && c.state?.terminated?.exitCode === 0) return undefined;
  if (c.ready) return undefined;
  const terminated = c.state?.terminated;
  const why = waiting?.reason ?? (terminated ? `exited with ${terminated.exitCode}` : 'not ready');
  return { state: 'not-ready', reason: `${c.name}: ${why}`, logOf };
}
