import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { catalog } from '../../src/catalog/index.js';
import { manifestDigest } from '../../src/engines/registry.js';
import { pushImages } from '../../src/images/push.js';
import { imageRefs, imagesFor } from '../../src/images/recipes.js';
import { Podman, type RunResult } from '../../src/podman/runner.js';

describe('image graph', () => {
  it('builds parents before children, only what the services need', () => {
    const keystoneOnly = catalog.filter((s) => s.name === 'keystone');
    assert.deepEqual(
      imagesFor(keystoneOnly).map((w) => w.map((r) => r.name)),
      [['base'], ['openstack-base'], ['keystone']],
    );
    assert.deepEqual(
      imagesFor(catalog)[1]?.map((r) => r.name),
      ['ceph', 'mariadb', 'memcached', 'openstack-base', 'ovn', 'rabbitmq'],
    );
  });

  it('tags images by their inputs: a changed file retags the image and its descendants only', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'podstack-images-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const waves = imagesFor(catalog);
    for (const name of waves.flat().map((r) => r.name)) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'Containerfile'), `FROM x\n# ${name}\n`);
    }
    const rootfs = { suite: 'bookworm', mirror: 'http://m.example/debian', extraContext: {} };
    const before = await imageRefs(waves, 'localhost/p', dir, rootfs);
    assert.deepEqual(await imageRefs(waves, 'localhost/p', dir, rootfs), before);
    await writeFile(join(dir, 'openstack-base', 'Containerfile'), 'FROM x\n# changed\n');
    const after = await imageRefs(waves, 'localhost/p', dir, rootfs);
    const changed = Object.keys(before).filter((k) => before[k] !== after[k]);
    // Its descendants: nova-compute is a child of nova, a child of openstack-base.
    const children: string[] = [];
    for (const r of waves.flat())
      if (r.parent === 'openstack-base' || children.includes(r.parent)) children.push(r.name);
    assert.deepEqual(changed.sort(), ['openstack-base', ...children].sort());
    assert.ok(children.includes('keystone') && children.includes('glance'));
    assert.match(after.keystone!, /^localhost\/p\/keystone:[0-9a-f]{16}$/);
    const otherMirror = await imageRefs(waves, 'localhost/p', dir, {
      ...rootfs,
      mirror: 'http://n.example/debian',
    });
    assert.notEqual(otherMirror.base, after.base);
  });
});

