// `podstack rollback N`: the cloud as revision N left it, from N's own record and rendered plan
// (not re-rendered from its cloud file: podstack's catalog may have changed since), with the
// images N ran, by ID. It is itself a new revision ("rolled back to N"), and the cloud file
// becomes N's, so that the next `up` keeps what the rollback did.
import { writeFileAtomic } from '../_fs.js';
import type { ApplyResult, Engine } from '../engines/types.js';
import { PodstackError } from '../errors.js';
import type { Reporter } from '../events.js';
import { ROOTFS } from '../images/recipes.js';
import type { Plan } from '../model/unit.js';
import { podmanForHost } from '../podman/host.js';
import type { Podman } from '../podman/runner.js';
import { describeChanges, type RevisionRecord } from '../revisions/record.js';
import type { StoredRevision } from '../revisions/store.js';
import { readInputFile } from '../spec/files.js';
import { localImages, pushRefs } from './build.js';
import { type EngineChoice, engineFor } from './engine.js';
import { openProject, type ProjectOptions } from './project.js';
import { RevisionInProgress, secretsHash } from './revisions.js';
import {
  compareWithSnapshot,
  type Loss,
  lossesInWords,
  pruneSnapshots,
  restoreSnapshot,
  schemaVersions,
  takeSnapshot,
} from './snapshots.js';

export interface RollbackOptions extends Omit<ProjectOptions, 'engine'> {
  readonly report: Reporter;
  readonly engine?: EngineChoice;
  readonly revision: number;
  /** Say what would change, change nothing. */
  readonly dryRun?: boolean;
  /** Put snapshots back where a schema moved since the target, losing what was written since. */
  readonly yes?: boolean;
  readonly allowGuestRestart?: boolean;
}

export interface RollbackResult {
  /** The revision returned to. */
  readonly target: number;
  /** The revision the rollback made (undefined: a dry run, or the cloud is at the target already). */
  readonly revision?: number;
  /** Units whose objects differ between what runs and the target. */
  readonly units: readonly string[];
  /** What returning undoes, in words. */
  readonly changes: readonly string[];
  readonly apply?: ApplyResult;
  readonly seconds: number;
  /** Where the cloud file's edits that were never applied were kept, if it had any. */
  readonly unappliedFile?: string;
  /**
   * Databases put back from snapshots (a return across a schema that moved), with what that
   * undid; on a dry run, what it would undo.
   */
  readonly restores?: readonly RestoreDone[];
}

/** Databases put back from the snapshot taken before revision `from` migrated them. */
export interface RestoreDone {
  readonly from: number;
  readonly databases: readonly string[];
  readonly lost: readonly Loss[];
}

/**
 * Images whose data store's own format a new image may have moved on for good: a rollback across
 * a change of one is refused. (A schema migration is not: the snapshot taken before it goes back.)
 */
const DATA_IMAGES = ['mariadb', 'rabbitmq', 'ovn'];

const refuse = (message: string, hint: string) => new PodstackError(message, { exitCode: 2, hint });
const HISTORY = '`podstack history` lists the revisions.';
const ROLL_FORWARD = 'Roll forward instead: edit cloud.yaml back to what you want and run `podstack up`.';

