import { join } from 'node:path';
import type { Reporter } from '../events.js';
import { type BuildResult, buildImages } from '../images/build.js';
import { pushImages } from '../images/push.js';
import { podmanForHost } from '../podman/host.js';
import type { Project } from './project.js';

export async function buildProject(project: Project, report: Reporter): Promise<BuildResult> {
  const { podman, adaptation } = await podmanForHost(project.stateDir);
  for (const reason of adaptation.reasons)
    report({ type: 'step', message: `podman on this host: ${reason}` });
  return buildImages({
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
}

/** Pushes the cloud's images to the registry images.prefix names. */
export async function pushProject(project: Project, report: Reporter): Promise<string[]> {
  const { podman } = await podmanForHost(project.stateDir);
  return pushImages({ podman, refs: project.imageRefs, tlsVerify: project.spec.images.tlsVerify, report });
}
