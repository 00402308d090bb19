// How `up` keeps its revisions, and what `history` shows of them. A revision is written as
// pending before anything is built or applied, so an `up` that fails (or is killed) leaves a
// record; an `up` that changed nothing leaves none.
import { createHash } from 'node:crypto';
import { podstackVersion } from '../_paths.js';
import type { ApplyResult } from '../engines/types.js';
import type { Plan } from '../model/unit.js';
import {
  describeChanges,
  type RevisionRecord,
  type RevisionStatus,
  repairsInWords,
  type Snapshot,
} from '../revisions/record.js';
import type { RevisionStore, StoredRevision } from '../revisions/store.js';
import { readInputFile } from '../spec/files.js';
import type { Project } from './project.js';
import { formatBytes, KEEP_SNAPSHOTS, lossesInWords } from './snapshots.js';

/** sha256 over the secrets' names and values: history can say they changed, never to what. */
export function secretsHash(secrets: Readonly<Record<string, string>>): string {
  const lines = Object.keys(secrets)
    .sort()
    .map((k) => `${k}=${secrets[k]}\n`)
    .join('');
  return createHash('sha256').update(lines).digest('hex');
}

/** A revision `up` is making: written pending at once, then as it ends. */
export class RevisionInProgress {
  private constructor(
    private readonly store: RevisionStore,
    private record: RevisionRecord,
    private readonly previous: StoredRevision | undefined,
  ) {}

  /**
   * Writes the revision `up` is about to make of `project`, pending, into `store`. `because`, when
   * given, says first why this up runs (a restore): what it then replaces is not a repair.
   */
  static async begin(project: Project, store: RevisionStore, because?: string): Promise<RevisionInProgress> {
    const cloudFile = (await readInputFile(project.file))?.text ?? '';
    return RevisionInProgress.start(store, project.plan, (revision, previous, attempted) => {
      const record: RevisionRecord = {
        format: 2,
        revision,
        status: 'pending',
        startedAt: new Date().toISOString(),
        podstack: podstackVersion(),
        engine: project.engine,
        cloud: project.spec.name,
        cloudFile,
        secretsSha256: secretsHash(project.secrets),
        secretNames: Object.keys(project.secrets).sort(),
        images: Object.fromEntries(Object.entries(project.imageRefs).map(([name, ref]) => [name, { ref }])),
        units: Object.fromEntries(project.plan.units.map((u) => [u.name, u.hash])),
        changes: [],
        changed: [],
        removed: [],
      };
      // Words against the last attempt, failed or not: after a failed `up`, an edit that undoes
      // it reads as what it undid. A retry of the failed change reads as that change.
      let changes = describeChanges(attempted, record);
      if (changes.length === 0 && attempted !== previous) changes = describeChanges(previous, record);
      return { ...record, changes: because ? [because, ...changes] : changes };
    });
  }

  /**
   * Writes the revision a rollback to `target` makes, pending: `target`'s cloud file, images,
   * units and plan, under a new number.
   */
  static async rollback(
    store: RevisionStore,
    target: RevisionRecord,
    plan: Plan,
  ): Promise<RevisionInProgress> {
    return RevisionInProgress.start(store, plan, (revision, previous) => {
      const record: RevisionRecord = {
        ...target,
        revision,
        status: 'pending',
        startedAt: new Date().toISOString(),
        podstack: podstackVersion(),
        changed: [],
        removed: [],
        rolledBackTo: target.revision,
      };
      delete record.finishedAt;
      delete record.error;
      delete record.snapshot;
      delete record.restored;
      return {
        ...record,
        changes: [`rolled back to ${target.revision}`, ...describeChanges(previous, record)],
      };
    });
  }

  private static async start(
    store: RevisionStore,
    plan: Plan,
    make: (
      revision: number,
      previous: StoredRevision | undefined,
      attempted: StoredRevision | undefined,
    ) => RevisionRecord,
  ): Promise<RevisionInProgress> {
    const all = await store.list();
    // An earlier `up` that never finished (killed, or the host went down) did not deploy.
    for (const r of all.filter((r) => r.status === 'pending' && !r.legacy))
      await store.write({ ...r, status: 'failed', error: 'interrupted: the up that made it did not finish' });
    const previous = all.filter((r) => r.status === 'deployed').at(-1);
    const attempted = all.filter((r) => r.status !== 'pending').at(-1);
    const r = new RevisionInProgress(
      store,
      make((all.at(-1)?.revision ?? 0) + 1, previous, attempted),
      previous,
    );
    await store.write(r.record, plan);
    return r;
  }

  get revision(): number {
    return this.record.revision;
  }

  /** The revision that was deployed when this one began: what runs until it applies. */
  get deployedBefore(): RevisionRecord | undefined {
    return this.previous;
  }

  get snapshot(): Snapshot | undefined {
    return this.record.snapshot;
  }

  /** The databases were dumped before their migrations run (or why they were not). */
  async snapshotted(snapshot: Snapshot): Promise<void> {
    this.record = { ...this.record, snapshot };
    await this.store.write(this.record);
  }

  /** A rollback put these databases back from a snapshot; `lost` is what that undid. */
  async restored(restore: NonNullable<RevisionRecord['restored']>[number]): Promise<void> {
    this.record = { ...this.record, restored: [...(this.record.restored ?? []), restore] };
    await this.store.write(this.record);
  }

  /** Where the snapshotted databases' schemas stand after the apply. */
  async migrated(versions: Readonly<Record<string, string>>): Promise<void> {
    const s = this.record.snapshot;
    if (!s) return;
    const databases = s.databases.map((d) => (versions[d.name] ? { ...d, after: versions[d.name] } : d));
    this.record = { ...this.record, snapshot: { ...s, databases } };
    await this.store.write(this.record);
  }

