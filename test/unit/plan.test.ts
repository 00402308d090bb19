import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { catalog } from '../../src/catalog/index.js';
import { topologicalWaves } from '../../src/model/graph.js';
import { ANNOTATION, isWorkload, LABEL, WAIT_ACCOUNT, WAIT_CONTAINER } from '../../src/model/objects.js';
import type { Plan, PlannedUnit } from '../../src/model/unit.js';
import { planToDot, planToText, planToYaml } from '../../src/plan/render.js';
import { IMAGE_REFS, planOf, SECRETS } from './_fixtures.js';

const unitHashes = (yaml = '') => Object.fromEntries(planOf(yaml).units.map((u) => [u.name, u.hash]));

const workloadPod = (unit: PlannedUnit) => {
  const w = unit.objects.find(isWorkload);
  assert.ok(w && isWorkload(w), `${unit.name} has no workload`);
  return w.spec!.template.spec!;
};
/** The spec of the Service that publishes a unit's ports, if it has one. */
const publishedOf = (u: PlannedUnit) => {
  const s = u.objects.find((o) => o.kind === 'Service' && (o.spec?.externalIPs ?? []).length > 0);
  return s?.kind === 'Service' ? { externalIPs: s.spec?.externalIPs, ports: s.spec?.ports } : undefined;
};

const unitOf = (plan: Plan, name: string) => {
  const u = plan.units.find((x) => x.name === name);
  assert.ok(u, `no unit ${name}`);
  return u;
};
/** The Secrets a unit's pod mounts, by name. */
const mountedSecrets = (plan: Plan, name: string) =>
  (workloadPod(unitOf(plan, name)).volumes ?? [])
    .flatMap((v) => (v.secret?.secretName ? [v.secret.secretName] : []))
    .sort();
const changedUnits = (yaml: string) => {
  const before = unitHashes();
  const after = unitHashes(yaml);
  return Object.keys(before)
    .filter((u) => before[u] !== after[u])
    .sort();
};
/** The OpenStack services that register an API in Keystone (all but Keystone itself). */
const openstack = catalog
  .filter((s) => s.enabledByDefault && s.kind === 'openstack' && s.api && s.name !== 'keystone')
  .map((s) => s.name);

