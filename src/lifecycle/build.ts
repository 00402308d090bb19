import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifestDigest } from '../engines/registry.js';
import type { Reporter } from '../events.js';
import { type BuildResult, buildImages } from '../images/build.js';
import { type PushRecord, pushImages } from '../images/push.js';
import { podmanForHost } from '../podman/host.js';
import type { Podman } from '../podman/runner.js';
import type { Project } from './project.js';

/** What the host has: each reference's image ID, and every image ID (`podman images`, once). */
export async function localImages(podman: Podman): Promise<{ byRef: Map<string, string>; ids: Set<string> }> {
  const out = await podman.ok(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  const rows = out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ') as [string, string]);
  return { byRef: new Map(rows), ids: new Set(rows.map(([, id]) => id)) };
}

/**
 * Builds what changed, and says which image ID each of the project's references resolved to: a
 * tag is a hash of build inputs, the ID is what runs (revisions keep it).
 */
export async function buildProject(
  project: Project,
  report: Reporter,
): Promise<BuildResult & { readonly ids: Readonly<Record<string, string>> }> {
  const { podman, adaptation } = await podmanForHost(project.stateDir);
  for (const reason of adaptation.reasons)
    report({ type: 'step', message: `podman on this host: ${reason}` });
  const result = await buildImages({
    podman,
    waves: project.imageWaves,
    refs: project.imageRefs,
    imagesDir: project.imagesDir,
    extraContext: project.rootfs.extraContext,
    suite: project.rootfs.suite,
    mirror: project.rootfs.mirror,
    // Images are shared by every cloud on the host that uses the same prefix: one work folder for all.
    workDir: join(project.spec.dataDir, 'build'),
    report,
  });
  const { byRef } = await localImages(podman);
  return { ...result, ids: idsOf(byRef, project.imageRefs) };
}

/** Pushes the cloud's images to the registry images.prefix names. */
export async function pushProject(
  project: Project,
  report: Reporter,
  /** Each image's ID, when the caller has just asked Podman (buildProject's ids). */
  ids?: Readonly<Record<string, string>>,
): Promise<string[]> {
  const { podman } = await podmanForHost(project.stateDir);
  return pushRefs(project, podman, project.imageRefs, report, ids);
}

/** Image name -> the ID its reference names on this host, for the references the host has. */
function idsOf(
  byRef: ReadonlyMap<string, string>,
  refs: Readonly<Record<string, string>>,
): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const [name, ref] of Object.entries(refs)) {
    const id = byRef.get(ref);
    if (id) ids[name] = id;
  }
  return ids;
}

/**
 * Pushes these references of the project's images (image name -> reference), each unless the
 * registry still has what this host pushed under it before: pushed.json in the cloud's state
 * folder keeps, per reference, the image ID pushed and the manifest digest the registry gave it.
 */
export async function pushRefs(
  project: Project,
  podman: Podman,
  refs: Readonly<Record<string, string>>,
  report: Reporter,
  known?: Readonly<Record<string, string>>,
): Promise<string[]> {
  const file = join(project.stateDir, 'pushed.json');
  // A missing or unreadable record only costs pushes.
  const pushed = await readFile(file, 'utf8')
    .then((t) => JSON.parse(t) as Record<string, PushRecord>)
    .catch(() => ({}));
  const ids = known ?? idsOf((await localImages(podman)).byRef, refs);
  const { tlsVerify, compression } = project.spec.images;
  const r = await pushImages({
    podman,
    refs,
    tlsVerify,
    compression,
    parents: parentsOf(project),
    pushed,
    ids,
    digestOf: (ref) => manifestDigest(ref, tlsVerify),
    report,
  });
  // Written whole and renamed into place, so a later read sees one record or the other.
  await writeFile(`${file}.new`, `${JSON.stringify({ ...pushed, ...r.records }, null, 2)}\n`);
  await rename(`${file}.new`, file);
  return r.refs;
}

/** Each of the cloud's images by name -> its parent's name (the push order). */
export function parentsOf(project: Pick<Project, 'imageWaves'>): Record<string, string> {
  return Object.fromEntries(project.imageWaves.flat().map((r) => [r.name, r.parent]));
}
