import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeConfig, StorageV1Api } from '@kubernetes/client-node';
import { connect } from '../../src/engines/kubernetes/client.js';
import { KubernetesEngine } from '../../src/engines/kubernetes/engine.js';
import { PodstackError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/events.js';
import { up } from '../../src/lifecycle/up.js';
import { startCluster } from '../kube-cluster/cluster.js';
import { planOf } from '../unit/_fixtures.js';
import { objectsOf } from './_objects.js';

/**
 * The preflight against a real kube-apiserver (the 'api' tier) set up as a cluster where nobody
 * set storage up: no provisioner, no default StorageClass. `up` must fail at once, naming the
 * StorageClass problem and its fix, having built and applied nothing; naming a StorageClass that
 * exists (kubernetes.storageClass) passes. The normal cluster is restored at the end.
 */
const CLOUD = 'preflight';
const NAMESPACE = 'podstack-preflight';
const MANUAL = 'podstack-manual';
const isRoot = process.getuid?.() === 0;

const KINDS = [
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'Service'],
  ['v1', 'ServiceAccount'],
  ['v1', 'PersistentVolumeClaim'],
  ['apps/v1', 'Deployment'],
  ['batch/v1', 'Job'],
  ['rbac.authorization.k8s.io/v1', 'Role'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
] as const;

/** How many claims the default cloud has, from its plan (the catalog decides, not this test). */
const claimCount = () =>
  planOf('', 'kubernetes')
    .units.flatMap((u) => u.objects)
    .filter((o) => o.kind === 'PersistentVolumeClaim').length;

describe('kubernetes preflight against a cluster without storage', { skip: !isRoot && 'needs root' }, () => {
  let kubeconfig: string;
  let stateDir: string;
  let work: string;
  let engine: KubernetesEngine;
  const events: ProgressEvent[] = [];
  const report = (e: ProgressEvent) => void events.push(e);
  const storage = () => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    return kc.makeApiClient(StorageV1Api);
  };
  /** Every object of the cloud in the namespace, as kind/name. */
  const applied = async () =>
    (
      await Promise.all(
        KINDS.map(async ([v, kind]) =>
          (await objectsOf(kubeconfig, NAMESPACE, CLOUD, v, kind)).map((o) => `${kind}/${o.metadata?.name}`),
        ),
      )
    ).flat();

  before(async () => {
    const cluster = await startCluster({ tier: 'api', storage: false });
    kubeconfig = cluster.kubeconfig;
    stateDir = cluster.stateDir;
    engine = new KubernetesEngine({ cluster: connect({ kubeconfig, namespace: NAMESPACE }), cloud: CLOUD });
    await engine.destroy({ purge: true, report });
    await storage()
      .deleteStorageClass({ name: MANUAL })
      .catch(() => undefined);
    work = await mkdtemp(join(tmpdir(), 'podstack-preflight-'));
  });

  after(async () => {
    await engine?.destroy({ purge: true, report });
    if (kubeconfig)
      await storage()
        .deleteStorageClass({ name: MANUAL })
        .catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
    // The next test file gets the cluster as it always is: provisioner on, default StorageClass.
    await startCluster({ tier: 'api', storage: true });
  });

  it('has no default StorageClass', async () => {
    const classes = (await storage().listStorageClass()).items;
    assert.ok(
      !classes.some(
        (c) => c.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true',
      ),
    );
  });

  it('up --engine kubernetes fails at once, exit 2, naming the StorageClass problem and its fix; nothing is built or applied', async () => {
    const file = join(work, 'cloud.yaml');
    const dataDir = join(work, 'data');
    await writeFile(
      file,
      `name: ${CLOUD}\nendpoints: {address: 192.0.2.10}\nimages:\n  prefix: 127.0.0.1:15500/podstack\n  tlsVerify: false\ndataDir: ${dataDir}\n`,
    );
    const started = Date.now();
    await assert.rejects(
      up({
        file,
        report,
        installHostPackages: false,
        engine: { name: 'kubernetes', cluster: { kubeconfig, namespace: NAMESPACE } },
      }),
      (e: unknown) => {
        assert.ok(e instanceof PodstackError, String(e));
        assert.equal(e.exitCode, 2);
        assert.match(
          e.message,
          /the cluster at https:\/\/.* \(namespace podstack-preflight\) cannot take this cloud/,
        );
        assert.match(
          e.message,
          new RegExp(
            `the cluster has no default StorageClass, and the plan has ${claimCount()} claims \\(.*mariadb-data.*\\) that name none`,
          ),
        );
        assert.match(
          e.message,
          /fix: install a storage provisioner and its StorageClass .*kubernetes\.storageClass/,
        );
        return true;
      },
    );
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
    assert.deepEqual(await applied(), []);
    assert.ok(!existsSync(join(dataDir, 'build')), 'images were built');
  });

  it("the engine's apply runs the same check: exit 2, nothing applied", async () => {
    await assert.rejects(
      engine.apply(planOf(`name: ${CLOUD}\nendpoints: {address: 192.0.2.10}`, 'kubernetes'), {
        report,
        wait: false,
      }),
      (e: unknown) =>
        e instanceof PodstackError && e.exitCode === 2 && /no default StorageClass/.test(e.message),
    );
    assert.deepEqual(await applied(), []);
  });

  it('kubernetes.storageClass naming a StorageClass that is not there is named, with those that are', async () => {
    await storage().createStorageClass({
      body: {
        metadata: { name: MANUAL },
        provisioner: 'kubernetes.io/no-provisioner',
        volumeBindingMode: 'WaitForFirstConsumer',
      },
    });
    const problems = await engine.preflight(
      planOf(
        `name: ${CLOUD}\nendpoints: {address: 192.0.2.10}\nkubernetes:\n  storageClass: fast\n`,
        'kubernetes',
      ),
      report,
    );
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(
      problems[0]!.what,
      /kubernetes\.storageClass is fast, and the cluster has no StorageClass fast/,
    );
    assert.match(problems[0]!.fix, new RegExp(`set kubernetes\\.storageClass to one of: ${MANUAL}`));
  });

  it('with kubernetes.storageClass naming one that exists, the preflight passes and every claim names it', async () => {
    const plan = planOf(
      `name: ${CLOUD}\nendpoints: {address: 192.0.2.10}\nkubernetes:\n  storageClass: ${MANUAL}\n`,
      'kubernetes',
    );
    assert.deepEqual(await engine.preflight(plan, report), []);
    // The claims alone: with the whole plan the full cluster's node would start pods, whose
    // deletion at the end cost this file 90 s; the claims are what the cluster must take.
    const claimsOnly = {
      ...plan,
      units: plan.units.map((u) => ({
        ...u,
        objects: u.objects.filter((o) => o.kind === 'PersistentVolumeClaim'),
      })),
    };
    await engine.apply(claimsOnly, { report, wait: false });
    const claims = await objectsOf(kubeconfig, NAMESPACE, CLOUD, 'v1', 'PersistentVolumeClaim');
    assert.equal(claims.length, claimCount());
    for (const c of claims)
      assert.equal((c as { spec?: { storageClassName?: string } }).spec?.storageClassName, MANUAL);
  });

  it('a user without rights is told which, and how to grant them', async () => {
    // kube-proxy's identity: it may list Services and Endpoints, and nothing podstack writes.
    const limited = new KubernetesEngine({
      cluster: connect({ kubeconfig: join(stateDir, 'kube-proxy.kubeconfig'), namespace: NAMESPACE }),
      cloud: CLOUD,
    });
    const warnings: string[] = [];
    const problems = await limited.preflight(
      planOf(
        `name: ${CLOUD}\nendpoints: {address: 192.0.2.10}\nkubernetes:\n  storageClass: ${MANUAL}\n`,
        'kubernetes',
      ),
      (e) => void (e.type === 'warning' && warnings.push(e.message)),
    );
    const text = problems.map((p) => `${p.what} | ${p.fix}`).join('\n');
    assert.match(
      text,
      /may not, in namespace podstack-preflight: get, list, create, patch, delete configmaps; .*create, patch, delete(, watch)? deployments\.apps;/,
    );
    assert.match(text, /kubectl create rolebinding podstack-admin --clusterrole=admin/);
    assert.match(warnings.join('\n'), /could not list the cluster's StorageClasses/);
  });
});