describe('pushing images', () => {
  /** Podman whose pushes take `ms` each, recording when each reference started and ended. */
  class TimedPodman extends Podman {
    readonly times = new Map<string, { start: number; end: number }>();
    override async run(args: readonly string[]): Promise<RunResult> {
      const ref = args.at(-1)!;
      const start = performance.now();
      await new Promise((r) => setTimeout(r, 30));
      // As podman push --digestfile does: the digest of the manifest the registry took.
      const digestFile = args.find((a) => a.startsWith('--digestfile='))?.slice('--digestfile='.length);
      if (digestFile) await writeFile(digestFile, `sha256:pushed-${ref}`);
      this.times.set(ref, { start, end: performance.now() });
      return { stdout: '', stderr: '', exitCode: 0 };
    }
  }

  it('pushes an image once its parent is pushed, siblings together, and never the rootfs', async () => {
    const podman = new TimedPodman();
    const refs = {
      rootfs: 'r/rootfs:1',
      base: 'r/base:1',
      'openstack-base': 'r/openstack-base:1',
      mariadb: 'r/mariadb:1',
      keystone: 'r/keystone:1',
      glance: 'r/glance:1',
    };
    const parents = {
      base: 'rootfs',
      'openstack-base': 'base',
      mariadb: 'base',
      keystone: 'openstack-base',
      glance: 'openstack-base',
    };
    const pushed = await pushImages({
      podman,
      refs,
      parents,
      tlsVerify: false,
      compression: 'zstd',
      report: () => {},
    });
    assert.deepEqual(
      pushed.refs.sort(),
      Object.values(refs)
        .filter((r) => r !== refs.rootfs)
        .sort(),
    );
    assert.equal(podman.times.has(refs.rootfs), false);
    const t = (name: keyof typeof refs) => podman.times.get(refs[name])!;
    for (const [child, parent] of Object.entries(parents) as [keyof typeof refs, keyof typeof refs][])
      if (parent !== 'rootfs')
        assert.ok(t(child).start >= t(parent).end, `${child} started before ${parent} ended`);
    // Siblings overlap: the order costs no concurrency.
    assert.ok(t('glance').start < t('keystone').end && t('mariadb').start < t('openstack-base').end);
  });

  it('pushes an image again only when its ID changed or the registry no longer has what was pushed', async () => {
    const refs = { base: 'r/base:1', keystone: 'r/keystone:1', glance: 'r/glance:1', nova: 'r/nova:1' };
    const ids = { base: 'id-base', keystone: 'id-keystone', glance: 'id-glance-new', nova: 'id-nova' };
    const pushed = {
      'r/base:1': { id: 'id-base', digest: 'sha256:base' },
      'r/keystone:1': { id: 'id-keystone', digest: 'sha256:keystone' },
      // Pushed before with other content under the same tag (a rebuild with the same inputs).
      'r/glance:1': { id: 'id-glance-old', digest: 'sha256:glance' },
      // The registry lost it (a new cluster): its manifest is not there.
      'r/nova:1': { id: 'id-nova', digest: 'sha256:nova' },
    };
    const registry: Record<string, string> = {
      'r/base:1': 'sha256:base',
      'r/keystone:1': 'sha256:keystone',
      'r/glance:1': 'sha256:glance',
    };
    const states: string[] = [];
    const podman = new TimedPodman();
    const r = await pushImages({
      podman,
      refs,
      parents: { keystone: 'base', glance: 'base', nova: 'base' },
      tlsVerify: false,
      compression: 'zstd',
      pushed,
      ids,
      digestOf: async (ref) => registry[ref],
      report: (e) => {
        if (e.type === 'image') states.push(`${e.image} ${e.state}`);
      },
    });
    assert.deepEqual([...podman.times.keys()].sort(), ['r/glance:1', 'r/nova:1']);
    assert.ok(states.includes('base in registry') && states.includes('keystone in registry'));
    // What the new pushes gave is recorded, for the next up to skip them.
    assert.deepEqual(r.records['r/glance:1'], { id: 'id-glance-new', digest: 'sha256:pushed-r/glance:1' });
    assert.deepEqual(r.records['r/nova:1'], { id: 'id-nova', digest: 'sha256:pushed-r/nova:1' });
    assert.deepEqual(r.records['r/base:1'], pushed['r/base:1']);
    assert.deepEqual(r.refs.sort(), Object.values(refs).sort());
  });

  it("asks a registry for a manifest's digest with one HEAD, falling back to plain HTTP without tlsVerify", async (t) => {
    const asked: string[] = [];
    const server = createServer((req, res) => {
      asked.push(
        `${req.method} ${req.url} ${req.headers.accept?.includes('oci.image.manifest') ? 'oci' : '-'}`,
      );
      if (req.url === '/v2/podstack/keystone/manifests/abc123') {
        res.writeHead(200, { 'Docker-Content-Digest': 'sha256:0123' });
      } else res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const at = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal(await manifestDigest(`${at}/podstack/keystone:abc123`, false), 'sha256:0123');
    assert.equal(await manifestDigest(`${at}/podstack/glance:abc123`, false), undefined);
    // HTTPS only with tlsVerify: a plain-HTTP registry gives no digest, so everything is pushed.
    assert.equal(await manifestDigest(`${at}/podstack/keystone:abc123`, true), undefined);
    assert.equal(await manifestDigest('podstack/keystone:abc123', false), undefined);
    assert.deepEqual(asked, [
      'HEAD /v2/podstack/keystone/manifests/abc123 oci',
      'HEAD /v2/podstack/glance/manifests/abc123 oci',
    ]);
  });
});
