import type { EndpointRegistry } from '../catalog/registry.js';

export interface Endpoint {
  readonly service: string;
  /** Keystone service type (identity, image, placement...), or a browser page's name (dashboard). */
  readonly type: string;
  readonly url: string;
  readonly internalUrl: string;
}

/** The API endpoints of the cloud as clients use them, then its browser pages, for `up` and `status` to show. */
export function publishedEndpoints(registry: EndpointRegistry): Endpoint[] {
  return [
    ...registry.published().map((api) => ({
      service: api.service,
      type: api.type,
      url: registry.url(api.type, 'public'),
      internalUrl: registry.url(api.type, 'internal'),
    })),
    // A page is published on the public address only: internalUrl is where it is, too.
    ...registry.pages().map((p) => ({ service: p.service, type: p.port, url: p.url, internalUrl: p.url })),
  ];
}