describe('plan', () => {
  it('orders units so that each comes after what it depends on', () => {
    const plan = planOf();
    const seen = new Set<string>();
    for (const u of plan.units) {
      for (const d of u.dependsOn) assert.ok(seen.has(d), `${u.name} comes before its dependency ${d}`);
      seen.add(u.name);
    }
    assert.ok(plan.waves[0]?.includes('mariadb'));
    for (const s of openstack) assert.ok(plan.waves.at(-1)?.includes(`${s}-api`) || seen.has(`${s}-api`));
  });

  it('has the units every enabled service declares, and only those', () => {
    const services = new Set(planOf().units.map((u) => u.service));
    assert.deepEqual(
      [...services].sort(),
      catalog
        .filter((s) => s.enabledByDefault)
        .map((s) => s.name)
        .sort(),
    );
    assert.ok(planOf('services:\n  ceph: {enabled: true}\n').units.some((u) => u.service === 'ceph'));
    const without = planOf('services:\n  starter: {enabled: false}\n');
    assert.ok(!without.units.some((u) => u.service === 'starter'));
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

  it('a keystone.conf override rolls the Keystone API alone: no bootstrap Job runs again', () => {
    assert.deepEqual(
      changedUnits(
        'services:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT: {debug: true}\n',
      ),
      ['keystone-api', 'keystone-config'],
    );
  });

  it("a service's config override rolls that service's long-running units alone: no Job runs again", () => {
    const plan = planOf();
    for (const s of openstack) {
      const def = catalog.find((d) => d.name === s)!;
      const yaml = `services:\n  ${s}:\n    config:\n      ${def.configFiles[0]}:\n        DEFAULT: {debug: true}\n`;
      const changed = changedUnits(yaml);
      assert.ok(changed.includes(`${s}-api`) && changed.includes(`${s}-config`), `${s}: ${changed}`);
      for (const u of changed) {
        const unit = unitOf(plan, u);
        // The node pod carries the other services' node containers and their config.
        assert.ok(unit.service === s || u === 'nova-compute', `${s}'s override changed ${u}`);
        assert.notEqual(unit.kind, 'job', `${s}'s override runs ${u} again`);
      }
    }
  });

  it('a mariadb.cnf override rolls mariadb and nothing else', () => {
    assert.deepEqual(
      changedUnits(
        'services:\n  mariadb:\n    config:\n      mariadb.cnf:\n        mysqld: {max_connections: 50}\n',
      ),
      ['mariadb'],
    );
  });

  it('a Job runs again when its own inputs change: a new region re-registers, a new port too', () => {
    const region = changedUnits('region: RegionTwo\n');
    for (const s of openstack) assert.ok(region.includes(`${s}-register`), `${s}-register`);
    assert.ok(region.includes('keystone-bootstrap'));
    assert.ok(!region.includes('keystone-db-sync'));
    const port = changedUnits('services:\n  glance: {port: 19292}\n');
    assert.ok(port.includes('glance-register') && port.includes('glance-api'));
    assert.ok(!port.includes('glance-db-sync'));
    for (const s of openstack.filter((x) => x !== 'glance')) assert.ok(!port.includes(`${s}-register`), s);
  });

  it("a Job's key is its pod and inputs, not its labels", () => {
    const subnet = 'network: {subnet: 10.89.50.0/24}\n';
    const plan = planOf(subnet);
    const relabelled = planOf(`name: other\n${subnet}`);
    for (const u of plan.units.filter((x) => x.kind === 'job'))
      assert.equal(unitOf(relabelled, u.name).hash, u.hash, `${u.name} would run again for a label`);
  });

  it('puts a config hash on pod templates that read config', () => {
    const api = unitOf(planOf(), 'keystone-api');
    const dep = api.objects.find((o) => o.kind === 'Deployment');
    assert.ok(dep?.kind === 'Deployment');
    assert.match(dep.spec?.template.metadata?.annotations?.[ANNOTATION.configHash] ?? '', /^[0-9a-f]{16}$/);
  });

  it('gives each pod only the secrets it needs: the admin credential never reaches an API', () => {
    const plan = planOf();
    for (const u of plan.units.filter((x) => x.kind === 'deployment'))
      assert.ok(
        !mountedSecrets(plan, u.name).includes('keystone-admin'),
        `${u.name} mounts the admin credential`,
      );
    for (const s of openstack) {
      assert.deepEqual(mountedSecrets(plan, `${s}-register`), [`${s}-keystone`, 'keystone-admin'].sort());
      assert.deepEqual(mountedSecrets(plan, `${s}-db`), [`${s}-db`, 'mariadb-root'].sort());
      assert.deepEqual(mountedSecrets(plan, `${s}-db-sync`), [`${s}-db`]);
      assert.deepEqual(mountedSecrets(plan, `${s}-api`), [`${s}-config`]);
    }
  });

  it("a change to the conductor's section of nova.conf rolls nova's services but not the node's nova-compute", () => {
    const changed = changedUnits(
      'services:\n  nova:\n    config:\n      nova.conf:\n        conductor:\n          workers: 2\n',
    );
    assert.ok(changed.includes('nova-conductor') && changed.includes('nova-scheduler'), changed.join(' '));
    assert.ok(!changed.includes('nova-compute'), changed.join(' '));
    // DEFAULT is every process's: the node's too.
    assert.ok(
      changedUnits(
        'services:\n  nova:\n    config:\n      nova.conf:\n        DEFAULT:\n          debug: true\n',
      ).includes('nova-compute'),
    );
  });

  it('every Deployment that rolls says how its new generation counts as ready; every API rolls', () => {
    const rolling: string[] = [];
    for (const unit of planOf('').units)
      for (const o of unit.objects) {
        if (o.kind !== 'Deployment' || o.spec?.strategy?.type !== 'RollingUpdate') continue;
        rolling.push(unit.name);
        const a = o.metadata.annotations ?? {};
        const ready = [a[ANNOTATION.surge], a[ANNOTATION.surgeLog], o.spec.minReadySeconds].filter(
          (x) => x !== undefined,
        );
        assert.equal(ready.length, 1, `${unit.name}: ${JSON.stringify(ready)}`);
      }
    for (const api of ['keystone-api', 'glance-api', 'placement-api', 'nova-api', 'neutron-api', 'horizon'])
      assert.ok(rolling.includes(api), `${api} does not roll: ${rolling.join(' ')}`);
  });

  it('an HTTP server behind a Service stays in it while it is slow: its probe waits 10 s, three times', () => {
    const probes = planOf('', 'kubernetes').units.flatMap((unit) =>
      unit.objects
        .filter(isWorkload)
        .flatMap((o) =>
          (o.spec?.template.spec?.containers ?? []).flatMap((c) =>
            c.readinessProbe?.httpGet
              ? [{ at: `${unit.name}/${c.name}`, unit: unit.name, p: c.readinessProbe }]
              : [],
          ),
        ),
    );
    for (const { at, p } of probes) {
      const patience = (p.timeoutSeconds ?? 1) * (p.failureThreshold ?? 3);
      assert.ok(patience >= 30, `${at}: out of its Service after ${patience}s slow`);
    }
    for (const api of ['keystone-api', 'glance-api', 'nova-api', 'nova-metadata', 'horizon'])
      assert.ok(
        probes.some((x) => x.unit === api),
        `${api} has no HTTP readiness probe: ${probes.map((x) => x.at).join(' ')}`,
      );
  });

  it("the hypervisor node's pod holds no database credential: it reaches the database only through the conductor", () => {
    const plan = planOf();
    const mounted = mountedSecrets(plan, 'nova-compute');
    assert.deepEqual(mounted, ['neutron-metadata-config', 'nova-compute-config']);
    for (const name of mounted) {
      const s = plan.units
        .flatMap((u) => u.objects)
        .find((o) => o.kind === 'Secret' && o.metadata.name === name);
      assert.ok(s?.kind === 'Secret', name);
      for (const [key, value] of Object.entries(s.data ?? {}))
        assert.ok(!Buffer.from(value, 'base64').toString().includes('mysql+pymysql'), `${name}/${key}`);
    }
  });

  it('publishes each API on the cloud file address and port, and registers it there', () => {
    const plan = planOf(
      'endpoints: {address: 192.0.2.10}\nservices:\n  keystone: {port: 15000}\n',
      'kubernetes',
    );
    // A Service publishes it, not the pod: the port outlives any one pod, so the API can roll.
    assert.deepEqual(publishedOf(unitOf(plan, 'keystone-api')), {
      externalIPs: ['192.0.2.10'],
      ports: [{ name: 'api', port: 15000, targetPort: 5000, protocol: 'TCP' }],
    });
    assert.ok(
      workloadPod(unitOf(plan, 'keystone-api')).containers.every((c) =>
        (c.ports ?? []).every((p) => p.hostPort === undefined),
      ),
    );
    assert.match(JSON.stringify(plan), /--bootstrap-public-url http:\/\/192\.0\.2\.10:15000\/v3/);
    const glance = workloadPod(unitOf(plan, 'glance-register')).containers[0]!.command!.join(' ');
    assert.match(glance, /--public http:\/\/192\.0\.2\.10:9292 --internal http:\/\/192\.0\.2\.10:9292/);
  });

  it('on Podman, internal endpoints are on the cloud network gateway, where APIs are published too', () => {
    const plan = planOf('network: {subnet: 10.89.7.0/24}\n');
    assert.deepEqual(publishedOf(unitOf(plan, 'glance-api'))?.externalIPs, ['127.0.0.1', '10.89.7.1']);
    const register = workloadPod(unitOf(plan, 'glance-register')).containers[0]!.command!.join(' ');
    assert.match(
      register,
      /--public http:\/\/127\.0\.0\.1:9292 --internal http:\/\/10\.89\.7\.1:9292 --admin http:\/\/10\.89\.7\.1:9292/,
    );
    // Set explicitly, the internal address wins on either engine.
    const explicit = planOf('endpoints: {internal: 192.0.2.99}\n', 'kubernetes');
    assert.match(JSON.stringify(explicit), /--bootstrap-internal-url http:\/\/192\.0\.2\.99:5000\/v3/);
  });

  it('renders every OpenStack service the same way: database, sync, registration, API', () => {
    const plan = planOf();
    for (const s of openstack) {
      assert.deepEqual(unitOf(plan, `${s}-db`).dependsOn, ['mariadb', `${s}-config`]);
      assert.deepEqual(unitOf(plan, `${s}-db-sync`).dependsOn, [`${s}-db`]);
      assert.deepEqual(unitOf(plan, `${s}-register`).dependsOn, ['keystone-api', `${s}-config`]);
      const api = unitOf(plan, `${s}-api`).dependsOn;
      for (const d of [`${s}-db-sync`, `${s}-register`, 'memcached'])
        assert.ok(api.includes(d), `${s}-api: ${api}`);
    }
  });

  it('prints no secret value, in plain text or base64, in any of its forms', () => {
    const plan = planOf();
    const forms = { yaml: planToYaml(plan), text: planToText(plan), dot: planToDot(plan) };
    for (const [form, text] of Object.entries(forms)) {
      for (const value of Object.values(SECRETS)) {
        assert.ok(!text.includes(value), `${form}: a secret value was printed`);
        assert.ok(
          !text.includes(Buffer.from(value).toString('base64')),
          `${form}: a secret was printed in base64`,
        );
      }
    }
    const docs = parseAllDocuments(forms.yaml).map((d) => d.toJS());
    for (const d of docs) {
      assert.ok(
        d.apiVersion && d.kind && d.metadata?.name,
        `incomplete object ${JSON.stringify(d).slice(0, 80)}`,
      );
    }
    // The plan itself does carry them: what is printed is redacted, not what is applied.
    assert.ok(
      JSON.stringify(plan).includes(Buffer.from(SECRETS.keystone_admin_password!).toString('base64')),
    );
  });

  it('makes pods wait in the cluster for what their unit depends on, on Kubernetes only', () => {
    const plan = planOf('', 'kubernetes');
    const api = workloadPod(unitOf(plan, 'keystone-api'));
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
    assert.deepEqual(workloadPod(unitOf(plan, 'keystone-db')).initContainers?.[0]?.command, [
      'podstack-wait',
      'service/mariadb',
    ]);
    assert.equal(workloadPod(unitOf(plan, 'mariadb')).initContainers, undefined);
    // Podman orders units itself: no wait containers, no API access for them.
    const podman = planOf();
    assert.ok(!podman.units.some((u) => u.name === 'podstack-access'));
    for (const u of podman.units.filter((x) => x.kind !== 'config'))
      assert.ok(!(workloadPod(u).initContainers ?? []).some((c) => c.name === WAIT_CONTAINER), u.name);
  });

  it('uses the images it was given', () => {
    const images = new Set(
      planOf('', 'kubernetes')
        .units.flatMap((u) => u.objects)
        .flatMap((o) =>
          o.kind === 'Deployment' || o.kind === 'Job'
            ? [...o.spec!.template.spec!.containers, ...(o.spec!.template.spec!.initContainers ?? [])]
            : [],
        )
        .map((c) => c.image),
    );
    for (const i of images) assert.ok(Object.values(IMAGE_REFS).includes(i!), `unknown image ${i}`);
  });

  it('says that a migration which runs again has its databases dumped first', () => {
    const text = planToText(planOf(''), [
      { unit: 'nova-db-sync', action: 'update', details: ['Job/nova-db-sync'] },
      { unit: 'keystone-db-sync', action: 'create', details: [] },
    ]);
    assert.match(text, /~ nova-db-sync.*\n(.*\n)*? +runs again: nova_api, nova, nova_cell0 dumped first/);
    // A first run (create) has nothing to keep.
    assert.equal(text.match(/runs again/g)?.length, 1);
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
