// Revisions on disk, in the cloud's state folder: one folder per revision with its record and its
// rendered plan (gzip; it holds secret values, as the running cloud's objects do: mode 0600).
// Format-1 records (`NNNNNN.json`, written before revisions kept their cloud file) are read too.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeFileAtomic } from '../_fs.js';
import { PodstackError } from '../errors.js';
import type { Plan } from '../model/unit.js';
import { fromLegacy, parseRecord, type RevisionRecord } from './record.js';

export type StoredRevision = RevisionRecord & { readonly legacy?: true };

const pad = (n: number) => String(n).padStart(6, '0');

export class RevisionStore {
  constructor(readonly dir: string) {}

  /** Every revision, oldest first. */
  async list(): Promise<StoredRevision[]> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const records: StoredRevision[] = [];
    for (const name of names) {
      if (/^\d{6}$/.test(name))
        records.push(await this.readFile(join(this.dir, name, 'record.json'), parseRecord));
      else if (/^\d{6}\.json$/.test(name))
        records.push(await this.readFile(join(this.dir, name), fromLegacy));
    }
    return records.sort((a, b) => a.revision - b.revision);
  }

  async read(revision: number): Promise<StoredRevision | undefined> {
    return (await this.list()).find((r) => r.revision === revision);
  }

  /** The number the next revision gets. */
  async next(): Promise<number> {
    const all = await this.list();
    return (all.at(-1)?.revision ?? 0) + 1;
  }

  async write(record: RevisionRecord, plan?: Plan): Promise<void> {
    const dir = join(this.dir, pad(record.revision));
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (plan) await writeFileAtomic(join(dir, 'plan.json.gz'), gzipSync(JSON.stringify(plan)), 0o600);
    await writeFileAtomic(join(dir, 'record.json'), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  /** The plan a revision applied, as it was rendered then. */
  async plan(revision: number): Promise<Plan | undefined> {
    const file = join(this.dir, pad(revision), 'plan.json.gz');
    const bytes = await readFile(file).catch(() => undefined);
    return bytes ? (JSON.parse(gunzipSync(bytes).toString('utf8')) as Plan) : undefined;
  }

  async remove(revision: number): Promise<void> {
    await rm(join(this.dir, pad(revision)), { recursive: true, force: true });
  }

  private async readFile(
    file: string,
    parse: (value: unknown) => StoredRevision | undefined,
  ): Promise<StoredRevision> {
    const text = await readFile(file, 'utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    const record = parse(value);
    if (!record)
      throw new PodstackError(`${file} is not a podstack revision record`, {
        exitCode: 2,
        hint: 'It was changed or cut short by something other than podstack: move it out of the revisions folder to go on without it.',
      });
    return record;
  }
}

export function revisionStore(stateDir: string): RevisionStore {
  return new RevisionStore(join(stateDir, 'revisions'));
}
