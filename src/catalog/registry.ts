import type { V1ContainerPort } from '@kubernetes/client-node';
import type { ApiDeclaration, Capability } from './types.js';

/** The three interfaces of a Keystone catalog entry. */
export type Interface = 'public' | 'internal' | 'admin';

/**
 * The addresses endpoints are built from. Public endpoints are for clients outside the cloud;
 * internal and admin ones for the cloud's own services and an operator's tools on the host, so
 * their address must be reachable from both (on Podman the cloud network's gateway, on
 * Kubernetes a node address), as kolla's internal VIP is.
 */
export interface EndpointAddresses {
  /** What clients are told: the public endpoints' host. */
  readonly public: string;
  /** The host address public ports are published on (may differ from public behind NAT). */
  readonly bind: string;
  /** The host of internal and admin endpoints; API ports are published there too. */
  readonly internal: string;
}

export interface PublishedApi extends ApiDeclaration {
  /** The catalog service that serves it. */
  readonly service: string;
  /** The host port it is published on (services.<name>.port). */
  readonly published: number;
}

/** A page of the cloud that people open in a browser (the dashboard), on one of its published ports. */
export interface WebPage {
  readonly service: string;
  /** The published port's name, which is also what `up` calls the page. */
  readonly port: string;
  readonly path: string;
}

const hostOf = (address: string) => (address.includes(':') ? `[${address}]` : address);

/**
 * Every URL of the cloud comes from here: one place knows where each API is published and
 * where each piece of infrastructure answers inside the cloud. Catalog entries ask it by
 * capability and never build a URL themselves.
 */
export class EndpointRegistry {
  private readonly apis: ReadonlyMap<Capability, PublishedApi>;

  constructor(
    readonly addresses: EndpointAddresses,
    apis: readonly PublishedApi[],
    private readonly inCloud: ReadonlyMap<Capability, string>,
    private readonly extraPorts: ReadonlyMap<string, number> = new Map(),
    private readonly webPages: readonly WebPage[] = [],
  ) {
    this.apis = new Map(apis.map((a) => [a.type, a]));
  }

  private api(capability: Capability): PublishedApi {
    const api = this.apis.get(capability);
    if (!api) throw new Error(`no enabled service publishes the ${capability} API`);
    return api;
  }

  /** The URL of an API as registered in Keystone, for one interface. */
  url(capability: Capability, iface: Interface): string {
    const api = this.api(capability);
    const host = iface === 'public' ? this.addresses.public : this.addresses.internal;
    return `http://${hostOf(host)}:${api.published}${api.path ?? ''}`;
  }

  /** host:port of a piece of infrastructure inside the cloud (a Service name), such as the database. */
  address(capability: Capability): string {
    const address = this.inCloud.get(capability);
    if (!address) throw new Error(`no enabled service provides ${capability}`);
    return address;
  }

  /**
   * The container ports of an API as hostPorts: on the public bind address and, where that is
   * another one, on the internal address. Podman publishes them and Kubernetes maps them on the
   * pod's node, from the same objects.
   */
  ports(capability: Capability): V1ContainerPort[] {
    const api = this.api(capability);
    const bind = this.addresses.bind || this.addresses.public;
    const port = (name: string, hostIP: string): V1ContainerPort => ({
      name,
      containerPort: api.port,
      hostPort: api.published,
      hostIP,
      protocol: 'TCP',
    });
    const out = [port('api', bind)];
    if (this.addresses.internal !== bind && bind !== '0.0.0.0')
      out.push(port('api-internal', this.addresses.internal));
    return out;
  }

  /** The URL of another published port of a service (a console proxy), on the public address. */
  publicPort(name: string): { url: string; port: number; hostIP: string } {
    const port = this.extraPorts.get(name);
    if (port === undefined) throw new Error(`no enabled service publishes a port named ${name}`);
    return {
      url: `http://${hostOf(this.addresses.public)}:${port}`,
      port,
      hostIP: this.addresses.bind || this.addresses.public,
    };
  }

  /** A container port published as one of those named ports, on the public bind address. */
  publicContainerPort(name: string, containerPort: number, portName = name): V1ContainerPort {
    const p = this.publicPort(name);
    return { name: portName, containerPort, hostPort: p.port, hostIP: p.hostIP, protocol: 'TCP' };
  }

  /** The browser pages (the dashboard) with their public URLs, for `up` and `status` to show. */
  pages(): readonly (WebPage & { url: string })[] {
    return this.webPages.map((p) => ({ ...p, url: `${this.publicPort(p.port).url}${p.path}` }));
  }

  /** Every published API, for `up` and `status` to show. */
  published(): readonly PublishedApi[] {
    return [...this.apis.values()];
  }
}
