/**
 * The commented cloud.yaml that `podstack init` writes. Every value here is the
 * default (a unit test checks that this file parses to exactly the defaults),
 * so a user reads what podstack will do and changes only what they want.
 */
export const CLOUD_TEMPLATE = `# podstack cloud file: the whole cloud, described. \`podstack plan\` shows what a change
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

images:
  # Images are named <prefix>/<image>:<hash of its inputs>. For a Kubernetes cluster, name
  # a registry it pulls from (<registry host>:<port>/podstack); \`podstack build --push\`
  # and \`podstack up --engine kubernetes\` push the images there.
  prefix: localhost/podstack
  # Verify TLS when pushing; false for a plain-http registry.
  tlsVerify: true
  debian:
    suite: bookworm
    # Debian mirror for building images. Unset: the mirror in this host's apt sources.
    # mirror: http://<your mirror>/debian
    # securityMirror: http://<your mirror>/debian-security

# podstack's state and rendered config, one folder per cloud.
dataDir: /var/lib/podstack

services:
  mariadb:
    enabled: true
    # Overrides are merged over podstack's generated config, option by option:
    # config:
    #   mariadb.cnf:
    #     mysqld:
    #       max_connections: 2000
  memcached:
    enabled: true
  rabbitmq:
    enabled: true
  keystone:
    enabled: true
    # Port the Identity API is published on.
    port: 5000
    # config:
    #   keystone.conf:
    #     DEFAULT:
    #       debug: true
`;
