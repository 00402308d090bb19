import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rbdSecretUuid } from '../../src/catalog/cinder.js';
import { cephxKey } from '../../src/config/ceph.js';
import type { DaemonSet, Secret } from '../../src/model/objects.js';
import { planOf, SECRETS } from './_fixtures.js';

const VOLUMES = 'services:\n  ceph: {enabled: true}\n  cinder: {enabled: true}\n';

const nodePod = (cloudYaml: string) =>
  planOf(cloudYaml)
    .units.flatMap((u) => u.objects)
    .find((o): o is DaemonSet => o.kind === 'DaemonSet')!.spec!.template.spec!;

function novaFile(key: string, cloudYaml = ''): string {
  const unit = planOf(cloudYaml).units.find((u) => u.name === 'nova-config');
  const s = unit?.objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'nova-config') as Secret;
  return Buffer.from(s.data?.[key] ?? '', 'base64').toString();
}

describe('nova', () => {
  it("with Cinder: reaches it by its internal endpoint, and the node holds client.cinder's key as a private libvirt secret, in files, never in an argument", () => {
    assert.match(
      novaFile('nova.conf', VOLUMES),
      /^\[cinder\]\n(.*\n)*catalog_info = volumev3::internalURL$/m,
    );
    assert.doesNotMatch(novaFile('nova.conf'), /^\[cinder\]/m);
    const uuid = rbdSecretUuid(SECRETS);
    const secrets = planOf(VOLUMES)
      .units.flatMap((u) => u.objects)
      .find((o): o is Secret => o.kind === 'Secret' && o.metadata.name === 'nova-libvirt-secrets');
    assert.ok(secrets, 'no libvirt secret');
    const files = Object.fromEntries(
      Object.entries(secrets.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    assert.equal(files['ceph-secret.base64'], cephxKey(SECRETS.ceph_cinder_key!));
    assert.match(
      files['ceph-secret.xml']!,
      new RegExp(`private='yes'(.|\n)*<uuid>${uuid}</uuid>(.|\n)*<usage type='ceph'>`),
    );
    assert.match(
      files['podstack-files']!,
      new RegExp(`^ceph-secret.base64 /etc/libvirt/secrets/${uuid}.base64 root 0600$`, 'm'),
    );
    // The same UUID in cinder.conf, which Cinder gives Nova with each attachment.
    const cinderConf = planOf(VOLUMES)
      .units.flatMap((u) => u.objects)
      .find((o): o is Secret => o.kind === 'Secret' && o.metadata.name === 'cinder-volume-config')!;
    assert.match(
      Buffer.from(cinderConf.data!['cinder.conf']!, 'base64').toString(),
      new RegExp(`^rbd_secret_uuid = ${uuid}$`, 'm'),
    );
    // Only the libvirt container mounts it; without Cinder the node pod is as before.
    const libvirt = nodePod(VOLUMES).containers.find((c) => c.name === 'libvirt')!;
    assert.ok(libvirt.volumeMounts?.some((m) => m.name === 'libvirt-config'));
    assert.ok(libvirt.env?.some((e) => e.name === 'PODSTACK_CONFIG_DIR'));
    const compute = nodePod(VOLUMES).containers.find((c) => c.name === 'nova-compute')!;
    assert.ok(!compute.volumeMounts?.some((m) => m.name === 'libvirt-config'));
    assert.ok(!JSON.stringify(nodePod('')).includes('libvirt-config'));
  });

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
