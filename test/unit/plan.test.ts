import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { publishedEndpoints } from '../../src/lifecycle/endpoints.js';
import { topologicalWaves } from '../../src/plan/graph.js';
import { ANNOTATION, LABEL, WAIT_ACCOUNT, WAIT_CONTAINER } from '../../src/plan/objects.js';
import { planToDot, planToText, planToYaml } from '../../src/plan/render.js';
import { IMAGE_REFS, planOf, SECRETS } from './_fixtures.js';

const unitHashes = (yaml = '') => Object.fromEntries(planOf(yaml).units.map((u) => [u.name, u.hash]));

describe('plan', () => {
  it('is deterministic', () => {
    assert.deepEqual(planOf(), planOf());
    assert.equal(planToYaml(planOf()), planToYaml(planOf()));
  });

  it('orders units so that each comes after what it depends on', () => {
    const plan = planOf();
    const seen = new Set<string>();
    for (const u of plan.units) {
      for (const d of u.dependsOn) assert.ok(seen.has(d), `${u.name} comes before its dependency ${d}`);
      seen.add(u.name);
    }
    assert.deepEqual(plan.waves[0], [
      'keystone-config',
      'mariadb',
      'memcached',
      'podstack-access',
      'rabbitmq',
    ]);
    assert.deepEqual(plan.waves.at(-1), ['keystone-api']);
  });

  it('labels every object with the recommended labels and its unit', () => {
    for (const u of planOf('name: east').units) {
      for (const o of u.objects) {
        assert.equal(o.metadata.labels?.[LABEL.managedBy], 'podstack');
        assert.equal(o.metadata.labels?.[LABEL.instance], 'east');
        assert.equal(o.metadata.labels?.[LABEL.unit], u.name);
      }
    }
  });

  it('a keystone.conf override changes keystone units only', () => {
    const before = unitHashes();
    const after = unitHashes(
      'services:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT: {debug: true}\n',
    );
    const changed = Object.keys(before).filter((u) => before[u] !== after[u]);
    assert.deepEqual(changed.sort(), [
      'keystone-api',
      'keystone-bootstrap',
      'keystone-config',
      'keystone-db',
      'keystone-db-sync',
      'keystone-keys',
    ]);
  });

  it('a mariadb.cnf override rolls mariadb and nothing else', () => {
    const before = unitHashes();
    const after = unitHashes(
      'services:\n  mariadb:\n    config:\n      mariadb.cnf:\n        mysqld: {max_connections: 50}\n',
    );
    assert.deepEqual(
      Object.keys(before).filter((u) => before[u] !== after[u]),
      ['mariadb'],
    );
  });

  it('puts a config hash on pod templates that read config', () => {
    const api = planOf().units.find((u) => u.name === 'keystone-api')!;
    const dep = api.objects.find((o) => o.kind === 'Deployment');
    assert.ok(dep?.kind === 'Deployment');
    assert.match(dep.spec?.template.metadata?.annotations?.[ANNOTATION.configHash] ?? '', /^[0-9a-f]{16}$/);
  });

  it('registers the public endpoint on the cloud file address and port', () => {
    const plan = planOf('endpoints: {address: 192.0.2.10}\nservices:\n  keystone: {port: 15000}\n');
    const api = plan.units.flatMap((u) => u.objects).find((o) => o.metadata.name === 'keystone-api');
    assert.ok(api?.kind === 'Deployment');
    assert.deepEqual(api.spec?.template.spec?.containers[0]?.ports, [
      { name: 'api', containerPort: 5000, hostPort: 15000, hostIP: '192.0.2.10', protocol: 'TCP' },
    ]);
    assert.deepEqual(publishedEndpoints(plan, '192.0.2.10'), [
      { service: 'keystone', name: 'keystone-api/api', url: 'http://192.0.2.10:15000' },
    ]);
    assert.match(JSON.stringify(plan), /--bootstrap-public-url http:\/\/192\.0\.2\.10:15000\/v3/);
  });

  it('prints valid Kubernetes YAML without a single secret value', () => {
    const text = planToYaml(planOf());
    for (const value of Object.values(SECRETS))
      assert.ok(!text.includes(value), 'a secret value was printed');
    const docs = parseAllDocuments(text).map((d) => d.toJS());
    assert.ok(docs.length > 10);
    for (const d of docs) {
      assert.ok(
        d.apiVersion && d.kind && d.metadata?.name,
        `incomplete object ${JSON.stringify(d).slice(0, 80)}`,
      );
    }
    const kinds = new Set(docs.map((d) => d.kind));
    assert.deepEqual([...kinds].sort(), [
      'ConfigMap',
      'Deployment',
      'Job',
      'PersistentVolumeClaim',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'ServiceAccount',
    ]);
  });

  it('makes pods wait in the cluster for what their unit depends on', () => {
    const plan = planOf();
    const pod = (unit: string) => {
      const w = plan.units
        .find((u) => u.name === unit)
        ?.objects.find((o) => o.kind === 'Deployment' || o.kind === 'Job');
      assert.ok(w?.kind === 'Deployment' || w?.kind === 'Job');
      return w.spec!.template.spec!;
    };
    const api = pod('keystone-api');
    assert.equal(api.serviceAccountName, WAIT_ACCOUNT);
    assert.deepEqual(api.initContainers?.[0]?.command, [
      'podstack-wait',
      'job/keystone-db-sync',
      'job/keystone-keys',
      'job/keystone-bootstrap',
      'service/memcached',
    ]);
    assert.equal(api.initContainers?.[0]?.name, WAIT_CONTAINER);
    assert.equal(api.initContainers?.[0]?.image, IMAGE_REFS['openstack-base']);
    // Config-only dependencies need no wait: a pod cannot start before what it mounts exists.
    assert.deepEqual(pod('keystone-db').initContainers?.[0]?.command, ['podstack-wait', 'service/mariadb']);
    // Nothing to wait for, nothing added.
    assert.equal(pod('mariadb').initContainers, undefined);
    assert.equal(pod('mariadb').serviceAccountName, undefined);
  });

  it('uses the images it was given', () => {
    const images = new Set(
      planOf()
        .units.flatMap((u) => u.objects)
        .flatMap((o) =>
          o.kind === 'Deployment' || o.kind === 'Job' ? o.spec!.template.spec!.containers : [],
        )
        .map((c) => c.image),
    );
    for (const i of images) assert.ok(Object.values(IMAGE_REFS).includes(i!), `unknown image ${i}`);
  });

  it('renders text and a Graphviz graph', () => {
    const plan = planOf();
    assert.match(planToText(plan), /wave 1:/);
    const dot = planToDot(plan);
    assert.match(dot, /"keystone-bootstrap" -> "keystone-api";/);
    assert.match(dot, /subgraph "cluster_mariadb"/);
  });
});

describe('dependency graph', () => {
  it('groups independent nodes into waves', () => {
    const waves = topologicalWaves(
      new Map([
        ['c', ['a', 'b']],
        ['a', []],
        ['b', ['a']],
        ['d', []],
      ]),
    );
    assert.deepEqual(waves, [['a', 'd'], ['b'], ['c']]);
  });

  it('reports a cycle with its whole path', () => {
    assert.throws(
      () =>
        topologicalWaves(
          new Map([
            ['a', ['b']],
            ['b', ['c']],
            ['c', ['a']],
            ['d', []],
          ]),
        ),
      /dependency cycle: a -> b -> c -> a/,
    );
  });

  it('reports a dependency that is not in the graph', () => {
    assert.throws(() => topologicalWaves(new Map([['a', ['ghost']]])), /a depends on ghost/);
  });
});
