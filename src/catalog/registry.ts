import type { V1ContainerPort } from '@kubernetes/client-node';
import type { ServicePort } from '../model/objects.js';
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

  /** The container port of an API. */
  containerPorts(capability: Capability): V1ContainerPort[] {
    return [{ name: 'api', containerPort: this.api(capability).port, protocol: 'TCP' }];
  }

  /** Where an API is published: its port on the host addresses of `apiAddresses`. */
  publishedPorts(capability: Capability): ServicePort[] {
    const api = this.api(capability);
    return [{ name: 'api', port: api.published, targetPort: api.port }];
  }

  /**
   * The host addresses APIs are published on: the public bind address and, where that is
   * another one, the internal address. Podman publishes the ports there; on Kubernetes they
   * are a Service's externalIPs, which kube-proxy serves on the node that has the address.
   */
  apiAddresses(): string[] {
    const bind = this.bindAddress();
    return this.addresses.internal !== bind && bind !== '0.0.0.0' ? [bind, this.addresses.internal] : [bind];
  }

  /** The host address public ports are published on. */
  bindAddress(): string {
    return this.addresses.bind || this.addresses.public;
  }

  /** The URL of another published port of a service (a console proxy), on the public address. */
  publicPort(name: string): { url: string; port: number } {
    const port = this.extraPorts.get(name);
    if (port === undefined) throw new Error(`no enabled service publishes a port named ${name}`);
    return { url: `http://${hostOf(this.addresses.public)}:${port}`, port };
  }

  /** A container port published as one of those named ports, on the public bind address. */
  publicServicePort(name: string, containerPort: number, portName = name): ServicePort {
    return { name: portName, port: this.publicPort(name).port, targetPort: containerPort };
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
