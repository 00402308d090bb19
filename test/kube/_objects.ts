import type { KubernetesObject } from '@kubernetes/client-node';
import { connect } from '../../src/engines/kubernetes/client.js';
import { LABEL } from '../../src/model/objects.js';

/** The objects of one kind that podstack made for `cloud` in `namespace`, as the API lists them. */
export async function objectsOf(
  kubeconfig: string,
  namespace: string,
  cloud: string,
  apiVersion: string,
  kind: string,
): Promise<KubernetesObject[]> {
  const { objects } = connect({ kubeconfig, namespace });
  const selector = `${LABEL.instance}=${cloud}`;
  const list = await objects.list(
    apiVersion,
    kind,
    namespace,
    undefined,
    undefined,
    undefined,
    undefined,
    selector,
  );
  return list.items;
}
