import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { exec } from '../src/_exec.js';
import { renderIni } from '../src/config/ini.js';
import type { OpenStack } from './_cloud-checks.js';

/**
 * Tempest as operators run it: Debian's `tempest` package, from the host, against the cloud's
 * published Keystone, with a tempest.conf written from what the cloud has (the starter's image,
 * flavors and external network). Dynamic credentials: each test class makes its own project and
 * user and deletes them. Guests are not reached over SSH (`run_validation = false`): a floating
 * IP has no route of the cloud's own on the host yet, so nothing may be sent to one from here.
 */
export const TEMPEST_PACKAGES = ['tempest'] as const;

/** Tempest's tests of one API (`volume`, `compute`, ...) that are tagged smoke. */
export const smokeOf = (...apis: string[]) => `^tempest\\.api\\.(${apis.join('|')})\\..*\\[.*\\bsmoke\\b`;

export interface TempestOptions {
  /** Folder for Tempest's workspace (removed before and kept after, with its logs). */
  readonly dir: string;
  /** The real openstack CLI, as the cloud's admin. */
  readonly openstack: OpenStack;
  readonly authUrl: string;
  readonly adminPassword: string;
  readonly region?: string;
  /** The services the cloud runs beyond Keystone, Glance, Nova and Neutron. */
  readonly cinder: boolean;
  /** Which tests: a `tempest run --regex`. */
  readonly regex: string;
  /**
   * Tempest reaches the servers it boots over SSH on floating IPs, from this host (Podman's host
   * link), as operators run it. The caller checks first that the floating IPs' route is the cloud's.
   */
  readonly validation?: boolean;
  /** Tests left out (`tempest run --exclude-regex`), each for a reason the caller gives. */
  readonly exclude?: string;
}

export interface TempestResult {
  readonly passed: readonly string[];
  readonly failed: readonly string[];
  readonly skipped: readonly string[];
  readonly seconds: number;
  /** Tempest's own output, for the failure message. */
  readonly output: string;
}

const idOf = async (openstack: OpenStack, ...args: string[]) =>
  (await openstack(...args, '-f', 'value', '-c', 'id')).trim();

/** Writes a workspace and its tempest.conf (mode 0600: it holds the admin password), and runs it. */
export async function runTempest(o: TempestOptions): Promise<TempestResult> {
  const workspace = join(o.dir, 'tempest');
  // Tempest registers each workspace by name in ~/.tempest: one of the test's own, removed after.
  const name = `podstack-${basename(o.dir)}`;
  await rm(workspace, { recursive: true, force: true });
  await exec('tempest', ['workspace', 'remove', '--name', name]);
  const init = await exec('tempest', ['init', '--name', name, workspace]);
  assert.equal(init.exitCode, 0, `tempest init: ${init.output}`);
  try {
    return await run(o, workspace);
  } finally {
    await exec('tempest', ['workspace', 'remove', '--name', name]);
  }
}

async function run(o: TempestOptions, workspace: string): Promise<TempestResult> {
  const image = await idOf(o.openstack, 'image', 'show', 'podstack-guest');
  const [flavor, flavorAlt] = [
    await idOf(o.openstack, 'flavor', 'show', 'm1.nano'),
    await idOf(o.openstack, 'flavor', 'show', 'm1.micro'),
  ];
  const publicNet = await idOf(o.openstack, 'network', 'show', 'public');
  // Neutron's extensions as the cloud has them (devstack writes them too): Tempest's default, all,
  // expects those of the agents ML2/OVN replaces (l3_agent_scheduler, dhcp_agent_scheduler, dvr).
  const extensions = (await o.openstack('extension', 'list', '--network', '-f', 'value', '-c', 'Alias'))
    .split('\n')
    .filter(Boolean);
  const conf = renderIni('tempest.conf', {
    DEFAULT: { log_dir: join(workspace, 'logs'), log_file: 'tempest.log' },
    auth: {
      use_dynamic_credentials: true,
      admin_username: 'admin',
      admin_password: o.adminPassword,
      admin_project_name: 'admin',
      admin_domain_name: 'Default',
    },
    identity: { uri_v3: o.authUrl, auth_version: 'v3', region: o.region ?? 'RegionOne' },
    'identity-feature-enabled': { api_v2: false },
    compute: {
      image_ref: image,
      image_ref_alt: image,
      flavor_ref: flavor,
      flavor_ref_alt: flavorAlt,
      build_timeout: 300,
    },
    // podstack's Nova has no config drive (metadata comes from the metadata service): a server
    // asked with one fails to build.
    'compute-feature-enabled': { config_drive: false },
    network: { public_network_id: publicNet, floating_network_name: 'public' },
    'network-feature-enabled': { api_extensions: extensions },
    validation: o.validation
      ? {
          run_validation: true,
          connect_method: 'floating',
          auth_method: 'keypair',
          image_ssh_user: 'root',
          ip_version_for_ssh: 4,
          network_for_ssh: 'private',
          ping_timeout: 120,
          ssh_timeout: 196,
        }
      : { run_validation: false },
    service_available: {
      cinder: o.cinder,
      glance: true,
      nova: true,
      neutron: true,
      swift: false,
      horizon: false,
    },
    volume: {
      catalog_type: 'volumev3',
      storage_protocol: 'ceph',
      vendor_name: 'Open Source',
      volume_size: 1,
      build_timeout: 300,
    },
    // podstack runs no cinder-backup.
    'volume-feature-enabled': { backup: false },
  });
  await mkdir(join(workspace, 'etc'), { recursive: true });
  await writeFile(join(workspace, 'etc', 'tempest.conf'), conf, { mode: 0o600 });
  const started = Date.now();
  const exclude = o.exclude ? ['--exclude-regex', o.exclude] : [];
  const r = await exec('tempest', ['run', '--regex', o.regex, ...exclude, '--concurrency', '1'], {
    cwd: workspace,
  });
  const seconds = (Date.now() - started) / 1000;
  // `{0} tempest.api.volume.test_versions.VersionsTest.test_list_versions [0.09s] ... ok`
  const results = [...r.stdout.matchAll(/^\{\d+\} (\S+)(?: \[[\d.]+s\])? \.\.\. (ok|FAILED|SKIPPED)/gm)];
  const named = (status: string) => results.filter((m) => m[2] === status).map((m) => m[1]!);
  return {
    passed: named('ok'),
    failed: named('FAILED'),
    skipped: named('SKIPPED'),
    seconds,
    output: r.output,
  };
}
