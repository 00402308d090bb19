import type { ClusterTarget } from '../engines/kubernetes/client.js';
import { cloudSubnet } from '../engines/podman/network.js';
import type { Engine } from '../engines/types.js';
import { podmanForHost } from '../podman/host.js';
import type { Podman } from '../podman/runner.js';
import type { EngineName, Project } from './project.js';

export type { EngineName } from './project.js';

export interface EngineChoice {
  readonly name?: EngineName;
  /** Where the cluster is, for the Kubernetes engine. */
  readonly cluster?: ClusterTarget;
}

/**
 * The one place an engine is made, for the engine the project's plan was made for. The
 * Kubernetes client is loaded only here and only for it: it is most of podstack's start-up time.
 */
export async function engineFor(
  project: Project,
  choice: EngineChoice = {},
): Promise<{ engine: Engine; podman?: Podman }> {
  const name = choice.name ?? project.engine;
  if (name !== project.engine)
    throw new Error(
      `the project's plan is for ${project.engine}, not for ${name}: open it with engine ${name}`,
    );
  if (name === 'kubernetes') {
    const [{ connect }, { KubernetesEngine }] = await Promise.all([
      import('../engines/kubernetes/client.js'),
      import('../engines/kubernetes/engine.js'),
    ]);
    return { engine: new KubernetesEngine({ cluster: connect(choice.cluster), cloud: project.spec.name }) };
  }
  const [{ podman }, { PodmanEngine }] = await Promise.all([
    podmanForHost(project.stateDir),
    import('../engines/podman/engine.js'),
  ]);
  return {
    engine: new PodmanEngine({
      podman,
      cloud: project.spec.name,
      stateDir: project.stateDir,
      subnet: cloudSubnet(project.spec.name, project.spec.network.subnet),
    }),
    podman,
  };
}
