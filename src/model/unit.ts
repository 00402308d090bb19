import type { KubeObject } from './objects.js';

/**
 * A unit is what an engine applies and waits on as one step: a Deployment with
 * its Service and volumes, a bootstrap Job, or a set of config objects. Units
 * depend on units; that graph is the cloud's run-time relationships.
 */
export interface Unit {
  readonly name: string;
  /** The catalog service this unit belongs to. */
  readonly service: string;
  readonly description: string;
  /** Units that must be complete (config applied, job succeeded, deployment ready) before this one starts. */
  readonly dependsOn: readonly string[];
  readonly objects: readonly KubeObject[];
  /**
   * The databases whose schemas this unit's Job creates or moves (a service's db-sync): before
   * it runs again on a cloud that has them, `up` dumps them, so a rollback has them as they were.
   */
  readonly migrates?: readonly string[];
}

export type UnitKind = 'config' | 'deployment' | 'job';

export interface PlannedUnit extends Unit {
  readonly kind: UnitKind;
  /** Hash of every object of the unit: unchanged hash, nothing to do. */
  readonly hash: string;
}

export interface Plan {
  readonly cloud: string;
  /** In a dependency order (each unit after everything it depends on). */
  readonly units: readonly PlannedUnit[];
  /** Units grouped into waves: every unit of a wave can be applied concurrently. */
  readonly waves: readonly (readonly string[])[];
}

/** What applying a plan would do to one unit, as an engine sees it against what runs. */
export type ChangeAction = 'create' | 'update' | 'unchanged' | 'delete';

/**
 * How a change reaches what runs: rolled (no outage), restarted (an outage, and why), or
 * guest-affecting (running guests stop: `up` asks for --allow-guest-restart first).
 */
export interface ChangeEffect {
  readonly kind: 'rolled' | 'restarted' | 'guests';
  readonly detail: string;
}

export interface UnitChange {
  readonly unit: string;
  readonly action: ChangeAction;
  /** What differs, for updates: object kinds and names, or a short reason. */
  readonly details: readonly string[];
  readonly effect?: ChangeEffect;
}
