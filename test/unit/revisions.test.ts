import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { exec } from '../../src/_exec.js';
import type { ApplyResult } from '../../src/engines/types.js';
import { PodstackError } from '../../src/errors.js';
import { initProject, openProject, type Project } from '../../src/lifecycle/project.js';
import {
  history as historyOf,
  historyToText,
  RevisionInProgress,
  secretsHash,
} from '../../src/lifecycle/revisions.js';
import {
  refuseDataChanges,
  restoreInWords,
  restoresFor,
  schemasAt,
  targetOf,
} from '../../src/lifecycle/rollback.js';
import { migrationsAhead, parseLosses, parseSnapshotLines } from '../../src/lifecycle/snapshots.js';
import {
  cloudFileChanges,
  describeChanges,
  type RevisionRecord,
  type Snapshot,
} from '../../src/revisions/record.js';
import { fileRevisions, type StoredRevision } from '../../src/revisions/store.js';
import { planOf } from './_fixtures.js';

const made: string[] = [];
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const tmp = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'podstack-revisions-'));
  made.push(dir);
  return dir;
};

/** As up does on Podman: the revisions in the cloud's state folder. */
const begin = (p: Project) => RevisionInProgress.begin(p, fileRevisions(p.stateDir));
const history = (p: Project) => historyOf(fileRevisions(p.stateDir));

/** A deployed revision of cloud `c`, with Keystone and MariaDB, as tests change it. */
const record = (revision: number, fields: Partial<RevisionRecord> = {}): StoredRevision => ({
  format: 2,
  revision,
  status: 'deployed',
  startedAt: '2026-12-05T10:00:00.000Z',
  podstack: '0.1.0',
  engine: 'podman',
  cloud: 'c',
  cloudFile: 'name: c\n',
  secretsSha256: 's',
  images: {
    keystone: { ref: 'localhost/podstack/keystone:1111111aaaaaaaaa', id: 'sha256:k1' },
    mariadb: { ref: 'localhost/podstack/mariadb:2222222aaaaaaaaa', id: 'sha256:m1' },
  },
  units: { 'keystone-config': 'a', 'keystone-api': 'b', 'keystone-db-sync': 'c', mariadb: 'd' },
  changes: [],
  changed: [],
  removed: [],
  ...fields,
});

const applied = (changed: string[] = [], removed: string[] = []): ApplyResult =>
  ({ changed, removed, unchanged: [] }) as unknown as ApplyResult;

describe('what a cloud file edit changed, in words', () => {
  it('names a config option by its file, section and key, and whether it came or went', () => {
    const on =
      'services:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT:\n          debug: true\n';
    assert.deepEqual(cloudFileChanges('', on), ['keystone.conf DEFAULT.debug (added)']);
    assert.deepEqual(cloudFileChanges(on, ''), ['keystone.conf DEFAULT.debug (removed)']);
    assert.deepEqual(cloudFileChanges(on, on.replace('true', 'false')), ['keystone.conf DEFAULT.debug']);
    assert.deepEqual(cloudFileChanges(on, `# a comment\n${on}`), []);
  });

  it('names anything else by its path, and never a value', () => {
    const before = 'network:\n  subnet: 10.1.0.0/24\nservices:\n  horizon:\n    enabled: true\n';
    const after =
      'network:\n  subnet: 10.2.0.0/24\nservices:\n  horizon:\n    enabled: false\n  nova:\n    config:\n      nova.conf:\n        database:\n          connection: mysql+pymysql://nova:hunter2@db/nova\n';
    const words = cloudFileChanges(before, after);
    assert.deepEqual(words, [
      'network.subnet',
      'services.horizon.enabled',
      'nova.conf database.connection (added)',
    ]);
    assert.ok(!words.join(' ').includes('hunter2'));
    assert.ok(!words.join(' ').includes('10.2'));
  });

  it('says which images moved, that secrets changed, and what a podstack upgrade re-rendered', () => {
    const base = record(1, {
      secretsSha256: 'a',
      images: { keystone: { ref: 'localhost/podstack/keystone:39128bd38f1812c9' } },
      units: { 'keystone-api': 'h1', mariadb: 'm1' },
    });
    assert.deepEqual(describeChanges(undefined, base), ['first install']);
    assert.deepEqual(describeChanges(base, { ...base, revision: 2 }), []);
    assert.deepEqual(
      describeChanges(base, {
        ...base,
        images: { keystone: { ref: 'localhost/podstack/keystone:7f0c2e1aaaaaaaaa' } },
        units: { ...base.units, 'keystone-api': 'h2' },
      }),
      ['image keystone 39128bd -> 7f0c2e1'],
    );
    assert.deepEqual(describeChanges(base, { ...base, secretsSha256: 'b' }), ['secrets.yaml']);
    assert.deepEqual(
      describeChanges(
        { ...base, secretNames: ['a_password'] },
        { ...base, secretsSha256: 'b', secretNames: ['a_password', 'ceph_fsid', 'ceph_mon_key'] },
      ),
      ['secrets.yaml (added ceph_fsid, ceph_mon_key)'],
    );
    assert.deepEqual(
      describeChanges(base, { ...base, podstack: '0.2.0', units: { ...base.units, mariadb: 'm2' } }),
      ['podstack 0.1.0 -> 0.2.0'],
    );
    assert.deepEqual(describeChanges(base, { ...base, units: { ...base.units, mariadb: 'm2' } }), [
      'units mariadb',
    ]);
  });
});

