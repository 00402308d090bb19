import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catalog } from '../../src/catalog/index.js';
import { cephxKey, renderKeyring, uuidFrom } from '../../src/config/ceph.js';
import { SpecError } from '../../src/errors.js';
import type { KubeObject, PersistentVolumeClaim, Secret, Service } from '../../src/model/objects.js';
import { planToYaml } from '../../src/plan/render.js';
import { parseCloud } from '../../src/spec/load.js';
import { planOf, SECRETS } from './_fixtures.js';

const CEPH = 'name: c1\nnetwork: {subnet: 10.89.9.0/24}\nservices:\n  ceph: {enabled: true}\n';
/** The cloud's internal address on Podman: its network's gateway. */
const INTERNAL = '10.89.9.1';

const secretFiles = (o: Secret) =>
  Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));

function objectsOf(yaml: string): KubeObject[] {
  return planOf(yaml).units.flatMap((u) => u.objects);
}

function file(objects: readonly KubeObject[], secretName: string, key: string): string {
  const s = objects.find((o): o is Secret => o.kind === 'Secret' && o.metadata.name === secretName);
  assert.ok(s, `no Secret ${secretName}`);
  const files = secretFiles(s);
  assert.ok(key in files, `${secretName} has no ${key}: ${Object.keys(files).join(', ')}`);
  return files[key]!;
}

