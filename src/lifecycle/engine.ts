import { PodmanEngine } from '../engines/podman/engine.js';
import type { Engine } from '../engines/types.js';
import { PodstackError } from '../errors.js';
import { podmanForHost } from '../podman/host.js';
import type { Podman } from '../podman/runner.js';
import type { Project } from './project.js';

export type EngineName = 'podman' | 'kubernetes';

/** The one place an engine is chosen. */
export async function engineFor(
  project: Project,
  name: EngineName = 'podman',
): Promise<{ engine: Engine; podman?: Podman }> {
  if (name === 'kubernetes') {
    throw new PodstackError('the Kubernetes engine is not part of this podstack yet', {
      hint: 'Use the default Podman engine; `podstack plan -o yaml` prints the Kubernetes objects for a cluster.',
    });
  }
  const { podman } = await podmanForHost(project.stateDir);
  return {
    engine: new PodmanEngine({ podman, cloud: project.spec.name, stateDir: project.stateDir }),
    podman,
  };
}
