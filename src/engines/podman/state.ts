import type { UnitChange } from '../../model/unit.js';
import { type ContainerRuns, isCrashing } from '../shared/limits.js';
import type { UnitState } from '../types.js';
import { PODMAN_LABEL, type PodmanWorkload } from './translate.js';

/**
 * What Podman's listing says of a unit, decided without asking Podman anything: the engine
 * fetches, these functions decide, and the unit tests feed them containers as `podman ps`
 * lists them (like the Kubernetes engine's health.ts).
 */

/** One container as `podman ps -a --format json` lists it. */
export interface PsEntry {
  Id: string;
  Names: string[];
  Labels: Record<string, string> | null;
  State: string;
  ExitCode: number;
  Pod: string;
  PodName: string;
  /** `podman inspect`'s restart count, where the engine looked it up. */
  Restarts?: number;
  /** When its current run started (`podman inspect`), where the engine looked it up. */
  StartedAt?: string;
}

/**
 * When Podman started a crash-looping container again, if it is running now: its log before that
 * moment ends with why the last attempt died; the lines after are the next attempt's start.
 */
export function restartedAt(e: PsEntry): string | undefined {
  return e.State === 'running' ? e.StartedAt : undefined;
}

/** A listed container's runs, as the one crash rule reads them. */
export const runsOf = (e: PsEntry): ContainerRuns => ({
  restarts: e.Restarts ?? 0,
  running: e.State === 'running',
  ...(e.StartedAt ? { startedAt: e.StartedAt } : {}),
});

const entryOf = (w: PodmanWorkload, existing: readonly PsEntry[], name: string) =>
  existing.find((e) => e.Names.includes(`${w.name}-${name}`));

/** Why a container whose plan changed is replaced (one that is broken says how it is broken). */
export const CHANGED = 'its spec or config changed';

/** What `up` does to one container of a pod that stays. */
export interface ContainerAction {
  readonly name: string;
  readonly action: 'keep' | 'create' | 'replace' | 'remove';
  readonly why?: string;
}

/**
 * What `up` does to a Deployment's pod: keep it (then replace only the containers that changed
 * or are broken), make it, or make it again (its ports, names, volumes, namespaces or init
 * containers changed), which stops everything in it, guests included.
 */
export interface PodActions {
  readonly pod: 'keep' | 'create' | 'replace';
  readonly why?: string;
  readonly containers: readonly ContainerAction[];
}

export function podActions(w: PodmanWorkload, existing: readonly PsEntry[], now = Date.now()): PodActions {
  const mains = w.containers.filter((c) => c.role === 'main');
  const all = mains.map((c) => ({ name: c.name, action: 'create' as const }));
  const theirs = existing.filter((e) => e.Labels?.[PODMAN_LABEL.role] === 'main');
  if (theirs.length === 0)
    return existing.length === 0
      ? { pod: 'create', containers: all }
      : { pod: 'replace', why: 'a pod left without its containers', containers: all };
  if (theirs.some((e) => e.Labels?.[PODMAN_LABEL.podHash] !== w.podHash))
    return {
      pod: 'replace',
      why: 'the pod itself changed (its ports, names, volumes, namespaces or init containers)',
      containers: all,
    };
  const containers: ContainerAction[] = mains.map((c) => {
    const e = entryOf(w, existing, c.name);
    if (!e) return { name: c.name, action: 'create' };
    if (e.Labels?.[PODMAN_LABEL.hash] !== c.hash) return { name: c.name, action: 'replace', why: CHANGED };
    if (e.State !== 'running') return { name: c.name, action: 'replace', why: `it is ${e.State}` };
    if (isCrashing(runsOf(e), now))
      return { name: c.name, action: 'replace', why: `it keeps crashing (restarted ${e.Restarts} times)` };
    return { name: c.name, action: 'keep' };
  });
  const planned = new Set(mains.map((c) => `${w.name}-${c.name}`));
  for (const e of theirs) {
    const name = e.Names[0] ?? '';
    if (!planned.has(name)) containers.push({ name: name.slice(w.name.length + 1), action: 'remove' });
  }
  return { pod: 'keep', containers };
}

/** Whether what runs is what the plan asks for: the same specs, running (or, for a Job, done), not crashing. */
export function isCurrent(w: PodmanWorkload, existing: readonly PsEntry[], now = Date.now()): boolean {
  if (w.kind === 'deployment') {
    const a = podActions(w, existing, now);
    return a.pod === 'keep' && a.containers.every((c) => c.action === 'keep');
  }
  const found = w.containers.filter((c) => c.role === 'main').map((c) => entryOf(w, existing, c.name));
  if (found.some((e) => e === undefined || e.Labels?.[PODMAN_LABEL.hash] !== w.hash)) return false;
  return found.every((e) => e!.State === 'exited' && e!.ExitCode === 0);
}