  /** The images are built: the IDs their references resolved to. */
  async built(ids: Readonly<Record<string, string>>): Promise<void> {
    const images = Object.fromEntries(
      Object.entries(this.record.images).map(([name, i]) => [name, ids[name] ? { ...i, id: ids[name] } : i]),
    );
    this.record = { ...this.record, images };
    await this.store.write(this.record);
  }

  /**
   * The apply succeeded. A revision that changed nothing against the deployed one is dropped, and
   * that one's number returned: re-running `up` does not grow the history.
   */
  async deployed(apply: ApplyResult): Promise<number> {
    const nothing = apply.changed.length === 0 && apply.removed.length === 0;
    if (nothing && this.previous && this.record.changes.length === 0) {
      await this.store.remove(this.record.revision);
      return this.previous.revision;
    }
    await this.finish('deployed', {
      changed: [...apply.changed],
      removed: [...apply.removed],
      changes: repairsInWords(this.record.changes, apply.changed),
    });
    return this.record.revision;
  }

  async failed(err: unknown): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    await this.finish('failed', { error: message.split('\n')[0] ?? '' });
  }

  private async finish(status: RevisionStatus, fields: Partial<RevisionRecord>): Promise<void> {
    this.record = { ...this.record, ...fields, status, finishedAt: new Date().toISOString() };
    await this.store.write(this.record);
  }
}

/** One line of `podstack history`. */
export interface HistoryEntry {
  readonly revision: number;
  readonly startedAt: string;
  readonly finishedAt?: string;
  /** deployed: what runs now; superseded: deployed once, replaced since. */
  readonly status: RevisionStatus | 'superseded';
  readonly changes: readonly string[];
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  readonly podstack: string;
  readonly error?: string;
  /** The databases dumped before its migrations ran again; `kept` false once pruned. */
  readonly snapshot?: Snapshot & { readonly bytes: number; readonly kept: boolean };
  /** A rollback's databases put back from snapshots, and what that undid. */
  readonly restored?: RevisionRecord['restored'];
}

export async function history(store: RevisionStore): Promise<HistoryEntry[]> {
  const all = await store.list();
  const current = all.filter((r) => r.status === 'deployed').at(-1)?.revision;
  const kept = new Set(
    all
      .filter((r) => (r.snapshot?.databases.length ?? 0) > 0)
      .map((r) => r.revision)
      .slice(-KEEP_SNAPSHOTS),
  );
  return all.map((r) => ({
    revision: r.revision,
    startedAt: r.startedAt,
    ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
    status: r.status === 'deployed' && r.revision !== current ? 'superseded' : r.status,
    changes: r.changes,
    changed: r.changed,
    removed: r.removed,
    podstack: r.podstack,
    ...(r.error ? { error: r.error } : {}),
    ...(r.restored ? { restored: r.restored } : {}),
    ...(r.snapshot
      ? {
          snapshot: {
            ...r.snapshot,
            bytes: r.snapshot.databases.reduce((n, d) => n + d.bytes, 0),
            kept: kept.has(r.revision),
          },
        }
      : {}),
  }));
}

/** A revision's snapshot in words: what it holds, its size, and whether the schema moved. */
export function snapshotInWords(s: NonNullable<HistoryEntry['snapshot']>): string {
  if (s.skipped !== undefined) return `no snapshot: ${s.skipped}`;
  const moved = s.databases.filter((d) => d.after !== undefined && d.after !== d.before);
  const schema = s.databases.some((d) => d.after === undefined)
    ? ''
    : moved.length === 0
      ? '; schema unchanged'
      : `; schema moved: ${moved.map((d) => `${d.name} ${d.before} -> ${d.after}`).join(', ')}`;
  const names = s.databases.map((d) => d.name).join(' ');
  return s.kept
    ? `snapshot ${names} (${formatBytes(s.bytes)}${schema})`
    : `snapshot ${names} (pruned${schema})`;
}

/** `podstack history` as a table: one line per revision, its changes in words. */
export function historyToText(entries: readonly HistoryEntry[]): string {
  if (entries.length === 0) return 'no revisions yet: `podstack up` makes the first';
  const when = (iso: string) => iso.replace('T', ' ').replace(/(\.\d+)?Z$/, '');
  const rows = entries.map((e) => {
    const changes =
      e.changes.length > 4 ? [...e.changes.slice(0, 4), `and ${e.changes.length - 4} more`] : e.changes;
    const shown = [
      ...changes,
      ...(e.snapshot ? [snapshotInWords(e.snapshot)] : []),
      ...(e.restored ?? []).map(
        (r) =>
          `restored ${r.databases.join(' ')} from snapshot ${r.from}, undoing ${lossesInWords(r.databases, r.lost)}`,
      ),
      ...(e.status === 'failed' ? [`failed: ${e.error ?? ''}`] : []),
    ];
    return [String(e.revision), when(e.startedAt), e.status, shown.join(', ') || '-'];
  });
  const header = ['REV', 'STARTED (UTC)', 'STATUS', 'CHANGE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const kept = entries.flatMap((e) => (e.snapshot?.kept ? [e.snapshot.bytes] : []));
  const footer =
    kept.length === 0
      ? []
      : [
          '',
          `snapshots: ${kept.length} kept, ${formatBytes(kept.reduce((a, b) => a + b, 0))} in MariaDB's snapshots volume (the newest ${KEEP_SNAPSHOTS} are kept)`,
        ];
  return [line(header), ...rows.map(line), ...footer].join('\n');
}
