// Files in and out of a cloud on Kubernetes, for `backup` and `restore`. A claim or a node folder
// is reached through a short-lived pod of podstack's own that mounts it (made from the owning
// unit's image, which the cluster already pulls, and which has tar), and its files travel as a
// tar stream over exec: nothing needs a route from this machine to the nodes. The pod runs on
// the node that holds the data: where the claim is mounted, where the node pod runs.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { V1Pod, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { extract, pack } from 'tar-fs';
import { PodstackError } from '../../errors.js';
import { LABEL } from '../../model/objects.js';
import type { PlannedUnit } from '../../model/unit.js';
import { sleep, waitFor } from '../shared/poll.js';
import type { DataAccess } from '../types.js';
import { type Cluster, messageOf, statusOf } from './client.js';
import { podExec } from './exec.js';
import { ensureNamespace } from './namespace.js';

/** Where a helper pod mounts what it copies. */
const MOUNT = '/podstack-data';
/** A copy of a few GiB of disks over exec takes minutes; an hour is a stuck copy. */
const COPY_TIMEOUT_MS = 3_600_000;
const HELPER_COMPONENT = 'data-copy';
/** A copy pod's container waiting for one of these will not start by itself. */
const CANNOT_START = new Set(['ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName']);

export interface KubernetesDataOptions {
  readonly cluster: Cluster;
  readonly cloud: string;
  /** Creates a plan's claim as `up` would (its API version, namespace and labels). */
  readonly applyClaim: (unit: PlannedUnit, claim: string) => Promise<void>;
  /** The running pod and container of a unit's container (for copyOut/copyIn). */
  readonly runningPod: (unit: string, container: string) => Promise<string>;
}

