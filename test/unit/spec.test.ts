import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { catalog } from '../../src/catalog/index.js';
import { cloudJsonSchema } from '../../src/catalog/json-schema.js';
import { SpecError } from '../../src/errors.js';
import { parseCloud } from '../../src/spec/load.js';
import { cloudTemplate } from '../../src/spec/template.js';

const parse = (text: string) => parseCloud(text, 'cloud.yaml', catalog);

function specError(text: string): SpecError {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the cloud file to be rejected');
}

describe('cloud file', () => {
  it('the template init writes holds exactly the defaults, and names every service', () => {
    const template = cloudTemplate(catalog);
    assert.deepEqual(parse(template), parse(''));
    // Spelt out, not left to defaults: a user sees every service they can turn off.
    const written = parseYaml(template) as { services: Record<string, { enabled: boolean }> };
    assert.deepEqual(
      Object.keys(written.services),
      catalog.map((s) => s.name),
    );
    for (const s of catalog) assert.equal(written.services[s.name]?.enabled, s.enabledByDefault, s.name);
  });

  it('an empty file is the default cloud', () => {
    const spec = parse('');
    assert.equal(spec.name, 'podstack');
    assert.equal(spec.endpoints.address, '127.0.0.1');
    assert.equal(spec.services.keystone?.enabled, true);
    assert.equal(spec.services.keystone?.port, 5000);
    assert.equal(spec.dataDir, '/var/lib/podstack');
  });

  it('rejects an unknown key, naming its path and line and suggesting the right one', () => {
    const err = specError('services:\n  keystone:\n    enabeld: false\n');
    assert.equal(err.exitCode, 2);
    assert.equal(err.issues.length, 1);
    const issue = err.issues[0]!;
    assert.equal(issue.path, 'services.keystone.enabeld');
    assert.equal(issue.line, 3);
    assert.match(issue.message, /did you mean "enabled"/);
    assert.match(issue.message, /allowed: enabled, config, port/);
  });

  it('rejects an unknown service and an unknown config file', () => {
    const err = specError('services:\n  keystne: {}\n  keystone:\n    config:\n      keystone.cnf: {}\n');
    const paths = err.issues.map((i) => i.path);
    assert.deepEqual(paths, ['services.keystne', 'services.keystone.config["keystone.cnf"]']);
    assert.match(err.issues[0]!.message, /did you mean "keystone"/);
  });

  it('names the bad value and what is allowed', () => {
    const err = specError('release: yoga\nservices:\n  keystone:\n    port: 70000\n');
    assert.match(err.issues[0]!.message, /got "yoga"; allowed: "zed"/);
    assert.equal(err.issues[0]!.line, 1);
    assert.match(err.issues[1]!.message, /got 70000; must be at most 65535/);
    assert.equal(err.issues[1]!.line, 4);
  });

  it('rejects a service whose requirement is disabled, pointing at the requirement', () => {
    const err = specError('services:\n  mariadb:\n    enabled: false\n');
    assert.equal(err.issues[0]!.path, 'services.mariadb.enabled');
    assert.match(err.issues[0]!.message, /keystone needs database, which mariadb provides/);
  });

  it('accepts a disabled service when everything that needs it is disabled too', () => {
    const needIdentity = catalog.filter((s) => s.needs.includes('identity')).map((s) => s.name);
    const off = [...needIdentity, 'keystone'].map((n) => `  ${n}: {enabled: false}`).join('\n');
    assert.equal(parse(`services:\n${off}\n`).services.keystone?.enabled, false);
    const err = specError('services:\n  keystone: {enabled: false}\n');
    assert.deepEqual(
      err.issues.map((i) => i.message),
      needIdentity.map(
        (n) =>
          `got false: ${n} needs identity, which keystone provides: set services.keystone.enabled to true, or disable ${n}`,
      ),
    );
  });

  it('reports YAML syntax errors with their line', () => {
    const err = specError('name: a\nservices: [\n');
    assert.match(err.issues[0]!.message, /YAML syntax/);
    assert.ok(err.issues[0]!.line !== undefined);
  });

  it('rejects a file that is not a map', () => {
    assert.match(specError('- a\n- b\n').issues[0]!.message, /must be a map/);
  });

  it('takes config overrides in oslo INI form', () => {
    const spec = parse(
      'services:\n  keystone:\n    config:\n      keystone.conf:\n        DEFAULT: {debug: true}\n',
    );
    assert.deepEqual(spec.services.keystone?.config['keystone.conf'], { DEFAULT: { debug: true } });
  });

  it('the committed JSON Schema is the one the schema generates (run `npm run schema`)', async () => {
    const committed = await readFile(new URL('../../schema/cloud.schema.json', import.meta.url), 'utf8');
    assert.equal(committed, cloudJsonSchema());
  });
});
