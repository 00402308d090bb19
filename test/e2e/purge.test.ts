import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import { PodmanEngine } from '../../src/engines/podman/engine.js';
import { hostLinkOf } from '../../src/engines/podman/host-link.js';
import { silent } from '../../src/events.js';
import { podmanForHost } from '../../src/podman/host.js';

/**
 * Several clouds share a host's Podman: removing one must leave the others' data alone. Podman
 * 4.3's `volume ls` ORs its label filters, and a purge that trusted them deleted the volumes of
 * every podstack cloud on the host (found when a developer's cloud lost its database to the
 * test suite's `down --purge`).
 */
const isRoot = process.getuid?.() === 0;
const CLOUDS = ['podstack-purge-a', 'podstack-purge-b'];
const volume = (cloud: string) => `${cloud}-data`;

async function exists(name: string): Promise<boolean> {
  return (await exec('podman', ['volume', 'exists', name])).exitCode === 0;
}

describe('down --purge on podman', { skip: isRoot ? false : 'needs root (rootful Podman)' }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podstack-purge-'));
    for (const cloud of CLOUDS) {
      await exec('podman', ['volume', 'rm', '-f', volume(cloud)]);
      const labels = ['app.kubernetes.io/managed-by=podstack', `app.kubernetes.io/instance=${cloud}`];
      const r = await exec('podman', [
        'volume',
        'create',
        ...labels.flatMap((l) => ['--label', l]),
        volume(cloud),
      ]);
      assert.equal(r.exitCode, 0, r.output);
    }
  });

  after(async () => {
    for (const cloud of CLOUDS) await exec('podman', ['volume', 'rm', '-f', volume(cloud)]);
    await rm(dir, { recursive: true, force: true });
  });

  it("removes its own cloud's volumes and no other cloud's", async () => {
    const { podman } = await podmanForHost(dir);
    const engine = new PodmanEngine({
      podman,
      cloud: CLOUDS[0]!,
      stateDir: dir,
      subnet: '10.89.250.0/24',
      hostLink: {
        link: hostLinkOf(CLOUDS[0]!, '172.24.4.0/24'),
        enabled: false,
        unit: 'nova-compute',
        container: 'ovn-controller',
      },
    });
    await engine.destroy({ purge: true, report: silent });
    assert.equal(await exists(volume(CLOUDS[0]!)), false, 'its own volume is still there');
    assert.equal(await exists(volume(CLOUDS[1]!)), true, "another cloud's volume was deleted");
  });
});
