import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecResult } from '../src/engines/types.js';
import type { HistoryEntry } from '../src/lifecycle/revisions.js';
import {
  type CloudNode,
  checkImageBytes,
  checkServerBack,
  checkSsh,
  type OpenStack,
  sshOptions,
} from './_cloud-checks.js';
import { describeServer } from './_diagnose.js';

/** What the backup scenario needs of an engine's test: the CLI with its engine flags, and its data. */
export interface BackupHarness {
  readonly cloud: string;
  /** The cloud file, and the folder it and the backups are in. */
  readonly file: string;
  readonly dir: string;
  readonly openstack: OpenStack;
  readonly node: CloudNode;
  /** A server booted earlier, running, with its key and floating IP. */
  readonly guest: { readonly name: string; readonly fip: string; readonly key: string };
  /** The image uploaded earlier: its name in Glance and its file here. */
  readonly image: { readonly name: string; readonly file: string };
  /** The podstack CLI as a user runs it, with the engine's flags. */
  readonly podstack: (
    ...args: string[]
  ) => Promise<{ exitCode: number | undefined; stdout: string; stderr: string }>;
  /** A command in a running container of a unit (the engine's exec). */
  readonly exec: (unit: string, container: string, command: readonly string[]) => Promise<ExecResult>;
  /** Everything of the cloud's data this engine keeps (volumes; claims and node folders): a refused restore changes none of it. */
  readonly data: () => Promise<string[]>;
  /** Checks after `down` without --purge, which keeps the data: what else it left (nothing that runs). */
  readonly afterDown: () => Promise<void>;
  /** Checks after `down --purge`, beyond the data being gone. */
  readonly afterPurge?: () => Promise<void>;
}

