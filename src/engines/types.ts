import type { Reporter } from '../events.js';
import type { Plan, PlannedUnit, UnitChange, UnitKind } from '../model/unit.js';
import type { RevisionStore } from '../revisions/store.js';

export type { ChangeAction, UnitChange } from '../model/unit.js';

export type UnitState =
  | 'ready'
  | 'completed'
  | 'applied'
  | 'running'
  | 'not-ready'
  | 'failed'
  | 'outdated'
  | 'missing';

export interface UnitStatus {
  readonly unit: string;
  readonly service: string;
  readonly kind: UnitKind;
  readonly state: UnitState;
  /** Why it is in that state, when it is not healthy (or a useful detail when it is). */
  readonly reason?: string;
  /** The last lines of the log of the container that failed, for a failed unit. */
  readonly log?: string;
}

export interface ApplyOptions {
  readonly report: Reporter;
  /** Units applied at once (independent ones only). */
  readonly concurrency?: number;
  /** Seconds a Deployment may take to become ready. */
  readonly readyTimeout?: number;
  /** Seconds a Job may run. */
  readonly jobTimeout?: number;
  /**
   * Wait until every unit is healthy (default); false returns once the objects are applied.
   * The Podman engine always waits: it is what starts units in dependency order.
   */
  readonly wait?: boolean;
  /**
   * Let a change stop running guests (a new node pod). Without it, `up` refuses such a change
   * before it changes anything, and names the guests.
   */
  readonly allowGuestRestart?: boolean;
}

export interface ApplyResult {
  readonly changed: readonly string[];
  readonly unchanged: readonly string[];
  readonly removed: readonly string[];
  /** Objects created, changed or replaced (where the engine counts them). */
  readonly written?: number;
}

/** What a command run in a unit's container ended with. */
export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Files in and out of a cloud's claims and containers, for `backup` and `restore`. Paths on the
 * host are podstack's own temporary folders. `unit` is the planned unit that owns the data: an
 * engine that copies through a pod of its own runs that pod from the unit's image.
 */
export interface DataAccess {
  /** Every file of a claim, as a tar file on the host. */
  exportClaim(unit: PlannedUnit, claim: string, file: string): Promise<void>;
  hasClaim(claim: string): Promise<boolean>;
  /** Makes a claim from a tar file, as `up` would make it for `unit`; refuses one that exists. */
  importClaim(unit: PlannedUnit, claim: string, file: string): Promise<void>;
  /** A node folder (a hostPath of a unit's pod: guests' disks) as a tar file, and back, like a claim. */
  exportFolder(unit: PlannedUnit, path: string, file: string): Promise<void>;
  hasFolder(unit: PlannedUnit, path: string): Promise<boolean>;
  importFolder(unit: PlannedUnit, path: string, file: string): Promise<void>;
  /** Copies a folder out of, or into, a running container of a unit. */
  copyOut(unit: string, container: string, path: string, hostPath: string): Promise<void>;
  copyIn(unit: string, container: string, hostPath: string, path: string): Promise<void>;
}

/** What every engine does with a plan. Podman and Kubernetes implement the same contract. */
export interface Engine {
  readonly name: 'podman' | 'kubernetes';
  diff(plan: Plan): Promise<UnitChange[]>;
  apply(plan: Plan, options: ApplyOptions): Promise<ApplyResult>;
  status(plan: Plan): Promise<UnitStatus[]>;
  /**
   * Runs a command in a running container of a unit's workload (`podstack rotate-keys`), as the
   * container's own user. Fails with a PodstackError when no such container runs.
   */
  exec(unit: string, container: string, command: readonly string[]): Promise<ExecResult>;
  /** Files in and out of the cloud (`backup`, `restore`); undefined where not built yet. */
  readonly data?: DataAccess;
  /** Where the cloud's revisions are kept: beside what runs, so whoever manages it sees them. */
  revisions(): RevisionStore;
  /** Removes the cloud; data volumes (and the revisions) stay unless purge. */
  destroy(options: { purge: boolean; report: Reporter }): Promise<{ removed: readonly string[] }>;
}
