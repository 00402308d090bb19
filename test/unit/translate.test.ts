import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PodmanNames, translatePlan } from '../../src/engines/podman/translate.js';
import { planOf } from './_fixtures.js';

const names: PodmanNames = {
  cloud: 'c1',
  network: 'c1',
  node: 'node1',
  volume: (claim) => `c1-${claim}`,
  configDir: (kind, name) => `/state/${kind}/${name}`,
};

describe('podman translation', () => {
  const workloads = translatePlan(
    planOf('name: c1\nnetwork: {subnet: 10.89.9.0/24}\nservices:\n  keystone: {port: 15000}\n'),
    names,
  );

  it('turns a Deployment and the Services selecting it into a pod with aliases and published ports', () => {
    const api = workloads.get('keystone-api')!;
    assert.equal(api.kind, 'deployment');
    assert.equal(api.name, 'c1-keystone-api');
    assert.deepEqual(api.aliases, ['keystone']);
    // Public on the cloud file's address; internal on the cloud network's gateway.
    assert.deepEqual(api.publish, ['127.0.0.1:15000:5000', '10.89.9.1:15000:5000']);
    const server = api.containers.find((c) => c.name === 'keystone-api')!;
    const args = server.args;
    assert.ok(args.includes('/state/Secret/keystone-config:/etc/podstack/config:ro'));
    assert.ok(args.includes('c1-keystone-fernet-keys:/etc/keystone/fernet-keys'));
    assert.deepEqual(args.slice(args.indexOf('--entrypoint'), args.indexOf('--entrypoint') + 2), [
      '--entrypoint',
      '["podstack-start"]',
    ]);
    assert.ok(server.readiness?.httpGet);
  });

  it('rolls every API (uWSGI servers asked through their own socket, neutron-server by its log) and the queue workers', () => {
    assert.deepEqual(workloads.get('keystone-api')!.surge, { socket: '/tmp/podstack-api.sock' });
    assert.deepEqual(workloads.get('neutron-api')!.surge, { logged: 'wsgi starting up on' });
    assert.equal(workloads.get('nova-conductor')!.surge, undefined);
    // A queue worker's roll is its Deployment's: RollingUpdate, minReadySeconds, its grace.
    assert.deepEqual(workloads.get('nova-conductor')!.overlap, { settleSeconds: 5, graceSeconds: 70 });
    assert.equal(workloads.get('nova-novncproxy')!.overlap, undefined);
  });

  it('has no in-cluster wait container: on Podman, podstack orders units itself', () => {
    for (const w of workloads.values())
      assert.ok(
        w.containers.every((c) => c.name !== 'podstack-wait'),
        `${w.unit} kept podstack-wait`,
      );
    assert.deepEqual(
      workloads.get('keystone-api')!.containers.map((c) => c.name),
      ['keystone-api-listener', 'keystone-api'],
    );
  });

  it('keeps hostnames that services depend on', () => {
    assert.equal(workloads.get('rabbitmq')!.hostname, 'rabbitmq');
    assert.deepEqual(workloads.get('mariadb')!.aliases, ['mariadb']);
  });

  it('turns Jobs into run-to-completion workloads without aliases', () => {
    const job = workloads.get('keystone-db-sync')!;
    assert.equal(job.kind, 'job');
    assert.deepEqual(job.aliases, []);
    assert.equal(job.backoffLimit, 2);
  });

  it('has no workload for config-only units', () => {
    assert.equal(workloads.has('keystone-config'), false);
  });

  it("runs the hypervisor node's DaemonSet as one pod: node folders and scratch space as volumes, the node's name from the downward API", () => {
    const node = workloads.get('nova-compute')!;
    assert.equal(node.kind, 'deployment');
    assert.deepEqual(
      node.containers.map((c) => c.name),
      ['libvirt', 'nova-compute', 'ovsdb-server', 'ovs-vswitchd', 'ovn-controller', 'ovn-metadata-agent'],
    );
    // The instances' hostPath is a named volume of the cloud: data that outlives the pod.
    assert.ok(node.claims.includes('host-var-lib-podstack-c1-nova-instances'), node.claims.join(' '));
    const computeArgs = node.containers.find((c) => c.name === 'nova-compute')!.args;
    assert.ok(computeArgs.includes('c1-host-var-lib-podstack-c1-nova-instances:/var/lib/nova/instances'));
    assert.ok(computeArgs.includes('NODE_NAME=node1'), computeArgs.join(' '));
    assert.ok(computeArgs.includes('--privileged'));
    // What lives as long as the pod, not as long as a container: libvirt's state (so a new libvirtd
    // takes its guests over) and the switch's sockets and database. emptyDirs: empty in a new pod.
    assert.deepEqual(node.scratch, [
      'c1-nova-compute-libvirt-run',
      'c1-nova-compute-libvirt-lib',
      'c1-nova-compute-libvirt-domains',
      'c1-nova-compute-openvswitch-run',
      'c1-nova-compute-openvswitch-db',
    ]);
    // One PID namespace for the pod: the guests' QEMU is adopted by the pod, not killed with libvirtd.
    assert.equal(node.sharePid, true);
    assert.equal(node.guests?.container, 'libvirt');
    // A container's hash covers the config it mounts: a nova.conf change is nova-compute's alone,
    // never libvirt's, the switch's or the pod's.
    const debug = translatePlan(
      planOf(
        'name: c1\nnetwork: {subnet: 10.89.9.0/24}\nservices:\n  keystone: {port: 15000}\n  nova:\n    config:\n      nova.conf: {DEFAULT: {debug: true}}\n',
      ),
      names,
    ).get('nova-compute')!;
    assert.equal(debug.podHash, node.podHash);
    const changed = debug.containers.filter((c, i) => c.hash !== node.containers[i]!.hash).map((c) => c.name);
    assert.deepEqual(changed, ['nova-compute']);
    for (const name of ['ovsdb-server', 'ovs-vswitchd', 'ovn-controller'])
      assert.ok(
        node.containers
          .find((c) => c.name === name)!
          .args.includes('c1-nova-compute-openvswitch-run:/var/run/openvswitch'),
        name,
      );
    assert.ok(!node.containers.find((c) => c.name === 'ovsdb-server')!.args.includes('--privileged'));
  });
});
