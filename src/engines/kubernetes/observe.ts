import { PodstackError } from '../../errors.js';
import type { KubeObject } from '../../model/objects.js';
import { type Cluster, messageOf, statusOf, unreachable } from './client.js';
import type { Live, Observed } from './health.js';

/**
 * The cloud as the cluster has it: every object of the kinds podstack writes that carries the
 * cloud's labels, and its pods. One list request per kind, all at once.
 */
export async function observeCloud(
  cluster: Cluster,
  versions: ReadonlyMap<KubeObject['kind'], string>,
  kinds: readonly KubeObject['kind'][],
  selector: string,
): Promise<Observed> {
  const namespace = cluster.namespace;
  try {
    const [lists, pods] = await Promise.all([
      Promise.all(
        kinds.map((kind) =>
          cluster.objects.list(
            versions.get(kind)!,
            kind,
            namespace,
            undefined,
            undefined,
            undefined,
            undefined,
            selector,
          ),
        ),
      ),
      cluster.core.listNamespacedPod({ namespace, labelSelector: selector }),
    ]);
    const objects = new Map<string, Live>();
    lists.forEach((list, i) => {
      for (const item of list.items)
        objects.set(`${kinds[i]}/${item.metadata?.name}`, {
          ...item,
          // A list's items carry neither: the list request says what they are.
          apiVersion: versions.get(kinds[i]!)!,
          kind: kinds[i]!,
        } as Live);
    });
    return { objects, pods: pods.items };
  } catch (e) {
    if (statusOf(e) === undefined) throw unreachable(cluster, e);
    throw new PodstackError(`reading the cloud from namespace ${namespace} failed: ${messageOf(e)}`, {
      cause: e,
    });
  }
}
