import { mergeIni, renderIni } from '../config/ini.js';
import { componentLabels, secret, startContainer } from '../model/objects.js';
import {
  apiObjects,
  authtokenSection,
  databaseInitJob,
  databaseSecret,
  databaseSyncJob,
  databaseUrl,
  registrationJob,
  serviceAuth,
  sharedSections,
  transportUrl,
} from './_factory.js';
import { configBundle, configMount, NODE_SHUTDOWN, podMounts, rootFile } from './_pod.js';
import { NODE_OVSDB } from './ovn.js';
import { defineService, type RenderContext } from './types.js';

/**
 * Neutron, the Network service, with ML2/OVN: neutron-server (API, RPC and OVN's maintenance in
 * one eventlet process; images/neutron says why not uWSGI here) and, on every hypervisor node,
 * the OVN metadata agent, which proxies the guests' 169.254.169.254 to Nova's metadata API
 * from a namespace per network.
 */

const PORT = 9696;
const ML2 = '/etc/neutron/plugins/ml2/ml2_conf.ini';

export const neutron = defineService({
  name: 'neutron',
  description: 'Neutron, the Network service: networks, routers and floating IPs on OVN',
  kind: 'openstack',
  enabledByDefault: true,
  secrets: [
    'neutron_database_password',
    'neutron_keystone_password',
    'rabbitmq_password',
    'metadata_proxy_shared_secret',
  ],
  images: [{ name: 'neutron', parent: 'openstack-base' }],
  configFiles: ['neutron.conf', 'ml2_conf.ini', 'neutron_ovn_metadata_agent.ini'],
  needs: ['database', 'identity', 'cache', 'messaging', 'ovn', 'metadata'],
  provides: { network: { unit: 'neutron-api' } },
  api: { type: 'network', port: PORT },
  example: 'config:\n  neutron.conf:\n    DEFAULT:\n      debug: true',
  render(ctx) {
    const label = (c: string) => componentLabels('neutron', c);
    const dbPassword = ctx.secrets.neutron_database_password;
    const ksPassword = ctx.secrets.neutron_keystone_password;
    const ovn = ovnConnections(ctx.endpoints.address('ovn'));
    const conf = mergeIni(
      sharedSections('/var/lib/neutron/tmp'),
      {
        DEFAULT: {
          core_plugin: 'ml2',
          service_plugins: 'ovn-router',
          transport_url: transportUrl(ctx, ctx.secrets.rabbitmq_password),
          auth_strategy: 'keystone',
          state_path: '/var/lib/neutron',
          bind_port: PORT,
          api_workers: 1,
          rpc_workers: 1,
          rpc_state_report_workers: 1,
          // Nova waits for "vif plugged" before it starts a guest: Neutron must tell it.
          notify_nova_on_port_status_changes: true,
          notify_nova_on_port_data_changes: true,
          // One request per connection, as the uWSGI servers do: a server that stops while a
          // client reuses an idle connection would fail that client's next request.
          wsgi_keep_alive: false,
        },
        database: { connection: databaseUrl(ctx, 'neutron', dbPassword, 'neutron'), max_retries: -1 },
        // Neutron's nova client takes endpoint_type, not valid_interfaces: without it, port events
        // go to the public URL, which the cloud's pods may not reach (127.0.0.1 by default).
        nova: { ...serviceAuth(ctx, 'neutron', ksPassword), endpoint_type: 'internal' },
        agent: { root_helper: '' },
      },
      authtokenSection(ctx, 'neutron', ksPassword),
      ctx.overrides('neutron.conf'),
    );
    const ml2 = mergeIni(
      {
        ml2: {
          mechanism_drivers: 'ovn',
          type_drivers: 'flat,geneve',
          tenant_network_types: 'geneve',
          extension_drivers: 'port_security',
          overlay_ip_version: 4,
        },
        ml2_type_geneve: { vni_ranges: '1:65536', max_header_size: 38 },
        ml2_type_flat: { flat_networks: 'physnet1' },
        securitygroup: { enable_security_group: true },
        ovn: {
          ...ovn,
          ovn_l3_scheduler: 'leastloaded',
          ovn_metadata_enabled: true,
          // Many nodes: a floating IP is NATed on its guest's own node and answers on that
          // node's external bridge, so losing a node takes only its own guests' addresses. Its
          // router's gateway (SNAT) stays on one chassis, and OVN gives it up on a chassis that
          // can reach no other, so with two gateway nodes the loss of either stops SNAT.
          enable_distributed_floating_ip: ctx.manyNodes,
        },
      },
      ctx.overrides('ml2_conf.ini'),
    );
    const file = (key: string, dest: string, content: string) => ({
      key,
      dest,
      owner: 'neutron',
      mode: '0640',
      content,
    });
    return [
      {
        name: 'neutron-config',
        service: 'neutron',
        description:
          'neutron.conf, ml2_conf.ini, the metadata agent config, and the passwords of its database and Keystone user',
        dependsOn: [],
        objects: [
          secret(
            'neutron-config',
            label('config'),
            configBundle([
              file('neutron.conf', '/etc/neutron/neutron.conf', renderIni('neutron.conf', conf)),
              file('ml2_conf.ini', ML2, renderIni('ml2_conf.ini', ml2)),
            ]),
          ),
          databaseSecret(
            ctx,
            {
              name: 'neutron',
              user: 'neutron',
              password: dbPassword,
              section: 'database',
              file: 'neutron.conf',
              dest: '/etc/neutron/neutron.conf',
            },
            label('config'),
          ),
          secret('neutron-keystone', label('config'), { password: ksPassword }),
          metadataAgentSecret(ctx),
        ],
      },
      {
        name: 'neutron-db',
        service: 'neutron',
        description: 'create the neutron database and its user',
        dependsOn: [ctx.provider('database'), 'neutron-config'],
        objects: [databaseInitJob(ctx, 'neutron')],
      },
      {
        name: 'neutron-db-sync',
        service: 'neutron',
        description: 'neutron-db-manage upgrade head: create or upgrade the schema',
        dependsOn: ['neutron-db'],
        migrates: ['neutron'],
        objects: [
          databaseSyncJob(ctx, {
            name: 'neutron',
            image: 'neutron',
            user: 'neutron',
            command: ['neutron-db-manage', '--config-file', '/etc/neutron/neutron.conf', 'upgrade', 'heads'],
          }),
        ],
      },
      {
        name: 'neutron-register',
        service: 'neutron',
        description: 'Keystone user neutron, service network and its endpoints',
        dependsOn: [ctx.provider('identity'), 'neutron-config'],
        objects: [
          registrationJob(ctx, {
            name: 'neutron',
            type: 'network',
            description: 'Neutron, the Network service',
          }),
        ],
      },
      {
        name: 'neutron-api',
        service: 'neutron',
        description: 'neutron-server: the network API, with ML2/OVN',
        dependsOn: [
          'neutron-db-sync',
          'neutron-register',
          ctx.provider('ovn'),
          ctx.provider('messaging'),
          ctx.provider('cache'),
        ],
        objects: apiObjects(ctx, {
          name: 'neutron',
          image: 'neutron',
          user: 'neutron',
          type: 'network',
          port: PORT,
          command: ['neutron-server', '--config-file', '/etc/neutron/neutron.conf', '--config-file', ML2],
          ready: '/',
          // eventlet.wsgi's line, from the API worker once it accepts: after the plugin and
          // OVN's connections are up. Its socket has SO_REUSEPORT (eventlet.listen's default),
          // so the old and the new generation share the port while it rolls.
          servesWhenLogged: 'wsgi starting up on',
        }),
      },
    ];
  },
  node(ctx) {
    const { volumes, volumeMounts } = podMounts([{ ...configMount(METADATA_SECRET), name: METADATA_SECRET }]);
    return {
      service: 'neutron',
      dependsOn: ['neutron-api'],
      volumes,
      containers: [
        {
          // As root: it makes network namespaces and runs haproxy in them.
          ...startContainer(
            'ovn-metadata-agent',
            ctx.image('neutron'),
            [
              'podstack-metadata-agent',
              '--config-file',
              '/etc/neutron/neutron.conf',
              '--config-file',
              '/etc/neutron/neutron_ovn_metadata_agent.ini',
            ],
            { volumeMounts },
          ),
          securityContext: { privileged: true },
        },
      ],
    };
  },
});

