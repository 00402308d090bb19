import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-fs';
import { PodstackError } from '../../src/errors.js';
import { copiedClaims, guestDiskFolders, unpackBackup } from '../../src/lifecycle/backup.js';
import { planOf, servicesOf } from './_fixtures.js';

const dirs: string[] = [];
const tmp = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'podstack-backup-test-'));
  dirs.push(dir);
  return dir;
};
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** A backup as `podstack backup` writes one: files, a manifest with their sums, packed. */
async function backupFile(
  edit: (folder: string) => Promise<void> = async () => {},
  kind = 'podstack-backup',
) {
  const folder = await tmp();
  const files = { 'cloud.yaml': 'name: c\n', 'databases/keystone.sql.gz': 'dump' };
  for (const [f, text] of Object.entries(files)) {
    await mkdir(join(folder, f, '..'), { recursive: true });
    await writeFile(join(folder, f), text);
  }
  const manifest = {
    kind,
    format: 1,
    notice: 'holds secrets',
    cloud: 'c',
    engine: 'podman',
    podstack: '0.0.0',
    createdAt: '2026-12-06T00:00:00Z',
    databases: [{ name: 'keystone', bytes: 4, version: 'v1' }],
    claims: [],
    leftOut: [],
    files: Object.fromEntries(Object.entries(files).map(([f, text]) => [f, sha(text)])),
  };
  await writeFile(join(folder, 'manifest.json'), JSON.stringify(manifest));
  await edit(folder);
  const out = join(await tmp(), 'backup.tar.gz');
  await pipeline(pack(folder), createGzip(), createWriteStream(out));
  return out;
}

async function refused(file: string, why: RegExp) {
  await assert.rejects(unpackBackup(file, await tmp()), (err: unknown) => {
    assert.ok(err instanceof PodstackError, String(err));
    assert.equal(err.exitCode, 2);
    assert.match(err.message, why);
    return true;
  });
}

describe('backup files: what restore accepts', () => {
  it('a backup whose files match its manifest unpacks', async () => {
    const into = await tmp();
    const m = await unpackBackup(await backupFile(), into);
    assert.equal(m.cloud, 'c');
    assert.equal(await readFile(join(into, 'databases/keystone.sql.gz'), 'utf8'), 'dump');
  });

  it('a damaged or foreign file is refused, naming why', async () => {
    await refused(
      await backupFile((f) => writeFile(join(f, 'databases/keystone.sql.gz'), 'dumq')),
      /damaged: databases\/keystone\.sql\.gz does not match its checksum/,
    );
    await refused(await backupFile((f) => rm(join(f, 'cloud.yaml'))), /damaged: cloud\.yaml is missing/);
    await refused(await backupFile(async () => {}, 'something-else'), /its manifest\.json does not read/);
    const notGzip = join(await tmp(), 'x.tar.gz');
    await writeFile(notGzip, 'not a backup at all');
    await refused(notGzip, /is not a podstack backup, or is damaged/);
    await refused(join(await tmp(), 'nothing.tar.gz'), /does not exist/);
  });

  it('an entry that is not a plain file or folder (a link out of the folder) is refused', async () => {
    await refused(
      await backupFile((f) => symlink('/etc/passwd', join(f, 'link'))),
      /it holds link, which is not a plain file/,
    );
  });

  it('a backup of an earlier podstack, without node folders, reads as having none', async () => {
    const m = await unpackBackup(await backupFile(), await tmp());
    assert.deepEqual(m.folders, []);
  });

  it("the guests' disks are the node pod's instances folder, copied with libvirt's guests paused", () => {
    const yaml = 'name: c\n';
    const folders = guestDiskFolders({ services: servicesOf(yaml), plan: planOf(yaml) });
    assert.deepEqual(
      folders.map((f) => [f.unit, f.container, f.path, f.pause[0], f.pause.at(-1)]),
      [['nova-compute', 'libvirt', '/var/lib/podstack/c/nova-instances', 'virsh', 'suspend']],
    );
    const noNova =
      'name: c\nservices:\n  nova:\n    enabled: false\n  neutron:\n    enabled: false\n  starter:\n    enabled: false\n';
    assert.deepEqual(guestDiskFolders({ services: servicesOf(noNova), plan: planOf(noNova) }), []);
  });

  it("a backup copies Keystone's keys and Glance's images; MariaDB's data goes as dumps", () => {
    assert.deepEqual(
      copiedClaims(planOf(''))
        .map((c) => `${c.unit}:${c.claim}`)
        .sort(),
      [
        'glance-api:glance-images',
        'keystone-keys:keystone-credential-keys',
        'keystone-keys:keystone-fernet-keys',
      ],
    );
  });
});