/** The image (and how to pull it) of a unit's first pod: a helper pod runs from it. */
function podImage(unit: PlannedUnit): Pick<V1PodSpec, 'imagePullSecrets'> & {
  image: string;
  pull?: string;
} {
  for (const o of unit.objects) {
    const spec = 'spec' in o && o.spec && 'template' in o.spec ? o.spec.template?.spec : undefined;
    const c = spec?.containers[0];
    if (c?.image)
      return {
        image: c.image,
        ...(c.imagePullPolicy ? { pull: c.imagePullPolicy } : {}),
        ...(spec?.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
      };
  }
  throw new PodstackError(`unit ${unit.name} runs no pod: there is no image to copy its data with`);
}

export class KubernetesData implements DataAccess {
  constructor(private readonly o: KubernetesDataOptions) {}

  private get core() {
    return this.o.cluster.core;
  }

  private get namespace() {
    return this.o.cluster.namespace;
  }

  async hasClaim(claim: string): Promise<boolean> {
    try {
      await this.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: this.namespace });
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw e;
    }
  }

  async exportClaim(unit: PlannedUnit, claim: string, file: string): Promise<void> {
    const node = await this.nodeMounting(claim);
    await this.withHelper(
      unit,
      { name: 'data', persistentVolumeClaim: { claimName: claim, readOnly: true } },
      node,
      (pod) => this.tarOut(pod, MOUNT, file),
    );
  }

  async importClaim(unit: PlannedUnit, claim: string, file: string): Promise<void> {
    if (await this.hasClaim(claim))
      throw new PodstackError(`claim ${claim} exists already: a restore makes it from the backup`, {
        exitCode: 2,
        hint: 'Restore onto a cloud that is not there: `podstack down --purge` first (it deletes the data).',
      });
    await this.o.applyClaim(unit, claim);
    await this.withHelper(
      unit,
      { name: 'data', persistentVolumeClaim: { claimName: claim } },
      undefined,
      (pod) => this.tarIn(pod, file, MOUNT),
    );
  }

  async exportFolder(unit: PlannedUnit, path: string, file: string): Promise<void> {
    await this.withHelper(
      unit,
      { name: 'data', hostPath: { path, type: 'Directory' } },
      await this.nodeOf(unit),
      (pod) => this.tarOut(pod, MOUNT, file),
    );
  }

  async hasFolder(unit: PlannedUnit, path: string): Promise<boolean> {
    // The parent is mounted, not the folder: mounting a missing hostPath would make it.
    const r = await this.withHelper(
      unit,
      { name: 'data', hostPath: { path: dirname(path), type: 'DirectoryOrCreate' } },
      await this.nodeOf(unit),
      (pod) => this.inHelper(pod, ['sh', '-c', `ls -A "${MOUNT}/${basename(path)}" 2>/dev/null | head -n 1`]),
    );
    return r.trim() !== '';
  }

  async importFolder(unit: PlannedUnit, path: string, file: string): Promise<void> {
    await this.withHelper(
      unit,
      { name: 'data', hostPath: { path, type: 'DirectoryOrCreate' } },
      await this.nodeOf(unit),
      (pod) => this.tarIn(pod, file, MOUNT),
    );
  }

  async copyOut(unit: string, container: string, path: string, hostPath: string): Promise<void> {
    const pod = await this.o.runningPod(unit, container);
    const staging = await mkdtemp(join(tmpdir(), 'podstack-copy-'));
    try {
      const tar = join(staging, 'out.tar');
      await this.tarOut(pod, path.replace(/\/\.$/, ''), tar, container);
      await pipeline(createReadStream(tar), extract(hostPath));
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  async copyIn(unit: string, container: string, hostPath: string, path: string): Promise<void> {
    const pod = await this.o.runningPod(unit, container);
    const staging = await mkdtemp(join(tmpdir(), 'podstack-copy-'));
    try {
      const tar = join(staging, 'in.tar');
      await pipeline(pack(hostPath), createWriteStream(tar, { mode: 0o600 }));
      await this.tarIn(pod, tar, path, container);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * Removes node folders on the nodes that held them (`down --purge` of guests' disks), through
   * a helper pod per node that mounts each folder's parent.
   */
  /**
   * Deletes each folder on its node. A folder it cannot reach (its image no longer pulls, say a
   * revision's images gone from the registry) does not stop the others: it is returned with why.
   */
  async removeFolders(
    folders: readonly { node: string; path: string; image: string }[],
  ): Promise<{ node: string; path: string; why: string }[]> {
    const left: { node: string; path: string; why: string }[] = [];
    for (const f of folders) {
      await this.withPod(
        { image: f.image },
        { name: 'data', hostPath: { path: dirname(f.path), type: 'DirectoryOrCreate' } },
        f.node,
        (pod) => this.inHelper(pod, ['rm', '-rf', '--', `${MOUNT}/${basename(f.path)}`]),
      ).catch((e: unknown) => left.push({ node: f.node, path: f.path, why: messageOf(e) }));
    }
    return left;
  }

  /** Every file under `path` in the pod, as a tar file on this machine. */
  private async tarOut(pod: string, path: string, file: string, container = 'copy'): Promise<void> {
    const out = createWriteStream(file, { mode: 0o600 });
    const r = await podExec(
      this.o.cluster,
      pod,
      container,
      ['tar', '-C', path, '-cf', '-', '.'],
      COPY_TIMEOUT_MS,
      {
        stdout: out,
      },
    );
    if (r.exitCode !== 0)
      throw new PodstackError(
        `copying ${path} out of pod ${pod} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
      );
  }

  /** A tar file of this machine unpacked under `path` in the pod (made if missing). */
  private async tarIn(pod: string, file: string, path: string, container = 'copy'): Promise<void> {
    const bytes = (await stat(file)).size;
    const r = await podExec(
      this.o.cluster,
      pod,
      container,
      ['sh', '-ec', `mkdir -p "$1"; head -c ${bytes} | tar -C "$1" -xf -`, 'tar-in', path],
      COPY_TIMEOUT_MS,
      { stdin: createReadStream(file) },
    );
    if (r.exitCode !== 0)
      throw new PodstackError(
        `copying into ${path} of pod ${pod} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
      );
  }

  private async inHelper(pod: string, command: readonly string[]): Promise<string> {
    const r = await podExec(this.o.cluster, pod, 'copy', command, 120_000);
    if (r.exitCode !== 0)
      throw new PodstackError(
        `${command.join(' ')} in pod ${pod} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
      );
    return r.stdout;
  }

  /** The node where a running pod mounts the claim, if one does (a ReadWriteOnce claim is there). */
  private async nodeMounting(claim: string): Promise<string | undefined> {
    const pods = await this.core.listNamespacedPod({ namespace: this.namespace });
    return pods.items.find(
      (p) =>
        p.status?.phase === 'Running' &&
        p.spec?.volumes?.some((v) => v.persistentVolumeClaim?.claimName === claim),
    )?.spec?.nodeName;
  }

  /**
   * The node of a unit's node folders: where its pod runs, or, with none running (a restore), the
   * cluster's one schedulable node. A folder is one node's: with several, which one is not known.
   */
  private async nodeOf(unit: PlannedUnit): Promise<string> {
    const pods = await this.core.listNamespacedPod({
      namespace: this.namespace,
      labelSelector: `${LABEL.instance}=${this.o.cloud},${LABEL.unit}=${unit.name}`,
    });
    const running = [...new Set(pods.items.flatMap((p) => (p.spec?.nodeName ? [p.spec.nodeName] : [])))];
    if (running.length === 1) return running[0]!;
    const several = (n: number, what: string) =>
      new PodstackError(
        `${unit.name}'s node folders are on ${n} ${what}: a backup or restore of them is for one node`,
        {
          exitCode: 2,
          hint: 'Back up and restore a cloud whose hypervisor runs on one node; several nodes are not built yet.',
        },
      );
    if (running.length > 1) throw several(running.length, 'nodes');
    const nodes = (await this.core.listNode()).items.filter((n) => !n.spec?.unschedulable);
    if (nodes.length !== 1 || !nodes[0]?.metadata?.name) throw several(nodes.length, 'schedulable nodes');
    return nodes[0].metadata.name;
  }

  private withHelper<T>(
    unit: PlannedUnit,
    volume: V1Volume,
    node: string | undefined,
    use: (pod: string) => Promise<T>,
  ): Promise<T> {
    return this.withPod(podImage(unit), volume, node, use);
  }

  /**
   * Runs `use` with a pod of podstack's own that mounts `volume` at MOUNT, as root (it reads and
   * writes every file with its owner), then deletes it and waits until it is gone: `down --purge`
   * removes a namespace only once nothing is left in it.
   */
  private async withPod<T>(
    from: Pick<V1PodSpec, 'imagePullSecrets'> & { image: string; pull?: string },
    volume: V1Volume,
    node: string | undefined,
    use: (pod: string) => Promise<T>,
  ): Promise<T> {
    await ensureNamespace(this.o.cluster);
    const name = `${this.o.cloud}-copy-${randomBytes(3).toString('hex')}`.slice(-63).replace(/^-+/, '');
    const pod: V1Pod = {
      metadata: {
        name,
        labels: { [LABEL.managedBy]: 'podstack', [LABEL.component]: HELPER_COMPONENT },
      },
      spec: {
        restartPolicy: 'Never',
        // It talks to no API: no token to mount, and none to wait for in a namespace just made.
        automountServiceAccountToken: false,
        // A copy cut off with podstack (a killed process) must not hold the claim for ever.
        activeDeadlineSeconds: COPY_TIMEOUT_MS / 1000,
        terminationGracePeriodSeconds: 0,
        ...(node ? { nodeName: node } : {}),
        tolerations: [{ operator: 'Exists' }],
        ...(from.imagePullSecrets ? { imagePullSecrets: from.imagePullSecrets } : {}),
        volumes: [volume],
        containers: [
          {
            name: 'copy',
            image: from.image,
            ...(from.pull ? { imagePullPolicy: from.pull } : {}),
            command: ['sleep', String(COPY_TIMEOUT_MS / 1000)],
            securityContext: { runAsUser: 0, runAsGroup: 0 },
            volumeMounts: [
              {
                name: volume.name,
                mountPath: MOUNT,
                readOnly: volume.persistentVolumeClaim?.readOnly ?? false,
              },
            ],
          },
        ],
      },
    };
    await this.create(pod);
    try {
      await this.untilRunning(name);
      return await use(name);
    } finally {
      await this.core
        .deleteNamespacedPod({ name, namespace: this.namespace, gracePeriodSeconds: 0 })
        .catch(() => undefined);
      await waitFor(
        async () =>
          this.core.readNamespacedPod({ name, namespace: this.namespace }).then(
            () => false,
            (e: unknown) => statusOf(e) === 404,
          ),
        120_000,
        500,
      );
    }
  }

  /**
   * Creates the pod. In a namespace made a moment ago (a restore's), the API server refuses pods
   * until its controllers have made the default ServiceAccount: it says to retry, so podstack does.
   */
  private async create(pod: V1Pod): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await this.core.createNamespacedPod({ namespace: this.namespace, body: pod });
        return;
      } catch (e) {
        const early = /service ?account/i.test(messageOf(e)) && Date.now() < deadline;
        if (!early) throw new PodstackError(`creating the copy pod failed: ${messageOf(e)}`, { cause: e });
        await sleep(1000);
      }
    }
  }

  private async untilRunning(name: string): Promise<void> {
    let why = 'not scheduled';
    const running = await waitFor(
      async () => {
        const p = await this.core.readNamespacedPod({ name, namespace: this.namespace });
        if (p.status?.phase === 'Running') return true;
        if (p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded')
          throw new PodstackError(`the copy pod ${name} ended before it was used (${p.status.phase})`);
        const waiting = p.status?.containerStatuses?.[0]?.state?.waiting;
        const unscheduled = p.status?.conditions?.find(
          (c) => c.type === 'PodScheduled' && c.status === 'False',
        );
        why = waiting
          ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`
          : (unscheduled?.message ?? p.status?.phase ?? why);
        // The kubelet tried the image and gave up for now (or never will): waiting out the
        // minutes would only say the same thing later.
        if (waiting?.reason && CANNOT_START.has(waiting.reason))
          throw new PodstackError(`the copy pod ${name} cannot start: ${why}`);
        return false;
      },
      180_000,
      500,
    ).catch((e: unknown) => {
      throw e instanceof PodstackError ? e : new PodstackError(`the copy pod ${name}: ${messageOf(e)}`);
    });
    if (!running) throw new PodstackError(`the copy pod ${name} did not start in 180 s: ${why}`);
  }
}
