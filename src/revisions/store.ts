// Where revisions are kept. The engine decides: Podman in the cloud's state folder (here), a
// Kubernetes cluster in Secrets of its namespace (engines/kubernetes/revisions.ts), so that every
// operator of a cluster sees one history.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeFileAtomic } from '../_fs.js';
import { PodstackError } from '../errors.js';
import type { Plan } from '../model/unit.js';
import { fromLegacy, parseRecord, type RevisionRecord } from './record.js';

export type StoredRevision = RevisionRecord & { readonly legacy?: true };

export interface RevisionStore {
  /** Where the revisions are, for messages. */
  readonly where: string;
  /** Every revision, oldest first. */
  list(): Promise<StoredRevision[]>;
  /** Writes a revision's record, and its rendered plan when given (it holds secret values). */
  write(record: RevisionRecord, plan?: Plan): Promise<void>;
  /** The plan a revision applied, as it was rendered then. */
  plan(revision: number): Promise<Plan | undefined>;
  remove(revision: number): Promise<void>;
  /** Every revision: `down --purge`. */
  removeAll(): Promise<void>;
}

export const pad = (n: number): string => String(n).padStart(6, '0');

/** The rendered plan as stored: gzip'd JSON (15-30 KB for the default cloud). */
export const packPlan = (plan: Plan): Buffer => gzipSync(JSON.stringify(plan));
export const unpackPlan = (bytes: Uint8Array): Plan => JSON.parse(gunzipSync(bytes).toString('utf8')) as Plan;

/**
 * A stored record, parsed; a damaged one is refused by name (exit code 2) rather than skipped:
 * history with a hole in it would misstate what changed.
 */
export function recordFrom(
  text: string,
  where: string,
  parse: (value: unknown) => StoredRevision | undefined = parseRecord,
): StoredRevision {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const record = parse(value);
  if (!record)
    throw new PodstackError(`${where} is not a podstack revision record`, {
      exitCode: 2,
      hint: 'It was changed or cut short by something other than podstack: move it out of the way to go on without it.',
    });
  return record;
}

/**
 * On disk, one folder per revision with its record and its rendered plan (mode 0600 in a 0700
 * folder). Format-1 records (`NNNNNN.json`, written before revisions kept their cloud file) are
 * read too.
 */
export class FileRevisionStore implements RevisionStore {
  constructor(readonly dir: string) {}

  get where(): string {
    return this.dir;
  }

  async list(): Promise<StoredRevision[]> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const records: StoredRevision[] = [];
    for (const name of names) {
      if (/^\d{6}$/.test(name)) {
        const file = join(this.dir, name, 'record.json');
        records.push(recordFrom(await readFile(file, 'utf8'), file));
      } else if (/^\d{6}\.json$/.test(name)) {
        const file = join(this.dir, name);
        records.push(recordFrom(await readFile(file, 'utf8'), file, fromLegacy));
      }
    }
    return records.sort((a, b) => a.revision - b.revision);
  }

  async write(record: RevisionRecord, plan?: Plan): Promise<void> {
    const dir = join(this.dir, pad(record.revision));
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (plan) await writeFileAtomic(join(dir, 'plan.json.gz'), packPlan(plan), 0o600);
    await writeFileAtomic(join(dir, 'record.json'), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  async plan(revision: number): Promise<Plan | undefined> {
    const bytes = await readFile(join(this.dir, pad(revision), 'plan.json.gz')).catch(() => undefined);
    return bytes ? unpackPlan(bytes) : undefined;
  }

  async remove(revision: number): Promise<void> {
    await rm(join(this.dir, pad(revision)), { recursive: true, force: true });
  }

  async removeAll(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The revisions of a cloud whose state folder is `stateDir`, on disk. */
export function fileRevisions(stateDir: string): FileRevisionStore {
  return new FileRevisionStore(join(stateDir, 'revisions'));
}
