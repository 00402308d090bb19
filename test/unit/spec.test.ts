import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { catalog } from '../../src/catalog/index.js';
import { cloudJsonSchema } from '../../src/catalog/json-schema.js';
import { FileError, SpecError } from '../../src/errors.js';
import { describeFsError } from '../../src/spec/files.js';
import { loadCloud, parseCloud, parseYaml as parseSpecYaml } from '../../src/spec/load.js';
import { isDnsHostname, isIpAddress } from '../../src/spec/schema.js';
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
    assert.equal(spec.images.compression, 'zstd');
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
    const compression = specError('images:\n  compression: lz4\n').issues[0]!;
    assert.equal(compression.path, 'images.compression');
    assert.match(compression.message, /got "lz4"; allowed: "zstd", "gzip"/);
    const bridge = specError('network:\n  externalBridge: "br ex; rm"\n').issues[0]!;
    assert.equal(bridge.path, 'network.externalBridge');
    assert.match(bridge.message, /name of a network interface/);
    assert.equal(
      specError('network:\n  externalBridge: a-name-too-long-16\n').issues[0]!.path,
      'network.externalBridge',
    );
  });

  it('rejects a service whose requirement is disabled, pointing at the requirement', () => {
    const err = specError('services:\n  mariadb:\n    enabled: false\n');
    assert.equal(err.issues[0]!.path, 'services.mariadb.enabled');
    assert.match(err.issues[0]!.message, /keystone needs database, which mariadb provides/);
  });

  it('accepts a disabled service when everything that needs it is disabled too', () => {
    const needIdentity = catalog
      .filter((s) => s.enabledByDefault && s.needs.includes('identity'))
      .map((s) => s.name);
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

  it('refuses YAML the parser refuses for safety, naming the file: aliases expanding to too much, no anchor, nesting', () => {
    let bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\n';
    for (const [p, c] of ['ab', 'bc', 'cd', 'de', 'ef', 'fg'])
      bomb += `${c}: &${c} [${Array(9).fill(`*${p}`)}]\n`;
    for (const [text, message] of [
      [bomb, /aliases expand to too much data/],
      ['region: *nowhere\n', /YAML: Unresolved alias/],
      [`region: ${'['.repeat(20000)}${']'.repeat(20000)}\n`, /YAML/],
      [`region: ${'{a: '.repeat(20000)}1${'}'.repeat(20000)}\n`, /YAML/],
    ] as const) {
      const err = specError(text);
      assert.equal(err.file, 'cloud.yaml');
      assert.match(err.issues[0]!.message, message);
    }
    // The same parser reads secrets.yaml and clouds.yaml: it names whichever file it was given.
    assert.throws(
      () => parseSpecYaml(bomb, 'secrets.yaml'),
      (e: unknown) => e instanceof SpecError && e.file === 'secrets.yaml',
    );
  });

  it('takes IP literals and DNS host names where each field allows them', () => {
    for (const ok of ['127.0.0.1', '192.0.2.10', '::1', '2001:db8::10', '::ffff:192.0.2.1'])
      assert.ok(isIpAddress(ok), ok);
    for (const bad of [
      '256.1.1.1',
      '1.2.3',
      '01.2.3.4',
      '10.0.0.1:5000',
      'fe80::1%eth0',
      '[::1]',
      '',
      'localhost',
    ])
      assert.ok(!isIpAddress(bad), bad);
    for (const ok of ['localhost', 'cloud.example.com', 'a-b.c0', 'x']) assert.ok(isDnsHostname(ok), ok);
    for (const bad of [
      '256.1.1.1',
      '10.1',
      '0x7f',
      'a:5000',
      'http://a',
      '-a.b',
      'a_b.c',
      'a..b',
      `${'a'.repeat(64)}.b`,
      '',
    ])
      assert.ok(!isDnsHostname(bad), bad);

    const ok = parse(
      'endpoints:\n  address: cloud.example.com\n  bind: 192.0.2.10\n  internal: "2001:db8::1"\n',
    );
    assert.equal(ok.endpoints.address, 'cloud.example.com');
    for (const [yaml, path, message] of [
      [
        'address: 256.1.1.1',
        'endpoints.address',
        /got "256\.1\.1\.1": must be an IP address or a DNS host name/,
      ],
      ['address: "10.0.0.1:5000"', 'endpoints.address', /without a scheme or port/],
      [
        'bind: localhost',
        'endpoints.bind',
        /got "localhost": must be an IP address .* or "" for the default/,
      ],
      ['bind: "0.0.0.0:80"', 'endpoints.bind', /must be an IP address/],
      ['internal: 10.0.0.256', 'endpoints.internal', /must be an IP address/],
      ['internal: controller', 'endpoints.internal', /must be an IP address/],
      ['address: cloud.example.com', 'endpoints.bind', /host name cloud\.example\.com.*set bind/],
    ] as const) {
      const err = specError(`endpoints:\n  ${yaml}\n`);
      assert.equal(err.issues.length, 1, err.message);
      assert.equal(err.issues[0]!.path, path);
      assert.match(err.issues[0]!.message, message);
    }
  });

  it('refuses config override keys, sections and values that would inject lines into the file', () => {
    const ks = (body: string) => `services:\n  keystone:\n    config:\n      keystone.conf:\n${body}`;
    const at = 'services.keystone.config["keystone.conf"]';
    for (const [body, path, message] of [
      [
        '        DEFAULT:\n          "debug\\n[evil]": true\n',
        `${at}.DEFAULT["debug\\n[evil]"]`,
        /option names may use only/,
      ],
      ['        DEFAULT:\n          "a = b": 1\n', `${at}.DEFAULT["a = b"]`, /option names/],
      ['        DEFAULT:\n          "a:b": 1\n', `${at}.DEFAULT["a:b"]`, /option names/],
      ['        "x]\\n[y":\n          a: 1\n', `${at}["x]\\n[y"]`, /section names may not/],
      ['        "a]b":\n          a: 1\n', `${at}["a]b"]`, /section names may not/],
      ['        " DEFAULT":\n          a: 1\n', `${at}[" DEFAULT"]`, /section names may not/],
      ['        "":\n          a: 1\n', `${at}[""]`, /section names may not be empty/],
      ['        DEFAULT:\n          debug: "true\\n[database]"\n', `${at}.DEFAULT.debug`, /line breaks/],
      ['        DEFAULT:\n          debug: "a\\rb"\n', `${at}.DEFAULT.debug`, /line breaks/],
      ['        cache:\n          servers: [a, "b\\nc"]\n', `${at}.cache.servers[1]`, /line breaks/],
    ] as const) {
      const err = specError(ks(body));
      assert.equal(err.issues.length, 1, err.message);
      assert.equal(err.issues[0]!.path, path);
      assert.match(err.issues[0]!.message, message);
      assert.ok(err.issues[0]!.line !== undefined, 'located');
    }
    // What an operator writes is still taken: tabs in values, paste-style sections, dotted keys.
    const spec = parse(
      ks(
        '        DEFAULT:\n          a.b-c_d: "x\\ty"\n        "filter:authtoken":\n          k: [1, two]\n',
      ),
    );
    assert.deepEqual(spec.services.keystone?.config['keystone.conf'], {
      DEFAULT: { 'a.b-c_d': 'x\ty' },
      'filter:authtoken': { k: [1, 'two'] },
    });
  });

  it("horizon's local_settings.py takes Django settings: upper-case names, any JSON value", () => {
    const hz = (body: string) => `services:\n  horizon:\n    config:\n      local_settings.py:\n${body}`;
    const spec = parse(
      hz('        SESSION_TIMEOUT: 7200\n        OPENSTACK_NEUTRON_NETWORK: {enable_router: false}\n'),
    );
    assert.deepEqual(spec.services.horizon?.config['local_settings.py'], {
      SESSION_TIMEOUT: 7200,
      OPENSTACK_NEUTRON_NETWORK: { enable_router: false },
    });
    const err = specError(hz('        session_timeout: 7200\n'));
    assert.equal(err.issues[0]!.path, 'services.horizon.config["local_settings.py"].session_timeout');
    assert.match(err.issues[0]!.message, /upper-case/);
  });

  it('refuses to publish a browser page on a port browsers will not open', () => {
    const err = specError('services:\n  horizon:\n    ports: {dashboard: 10080}\n');
    assert.equal(err.issues[0]!.path, 'services.horizon.ports.dashboard');
    assert.match(err.issues[0]!.message, /browsers refuse to open port 10080.*choose another/);
    assert.equal(
      parse('services:\n  horizon:\n    ports: {dashboard: 10180}\n').services.horizon?.ports?.dashboard,
      10180,
    );
  });

  it("rabbitmq.conf is flat key = value: section '' holds unprefixed keys, sections are key prefixes", () => {
    const rmq = (body: string) => `services:\n  rabbitmq:\n    config:\n      rabbitmq.conf:\n${body}`;
    const spec = parse(
      rmq(
        '        "":\n          log.console.level: debug\n        listeners:\n          tcp.default: 5673\n',
      ),
    );
    assert.deepEqual(spec.services.rabbitmq?.config['rabbitmq.conf'], {
      '': { 'log.console.level': 'debug' },
      listeners: { 'tcp.default': 5673 },
    });
    const err = specError(rmq('        "log file":\n          level: debug\n'));
    assert.equal(err.issues[0]!.path, 'services.rabbitmq.config["rabbitmq.conf"]["log file"]');
    assert.match(err.issues[0]!.message, /key prefixes/);
    const value = specError(rmq('        "":\n          default_vhost: "a\\u0007"\n'));
    assert.equal(value.issues[0]!.path, 'services.rabbitmq.config["rabbitmq.conf"][""].default_vhost');
  });
});

