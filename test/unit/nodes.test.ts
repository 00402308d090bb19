import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import type { EngineName } from '../../src/lifecycle/project.js';
import { type DaemonSet, HYPERVISOR_TAINT_KEY, type Secret } from '../../src/model/objects.js';
import { planOf } from './_fixtures.js';

// One host (Podman) against many nodes (Kubernetes, where network.tunnels is on by default): what
// the node pod and Neutron do differently.
const NO_TUNNELS = 'network: {tunnels: false}\n';

const objects = (yaml: string, engine: EngineName) => planOf(yaml, engine).units.flatMap((u) => u.objects);

function controllerEnv(
  yaml: string,
  engine: EngineName,
  container = 'ovn-controller',
): Record<string, string> {
  const ds = objects(yaml, engine).find((o): o is DaemonSet => o.kind === 'DaemonSet')!;
  const c = ds.spec!.template.spec!.containers.find((x) => x.name === container)!;
  return Object.fromEntries(
    (c.env ?? []).map((e) => [e.name, e.value ?? `from ${e.valueFrom?.fieldRef?.fieldPath ?? '?'}`]),
  );
}

/** The value of `key` in whichever of the plan's Secrets has it (ml2_conf.ini's). */
function setting(yaml: string, engine: EngineName, key: string): string | undefined {
  for (const o of objects(yaml, engine)) {
    if (o.kind !== 'Secret') continue;
    for (const v of Object.values((o as Secret).data ?? {})) {
      const m = new RegExp(`^${key} = (.*)$`, 'm').exec(Buffer.from(v, 'base64').toString());
      if (m) return m[1];
    }
  }
  return undefined;
}

describe('one host or many nodes', () => {
  it('on Kubernetes (network.tunnels is on by default) the node pod tunnels from its own address through br-phy, its br-ex has the cloud-wide gateway MAC, and it tolerates the hypervisor taint', () => {
    const env = controllerEnv('name: a', 'kubernetes');
    assert.equal(env.PODSTACK_OVN_ENCAP_IP, 'from status.podIP');
    assert.equal(env.PODSTACK_EXTERNAL_CHECKSUMS, '1');
    // The underlay is made by vswitchd's container, again after each of its starts.
    const vswitchd = controllerEnv('name: a', 'kubernetes', 'ovs-vswitchd');
    assert.equal(vswitchd.PODSTACK_OVN_UNDERLAY_BRIDGE, 'br-phy');
    assert.equal(vswitchd.PODSTACK_OVN_ENCAP_IP, 'from status.podIP');
    const mac = env.PODSTACK_EXTERNAL_MAC ?? '';
    // Locally administered, unicast: 02 in the first octet.
    assert.match(mac, /^02(:[0-9a-f]{2}){5}$/);
    assert.equal(
      controllerEnv('name: a', 'kubernetes').PODSTACK_EXTERNAL_MAC,
      mac,
      'not the same for one cloud',
    );
    assert.notEqual(controllerEnv('name: b', 'kubernetes').PODSTACK_EXTERNAL_MAC, mac, 'two clouds share it'); // biome-ignore format: one call
    const ds = objects('', 'kubernetes').find((o): o is DaemonSet => o.kind === 'DaemonSet')!;
    assert.deepEqual(ds.spec!.template.spec!.tolerations, [
      { key: HYPERVISOR_TAINT_KEY, operator: 'Exists', effect: 'NoSchedule' },
    ]);
    for (const o of objects('', 'kubernetes')) {
      if (o.kind === 'Deployment')
        assert.equal(o.spec?.template.spec?.tolerations, undefined, `${o.metadata.name} tolerates it`);
    }
  });

  it('floating IPs are NATed on their guest’s node with tunnels, at the router’s gateway without', () => {
    assert.equal(setting('', 'kubernetes', 'enable_distributed_floating_ip'), 'true');
    assert.equal(setting(NO_TUNNELS, 'kubernetes', 'enable_distributed_floating_ip'), 'false');
    assert.equal(setting('', 'podman', 'enable_distributed_floating_ip'), 'false');
  });

  it('on Kubernetes without network.tunnels, and on Podman whatever it says, the node pod keeps its plain interface', () => {
    for (const [yaml, engine] of [
      [NO_TUNNELS, 'kubernetes'],
      ['', 'podman'],
      ['network: {tunnels: true}\n', 'podman'],
    ] as const) {
      const env = { ...controllerEnv(yaml, engine), ...controllerEnv(yaml, engine, 'ovs-vswitchd') };
      for (const key of [
        'PODSTACK_OVN_UNDERLAY_BRIDGE',
        'PODSTACK_OVN_ENCAP_IP',
        'PODSTACK_EXTERNAL_MAC',
        'PODSTACK_EXTERNAL_CHECKSUMS',
      ])
        assert.equal(env[key], undefined, `${engine} ${yaml}: ${key}`);
    }
  });
});

