import { createWriteStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../_exec.js';
import { hostLock } from '../_lock.js';
import type { ImageRecipe } from '../catalog/types.js';
import { BuildError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { Podman } from '../podman/runner.js';
import { ROOTFS } from './recipes.js';

/** Held around image builds: two podstack processes on one host build an image once. */
export const BUILD_LOCK = '/run/lock/podstack-build.lock';

export interface BuildOptions {
  readonly podman: Podman;
  /** Images in build order, a wave's images independent of each other. */
  readonly waves: readonly (readonly ImageRecipe[])[];
  readonly refs: Readonly<Record<string, string>>;
  readonly imagesDir: string;
  readonly extraContext: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly suite: string;
  readonly mirror: string;
  /** Scratch space and build logs. */
  readonly workDir: string;
  readonly report: Reporter;
  /** Images built at once; apt downloads and unpacking share two cores well. */
  readonly concurrency?: number;
  /** The host-wide build lock (tests use their own). */
  readonly lockPath?: string;
}

export interface BuildResult {
  readonly built: readonly string[];
  readonly cached: readonly string[];
}

async function existingImages(podman: Podman): Promise<Set<string>> {
  const out = await podman.ok(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  return new Set(out.split('\n').filter(Boolean));
}

async function tail(file: string, lines = 25): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Runs a command with its output going to a log file; throws BuildError with the log's tail on failure. */
async function logged(
  image: string,
  log: string,
  file: string,
  args: string[],
  env: Record<string, string> = {},
) {
  const stream = createWriteStream(log, { flags: 'a' });
  await new Promise((resolve) => stream.once('open', resolve));
  const r = await exec(file, args, { env, output: stream });
  await new Promise((resolve) => stream.end(resolve));
  if (r.exitCode !== 0) {
    throw new BuildError(image, r.failure ?? `${file} exited with ${r.exitCode}`, await tail(log), log);
  }
}

/** debootstrap --variant=minbase, then `podman import`: no registry is needed for a base image. */
async function buildRootfs(o: BuildOptions, ref: string, log: string): Promise<void> {
  const dir = await mkdtemp(join(o.workDir, 'rootfs-'));
  try {
    await logged(ROOTFS, log, 'debootstrap', ['--variant=minbase', o.suite, dir, o.mirror]);
    await rm(join(dir, 'var/cache/apt/archives'), { recursive: true, force: true });
    await mkdir(join(dir, 'var/cache/apt/archives/partial'), { recursive: true });
    await logged(ROOTFS, log, 'sh', ['-c', 'tar -C "$1" -c . | podman import - "$2"', 'sh', dir, ref], {
      ...o.podman.env,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function buildImage(o: BuildOptions, recipe: ImageRecipe, ref: string, log: string): Promise<void> {
  const context = await mkdtemp(join(o.workDir, `${recipe.name}-`));
  try {
    await cp(join(o.imagesDir, recipe.name), context, { recursive: true });
    for (const [name, content] of Object.entries(o.extraContext[recipe.name] ?? {})) {
      await writeFile(join(context, name), content);
    }
    await logged(
      recipe.name,
      log,
      'podman',
      [
        ...o.podman.globalArgs,
        'build',
        // apt-get inside RUN steps needs the host's network (the builds' only outside access).
        '--network=host',
        '--pull=never',
        '--layers=false',
        '--build-arg',
        `PARENT=${o.refs[recipe.parent]}`,
        '--label',
        `podstack.dev/image=${recipe.name}`,
        '-t',
        ref,
        '-f',
        join(context, 'Containerfile'),
        context,
      ],
      { ...o.podman.env },
    );
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** The same inputs built under another prefix: the same image, so a new name is all it needs. */
function sameImage(have: ReadonlySet<string>, ref: string): string | undefined {
  const suffix = ref.slice(ref.lastIndexOf('/'));
  return [...have].find((h) => h.endsWith(suffix));
}

/** Builds whatever of the image graph does not exist yet, parents before children. */
export async function buildImages(o: BuildOptions): Promise<BuildResult> {
  await mkdir(join(o.workDir, 'logs'), { recursive: true });
  let have = await existingImages(o.podman);
  // Building waits for any other podstack building on this host (two clouds, or the Podman and
  // Kubernetes tests at once), then looks again: what that one built is not built twice.
  let release: (() => Promise<void>) | undefined;
  if (Object.values(o.refs).some((ref) => !have.has(ref) && !sameImage(have, ref))) {
    release = await hostLock(o.lockPath ?? BUILD_LOCK, {
      onWait: () =>
        o.report({
          type: 'step',
          message: 'another podstack on this host is building images: waiting for it',
        }),
    });
    have = await existingImages(o.podman);
  }
  try {
    return await buildMissing(o, have);
  } finally {
    await release?.();
  }
}

async function buildMissing(o: BuildOptions, have: ReadonlySet<string>): Promise<BuildResult> {
  const built: string[] = [];
  const cached: string[] = [];
  const one = async (name: string, build: (ref: string, log: string) => Promise<void>) => {
    const ref = o.refs[name]!;
    if (have.has(ref)) {
      cached.push(name);
      o.report({ type: 'image', image: name, state: 'cached', detail: ref });
      return;
    }
    const same = sameImage(have, ref);
    if (same) {
      await o.podman.ok(['tag', same, ref]);
      cached.push(name);
      o.report({ type: 'image', image: name, state: 'cached', detail: `${ref} (tagged from ${same})` });
      return;
    }
    const log = join(o.workDir, 'logs', `${name}.log`);
    await writeFile(log, `# podstack build of ${ref}\n`);
    const started = Date.now();
    o.report({ type: 'image', image: name, state: 'building', detail: ref });
    try {
      await build(ref, log);
    } catch (err) {
      o.report({ type: 'image', image: name, state: 'failed', seconds: (Date.now() - started) / 1000 });
      throw err;
    }
    built.push(name);
    o.report({
      type: 'image',
      image: name,
      state: 'built',
      seconds: (Date.now() - started) / 1000,
      detail: ref,
    });
  };
  await one(ROOTFS, (ref, log) => buildRootfs(o, ref, log));
  const limit = Math.max(1, o.concurrency ?? 2);
  for (const wave of o.waves) {
    const queue = [...wave];
    const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const recipe = r;
        await one(recipe.name, (ref, log) => buildImage(o, recipe, ref, log));
      }
    });
    await Promise.all(workers);
  }
  return { built, cached };
}
