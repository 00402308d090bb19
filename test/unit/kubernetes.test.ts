import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { changedFields } from '../../src/engines/kubernetes/diff.js';
import { chooseVersions } from '../../src/engines/kubernetes/discovery.js';
import { endedPods } from '../../src/engines/kubernetes/engine.js';
import { type Live, type Observed, podProblem, unitHealth } from '../../src/engines/kubernetes/health.js';
import { ANNOTATION } from '../../src/model/objects.js';
import { planOf } from './_fixtures.js';

describe('kubernetes: API versions by discovery', () => {
  it('takes the newest version the cluster serves', () => {
    const v = chooseVersions(
      ['Role', 'Deployment'],
      new Set(['v1', 'apps/v1', 'rbac.authorization.k8s.io/v1beta1']),
    );
    assert.equal(v.get('Role'), 'rbac.authorization.k8s.io/v1beta1');
    assert.equal(v.get('Deployment'), 'apps/v1');
  });

  it('names the kind a cluster cannot take', () => {
    assert.throws(() => chooseVersions(['Job'], new Set(['v1'])), /serves none of batch\/v1, needed for Job/);
  });
});

describe('kubernetes: field diff', () => {
  const live = {
    metadata: {
      name: 'a',
      resourceVersion: '7',
      uid: 'u',
      managedFields: [{}],
      annotations: { 'x.io/h': '1' },
    },
    spec: { template: { spec: { containers: [{ image: 'i:1' }] } } },
    status: { replicas: 1 },
  };

  it('ignores what the server writes on every object', () => {
    const same = structuredClone(live);
    same.metadata.resourceVersion = '8';
    same.status.replicas = 0;
    assert.deepEqual(changedFields(live, same), []);
  });

  it("ignores the annotations controllers write (a Deployment's revision), on either side", () => {
    const revised = structuredClone(live) as typeof live & {
      metadata: { annotations: Record<string, string> };
    };
    revised.metadata.annotations['deployment.kubernetes.io/revision'] = '1';
    assert.deepEqual(changedFields(live, revised), []);
    assert.deepEqual(changedFields(revised, live), []);
    const bare = { metadata: { name: 'a' } };
    assert.deepEqual(
      changedFields(bare, {
        metadata: { name: 'a', annotations: { 'deployment.kubernetes.io/revision': '2' } },
      }),
      [],
    );
  });

  it('names changed fields by path, bracketing keys with dots', () => {
    const changed = structuredClone(live);
    changed.metadata.annotations['x.io/h'] = '2';
    changed.spec.template.spec.containers[0]!.image = 'i:2';
    assert.deepEqual(changedFields(live, changed), [
      'metadata.annotations[x.io/h]',
      'spec.template.spec.containers[0].image',
    ]);
  });
});

