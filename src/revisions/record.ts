// A revision: what one `up` applied, kept so that history can say what changed and rollback can
// return to it. It holds the cloud file as written, image references with the IDs they resolved
// to (a tag is a hash of build inputs, not of content), unit hashes and the outcome; the rendered
// plan is stored beside it (see store.ts). Never a secret value: secrets.yaml is kept as a hash.
import { parse } from 'yaml';
import { z } from 'zod';

export const REVISION_STATUSES = ['pending', 'deployed', 'failed'] as const;
export type RevisionStatus = (typeof REVISION_STATUSES)[number];

const snapshotSchema = z.object({
  /** Where in MariaDB's snapshots volume (empty: none was taken, see `skipped`). */
  folder: z.string(),
  databases: z.array(
    z.object({
      name: z.string(),
      /** The unit whose migration it was taken before. */
      unit: z.string(),
      /** Size of the compressed dump. */
      bytes: z.number().int().nonnegative(),
      /** Where the schema's migrations stood before (alembic heads, or "none")... */
      before: z.string(),
      /** ...and after the revision's apply, once it succeeded. */
      after: z.string().optional(),
    }),
  ),
  /** Why migrations ran with no snapshot (MariaDB down, or without its snapshots volume). */
  skipped: z.string().optional(),
});

/** The databases a revision dumped before its schema migrations ran. */
export type Snapshot = z.infer<typeof snapshotSchema>;

const recordSchema = z.object({
  format: z.literal(2),
  revision: z.number().int().positive(),
  status: z.enum(REVISION_STATUSES),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  podstack: z.string(),
  engine: z.enum(['podman', 'kubernetes']),
  cloud: z.string(),
  /** The cloud file's text, as `up` read it. */
  cloudFile: z.string(),
  /** sha256 of secrets.yaml's values (sorted name=value lines): a change shows, no value does. */
  secretsSha256: z.string(),
  /**
   * The names secretsSha256 covers. A newer podstack adds entries (a new service's), which the
   * revisions before it never used: a rollback compares the entries they had, not the whole file.
   */
  secretNames: z.array(z.string()).optional(),
  /** Image name -> the reference the plan uses and, once built, the image ID it resolved to. */
  images: z.record(z.string(), z.object({ ref: z.string(), id: z.string().optional() })),
  /** Unit name -> hash of its objects. */
  units: z.record(z.string(), z.string()),
  /** What changed against the last deployed revision, in words. */
  changes: z.array(z.string()),
  /** Units the apply created or replaced, and removed. */
  changed: z.array(z.string()),
  removed: z.array(z.string()),
  /** Why a failed revision failed (the error's first line). */
  error: z.string().optional(),
  /** A rollback's revision: the one it returned to. */
  rolledBackTo: z.number().int().positive().optional(),
  /** Taken before migrations that ran again (none on a first install, or when none changed). */
  snapshot: snapshotSchema.optional(),
  /**
   * A rollback across a schema that moved: the databases it put back from the snapshots taken
   * before they moved, and what that undid (rows by table; never a value).
   */
  restored: z
    .array(
      z.object({
        /** The revision whose snapshot was put back. */
        from: z.number().int().positive(),
        databases: z.array(z.string()),
        lost: z.array(
          z.object({
            database: z.string(),
            table: z.string(),
            written: z.number().int().nonnegative(),
            changed: z.number().int().nonnegative(),
            deleted: z.number().int().nonnegative(),
          }),
        ),
      }),
    )
    .optional(),
});

export type RevisionRecord = z.infer<typeof recordSchema>;

/** Parses a stored record; undefined when it is not one (see store.ts for the error). */
export function parseRecord(value: unknown): RevisionRecord | undefined {
  const r = recordSchema.safeParse(value);
  return r.success ? r.data : undefined;
}

/**
 * The files `up` wrote before revisions kept their cloud file (format 1): unit hashes and
 * image references, written only after a successful apply.
 */
const legacySchema = z.object({
  revision: z.number().int().positive(),
  appliedAt: z.string(),
  cloud: z.string(),
  images: z.record(z.string(), z.string()),
  units: z.record(z.string(), z.string()),
  changed: z.array(z.string()),
  removed: z.array(z.string()),
});

/**
 * A format-1 record read as a revision: deployed, with what it can say. It has no cloud file, so
 * it cannot be returned to; `cloudFile` is empty and `legacy` marks it.
 */
