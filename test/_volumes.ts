import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InMon } from './_ceph.js';
import type { CloudNode, OpenStack } from './_cloud-checks.js';
import { checkSsh, deleteServer, sshOptions, until } from './_cloud-checks.js';

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

/** A guest's block device by name: its node from sysfs when the guest's /dev has none yet. */
const device = (name: string) =>
  `test -b /dev/${name} || mknod /dev/${name} b $(tr : ' ' < /sys/block/${name}/dev)`;

/**
 * Volumes as a guest uses them, with the real CLI: a volume attached to a running server (`a`,
 * booted by an earlier check, its key pair `a.keyName`) is a new disk in the guest, which makes a
 * file system on it and writes a file; detached and attached to a second server, the file is
 * there. The second server boots from a volume made
 * from the guest image; what it writes on that volume is there again for a third server booted
 * from the same volume after the second is deleted. (The guest's root is its initramfs, so that
 * write goes to the boot volume raw, far past the boot files.)
 */
export async function checkGuestVolumes(
  openstack: OpenStack,
  node: CloudNode,
  a: { name: string; fip: string; key: string; keyName: string },
): Promise<void> {
  const made: { servers: string[]; fips: string[]; volumes: string[] } = {
    servers: [],
    fips: [],
    volumes: [],
  };
  const mark = randomBytes(8).toString('hex');
  try {
    const run = (fip: string, script: string) =>
      node.reach('ssh', [...sshOptions(a.key), `root@${fip}`, script]);
    const ssh = async (fip: string, script: string) => {
      const r = await run(fip, script);
      assert.equal(r.exitCode, 0, `ssh ${fip} ${script}:\n${r.output}`);
      return r.output;
    };
    const seesDisk = (fip: string, disk: string) =>
      until(`the guest at ${fip} sees ${disk}`, 60, 1000, async () => {
        const r = await run(fip, 'cat /proc/partitions');
        return r.exitCode === 0 && new RegExp(`\\s${disk}$`, 'm').test(r.output)
          ? undefined
          : r.output.slice(-200);
      });

    await openstack('volume', 'create', '--size', '1', 'data');
    made.volumes.push('data');
    await volumeStatus(openstack, 'data', 'available');
    const attaching = Date.now();
    await openstack('server', 'add', 'volume', a.name, 'data');
    await seesDisk(a.fip, 'vdb');
    await volumeStatus(openstack, 'data', 'in-use');
    console.log(
      `    server add volume until the guest sees vdb: ${((Date.now() - attaching) / 1000).toFixed(1)}s`,
    );
    await ssh(
      a.fip,
      `${device('vdb')} && mke2fs -q /dev/vdb && mkdir -p /mnt && mount -t ext2 /dev/vdb /mnt && ` +
        `echo ${mark} > /mnt/marker && umount /mnt && sync`,
    );
    await openstack('server', 'remove', 'volume', a.name, 'data');
    await volumeStatus(openstack, 'data', 'available');

    // The second server, booted from a volume of the guest image.
    await openstack('volume', 'create', '--image', 'podstack-guest', '--size', '1', 'boot');
    made.volumes.push('boot');
    await volumeStatus(openstack, 'boot', 'available');
    const fromVolume = async (name: string) => {
      made.servers.push(name);
      await openstack(
        'server',
        'create',
        '--volume',
        'boot',
        '--flavor',
        'm1.nano',
        '--network',
        'private',
        '--key-name',
        a.keyName,
        '--wait',
        name,
      );
      const fip = (
        await openstack('floating', 'ip', 'create', 'public', '-f', 'value', '-c', 'floating_ip_address')
      ).trim();
      made.fips.push(fip);
      await openstack('server', 'add', 'floating', 'ip', name, fip);
      await checkSsh(openstack, node, { fip, key: a.key, name });
      return fip;
    };
    const b = await fromVolume('vol-b');
    assert.match(await ssh(b, 'cat /proc/partitions'), /\svda$/m);
    await openstack('server', 'add', 'volume', 'vol-b', 'data');
    await seesDisk(b, 'vdb');
    const read = await ssh(
      b,
      `${device('vdb')} && mkdir -p /mnt && mount -t ext2 /dev/vdb /mnt && cat /mnt/marker && umount /mnt`,
    );
    assert.equal(read.trim().split('\n').pop(), mark, 'the file written on the volume by the first server');
    // On the boot volume, 512 MiB in: past the boot files (the image is a few MiB).
    await ssh(b, `${device('vda')} && echo ${mark} | dd of=/dev/vda bs=1M seek=512 conv=fsync 2>/dev/null`);
    await openstack('server', 'remove', 'volume', 'vol-b', 'data');
    await volumeStatus(openstack, 'data', 'available');
    await deleteServer(openstack, 'vol-b');
    made.servers.splice(made.servers.indexOf('vol-b'), 1);
    await volumeStatus(openstack, 'boot', 'available');

    const c = await fromVolume('vol-c');
    const kept = await ssh(
      c,
      `${device('vda')} && dd if=/dev/vda bs=1M skip=512 count=1 2>/dev/null | head -c 16`,
    );
    assert.equal(kept.trim().split('\n').pop(), mark, 'what the deleted server wrote on its boot volume');
  } finally {
    for (const name of made.servers) await deleteServer(openstack, name).catch(() => undefined);
    for (const fip of made.fips) await openstack('floating', 'ip', 'delete', fip).catch(() => undefined);
    for (const name of made.volumes) {
      await until(`volume ${name} detached`, 60, 1000, async () => {
        const status = (await openstack('volume', 'show', name, '-f', 'value', '-c', 'status')).trim();
        return status === 'in-use' || status.endsWith('ing') ? status : undefined;
      }).catch(() => undefined);
      await openstack('volume', 'delete', name).catch(() => undefined);
    }
  }
}