export async function rollback(o: RollbackOptions): Promise<RollbackResult> {
  const started = Date.now();
  const project = await openProject({ ...o, engine: o.engine?.name ?? 'podman' });
  const chosen = await engineFor(project, o.engine);
  const { engine, preflight } = chosen;
  const store = engine.revisions();
  const all = await store.list();
  const { target, current } = targetOf(all, o.revision, store.where);
  const plan = await store.plan(o.revision);
  if (!plan) throw refuse(`revision ${o.revision}'s plan is gone from ${store.where}`, HISTORY);

  const units = [...new Set([...Object.keys(target.units), ...Object.keys(current.units)])].filter(
    (u) => target.units[u] !== current.units[u],
  );
  const changes = describeChanges(current, { ...target, podstack: current.podstack });
  const base = { target: o.revision, units, changes };
  if (current.revision === o.revision || (units.length === 0 && current.cloudFile === target.cloudFile))
    return { ...base, seconds: (Date.now() - started) / 1000 };

  refuseDataChanges(target, current, project.secrets);
  const restores = await schemasToPutBack(o, engine, all, [plan, await store.plan(current.revision)], units);
  const podman = chosen.podman ?? (await podmanForHost(project.stateDir)).podman;
  const local = await localImages(podman);
  refuseMissingImages(target, local.ids);
  // What putting the snapshots back would undo, said before anything changes.
  const words: string[] = [];
  const restoring: RestoreDone[] = [];
  for (const r of restores) {
    const lost = await compareWithSnapshot(engine, r.from, r.databases);
    restoring.push({ from: r.from, databases: r.databases, lost });
    words.push(restoreInWords(r, lost));
  }
  if (o.dryRun) return { ...base, restores: restoring, seconds: (Date.now() - started) / 1000 };
  if (restores.length > 0 && !o.yes)
    throw refuse(
      `returning to revision ${o.revision} moves a schema back: ${words.join('; ')}`,
      `Run \`podstack rollback ${o.revision} --yes\` to put the snapshot back and lose that, or roll forward instead (edit cloud.yaml, \`podstack up\`).`,
    );

  if (preflight) await preflight(o.report);
  // Each reference names the image N ran: a later build may have given the tag to other content.
  await retag(podman, target, local.byRef, o.report);
  if (project.engine === 'kubernetes') {
    const refs = Object.fromEntries(
      Object.entries(target.images)
        .filter(([name]) => name !== ROOTFS)
        .map(([name, i]) => [name, i.ref]),
    );
    await pushRefs(project, podman, refs, o.report);
  }
  const pending = await RevisionInProgress.rollback(store, target, plan);
  let apply: ApplyResult;
  let restored: RestoreDone[] = [];
  try {
    // Before the apply: the old code's migration Job must find the schema it knows.
    restored = await putBack(engine, pending, restores, o.report);
    apply = await engine.apply(plan, {
      report: o.report,
      ...(o.allowGuestRestart ? { allowGuestRestart: true } : {}),
    });
    if (restores.length > 0)
      await pending.migrated(
        await schemaVersions(
          engine,
          restores.flatMap((r) => r.databases),
        ),
      );
  } catch (err) {
    await pending.failed(err);
    throw err;
  }
  const revision = await pending.deployed(apply);
  const unappliedFile = await followRevision(project.file, current, target);
  return {
    ...base,
    revision,
    apply,
    restores: restored,
    seconds: (Date.now() - started) / 1000,
    ...(unappliedFile ? { unappliedFile } : {}),
  };
}

/**
 * The snapshots a return across `units` must put back: none when no migration changed, or when
 * every schema stands where it stood (said, and the data reads back as it is).
 */
async function schemasToPutBack(
  o: RollbackOptions,
  engine: Engine,
  all: readonly RevisionRecord[],
  plans: readonly (Plan | undefined)[],
  units: readonly string[],
): Promise<Restore[]> {
  const declared = new Set(
    plans.flatMap((p) => (p?.units ?? []).filter((u) => u.migrates?.length).map((u) => u.name)),
  );
  // Plans stored before units declared their migrations: every service's is `<service>-db-sync`.
  const crossing = units.filter((u) => declared.has(u) || u.endsWith('-db-sync'));
  if (crossing.length === 0) return [];
  const then = schemasAt(all, o.revision, crossing);
  const restores = restoresFor(then, await schemaVersions(engine, Object.keys(then)));
  if (restores.length === 0)
    o.report({
      type: 'step',
      message: `${crossing.join(', ')} changed since revision ${o.revision}, but no schema moved (${Object.keys(then).join(', ')}): the data reads back as it is`,
    });
  return restores;
}

function refuseMissingImages(target: RevisionRecord, ids: ReadonlySet<string>): void {
  const missing = Object.entries(target.images)
    .filter(([, image]) => image.id && !ids.has(image.id))
    .map(([name, image]) => `${name} (${image.ref}, ${image.id?.replace(/^sha256:/, '').slice(0, 12)})`);
  if (missing.length > 0)
    throw refuse(
      `revision ${target.revision} ran image${missing.length > 1 ? 's' : ''} that this host no longer has: ${missing.join(', ')}`,
      'An image is kept by its ID; one removed by hand (podman rmi) cannot be brought back exactly.',
    );
}

