import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ApiException, CoreV1Api, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { PodstackError } from '../../errors.js';

/** Where the cluster is, read the way kubectl reads it. */
export interface ClusterTarget {
  /** A kubeconfig file; default: $KUBECONFIG (a list of files, merged), then ~/.kube/config. */
  readonly kubeconfig?: string;
  /** A context of the kubeconfig; default: its current-context. */
  readonly context?: string;
  /** default: the context's namespace, then `default`. */
  readonly namespace?: string;
}

export interface Cluster {
  readonly config: KubeConfig;
  readonly namespace: string;
  readonly objects: KubernetesObjectApi;
  readonly core: CoreV1Api;
  /** host:port of the API server, for messages. */
  readonly server: string;
}

export function connect(target: ClusterTarget = {}): Cluster {
  const config = new KubeConfig();
  const file = target.kubeconfig;
  if (file) {
    if (!existsSync(file))
      throw new PodstackError(`kubeconfig ${file} does not exist`, {
        hint: 'Pass the path of a kubeconfig file.',
      });
    config.loadFromFile(file);
  } else if (process.env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config'))) {
    config.loadFromDefault();
  } else {
    throw new PodstackError('no Kubernetes cluster is configured', {
      hint: 'Point KUBECONFIG (or --kubeconfig) at a kubeconfig file, as for kubectl.',
    });
  }
  if (target.context) {
    if (!config.getContextObject(target.context)) {
      const known = config.getContexts().map((c) => c.name);
      throw new PodstackError(`the kubeconfig has no context ${target.context}`, {
        hint: `Contexts it has: ${known.join(', ') || 'none'}.`,
      });
    }
    config.setCurrentContext(target.context);
  }
  const cluster = config.getCurrentCluster();
  if (!cluster)
    throw new PodstackError('the kubeconfig names no current cluster', {
      hint: 'Choose one with --context, or set current-context in the kubeconfig.',
    });
  const namespace =
    target.namespace || config.getContextObject(config.getCurrentContext())?.namespace || 'default';
  return {
    config,
    namespace,
    objects: KubernetesObjectApi.makeApiClient(config),
    core: config.makeApiClient(CoreV1Api),
    server: cluster.server,
  };
}

/** The HTTP status of a failed API call, or undefined when it never reached the API. */
export function statusOf(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

/** The API server's own message for a failed call (its Status object), else the error's. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiException) {
    const body: unknown = typeof e.body === 'string' ? safeJson(e.body) : e.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return typeof message === 'string' ? message : `HTTP ${e.code}`;
  }
  return e instanceof Error ? e.message : String(e);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Wraps a failure to reach the cluster at all into an error that says which cluster. */
export function unreachable(cluster: Cluster, e: unknown): PodstackError {
  return new PodstackError(`cannot reach the Kubernetes API at ${cluster.server}: ${messageOf(e)}`, {
    hint: 'Check that the cluster is up and that KUBECONFIG/--context name the right one.',
    cause: e,
  });
}
