import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodstackError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { Podman } from '../podman/runner.js';
import { ROOTFS } from './recipes.js';

export interface PushOptions {
  readonly podman: Podman;
  /** image name -> reference; the references name the registry (images.prefix). */
  readonly refs: Readonly<Record<string, string>>;
  /** false for a plain-http registry (images.tlsVerify). */
  readonly tlsVerify: boolean;
  /** How layers are compressed on the way (images.compression). */
  readonly compression: 'zstd' | 'gzip';
  /** image name -> its parent's name: a child is pushed once its parent is in the registry. */
  readonly parents?: Readonly<Record<string, string>>;
  /**
   * What earlier pushes left in the registry (reference -> record), the image ID each reference
   * names here now (image name -> ID), and how to ask the registry for a manifest's digest: an
   * image whose ID was pushed under its reference and whose manifest is still the one that push
   * wrote is not pushed again. Without them every image is pushed.
   */
  readonly pushed?: Readonly<Record<string, PushRecord>>;
  readonly ids?: Readonly<Record<string, string>>;
  readonly digestOf?: (ref: string) => Promise<string | undefined>;
  readonly report: Reporter;
}

/** One push as the registry took it: the local image ID pushed, and the manifest digest it got. */
export interface PushRecord {
  readonly id: string;
  readonly digest: string;
}

/**
 * Pushes the cloud's images to the registry their names point at, so a
 * Kubernetes cluster can pull them. Layers the registry has are not sent again,
 * so pushing an unchanged set is quick. The rootfs is only ever a parent, never run.
 */
export async function pushImages(
  o: PushOptions,
): Promise<{ refs: string[]; records: Record<string, PushRecord> }> {
  // Each image once its parent is pushed: a push compresses every layer the registry lacks, so
  // fourteen images pushed at once into an empty registry compressed the shared base layers
  // fourteen times over (on 2 cores, 55 s against 48 s parents first, and 110 s in a cold up).
  // Once the parent is there, its layers are a round trip each.
  const entries = Object.entries(o.refs).filter(([name]) => name !== ROOTFS);
  const records: Record<string, PushRecord> = {};
  const work = await mkdtemp(join(tmpdir(), 'podstack-push-'));
  const pushed = new Map<string, Promise<void>>();
  const push = (name: string, ref: string): Promise<void> => {
    let p = pushed.get(name);
    if (!p) {
      const parent = o.parents?.[name];
      const parentRef = parent !== undefined ? o.refs[parent] : undefined;
      const before =
        parent !== undefined && parentRef !== undefined && parent !== ROOTFS
          ? push(parent, parentRef)
          : undefined;
      p = (before ?? Promise.resolve()).then(async () => {
        const record = await pushIfNeeded(o, name, ref, join(work, name));
        if (record) records[ref] = record;
      });
      pushed.set(name, p);
    }
    return p;
  };
  try {
    await Promise.all(entries.map(([name, ref]) => push(name, ref)));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { refs: entries.map(([, ref]) => ref), records };
}

/**
 * Pushes one image unless the registry has it as an earlier push left it. Skipping is what makes
 * an `up` with nothing changed quick: a push of an unchanged image is still a podman process and a
 * round trip per layer (about a second for the default cloud's fourteen), one HEAD is not.
 */
async function pushIfNeeded(
  o: PushOptions,
  name: string,
  ref: string,
  digestFile: string,
): Promise<PushRecord | undefined> {
  const id = o.ids?.[name];
  const before = o.pushed?.[ref];
  if (id !== undefined && before?.id === id && o.digestOf && (await o.digestOf(ref)) === before.digest) {
    o.report({ type: 'image', image: name, state: 'in registry', detail: ref });
    return before;
  }
  await pushOne(o, name, ref, digestFile);
  const digest = (await readFile(digestFile, 'utf8').catch(() => '')).trim();
  return id !== undefined && digest ? { id, digest } : undefined;
}

async function pushOne(o: PushOptions, name: string, ref: string, digestFile: string): Promise<void> {
  const started = Date.now();
  o.report({ type: 'image', image: name, state: 'pushing', detail: ref });
  // Pushing compresses every layer the registry lacks, and the nodes unpack each one: with gzip
  // that was most of the 91 s the default cloud's 14 images took to reach the test cluster.
  const r = await o.podman.run([
    'push',
    '--quiet',
    `--tls-verify=${o.tlsVerify}`,
    `--compression-format=${o.compression}`,
    `--digestfile=${digestFile}`,
    ref,
  ]);
  if (r.exitCode !== 0) {
    const why = r.stderr.trim().split('\n').slice(-5).join('\n');
    throw new PodstackError(`pushing image ${ref} failed:\n${why}`, {
      hint: 'images.prefix must name a registry this host can push to (a plain-http one needs images.tlsVerify: false).',
    });
  }
  o.report({
    type: 'image',
    image: name,
    state: 'pushed',
    seconds: (Date.now() - started) / 1000,
    detail: ref,
  });
}
