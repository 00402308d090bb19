import { NODE_UNIT } from '../catalog/nova.js';
import { EXTERNAL_BRIDGE_CONTAINER } from '../catalog/ovn.js';
import type { ClusterTarget } from '../engines/kubernetes/client.js';
import { hostLinkOf } from '../engines/podman/host-link.js';
import { cloudSubnet } from '../engines/podman/network.js';
import { registryProblems } from '../engines/registry.js';
import type { Engine } from '../engines/types.js';
import type { Reporter } from '../events.js';
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
): Promise<{
  engine: Engine;
  podman?: Podman;
  /**
   * Kubernetes: whether the cluster and the registry can take the plan, asked before anything
   * is built, pushed or applied; throws one error (exit code 2) naming every problem and its fix.
   */
  preflight?: (report: Reporter) => Promise<void>;
}> {
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
    const engine = new KubernetesEngine({ cluster: connect(choice.cluster), cloud: project.spec.name });
    const preflight = async (report: Reporter) => {
      const { prefix, tlsVerify } = project.spec.images;
      const [cluster, registry] = await Promise.all([
        engine.preflight(project.plan, report),
        registryProblems(prefix, tlsVerify),
      ]);
      const problems = [...cluster, ...registry];
      if (problems.length > 0) throw engine.preflightError(problems);
    };
    return { engine, preflight };
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
      hostLink: {
        link: hostLinkOf(
          project.spec.name,
          project.spec.network.external,
          project.spec.network.externalBridge,
        ),
        enabled: project.spec.network.hostLink || project.spec.network.externalBridge !== '',
        unit: NODE_UNIT,
        container: EXTERNAL_BRIDGE_CONTAINER,
      },
    }),
    podman,
  };
}