describe('revisions, as up keeps them', () => {
  async function cloud() {
    const dir = await tmp();
    const file = join(dir, 'cloud.yaml');
    const write = (extra = '') => writeFile(file, `name: rev\ndataDir: ${join(dir, 'data')}\n${extra}`);
    await write();
    await writeFile(join(dir, 'secrets.yaml'), 'keystone_admin_password: hunter2-admin\n', { mode: 0o600 });
    await initProject({ file }); // the other secrets, as up makes them
    const project = () => openProject({ file });
    return { dir, write, project };
  }
  const debug =
    'services:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT:\n          debug: true\n';

  it('records each up: pending at once, then deployed or failed; an up that changed nothing adds none', async () => {
    const c = await cloud();
    const first = await begin(await c.project());
    assert.deepEqual(
      (await history(await c.project())).map((e) => [e.revision, e.status]),
      [[1, 'pending']],
    );
    assert.equal(await first.deployed(applied(['mariadb', 'keystone-api'])), 1);

    // Nothing changed, nothing applied: no revision 2, and up reports 1.
    const again = await begin(await c.project());
    assert.equal(await again.deployed(applied()), 1);

    await c.write(debug);
    const failing = await begin(await c.project());
    await failing.failed(
      new Error('keystone-api keeps crashing (3 restarts)\n--- last log lines ---\nsecret'),
    );
    const fixed = await begin(await c.project());
    assert.equal(await fixed.deployed(applied(['keystone-config', 'keystone-api'])), 3);

    // A repair: the same inputs, a unit made again.
    const repair = await begin(await c.project());
    assert.equal(await repair.deployed(applied(['keystone-api'])), 4);

    const entries = await history(await c.project());
    assert.deepEqual(
      entries.map((e) => [e.revision, e.status, e.changes.join('; '), e.error ?? '']),
      [
        [1, 'superseded', 'first install', ''],
        // The number the no-op up held while pending is the failed one's: it never deployed.
        [2, 'failed', 'keystone.conf DEFAULT.debug (added)', 'keystone-api keeps crashing (3 restarts)'],
        [3, 'superseded', 'keystone.conf DEFAULT.debug (added)', ''],
        [4, 'deployed', 'repaired keystone-api', ''],
      ],
    );
    const text = historyToText(entries);
    assert.match(text, /^REV +STARTED \(UTC\) +STATUS +CHANGE$/m);
    assert.match(
      text,
      /^2 +\S+ \S+ +failed +keystone\.conf DEFAULT\.debug \(added\), failed: keystone-api keeps crashing/m,
    );
    assert.ok(!text.includes('secret'));
  });

  it('after a failed up, the edit that undoes it reads as what it undid', async () => {
    const c = await cloud();
    await (await begin(await c.project())).deployed(applied(['mariadb']));
    await c.write(debug);
    await (await begin(await c.project())).failed(new Error('keystone-api failed'));
    await c.write();
    const back = await begin(await c.project());
    assert.equal(await back.deployed(applied(['keystone-config'])), 3);
    assert.deepEqual(
      (await history(await c.project())).map((e) => [e.status, e.changes]),
      [
        ['superseded', ['first install']],
        ['failed', ['keystone.conf DEFAULT.debug (added)']],
        ['deployed', ['keystone.conf DEFAULT.debug (removed)']],
      ],
    );
  });

  it("an up that says why it runs (a restore's) leads with that, and what it makes again is no repair", async () => {
    const c = await cloud();
    await (await begin(await c.project())).deployed(applied(['mariadb', 'keystone-api']));
    const p = await c.project();
    const restored = await RevisionInProgress.begin(
      p,
      fileRevisions(p.stateDir),
      'restored from the backup of X',
    );
    assert.equal(await restored.deployed(applied(['mariadb', 'keystone-api'])), 2);
    assert.deepEqual((await history(await c.project())).at(-1)?.changes, ['restored from the backup of X']);
  });

  it('an up that never finished is marked failed by the next one', async () => {
    const c = await cloud();
    await begin(await c.project()); // killed: never finished
    const next = await begin(await c.project());
    await next.deployed(applied(['mariadb']));
    const [killed, done] = await history(await c.project());
    assert.equal(killed?.status, 'failed');
    assert.match(killed?.error ?? '', /interrupted/);
    assert.equal(done?.status, 'deployed');
    assert.deepEqual(done?.changes, ['first install']);
  });

  it('keeps the cloud file, image references and IDs, and the plan, private; never a secret in the record', async () => {
    const c = await cloud();
    const project = await c.project();
    const r = await begin(project);
    await r.built({ keystone: 'sha256:abc' });
    await r.deployed(applied(['mariadb']));
    const store = fileRevisions(project.stateDir);
    const folder = join(store.dir, '000001');
    assert.equal((await stat(store.dir)).mode & 0o777, 0o700);
    for (const f of await readdir(folder)) assert.equal((await stat(join(folder, f))).mode & 0o777, 0o600, f);
    const text = await readFile(join(folder, 'record.json'), 'utf8');
    assert.ok(!text.includes('hunter2'), 'a secret value in record.json');
    const stored = (await store.list()).find((r) => r.revision === 1);
    assert.equal(stored?.cloudFile, await readFile(project.file, 'utf8'));
    assert.equal(stored?.images.keystone?.id, 'sha256:abc');
    assert.equal(stored?.images.keystone?.ref, project.imageRefs.keystone);
    assert.equal(
      stored?.units['keystone-api'],
      project.plan.units.find((u) => u.name === 'keystone-api')?.hash,
    );
    // The plan as rendered then: what a rollback applies, whatever podstack renders by then.
    const plan = JSON.parse(gunzipSync(await readFile(join(folder, 'plan.json.gz'))).toString('utf8'));
    assert.deepEqual(plan, JSON.parse(JSON.stringify(project.plan)));
  });

  it('reads the records of earlier podstack versions, and refuses a damaged one by name', async () => {
    const c = await cloud();
    const project = await c.project();
    const store = fileRevisions(project.stateDir);
    await mkdir(store.dir, { recursive: true });
    await writeFile(
      join(store.dir, '000001.json'),
      JSON.stringify({
        revision: 1,
        appliedAt: '2026-12-01T10:00:00.000Z',
        cloud: 'rev',
        images: project.imageRefs,
        units: Object.fromEntries(project.plan.units.map((u) => [u.name, u.hash])),
        changed: ['mariadb'],
        removed: [],
      }),
    );
    const next = await begin(project);
    // Same units and images as the old record: nothing to say, nothing applied, nothing added.
    assert.equal(await next.deployed(applied()), 1);
    assert.deepEqual(
      (await history(project)).map((e) => [e.revision, e.status, e.changes]),
      [[1, 'deployed', ['units mariadb']]],
    );
    await writeFile(join(store.dir, '000001.json'), '{"revision": 1, "cut short');
    await assert.rejects(history(project), (err: unknown) => {
      assert.ok(err instanceof PodstackError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /000001\.json is not a podstack revision record/);
      return true;
    });
  });
});

