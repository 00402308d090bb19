// Kubernetes server binaries for the test cluster, built once from Debian's own `kubernetes`
// source package (Debian 12 ships the source, not the binaries) and cached outside the checkout,
// keyed by version, so every later cluster start costs seconds, not the ~15 minutes of the build.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from '../../src/_exec.js';
import { ensurePackages } from '../../src/host/packages.js';
import { readHostSources } from '../../src/images/sources.js';

/** Progress lines for a person watching a long build or start. */
export type Report = (message: string) => void;

/** The version Debian 12's `kubernetes` source package builds. */
export const KUBERNETES_VERSION = '1.20.2';
export const SERVER_BINARIES = [
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
] as const;

/** Debian packages the build and the running cluster need. */
export const CLUSTER_PACKAGES = [
  'golang-go',
  'rsync',
  'dpkg-dev',
  'gcc',
  'libc6-dev',
  'etcd-server',
  'containerd',
  'runc',
  'containernetworking-plugins',
  'docker-registry',
  'dnsmasq-base',
  'iptables',
  'openssl',
  'podman',
] as const;

export function binaryCache(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'podstack', 'kubernetes', KUBERNETES_VERSION);
}

async function run(
  report: Report,
  title: string,
  file: string,
  args: string[],
  cwd?: string,
  env?: Record<string, string>,
) {
  const r = await exec(file, args, {
    ...(cwd ? { cwd } : {}),
    env: { ...(process.env as Record<string, string>), ...env },
  });
  if (r.exitCode !== 0) {
    const tail = r.output.split('\n').slice(-25).join('\n');
    throw new Error(`${title} failed (${r.failure ?? `exit ${r.exitCode}`}):\n${tail}`);
  }
  report(`${title}: done`);
  return r;
}

/**
 * The folder holding the server binaries (and pause.c, from which the cluster's pause image is
 * compiled), building them first when the cache does not have them. The build runs in a scratch
 * folder that is renamed into place only when complete, so an interrupted build never leaves a
 * cache that looks whole.
 */
export async function ensureKubernetesBinaries(report: Report): Promise<string> {
  const cache = binaryCache();
  const complete = () =>
    SERVER_BINARIES.every((b) => existsSync(join(cache, 'bin', b))) && existsSync(join(cache, 'pause.c'));
  if (complete()) return cache;
  // One build at a time: the test runner starts it in the background early, and the tests that
  // need a cluster then wait for that build instead of starting a second one.
  await mkdir(join(cache, '..'), { recursive: true });
  const lock = `${cache}.lock`;
  for (let waited = false; ; ) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      const holder = Number(await readFile(lock, 'utf8').catch(() => '0'));
      if (!holder || !isAlive(holder)) {
        await rm(lock, { force: true });
        continue;
      }
      if (!waited) report(`kubernetes: waiting for the build already running (pid ${holder})`);
      waited = true;
      await sleep(5000);
    }
  }
  try {
    if (complete()) return cache;
    return await build(cache, report);
  } finally {
    await rm(lock, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function build(cache: string, report: Report): Promise<string> {
  await ensurePackages(CLUSTER_PACKAGES, (e) => report(e.type === 'step' ? e.message : JSON.stringify(e)));
  const work = await mkdtemp(join(cache, '..', `build-${KUBERNETES_VERSION}-`));
  try {
    // deb-src for the host's own Debian mirror, in a private apt configuration: the host's apt
    // setup is never edited.
    const sources = await readHostSources();
    const mirror = sources.find((s) => s.suites.includes('bookworm') && s.uris.length > 0)?.uris[0];
    if (!mirror)
      throw new Error(
        'no Debian bookworm mirror in this host apt sources: cannot fetch the kubernetes source',
      );
    const apt = join(work, 'apt');
    await mkdir(join(apt, 'lists', 'partial'), { recursive: true });
    await mkdir(join(apt, 'cache', 'archives', 'partial'), { recursive: true });
    await writeFile(
      join(apt, 'sources.list'),
      `deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} bookworm main\n`,
    );
    const aptOptions = [
      '-o', `Dir::Etc::SourceList=${join(apt, 'sources.list')}`,
      '-o', 'Dir::Etc::SourceParts=/nonexistent',
      '-o', `Dir::State::Lists=${join(apt, 'lists')}`,
      '-o', `Dir::Cache=${join(apt, 'cache')}`,
    ]; // biome-ignore format: option pairs read better one per line
    report('kubernetes: fetching the Debian source package');
    await run(report, 'apt-get update (deb-src)', 'apt-get', [...aptOptions, 'update']);
    await run(
      report,
      'apt-get source kubernetes',
      'apt-get',
      [...aptOptions, 'source', '--download-only', 'kubernetes'],
      work,
    );
    const dsc = (await readdir(work)).find((f) => f.startsWith('kubernetes_') && f.endsWith('.dsc'));
    if (!dsc) throw new Error('apt-get source kubernetes left no .dsc file');
    await run(report, 'dpkg-source -x', 'dpkg-source', ['-x', dsc, 'src'], work);
    report('kubernetes: building the server binaries (about 15 minutes on 2 cores, once)');
    const started = Date.now();
    // The Go build cache lives in the scratch folder: the binaries are what is kept.
    await run(
      report,
      'make',
      'make',
      [`WHAT=${SERVER_BINARIES.map((b) => `cmd/${b}`).join(' ')}`],
      join(work, 'src'),
      {
        GOCACHE: join(work, 'go-build'),
      },
    );
    report(`kubernetes: built in ${Math.round((Date.now() - started) / 1000)} s`);

    const out = join(work, 'result');
    await mkdir(join(out, 'bin'), { recursive: true });
    for (const b of SERVER_BINARIES) {
      await rename(join(work, 'src', '_output', 'local', 'bin', 'linux', 'amd64', b), join(out, 'bin', b));
    }
    await rename(join(work, 'src', 'build', 'pause', 'linux', 'pause.c'), join(out, 'pause.c'));
    await rm(cache, { recursive: true, force: true });
    await rename(out, cache);
    return cache;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
