import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecResult } from '../src/_exec.js';
import { packageRoot } from '../src/_paths.js';
import type { HistoryEntry } from '../src/lifecycle/revisions.js';
import type { RestoreDone } from '../src/lifecycle/rollback.js';
import type { UpResult } from '../src/lifecycle/up.js';

/**
 * A schema that really moves: Keystone's packaged image plus one harmless migration (a new table,
 * and a nullable column on `project` that the packaged code never names), on the expand branch
 * after the packaged head. Keystone runs on it unchanged; its db-sync moves the schema's version.
 */
export const PROBE_REVISION = 'b0d57ac0ffee';
const PACKAGED_EXPAND_HEAD = '29e87d24a316';
const MIGRATIONS = '/usr/lib/python3/dist-packages/keystone/common/sql/migrations/versions/yoga/expand/';
const PROBE_MIGRATION = `"""podstack's test migration: one harmless table and column, so that a test moves the schema.

Revision ID: ${PROBE_REVISION}
Revises: ${PACKAGED_EXPAND_HEAD}
"""
import sqlalchemy as sql
from alembic import op

revision = '${PROBE_REVISION}'
down_revision = '${PACKAGED_EXPAND_HEAD}'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'podstack_probe',
        sql.Column('id', sql.Integer, primary_key=True),
        sql.Column('note', sql.String(64)),
        mysql_engine='InnoDB',
        mysql_charset='utf8',
    )
    op.add_column('project', sql.Column('podstack_probe', sql.String(64), nullable=True))
`;

/** What the rollback test does to a cloud, on either engine. */
export interface SchemaMoveHarness {
  /** The podstack CLI, for this cloud and engine. */
  podstack(...args: string[]): Promise<ExecResult>;
  /** `up` with the recipes in `imagesDir` (undefined: the packaged ones). */
  upWith(imagesDir?: string): Promise<UpResult>;
  /** The Keystone image reference a set of recipes gives. */
  keystoneRef(imagesDir?: string): Promise<string>;
  /** What Keystone's API server runs: its image (an ID on Podman, a reference on Kubernetes). */
  keystoneRuns(): Promise<string>;
  openstack(...args: string[]): Promise<string>;
  /** A shell script in the MariaDB container, as root: its standard output. */
  inMariadb(script: string): Promise<string>;
  /** Removes an image built for the test from the host. */
  removeImage(ref: string): Promise<void>;
}

/**
 * A rollback across a schema that moved: `up` with the probe image (its migration runs, after a
 * snapshot), a project written, then `rollback N`: refused with exit 2, naming the project row it
 * would lose, nothing changed; `--dry-run` says the same; `--yes` puts Keystone's database back:
 * the old schema version, the old image, the project gone, and Keystone answers. Returns what it
 * measured.
 */