describe('a real external network (network.externalBridge)', () => {
  const BRIDGE = 'network: {externalBridge: br-provider}\n';
  const podSpec = (yaml: string, engine: EngineName) =>
    objects(yaml, engine).find((o): o is DaemonSet => o.kind === 'DaemonSet')!.spec!.template.spec!;

  it('on Kubernetes the node pod joins br-ex to the node’s bridge itself, through the node’s /proc, and br-ex is no gateway', () => {
    const env = controllerEnv(BRIDGE, 'kubernetes');
    assert.equal(env.PODSTACK_EXTERNAL_UPLINK, 'br-provider');
    assert.match(env.PODSTACK_EXTERNAL_PORT ?? '', /^pse[0-9a-f]{8}$/);
    assert.ok((env.PODSTACK_EXTERNAL_PORT ?? '').length <= 15, 'longer than an interface name may be');
    assert.notEqual(controllerEnv(`name: other\n${BRIDGE}`, 'kubernetes').PODSTACK_EXTERNAL_PORT, env.PODSTACK_EXTERNAL_PORT, 'two clouds on one node would share it'); // biome-ignore format: one call
    // The network's own router is the gateway: no address on br-ex, and no anycast MAC.
    assert.equal(env.PODSTACK_EXTERNAL_CIDR, undefined);
    assert.equal(env.PODSTACK_EXTERNAL_MAC, undefined);
    const spec = podSpec(BRIDGE, 'kubernetes');
    const proc = spec.volumes?.find((v) => v.hostPath?.path === '/proc');
    assert.ok(proc, 'no hostPath of the node’s /proc');
    const controller = spec.containers.find((c) => c.name === 'ovn-controller')!;
    const mount = controller.volumeMounts?.find((m) => m.name === proc.name);
    assert.equal(mount?.mountPath, env.PODSTACK_HOST_PROC);
    assert.equal(mount?.readOnly, true);
    // Only that container sees it.
    for (const c of spec.containers.filter((x) => x.name !== 'ovn-controller'))
      assert.ok(!c.volumeMounts?.some((m) => m.name === proc.name), `${c.name} mounts the node’s /proc`);
    // Unset, none of it: the anycast gateway on br-ex as before.
    const plain = controllerEnv('', 'kubernetes');
    assert.equal(plain.PODSTACK_EXTERNAL_UPLINK, undefined);
    assert.ok(plain.PODSTACK_EXTERNAL_CIDR);
    assert.ok(!podSpec('', 'kubernetes').volumes?.some((v) => v.hostPath?.path === '/proc'));
  });

  it('on Podman the engine makes the port from the host: the pod gets no /proc, and br-ex no address', () => {
    const env = controllerEnv(BRIDGE, 'podman');
    assert.equal(env.PODSTACK_EXTERNAL_UPLINK, undefined);
    assert.equal(env.PODSTACK_EXTERNAL_CIDR, undefined);
    assert.ok(!podSpec(BRIDGE, 'podman').volumes?.some((v) => v.hostPath?.path === '/proc'));
  });
});

