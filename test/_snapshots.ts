import assert from 'node:assert/strict';
import type { HistoryEntry } from '../src/lifecycle/revisions.js';
import { formatBytes } from '../src/lifecycle/snapshots.js';

/**
 * The snapshots the roll test's Keystone image change took, the same on both engines: the first
 * install took none; each revision that moved Keystone's image dumped its database before
 * keystone-db-sync ran again, and recorded where the schema stood before and after (the same
 * Keystone package, so it did not move); and each dump, in MariaDB's snapshots volume, is
 * Keystone's database as SQL: its tables and the admin project's row. Returns what it saw.
 */
export async function imageRollSnapshots(
  entries: readonly HistoryEntry[],
  inMariadb: (script: string) => Promise<string>,
): Promise<string> {
  assert.equal(entries[0]?.snapshot, undefined, 'the first install took a snapshot');
  const rolls = entries.filter((e) => e.changes.some((c) => /^image keystone /.test(c)));
  assert.ok(rolls.length > 0, `no revision moved keystone's image: ${JSON.stringify(entries)}`);
  const seen: string[] = [];
  for (const e of rolls) {
    const s = e.snapshot;
    assert.ok(s && s.skipped === undefined, `revision ${e.revision} took no snapshot: ${JSON.stringify(s)}`);
    assert.deepEqual(
      s.databases.map((d) => [d.name, d.unit]),
      [['keystone', 'keystone-db-sync']],
    );
    const [d] = s.databases;
    assert.ok(d && d.bytes > 0 && d.before !== 'none', JSON.stringify(d));
    assert.equal(d.after, d.before, `revision ${e.revision}: the same Keystone moved its schema`);
    if (!s.kept) continue;
    const sql = await inMariadb(`gunzip -c ${s.folder}/keystone.sql.gz`);
    assert.match(sql, /^CREATE TABLE `project` \(/m, `revision ${e.revision}'s dump has no project table`);
    // MariaDB 10.11 writes an extended insert's rows a line each.
    assert.match(
      sql,
      /^INSERT INTO `project` VALUES[^;]*'admin'/m,
      `revision ${e.revision}'s dump has no admin project`,
    );
    seen.push(`revision ${e.revision}: keystone ${formatBytes(d.bytes)}, schema ${d.before}`);
  }
  return seen.join('; ');
}
