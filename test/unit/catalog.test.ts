import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catalog } from '../../src/catalog/index.js';
import { CAPABILITIES, defineService } from '../../src/catalog/types.js';

describe('catalog', () => {
  it('every capability a service needs is provided by exactly one service, and named in CAPABILITIES', () => {
    for (const s of catalog) {
      for (const need of s.needs) {
        const providers = catalog.filter((p) => p.provides[need]);
        assert.equal(
          providers.length,
          1,
          `${s.name} needs ${need}: provided by ${providers.map((p) => p.name)}`,
        );
      }
    }
    for (const s of catalog)
      for (const cap of Object.keys(s.provides))
        assert.ok((CAPABILITIES as readonly string[]).includes(cap), `${s.name} provides ${cap}`);
  });

  it('names secrets and config files once, so misspelling one fails to compile', () => {
    // Checked by tsc (npm test runs it), not at run time: if a misspelt name compiled,
    // the @ts-expect-error lines below would themselves be errors.
    const def = defineService({
      name: 'example',
      description: 'a service declared only for this test',
      kind: 'openstack',
      enabledByDefault: false,
      secrets: ['example_password'],
      images: [],
      configFiles: ['example.conf'],
      needs: [],
      provides: {},
      render(ctx) {
        // @ts-expect-error a secret the service did not declare
        void ctx.secrets.example_pasword;
        // @ts-expect-error a config file the service did not declare
        void ctx.overrides('exampel.conf');
        void ctx.secrets.example_password;
        void ctx.overrides('example.conf');
        return [];
      },
    });
    assert.equal(def.name, 'example');
  });
});
