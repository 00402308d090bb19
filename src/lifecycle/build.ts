import { join } from 'node:path';
import type { Reporter } from '../events.js';
import { type BuildResult, buildImages } from '../images/build.js';
import { pushImages } from '../images/push.js';
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
  const ids: Record<string, string> = {};
  for (const [name, ref] of Object.entries(project.imageRefs)) {
    const id = byRef.get(ref);
    if (id) ids[name] = id;
  }
  return { ...result, ids };
}

/** Pushes the cloud's images to the registry images.prefix names. */
export async function pushProject(project: Project, report: Reporter): Promise<string[]> {
  const { podman } = await podmanForHost(project.stateDir);
  return pushImages({
    podman,
    refs: project.imageRefs,
    tlsVerify: project.spec.images.tlsVerify,
    compression: project.spec.images.compression,
    parents: parentsOf(project),
    report,
  });
}

/** Each of the cloud's images by name -> its parent's name (the push order). */
export function parentsOf(project: Pick<Project, 'imageWaves'>): Record<string, string> {
  return Object.fromEntries(project.imageWaves.flat().map((r) => [r.name, r.parent]));
}
