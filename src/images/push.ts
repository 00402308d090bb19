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
  readonly report: Reporter;
}

/**
 * Pushes the cloud's images to the registry their names point at, so a
 * Kubernetes cluster can pull them. Layers the registry has are not sent again,
 * so pushing an unchanged set is quick. The rootfs is only ever a parent, never run.
 */
export async function pushImages(o: PushOptions): Promise<string[]> {
  // All at once: each push is mostly a round trip per layer the registry already has, and
  // shared parent layers uploaded twice at the same time are stored once.
  const entries = Object.entries(o.refs).filter(([name]) => name !== ROOTFS);
  await Promise.all(entries.map(([name, ref]) => pushOne(o, name, ref)));
  return entries.map(([, ref]) => ref);
}

async function pushOne(o: PushOptions, name: string, ref: string): Promise<void> {
  const started = Date.now();
  o.report({ type: 'image', image: name, state: 'pushing', detail: ref });
  // Pushing compresses every layer the registry lacks, and the nodes unpack each one: with gzip
  // that was most of the 91 s the default cloud's 14 images took to reach the test cluster.
  const r = await o.podman.run([
    'push',
    '--quiet',
    `--tls-verify=${o.tlsVerify}`,
    `--compression-format=${o.compression}`,
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
