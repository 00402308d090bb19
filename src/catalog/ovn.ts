import { createHash } from 'node:crypto';
import type { V1Container } from '@kubernetes/client-node';
import { hashOf } from '../model/hash.js';
import { componentLabels, deployment, persistentVolumeClaim, service } from '../model/objects.js';
import { podMounts, readinessTcp } from './_pod.js';
import { defineService } from './types.js';

/**
 * OVN, Neutron's network backend: the northbound and southbound databases with ovn-northd
 * (one Deployment, as `ovn-ctl start_northd` runs them), and on every hypervisor node Open
 * vSwitch and ovn-controller, added to the node pod. OVN needs no DHCP or L3 agent: DHCP,
 * routing, NAT and security groups are flows in the node's switch.
 *
 * The switch uses Open vSwitch's userspace datapath (datapath_type=netdev), which needs no
 * kernel module: the hosts podstack is built on have none, and a container cannot load one.
 * images/ovn and images/neutron carry the two fixes this needs (TCP offload in vswitchd;
 * neutron reading the chassis' other_config and telling os-vif the datapath).
 */

const NB_PORT = 6641;
const SB_PORT = 6642;
/** The node's Open_vSwitch database on the pod's loopback, for nova-compute's os-vif and the metadata agent. */
export const NODE_OVSDB = 'tcp:127.0.0.1:6640';

/** The unit of OVN's databases and northd, its container, and its claim (the databases' files). */
export const OVN_CENTRAL = 'ovn-central';
/** The node pod's container that makes br-ex, the external network's bridge (and runs ovs-vsctl). */
export const EXTERNAL_BRIDGE_CONTAINER = 'ovn-controller';
export const OVN_CENTRAL_CLAIM = 'ovn-central-data';

