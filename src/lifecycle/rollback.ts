// `podstack rollback N`: the cloud as revision N left it, from N's own record and rendered plan
// (not re-rendered from its cloud file: podstack's catalog may have changed since), with the
// images N ran, by ID. It is itself a new revision ("rolled back to N"), and the cloud file
// becomes N's, so that the next `up` keeps what the rollback did.
import { writeFileAtomic } from '../_fs.js';
import type { ApplyResult } from '../engines/types.js';
import { PodstackError } from '../errors.js';
import type { Reporter } from '../events.js';
import { pushImages } from '../images/push.js';
import { ROOTFS } from '../images/recipes.js';
import { podmanForHost } from '../podman/host.js';
import type { Podman } from '../podman/runner.js';
import { describeChanges, type RevisionRecord } from '../revisions/record.js';
import type { StoredRevision } from '../revisions/store.js';
import { readInputFile } from '../spec/files.js';
import { localImages } from './build.js';
import { type EngineChoice, engineFor } from './engine.js';
import { openProject, type ProjectOptions } from './project.js';
import { RevisionInProgress, secretsHash } from './revisions.js';
import { schemaVersions } from './snapshots.js';

export interface RollbackOptions extends Omit<ProjectOptions, 'engine'> {
  readonly report: Reporter;
  readonly engine?: EngineChoice;
  readonly revision: number;
  /** Say what would change, change nothing. */
  readonly dryRun?: boolean;
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
}

/**
 * Units whose data a new image may have moved on for good: a schema migration (every service's
 * `<service>-db-sync` Job) or a data store's own format. Going back across a migration is safe
 * when the schema did not move (the snapshots taken before it say where it stood, MariaDB says
 * where it stands); across a move it needs the database restored, which podstack does not do yet:
 * it refuses.
 */
const DATA_IMAGES = ['mariadb', 'rabbitmq', 'ovn'];
const migrates = (unit: string) => unit.endsWith('-db-sync');

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

  refuseDataChanges(target, current, secretsHash(project.secrets));
  const crossing = units.filter(migrates);
  if (crossing.length > 0) {
    const then = schemasAt(all, o.revision, crossing);
    const now = await schemaVersions(engine, Object.keys(then));
    refuseSchemaMoves(o.revision, then, now);
    o.report({
      type: 'step',
      message: `${crossing.join(', ')} changed since revision ${o.revision}, but no schema moved (${Object.keys(then).join(', ')}): the data reads back as it is`,
    });
  }
  const podman = chosen.podman ?? (await podmanForHost(project.stateDir)).podman;
  const local = await localImages(podman);
  const missing = Object.entries(target.images)
    .filter(([, image]) => image.id && !local.ids.has(image.id))
    .map(([name, image]) => `${name} (${image.ref}, ${image.id?.replace(/^sha256:/, '').slice(0, 12)})`);
  if (missing.length > 0)
    throw refuse(
      `revision ${o.revision} ran image${missing.length > 1 ? 's' : ''} that this host no longer has: ${missing.join(', ')}`,
      'An image is kept by its ID; one removed by hand (podman rmi) cannot be brought back exactly.',
    );
  if (o.dryRun) return { ...base, seconds: (Date.now() - started) / 1000 };

  if (preflight) await preflight(o.report);
  // Each reference names the image N ran: a later build may have given the tag to other content.
  await retag(podman, target, local.byRef, o.report);
  if (project.engine === 'kubernetes') {
    const refs = Object.fromEntries(
      Object.entries(target.images)
        .filter(([name]) => name !== ROOTFS)
        .map(([name, i]) => [name, i.ref]),
    );
    await pushImages({ podman, refs, tlsVerify: project.spec.images.tlsVerify, report: o.report });
  }
  const pending = await RevisionInProgress.rollback(store, target, plan);
  let apply: ApplyResult;
  try {
    apply = await engine.apply(plan, {
      report: o.report,
      ...(o.allowGuestRestart ? { allowGuestRestart: true } : {}),
    });
  } catch (err) {
    await pending.failed(err);
    throw err;
  }
  const revision = await pending.deployed(apply);
  // The cloud file follows what runs; edits never applied are kept beside it, not lost.
  const text = (await readInputFile(project.file))?.text ?? '';
  let unappliedFile: string | undefined;
  if (text !== current.cloudFile && text !== target.cloudFile) {
    unappliedFile = `${project.file}.unapplied`;
    await writeFileAtomic(unappliedFile, text, 0o644);
  }
  await writeFileAtomic(project.file, target.cloudFile, 0o644);
  return {
    ...base,
    revision,
    apply,
    seconds: (Date.now() - started) / 1000,
    ...(unappliedFile ? { unappliedFile } : {}),
  };
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
export function refuseDataChanges(target: RevisionRecord, current: RevisionRecord, secretsNow: string): void {
  const stores = DATA_IMAGES.filter(
    (i) => target.images[i] && target.images[i]?.ref !== current.images[i]?.ref,
  );
  if (stores.length > 0)
    throw refuse(
      `returning to revision ${target.revision} changes the image of ${stores.join(', ')}, whose data may not read back`,
      ROLL_FORWARD,
    );
  if (target.secretsSha256 !== secretsNow)
    throw refuse(
      `secrets.yaml changed since revision ${target.revision}: its plan holds the old values, which the databases no longer take`,
      ROLL_FORWARD,
    );
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
): Record<string, string> {
  const later = all.filter((r) => r.revision > n);
  const blind = later.find((r) => r.snapshot?.skipped !== undefined);
  if (blind)
    throw refuse(
      `returning to revision ${n} crosses a database migration (${crossing.join(', ')} changed since), and revision ${blind.revision} migrated with no snapshot (${blind.snapshot?.skipped}): where the schema stood is unknown`,
      ROLL_FORWARD,
    );
  const at: Record<string, string> = {};
  for (const unit of crossing) {
    const first = later.find((r) => r.snapshot?.databases.some((d) => d.unit === unit));
    if (!first)
      throw refuse(
        `returning to revision ${n} crosses a database migration (${unit} changed since), and no snapshot since says where its schema stood`,
        ROLL_FORWARD,
      );
    for (const d of first.snapshot?.databases ?? []) if (d.unit === unit) at[d.name] = d.before;
  }
  return at;
}

/** Refuses when a schema stands elsewhere now than at revision `n`: the old code may not read it. */
export function refuseSchemaMoves(
  n: number,
  then: Readonly<Record<string, string>>,
  now: Readonly<Record<string, string>>,
): void {
  const moved = Object.keys(then).filter((db) => now[db] !== then[db]);
  if (moved.length > 0)
    throw refuse(
      `returning to revision ${n} crosses a schema migration: ${moved.map((db) => `${db} moved from ${then[db]} to ${now[db] ?? 'unknown'}`).join(', ')}; restoring the snapshot taken before it is not built yet`,
      ROLL_FORWARD,
    );
}