/** OVN's northbound switches, routers and NAT rules, sorted: what Neutron made, as OVN holds it. */
async function ovnNorthbound(h: BackupHarness): Promise<Record<string, string[]>> {
  const list = async (table: string, columns: string) => {
    const r = await h.exec('ovn-central', 'ovn-central', [
      ...['ovn-nbctl', '--bare', '--format=csv', '--no-headings', `--columns=${columns}`, 'list', table],
    ]);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  return {
    switches: await list('Logical_Switch', 'name'),
    routers: await list('Logical_Router', 'name'),
    nat: await list('NAT', 'type,external_ip,logical_ip'),
  };
}

async function history(h: BackupHarness): Promise<HistoryEntry[]> {
  const r = await h.podstack('history', '-o', 'json');
  assert.equal(r.exitCode, 0, r.stderr);
  return (JSON.parse(r.stdout) as { revisions: HistoryEntry[] }).revisions;
}

/**
 * Backup while the cloud runs, `down` (the data stays), `down --purge` (it goes), restore, on either
 * engine: the project, the image's
 * bytes, an EC2 secret (the credential keys match the database), OVN's networks (Neutron's own
 * sync check finds nothing to repair), the history, and the running server with what it wrote on
 * its disk, on its floating IP, come back. A backup is never written over; a damaged backup,
 * another cloud's, and a restore onto a cloud that is there are refused, exit 2, nothing changed.
 * Returns what backup and restore printed, for the log.
 */
export async function backupPurgeRestore(h: BackupHarness): Promise<string> {
  // Bytes the guest wrote to its disk and flushed: the disk in the backup must hold them. The
  // test guest runs from its initramfs (its root is RAM), and its disk is a small FAT boot
  // volume that Nova grew to the flavor's 1 GB: 512 MiB in is outside it, and is the server's own.
  const written = `kept-by-the-backup-${Date.now()}`;
  const at = 'bs=512 skip=1048576 count=1';
  const write = await h.node.reach('ssh', [
    ...sshOptions(h.guest.key),
    `root@${h.guest.fip}`,
    `echo ${written} > /tmp/kept && dd if=/tmp/kept of=/dev/vda bs=512 seek=1048576 conv=notrunc && sync && dd if=/dev/vda ${at}`,
  ]);
  if (write.exitCode !== 0)
    assert.fail(
      `the server did not answer SSH before the backup (exit ${write.exitCode}): ${write.output.trim()}\n` +
        (await describeServer(h.openstack, h.node, h.guest.name)),
    );
  assert.ok(write.output.includes(written), write.output);
  const ovnBefore = await ovnNorthbound(h);
  await h.openstack('project', 'create', 'kept-by-the-backup');
  const ec2 = JSON.parse(await h.openstack('ec2', 'credentials', 'create', '-f', 'json')) as {
    access: string;
    secret: string;
  };
  const revisionsBefore = (await history(h)).length;
  const saved = join(h.dir, 'backups', 'cloud.tar.gz');
  const b = await h.podstack('backup', saved);
  assert.equal(b.exitCode, 0, b.stderr);
  assert.equal((await stat(saved)).mode & 0o777, 0o600);
  // A backup file is never written over.
  assert.equal((await h.podstack('backup', saved)).exitCode, 2);

  const refused = async (args: string[], why: RegExp) => {
    const before = await h.data();
    const r = await h.podstack(...args);
    assert.equal(r.exitCode, 2, r.stdout + r.stderr);
    assert.match(r.stderr, why);
    assert.deepEqual(await h.data(), before, `${args.join(' ')} changed the cloud's data`);
  };
  await refused(['restore', saved], new RegExp(`cloud ${h.cloud} is here already`));
  // `down` keeps the data, and runs nothing; `--purge` deletes it.
  const data = await h.data();
  const down = await h.podstack('down');
  assert.equal(down.exitCode, 0, down.stderr);
  assert.deepEqual(await h.data(), data, 'down without --purge changed the data');
  await h.afterDown();
  const purge = await h.podstack('down', '--purge');
  assert.equal(purge.exitCode, 0, purge.stderr);
  assert.deepEqual(await h.data(), [], 'down --purge left data');
  await h.afterPurge?.();
  const damaged = join(h.dir, 'backups', 'damaged.tar.gz');
  const bytes = await readFile(saved);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  await writeFile(damaged, bytes);
  await refused(['restore', damaged], /is not a podstack backup, or is damaged/);
  const other = join(h.dir, 'other');
  await mkdir(other, { recursive: true });
  await writeFile(join(other, 'cloud.yaml'), 'name: another-cloud\n');
  await refused(
    ['-f', join(other, 'cloud.yaml'), 'restore', saved],
    new RegExp(`is a backup of cloud ${h.cloud}, and .* is cloud another-cloud`),
  );

  const cloudFile = await readFile(h.file, 'utf8');
  await rm(h.file);
  const restoredAt = new Date();
  const started = performance.now();
  const r = await h.podstack('restore', saved, '--no-install');
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  const restoreSeconds = (performance.now() - started) / 1000;
  assert.equal(await readFile(h.file, 'utf8'), cloudFile);
  const projects = (await h.openstack('project', 'list', '-f', 'value', '-c', 'Name')).split('\n');
  assert.ok(projects.includes('kept-by-the-backup'), projects.join(' '));
  await checkImageBytes(h.openstack, h.dir, h.image.file, h.image.name);
  // The credential's blob, encrypted with the credential keys, decrypts with the restored ones.
  const shown = JSON.parse(await h.openstack('ec2', 'credentials', 'show', ec2.access, '-f', 'json')) as {
    secret: string;
  };
  assert.equal(shown.secret, ec2.secret);
  const after = await history(h);
  assert.ok(
    after.length >= revisionsBefore,
    `${after.length} revisions after the restore, ${revisionsBefore} before`,
  );
  assert.equal(after.at(-1)?.status, 'deployed');
  // OVN's databases came back with Neutron's: the same switches, routers and NAT rules, and
  // Neutron's own check of the two (log mode: it only reports) finds nothing missing either way.
  assert.deepEqual(await ovnNorthbound(h), ovnBefore);
  // The tool loads ML2 with a mechanism driver of its own, which needs QoS's extension driver
  // named (neutron-server's OVN driver brings its own): one more config file, in the container.
  const sync = await h.exec('neutron-api', 'neutron-api', [
    'sh',
    '-ec',
    'printf "[ml2]\\nextension_drivers = port_security,qos\\n" > /tmp/ovn-sync.ini; ' +
      'exec neutron-ovn-db-sync-util --config-file /etc/neutron/neutron.conf ' +
      '--config-file /etc/neutron/plugins/ml2/ml2_conf.ini --config-file /tmp/ovn-sync.ini ' +
      '--ovn-neutron_sync_mode log 2>&1',
  ]);
  assert.equal(sync.exitCode, 0, sync.stdout + sync.stderr);
  const repairs = sync.stdout.split('\n').filter((l) => /but not in|not found in|out of sync/i.test(l));
  assert.deepEqual(repairs, [], sync.stdout.slice(-3000));
  // The server that ran at the backup runs again from its disk, on the same floating IP.
  await checkServerBack(h.openstack, h.node, h.guest.name, restoredAt);
  await checkSsh(h.openstack, h.node, h.guest);
  const reachedAt = performance.now();
  const read = await h.node.reach('ssh', [
    ...sshOptions(h.guest.key),
    `root@${h.guest.fip}`,
    `dd if=/dev/vda ${at}`,
  ]);
  if (read.exitCode !== 0) {
    // Reached a moment ago, lost now: say whether the guest started again (its uptime against
    // the time since it answered) and what the cloud knew of it, as CI once saw this on Kubernetes.
    await new Promise((r) => setTimeout(r, 30_000));
    const again = await h.node.reach('ssh', [
      ...sshOptions(h.guest.key),
      `root@${h.guest.fip}`,
      'cat /proc/uptime',
    ]);
    assert.fail(
      `the restored server answered SSH, then not ${((performance.now() - reachedAt) / 1000).toFixed(0)} s ago: ` +
        `${read.output.trim()}\n30 s later: ${again.output.trim()} (uptime in seconds)\n` +
        (await describeServer(h.openstack, h.node, h.guest.name)),
    );
  }
  assert.ok(read.output.includes(written), `the server's disk lost what it wrote: ${read.output}`);
  return [
    ...b.stdout.trim().split('\n'),
    `${r.stdout.trim()} (${restoreSeconds.toFixed(1)} s as a process)`,
  ].join('\n    ');
}
