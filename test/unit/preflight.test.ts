import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { V1Namespace, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { catalog } from '../../src/catalog/index.js';
import {
  type ClusterFacts,
  clusterProblems,
  neededAccess,
  podSecurityLevel,
} from '../../src/engines/kubernetes/preflight.js';
import { PreflightError } from '../../src/engines/preflight.js';
import { type Answer, registryOf, registryProblems } from '../../src/engines/registry.js';
import { SpecError } from '../../src/errors.js';
import type { Plan } from '../../src/model/unit.js';
import { parseCloud } from '../../src/spec/load.js';
import { planOf } from './_fixtures.js';

const NS = 'openstack';
/** A node address: the APIs are published there (a loopback address is refused, below). */
const NODE = 'endpoints: {address: 192.0.2.10}\n';
const plan = planOf(NODE, 'kubernetes');
const CLAIMS = [
  'glance-images',
  'keystone-credential-keys',
  'keystone-fernet-keys',
  'mariadb-data',
  'mariadb-snapshots',
  'ovn-central-data',
  'rabbitmq-data',
];

/** A StorageClass as the API lists it. */
const storageClass = (name: string, isDefault = false): V1StorageClass => ({
  metadata: {
    name,
    ...(isDefault ? { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } : {}),
  },
  provisioner: 'kubernetes.io/host-path',
});

const SERVED = ['v1', 'apps/v1', 'batch/v1', 'rbac.authorization.k8s.io/v1', 'storage.k8s.io/v1'];

/** A cluster that can take the default cloud: everything served and allowed, a default class. */
function facts(over: Partial<ClusterFacts> = {}, p: Plan = plan): ClusterFacts {
  return {
    namespace: NS,
    served: new Set(SERVED),
    version: { major: '1', minor: '20', gitVersion: 'v1.20.2' },
    storageClasses: [storageClass('hostpath', true)],
    claims: [],
    namespaceObject: null,
    access: neededAccess(p, NS, false).map((attributes) => ({ attributes, allowed: true })),
    ...over,
  };
}

const problemsOf = (f: ClusterFacts, p: Plan = plan) => clusterProblems(p, f).problems;
const text = (f: ClusterFacts, p: Plan = plan) =>
  problemsOf(f, p)
    .map((x) => `${x.what} | ${x.fix}`)
    .join('\n');

describe('kubernetes preflight: StorageClass', () => {
  it('a cluster with a default StorageClass takes the default cloud', () => {
    assert.deepEqual(clusterProblems(plan, facts()), { problems: [], warnings: [] });
  });

  it('no default StorageClass: names the claims, the classes there are and both fixes', () => {
    const p = problemsOf(facts({ storageClasses: [storageClass('fast'), storageClass('slow')] }));
    assert.equal(p.length, 1);
    assert.match(p[0]!.what, /no default StorageClass, and the plan has 7 claims \(.*mariadb-data.*\)/);
    // Six by name, the rest counted.
    assert.equal(CLAIMS.filter((c) => p[0]!.what.includes(c)).length, 6, p[0]!.what);
    assert.match(p[0]!.what, /and 1 more\)/);
    assert.match(p[0]!.fix, /set kubernetes\.storageClass in the cloud file to one of: fast, slow/);
    assert.match(
      p[0]!.fix,
      /kubectl annotate storageclass fast storageclass\.kubernetes\.io\/is-default-class=true/,
    );
  });

  it('no StorageClass at all: says to install a provisioner', () => {
    assert.match(
      text(facts({ storageClasses: [] })),
      /no default StorageClass.*\| install a storage provisioner/,
    );
  });

  it('the beta default annotation counts', () => {
    const beta: V1StorageClass = {
      metadata: { name: 'old', annotations: { 'storageclass.beta.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'x',
    };
    assert.deepEqual(problemsOf(facts({ storageClasses: [beta] })), []);
  });

  it('kubernetes.storageClass is put into every claim, and must exist', () => {
    const named = planOf(`${NODE}kubernetes:\n  storageClass: fast\n`, 'kubernetes');
    const claims = named.units.flatMap((u) => u.objects).filter((o) => o.kind === 'PersistentVolumeClaim');
    assert.deepEqual(claims.map((c) => c.metadata.name).sort(), CLAIMS);
    assert.ok(claims.every((c) => c.spec?.storageClassName === 'fast'));
    const without = { storageClasses: [storageClass('fast'), storageClass('hostpath', true)] };
    assert.deepEqual(problemsOf(facts(without, named), named), []);
    const missing = text(
      facts({ storageClasses: [storageClass('slow'), storageClass('hostpath', true)] }, named),
      named,
    );
    assert.match(
      missing,
      /kubernetes\.storageClass is fast, and the cluster has no StorageClass fast; the plan has 7 claims/,
    );
    assert.match(
      missing,
      /set kubernetes\.storageClass to one of: slow, hostpath, or to "" for the default \(hostpath\)/,
    );
  });

  it('the default setting changes no claim, and the Podman plan ignores the setting', () => {
    const claims = (p: Plan) =>
      p.units.flatMap((u) => u.objects).filter((o) => o.kind === 'PersistentVolumeClaim');
    assert.ok(claims(plan).every((c) => c.spec?.storageClassName === undefined));
    assert.deepEqual(planOf('kubernetes:\n  storageClass: fast\n'), planOf(''));
  });

  it('claims already bound need no class; an existing claim cannot change class', () => {
    const bound = CLAIMS.map(
      (name): V1PersistentVolumeClaim => ({
        metadata: { name },
        spec: { storageClassName: 'hostpath' },
        status: { phase: 'Bound' },
      }),
    );
    assert.deepEqual(problemsOf(facts({ storageClasses: [], claims: bound })), []);
    const named = planOf(`${NODE}kubernetes:\n  storageClass: fast\n`, 'kubernetes');
    const moved = text(facts({ storageClasses: [storageClass('fast')], claims: bound }, named), named);
    assert.match(
      moved,
      /claim mariadb-data exists with StorageClass hostpath, and kubernetes\.storageClass is fast/,
    );
    const pending = bound.map((c) => ({ ...c, spec: {}, status: { phase: 'Pending' } }));
    assert.match(text(facts({ storageClasses: [], claims: pending })), /no default StorageClass/);
  });

  it('two default classes are refused before 1.26 only', () => {
    const two = [storageClass('a', true), storageClass('b', true)];
    assert.match(text(facts({ storageClasses: two })), /2 StorageClasses are marked default \(a, b\)/);
    const v127 = { major: '1', minor: '27+', gitVersion: 'v1.27.3' };
    assert.deepEqual(problemsOf(facts({ storageClasses: two, version: v127 })), []);
  });

  it('StorageClasses it may not list: a warning, not a failure', () => {
    const r = clusterProblems(plan, facts({ storageClasses: undefined }));
    assert.deepEqual(r.problems, []);
    assert.match(r.warnings.join('\n'), /could not list the cluster's StorageClasses/);
  });

  it('a plan without claims needs no StorageClass', () => {
    const noClaims: Plan = {
      ...plan,
      units: plan.units.map((u) => ({
        ...u,
        objects: u.objects.filter((o) => o.kind !== 'PersistentVolumeClaim'),
      })),
    };
    assert.deepEqual(problemsOf(facts({ storageClasses: [] }, noClaims), noClaims), []);
  });
});

describe('kubernetes preflight: API versions', () => {
  it('names every kind the cluster serves no version of', () => {
    const t = text(facts({ served: new Set(['v1', 'rbac.authorization.k8s.io/v1beta1']) }));
    assert.match(
      t,
      /serves no API version podstack can write these kinds in: Deployment \(apps\/v1\), DaemonSet \(apps\/v1\), Job \(batch\/v1\)/,
    );
    assert.match(t, /use Kubernetes 1\.20 or newer/);
    assert.deepEqual(
      problemsOf(facts({ served: new Set([...SERVED.slice(0, 3), 'rbac.authorization.k8s.io/v1beta1']) })),
      [],
    );
  });
});

describe('kubernetes preflight: permissions', () => {
  it('asks for every verb podstack uses on each kind, the Role it grants, and the namespace', () => {
    const asked = neededAccess(plan, NS, false).map(
      (a) =>
        `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.group ? `.${a.group}` : ''}${a.namespace ? '' : ' (cluster)'}`,
    );
    for (const want of [
      'create deployments.apps',
      'patch deployments.apps',
      'delete jobs.batch',
      'create persistentvolumeclaims',
      'create roles.rbac.authorization.k8s.io',
      'list pods',
      'get pods/log',
      'watch endpoints',
      'create namespaces (cluster)',
    ])
      assert.ok(asked.includes(want), `${want} not asked`);
    assert.ok(!neededAccess(plan, NS, true).some((a) => a.resource === 'namespaces'));
  });

  it('names what is denied, grouped by resource, and how to grant it', () => {
    const f = facts();
    const access = f.access.map((a) => ({
      ...a,
      allowed: !(
        (a.attributes.resource === 'deployments' && ['create', 'patch'].includes(a.attributes.verb!)) ||
        a.attributes.resource === 'namespaces'
      ),
    }));
    const p = problemsOf({ ...f, access });
    assert.equal(p.length, 2);
    assert.match(
      p[0]!.what,
      /namespace openstack does not exist, and the user of this kubeconfig may not create namespaces/,
    );
    assert.match(p[1]!.what, /may not, in namespace openstack: create, patch deployments\.apps$/);
    assert.match(
      p[1]!.fix,
      /kubectl create rolebinding .* -n openstack .*kubectl auth can-i create deployments\.apps/,
    );
  });

  it('a review that failed is a warning', () => {
    const f = facts();
    const r = clusterProblems(plan, {
      ...f,
      access: f.access.map((a, i) => (i === 0 ? { ...a, allowed: undefined } : a)),
    });
    assert.deepEqual(r.problems, []);
    assert.match(r.warnings.join(), /could not ask the cluster whether this user may/);
  });
});

describe('kubernetes preflight: published addresses', () => {
  it('a loopback address is no node address: refused, naming the field to set', () => {
    const loopback = planOf('', 'kubernetes');
    const t = text(facts({}, loopback), loopback);
    assert.match(t, /published on 127\.0\.0\.1, which on Kubernetes is no node's address/);
    assert.match(t, /set endpoints\.address/);
    assert.deepEqual(problemsOf(facts()), []);
  });
});

describe('kubernetes preflight: pod security', () => {
  const labelled = (level: string): V1Namespace => ({
    metadata: { name: NS, labels: { 'pod-security.kubernetes.io/enforce': level } },
  });
  const v125 = { major: '1', minor: '25', gitVersion: 'v1.25.0' };

  it('the node pod is privileged: a baseline namespace refuses it, naming it and the label to set', () => {
    const t = text(facts({ namespaceObject: labelled('baseline'), version: v125 }));
    assert.match(
      t,
      /namespace openstack enforces pod security level baseline .*DaemonSet\/.*privileged container/,
    );
    assert.match(
      t,
      /kubectl label namespace openstack pod-security\.kubernetes\.io\/enforce=privileged --overwrite/,
    );
  });

  it('privileged or unlabelled namespaces take the plan; before 1.23 the label is not enforced', () => {
    assert.deepEqual(problemsOf(facts({ namespaceObject: labelled('privileged'), version: v125 })), []);
    assert.deepEqual(problemsOf(facts({ namespaceObject: { metadata: { name: NS } }, version: v125 })), []);
    assert.deepEqual(problemsOf(facts({ namespaceObject: labelled('restricted') })), []);
  });

  it('levels: privileged for host access, baseline for root, restricted for locked-down pods', () => {
    const c = { name: 'c', image: 'i' };
    assert.equal(podSecurityLevel({ containers: [c], hostNetwork: true }).level, 'privileged');
    assert.equal(
      podSecurityLevel({ containers: [{ ...c, securityContext: { privileged: true } }] }).why[0],
      'privileged container c',
    );
    assert.equal(
      podSecurityLevel({ containers: [c], volumes: [{ name: 'h', hostPath: { path: '/' } }] }).level,
      'privileged',
    );
    assert.equal(podSecurityLevel({ containers: [c] }).level, 'baseline');
    const locked = {
      ...c,
      securityContext: {
        allowPrivilegeEscalation: false,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
    };
    assert.equal(podSecurityLevel({ containers: [locked] }).level, 'restricted');
  });
});

describe('preflight error and registry', () => {
  it('one error, exit code 2, listing every problem with its fix', () => {
    const p = problemsOf(facts({ storageClasses: [], served: new Set(['v1']) }));
    const e = new PreflightError('the cluster at https://k:6443 (namespace openstack)', p);
    assert.equal(e.exitCode, 2);
    assert.match(
      e.message,
      /cannot take this cloud \(2 problems\):\n {2}- .*\n {4}fix: .*\n {2}- .*\n {4}fix: /,
    );
    assert.match(e.hint!, /nothing was built, pushed or applied/);
  });

  it('registryOf: the first part of the prefix when it is a host', () => {
    assert.equal(registryOf('registry.example:5000/podstack'), 'registry.example:5000');
    assert.equal(registryOf('127.0.0.1:15500/podstack'), '127.0.0.1:15500');
    assert.equal(registryOf('localhost/podstack'), 'localhost');
    assert.equal(registryOf('myorg/podstack'), undefined);
    assert.equal(registryOf('podstack'), undefined);
  });

  /** A registry host that answers each URL as given; records what was asked. */
  const fake = (answers: Record<string, Answer>) => {
    const asked: string[] = [];
    const get = async (url: string, verify: boolean) => {
      asked.push(`${url} ${verify}`);
      return answers[url] ?? { error: 'connect ECONNREFUSED', code: 'ECONNREFUSED' };
    };
    return { asked, get };
  };

  it('200 or 401 on /v2/ is a registry; only the named registry is asked', async () => {
    for (const status of [200, 401]) {
      const f = fake({ 'https://r.example:5000/v2/': { status } });
      assert.deepEqual(await registryProblems('r.example:5000/podstack', true, f.get), []);
      assert.deepEqual(f.asked, ['https://r.example:5000/v2/ true']);
    }
    const none = fake({});
    assert.deepEqual(await registryProblems('myorg/podstack', true, none.get), []);
    assert.deepEqual(none.asked, []);
  });

  it('tlsVerify: false is HTTPS unverified, then plain HTTP', async () => {
    const f = fake({ 'http://127.0.0.1:15500/v2/': { status: 200 } });
    assert.deepEqual(await registryProblems('127.0.0.1:15500/podstack', false, f.get), []);
    assert.deepEqual(f.asked, ['https://127.0.0.1:15500/v2/ false', 'http://127.0.0.1:15500/v2/ false']);
  });

  it('a registry that is not there, or answers plain HTTP while TLS is verified, is named with the fix', async () => {
    const gone = await registryProblems('127.0.0.1:15500/podstack', false, fake({}).get);
    assert.equal(gone.length, 1);
    assert.match(
      gone[0]!.what,
      /the registry 127\.0\.0\.1:15500 \(images\.prefix\) did not answer \/v2\/ over HTTPS \(connect ECONNREFUSED\)/,
    );
    assert.match(gone[0]!.fix, /start the registry, or set images\.prefix/);
    const plain = await registryProblems(
      'r:5000/podstack',
      true,
      fake({ 'http://r:5000/v2/': { status: 200 } }).get,
    );
    assert.match(plain[0]!.fix, /it answers plain HTTP: set images\.tlsVerify to false/);
    const web = await registryProblems(
      'r:5000/podstack',
      true,
      fake({ 'https://r:5000/v2/': { status: 404 } }).get,
    );
    assert.match(web[0]!.what, /HTTP 404, not a registry's answer/);
  });

  it('the real GET: a plain-http registry on loopback answering 401 is there; a closed port is not', async () => {
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/v2/' ? 401 : 404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      assert.deepEqual(await registryProblems(`127.0.0.1:${port}/podstack`, false), []);
      const verified = await registryProblems(`127.0.0.1:${port}/podstack`, true);
      assert.match(verified[0]!.fix, /it answers plain HTTP: set images\.tlsVerify to false/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const closed = await registryProblems(`127.0.0.1:${port}/podstack`, false);
    assert.match(closed[0]!.what, /ECONNREFUSED/);
  });

  it('kubernetes.storageClass must be a StorageClass name', () => {
    assert.throws(
      () => parseCloud('kubernetes:\n  storageClass: Fast Disks\n', 'cloud.yaml', catalog),
      (e: unknown) =>
        e instanceof SpecError &&
        /kubernetes\.storageClass: got "Fast Disks": must be the name of a StorageClass/.test(e.message),
    );
    assert.throws(() => parseCloud('kubernetes:\n  storageclass: x\n', 'cloud.yaml', catalog), SpecError);
  });
});
