/**
 * The thresholds both engines judge units by, in one place, so that `up` and `status` on Podman
 * and on Kubernetes call the same thing "crashing" and wait as long.
 */
export const LIMITS = {
  /** Seconds a Deployment may take to become ready. */
  readyTimeout: 300,
  /** Seconds a Job may run. */
  jobTimeout: 900,
  /** Restarts after which a container that is not yet stable is crashing, not starting slowly. */
  crashRestarts: 3,
  /** Seconds a restarted container must keep running before its restarts stop counting against it. */
  stableSeconds: 60,
} as const;

/** A container as both engines see it: how often it was restarted, and its current run. */
export interface ContainerRuns {
  readonly restarts: number;
  readonly running: boolean;
  /** When its current run started (ISO time), if it is running. */
  readonly startedAt?: string;
}

/**
 * The one rule for "crashing": restarted at least LIMITS.crashRestarts times and not running
 * stably now (down, or up for less than LIMITS.stableSeconds). A container killed a few times
 * that has run since for a minute is healthy again; one in a crash loop never is.
 */
export function isCrashing(c: ContainerRuns, now = Date.now()): boolean {
  if (c.restarts < LIMITS.crashRestarts) return false;
  if (!c.running || !c.startedAt) return true;
  return now - new Date(c.startedAt).getTime() < LIMITS.stableSeconds * 1000;
}
