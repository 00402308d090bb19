import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InMon } from './_ceph.js';
import type { OpenStack } from './_cloud-checks.js';
import { until } from './_cloud-checks.js';

/**
 * Cinder on Ceph with the real openstack CLI: volumes made empty, from a snapshot and from an
 * image (whose bytes are then read from Ceph itself), the space freed in Ceph when they go, and
 * a volume too big for the pool refused with Cinder's own message while the cloud stays healthy.
 */

type Row = Record<string, string>;

async function volumeStatus(openstack: OpenStack, name: string, want: string): Promise<void> {
  await until(`volume ${name} ${want}`, 120, 1000, async () => {
    const status = (await openstack('volume', 'show', name, '-f', 'value', '-c', 'status')).trim();
    if (status === want) return undefined;
    if (status === 'error' && want !== 'error') assert.fail(`volume ${name} went to error`);
    return status;
  });
}

/** The volumes pool's images, as a client of it (made here, its key in a file in the monitor's container). */
async function rbdList(inMon: InMon): Promise<string[]> {
  const r = await inMon([
    'sh',
    '-c',
    'ceph --connect-timeout 30 -n mon. -k /var/lib/ceph/mon/ceph-a/keyring auth get-or-create client.e2e-list ' +
      "mon 'profile rbd' osd 'profile rbd-read-only pool=volumes' -o /tmp/list.keyring >/dev/null && " +
      'rbd --id e2e-list --keyring /tmp/list.keyring ls volumes',
  ]);
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  // Cinder's alone (volume-<id>): the pool may hold the Ceph test's own image.
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('volume-'))
    .sort();
}

/** md5 of the first `bytes` of a volume's RBD image, read from Ceph. */
async function rbdHead(inMon: InMon, id: string, bytes: number): Promise<string> {
  const r = await inMon([
    'sh',
    '-c',
    `rm -f /tmp/vol && rbd --id e2e-list --keyring /tmp/list.keyring export volumes/volume-${id} /tmp/vol >/dev/null 2>&1 && head -c ${bytes} /tmp/vol | md5sum && rm -f /tmp/vol`,
  ]);
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  return r.stdout.split(' ')[0]!;
}

export async function checkVolumes(openstack: OpenStack, inMon: InMon, dir: string): Promise<void> {
  const services = JSON.parse(await openstack('volume', 'service', 'list', '-f', 'json')) as Row[];
  assert.deepEqual(services.map((s) => `${s.Binary} ${s.Host} ${s.State}`).sort(), [
    'cinder-scheduler podstack up',
    'cinder-volume podstack@ceph up',
  ]);

  const started = Date.now();
  const v1 = (await openstack('volume', 'create', '--size', '1', 'v1', '-f', 'value', '-c', 'id')).trim();
  await volumeStatus(openstack, 'v1', 'available');
  console.log(`    volume create --size 1 until available: ${((Date.now() - started) / 1000).toFixed(1)}s`);
  assert.deepEqual(await rbdList(inMon), [`volume-${v1}`]);

  await openstack('volume', 'snapshot', 'create', '--volume', 'v1', 's1');
  await until('snapshot s1 available', 120, 1000, async () => {
    const s = (await openstack('volume', 'snapshot', 'show', 's1', '-f', 'value', '-c', 'status')).trim();
    return s === 'available' ? undefined : s;
  });
  await openstack('volume', 'create', '--snapshot', 's1', 'from-snapshot');
  await volumeStatus(openstack, 'from-snapshot', 'available');

  // An image of random bytes: the volume made from it must hold exactly those (a qemu-img
  // convert through cinder-rootwrap, then an import into Ceph).
  const bytes = randomBytes(4 * 1024 * 1024);
  const raw = join(dir, 'random.raw');
  await writeFile(raw, bytes);
  await openstack(
    'image',
    'create',
    '--disk-format',
    'raw',
    '--container-format',
    'bare',
    '--file',
    raw,
    'random',
  );
  const fromImage = (
    await openstack(
      'volume',
      'create',
      '--image',
      'random',
      '--size',
      '1',
      'from-image',
      '-f',
      'value',
      '-c',
      'id',
    )
  ).trim();
  await volumeStatus(openstack, 'from-image', 'available');
  assert.equal(
    await rbdHead(inMon, fromImage, bytes.length),
    createHash('md5').update(bytes).digest('hex'),
    "the volume made from the image does not hold the image's bytes",
  );

  // Too big for the pool (4 GiB, thin, over-subscribed 20 times): Cinder says so, nothing breaks.
  await openstack('volume', 'create', '--size', '500', 'too-big');
  await volumeStatus(openstack, 'too-big', 'error');
  const messages = await openstack(
    '--os-volume-api-version',
    '3.3',
    'volume',
    'message',
    'list',
    '-f',
    'value',
    '-c',
    'User Message',
  );
  assert.match(messages, /Could not find any available weighted backend/);

  await openstack('volume', 'delete', 'too-big', 'from-image', 'from-snapshot');
  await until('from-snapshot gone', 60, 1000, async () => {
    const left = (await openstack('volume', 'list', '-f', 'value', '-c', 'Name')).split('\n');
    return left.includes('from-snapshot') ? 'still there' : undefined;
  });
  await openstack('volume', 'snapshot', 'delete', 's1');
  await until('s1 gone', 60, 1000, async () =>
    (await openstack('volume', 'snapshot', 'list', '-f', 'value')).trim() === '' ? undefined : 'still there',
  );
  await openstack('volume', 'delete', 'v1');
  await openstack('image', 'delete', 'random');
  await until('every volume gone from Cinder and from Ceph', 60, 1000, async () => {
    const left = (await openstack('volume', 'list', '-f', 'value')).trim();
    const inCeph = await rbdList(inMon);
    return left === '' && inCeph.length === 0 ? undefined : `${left} | ${inCeph.join(' ')}`;
  });
  const after = JSON.parse(await openstack('volume', 'service', 'list', '-f', 'json')) as Row[];
  assert.ok(
    after.every((s) => s.State === 'up'),
    JSON.stringify(after),
  );
}