const METADATA_SECRET = 'neutron-metadata-config';

/** The metadata agent's config: the shared secret and where Nova's metadata API and OVN are, no database. */
function metadataAgentSecret(ctx: RenderContext) {
  const ovn = ovnConnections(ctx.endpoints.address('ovn'));
  const [metadataHost, metadataPort] = ctx.endpoints.address('metadata').split(':');
  const agent = mergeIni(
    NODE_SHUTDOWN,
    {
      DEFAULT: {
        nova_metadata_host: metadataHost!,
        nova_metadata_port: Number(metadataPort),
        metadata_proxy_shared_secret: ctx.secrets.metadata_proxy_shared_secret!,
        state_path: '/var/lib/neutron',
        metadata_workers: 1,
      },
      agent: { root_helper: '' },
      ovs: { ovsdb_connection: NODE_OVSDB },
      ovn: { ovn_sb_connection: ovn.ovn_sb_connection },
    },
    ctx.overrides('neutron_ovn_metadata_agent.ini'),
  );
  return secret(
    METADATA_SECRET,
    componentLabels('neutron', 'metadata-agent'),
    configBundle([
      rootFile(
        'neutron.conf',
        '/etc/neutron/neutron.conf',
        renderIni('neutron.conf', sharedSections('/var/lib/neutron/tmp')),
      ),
      rootFile(
        'neutron_ovn_metadata_agent.ini',
        '/etc/neutron/neutron_ovn_metadata_agent.ini',
        renderIni('neutron_ovn_metadata_agent.ini', agent),
      ),
    ]),
  );
}

function ovnConnections(nb: string) {
  const [host, port] = nb.split(':');
  return {
    ovn_nb_connection: `tcp:${host}:${port}`,
    ovn_sb_connection: `tcp:${host}:${Number(port) + 1}`,
  };
}
