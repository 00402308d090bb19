import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/engines/kubernetes/client.js';
import { KubernetesEngine } from '../../src/engines/kubernetes/engine.js';
import type { ProgressEvent } from '../../src/events.js';
import type { Plan } from '../../src/plan/unit.js';
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
  const plan = planOf(`name: ${CLOUD}`);
  const apply = (p: Plan) => engine.apply(p, { report, wait: false });

  /**
   * Kind/name -> what a write by podstack would change: the resourceVersion, except for
   * Deployments and Jobs, whose controllers record status (a new resourceVersion) on their own:
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
      ['batch/v1', 'Job'],
      ['rbac.authorization.k8s.io/v1', 'Role'],
      ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
    ] as const) {
      const list = await objectsOf(kubeconfig, NAMESPACE, CLOUD, apiVersion, kind);
      for (const o of list) {
        const m = o.metadata;
        out[`${kind}/${m?.name}`] =
          kind === 'Deployment' || kind === 'Job'
            ? `generation ${m?.generation} ${JSON.stringify(m?.managedFields?.find((f) => f.manager === 'podstack'))}`
            : (m?.resourceVersion ?? '');
      }
    }
    return out;
  }

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

  it('diff is empty for the applied plan and names the fields a config change touches', async () => {
    assert.deepEqual(
      (await engine.diff(plan)).filter((c) => c.action !== 'unchanged'),
      [],
    );
    const changed = planOf(
      `name: ${CLOUD}\nservices:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT: {debug: true}\n`,
    );
    const diff = await engine.diff(changed);
    const touched = diff
      .filter((c) => c.action !== 'unchanged')
      .map((c) => c.unit)
      .sort();
    assert.ok(
      touched.every((u) => u.startsWith('keystone')),
      `non-keystone units changed: ${touched}`,
    );
    const config = diff.find((c) => c.unit === 'keystone-config')!;
    assert.equal(config.action, 'update');
    assert.match(config.details.join('\n'), /Secret\/keystone-config: data\[keystone\.conf\]/);
    assert.ok(!config.details.join('\n').includes('debug'), 'a Secret value was shown');
    const api = diff.find((c) => c.unit === 'keystone-api')!;
    assert.match(api.details.join('\n'), /Deployment\/keystone-api: .*config-hash/);
    assert.match(
      diff.find((c) => c.unit === 'keystone-db-sync')!.details.join('\n'),
      /replace \(runs again\)/,
    );
  });

  it('a Job whose inputs changed is replaced; the rest of the unit stays', async () => {
    const cluster = connect({ kubeconfig, namespace: NAMESPACE });
    const uid = async () =>
      (
        await cluster.objects.read({
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: 'keystone-db-sync', namespace: NAMESPACE },
        })
      ).metadata?.uid;
    const before = await uid();
    const beforeVersions = await versions();
    const changed = planOf(
      `name: ${CLOUD}\nservices:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT: {debug: true}\n`,
    );
    const r = await apply(changed);
    assert.notEqual(await uid(), before);
    assert.ok(r.changed.includes('keystone-db-sync'));
    const after = await versions();
    for (const k of ['Deployment/mariadb', 'Service/mariadb', 'Deployment/memcached', 'Secret/mariadb-root'])
      assert.equal(after[k], beforeVersions[k], `${k} was written`);
    await apply(plan);
  });

  it('objects that left the plan are pruned; claims stay', async () => {
    const without: Plan = {
      ...plan,
      units: plan.units.filter((u) => u.name !== 'keystone-api' && u.name !== 'keystone-keys'),
    };
    const r = await apply(without);
    assert.deepEqual([...r.removed].sort(), ['keystone-api', 'keystone-keys']);
    const left = await versions();
    assert.equal(left['Deployment/keystone-api'], undefined);
    assert.equal(left['Service/keystone'], undefined);
    assert.equal(left['Job/keystone-keys'], undefined);
    assert.ok(left['PersistentVolumeClaim/keystone-fernet-keys'], 'a claim was pruned');
    assert.ok(events.some((e) => e.type === 'warning' && e.message.includes('keystone-fernet-keys')));
    await apply(plan);
  });

  it('down removes everything of the cloud but its claims; --purge removes those too', async () => {
    await engine.destroy({ purge: false, report });
    assert.deepEqual(Object.keys(await versions()).sort(), [
      'PersistentVolumeClaim/keystone-credential-keys',
      'PersistentVolumeClaim/keystone-fernet-keys',
      'PersistentVolumeClaim/mariadb-data',
      'PersistentVolumeClaim/rabbitmq-data',
    ]);
    await engine.destroy({ purge: true, report });
    assert.deepEqual(await versions(), {});
  });
});
