import type { V1Container, V1Volume } from '@kubernetes/client-node';
import type { IniOverrides } from '../config/ini.js';
import type { PythonSettings } from '../config/python.js';
import type { Unit } from '../model/unit.js';
import type { CloudSpec, ServiceOptions } from '../spec/schema.js';
import type { EndpointRegistry } from './registry.js';

/**
 * What one service offers the others, by name: a service says what it needs
 * (`needs: ['identity', 'database']`), never which other file provides it.
 */
export const CAPABILITIES = [
  'database',
  'cache',
  'messaging',
  'identity',
  'image',
  'placement',
  'compute',
  'network',
  /** Nova's metadata API, which the network's metadata proxy forwards guests' requests to. */
  'metadata',
  /** OVN's northbound and southbound databases (host:port of the northbound one; southbound is +1). */
  'ovn',
  /** Ceph, with its pools made and the cluster healthy. */
  'ceph',
  /** Block Storage (Cinder): its Keystone type, which clients and Nova look for. */
  'volumev3',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

/**
 * An image podstack builds. Its Containerfile and scripts live in images/<name>/,
 * Kolla-style; the Containerfile starts with `ARG PARENT` / `FROM ${PARENT}`.
 */
export interface ImageRecipe {
  readonly name: string;
  /** Another recipe's name, or 'rootfs' for the debootstrapped Debian root. */
  readonly parent: string;
}

/** Where a capability is reached inside the cloud, and which unit must be ready first. */
export interface Provision {
  /** The unit that is ready once the capability can be used: what users of it wait for. */
  readonly unit: string;
  /** host:port inside the cloud (a Service name), for infrastructure such as the database. */
  readonly address?: string;
}

/** An HTTP API registered in the Keystone catalog and published for clients. */
export interface ApiDeclaration {
  /** Keystone service type: identity, image, placement, compute... */
  readonly type: Capability;
  /** The port the API listens on in its container; also the default published port. */
  readonly port: number;
  /** Path appended to every endpoint URL (Keystone's /v3). */
  readonly path?: string;
}

/** What a service's render function is given: everything already resolved and validated. */
export interface RenderContext<S extends string = string, F extends string = string> {
  readonly spec: CloudSpec;
  /** Values from secrets.yaml. Only ever placed into Secret objects. */
  readonly secrets: Readonly<Record<S, string>>;
  /** The full reference (name:tag) of one of podstack's images. */
  image(name: string): string;
  /** The user's overrides for one of this service's INI or key = value files (empty when none). */
  overrides(file: F): IniOverrides;
  /** The user's settings for one of this service's Django settings files (empty when none). */
  settings(file: F): PythonSettings;
  /** The unit that provides a capability: what a unit waits for before using it. */
  provider(capability: Capability): string;
  /** Whether an enabled service provides a capability: what a service may use when it is there. */
  provides(capability: Capability): boolean;
  /** Every URL and address of the cloud, from one place. */
  readonly endpoints: EndpointRegistry;
  /** The containers other services run on every hypervisor node (see NodePart). */
  nodeParts(): readonly NodePart[];
  /** Geneve between nodes (Kubernetes with network.tunnels): see PlanTarget. */
  readonly manyNodes: boolean;
  /** The node pod's hostPaths are the node's own folders (Kubernetes): see PlanTarget. */
  readonly nodeHostPaths: boolean;
}

/**
 * Containers a service adds to the hypervisor node's pod (nova-compute's DaemonSet). The node's
 * switch, its controller and the metadata proxy must share the network namespace in which
 * libvirt plugs the guests' taps, and on Kubernetes only the containers of one pod share one
 * without the host's. So services contribute containers to that pod instead of owning pods.
 */
export interface NodePart {
  readonly service: string;
  readonly containers: readonly V1Container[];
  readonly volumes: readonly V1Volume[];
  /** Units the node pod must wait for (the OVN databases, the Neutron server). */
  readonly dependsOn: readonly string[];
}

/**
 * One OpenStack project or piece of infrastructure. Adding a service to podstack
 * means adding one file that exports one of these and listing it in catalog/index.ts.
 * OpenStack services are written with `openstackService` (catalog/_factory.ts),
 * which derives everything below from a short declaration.
 */
export interface ServiceDefinition<S extends string = string, F extends string = string>
  extends ServiceOptions {
  readonly kind: 'infrastructure' | 'openstack';
  /** Names of the entries it needs in secrets.yaml (generated once by podstack). */
  readonly secrets: readonly S[];
  readonly images: readonly ImageRecipe[];
  /** Config files a user may override under services.<name>.config, in oslo INI form. */
  readonly configFiles: readonly F[];
  readonly needs: readonly Capability[];
  readonly provides: Readonly<Partial<Record<Capability, Provision>>>;
  /** Its API, when it has one: registered in Keystone and published (port: services.<name>.port). */
  readonly api?: ApiDeclaration;
  /** Its published ports that people open in a browser (port name -> path), shown beside the APIs. */
  readonly pages?: Readonly<Record<string, string>>;
  /** A commented example of a config override, shown in the cloud file `podstack init` writes. */
  readonly example?: string;
  readonly render: (ctx: RenderContext<S, F>) => readonly Unit[];
  /** Its containers in the hypervisor node's pod, if it has any. */
  readonly node?: (ctx: RenderContext<S, F>) => NodePart;
  /** Where its guests' disks are, if it runs guests: `backup` copies them. */
  readonly guestDisks?: GuestDisks;
}

/**
 * A node folder that holds guests' disks (a hostPath volume of a unit's pod), and how to pause
 * the guests while it is copied: a disk copied while its guest writes would not be as of one
 * instant. The commands run in `container`; pause and resume get the guest's name appended.
 */
export interface GuestDisks {
  readonly unit: string;
  readonly container: string;
  /** The pod's volume (a hostPath) that holds the disks. */
  readonly volume: string;
  /** Prints the running guests' names, one a line. */
  readonly list: readonly string[];
  readonly pause: readonly string[];
  readonly resume: readonly string[];
}

/** Declares a service with its secrets and config files typed: a misspelt name fails to compile. */
export function defineService<const S extends string, const F extends string>(
  def: ServiceDefinition<S, F>,
): ServiceDefinition {
  return def as unknown as ServiceDefinition;
}
