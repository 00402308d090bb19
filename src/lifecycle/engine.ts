import { type ClusterTarget, connect } from '../engines/kubernetes/client.js';
import { KubernetesEngine } from '../engines/kubernetes/engine.js';
import { PodmanEngine } from '../engines/podman/engine.js';
import type { Engine } from '../engines/types.js';
import { podmanForHost } from '../podman/host.js';
import type { Podman } from '../podman/runner.js';
import type { Project } from './project.js';

export type EngineName = 'podman' | 'kubernetes';

export interface EngineChoice {
  readonly name?: EngineName;
  /** Where the cluster is, for the Kubernetes engine. */
  readonly cluster?: ClusterTarget;
}

/** The one place an engine is chosen. */
export async function engineFor(
  project: Project,
  choice: EngineChoice = {},
): Promise<{ engine: Engine; podman?: Podman }> {
  if (choice.name === 'kubernetes') {
    return { engine: new KubernetesEngine({ cluster: connect(choice.cluster), cloud: project.spec.name }) };
  }
  const { podman } = await podmanForHost(project.stateDir);
  return {
    engine: new PodmanEngine({ podman, cloud: project.spec.name, stateDir: project.stateDir }),
    podman,
  };
}
