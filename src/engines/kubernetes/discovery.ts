import { ApisApi, CoreApi } from '@kubernetes/client-node';
import { PodstackError } from '../../errors.js';
import type { KubeObject } from '../../model/objects.js';
import type { Cluster } from './client.js';

/**
 * The API versions podstack can write each kind in, newest first. The plan
 * renders the newest; an object of a kind whose objects look the same in
 * several versions is sent in the newest one the cluster serves, as Helm's
 * .Capabilities checks do, so a current cluster and an old one (the test
 * cluster is 1.20) both take the same plan. Add older versions here only
 * where the object really is the same in them.
 */
export const WRITABLE_VERSIONS: Readonly<Record<KubeObject['kind'], readonly string[]>> = {
  ConfigMap: ['v1'],
  Secret: ['v1'],
  Service: ['v1'],
  ServiceAccount: ['v1'],
  PersistentVolumeClaim: ['v1'],
  Deployment: ['apps/v1'],
  DaemonSet: ['apps/v1'],
  Job: ['batch/v1'],
  Role: ['rbac.authorization.k8s.io/v1', 'rbac.authorization.k8s.io/v1beta1'],
  RoleBinding: ['rbac.authorization.k8s.io/v1', 'rbac.authorization.k8s.io/v1beta1'],
};

/** Every group/version the cluster serves ("v1" for the core group). */
export async function servedVersions(cluster: Cluster): Promise<Set<string>> {
  const [core, groups] = await Promise.all([
    cluster.config.makeApiClient(CoreApi).getAPIVersions(),
    cluster.config.makeApiClient(ApisApi).getAPIVersions(),
  ]);
  return new Set([...core.versions, ...groups.groups.flatMap((g) => g.versions.map((v) => v.groupVersion))]);
}

/** kind -> the apiVersion to use with this cluster; an error naming the kind when it serves none. */
export function chooseVersions(
  kinds: Iterable<KubeObject['kind']>,
  served: ReadonlySet<string>,
): Map<KubeObject['kind'], string> {
  const out = new Map<KubeObject['kind'], string>();
  for (const kind of kinds) {
    const candidates = WRITABLE_VERSIONS[kind];
    const chosen = candidates.find((v) => served.has(v));
    if (!chosen) {
      throw new PodstackError(`this cluster serves none of ${candidates.join(', ')}, needed for ${kind}`, {
        hint: 'podstack needs Kubernetes 1.20 or newer.',
      });
    }
    out.set(kind, chosen);
  }
  return out;
}