describe('migration between nodes', () => {
  const daemonSet = (yaml: string, engine: EngineName) =>
    objects(yaml, engine).find((o): o is DaemonSet => o.kind === 'DaemonSet')!;
  const secretFiles = (yaml: string, engine: EngineName, name: string): Record<string, string> => {
    const s = objects(yaml, engine).find((o) => o.kind === 'Secret' && o.metadata.name === name) as
      | Secret
      | undefined;
    return Object.fromEntries(
      Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
  };

  it('on Kubernetes libvirtd asks for a password and an sshd takes other nodes; on Podman and without tunnels neither', () => {
    const containers = daemonSet('', 'kubernetes').spec!.template.spec!.containers;
    const ssh = containers.find((c) => c.name === 'nova-ssh');
    assert.deepEqual(ssh?.ports, [{ name: 'ssh', containerPort: 8022 }]);
    const libvirt = containers.find((c) => c.name === 'libvirt')!;
    assert.ok(libvirt.env?.some((e) => e.name === 'PODSTACK_LIBVIRT_MIGRATION' && e.value === '1'));
    const node = secretFiles('', 'kubernetes', 'nova-compute-config');
    const own = secretFiles('', 'kubernetes', 'nova-libvirt-secrets');
    // The client's password (nova-compute's, libvirtd's own when it migrates) is the server's.
    const password = own['migration-password'];
    assert.ok(password && password.length >= 16);
    assert.match(node['auth.conf'] ?? '', new RegExp(`^password=${password}$`, 'm'));
    assert.equal(node['auth.conf'], own['auth.conf']);
    for (const [yaml, engine] of [
      ['', 'podman'],
      [NO_TUNNELS, 'kubernetes'],
    ] as const) {
      const names = daemonSet(yaml, engine).spec!.template.spec!.containers.map((c) => c.name);
      assert.ok(!names.includes('nova-ssh'), `${engine} ${yaml}: ${names.join(' ')}`);
      assert.equal(secretFiles(yaml, engine, 'nova-compute-config')['auth.conf'], undefined);
      assert.equal(secretFiles(yaml, engine, 'nova-libvirt-secrets')['migration-password'], undefined);
    }
  });

  it("the nodes' authorized key is the public half of nova-compute's private key (ssh-keygen -y)", async () => {
    const node = secretFiles('', 'kubernetes', 'nova-compute-config');
    const dir = await mkdtemp(join(tmpdir(), 'podstack-nodes-'));
    try {
      await writeFile(join(dir, 'id'), node['ssh-private-key'] ?? '', { mode: 0o600 });
      const r = await exec('ssh-keygen', ['-y', '-f', join(dir, 'id')]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim().split(' ').slice(0, 2).join(' '), node['ssh-authorized-keys']?.split(' ').slice(0, 2).join(' ')); // biome-ignore format: one call
      assert.match(node['ssh-config'] ?? '', /^ {4}Port 8022$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the node pod stops within its grace', () => {
  const secretText = (name: string) => {
    const s = objects('', 'podman').find((o) => o.kind === 'Secret' && o.metadata.name === name) as Secret;
    assert.ok(s, `no Secret ${name}`);
    return Object.values(s.data ?? {})
      .map((v) => Buffer.from(v, 'base64').toString())
      .join('\n');
  };

  it("nova-compute and the metadata agent wait 5 s for oslo.service's graceful stop, the API servers the default", () => {
    for (const name of ['nova-compute-config', 'neutron-metadata-config'])
      assert.match(secretText(name), /^graceful_shutdown_timeout = 5$/m, name);
    assert.doesNotMatch(secretText('nova-config'), /graceful_shutdown_timeout/);
  });

  it("the user's own setting wins", () => {
    const yaml =
      'services:\n  nova:\n    config:\n      nova.conf:\n        DEFAULT: {graceful_shutdown_timeout: 20}\n';
    const s = objects(yaml, 'podman').find((o) => o.kind === 'Secret' && o.metadata.name === 'nova-compute-config') as Secret; // biome-ignore format: one line
    const text = Object.values(s.data ?? {}).map((v) => Buffer.from(v, 'base64').toString()).join('\n'); // biome-ignore format: one line
    assert.match(text, /^graceful_shutdown_timeout = 20$/m);
  });
});