describe('kubernetes: unit health from cluster state', () => {
  const plan = planOf();
  const unit = (name: string) => plan.units.find((u) => u.name === name)!;
  const observedWith = (name: string, status: object, pods: V1Pod[] = []): Observed => {
    const objects = new Map<string, Live>();
    for (const o of unit(name).objects) {
      const live = structuredClone(o) as unknown as Live;
      live.metadata.generation = 2;
      live.metadata.annotations = { [ANNOTATION.unitHash]: unit(name).hash };
      objects.set(`${o.kind}/${o.metadata.name}`, { ...live, status } as Live);
    }
    return { objects, pods };
  };
  const pod = (containerStatuses: object[], init: object[] = []): V1Pod =>
    ({
      metadata: {
        name: 'p1',
        labels: { 'podstack.dev/unit': 'keystone-api' },
        creationTimestamp: new Date(),
      },
      spec: { containers: [{ name: 'keystone-api' }] },
      status: { phase: 'Pending', containerStatuses, initContainerStatuses: init },
    }) as unknown as V1Pod;

  it('a rolled-out Deployment is ready; one still rolling out is not', () => {
    const done = { observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1 };
    assert.equal(unitHealth(unit('keystone-api'), observedWith('keystone-api', done)).state, 'ready');
    const rolling = { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1 };
    assert.equal(unitHealth(unit('keystone-api'), observedWith('keystone-api', rolling)).state, 'not-ready');
  });

  it('a DaemonSet is ready when every node it is scheduled on runs the current pod, ready', () => {
    const ready = {
      observedGeneration: 2,
      desiredNumberScheduled: 1,
      updatedNumberScheduled: 1,
      numberReady: 1,
    };
    assert.equal(unitHealth(unit('nova-compute'), observedWith('nova-compute', ready)).state, 'ready');
    const old = { ...ready, updatedNumberScheduled: 0 };
    assert.equal(unitHealth(unit('nova-compute'), observedWith('nova-compute', old)).state, 'not-ready');
    const notReady = { ...ready, numberReady: 0 };
    assert.equal(unitHealth(unit('nova-compute'), observedWith('nova-compute', notReady)).state, 'not-ready');
    // No node to run on is said, not waited on in silence.
    const none = {
      observedGeneration: 2,
      desiredNumberScheduled: 0,
      updatedNumberScheduled: 0,
      numberReady: 0,
    };
    const h = unitHealth(unit('nova-compute'), observedWith('nova-compute', none));
    assert.equal(h.state, 'not-ready');
    assert.match(h.reason ?? '', /no node can run it/);
  });

  it("a pod being deleted (a crash-looping one up repairs) does not decide a unit's health", () => {
    const crashing = pod([
      {
        name: 'keystone-api',
        restartCount: 5,
        ready: false,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
      },
    ]);
    const rolling = { observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 0 };
    const o = (p: V1Pod) => observedWith('keystone-api', rolling, [p]);
    assert.equal(unitHealth(unit('keystone-api'), o(crashing)).state, 'failed');
    const deleted = {
      ...crashing,
      metadata: { ...crashing.metadata, deletionTimestamp: new Date() },
    } as V1Pod;
    const h = unitHealth(unit('keystone-api'), o(deleted));
    assert.equal(h.state, 'not-ready', JSON.stringify(h));
  });

  it('an object made from an older plan is outdated', () => {
    const o = observedWith('keystone-db-sync', { succeeded: 1 });
    for (const live of o.objects.values()) live.metadata.annotations = { [ANNOTATION.unitHash]: 'old' };
    assert.equal(unitHealth(unit('keystone-db-sync'), o).state, 'outdated');
  });

  it('a failed Job is fatal; a missing object is missing', () => {
    const failed = { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] };
    const h = unitHealth(unit('keystone-db-sync'), observedWith('keystone-db-sync', failed));
    assert.equal(h.state, 'failed');
    assert.ok(h.fatal);
    assert.match(h.reason ?? '', /BackoffLimitExceeded/);
    assert.equal(unitHealth(unit('keystone-api'), { objects: new Map(), pods: [] }).state, 'missing');
  });

  it('a pod waiting for its dependencies is not a problem, an image that cannot be pulled is', () => {
    const waiting = podProblem([
      pod([], [{ name: 'podstack-wait', restartCount: 0, ready: false, state: { running: {} } }]),
    ]);
    assert.equal(waiting.reason, 'waiting for its dependencies');
    assert.ok(!waiting.fatal);
    const pull = podProblem([
      pod([
        {
          name: 'keystone-api',
          restartCount: 0,
          ready: false,
          state: { waiting: { reason: 'ImagePullBackOff' } },
        },
      ]),
    ]);
    assert.ok(pull.fatal);
    assert.match(pull.reason ?? '', /keystone-api: ImagePullBackOff/);
  });

  it('a crash loop is fatal only after a few restarts, with the previous log', () => {
    const crash = (restartCount: number) =>
      podProblem([
        pod([
          {
            name: 'keystone-api',
            restartCount,
            ready: false,
            state: { waiting: { reason: 'CrashLoopBackOff' } },
          },
        ]),
      ]);
    assert.ok(!crash(1).fatal);
    assert.ok(crash(3).fatal);
    assert.deepEqual(crash(3).logOf, { pod: 'p1', container: 'keystone-api', previous: true });
  });
});

describe('kubernetes: down removes the objects of pods that have ended', () => {
  const pod = (
    name: string,
    deleting: boolean,
    states: ('running' | 'terminated' | 'waiting')[],
    init: ('running' | 'terminated')[] = [],
  ): V1Pod => ({
    // biome-ignore format: one signature
    metadata: { name, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
    status: {
      initContainerStatuses: init.map((s, i) => ({ name: `i${i}`, image: 'x', imageID: '', ready: false, restartCount: 0, state: { [s]: {} } })), // biome-ignore format: one line
      containerStatuses: states.map((s, i) => ({ name: `c${i}`, image: 'x', imageID: '', ready: false, restartCount: 0, state: { [s]: {} } })), // biome-ignore format: one line
    },
  });

  it('only a deleted pod whose every container, init containers too, has terminated', () => {
    assert.deepEqual(
      endedPods([
        pod('ended', true, ['terminated', 'terminated'], ['terminated']),
        pod('one-still-running', true, ['terminated', 'running']),
        pod('init-running', true, ['waiting'], ['running']),
        pod('not-deleted', false, ['terminated']),
        pod('no-statuses-yet', true, []),
      ]),
      ['ended'],
    );
  });
});