export interface Classified {
  readonly state: UnitState;
  readonly reason?: string;
  /** The container whose log says why, for a failed unit. */
  readonly container?: string;
  /**
   * Its log up to this moment says why: a crash-looping container that Podman has started
   * again, whose newest lines are the next attempt's start and not the last one's end.
   */
  readonly logUntil?: string;
  /** Whether a readiness probe still has to decide between ready and not-ready. */
  readonly probe?: boolean;
}

/** A unit's health from its containers alone; for a running Deployment, the probe decides the rest. */
export function classify(w: PodmanWorkload, existing: readonly PsEntry[], now = Date.now()): Classified {
  const mains = existing.filter((e) => e.Labels?.[PODMAN_LABEL.role] === 'main');
  if (mains.length === 0) return { state: 'missing', reason: 'not deployed' };
  if (w.kind === 'job') {
    const outdated = mains.some((e) => e.Labels?.[PODMAN_LABEL.hash] !== w.hash);
    const failed = mains.find((e) => e.State === 'exited' && e.ExitCode !== 0);
    if (failed)
      return { state: 'failed', reason: `exit code ${failed.ExitCode}`, container: failed.Names[0]! };
    if (mains.some((e) => e.State === 'running')) return { state: 'running' };
    if (outdated) return { state: 'outdated', reason: 'its inputs changed since it ran' };
    return mains.every((e) => e.State === 'exited') ? { state: 'completed' } : { state: 'not-ready' };
  }
  const crashing = mains.find((e) => isCrashing(runsOf(e), now));
  if (crashing) {
    const logUntil = restartedAt(crashing);
    return {
      state: 'failed',
      reason: `${crashing.Names[0]} keeps exiting (restarted ${crashing.Restarts} times, exit code ${crashing.ExitCode})`,
      container: crashing.Names[0]!,
      ...(logUntil ? { logUntil } : {}),
    };
  }
  const down = mains.find((e) => e.State !== 'running');
  if (down)
    return { state: 'failed', reason: `${down.Names[0]} is ${down.State}`, container: down.Names[0]! };
  const a = podActions(w, existing, now);
  if (a.pod !== 'keep' || a.containers.some((c) => c.action !== 'keep'))
    return { state: 'outdated', reason: 'running an older spec' };
  return { state: 'ready', probe: true };
}

/** What `up` would do to a workload, why, and what its users feel. */
export function workloadChange(w: PodmanWorkload, existing: readonly PsEntry[]): Omit<UnitChange, 'unit'> {
  if (existing.length === 0) return { action: 'create', details: [] };
  if (w.kind === 'job') {
    if (isCurrent(w, existing)) return { action: 'unchanged', details: [] };
    const changed = existing.some((e) => e.Labels?.[PODMAN_LABEL.hash] !== w.hash);
    return { action: 'update', details: [changed ? 'spec or config changed' : 'did not complete'] };
  }
  const a = podActions(w, existing);
  if (a.pod === 'replace')
    return {
      action: 'update',
      details: [a.why ?? 'the pod changed'],
      effect: w.guests
        ? { kind: 'guests', detail: 'a new pod stops every guest on this node' }
        : { kind: 'restarted', detail: 'a new pod: the old one stops first' },
    };
  const touched = a.containers.filter((c) => c.action !== 'keep');
  if (touched.length === 0) return { action: 'unchanged', details: [] };
  const rolled =
    (w.surge !== undefined || w.overlap !== undefined) &&
    touched.every((c) => c.action === 'replace' && c.why === CHANGED);
  return {
    action: 'update',
    details: touched.map((c) => `container ${c.name}: ${c.action}${c.why ? ` (${c.why})` : ''}`),
    effect: w.guests
      ? { kind: 'rolled', detail: 'only these containers are replaced; the guests keep running' }
      : rolled
        ? {
            kind: 'rolled',
            detail: w.overlap
              ? 'the new worker starts beside the old one, which finishes the calls it took'
              : 'the new generation serves beside the old one until it is ready',
          }
        : {
            kind: 'restarted',
            detail: `${touched.map((c) => c.name).join(', ')} stopped, then started again`,
          },
  };
}

/** A config unit's change: the files that differ, if any. */
export function configChange(differs: readonly string[]): Omit<UnitChange, 'unit'> {
  return { action: differs.length > 0 ? 'update' : 'unchanged', details: differs };
}
