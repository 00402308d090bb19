import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { catalog } from '../../src/catalog/index.js';
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
      pushed.sort(),
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
});