/** A locally administered unicast MAC of the cloud's own (02:xx:...). */
function anycastMac(cloud: string): string {
  const bytes = createHash('sha256').update(`podstack external gateway ${cloud}`).digest().subarray(0, 5);
  return ['02', ...[...bytes].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * The name of the veth pair between a node's external bridge (network.externalBridge) and its
 * node pod's br-ex: both ends have it, one in each namespace. The cloud's own, so that two clouds'
 * node pods on one node each have theirs.
 */
export function uplinkPort(cloud: string): string {
  return `pse${hashOf(cloud).slice(0, 8)}`;
}

/** Where the ovn-controller container sees the node's /proc (externalBridge on Kubernetes). */
const HOST_PROC = '/host/proc';

export const ovn = defineService({
  name: 'ovn',
  description: 'OVN, the network backend: its databases, ovn-northd, and Open vSwitch on every node',
  kind: 'infrastructure',
  enabledByDefault: true,
  secrets: [],
  images: [{ name: 'ovn', parent: 'base' }],
  configFiles: [],
  needs: [],
  provides: { ovn: { unit: OVN_CENTRAL, address: `ovn-central:${NB_PORT}` } },
  render(ctx) {
    const labels = componentLabels('ovn', 'central');
    const { volumes, volumeMounts } = podMounts([
      { name: 'data', source: { claim: OVN_CENTRAL_CLAIM }, path: '/var/lib/ovn' },
    ]);
    return [
      {
        name: OVN_CENTRAL,
        service: 'ovn',
        description: 'the OVN northbound and southbound databases and ovn-northd',
        dependsOn: [],
        objects: [
          persistentVolumeClaim(OVN_CENTRAL_CLAIM, labels, '1Gi'),
          deployment('ovn-central', labels, {
            volumes,
            containers: [
              {
                name: 'ovn-central',
                image: ctx.image('ovn'),
                imagePullPolicy: 'IfNotPresent',
                command: ['podstack-ovn-central'],
                volumeMounts,
                ports: [
                  { name: 'nb', containerPort: NB_PORT },
                  { name: 'sb', containerPort: SB_PORT },
                ],
                readinessProbe: readinessTcp(SB_PORT),
              },
            ],
          }),
          service('ovn-central', labels, [
            { name: 'nb', port: NB_PORT },
            { name: 'sb', port: SB_PORT },
          ]),
        ],
      },
    ];
  },
  node(ctx) {
    const image = ctx.image('ovn');
    const run = { name: 'openvswitch-run', mountPath: '/var/run/openvswitch' };
    // The switch's database (bridges, and the guests' ports nova added) lives as long as the
    // pod, not as long as ovsdb-server's container: a new one must find the guests' ports.
    const db = { name: 'openvswitch-db', mountPath: '/var/lib/openvswitch' };
    const nodeName = { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };
    const encapIp = { name: 'PODSTACK_OVN_ENCAP_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } };
    const [network, prefix] = ctx.spec.network.external.split('/');
    const gateway = network!.replace(/\d+$/, (last) => String(Number(last) + 1));
    const { externalBridge } = ctx.spec.network;
    // With a real external network (network.externalBridge) its router is the gateway, not br-ex:
    // br-ex is a switch between the node's bridge and the guests' floating IPs, and has no address.
    // On Kubernetes the pod itself joins br-ex to the node's bridge (below); on Podman the engine
    // does, from the host, as it makes the host link (src/engines/podman/host-link.ts).
    const uplink = externalBridge !== '' && ctx.nodeHostPaths;
    const container = (name: string, command: string[], more: Partial<V1Container> = {}): V1Container => ({
      name,
      image,
      imagePullPolicy: 'IfNotPresent',
      command,
      volumeMounts: [run],
      ...more,
    });
    return {
      service: 'ovn',
      volumes: [
        { name: 'openvswitch-run', emptyDir: {} },
        { name: 'openvswitch-db', emptyDir: {} },
        // The node's network namespace is its container runtime's, found through the node's /proc
        // (images/ovn/podstack-ovn-controller): the node pod keeps a network of its own (the
        // switch's underlay and the guests' ports stay out of the node's), and a pod sees no
        // namespace but its own otherwise.
        ...(uplink ? [{ name: 'host-proc', hostPath: { path: '/proc', type: 'Directory' } }] : []),
      ],
      dependsOn: ['ovn-central'],
      containers: [
        container('ovsdb-server', ['podstack-ovs-db', '--remote=ptcp:6640:127.0.0.1'], {
          volumeMounts: [run, db],
          readinessProbe: { exec: { command: ['ovs-vsctl', 'show'] }, periodSeconds: 5 },
        }),
        container('ovs-vswitchd', ['podstack-ovs-vswitchd'], {
          securityContext: { privileged: true },
          // Not ready while a guest's port is administratively down (its guest would have no
          // network and nothing else would say so), or, with tunnels, while the underlay has no
          // flows or routes: status and up name them.
          readinessProbe: { exec: { command: ['podstack-ovs-ports'] }, periodSeconds: 5 },
          // Geneve between nodes: the userspace datapath sends a tunnel's packets only from an
          // address on one of its own bridges, so br-phy shares the pod's interface and address
          // for Geneve alone; the pod's own traffic stays on its interface, and a crash of
          // ovs-vswitchd stops only the tunnels (images/ovn/podstack-ovs-underlay). One host has
          // no tunnels.
          ...(ctx.manyNodes
            ? { env: [{ name: 'PODSTACK_OVN_UNDERLAY_BRIDGE', value: 'br-phy' }, encapIp] }
            : {}),
        }),
        container(EXTERNAL_BRIDGE_CONTAINER, ['podstack-ovn-controller'], {
          securityContext: { privileged: true },
          ...(uplink
            ? { volumeMounts: [run, { name: 'host-proc', mountPath: HOST_PROC, readOnly: true }] }
            : {}),
          // Ready once connected to the southbound database, not merely started: its script
          // waits (for the name, the bridges, SB_Global) before ovn-controller runs, and a
          // node pod that never connects must not count as ready (on Kubernetes it did).
          readinessProbe: {
            exec: {
              command: ['sh', '-c', 'ovn-appctl -t ovn-controller connection-status | grep -qx connected'],
            },
            periodSeconds: 5,
          },
          env: [
            nodeName,
            {
              name: 'PODSTACK_OVN_REMOTE',
              value: `tcp:${ctx.endpoints.address('ovn').split(':')[0]}:${SB_PORT}`,
            },
            ...(externalBridge ? [] : [{ name: 'PODSTACK_EXTERNAL_CIDR', value: `${gateway}/${prefix}` }]),
            { name: 'PODSTACK_OVN_BRIDGE_MAPPINGS', value: 'physnet1:br-ex' },
            ...(uplink
              ? [
                  { name: 'PODSTACK_EXTERNAL_UPLINK', value: externalBridge },
                  { name: 'PODSTACK_EXTERNAL_PORT', value: uplinkPort(ctx.spec.name) },
                  { name: 'PODSTACK_HOST_PROC', value: HOST_PROC },
                ]
              : []),
            ...(ctx.manyNodes
              ? [
                  encapIp,
                  // Every node's br-ex is the external network's gateway address with one MAC
                  // (an anycast gateway): the router learns that address's MAC once, cloud-wide,
                  // and a floating IP NATed on any node answers through its own node's bridge.
                  ...(externalBridge
                    ? []
                    : [{ name: 'PODSTACK_EXTERNAL_MAC', value: anycastMac(ctx.spec.name) }]),
                  // What the node sends to a floating IP may enter a tunnel, which Open vSwitch
                  // 3.1 refuses while its checksums are still to be done.
                  { name: 'PODSTACK_EXTERNAL_CHECKSUMS', value: '1' },
                ]
              : []),
            // The external network ends in the node pod: guests reach nothing beyond it.
            { name: 'PODSTACK_FORWARDING', value: '0' },
          ],
        }),
      ],
    };
  },
});