export async function rollbackAcrossSchemaMove(dir: string, h: SchemaMoveHarness): Promise<string> {
  const history = async () => {
    const r = await h.podstack('history', '-o', 'json');
    assert.equal(r.exitCode, 0, r.stderr);
    return (JSON.parse(r.stdout) as { revisions: HistoryEntry[] }).revisions;
  };
  const version = async () =>
    (
      await h.inMariadb(
        `mariadb --batch --skip-column-names -e "SELECT GROUP_CONCAT(version_num ORDER BY version_num SEPARATOR '+') FROM keystone.alembic_version"`,
      )
    ).trim();
  const projects = async () =>
    (await h.openstack('project', 'list', '-f', 'value', '-c', 'Name')).split('\n');

  const back = (await history()).at(-1)!.revision;
  const before = await version();
  const packaged = await h.keystoneRuns();
  const recipes = join(dir, 'images-probe');
  await cp(join(packageRoot(), 'images'), recipes, { recursive: true });
  await writeFile(join(recipes, 'keystone', `${PROBE_REVISION}_podstack_probe.py`), PROBE_MIGRATION);
  await writeFile(
    join(recipes, 'keystone', 'Containerfile'),
    `ARG PARENT\nFROM ${await h.keystoneRef()}\nCOPY ${PROBE_REVISION}_podstack_probe.py ${MIGRATIONS}\n`,
  );
  const probe = await h.keystoneRef(recipes);
  try {
    const moved = await h.upWith(recipes);
    assert.ok(moved.apply.changed.includes('keystone-db-sync'), moved.apply.changed.join(' '));
    const after = await version();
    assert.equal(after, before.replace(PACKAGED_EXPAND_HEAD, PROBE_REVISION), 'the probe did not migrate');
    const migrated = (await history()).at(-1)!;
    assert.deepEqual(
      migrated.snapshot?.databases.map((d) => [d.name, d.before, d.after]),
      [['keystone', before, after]],
    );
    await h.openstack('project', 'create', 'written-after-the-snapshot');
    const count = (await history()).length;

    // Without --yes: exit 2, the loss named, nothing changed.
    const refused = await h.podstack('rollback', String(back));
    const said = refused.stdout + refused.stderr;
    assert.equal(refused.exitCode, 2, said);
    const words = new RegExp(
      `keystone ${literal(after)} -> ${literal(before)}: keystone put back from the snapshot revision ${migrated.revision} took before migrating, undoing keystone: [^;\\n]*\\bproject 1 written`,
    );
    assert.match(said, words);
    assert.match(said, new RegExp(`podstack rollback ${back} --yes`));
    assert.equal((await history()).length, count, 'a refused rollback made a revision');
    assert.equal(await version(), after, 'a refused rollback moved the schema');
    assert.ok(
      (await projects()).includes('written-after-the-snapshot'),
      'a refused rollback lost the project',
    );

    const dry = await h.podstack('rollback', String(back), '--dry-run');
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(
      dry.stdout,
      new RegExp(
        `would put back keystone from snapshot ${migrated.revision}, undoing keystone: [^;\\n]*\\bproject 1 written`,
      ),
    );
    assert.equal((await history()).length, count, 'a dry run made a revision');

    const started = performance.now();
    const done = await h.podstack('rollback', String(back), '--yes', '-o', 'json');
    const seconds = (performance.now() - started) / 1000;
    assert.equal(done.exitCode, 0, done.stdout + done.stderr);
    const result = JSON.parse(done.stdout) as { revision: number; restores: RestoreDone[] };
    assert.deepEqual(
      result.restores.map((r) => [r.from, r.databases]),
      [[migrated.revision, ['keystone']]],
    );
    const project = result.restores[0]?.lost.find((l) => l.table === 'project');
    assert.deepEqual([project?.written, project?.changed], [1, 0], JSON.stringify(result.restores));

    assert.equal(await version(), before, 'the schema did not go back');
    assert.equal(await h.keystoneRuns(), packaged, "Keystone's API does not run its old image");
    assert.ok(
      !(await projects()).includes('written-after-the-snapshot'),
      'the project written since is back',
    );
    await h.openstack('token', 'issue');
    const last = (await history()).at(-1)!;
    assert.equal(last.revision, result.revision);
    assert.deepEqual([last.status, last.changes[0]], ['deployed', `rolled back to ${back}`]);
    assert.deepEqual(
      last.snapshot?.databases.map((d) => [d.name, d.before, d.after]),
      [['keystone', after, before]],
      'the rollback did not keep what ran before it',
    );
    assert.deepEqual(last.restored?.[0]?.lost, result.restores[0]?.lost);
    const plan = await h.podstack('plan', '-o', 'json');
    const pending = (JSON.parse(plan.stdout) as { units: { name: string; action: string }[] }).units.filter(
      (u) => u.action !== 'unchanged',
    );
    assert.deepEqual(pending, [], 'after the rollback, up would change something');
    // Forward again needs the rollback's own snapshot (what ran before it); removed by hand, the
    // return is refused, exit 2, before anything changes.
    await h.inMariadb(`rm -r ${last.snapshot?.folder}`);
    const gone = await h.podstack('rollback', String(migrated.revision), '--yes');
    assert.equal(gone.exitCode, 2, gone.stdout + gone.stderr);
    assert.match(
      gone.stderr,
      new RegExp(`the snapshot ${literal(last.snapshot?.folder ?? '')}/keystone\\.sql\\.gz is gone`),
    );
    assert.equal((await history()).length, count + 1);
    assert.equal(await version(), before);
    const lost = result.restores[0]!.lost.map((l) => `${l.table} +${l.written}/~${l.changed}/-${l.deleted}`);
    return `rollback across keystone ${after} -> ${before} in ${seconds.toFixed(1)} s (snapshot ${migrated.revision} put back, undoing ${lost.join(', ')})`;
  } finally {
    await h.removeImage(probe);
  }
}

const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
