import { exec } from '../_exec.js';
import { HostError } from '../errors.js';
import type { Reporter } from '../events.js';

/**
 * The Debian packages podstack needs on the host. `podstack up` installs the
 * missing ones when it runs as root (the README's first command must work on
 * a fresh Debian 12 machine); otherwise it says exactly what to install.
 */
export const HOST_PACKAGES = [
  'podman',
  // Podman's default runtime on Debian 12 is crun, which fails on hybrid cgroup hosts; runc works everywhere.
  'runc',
  // Pods' infra containers are built locally from catatonit: there is no registry to pull a pause image from.
  'catatonit',
  'debootstrap',
  'containernetworking-plugins',
  // Name resolution between pods on the CNI network backend (Podman 4.3 on Debian 12).
  'golang-github-containernetworking-plugin-dnsname',
  'dnsmasq-base',
  // The host's link to the external network: a veth pair, the rules that fence it, and (as a
  // port of network.externalBridge) its checksum offload turned off.
  'iptables',
  'iproute2',
  'ethtool',
  'uidmap',
] as const;

/** Held around every apt-get podstack runs, so two of its own never meet apt's locks. */
const APT_LOCK = '/run/lock/podstack-apt.lock';

/** Which of `packages` dpkg does not have installed. */
export async function missingPackages(packages: readonly string[]): Promise<string[]> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own field syntax, not a template
  const r = await exec('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\n', ...packages]);
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      .map((l) => l.split(' ')[0]),
  );
  return packages.filter((p) => !installed.has(p));
}

export async function ensurePackages(packages: readonly string[], report: Reporter): Promise<string[]> {
  const missing = await missingPackages(packages);
  if (missing.length === 0) return [];
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new HostError(`missing host packages: ${missing.join(', ')}`, {
      hint: `Install them as root (\`sudo ${command}\`) or run podstack as root.`,
    });
  }
  report({ type: 'step', message: `installing host packages: ${missing.join(' ')}` });
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // Another apt run (unattended upgrades, a second podstack) holds the lock for a while: wait
  // for it rather than fail. DPkg::Lock::Timeout covers dpkg's lock only, not the lists lock
  // that `apt-get update` takes, so podstack's own apt runs also queue on a lock of their own
  // (the test suite installs from two processes at once: a fresh machine failed on it).
  const apt = (args: string[]) =>
    exec('flock', ['-w', '900', APT_LOCK, 'apt-get', '-o', 'DPkg::Lock::Timeout=300', ...args], { env });
  const update = await apt(['update']);
  if (update.exitCode !== 0) {
    throw new HostError(`apt-get update failed:\n${update.output.split('\n').slice(-10).join('\n')}`);
  }
  const install = await apt(['install', '-y', '--no-install-recommends', ...missing]);
  if (install.exitCode !== 0) {
    throw new HostError(`${command} failed:\n${install.output.split('\n').slice(-15).join('\n')}`);
  }
  return missing;
}