describe('podstack history, as a user runs it', () => {
  const cli = (dir: string, ...args: string[]) =>
    exec(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), join(process.cwd(), 'src/cli/main.ts'), ...args],
      {
        cwd: dir,
        env: { NODE_OPTIONS: '' },
      },
    );

  it('prints the revisions as a table and as JSON; a damaged record is named, exit code 2', async () => {
    const dir = await tmp();
    const file = join(dir, 'cloud.yaml');
    await writeFile(file, `name: cli\ndataDir: ${join(dir, 'data')}\n`);
    await initProject({ file });
    assert.match((await cli(dir, 'history')).stdout, /no revisions yet/);
    const r = await begin(await openProject({ file }));
    await r.deployed(applied(['mariadb']));
    const text = await cli(dir, 'history');
    assert.equal(text.exitCode, 0, text.output);
    assert.match(text.stdout, /^1 +\S+ \S+ +deployed +first install$/m);
    const json = JSON.parse((await cli(dir, 'history', '-o', 'json')).stdout) as {
      cloud: string;
      revisions: { revision: number; status: string; changed: string[] }[];
    };
    assert.equal(json.cloud, 'cli');
    assert.deepEqual(
      json.revisions.map((e) => [e.revision, e.status, e.changed]),
      [[1, 'deployed', ['mariadb']]],
    );
    await writeFile(join(dir, 'data', 'cli', 'revisions', '000001', 'record.json'), '{}');
    const bad = await cli(dir, 'history');
    assert.equal(bad.exitCode, 2, bad.output);
    assert.match(bad.stderr, /000001\/record\.json is not a podstack revision record/);
  });
});