/**
 * Puts `restores` back: first a snapshot of what runs now (the rollback's own, as any migration
 * takes: it can be returned from), then each snapshot in place of its databases, recording what
 * that undid as it happened.
 */
async function putBack(
  engine: Engine,
  pending: RevisionInProgress,
  restores: readonly Restore[],
  report: Reporter,
): Promise<RestoreDone[]> {
  if (restores.length === 0) return [];
  const snapshot = await takeSnapshot(
    engine,
    pending.revision,
    restores.flatMap((r) => Object.entries(r.byUnit).map(([unit, databases]) => ({ unit, databases }))),
    report,
    // Not yet: the oldest kept snapshot may be the one to put back.
    { prune: false },
  );
  if (snapshot.skipped !== undefined)
    throw new PodstackError(
      `no snapshot of what runs now could be taken (${snapshot.skipped}), so none was put back`,
    );
  await pending.snapshotted(snapshot);
  const done: RestoreDone[] = [];
  for (const r of restores) {
    const t = performance.now();
    const { losses } = await restoreSnapshot(engine, r.from, r.databases);
    const restored = { from: r.from, databases: [...r.databases], lost: losses };
    await pending.restored(restored);
    done.push(restored);
    report({
      type: 'step',
      message: `put back ${r.databases.join(', ')} from snapshot ${r.from} in ${((performance.now() - t) / 1000).toFixed(1)} s, undoing ${lossesInWords(r.databases, losses)}`,
    });
  }
  await pruneSnapshots(engine, report);
  return done;
}

/**
 * The cloud file becomes the target's, so that the next `up` keeps the rollback; edits in it that
 * were never applied are kept beside it, not lost. Returns where, if there were any.
 */
async function followRevision(
  file: string,
  current: RevisionRecord,
  target: RevisionRecord,
): Promise<string | undefined> {
  const text = (await readInputFile(file))?.text ?? '';
  let unappliedFile: string | undefined;
  if (text !== current.cloudFile && text !== target.cloudFile) {
    unappliedFile = `${file}.unapplied`;
    await writeFileAtomic(unappliedFile, text, 0o644);
  }
  await writeFileAtomic(file, target.cloudFile, 0o644);
  return unappliedFile;
}

async function retag(
  podman: Podman,
  target: RevisionRecord,
  byRef: ReadonlyMap<string, string>,
  report: Reporter,
): Promise<void> {
  for (const [name, image] of Object.entries(target.images)) {
    if (!image.id || byRef.get(image.ref) === image.id) continue;
    await podman.ok(['tag', image.id, image.ref]);
    report({
      type: 'step',
      message: `image ${name}: ${image.ref} is the image revision ${target.revision} ran again`,
    });
  }
}

/** Revision `n` and the deployed one, refusing a target that cannot be returned to. */
export function targetOf(
  all: readonly StoredRevision[],
  n: number,
  where: string,
): { target: StoredRevision; current: StoredRevision } {
  const target = all.find((r) => r.revision === n);
  if (!target) throw refuse(`there is no revision ${n} (in ${where})`, HISTORY);
  if (target.legacy)
    throw refuse(
      `revision ${n} was recorded by an earlier podstack, without its plan: it cannot be returned to`,
      HISTORY,
    );
  if (target.status !== 'deployed')
    throw refuse(
      `revision ${n} never deployed (it ${target.status === 'failed' ? 'failed' : 'is pending'})`,
      HISTORY,
    );
  // A deployed target means there is a deployed revision: the last one is what runs.
  const current = all.filter((r) => r.status === 'deployed').at(-1) ?? target;
  return { target, current };
}

/** Refuses a return across a change whose data cannot simply be used by the old code again. */
export function refuseDataChanges(
  target: RevisionRecord,
  current: RevisionRecord,
  secrets: Readonly<Record<string, string>>,
): void {
  const stores = DATA_IMAGES.filter(
    (i) => target.images[i] && target.images[i]?.ref !== current.images[i]?.ref,
  );
  if (stores.length > 0)
    throw refuse(
      `returning to revision ${target.revision} changes the image of ${stores.join(', ')}, whose data may not read back`,
      ROLL_FORWARD,
    );
  // The entries the target had, as they are now: one added since (a newer podstack's new
  // service) is not in its plan. A record without names compares the whole file.
  const names = target.secretNames ?? Object.keys(secrets);
  const then = names.every((n) => n in secrets)
    ? secretsHash(Object.fromEntries(names.map((n) => [n, secrets[n]!])))
    : 'an entry is gone';
  if (target.secretsSha256 !== then)
    throw refuse(
      `secrets.yaml changed since revision ${target.revision}: its plan holds the old values, which the databases no longer take`,
      ROLL_FORWARD,
    );
}