describe('reading the cloud file', () => {
  const made: string[] = [];
  after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
  const tmp = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podstack-load-'));
    made.push(dir);
    return dir;
  };
  const refused = async (file: string, message: RegExp) =>
    assert.rejects(loadCloud(file, catalog), (err: unknown) => {
      assert.ok(err instanceof FileError || err instanceof SpecError, String(err));
      assert.equal((err as FileError).exitCode, 2);
      assert.equal((err as FileError).file, file);
      assert.match((err as Error).message, message);
      return true;
    });

  it('refuses what is not a readable UTF-8 file, naming it', async () => {
    const dir = await tmp();
    await mkdir(join(dir, 'folder'));
    await refused(join(dir, 'folder'), /is a folder, not a file/);
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    await refused(join(dir, 'pipe'), /is not a regular file/);
    await writeFile(join(dir, 'binary.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0xc3, 0x28, 0x0a]));
    await refused(join(dir, 'binary.yaml'), /is not UTF-8 text/);
    await writeFile(join(dir, 'huge.yaml'), `# ${'x'.repeat(1024 * 1024)}\n`);
    await refused(join(dir, 'huge.yaml'), /bytes; a cloud or secrets file is at most/);
    await symlink('gone.yaml', join(dir, 'vanished.yaml'));
    await refused(join(dir, 'vanished.yaml'), /no such file/);
    await writeFile(join(dir, 'file'), '');
    await refused(join(dir, 'file', 'cloud.yaml'), /a part of its path is a file/);
  });

  it('says what an errno on a named file means (root reads anything, so EACCES is not made here)', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    assert.equal(describeFsError(errno('EACCES'), 'read'), 'cannot read it: permission denied');
    assert.equal(describeFsError(errno('EROFS'), 'write'), 'cannot write it: the file system is read-only');
    assert.equal(describeFsError(errno('EWHATEVER'), 'read'), 'cannot read it (EWHATEVER)');
    assert.equal(describeFsError(new Error('not an errno'), 'read'), undefined);
  });
});
