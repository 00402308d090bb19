import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { WAIT_IMAGE } from '../catalog/index.js';
import type { ImageRecipe, ServiceDefinition } from '../catalog/types.js';
import { topologicalWaves } from '../model/graph.js';
import { hashOf } from '../model/hash.js';

/** The debootstrapped Debian root every image starts from. */
export const ROOTFS = 'rootfs';

/** Images that are not a service's own but parents of them (Kolla's base and openstack-base). */
export const commonImages: readonly ImageRecipe[] = [
  { name: 'base', parent: ROOTFS },
  { name: 'openstack-base', parent: 'base' },
];

/** The images the given services need, with their ancestors, in build order (parents first). */
export function imagesFor(services: readonly ServiceDefinition[]): ImageRecipe[][] {
  const all = new Map<string, ImageRecipe>(
    [...commonImages, ...services.flatMap((s) => s.images)].map((r) => [r.name, r]),
  );
  const needed = new Map<string, ImageRecipe>();
  const add = (name: string) => {
    if (name === ROOTFS || needed.has(name)) return;
    const recipe = all.get(name);
    if (!recipe) throw new Error(`image ${name} has no recipe`);
    needed.set(name, recipe);
    add(recipe.parent);
  };
  for (const s of services) for (const r of s.images) add(r.name);
  // Every cloud's waiting pods run podstack-wait from openstack-base (plan/build.ts WAIT_IMAGE).
  add(WAIT_IMAGE);
  const waves = topologicalWaves(
    new Map([...needed.values()].map((r) => [r.name, r.parent === ROOTFS ? [] : [r.parent]])),
  );
  return waves.map((w) => w.map((n) => needed.get(n)!));
}

export interface RootfsInputs {
  readonly suite: string;
  readonly mirror: string;
  /** Files podstack adds to an image's build context (base gets the apt sources). */
  readonly extraContext: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** Every file under dir with its content and whether it is executable, sorted by path. */
async function contextFiles(dir: string): Promise<[string, string, boolean][]> {
  const out: [string, string, boolean][] = [];
  const walk = async (d: string) => {
    for (const entry of (await readdir(d, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else out.push([relative(dir, p), await readFile(p, 'utf8'), ((await stat(p)).mode & 0o111) !== 0]);
    }
  };
  await walk(dir);
  return out;
}

/**
 * Tags every image with a hash of its inputs (its build context, the extra
 * files podstack adds, and its parent's tag), Kolla's hierarchy with Nix's
 * naming: an image whose inputs did not change already exists, so a rebuild
 * of an unchanged cloud does no work, and a change rebuilds only what it reaches.
 */
export async function imageRefs(
  waves: readonly (readonly ImageRecipe[])[],
  prefix: string,
  imagesDir: string,
  rootfs: RootfsInputs,
): Promise<Record<string, string>> {
  const refs: Record<string, string> = {};
  // Bump the recipe version when the way the rootfs is made changes.
  refs[ROOTFS] =
    `${prefix}/debian-rootfs:${hashOf({ v: 1, variant: 'minbase', suite: rootfs.suite, mirror: rootfs.mirror })}`;
  for (const wave of waves) {
    const hashes = await Promise.all(
      wave.map(async (r) => {
        const files = await contextFiles(join(imagesDir, r.name));
        // The parent's tag, not its full name: renaming images (another prefix, a registry)
        // must not make them count as different, or change of prefix would rebuild everything.
        const parentTag = refs[r.parent]!.slice(refs[r.parent]!.lastIndexOf(':') + 1);
        return hashOf({ parent: parentTag, files, extra: rootfs.extraContext[r.name] ?? {} });
      }),
    );
    wave.forEach((r, i) => {
      refs[r.name] = `${prefix}/${r.name}:${hashes[i]}`;
    });
  }
  return refs;
}
