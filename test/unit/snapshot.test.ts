import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { EngineName } from '../../src/lifecycle/project.js';
import { planToYaml } from '../../src/plan/render.js';
import { planOf, SECRETS } from './_fixtures.js';

/**
 * `podstack plan -o yaml` of the default cloud, as committed: any change to what podstack
 * would apply shows up as a reviewable diff of these files. Written by an earlier process, so
 * this also proves the plan is the same from one run to the next, byte for byte.
 * After a deliberate change: `UPDATE_SNAPSHOTS=1 npm test -- unit`, and review the diff.
 */
const dir = new URL('./__snapshots__/', import.meta.url);

describe('plan snapshot', () => {
  for (const engine of ['podman', 'kubernetes'] as EngineName[]) {
    it(`the default cloud on ${engine} plans as committed`, async () => {
      const file = new URL(`plan-${engine}.yaml`, dir);
      const yaml = planToYaml(planOf('', engine), SECRETS);
      if (process.env.UPDATE_SNAPSHOTS) await writeFile(file, yaml);
      const committed = await readFile(file, 'utf8').catch(() => '');
      assert.ok(committed !== '', `no snapshot ${file.pathname}: run UPDATE_SNAPSHOTS=1 npm test -- unit`);
      assert.equal(yaml, committed, 'the plan changed: review it, then UPDATE_SNAPSHOTS=1 npm test -- unit');
    });
  }

  it('shows config files with only the secret values masked, and no secret value anywhere', () => {
    const yaml = planToYaml(
      planOf('services:\n  nova:\n    config:\n      nova.conf: {DEFAULT: {debug: true}}\n'),
      SECRETS,
    );
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.ok(!yaml.includes(value), `${name}'s value is in the plan`);
      assert.ok(!yaml.includes(encodeURIComponent(value)), `${name}'s value, URL-encoded, is in the plan`);
    }
    // A config override reads as what it is, the passwords beside it as their names.
    assert.match(yaml, /nova\.conf: \|[\s\S]*?debug = true/);
    assert.match(yaml, /transport_url = rabbit:\/\/openstack:<secret:rabbitmq_password>@/);
    // Without the secrets, nothing of a Secret's data is shown.
    assert.doesNotMatch(planToYaml(planOf('')), /debug = |<secret:/);
  });
});