describe('ceph keys', () => {
  it('makes a cephx key as ceph-authtool does: AES, 16 key bytes, 40 characters of base64', () => {
    const key = cephxKey('a password');
    assert.equal(key.length, 40);
    const raw = Buffer.from(key, 'base64');
    assert.equal(raw.length, 28);
    assert.equal(raw.readInt16LE(0), 1, 'type AES');
    assert.equal(raw.readInt16LE(10), 16, 'key length');
    assert.equal(cephxKey('a password'), key, 'the same entry gives the same key');
    assert.notEqual(cephxKey('another password'), key);
    assert.notEqual(raw.subarray(12).toString('hex'), '0'.repeat(32));
  });

  it('makes version 4 UUIDs, one per purpose', () => {
    const fsid = uuidFrom('seed', 'fsid');
    assert.match(fsid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(uuidFrom('seed', 'osd.0'), fsid);
    assert.equal(uuidFrom('seed', 'fsid'), fsid);
  });

  it('writes keyrings as ceph-authtool does', () => {
    assert.equal(
      renderKeyring([
        { entity: 'client.x', key: 'K', caps: { mon: 'profile rbd', osd: 'profile rbd pool=v' } },
      ]),
      '[client.x]\n\tkey = K\n\tcaps mon = "profile rbd"\n\tcaps osd = "profile rbd pool=v"\n',
    );
  });
});

describe('the ceph service', () => {
  it('is off by default', () => {
    assert.equal(
      planOf('name: c1\n').units.some((u) => u.service === 'ceph'),
      false,
    );
  });

  it('runs a monitor, a manager and an OSD, then a Job that makes the pools, in that order', () => {
    const plan = planOf(CEPH);
    const ceph = plan.units.filter((u) => u.service === 'ceph');
    assert.deepEqual(
      ceph.map((u) => [u.name, [...u.dependsOn]]),
      [
        ['ceph-mon', []],
        ['ceph-mgr', ['ceph-mon']],
        ['ceph-osd', ['ceph-mon']],
        ['ceph-bootstrap', ['ceph-mgr', 'ceph-osd']],
      ],
    );
    const mon = plan.units.find((u) => u.name === 'ceph-mon')!;
    const svc = mon.objects.find((o): o is Service => o.kind === 'Service')!;
    // Published on the internal address, which it advertises: a pod's own address changes.
    assert.deepEqual(svc.spec?.externalIPs, [INTERNAL]);
    assert.deepEqual(
      svc.spec?.ports?.map((p) => p.port),
      [3300, 6789],
    );
    const monPod = mon.objects.find((o) => o.kind === 'Deployment')!;
    assert.ok(JSON.stringify(monPod).includes(`"value":"${INTERNAL}"`));
  });

  it('gives every daemon its own key, in its own Secret, and no key anywhere else', () => {
    const objects = objectsOf(CEPH);
    const keys = {
      mon: cephxKey(SECRETS.ceph_mon_key!),
      admin: cephxKey(SECRETS.ceph_admin_key!),
      mgr: cephxKey(SECRETS.ceph_mgr_key!),
      osd: cephxKey(SECRETS.ceph_osd_key!),
      bootstrapOsd: cephxKey(SECRETS.ceph_bootstrap_osd_key!),
    };
    const mkfs = file(objects, 'ceph-mon-config', 'mkfs.keyring');
    for (const k of [keys.mon, keys.admin, keys.mgr, keys.bootstrapOsd]) assert.ok(mkfs.includes(k));
    assert.ok(!mkfs.includes(keys.osd), 'the OSD registers its own key (osd new)');
    assert.match(mkfs, /\[mon\.\]\n\tkey = .*\n\tcaps mon = "allow \*"/);
    assert.equal(
      file(objects, 'ceph-mgr-config', 'mgr.keyring'),
      `[mgr.x]\n\tkey = ${keys.mgr}\n\tcaps mon = "allow profile mgr"\n\tcaps osd = "allow *"\n\tcaps mds = "allow *"\n`,
    );
    assert.deepEqual(JSON.parse(file(objects, 'ceph-osd-config', 'osd-new.json')), {
      cephx_secret: keys.osd,
    });
    assert.ok(file(objects, 'ceph-bootstrap-config', 'admin.keyring').includes(keys.admin));
    // Only in Secrets: not in a Deployment's env, a Job's args, a ConfigMap or an annotation.
    const outside = JSON.stringify(objects.filter((o) => o.kind !== 'Secret'));
    for (const [name, k] of Object.entries(keys))
      assert.ok(!outside.includes(k), `${name} key outside a Secret`);
    // And the daemons' Secrets hold no key they do not use.
    assert.ok(
      !JSON.stringify(
        secretFiles(objects.find((o) => o.metadata.name === 'ceph-mgr-config') as Secret),
      ).includes(keys.admin),
    );
  });

  it('plan -o yaml masks the keys as it masks the entries they come from', () => {
    const shown = planToYaml(planOf(CEPH), SECRETS);
    for (const name of [
      'ceph_mon_key',
      'ceph_admin_key',
      'ceph_mgr_key',
      'ceph_osd_key',
      'ceph_bootstrap_osd_key',
    ]) {
      assert.ok(!shown.includes(cephxKey(SECRETS[name]!)), `${name}'s key is printed`);
      assert.ok(shown.includes(`<secret:${name}>`), `${name} is not shown masked`);
    }
  });

  it('writes one ceph.conf for all: the monitor by name, one replica, the warnings that implies silenced, the OSD file sized', () => {
    const sized =
      'name: c1\nnetwork: {subnet: 10.89.9.0/24}\nservices:\n  ceph: {enabled: true, osdSize: 20Gi}\n';
    const conf = file(objectsOf(sized), 'ceph-osd-config', 'ceph.conf');
    assert.match(conf, new RegExp(`^fsid = ${uuidFrom(SECRETS.ceph_fsid!, 'fsid')}$`, 'm'));
    assert.match(conf, /^mon_host = 10\.89\.9\.1$/m);
    assert.match(conf, /^osd_pool_default_size = 1$/m);
    assert.match(conf, /^mon_warn_on_pool_no_redundancy = false$/m);
    assert.match(conf, /^bluestore_block_size = 21474836480$/m);
    const claim = objectsOf(sized).find(
      (o): o is PersistentVolumeClaim =>
        o.kind === 'PersistentVolumeClaim' && o.metadata.name === 'ceph-osd-data',
    );
    assert.equal(claim?.spec?.resources?.requests?.storage, '22Gi');
  });

  it('takes ceph.conf overrides, and refuses an OSD size that is not in GiB, naming the field', () => {
    const conf = file(
      objectsOf(
        'name: c1\nservices:\n  ceph:\n    enabled: true\n    config:\n      ceph.conf:\n        osd: {bluestore_cache_size: 268435456}\n',
      ),
      'ceph-osd-config',
      'ceph.conf',
    );
    assert.match(conf, /^bluestore_cache_size = 268435456$/m);
    assert.throws(
      () => parseCloud('name: c1\nservices:\n  ceph: {enabled: true, osdSize: 10G}\n', 'cloud.yaml', catalog),
      (e: unknown) =>
        e instanceof SpecError && /services\.ceph\.osdSize/.test(e.message) && /10Gi/.test(e.message),
    );
  });
});
