import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATION, type KubeObject } from '../../model/objects.js';
import type { Cluster } from './client.js';
import { podExec } from './exec.js';

/**
 * Guests on Kubernetes: a node pod (ANNOTATION.guests) whose template changes is replaced by its
 * DaemonSet, and its guests stop with it (their taps are in its network namespace). Before such a
 * change `up` asks the pod which guests it runs, with the plan's own listing command, and refuses
 * unless the user allowed it.
 */

/** The guests the running pods of a guest-bearing workload run, by the plan's listing command. */
export async function guestsOf(
  cluster: Cluster,
  workload: KubeObject,
  pods: readonly V1Pod[],
): Promise<string[]> {
  const container = workload.metadata.annotations?.[ANNOTATION.guests];
  if (!container) return [];
  const list = JSON.parse(workload.metadata.annotations?.[ANNOTATION.listGuests] ?? '[]') as string[];
  const out: string[] = [];
  for (const pod of pods.filter((p) => p.status?.phase === 'Running')) {
    const name = pod.metadata?.name ?? '';
    if (list.length === 0) {
      out.push(`(${name}: unknown, the plan gives no way to list them)`);
      continue;
    }
    const r = await podExec(cluster, name, container, list).catch((e: unknown) => ({
      exitCode: -1,
      stdout: '',
      stderr: (e as Error).message,
    }));
    if (r.exitCode !== 0) {
      out.push(`(${name}: unknown: ${r.stderr.trim().split('\n').pop() ?? 'listing failed'})`);
      continue;
    }
    out.push(
      ...r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    );
  }
  return out;
}
