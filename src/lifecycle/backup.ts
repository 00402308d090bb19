// `podstack backup FILE` and `podstack restore FILE`: what a cloud needs to come back on a purged
// host or a new one, in one file. While the cloud runs: each database is dumped in a transaction
// of its own (MariaDB's own tool, inside its container), and the claims whose files are the
// cloud's state (Keystone's keys, Glance's images) are copied as they are. A restore goes onto a
// cloud that is not there: it makes those claims from the file, starts MariaDB alone and loads
// the dumps, puts the revisions back, then runs `up`, whose Jobs find every database current.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { extract, pack } from 'tar-fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { writeFileAtomic } from '../_fs.js';
import { podstackVersion } from '../_paths.js';
import { MARIADB_CONTAINER, MARIADB_UNIT, SNAPSHOT_DIR } from '../catalog/mariadb.js';
import { OVN_CENTRAL, OVN_CENTRAL_CLAIM } from '../catalog/ovn.js';
import type { GuestDisks } from '../catalog/types.js';
import type { DataAccess, Engine } from '../engines/types.js';
import { PodstackError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { Plan, PlannedUnit } from '../model/unit.js';
import { parseRecord } from '../revisions/record.js';
import { packPlan, pad, unpackPlan } from '../revisions/store.js';
import { readInputFile } from '../spec/files.js';
import { type EngineChoice, engineFor } from './engine.js';
import { openProject, type Project, type ProjectOptions, projectPaths } from './project.js';
import { formatBytes, lastLines, parseSnapshotLines, run } from './snapshots.js';
import { type UpResult, up } from './up.js';

const KIND = 'podstack-backup';
/** The files of OVN's claim, and the databases they hold. */
const OVN_DATABASES = [
  ['ovnnb_db.db', 'OVN_Northbound'],
  ['ovnsb_db.db', 'OVN_Southbound'],
] as const;
const FORMAT = 1;
const NOTICE =
  "This file holds the cloud's secrets: its passwords (secrets.yaml), Keystone's Fernet and credential keys, and every database. Keep it as you keep secrets.yaml: it is written mode 0600.";

/**
 * Claims a backup does not copy, and why: MariaDB's data goes as dumps (a copy of live InnoDB
 * files would not be consistent), its snapshots are this cloud's past, RabbitMQ's queues are
 * transient (the services declare them again), and OVN's databases go as ovsdb-server's own
 * online backups (a copy of its log file while it appends could end in half a record).
 */
const NOT_COPIED: Readonly<Record<string, string>> = {
  'mariadb-data': 'as SQL dumps',
  'mariadb-snapshots': "the snapshots before migrations: this cloud's past",
  'rabbitmq-data': 'queues are transient',
  [OVN_CENTRAL_CLAIM]: 'as ovsdb-client backups',
  // A live BlueStore file copied while the OSD writes is not a volume as of one instant, and the
  // monitor's store without it describes data that is not there. Volumes are not in backups yet.
  'ceph-mon-data': "Ceph's monitor store: volumes are not in backups yet",
  'ceph-osd-data': "Ceph's OSD: volumes are not in backups yet",
};

/**
 * What a backup leaves out, said in the manifest and the README: libvirt's domains are made
 * again by nova-compute (resume_guests_state_on_host_boot) from the databases and the disks.
 */
const LEFT_OUT: string[] = [];

const manifestSchema = z.object({
  kind: z.literal(KIND),
  format: z.literal(FORMAT),
  notice: z.string(),
  cloud: z.string(),
  engine: z.enum(['podman', 'kubernetes']),
  podstack: z.string(),
  createdAt: z.string(),
  /** The revision that was deployed. */
  revision: z.number().int().positive().optional(),
  databases: z.array(z.object({ name: z.string(), bytes: z.number(), version: z.string() })),
  claims: z.array(z.object({ claim: z.string(), unit: z.string(), bytes: z.number() })),
  /** Node folders of guests' disks, copied with those guests paused. */
  folders: z
    .array(z.object({ unit: z.string(), path: z.string(), bytes: z.number(), guests: z.array(z.string()) }))
    .default([]),
  leftOut: z.array(z.string()),
  /** Every other file of the backup -> its sha256: a damaged file is refused, not restored. */
  files: z.record(z.string(), z.string()),
});
type Manifest = z.infer<typeof manifestSchema>;

export interface BackupOptions extends Omit<ProjectOptions, 'engine'> {
  readonly report: Reporter;
  readonly engine?: EngineChoice;
  /** Where the backup goes. */
  readonly output: string;
}

export interface BackupResult {
  readonly file: string;
  readonly bytes: number;
  readonly seconds: number;
  readonly databases: Manifest['databases'];
  readonly claims: Manifest['claims'];
  readonly folders: Manifest['folders'];
  /** How long the guests were paused for their disks' copy. */
  readonly pausedSeconds: number;
  readonly leftOut: readonly string[];
}

const refuse = (message: string, hint: string) => new PodstackError(message, { exitCode: 2, hint });

function dataOf(engine: Engine, what: string): DataAccess {
  if (!engine.data)
    throw refuse(
      `${what} is not built yet for the ${engine.name} engine`,
      'Back up and restore a cloud on Podman; on Kubernetes, use the revisions and snapshots for now.',
    );
  return engine.data;
}

/** A unit of the plan by name: a backup names only units its cloud file plans. */
function unitOf(plan: Plan, name: string): PlannedUnit {
  const unit = plan.units.find((u) => u.name === name);
  if (!unit) throw new PodstackError(`the plan has no unit ${name}`);
  return unit;
}

/** The claims a backup copies: each claim of the plan but those NOT_COPIED, with its unit. */
export function copiedClaims(plan: Plan): { claim: string; unit: string }[] {
  return plan.units.flatMap((u) =>
    u.objects
      .filter((o) => o.kind === 'PersistentVolumeClaim' && !(o.metadata.name in NOT_COPIED))
      .map((o) => ({ claim: o.metadata.name, unit: u.name })),
  );
}

/**
 * OVN's databases as the files their claim holds (/var/lib/ovn/ovn{nb,sb}_db.db), each from
 * `ovsdb-client backup`: a consistent snapshot of the running server, in the standalone format
 * ovsdb-server opens. Restored, the claim is made from them before ovn-central starts, so the
 * switches, routers, ports and floating IPs Neutron knows are in OVN again, with the southbound
 * chassis and bindings the node claims back.
 */
async function backupOvn(engine: Engine, dir: string, tar: string): Promise<void> {
  await mkdir(dir, { mode: 0o700 });
  for (const [file, database] of OVN_DATABASES) {
    const r = await engine.exec(OVN_CENTRAL, OVN_CENTRAL, [
      'ovsdb-client',
      'backup',
      `unix:/var/run/ovn/${file.replace(/\.db$/, '.sock')}`,
      database,
    ]);
    if (r.exitCode !== 0 || !r.stdout.startsWith('OVSDB JSON'))
      throw new PodstackError(
        `ovsdb-client backup of ${database} failed (exit ${r.exitCode}):\n${lastLines(r.stderr || r.stdout)}`,
      );
    // The captured output has lost its final newline, which belongs to the file's last record:
    // without it ovsdb-server drops that record (the data) as torn and opens an empty database.
    await writeFile(join(dir, file), `${r.stdout}\n`, { mode: 0o600 });
  }
  await pipeline(pack(dir), createWriteStream(tar, { mode: 0o600 }));
  await rm(dir, { recursive: true });
}

/** The guests' disk folders of the cloud's services, each with the node folder its volume is. */
export function guestDiskFolders(
  project: Pick<Project, 'services' | 'plan'>,
): (GuestDisks & { path: string; owner: PlannedUnit })[] {
  return project.services.flatMap((service) => {
    const disks = service.guestDisks;
    const unit = disks && project.plan.units.find((u) => u.name === disks.unit);
    if (!disks || !unit) return [];
    const path = unit.objects
      .flatMap((o) =>
        'spec' in o && o.spec && 'template' in o.spec ? (o.spec.template?.spec?.volumes ?? []) : [],
      )
      .find((v) => v.name === disks.volume)?.hostPath?.path;
    if (!path)
      throw new PodstackError(`${service.name}: unit ${disks.unit} has no hostPath volume ${disks.volume}`);
    return [{ ...disks, path, owner: unit }];
  });
}

/**
 * A node folder of guests' disks, copied with its running guests paused: each disk as of one
 * instant, as a power cut would leave it. The guests run on whatever happens; returns which were
 * paused and for how long.
 */
async function copyGuestDisks(
  engine: Engine,
  data: DataAccess,
  disks: GuestDisks & { path: string; owner: PlannedUnit },
  tar: string,
  report: Reporter,
): Promise<{ guests: string[]; seconds: number }> {
  const inNode = async (command: readonly string[]) => {
    const r = await engine.exec(disks.unit, disks.container, command);
    if (r.exitCode !== 0)
      throw new PodstackError(
        `${command.join(' ')} failed (exit ${r.exitCode}):\n${lastLines(r.stderr || r.stdout)}`,
      );
    return r.stdout;
  };
  const guests = (await inNode(disks.list))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  report({
    type: 'step',
    message: `copying the guests' disks (${disks.path})${guests.length > 0 ? `, ${guests.length} guests paused meanwhile` : ''}`,
  });
  const paused: string[] = [];
  const started = performance.now();
  try {
    for (const g of guests) {
      await inNode([...disks.pause, g]);
      paused.push(g);
    }
    await data.exportFolder(disks.owner, disks.path, tar);
  } finally {
    const failed: string[] = [];
    for (const g of paused) await inNode([...disks.resume, g]).catch(() => failed.push(g));
    if (failed.length > 0)
      report({
        type: 'step',
        message: `could not resume ${failed.join(', ')}: resume them with \`openstack server reboot\``,
      });
  }
  return { guests, seconds: (performance.now() - started) / 1000 };
}

/** The snapshot script in MariaDB, for backup and restore: its output, or an error saying why not. */
async function inMariadb(engine: Engine, args: readonly string[]): Promise<string> {
  const r = await run(engine, args);
  if (r.exitCode !== 0)
    throw new PodstackError(
      `podstack-db-snapshot ${args[0]} failed (exit ${r.exitCode}):\n${lastLines(r.stderr || r.stdout)}`,
    );
  return r.stdout;
}

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

export async function backup(o: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const project = await openProject({ ...o, engine: o.engine?.name ?? 'podman' });
  const { engine } = await engineFor(project, o.engine);
  const data = dataOf(engine, 'backup');
  if (await stat(o.output).catch(() => undefined))
    throw refuse(`${o.output} exists: a backup is never written over another file`, 'Name a new file.');
  const staging = await mkdtemp(join(tmpdir(), 'podstack-backup-'));
  try {
    const cloudFile = await readInputFile(project.file);
    if (!cloudFile)
      throw refuse(`${project.file} does not exist`, 'Run it where the cloud file is, or pass -f.');
    await writeFile(join(staging, 'cloud.yaml'), cloudFile.text, { mode: 0o644 });
    await writeFile(join(staging, 'secrets.yaml'), await readFile(project.secretsFile), { mode: 0o600 });

    const store = engine.revisions();
    const revisions = (await store.list()).filter((r) => !r.legacy);
    const deployed = revisions.filter((r) => r.status === 'deployed').at(-1);
    for (const r of revisions) {
      await mkdir(join(staging, 'revisions'), { recursive: true, mode: 0o700 });
      await writeFile(join(staging, 'revisions', `${pad(r.revision)}.json`), JSON.stringify(r), {
        mode: 0o600,
      });
      const plan = await store.plan(r.revision);
      if (plan)
        await writeFile(join(staging, 'revisions', `${pad(r.revision)}.plan.gz`), packPlan(plan), {
          mode: 0o600,
        });
    }

    o.report({ type: 'step', message: 'dumping the databases' });
    const names = (await inMariadb(engine, ['databases'])).split('\n').filter(Boolean);
    if (names.length === 0)
      throw new PodstackError('MariaDB holds no database of the cloud: nothing to back up');
    const dumped = await inMariadb(engine, ['take', SNAPSHOT_DIR, 'backup', ...names]);
    const databases = parseSnapshotLines(dumped).map(({ name, bytes, before }) => ({
      name,
      bytes,
      version: before,
    }));
    await mkdir(join(staging, 'databases'), { mode: 0o700 });
    try {
      await data.copyOut(
        MARIADB_UNIT,
        MARIADB_CONTAINER,
        `${SNAPSHOT_DIR}/backup/.`,
        join(staging, 'databases'),
      );
    } finally {
      await inMariadb(engine, ['remove', SNAPSHOT_DIR, 'backup']);
    }

    const claims: Manifest['claims'] = [];
    await mkdir(join(staging, 'claims'), { mode: 0o700 });
    for (const { claim, unit } of copiedClaims(project.plan)) {
      o.report({ type: 'step', message: `copying claim ${claim}` });
      const tar = join(staging, 'claims', `${claim}.tar`);
      await data.exportClaim(unitOf(project.plan, unit), claim, tar);
      claims.push({ claim, unit, bytes: (await stat(tar)).size });
    }

    if (project.plan.units.some((u) => u.name === OVN_CENTRAL)) {
      o.report({ type: 'step', message: "copying OVN's northbound and southbound databases" });
      const tar = join(staging, 'claims', `${OVN_CENTRAL_CLAIM}.tar`);
      await backupOvn(engine, join(staging, 'ovn'), tar);
      claims.push({ claim: OVN_CENTRAL_CLAIM, unit: OVN_CENTRAL, bytes: (await stat(tar)).size });
    }

    const folders: Manifest['folders'] = [];
    let pausedSeconds = 0;
    for (const disks of guestDiskFolders(project)) {
      await mkdir(join(staging, 'folders'), { recursive: true, mode: 0o700 });
      const tar = join(staging, 'folders', `${folders.length}.tar`);
      const copied = await copyGuestDisks(engine, data, disks, tar, o.report);
      pausedSeconds += copied.seconds;
      folders.push({
        unit: disks.unit,
        path: disks.path,
        bytes: (await stat(tar)).size,
        guests: copied.guests,
      });
    }

    const files: Record<string, string> = {};
    for (const f of await filesUnder(staging)) files[f] = await sha256(join(staging, f));
    const manifest: Manifest = {
      kind: KIND,
      format: FORMAT,
      notice: NOTICE,
      cloud: project.spec.name,
      engine: project.engine,
      podstack: podstackVersion(),
      createdAt: new Date().toISOString(),
      ...(deployed ? { revision: deployed.revision } : {}),
      databases,
      claims,
      folders,
      leftOut: LEFT_OUT,
      files,
    };
    await writeFile(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, {
      mode: 0o600,
    });
    await writeFile(join(staging, 'README'), `${NOTICE}\nRestore it with: podstack restore FILE\n`, {
      mode: 0o600,
    });

    // Written beside its place, mode 0600 from the start, and renamed: never a readable or half file.
    const tmp = `${o.output}.${process.pid}.part`;
    await mkdir(dirname(o.output), { recursive: true });
    try {
      await pipeline(pack(staging), createGzip(), createWriteStream(tmp, { mode: 0o600, flags: 'wx' }));
      await rename(tmp, o.output);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const bytes = (await stat(o.output)).size;
    return {
      file: o.output,
      bytes,
      seconds: (performance.now() - started) / 1000,
      databases,
      claims,
      folders,
      pausedSeconds,
      leftOut: LEFT_OUT,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export interface RestoreOptions extends Omit<ProjectOptions, 'engine'> {
  readonly report: Reporter;
  readonly engine?: EngineChoice;
  /** The backup file. */
  readonly input: string;
  readonly installHostPackages?: boolean;
}

export interface RestoreResult {
  readonly cloud: string;
  readonly from: string;
  readonly seconds: number;
  readonly databases: readonly string[];
  readonly claims: readonly string[];
  /** Node folders of guests' disks made from the backup. */
  readonly folders: number;
  readonly revisions: number;
  readonly up: UpResult;
  /** Where the cloud file that was there before was kept, if it differed. */
  readonly keptFile?: string;
}

/** Unpacks and checks a backup: a file that is not one, or is damaged, is refused by name. */
export async function unpackBackup(input: string, into: string): Promise<Manifest> {
  const damaged = (why: string) =>
    refuse(`${input} is not a podstack backup, or is damaged: ${why}`, 'Restore from another backup file.');
  let unsafe = '';
  try {
    await pipeline(
      createReadStream(input),
      createGunzip(),
      extract(into, {
        // Only plain files and folders, inside `into`: a crafted file writes nowhere else.
        ignore: (name, header) => {
          const bad = header?.type !== 'file' && header?.type !== 'directory';
          if (bad || relative(into, name).startsWith('..')) unsafe ||= header?.name ?? name;
          return bad;
        },
      }),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw refuse(`${input} does not exist`, 'Name a backup file.');
    throw damaged((err as Error).message);
  }
  if (unsafe) throw damaged(`it holds ${unsafe}, which is not a plain file`);
  let manifest: Manifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(await readFile(join(into, 'manifest.json'), 'utf8')));
  } catch (err) {
    throw damaged(`its manifest.json does not read (${(err as Error).message.split('\n')[0]})`);
  }
  for (const [file, sum] of Object.entries(manifest.files)) {
    const actual = await sha256(join(into, file)).catch(() => 'missing');
    if (actual !== sum)
      throw damaged(`${file} ${actual === 'missing' ? 'is missing' : 'does not match its checksum'}`);
  }
  return manifest;
}

const cloudNameOf = (text: string): string | undefined => {
  try {
    const doc = parseYaml(text) as { name?: unknown } | null;
    return typeof doc?.name === 'string' ? doc.name : undefined;
  } catch {
    return undefined;
  }
};

export async function restore(o: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const staging = await mkdtemp(join(tmpdir(), 'podstack-restore-'));
  try {
    const manifest = await unpackBackup(o.input, staging);
    const name = o.engine?.name ?? 'podman';
    if (manifest.engine !== name)
      throw refuse(
        `${o.input} is a backup of a cloud on ${manifest.engine}, not on ${name}`,
        `Restore it with --engine ${manifest.engine}.`,
      );
    // Where the cloud file goes: a file already there must be of the same cloud.
    const fromBackup = await openProject({
      file: join(staging, 'cloud.yaml'),
      secretsFile: join(staging, 'secrets.yaml'),
      engine: name,
    });
    const target = { file: o.file ?? 'cloud.yaml', secretsFile: o.secretsFile };
    const paths = projectPaths(target);
    const existing = await readInputFile(paths.file);
    const there = existing ? cloudNameOf(existing.text) : undefined;
    if (existing && there !== manifest.cloud)
      throw refuse(
        `${o.input} is a backup of cloud ${manifest.cloud}, and ${paths.file} is ${there ? `cloud ${there}` : 'not a cloud file'}`,
        'Restore it with -f naming a cloud file of that cloud, or in another folder (it writes the cloud file there).',
      );
    const { engine } = await engineFor(fromBackup, o.engine);
    const data = dataOf(engine, 'restore');
    await refuseIfHere(engine, data, manifest, fromBackup.plan);

    let keptFile: string | undefined;
    const cloudText = await readFile(join(staging, 'cloud.yaml'), 'utf8');
    if (existing && existing.text !== cloudText) {
      keptFile = `${paths.file}.before-restore`;
      await writeFileAtomic(keptFile, existing.text, 0o644);
    }
    await writeFileAtomic(paths.file, cloudText, 0o644);
    await writeFileAtomic(paths.secretsFile, await readFile(join(staging, 'secrets.yaml')), 0o600);

    const project = await openProject({
      ...o,
      file: paths.file,
      secretsFile: paths.secretsFile,
      engine: name,
    });
    for (const c of manifest.claims) {
      o.report({
        type: 'step',
        message: `making claim ${c.claim} from the backup (${formatBytes(c.bytes)})`,
      });
      await data.importClaim(
        unitOf(project.plan, c.unit),
        c.claim,
        join(staging, 'claims', `${c.claim}.tar`),
      );
    }
    for (const [i, f] of manifest.folders.entries()) {
      o.report({
        type: 'step',
        message: `making node folder ${f.path} from the backup (${formatBytes(f.bytes)}: the disks of ${f.guests.length} guests)`,
      });
      await data.importFolder(unitOf(project.plan, f.unit), f.path, join(staging, 'folders', `${i}.tar`));
    }

    // MariaDB alone first, and the dumps into it: every Job of `up` then finds its database current.
    o.report({ type: 'step', message: 'starting MariaDB alone, to load the databases' });
    await engine.apply(closure(project.plan, MARIADB_UNIT), { report: o.report });
    await data.copyIn(MARIADB_UNIT, MARIADB_CONTAINER, join(staging, 'databases'), `${SNAPSHOT_DIR}/backup`);
    try {
      const loaded = await inMariadb(engine, [
        'load',
        SNAPSHOT_DIR,
        'backup',
        ...manifest.databases.map((d) => d.name),
      ]);
      o.report({ type: 'step', message: `loaded ${loaded.trim().split('\n').length} databases` });
    } finally {
      await inMariadb(engine, ['remove', SNAPSHOT_DIR, 'backup']);
    }

    const revisions = await putBackRevisions(engine, join(staging, 'revisions'), o.input);

    const result = await up({
      ...o,
      because: `restored from the backup of ${manifest.createdAt}`,
      file: paths.file,
      secretsFile: paths.secretsFile,
      ...(o.engine ? { engine: o.engine } : {}),
    });
    return {
      cloud: manifest.cloud,
      from: manifest.createdAt,
      seconds: (performance.now() - started) / 1000,
      databases: manifest.databases.map((d) => d.name),
      claims: manifest.claims.map((c) => c.claim),
      folders: manifest.folders.length,
      revisions,
      up: result,
      ...(keptFile ? { keptFile } : {}),
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A restore makes the cloud again: it refuses to go where the cloud is, or left data. */
async function refuseIfHere(engine: Engine, data: DataAccess, manifest: Manifest, plan: Plan): Promise<void> {
  const purge =
    'A restore makes the cloud again from the backup: run `podstack down --purge` first (it deletes the data), then restore.';
  if ((await engine.revisions().list()).length > 0)
    throw refuse(
      `cloud ${manifest.cloud} is here already (it has revisions in ${engine.revisions().where})`,
      purge,
    );
  for (const c of manifest.claims)
    if (await data.hasClaim(c.claim))
      throw refuse(`cloud ${manifest.cloud} has data here already (claim ${c.claim})`, purge);
  for (const f of manifest.folders)
    if (await data.hasFolder(unitOf(plan, f.unit), f.path))
      throw refuse(`cloud ${manifest.cloud} has data here already (node folder ${f.path})`, purge);
}

/** The backup's revisions, records and plans, into the engine's store; returns how many. */
async function putBackRevisions(engine: Engine, dir: string, input: string): Promise<number> {
  const store = engine.revisions();
  const stored = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.json')).sort();
  for (const f of stored) {
    const record = parseRecord(JSON.parse(await readFile(join(dir, f), 'utf8')));
    if (!record)
      throw refuse(`${input}: revisions/${f} is not a revision record`, 'Restore from another backup file.');
    const plan = await readFile(join(dir, f.replace(/\.json$/, '.plan.gz'))).then(
      unpackPlan,
      () => undefined,
    );
    await store.write(record, plan);
  }
  return stored.length;
}

/** `unit` and every unit it depends on, as a plan of their own. */
function closure(plan: Plan, unit: string): Plan {
  const byName = new Map(plan.units.map((u) => [u.name, u]));
  const keep = new Set<string>();
  const visit = (n: string) => {
    if (keep.has(n)) return;
    keep.add(n);
    for (const d of byName.get(n)?.dependsOn ?? []) visit(d);
  };
  visit(unit);
  return { ...plan, units: plan.units.filter((u) => keep.has(u.name)) };
}