export function fromLegacy(value: unknown): (RevisionRecord & { legacy: true }) | undefined {
  const r = legacySchema.safeParse(value);
  if (!r.success) return undefined;
  const v = r.data;
  return {
    format: 2,
    legacy: true,
    revision: v.revision,
    status: 'deployed',
    startedAt: v.appliedAt,
    finishedAt: v.appliedAt,
    podstack: 'unknown',
    engine: 'podman',
    cloud: v.cloud,
    cloudFile: '',
    secretsSha256: '',
    images: Object.fromEntries(Object.entries(v.images).map(([name, ref]) => [name, { ref }])),
    units: v.units,
    changes: v.changed.length > 0 ? [unitsInWords(v.changed)] : [],
    changed: v.changed,
    removed: v.removed,
  };
}

/** Where a cloud file changed: `a.b.c` paths of the leaves that differ, added or removed. */
export function changedPaths(before: unknown, after: unknown, path: readonly string[] = []): string[][] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => changedPaths(before[k], after[k], [...path, k]));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length)
    return before.flatMap((b, i) => changedPaths(b, after[i], [...path, `[${i}]`]));
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  // A whole subtree that came or went: its leaves, so a new config option reads as one.
  if (before === undefined && isObject(after)) return changedPaths({}, after, path);
  if (after === undefined && isObject(before)) return changedPaths(before, {}, path);
  return [[...path]];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A cloud-file path as an operator names it: a service's config option as its file, section and
 * key (`keystone.conf DEFAULT.debug`), anything else as its dotted path.
 */
export function pathInWords(path: readonly string[]): string {
  const dotted = (p: readonly string[]) => p.join('.').replace(/\.\[/g, '[');
  if (path[0] === 'services' && path[2] === 'config' && path.length >= 4) {
    const rest = path.slice(4);
    return rest.length > 0 ? `${path[3]} ${dotted(rest)}` : `${path[3]}`;
  }
  return dotted(path);
}

/** What a cloud file's edit changed, in words; never a value (a config option may be a password). */
export function cloudFileChanges(before: string, after: string): string[] {
  const b = (parse(before) ?? {}) as unknown;
  const a = (parse(after) ?? {}) as unknown;
  return changedPaths(b, a).map((p) => {
    const at = (v: unknown) => p.reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), v);
    const suffix = at(a) === undefined ? ' (removed)' : at(b) === undefined ? ' (added)' : '';
    return `${pathInWords(p)}${suffix}`;
  });
}

const shortTag = (ref: string) => (ref.split(':').pop() ?? ref).slice(0, 7);

/**
 * What `next` changes against `previous` (the last deployed revision), in words: the cloud
 * file's options, images, secrets and podstack itself; a revision whose inputs are the same but
 * whose apply replaced units repaired them.
 */
export function describeChanges(previous: RevisionRecord | undefined, next: RevisionRecord): string[] {
  if (!previous) return ['first install'];
  const words: string[] = [];
  if (previous.cloudFile !== '' && previous.cloudFile !== next.cloudFile)
    words.push(...cloudFileChanges(previous.cloudFile, next.cloudFile));
  for (const [name, image] of Object.entries(next.images)) {
    const before = previous.images[name]?.ref;
    if (before && before !== image.ref)
      words.push(`image ${name} ${shortTag(before)} -> ${shortTag(image.ref)}`);
  }
  if (previous.secretsSha256 !== '' && previous.secretsSha256 !== next.secretsSha256) {
    // Entries added (a newer podstack's new service) by name, which is no secret; values never.
    const had = previous.secretNames;
    const added = had ? (next.secretNames ?? []).filter((n) => !had.includes(n)) : [];
    words.push(added.length > 0 ? `secrets.yaml (added ${added.join(', ')})` : 'secrets.yaml');
  }
  if (previous.podstack !== 'unknown' && previous.podstack !== next.podstack)
    words.push(`podstack ${previous.podstack} -> ${next.podstack}`);
  const rendered = Object.keys(next.units).filter((u) => previous.units[u] !== next.units[u]);
  if (words.length === 0 && rendered.length > 0) words.push(unitsInWords(rendered));
  return words;
}

/** A few units by name; many, by their number (a first install names every unit). */
export function unitsInWords(units: readonly string[]): string {
  return units.length <= 3 ? `units ${units.join(', ')}` : `${units.length} units`;
}

/** The words for a revision whose apply replaced units its inputs did not change: repairs. */
export function repairsInWords(changes: readonly string[], changed: readonly string[]): string[] {
  return changes.length === 0 && changed.length > 0 ? [`repaired ${changed.join(', ')}`] : [...changes];
}
