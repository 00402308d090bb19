import type { Reporter } from '../../events.js';
import { type KubeObject, LABEL } from '../../model/objects.js';
import { waitFor } from '../shared/poll.js';
import { type Cluster, statusOf, unreachable } from './client.js';
import { gone, madeByCluster } from './writes.js';

/** The cloud's namespace: made by podstack when missing, and removed by it only when it made it. */
export async function ensureNamespace(cluster: Cluster): Promise<void> {
  try {
    await cluster.core.readNamespace({ name: cluster.namespace });
  } catch (e) {
    if (statusOf(e) === 404) {
      await cluster.core.createNamespace({
        body: { metadata: { name: cluster.namespace, labels: { [LABEL.managedBy]: 'podstack' } } },
      });
    } else if (statusOf(e) !== 403) {
      // Without the right to read namespaces, the first apply says what is wrong.
      throw unreachable(cluster, e);
    }
  }
}

/**
 * After `down --purge` the namespace goes too, when podstack created it and nothing is left in
 * it: another cloud, or anything of anyone else's, keeps it. Waits until it is gone, so that an
 * `up` right after does not meet a namespace still terminating.
 */
export async function removeNamespaceIfEmpty(
  cluster: Cluster,
  versions: ReadonlyMap<KubeObject['kind'], string>,
  kinds: readonly KubeObject['kind'][],
  report: Reporter,
): Promise<void> {
  const namespace = cluster.namespace;
  const ns = await cluster.core.readNamespace({ name: namespace }).catch(() => undefined);
  if (ns?.metadata?.labels?.[LABEL.managedBy] !== 'podstack') return;
  const [pods, ...lists] = await Promise.all([
    cluster.core.listNamespacedPod({ namespace }),
    ...kinds.map((kind) => cluster.objects.list(versions.get(kind)!, kind, namespace)),
  ]);
  const left = lists.flatMap((list, i) => list.items.filter((o) => !madeByCluster(kinds[i]!, o)));
  if (pods.items.length > 0 || left.length > 0) return;
  await cluster.core.deleteNamespace({ name: namespace });
  await waitFor(() => gone(() => cluster.core.readNamespace({ name: namespace })), 120_000);
  report({ type: 'step', message: `removed namespace ${namespace}: podstack made it, and it was empty` });
}