/** A refusal of rollback: a PodstackError, exit code 2, saying `message`. */
const refusal = (f: () => unknown, message: RegExp) =>
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof PodstackError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, message);
    return true;
  });

describe('what rollback refuses, before it changes anything', () => {
  it('a revision that is not there, that never deployed, or that an earlier podstack wrote without its plan', () => {
    const all = [record(1), record(2, { status: 'failed' }), record(3, { status: 'pending' }), record(4)];
    refusal(() => targetOf(all, 9, 'here'), /there is no revision 9 \(in here\)/);
    refusal(() => targetOf(all, 2, 'here'), /revision 2 never deployed \(it failed\)/);
    refusal(() => targetOf(all, 3, 'here'), /revision 3 never deployed \(it is pending\)/);
    refusal(
      () => targetOf([{ ...record(1), legacy: true }, record(2)], 1, 'here'),
      /recorded by an earlier podstack, without its plan/,
    );
    const { target, current } = targetOf(all, 1, 'here');
    assert.deepEqual([target.revision, current.revision], [1, 4]);
  });

  it('a data store image or secrets changed since: the data may not read back', () => {
    const now = record(5, { units: { ...record(1).units, 'keystone-config': 'a2', 'keystone-api': 'b2' } });
    // A config change alone returns.
    const secrets = { a_password: 'x1', b_password: 'x2' };
    const then = record(1, {
      secretsSha256: secretsHash(secrets),
      secretNames: ['a_password', 'b_password'],
    });
    refuseDataChanges(then, now, secrets);
    const newMariadb = record(5, {
      images: { ...record(1).images, mariadb: { ref: 'localhost/podstack/mariadb:3333333aaaaaaaaa' } },
    });
    refusal(() => refuseDataChanges(then, newMariadb, secrets), /changes the image of mariadb/);
    const changed = /secrets\.yaml changed since revision 1/;
    refusal(() => refuseDataChanges(then, now, { ...secrets, b_password: 'other' }), changed);
    refusal(() => refuseDataChanges(then, now, { a_password: 'x1' }), changed);
    // An entry a newer podstack added (a new service's) is not in revision 1's plan: it returns.
    refuseDataChanges(then, now, { ...secrets, ceph_fsid: 'new' });
    // A record without names (an earlier podstack's) compares the whole file.
    const unnamed = record(1, { secretsSha256: secretsHash(secrets) });
    refuseDataChanges(unnamed, now, secrets);
    refusal(() => refuseDataChanges(unnamed, now, { ...secrets, ceph_fsid: 'new' }), changed);
  });
});