/** Where a database's schema stood at a revision, and the snapshot that says so. */
export interface SchemaThen {
  readonly version: string;
  /** The first revision after it that dumped the database, before migrating it. */
  readonly snapshot: number;
  readonly unit: string;
}

/**
 * Where the schemas that `crossing` migrations own stood at revision `n`: each database's
 * version before the first snapshot taken after `n` (nothing moves a schema between snapshots:
 * every migration that runs again takes one). Refuses when that is unknown: no snapshot since
 * (revisions made before podstack kept them), or a migration that ran without one.
 */
export function schemasAt(
  all: readonly RevisionRecord[],
  n: number,
  crossing: readonly string[],
): Record<string, SchemaThen> {
  const later = all.filter((r) => r.revision > n);
  const blind = later.find((r) => r.snapshot?.skipped !== undefined);
  if (blind)
    throw refuse(
      `returning to revision ${n} crosses a database migration (${crossing.join(', ')} changed since), and revision ${blind.revision} migrated with no snapshot (${blind.snapshot?.skipped}): where the schema stood is unknown`,
      ROLL_FORWARD,
    );
  const at: Record<string, SchemaThen> = {};
  for (const unit of crossing) {
    const first = later.find((r) => r.snapshot?.databases.some((d) => d.unit === unit));
    if (!first)
      throw refuse(
        `returning to revision ${n} crosses a database migration (${unit} changed since), and no snapshot since says where its schema stood`,
        ROLL_FORWARD,
      );
    for (const d of first.snapshot?.databases ?? [])
      if (d.unit === unit) at[d.name] = { version: d.before, snapshot: first.revision, unit };
  }
  return at;
}

/** Snapshot `from`'s databases a rollback puts back, for the migrations (units) that moved them. */
export interface Restore {
  readonly from: number;
  readonly units: readonly string[];
  readonly databases: readonly string[];
  /** Each unit's databases among them. */
  readonly byUnit: Readonly<Record<string, readonly string[]>>;
  /** The schemas' moves back: `keystone b0d57ac0ffee -> 29e87d24a316`. */
  readonly moves: readonly string[];
}

/**
 * The snapshots to put back: every database of a migration one of whose schemas stands elsewhere
 * now than at the target (a migration's databases go back together, as they were dumped: Nova's
 * three hold rows that refer to each other), grouped by the snapshot that holds them.
 */
export function restoresFor(
  then: Readonly<Record<string, SchemaThen>>,
  now: Readonly<Record<string, string>>,
): Restore[] {
  const movedUnits = new Set(
    Object.entries(then)
      .filter(([db, t]) => now[db] !== t.version)
      .map(([, t]) => t.unit),
  );
  const bySnapshot = new Map<number, [string, SchemaThen][]>();
  for (const [db, t] of Object.entries(then))
    if (movedUnits.has(t.unit)) bySnapshot.set(t.snapshot, [...(bySnapshot.get(t.snapshot) ?? []), [db, t]]);
  return [...bySnapshot].map(([from, dbs]) => ({
    from,
    units: [...new Set(dbs.map(([, t]) => t.unit))],
    databases: dbs.map(([db]) => db),
    moves: dbs
      .filter(([db, t]) => now[db] !== t.version)
      .map(([db, t]) => `${db} ${now[db] ?? 'unknown'} -> ${t.version}`),
    byUnit: Object.fromEntries(
      [...new Set(dbs.map(([, t]) => t.unit))].map((u) => [
        u,
        dbs.filter(([, t]) => t.unit === u).map(([db]) => db),
      ]),
    ),
  }));
}

/** A restore in words: what moves back, from where, and what it undoes. */
export function restoreInWords(r: Restore, lost: readonly Loss[]): string {
  return `${r.moves.join(', ')}: ${r.databases.join(', ')} put back from the snapshot revision ${r.from} took before migrating, undoing ${lossesInWords(r.databases, lost)}`;
}
