import type { UnitChange } from '../../model/unit.js';
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

/** A crash loop this long is a failure, not a slow start (dependencies were waited for before). */
export const CRASH_RESTARTS = 3;

const mainsOf = (w: PodmanWorkload, existing: readonly PsEntry[]) =>
  w.containers
    .filter((c) => c.role === 'main')
    .map((c) => existing.find((e) => e.Names.includes(`${w.name}-${c.name}`)));

/** Whether what runs is what the plan asks for: same hash, and running (or, for a Job, done). */
export function isCurrent(w: PodmanWorkload, existing: readonly PsEntry[]): boolean {
  const found = mainsOf(w, existing);
  if (found.some((e) => e === undefined || e.Labels?.[PODMAN_LABEL.hash] !== w.hash)) return false;
  if (w.kind === 'job') return found.every((e) => e!.State === 'exited' && e!.ExitCode === 0);
  return found.every((e) => e!.State === 'running');
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
export function classify(w: PodmanWorkload, existing: readonly PsEntry[]): Classified {
  const mains = existing.filter((e) => e.Labels?.[PODMAN_LABEL.role] === 'main');
  if (mains.length === 0) return { state: 'missing', reason: 'not deployed' };
  const outdated = mains.some((e) => e.Labels?.[PODMAN_LABEL.hash] !== w.hash);
  if (w.kind === 'job') {
    const failed = mains.find((e) => e.State === 'exited' && e.ExitCode !== 0);
    if (failed)
      return { state: 'failed', reason: `exit code ${failed.ExitCode}`, container: failed.Names[0]! };
    if (mains.some((e) => e.State === 'running')) return { state: 'running' };
    if (outdated) return { state: 'outdated', reason: 'its inputs changed since it ran' };
    return mains.every((e) => e.State === 'exited') ? { state: 'completed' } : { state: 'not-ready' };
  }
  const crashing = mains.find((e) => (e.Restarts ?? 0) >= CRASH_RESTARTS);
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
  if (outdated) return { state: 'outdated', reason: 'running an older spec' };
  return { state: 'ready', probe: true };
}

/** What `up` would do to a workload, and why. */
export function workloadChange(w: PodmanWorkload, existing: readonly PsEntry[]): Omit<UnitChange, 'unit'> {
  if (existing.length === 0) return { action: 'create', details: [] };
  if (isCurrent(w, existing)) return { action: 'unchanged', details: [] };
  if (existing.some((e) => e.Labels?.[PODMAN_LABEL.hash] !== w.hash))
    return { action: 'update', details: ['spec or config changed'] };
  return { action: 'update', details: [w.kind === 'job' ? 'did not complete' : 'not running'] };
}

/** A config unit's change: the files that differ, if any. */
export function configChange(differs: readonly string[]): Omit<UnitChange, 'unit'> {
  return { action: differs.length > 0 ? 'update' : 'unchanged', details: differs };
}