describe('snapshots before migrations, and a rollback across one', () => {
  const keystoneSnapshot = (before: string, after?: string): Snapshot => ({
    folder: '/var/lib/podstack-snapshots/2',
    databases: [
      { name: 'keystone', unit: 'keystone-db-sync', bytes: 2048, before, ...(after ? { after } : {}) },
    ],
  });

  it('a migration that runs again on a deployed cloud is snapshotted; a first install, or an unchanged one, is not', () => {
    const plan = planOf('');
    const sync = plan.units.find((u) => u.name === 'keystone-db-sync')!;
    const deployed = record(1, { units: Object.fromEntries(plan.units.map((u) => [u.name, u.hash])) });
    assert.deepEqual(migrationsAhead(plan, undefined), []);
    assert.deepEqual(migrationsAhead(plan, deployed), []);
    const older = {
      ...deployed,
      units: { ...deployed.units, 'keystone-db-sync': 'older', 'nova-db-sync': 'older' },
    };
    assert.deepEqual(migrationsAhead(plan, older), [
      { unit: 'keystone-db-sync', databases: ['keystone'] },
      { unit: 'nova-db-sync', databases: ['nova_api', 'nova', 'nova_cell0'] },
    ]);
    // A service the deployed cloud did not have yet: its database is new and empty.
    const { [sync.name]: _, ...without } = deployed.units;
    assert.deepEqual(migrationsAhead(plan, { ...deployed, units: without }), []);
  });

  it("every schema migration names the databases its service's database Job creates", () => {
    const plan = planOf('');
    const migrating = plan.units.filter((u) => u.migrates);
    assert.deepEqual(
      migrating.map((u) => u.name),
      plan.units.filter((u) => u.name.endsWith('-db-sync')).map((u) => u.name),
    );
    for (const u of migrating) {
      const ensure = plan.units.find((d) => d.name === u.dependsOn[0])!;
      const created = ensure.objects.flatMap((o) =>
        o.kind === 'Job'
          ? [...(o.spec?.template.spec?.initContainers ?? []), ...(o.spec?.template.spec?.containers ?? [])]
              .filter((c) => c.command?.[0] === 'podstack-db-ensure')
              .map((c) => c.command?.[2])
          : [],
      );
      assert.deepEqual([...(u.migrates ?? [])].sort(), created.sort(), u.name);
    }
  });

  it('reads what the snapshot script printed', () => {
    assert.deepEqual(parseSnapshotLines('keystone 2048 27e647c0fad4+e25ffa003242\nnova_cell0 99 none\n'), [
      { name: 'keystone', bytes: 2048, before: '27e647c0fad4+e25ffa003242' },
      { name: 'nova_cell0', bytes: 99, before: 'none' },
    ]);
  });

  it('history shows each snapshot, its size, whether the schema moved, and what the kept ones take', async () => {
    const dir = await tmp();
    const store = fileRevisions(dir);
    await store.write(record(1, { changes: ['first install'] }));
    await store.write(
      record(2, { changes: ['image keystone 1111111 -> 3333333'], snapshot: keystoneSnapshot('v1', 'v1') }),
    );
    await store.write(
      record(3, { changes: ['image keystone 3333333 -> 4444444'], snapshot: keystoneSnapshot('v1', 'v2') }),
    );
    await store.write(
      record(4, {
        changes: ['image keystone 4444444 -> 5555555'],
        snapshot: { folder: '', databases: [], skipped: 'MariaDB is not running' },
      }),
    );
    const text = historyToText(await historyOf(store));
    assert.match(
      text,
      /^2 .*image keystone 1111111 -> 3333333, snapshot keystone \(2 KiB; schema unchanged\)$/m,
    );
    assert.match(text, /^3 .*snapshot keystone \(2 KiB; schema moved: keystone v1 -> v2\)$/m);
    assert.match(text, /^4 .*no snapshot: MariaDB is not running$/m);
    assert.match(
      text,
      /^snapshots: 2 kept, 4 KiB in MariaDB's snapshots volume \(the newest 10 are kept\)$/m,
    );
    // Past the newest ten, a snapshot is pruned: history says so and counts only the kept ones.
    for (let n = 5; n <= 14; n++) await store.write(record(n, { snapshot: keystoneSnapshot('v2', 'v2') }));
    const entries = await historyOf(store);
    assert.deepEqual(
      entries
        .filter((e) => e.snapshot?.kept === false && e.snapshot.databases.length > 0)
        .map((e) => e.revision),
      [2, 3],
    );
    assert.match(
      historyToText(entries),
      /^3 .*snapshot keystone \(pruned; schema moved: keystone v1 -> v2\)$/m,
    );
    assert.match(historyToText(entries), /^snapshots: 10 kept, 20 KiB/m);
  });

  it("a rollback across a migration puts back the snapshot taken before it where the schema moved, all of that migration's databases, and only there; refuses when where it stood is unknown", () => {
    const nova = (before: string): Snapshot => ({
      folder: '/var/lib/podstack-snapshots/3',
      databases: ['nova_api', 'nova', 'nova_cell0'].map((name) => ({
        name,
        unit: 'nova-db-sync',
        bytes: 1,
        before: name === 'nova' ? before : 'n0',
      })),
    });
    const all = [
      record(1),
      record(2, { snapshot: keystoneSnapshot('v1', 'v1') }),
      record(3, { snapshot: nova('n1') }),
      record(4, { snapshot: keystoneSnapshot('v1', 'v2') }),
    ];
    const then = schemasAt(all, 1, ['keystone-db-sync', 'nova-db-sync']);
    // The first snapshot after the target says where each schema stood.
    assert.deepEqual(then.keystone, { version: 'v1', snapshot: 2, unit: 'keystone-db-sync' });
    assert.deepEqual(then.nova, { version: 'n1', snapshot: 3, unit: 'nova-db-sync' });
    const same = { keystone: 'v1', nova_api: 'n0', nova: 'n1', nova_cell0: 'n0' };
    assert.deepEqual(restoresFor(then, same), []);
    // Only nova's own schema moved: its three databases go back together, Keystone's stays.
    const moved = restoresFor(then, { ...same, nova: 'n2' });
    assert.deepEqual(
      moved.map((r) => [r.from, r.databases, r.moves, r.byUnit]),
      [
        [
          3,
          ['nova_api', 'nova', 'nova_cell0'],
          ['nova n2 -> n1'],
          { 'nova-db-sync': ['nova_api', 'nova', 'nova_cell0'] },
        ],
      ],
    );
    assert.deepEqual(
      restoresFor(then, { ...same, keystone: 'v2', nova: 'n2' }).map((r) => r.from),
      [2, 3],
    );
    const words = restoreInWords(moved[0]!, [
      { database: 'nova', table: 'instances', written: 2, changed: 1, deleted: 0 },
      { database: 'nova_api', table: 'flavors', written: 0, changed: 0, deleted: 3 },
    ]);
    assert.equal(
      words,
      'nova n2 -> n1: nova_api, nova, nova_cell0 put back from the snapshot revision 3 took before migrating, undoing nova_api: flavors 3 deleted (they come back); nova: instances 2 written, instances 1 changed; nova_cell0: nothing changed since',
    );
    refusal(
      () => schemasAt([record(1), record(2)], 1, ['keystone-db-sync']),
      /crosses a database migration \(keystone-db-sync changed since\), and no snapshot since says where its schema stood/,
    );
    refusal(
      () =>
        schemasAt(
          [...all, record(5, { snapshot: { folder: '', databases: [], skipped: 'MariaDB is not running' } })],
          1,
          ['keystone-db-sync'],
        ),
      /revision 5 migrated with no snapshot \(MariaDB is not running\)/,
    );
  });

  it('reads what the restore script printed, and history says what a rollback put back and undid', async () => {
    assert.deepEqual(
      parseLosses('lost keystone project 1 0 0\nlost keystone region 0 0 1\nrestored keystone v1\n'),
      [
        { database: 'keystone', table: 'project', written: 1, changed: 0, deleted: 0 },
        { database: 'keystone', table: 'region', written: 0, changed: 0, deleted: 1 },
      ],
    );
    const dir = await tmp();
    const store = fileRevisions(dir);
    await store.write(record(1));
    await store.write(record(2, { snapshot: keystoneSnapshot('v1', 'v2') }));
    await store.write(
      record(3, {
        changes: ['rolled back to 1'],
        rolledBackTo: 1,
        snapshot: keystoneSnapshot('v2', 'v1'),
        restored: [
          {
            from: 2,
            databases: ['keystone'],
            lost: [{ database: 'keystone', table: 'project', written: 1, changed: 0, deleted: 0 }],
          },
        ],
      }),
    );
    assert.match(
      historyToText(await historyOf(store)),
      /^3 .*rolled back to 1, snapshot keystone \(2 KiB; schema moved: keystone v2 -> v1\), restored keystone from snapshot 2, undoing keystone: project 1 written$/m,
    );
  });

  it("a rollback's revision does not carry its target's snapshot", async () => {
    const dir = await tmp();
    const store = fileRevisions(dir);
    const target = record(2, { snapshot: keystoneSnapshot('v1', 'v1') });
    await store.write(record(1));
    await store.write(target, planOf(''));
    const pending = await RevisionInProgress.rollback(store, target, planOf(''));
    assert.equal(pending.snapshot, undefined);
  });
});
