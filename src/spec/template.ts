import type { ServiceOptions } from './schema.js';

/** What the template says of a service beyond its schema: an override example. */
export interface TemplateService extends ServiceOptions {
  readonly example?: string;
}

/**
 * The commented cloud.yaml that `podstack init` writes. Every value here is the
 * default (a unit test checks that this file parses to exactly the defaults),
 * so a user reads what podstack will do and changes only what they want. Its
 * services come from the catalog: a new service is in it without editing this file.
 */
export function cloudTemplate(services: readonly TemplateService[]): string {
  return `${HEADER}services:\n${services.map(serviceBlock).join('')}`;
}

function serviceBlock(s: TemplateService): string {
  const lines = [`  # ${s.description}`, `  ${s.name}:`, `    enabled: ${s.enabledByDefault}`];
  if (s.api) lines.push('    # Port its API is published on.', `    port: ${s.api.port}`);
  if (s.example) {
    lines.push("    # Overrides are merged over podstack's generated config, option by option:");
    for (const l of s.example.split('\n')) lines.push(`    # ${l}`);
  }
  return `${lines.join('\n')}\n`;
}

const HEADER = `# podstack cloud file: the whole cloud, described. \`podstack plan\` shows what a change
# would do; \`podstack up\` applies it. Every value below is the default.
# Editors: a JSON Schema for this file is schema/cloud.schema.json in podstack.

# Names the cloud: its containers, volumes and network are prefixed with it.
name: podstack

# OpenStack release. Debian 12's packages are Zed.
release: zed

# Keystone region every endpoint is registered in.
region: RegionOne

endpoints:
  # Where clients (the openstack CLI) reach the APIs; public endpoints use it.
  address: 127.0.0.1
  # Host address the API ports are published on (empty: the same as address).
  bind: ""
  # Internal and admin endpoints: an address both the host and the cloud's services reach.
  # Empty: on Podman the cloud network's gateway, on Kubernetes the same as address.
  internal: ""

network:
  # Podman: the cloud network's subnet; the host's address on it carries the internal
  # endpoints. Empty: 10.89.N.0/24, N derived from the cloud's name.
  subnet: ""

images:
  # Images are named <prefix>/<image>:<hash of its inputs>. For a Kubernetes cluster, name
  # a registry it pulls from (<registry host>:<port>/podstack); \`podstack build --push\`
  # and \`podstack up --engine kubernetes\` push the images there.
  prefix: localhost/podstack
  # Verify TLS when pushing; false for a plain-http registry.
  tlsVerify: true
  # Layers pushed as zstd (several times faster to pack and unpack than gzip); gzip for a
  # cluster whose runtime is older than containerd 1.5 or CRI-O 1.21.
  compression: zstd
  debian:
    suite: bookworm
    # Debian mirror for building images. Unset: the mirror in this host's apt sources.
    # mirror: http://<your mirror>/debian
    # securityMirror: http://<your mirror>/debian-security

kubernetes:
  # The StorageClass of the cloud's PersistentVolumeClaims (databases, keys, images).
  # Empty: the cluster's default StorageClass. \`up --engine kubernetes\` checks it exists.
  storageClass: ""

# podstack's state and rendered config, one folder per cloud.
dataDir: /var/lib/podstack

`;
