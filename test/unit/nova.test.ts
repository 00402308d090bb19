import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Secret } from '../../src/model/objects.js';
import { planOf } from './_fixtures.js';

function novaFile(key: string, cloudYaml = ''): string {
  const unit = planOf(cloudYaml).units.find((u) => u.name === 'nova-config');
  const s = unit?.objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'nova-config') as Secret;
  return Buffer.from(s.data?.[key] ?? '', 'base64').toString();
}

describe('nova', () => {
  it('its eventlet-patched APIs run one thread per uWSGI worker (RPC replies are read by one thread)', () => {
    for (const ini of ['nova-api-uwsgi.ini', 'nova-metadata-uwsgi.ini']) {
      const text = novaFile(ini);
      assert.match(text, /^threads = 1$/m, `${ini}:\n${text}`);
      assert.match(text, /^processes = 2$/m, `${ini}:\n${text}`);
    }
  });

  it("the console URL is noVNC's page that connects at once (vnc_lite.html, not vnc_auto.html)", () => {
    assert.match(
      novaFile('nova.conf'),
      /^novncproxy_base_url = http:\/\/127\.0\.0\.1:6080\/vnc_lite\.html$/m,
    );
  });
});
