import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { catalog } from '../../src/catalog/index.js';
import { publishedEndpoints } from '../../src/lifecycle/endpoints.js';
import type { Deployment, Secret } from '../../src/model/objects.js';
import { enabledServices, endpointRegistry } from '../../src/plan/build.js';
import { parseCloud } from '../../src/spec/load.js';
import { planOf, SECRETS } from './_fixtures.js';

/** The dashboard's rendered settings file, run by the real Python 3 and read back as JSON. */
function settingsOf(cloudYaml = ''): Record<string, unknown> {
  const unit = planOf(cloudYaml).units.find((u) => u.name === 'horizon-config');
  assert.ok(unit, 'no horizon-config unit');
  const s = unit.objects.find((o) => o.kind === 'Secret') as Secret;
  const text = Buffer.from(s.data?.['local_settings.py'] ?? '', 'base64').toString();
  const script =
    'import json,sys\nns={}\nexec(sys.stdin.read(), ns)\nprint(json.dumps({k: v for k, v in ns.items() if k.isupper()}))';
  return JSON.parse(execFileSync('python3', ['-c', script], { input: text, encoding: 'utf8' }));
}

describe('horizon', () => {
  it('its settings point at the cloud: internal Keystone, memcached sessions, the region, its hosts', () => {
    const s = settingsOf(
      'endpoints: {address: 192.0.2.10, internal: 198.51.100.7}\nregion: Lab\nservices:\n  keystone: {port: 15000}\n',
    );
    // The Django process calls Keystone from inside the cloud: the internal endpoint, not 192.0.2.10.
    assert.equal(s.OPENSTACK_KEYSTONE_URL, 'http://198.51.100.7:15000/v3');
    assert.equal(s.OPENSTACK_ENDPOINT_TYPE, 'internalURL');
    assert.deepEqual(s.DEFAULT_SERVICE_REGIONS, { '*': 'Lab' });
    assert.equal(s.SESSION_ENGINE, 'django.contrib.sessions.backends.cache');
    assert.deepEqual(
      (s.CACHES as Record<string, Record<string, string>>).default?.LOCATION,
      'memcached:11211',
    );
    assert.ok((s.ALLOWED_HOSTS as string[]).includes('192.0.2.10'), JSON.stringify(s.ALLOWED_HOSTS));
    assert.equal(s.SECRET_KEY, SECRETS.horizon_secret_key);
  });

  it('takes overrides from services.horizon.config: dictionaries merged, other settings replaced', () => {
    const s = settingsOf(
      'services:\n  horizon:\n    config:\n      local_settings.py:\n        SESSION_TIMEOUT: 7200\n        ALLOWED_HOSTS: [cloud.example.org]\n        CACHES: {default: {LOCATION: "cache.example.org:11211"}}\n',
    );
    assert.equal(s.SESSION_TIMEOUT, 7200);
    assert.deepEqual(s.ALLOWED_HOSTS, ['cloud.example.org']);
    assert.deepEqual(s.CACHES, {
      default: {
        BACKEND: 'django.core.cache.backends.memcached.MemcachedCache',
        LOCATION: 'cache.example.org:11211',
      },
    });
  });

  it('is published on its own port and shown beside the APIs; its probe asks for a host Django allows', () => {
    const yaml = 'endpoints: {address: 192.0.2.10}\nservices:\n  horizon:\n    ports: {dashboard: 8443}\n';
    const spec = parseCloud(yaml, 'cloud.yaml', catalog);
    const shown = publishedEndpoints(endpointRegistry(spec, enabledServices(spec, catalog), '198.51.100.7'));
    assert.deepEqual(
      shown.filter((e) => e.service === 'horizon'),
      [
        {
          service: 'horizon',
          type: 'dashboard',
          url: 'http://192.0.2.10:8443/',
          internalUrl: 'http://192.0.2.10:8443/',
        },
      ],
    );
    const plan = planOf(yaml);
    const unit = plan.units.find((u) => u.name === 'horizon');
    assert.ok(unit);
    const pod = unit.objects.find((o): o is Deployment => o.kind === 'Deployment');
    const container = pod?.spec?.template.spec?.containers.find((c) => c.name === 'horizon-dashboard');
    assert.ok(container?.readinessProbe?.httpGet);
    const published = unit.objects.find((o) => o.kind === 'Service' && o.spec?.externalIPs);
    assert.deepEqual(
      published?.kind === 'Service' && published.spec?.ports?.map((p) => [p.targetPort, p.port]),
      [[8080, 8443]],
    );
    const host = container.readinessProbe.httpGet.httpHeaders?.find((h) => h.name === 'Host')?.value;
    assert.ok(host && (settingsOf().ALLOWED_HOSTS as string[]).includes(host), `probe Host ${host}`);
  });
});
