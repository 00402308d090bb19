import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catalog } from '../../src/catalog/index.js';
import { fernetKeysNeeded, ROTATION_CONTAINER, ROTATION_UNIT } from '../../src/catalog/keystone.js';
import { SpecError } from '../../src/errors.js';
import type { Deployment, Secret } from '../../src/model/objects.js';
import { parseCloud } from '../../src/spec/load.js';
import { planOf } from './_fixtures.js';

const issuesOf = (yaml: string): string[] => {
  try {
    parseCloud(yaml, 'cloud.yaml', catalog);
  } catch (e) {
    assert.ok(e instanceof SpecError, `expected a SpecError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
};

/** keystone.conf as the plan renders it, decoded from its Secret. */
function keystoneConf(yaml: string): string {
  const unit = planOf(yaml).units.find((u) => u.name === 'keystone-config')!;
  const s = unit.objects.find((o) => o.metadata.name === 'keystone-config') as Secret;
  return Buffer.from(s.data!['keystone.conf']!, 'base64').toString('utf8');
}

function rotator(yaml: string): Deployment {
  const unit = planOf(yaml, 'kubernetes').units.find((u) => u.name === ROTATION_UNIT)!;
  return unit.objects.find((o) => o.kind === 'Deployment') as Deployment;
}

const env = (d: Deployment) =>
  Object.fromEntries(
    (d.spec!.template.spec!.containers.find((c) => c.name === ROTATION_CONTAINER)!.env ?? []).map((e) => [
      e.name,
      e.value,
    ]),
  );

describe('keystone key rotation', () => {
  it("keeps as many Fernet keys as the longest-lived token needs (Keystone's FAQ), 3 when rotation is off", () => {
    // (1 h token + 48 h allow_expired_window) / 72 h, rounded up, + staged + primary.
    assert.equal(fernetKeysNeeded({ fernet: '3d', credential: 'off' }, undefined), 3);
    assert.equal(fernetKeysNeeded({ fernet: '1h', credential: 'off' }, undefined), 51);
    assert.equal(fernetKeysNeeded({ fernet: '24h', credential: 'off' }, { expiration: 86400 }), 5);
    assert.equal(fernetKeysNeeded({ fernet: 'off', credential: 'off' }, undefined), 3);
  });

  it('writes that count into keystone.conf, from the interval and the token options', () => {
    assert.match(keystoneConf(''), /^max_active_keys = 3$/m);
    assert.match(
      keystoneConf('services:\n  keystone:\n    keyRotation: {fernet: 6h}\n'),
      /^max_active_keys = 11$/m,
    );
  });

  it('runs the rotation with the intervals in seconds, on the node of the API pods that mount the same claims', () => {
    const d = rotator('services:\n  keystone:\n    keyRotation: {fernet: 12h, credential: "off"}\n');
    assert.deepEqual(env(d), {
      PODSTACK_USER: 'keystone',
      PODSTACK_FERNET_EVERY: '43200',
      PODSTACK_CREDENTIAL_EVERY: '0',
    });
    assert.equal(d.spec!.strategy!.type, 'Recreate');
    const term =
      d.spec!.template.spec!.affinity!.podAffinity!.requiredDuringSchedulingIgnoredDuringExecution![0]!;
    const api = planOf('', 'kubernetes')
      .units.find((u) => u.name === 'keystone-api')!
      .objects.find((o) => o.kind === 'Deployment') as Deployment;
    const apiLabels = api.spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(term.labelSelector!.matchLabels!)) assert.equal(apiLabels[k], v, k);
    assert.equal(term.topologyKey, 'kubernetes.io/hostname');
    const claims = (x: Deployment) =>
      (x.spec!.template.spec!.volumes ?? []).flatMap((v) => v.persistentVolumeClaim?.claimName ?? []).sort();
    assert.deepEqual(claims(d), claims(api));
  });

  it("rolls the API's surge pod onto the node of the pod it replaces: both mount the key claims, which are one node's", () => {
    const api = planOf('', 'kubernetes')
      .units.find((u) => u.name === 'keystone-api')!
      .objects.find((o) => o.kind === 'Deployment') as Deployment;
    const term =
      api.spec!.template.spec!.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0];
    assert.equal(term?.topologyKey, 'kubernetes.io/hostname');
    const labels = api.spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(term!.labelSelector!.matchLabels!)) assert.equal(labels[k], v, k);
  });

  it('refuses an interval without a unit, under an hour, or a max_active_keys that would refuse live tokens', () => {
    assert.deepEqual(issuesOf('services:\n  keystone:\n    keyRotation: {fernet: 72}\n'), [
      'services.keystone.keyRotation.fernet: got 72: must be a number with a unit (m, h or d), such as 72h or 3d, or off',
    ]);
    assert.match(
      issuesOf('services:\n  keystone:\n    keyRotation: {credential: 30m}\n').join('\n'),
      /^services\.keystone\.keyRotation\.credential: got "30m": must be at least 1h/,
    );
    const [issue] = issuesOf(
      'services:\n  keystone:\n    keyRotation: {fernet: 1d}\n    config:\n      keystone.conf:\n        fernet_tokens: {max_active_keys: 3}\n',
    );
    assert.match(
      issue ?? '',
      /^services\.keystone\.config\["keystone\.conf"\]\.fernet_tokens\.max_active_keys: got 3: with keys rotated every 1d, Keystone must keep 5 /,
    );
    assert.deepEqual(
      issuesOf(
        'services:\n  keystone:\n    config:\n      keystone.conf:\n        fernet_tokens: {max_active_keys: 4}\n',
      ),
      [],
    );
  });
});
