// Database snapshots: before `up` runs a schema migration again on a cloud that has its data,
// it dumps the databases that migration may move, with where their schemas stood, into
// MariaDB's snapshots volume. The same on both engines: the dump runs in the MariaDB container
// (Engine.exec), so the data never leaves the cloud and no host path is involved.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../_paths.js';
import { MARIADB_CONTAINER, MARIADB_UNIT, SNAPSHOT_DIR } from '../catalog/mariadb.js';
import type { Engine } from '../engines/types.js';
import { NotRunningError, PodstackError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { Plan } from '../model/unit.js';
import type { RevisionRecord, Snapshot } from '../revisions/record.js';

/** Revisions whose snapshots are kept: the newest this many that took one. */
export const KEEP_SNAPSHOTS = 10;

/** A migration `up` is about to run again: its unit and the databases it may move. */
export interface Migration {
  readonly unit: string;
  readonly databases: readonly string[];
}

/**
 * The migrations `plan` runs again on a cloud that `deployed` left: units that migrate whose
 * objects changed. A unit the deployed revision did not have is a first install of its service
 * (an empty database): nothing to keep.
 */
export function migrationsAhead(plan: Plan, deployed: RevisionRecord | undefined): Migration[] {
  if (!deployed) return [];
  return plan.units.flatMap((u) => {
    const before = deployed.units[u.name];
    if (!u.migrates?.length || before === undefined || before === u.hash) return [];
    return [{ unit: u.name, databases: [...u.migrates] }];
  });
}

const script = async () => readFile(join(packageRoot(), 'libexec', 'podstack-db-snapshot'), 'utf8');

/** libexec/podstack-db-snapshot with `args`, in the MariaDB container (`bash -c` its text). */
export async function run(engine: Engine, args: readonly string[]) {
  return engine.exec(MARIADB_UNIT, MARIADB_CONTAINER, [
    'bash',
    '-c',
    await script(),
    'podstack-db-snapshot',
    ...args,
  ]);
}

export const lastLines = (text: string) => text.trim().split('\n').slice(-6).join('\n');

/**
 * Dumps the databases of `migrations` as snapshot `revision`, then keeps the newest
 * KEEP_SNAPSHOTS. A MariaDB that is not running, or that runs without its snapshots volume (it
 * was started by a podstack that kept none: this `up` gives it one), leaves the snapshot
 * skipped, and says why; a dump that fails stops `up` before anything migrates.
 */
export async function takeSnapshot(
  engine: Engine,
  revision: number,
  migrations: readonly Migration[],
  report: Reporter,
  { prune = true }: { prune?: boolean } = {},
): Promise<Snapshot> {
  const unitOf = new Map(migrations.flatMap((m) => m.databases.map((d) => [d, m.unit] as const)));
  const databases = [...unitOf.keys()];
  report({
    type: 'step',
    message: `snapshot of ${databases.join(', ')} before ${migrations.map((m) => m.unit).join(', ')} run again`,
  });
  const started = performance.now();
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run(engine, ['take', SNAPSHOT_DIR, String(revision), ...databases]);
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw err;
    return skipped(report, databases, `MariaDB is not running (${err.message})`);
  }
  if (r.exitCode === 3) return skipped(report, databases, lastLines(r.stderr).split('\n').pop() ?? '');
  if (r.exitCode !== 0)
    throw new PodstackError(
      `the snapshot of ${databases.join(', ')} failed (exit ${r.exitCode}), so nothing was migrated:\n${lastLines(r.stderr || r.stdout)}`,
      {
        hint: `Fix what the lines above say (a full ${SNAPSHOT_DIR} volume?) and run up again; the cloud runs as before.`,
      },
    );
  const taken = parseSnapshotLines(r.stdout).map((d) => ({ ...d, unit: unitOf.get(d.name) ?? '' }));
  const missing = databases.filter((d) => !taken.some((t) => t.name === d));
  if (missing.length > 0)
    throw new PodstackError(
      `the snapshot did not say it dumped ${missing.join(', ')}:\n${lastLines(r.stdout)}`,
    );
  if (prune) await pruneSnapshots(engine, report);
  const bytes = taken.reduce((n, d) => n + d.bytes, 0);
  report({
    type: 'step',
    message: `snapshot ${revision}: ${taken.map((d) => d.name).join(', ')}, ${formatBytes(bytes)} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  });
  return { folder: `${SNAPSHOT_DIR}/${revision}`, databases: taken };
}

/** Keeps the newest KEEP_SNAPSHOTS snapshots; a failure only warns (the next one prunes again). */
export async function pruneSnapshots(engine: Engine, report: Reporter): Promise<void> {
  const pruned = await run(engine, ['prune', SNAPSHOT_DIR, String(KEEP_SNAPSHOTS)]);
  if (pruned.exitCode !== 0)
    report({ type: 'warning', message: `old snapshots were not pruned: ${lastLines(pruned.stderr)}` });
}

function skipped(report: Reporter, databases: readonly string[], why: string): Snapshot {
  report({ type: 'warning', message: `no snapshot of ${databases.join(', ')} before they migrate: ${why}` });
  return { folder: '', databases: [], skipped: why };
}

/** Where each database's schema stands now ("none": it has no migration table). */
export async function schemaVersions(
  engine: Engine,
  databases: readonly string[],
): Promise<Record<string, string>> {
  const r = await run(engine, ['versions', ...databases]);
  if (r.exitCode !== 0)
    throw new PodstackError(
      `reading the schema versions of ${databases.join(', ')} failed:\n${lastLines(r.stderr)}`,
    );
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name = '', version = 'none'] = l.split(' ');
        return [name, version];
      }),
  );
}

/** The script's "DATABASE BYTES VERSION" lines. */
export function parseSnapshotLines(out: string): { name: string; bytes: number; before: string }[] {
  return out
    .trim()
    .split('\n')
    .map((l) => /^(\w+) (\d+) (\S+)$/.exec(l.trim()))
    .flatMap((m) => (m ? [{ name: m[1]!, bytes: Number(m[2]), before: m[3]! }] : []));
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** What putting a snapshot back undoes in one table: rows written, changed and deleted since. */
export interface Loss {
  readonly database: string;
  readonly table: string;
  readonly written: number;
  readonly changed: number;
  /** Rows deleted since the snapshot: they come back. */
  readonly deleted: number;
}

/** The script's "lost DATABASE TABLE WRITTEN CHANGED DELETED" lines. */
export function parseLosses(out: string): Loss[] {
  return out
    .trim()
    .split('\n')
    .map((l) => /^lost (\w+) (\w+) (\d+) (\d+) (\d+)$/.exec(l.trim()))
    .flatMap((m) =>
      m
        ? [
            {
              database: m[1]!,
              table: m[2]!,
              written: Number(m[3]),
              changed: Number(m[4]),
              deleted: Number(m[5]),
            },
          ]
        : [],
    );
}

/** Losses in words, by database then table: `keystone: project 1 written, user 2 changed`. */
export function lossesInWords(databases: readonly string[], losses: readonly Loss[]): string {
  return databases
    .map((db) => {
      const tables = losses
        .filter((l) => l.database === db)
        .sort((a, b) => a.table.localeCompare(b.table))
        .flatMap((l) => [
          ...(l.written ? [`${l.table} ${l.written} written`] : []),
          ...(l.changed ? [`${l.table} ${l.changed} changed`] : []),
          ...(l.deleted ? [`${l.table} ${l.deleted} deleted (they come back)`] : []),
        ]);
      return `${db}: ${tables.length > 0 ? tables.join(', ') : 'nothing changed since'}`;
    })
    .join('; ');
}

/**
 * Loads snapshot `revision` of `databases` beside them (scratch databases in MariaDB, dropped
 * after) and says what putting it back would undo. Changes no database the cloud uses.
 */
export async function compareWithSnapshot(
  engine: Engine,
  revision: number,
  databases: readonly string[],
): Promise<Loss[]> {
  return parseLosses(await snapshotCommand(engine, 'compare', revision, databases));
}

/**
 * Puts snapshot `revision` of `databases` in their place, all at once, and returns what that
 * undid, measured as it happened, and where each schema stands after.
 */
export async function restoreSnapshot(
  engine: Engine,
  revision: number,
  databases: readonly string[],
): Promise<{ losses: Loss[]; versions: Record<string, string> }> {
  const out = await snapshotCommand(engine, 'restore', revision, databases);
  const versions = Object.fromEntries(
    out.split('\n').flatMap((l) => {
      const m = /^restored (\w+) (\S+)$/.exec(l.trim());
      return m ? [[m[1]!, m[2]!] as const] : [];
    }),
  );
  const missing = databases.filter((d) => !versions[d]);
  if (missing.length > 0)
    throw new PodstackError(`the restore did not say it restored ${missing.join(', ')}:\n${lastLines(out)}`);
  return { losses: parseLosses(out), versions };
}

async function snapshotCommand(
  engine: Engine,
  command: 'compare' | 'restore',
  revision: number,
  databases: readonly string[],
): Promise<string> {
  const r = await run(engine, [command, SNAPSHOT_DIR, String(revision), ...databases]);
  if (r.exitCode === 4)
    throw new PodstackError(
      lastLines(r.stderr)
        .split('\n')
        .pop()
        ?.replace(/^podstack-db-snapshot: /, '') ?? '',
      {
        exitCode: 2,
        hint: 'Its data cannot come back: roll forward instead (edit cloud.yaml, `podstack up`).',
      },
    );
  if (r.exitCode !== 0)
    throw new PodstackError(
      `${command === 'compare' ? 'reading' : 'restoring'} snapshot ${revision} of ${databases.join(', ')} failed (exit ${r.exitCode}):\n${lastLines(r.stderr || r.stdout)}`,
    );
  return r.stdout;
}
