import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PatchStrategy } from '@kubernetes/client-node';
import { connect } from '../../src/engines/kubernetes/client.js';
import { KubernetesEngine } from '../../src/engines/kubernetes/engine.js';
import { PodstackError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/events.js';
import type { Plan } from '../../src/model/unit.js';
import type { RevisionRecord } from '../../src/revisions/record.js';
import { startCluster } from '../kube-cluster/cluster.js';
import { planOf } from '../unit/_fixtures.js';
import { objectsOf } from './_objects.js';

/**
 * The fast tier: the Kubernetes engine against a real kube-apiserver and etcd,
 * with no node, so nothing runs and nothing is waited for. What it proves is
 * the API side: server-side apply, no-op re-apply, diff, Job replacement,
 * pruning and removal.
 */
const CLOUD = 'fast';
const NAMESPACE = 'podstack-fast';
const isRoot = process.getuid?.() === 0;

describe('kubernetes engine against kube-apiserver (no node)', { skip: !isRoot && 'needs root' }, () => {
  let engine: KubernetesEngine;
  let kubeconfig: string;
  const events: ProgressEvent[] = [];
  const report = (e: ProgressEvent) => void events.push(e);
  const plan = planOf(`name: ${CLOUD}\nendpoints: {address: 192.0.2.10}`, 'kubernetes');
  const apply = (p: Plan, jobTimeout = 60) => engine.apply(p, { report, wait: false, jobTimeout });
  /** The plan after a change that a Job's inputs carry: the region is in every registration. */
  const newRegion = planOf(
    `name: ${CLOUD}\nendpoints: {address: 192.0.2.10}\nregion: RegionTwo`,
    'kubernetes',
  );

  /**
   * Kind/name -> what a write by podstack would change: the resourceVersion, except for
   * Deployments, DaemonSets and Jobs, whose controllers record status (a new resourceVersion) on their own:
   * for those, the spec's generation and podstack's managed-fields entry.
   */
  async function versions(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [apiVersion, kind] of [
      ['v1', 'ConfigMap'],
      ['v1', 'Secret'],
      ['v1', 'Service'],
      ['v1', 'ServiceAccount'],
      ['v1', 'PersistentVolumeClaim'],
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'DaemonSet'],
      ['batch/v1', 'Job'],
      ['rbac.authorization.k8s.io/v1', 'Role'],
      ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
    ] as const) {
      const list = await objectsOf(kubeconfig, NAMESPACE, CLOUD, apiVersion, kind);
      for (const o of list) {
        const m = o.metadata;
        // Controllers write these too (a workload's status, a claim's binding, which the
        // provisioner may finish after the first apply): what podstack wrote is its own entry.
        out[`${kind}/${m?.name}`] =
          kind === 'Deployment' || kind === 'DaemonSet' || kind === 'Job' || kind === 'PersistentVolumeClaim'
            ? `generation ${m?.generation} ${JSON.stringify(m?.managedFields?.find((f) => f.manager === 'podstack'))}`
            : (m?.resourceVersion ?? '');
      }
    }
    return out;
  }

  const jobUid = async (name: string) =>
    (
      await connect({ kubeconfig, namespace: NAMESPACE }).objects.read({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name, namespace: NAMESPACE },
      })
    ).metadata?.uid;

  before(async () => {
    const cluster = await startCluster({ tier: 'api' });
    kubeconfig = cluster.kubeconfig;
    engine = new KubernetesEngine({ cluster: connect({ kubeconfig, namespace: NAMESPACE }), cloud: CLOUD });
    await engine.destroy({ purge: true, report });
  });

  after(async () => {
    await engine?.destroy({ purge: true, report });
  });

  it('applies every object of the plan, creating the namespace', async () => {
    const r = await apply(plan);
    const objects = plan.units.flatMap((u) => u.objects.map((o) => `${o.kind}/${o.metadata.name}`)).sort();
    assert.deepEqual(Object.keys(await versions()).sort(), objects);
    assert.equal(r.written, objects.length);
    assert.deepEqual([...r.changed].sort(), plan.units.map((u) => u.name).sort());
  });

  it('re-applying the unchanged plan writes no object: same resourceVersions', async () => {
    const before = await versions();
    const r = await apply(plan);
    assert.deepEqual(await versions(), before);
    assert.deepEqual(r.changed, []);
    assert.equal(r.written, 0);
  });

  it('re-applying the unchanged plan sends nothing for objects only podstack writes', async () => {
    const cluster = connect({ kubeconfig, namespace: NAMESPACE });
    const sent: string[] = [];
    const patch = cluster.objects.patch.bind(cluster.objects);
    cluster.objects.patch = ((o, ...rest) => {
      sent.push(`${o.kind}/${o.metadata?.name}`);
      return patch(o, ...rest);
    }) as typeof cluster.objects.patch;
    const r = await new KubernetesEngine({ cluster, cloud: CLOUD }).apply(plan, {
      report,
      wait: false,
      jobTimeout: 60,
    });
    assert.equal(r.written, 0);
    // Only what another writer holds a field of is applied again: the token controller's list of
    // a ServiceAccount's secrets, a claim's binding.
    assert.ok(
      sent.every((k) => /^(ServiceAccount|PersistentVolumeClaim)\//.test(k)),
      `applied again: ${sent.join(', ')}`,
    );
  });

  it('a field another writer changed (as kubectl edit does) is put back by the next apply', async () => {
    const cluster = connect({ kubeconfig, namespace: NAMESPACE });
    const key = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'keystone-api', namespace: NAMESPACE },
    };
    const planned = plan.units
      .flatMap((u) => u.objects)
      .find((o) => o.kind === 'Deployment' && o.metadata.name === 'keystone-api');
    const replicas = (planned as { spec: { replicas?: number } }).spec.replicas ?? 1;
    await cluster.objects.patch(
      { ...key, spec: { replicas: replicas + 2 } },
      undefined,
      undefined,
      'kubectl-edit',
      undefined,
      PatchStrategy.MergePatch,
    );
    const r = await apply(plan);
    assert.equal(r.written, 1);
    const live = (await cluster.objects.read(key)) as { spec: { replicas: number } };
    assert.equal(live.spec.replicas, replicas);
  });

  it('diff is empty for the applied plan and names the fields a config change touches', async () => {
    assert.deepEqual(
      (await engine.diff(plan)).filter((c) => c.action !== 'unchanged'),
      [],
    );
    const changed = planOf(
      `name: ${CLOUD}\nendpoints: {address: 192.0.2.10}\nservices:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT: {debug: true}\n`,
      'kubernetes',
    );
    const diff = await engine.diff(changed);
    const touched = diff
      .filter((c) => c.action !== 'unchanged')
      .map((c) => c.unit)
      .sort();
    // The API rolls; no Job runs again, since none mounts keystone.conf.
    assert.deepEqual(touched, ['keystone-api', 'keystone-config']);
    const config = diff.find((c) => c.unit === 'keystone-config')!;
    assert.equal(config.action, 'update');
    assert.match(config.details.join('\n'), /Secret\/keystone-config: data\[keystone\.conf\]/);
    assert.ok(!config.details.join('\n').includes('debug'), 'a Secret value was shown');
    const api = diff.find((c) => c.unit === 'keystone-api')!;
    assert.match(api.details.join('\n'), /Deployment\/keystone-api: .*config-hash/);
    const region = await engine.diff(newRegion);
    assert.match(
      region.find((c) => c.unit === 'keystone-bootstrap')!.details.join('\n'),
      /replace \(its inputs changed: runs again\)/,
    );
  });

  it('a Job whose inputs changed waits while it still runs: it is never killed', async () => {
    // No node: the Jobs' pods stay Pending, so they are active for as long as we look. The new
    // region reaches keystone-bootstrap and every register Job; units apply side by side, so
    // whichever the engine waits on first is the one it names.
    const reached = newRegion.units
      .filter((u) => u.kind === 'job' && plan.units.find((x) => x.name === u.name)?.hash !== u.hash)
      .map((u) => u.name);
    assert.ok(reached.includes('keystone-bootstrap'));
    const before = await Promise.all(reached.map(jobUid));
    await assert.rejects(
      apply(newRegion, 3),
      new RegExp(`Job/(${reached.join('|')}) was still running after 3s; it was left to finish`),
    );
    assert.deepEqual(await Promise.all(reached.map(jobUid)), before, 'a running Job was replaced');
  });

  it('a Job whose inputs changed is replaced once idle; the rest of the cloud stays', async () => {
    const cluster = connect({ kubeconfig, namespace: NAMESPACE });
    // Idle every Job the change reaches, as a finished run would be: parallelism 0 keeps the Job
    // controller from starting pods again, and the test takes away the ones it started (no node:
    // they are Pending, and go at once). The engine counts the pods, not the controller's status.
    const reached = newRegion.units
      .filter((u) => u.kind === 'job' && plan.units.find((x) => x.name === u.name)?.hash !== u.hash)
      .map((u) => u.name);
    assert.ok(reached.includes('keystone-bootstrap'));
    for (const name of reached) {
      await cluster.objects.patch(
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name, namespace: NAMESPACE },
          spec: { parallelism: 0 },
        },
        undefined,
        undefined,
        'test',
        undefined,
        PatchStrategy.MergePatch,
      );
      await cluster.core.deleteCollectionNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `job-name=${name}`,
      });
    }
    const bootstrap = await jobUid('keystone-bootstrap');
    const sync = await jobUid('keystone-db-sync');
    const beforeVersions = await versions();
    const r = await apply(newRegion, 30);
    assert.notEqual(await jobUid('keystone-bootstrap'), bootstrap);
    assert.equal(await jobUid('keystone-db-sync'), sync, 'a Job whose inputs did not change was replaced');
    assert.ok(r.changed.includes('keystone-bootstrap'));
    const after = await versions();
    for (const k of ['Deployment/mariadb', 'Service/mariadb', 'Deployment/memcached', 'Secret/mariadb-root'])
      assert.equal(after[k], beforeVersions[k], `${k} was written`);
  });

  it('a claim whose immutable fields would change is refused, naming it, and kept', async () => {
    const grown: Plan = {
      ...newRegion,
      units: newRegion.units.map((u) => ({
        ...u,
        objects: u.objects.map((o) =>
          o.kind === 'PersistentVolumeClaim' && o.metadata.name === 'mariadb-data'
            ? { ...o, spec: { ...o.spec, accessModes: ['ReadWriteMany'] } }
            : o,
        ),
      })),
    };
    const before = (await versions())['PersistentVolumeClaim/mariadb-data'];
    await assert.rejects(apply(grown), (e: unknown) => {
      assert.ok(e instanceof PodstackError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /PersistentVolumeClaim\/mariadb-data cannot be changed in place/);
      return true;
    });
    assert.equal((await versions())['PersistentVolumeClaim/mariadb-data'], before, 'the claim was replaced');
  });

  it('keeps revisions in the cluster, one Secret each, with the rendered plan; apply leaves them', async () => {
    const store = engine.revisions();
    const record: RevisionRecord = {
      format: 2,
      revision: 1,
      status: 'pending',
      startedAt: new Date().toISOString(),
      podstack: '0.1.0',
      engine: 'kubernetes',
      cloud: CLOUD,
      cloudFile: `name: ${CLOUD}\n`,
      secretsSha256: 'x',
      images: {},
      units: Object.fromEntries(plan.units.map((u) => [u.name, u.hash])),
      changes: ['first install'],
      changed: [],
      removed: [],
    };
    await store.write(record, plan);
    // A later write of the record alone (the outcome) keeps the plan.
    await store.write({ ...record, status: 'deployed', changed: ['mariadb'] });
    // Another operator, on another machine: a new client, the same history.
    const other = new KubernetesEngine({
      cluster: connect({ kubeconfig, namespace: NAMESPACE }),
      cloud: CLOUD,
    });
    const [stored] = await other.revisions().list();
    assert.deepEqual([stored?.revision, stored?.status, stored?.changed], [1, 'deployed', ['mariadb']]);
    assert.deepEqual(await other.revisions().plan(1), JSON.parse(JSON.stringify(plan)));
    // Not an object of the plan: an apply (of the plan the cluster has now) does not prune it.
    await apply(newRegion);
    assert.equal((await store.list()).length, 1);
    // Another cloud in the namespace has its own history.
    assert.deepEqual(
      await new KubernetesEngine({ cluster: connect({ kubeconfig, namespace: NAMESPACE }), cloud: 'other' })
        .revisions()
        .list(),
      [],
    );
  });

  it('objects that left the plan are pruned; claims stay', async () => {
    const without: Plan = {
      ...newRegion,
      units: newRegion.units.filter((u) => u.name !== 'keystone-api' && u.name !== 'keystone-keys'),
    };
    const r = await apply(without);
    assert.deepEqual([...r.removed].sort(), ['keystone-api', 'keystone-keys']);
    const left = await versions();
    assert.equal(left['Deployment/keystone-api'], undefined);
    assert.equal(left['Service/keystone'], undefined);
    assert.equal(left['Job/keystone-keys'], undefined);
    assert.ok(left['PersistentVolumeClaim/keystone-fernet-keys'], 'a claim was pruned');
    assert.ok(events.some((e) => e.type === 'warning' && e.message.includes('keystone-fernet-keys')));
    await apply(newRegion);
  });

  it('down removes everything of the cloud but its claims; --purge removes those too', async () => {
    await engine.destroy({ purge: false, report });
    const claims = plan.units
      .flatMap((u) => u.objects)
      .filter((o) => o.kind === 'PersistentVolumeClaim')
      .map((o) => `PersistentVolumeClaim/${o.metadata.name}`);
    assert.deepEqual(Object.keys(await versions()).sort(), claims.sort());
    assert.equal((await engine.revisions().list()).length, 1, 'down took the history');
    await engine.destroy({ purge: true, report });
    assert.deepEqual(await versions(), {});
    // The history goes with --purge, and does not keep the namespace podstack made.
    assert.deepEqual(await engine.revisions().list(), []);
    const namespaces = await connect({ kubeconfig }).core.listNamespace();
    assert.ok(!namespaces.items.some((n) => n.metadata?.name === NAMESPACE), `${NAMESPACE} is still there`);
  });
});
