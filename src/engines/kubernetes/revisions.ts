// A cloud's revisions in its cluster, one Secret each (as Helm keeps releases), so that every
// operator of the cluster sees the same history whichever machine ran `up`. A Secret, not a
// ConfigMap: the rendered plan beside the record holds the cloud's secret values.
// They carry no instance label: the engine's prune and `down` leave them; `down --purge` removes them.
import type { V1Secret } from '@kubernetes/client-node';
import { PodstackError } from '../../errors.js';
import { LABEL } from '../../model/objects.js';
import type { Plan } from '../../model/unit.js';
import type { RevisionRecord } from '../../revisions/record.js';
import {
  packPlan,
  pad,
  type RevisionStore,
  recordFrom,
  type StoredRevision,
  unpackPlan,
} from '../../revisions/store.js';
import { type Cluster, messageOf, statusOf, unreachable } from './client.js';
import { ensureNamespace } from './namespace.js';

/** The label that finds a cloud's revisions. */
export const REVISION_OF = 'podstack.dev/revision-of';
const TYPE = 'podstack.dev/revision';

export class SecretRevisionStore implements RevisionStore {
  constructor(
    private readonly cluster: Cluster,
    private readonly cloud: string,
  ) {}

  get where(): string {
    return `Secrets ${this.name(0).replace(/0+$/, '*')} in namespace ${this.cluster.namespace} of ${this.cluster.server}`;
  }

  private name(revision: number): string {
    return `podstack-${this.cloud}-revision-${pad(revision)}`;
  }

  private get selector(): string {
    return `${REVISION_OF}=${this.cloud},${LABEL.managedBy}=podstack`;
  }

  async list(): Promise<StoredRevision[]> {
    const secrets = await this.call(() =>
      this.cluster.core.listNamespacedSecret({
        namespace: this.cluster.namespace,
        labelSelector: this.selector,
      }),
    );
    return secrets.items
      .map((s) => {
        const where = `Secret ${this.cluster.namespace}/${s.metadata?.name}`;
        return recordFrom(decode(s.data?.['record.json']) ?? '', where);
      })
      .sort((a, b) => a.revision - b.revision);
  }

  async write(record: RevisionRecord, plan?: Plan): Promise<void> {
    const name = this.name(record.revision);
    const namespace = this.cluster.namespace;
    const existing = await this.read(record.revision);
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: TYPE,
      metadata: {
        name,
        namespace,
        labels: { [REVISION_OF]: this.cloud, [LABEL.managedBy]: 'podstack' },
        ...(existing?.metadata?.resourceVersion
          ? { resourceVersion: existing.metadata.resourceVersion }
          : {}),
      },
      data: {
        ...existing?.data,
        'record.json': Buffer.from(`${JSON.stringify(record, null, 2)}\n`).toString('base64'),
        ...(plan ? { 'plan.json.gz': packPlan(plan).toString('base64') } : {}),
      },
    };
    if (existing) {
      await this.call(() => this.cluster.core.replaceNamespacedSecret({ name, namespace, body }));
      return;
    }
    // The first revision of a cloud comes before its first apply, which makes the namespace.
    await ensureNamespace(this.cluster);
    await this.call(() => this.cluster.core.createNamespacedSecret({ namespace, body }));
  }

  async plan(revision: number): Promise<Plan | undefined> {
    const packed = (await this.read(revision))?.data?.['plan.json.gz'];
    return packed ? unpackPlan(Buffer.from(packed, 'base64')) : undefined;
  }

  async remove(revision: number): Promise<void> {
    await this.call(() =>
      this.cluster.core
        .deleteNamespacedSecret({ name: this.name(revision), namespace: this.cluster.namespace })
        .catch((e: unknown) => {
          if (statusOf(e) !== 404) throw e;
        }),
    );
  }

  async removeAll(): Promise<void> {
    await this.call(() =>
      this.cluster.core.deleteCollectionNamespacedSecret({
        namespace: this.cluster.namespace,
        labelSelector: this.selector,
      }),
    );
  }

  private async read(revision: number): Promise<V1Secret | undefined> {
    return this.call(() =>
      this.cluster.core
        .readNamespacedSecret({ name: this.name(revision), namespace: this.cluster.namespace })
        .catch((e: unknown) => {
          if (statusOf(e) === 404) return undefined;
          throw e;
        }),
    );
  }

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      // Refused (no right to Secrets, say): the API server's words; no answer: unreachable.
      if (statusOf(e) !== undefined)
        throw new PodstackError(`revisions (${this.where}): ${messageOf(e)}`, { cause: e });
      throw unreachable(this.cluster, e);
    }
  }
}

function decode(b64: string | undefined): string | undefined {
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}
