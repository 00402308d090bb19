import type { V1Container, V1Volume } from '@kubernetes/client-node';
import { cephxKey } from '../config/ceph.js';
import { type IniOverrides, mergeIni, renderIni } from '../config/ini.js';
import { sshKeyPair } from '../config/ssh.js';
import {
  ANNOTATION,
  componentLabels,
  daemonSet,
  job,
  NODE_DATA_ROOT,
  secret,
  startContainer,
} from '../model/objects.js';
import {
  apiObjects,
  authtokenSection,
  databaseInitJob,
  databaseUrl,
  MOUNT,
  processObjects,
  registrationJob,
  serviceAuth,
  sharedSections,
  transportUrl,
  uwsgiIni,
} from './_factory.js';
import {
  configBundle,
  configMount,
  NODE_SHUTDOWN,
  podMounts,
  readinessHttp,
  readinessTcp,
  rootFile,
} from './_pod.js';
import { cephClientConf } from './ceph.js';
import { rbdSecretUuid } from './cinder.js';
import { defineService, type RenderContext } from './types.js';

/**
 * Nova, the Compute service: its APIs (compute and metadata) under uWSGI, the conductor, the
 * scheduler and the noVNC console proxy as Deployments, and on every hypervisor node a pod with
 * libvirtd and nova-compute (a DaemonSet), to which the network adds its node containers.
 *
 * Nova has three databases (api, cell, cell0) and cells: podstack-nova-db-sync (images/nova)
 * makes them idempotently. A compute node can take servers only once it is mapped to its cell:
 * the nova-cell-setup Job maps the first ones before `up` ends (a server created in the 30 s
 * before the scheduler's own discovery failed "Host 'vm' is not mapped to any cell", measured
 * as a new user), and the scheduler maps nodes that come later (discover_hosts_in_cells_interval).
 */

/**
 * Maps the compute nodes that have registered to their cell, once at least one has (as
 * openstack-helm's cell-setup Job and kolla's "Discover nova hosts" do). A cloud with no node
 * after 5 minutes, by the clock (on two busy cores one round took a minute), is not a failure:
 * the scheduler maps nodes that come later. Inline, not in the image: it is nova-manage and a
 * loop. discover_hosts may fail when the scheduler maps the same host at that moment, so each
 * round is checked with list_hosts rather than by its exit code.
 */
const CELL_SETUP = `set -u
say() { echo "podstack-nova-cell-setup: $*" >&2; }
deadline=$(($(date +%s) + 300))
until nova-manage cell_v2 list_hosts | grep -q ' cell1 '; do
    if [ "$(date +%s)" -ge $deadline ]; then
        say "no compute node registered in 5 minutes: the scheduler maps nodes when they come"
        exit 0
    fi
    nova-manage cell_v2 discover_hosts --verbose || say "discover_hosts failed: trying again"
    sleep 5
done
nova-manage cell_v2 list_hosts`;

/** Nova's databases: the API's, the cell's and cell0, one user for all. */
const NOVA_DATABASES = ['nova_api', 'nova', 'nova_cell0'];
const API_PORT = 8774;
const METADATA_PORT = 8775;
const NOVNC_PORT = 6080;
const INSTANCES = '/var/lib/nova/instances';
const COMPUTE_SECRET = 'nova-compute-config';

/** The sections of nova.conf that nova-compute never reads (nova/compute and nova/virt do not). */
const NOT_ON_THE_NODE = ['database', 'api_database', 'conductor', 'wsgi'];

function withoutSections(conf: IniOverrides, drop: readonly string[]): IniOverrides {
  return Object.fromEntries(Object.entries(conf).filter(([section]) => !drop.includes(section)));
}

/** libvirtd on the node pod's loopback (images/nova-compute/libvirtd.conf). */
const LIBVIRT_URI = 'qemu+tcp://127.0.0.1/system';

/** The hypervisor node's unit: its pod runs libvirt, nova-compute and the node's OVN and OVS. */
export const NODE_UNIT = 'nova-compute';

export const nova = defineService({
  name: 'nova',
  description: 'Nova, the Compute service: servers on libvirt/QEMU',
  kind: 'openstack',
  enabledByDefault: true,
  secrets: [
    'nova_database_password',
    'nova_keystone_password',
    'rabbitmq_password',
    'metadata_proxy_shared_secret',
    // With many nodes: libvirtd's SASL password (live migration between nodes), and the seed of
    // the nodes' SSH key pair (cold migration).
    'libvirt_migration_password',
    'nova_ssh_key',
    // With Cinder: the libvirt secret QEMU opens volumes in Ceph with (client.cinder's key).
    'ceph_fsid',
    'ceph_cinder_key',
  ],
  images: [
    { name: 'nova', parent: 'openstack-base' },
    { name: 'nova-compute', parent: 'nova' },
  ],
  configFiles: ['nova.conf', 'nova-api-uwsgi.ini', 'nova-metadata-uwsgi.ini'],
  needs: ['database', 'identity', 'cache', 'messaging', 'image', 'placement', 'network'],
  provides: {
    compute: { unit: 'nova-api' },
    metadata: { unit: 'nova-metadata', address: `nova-metadata:${METADATA_PORT}` },
  },
  api: { type: 'compute', port: API_PORT, path: '/v2.1' },
  ports: { novncproxy: NOVNC_PORT },
  example: 'config:\n  nova.conf:\n    DEFAULT:\n      debug: true',
  // libvirt's suspend stops the vCPUs with the disk's writes done: the copy is what a power
  // cut at that instant would leave, which a guest's file system recovers from.
  guestDisks: {
    unit: NODE_UNIT,
    container: 'libvirt',
    volume: 'instances',
    list: ['virsh', '-c', LIBVIRT_URI, 'list', '--name', '--state-running'],
    pause: ['virsh', '-c', LIBVIRT_URI, 'suspend'],
    resume: ['virsh', '-c', LIBVIRT_URI, 'resume'],
  },
  render(ctx) {
    const label = (c: string) => componentLabels('nova', c);
    const dbPassword = ctx.secrets.nova_database_password;
    const ksPassword = ctx.secrets.nova_keystone_password;
    const transport = transportUrl(ctx, ctx.secrets.rabbitmq_password);
    const databases = {
      api_database: { connection: databaseUrl(ctx, 'nova', dbPassword, 'nova_api'), max_retries: -1 },
      database: { connection: databaseUrl(ctx, 'nova', dbPassword, 'nova'), max_retries: -1 },
    };
    const auth = serviceAuth(ctx, 'nova', ksPassword);
    const volumes = ctx.provides('volumev3');
    const novnc = ctx.endpoints.publicPort('novncproxy');
    const conf = mergeIni(
      sharedSections('/var/lib/nova/tmp'),
      {
        DEFAULT: {
          transport_url: transport,
          state_path: '/var/lib/nova',
          instances_path: INSTANCES,
          compute_driver: 'libvirt.LibvirtDriver',
          // A node pod that starts again starts the guests that were running (they die with libvirtd).
          resume_guests_state_on_host_boot: true,
          metadata_workers: 1,
          osapi_compute_workers: 1,
        },
        api: { auth_strategy: 'keystone' },
        wsgi: { api_paste_config: '/etc/nova/api-paste.ini' },
        ...databases,
        cache: {
          enabled: true,
          backend: 'oslo_cache.memcache_pool',
          memcache_servers: ctx.endpoints.address('cache'),
        },
        service_user: { ...auth, send_service_user_token: true },
        placement: auth,
        glance: { valid_interfaces: 'internal', region_name: ctx.spec.region },
        neutron: {
          ...auth,
          service_metadata_proxy: true,
          metadata_proxy_shared_secret: ctx.secrets.metadata_proxy_shared_secret,
        },
        conductor: { workers: 1 },
        scheduler: { workers: 1, discover_hosts_in_cells_interval: 30 },
        vnc: {
          enabled: true,
          server_listen: '0.0.0.0',
          novncproxy_host: '0.0.0.0',
          novncproxy_port: NOVNC_PORT,
          // Debian's noVNC 1.3 links vnc_auto.html to vnc.html, the full client, which waits for a
          // click on Connect; vnc_lite.html connects at once, as a console should (devstack uses it).
          novncproxy_base_url: `${novnc.url}/vnc_lite.html`,
        },
        // libvirtd is the node pod's other container, on the pod's loopback (images/nova-compute).
        libvirt: { connection_uri: 'qemu+tcp://127.0.0.1/system' },
        // The node's Open vSwitch database, also on the pod's loopback (images/ovn).
        os_vif_ovs: { ovsdb_connection: 'tcp:127.0.0.1:6640' },
        oslo_messaging_rabbit: { heartbeat_in_pthread: false },
        ...(volumes
          ? { cinder: { ...auth, catalog_info: 'volumev3::internalURL', os_region_name: ctx.spec.region } }
          : {}),
      },
      authtokenSection(ctx, 'nova', ksPassword),
      ctx.overrides('nova.conf'),
    );
    const file = (key: string, dest: string, content: string, mode = '0640') => ({
      key,
      dest,
      owner: 'nova',
      mode,
      content,
    });
    // One thread per uWSGI worker: Nova's WSGI apps monkey-patch eventlet, and each native thread
    // then has its own eventlet hub. The greenthread that reads RPC replies lives in the hub of the
    // thread that made the first call, so a call made from the other thread waited for a reply
    // that had arrived and was not read until that thread ran again: `console url show` and
    // `console log show` timed out after 60 s about one time in two (seen on the test cluster).
    const single = { chdir: '/var/lib/nova', threads: 1 };
    const apiUwsgi = mergeIni(
      uwsgiIni('nova', '/usr/bin/nova-api-wsgi', single),
      ctx.overrides('nova-api-uwsgi.ini'),
    );
    const metadataUwsgi = mergeIni(
      uwsgiIni('nova-metadata', '/usr/bin/nova-metadata-wsgi', single),
      ctx.overrides('nova-metadata-uwsgi.ini'),
    );
    // The bootstrap steps read only the databases and the message bus (create_cell records it).
    const dbConf = renderIni('nova.conf', { DEFAULT: { transport_url: transport }, ...databases });
    const novaImage = ctx.image('nova');
    const syncMounts = podMounts([{ name: 'config', source: { secret: 'nova-db' }, path: MOUNT.config }]);
    const node = ctx.nodeParts();
    return [
      {
        name: 'nova-config',
        service: 'nova',
        description: "nova.conf (and the node's, without the database), the uWSGI inis, and its passwords",
        dependsOn: [],
        objects: [
          secret(
            'nova-config',
            label('config'),
            configBundle([
              file('nova.conf', '/etc/nova/nova.conf', renderIni('nova.conf', conf)),
              file(
                'nova-api-uwsgi.ini',
                '/etc/nova/nova-api-uwsgi.ini',
                renderIni('nova-api-uwsgi.ini', apiUwsgi),
              ),
              file(
                'nova-metadata-uwsgi.ini',
                '/etc/nova/nova-metadata-uwsgi.ini',
                renderIni('nova-metadata-uwsgi.ini', metadataUwsgi),
              ),
            ]),
          ),
          secret(
            'nova-db',
            label('config'),
            configBundle([file('nova.conf', '/etc/nova/nova.conf', dbConf)], {
              'database-password': dbPassword,
            }),
          ),
          secret('nova-keystone', label('config'), { password: ksPassword }),
          ...(volumes || ctx.manyNodes ? [libvirtSecrets(ctx, { volumes, migration: ctx.manyNodes })] : []),
          // The hypervisor node's nova.conf has no database: nova-compute reaches the database
          // only through the conductor, and a node is where a guest that broke out would be.
          // Nor the sections only the conductor and the APIs read: a change to them then leaves
          // nova-compute alone, with the builds it is running.
          secret(
            COMPUTE_SECRET,
            label('config'),
            configBundle([
              file(
                'nova.conf',
                '/etc/nova/nova.conf',
                renderIni('nova.conf', mergeIni(NODE_SHUTDOWN, withoutSections(conf, NOT_ON_THE_NODE))),
              ),
              // With many nodes, nova-compute's password for libvirtd (its own and, migrating,
              // another node's), and the SSH key pair of the nodes (podstack-nova-ssh).
              ...(ctx.manyNodes
                ? [file('auth.conf', '/etc/libvirt/auth.conf', libvirtAuth(ctx), '0600'), ...sshFiles(ctx)]
                : []),
            ]),
          ),
        ],
      },
      {
        name: 'nova-db',
        service: 'nova',
        description: 'create the nova_api, nova and nova_cell0 databases and their user',
        dependsOn: [ctx.provider('database'), 'nova-config'],
        objects: [databaseInitJob(ctx, 'nova', NOVA_DATABASES)],
      },
      {
        name: 'nova-db-sync',
        service: 'nova',
        description: 'the api and cell schemas, cell0 and cell1 (podstack-nova-db-sync)',
        dependsOn: ['nova-db'],
        migrates: NOVA_DATABASES,
        objects: [
          job('nova-db-sync', label('db-sync'), {
            volumes: syncMounts.volumes,
            containers: [
              startContainer('db-sync', novaImage, ['podstack-nova-db-sync'], {
                user: 'nova',
                volumeMounts: syncMounts.volumeMounts,
              }),
            ],
          }),
        ],
      },
      {
        name: 'nova-cell-setup',
        service: 'nova',
        description: 'map the compute nodes to cell1, so the first server can be scheduled at once',
        // Not on nova-compute: a DaemonSet, which nothing may wait for (a cluster may have no
        // hypervisor node yet). The Job waits for a node to register instead.
        dependsOn: ['nova-db-sync'],
        objects: [
          job('nova-cell-setup', label('cell-setup'), {
            volumes: syncMounts.volumes,
            containers: [
              startContainer('cell-setup', novaImage, ['sh', '-c', CELL_SETUP], {
                user: 'nova',
                volumeMounts: syncMounts.volumeMounts,
              }),
            ],
          }),
        ],
      },
      {
        name: 'nova-register',
        service: 'nova',
        description: 'Keystone user nova, service compute and its endpoints',
        dependsOn: [ctx.provider('identity'), 'nova-config'],
        objects: [
          registrationJob(ctx, { name: 'nova', type: 'compute', description: 'Nova, the Compute service' }),
        ],
      },
      {
        name: 'nova-api',
        service: 'nova',
        description: 'the compute API under uWSGI',
        dependsOn: ['nova-db-sync', 'nova-register', ctx.provider('cache'), ctx.provider('messaging')],
        objects: apiObjects(ctx, {
          name: 'nova',
          image: 'nova',
          user: 'nova',
          type: 'compute',
          port: API_PORT,
          command: ['uwsgi_python3', '--ini', '/etc/nova/nova-api-uwsgi.ini'],
          ready: '/',
        }),
      },
      {
        name: 'nova-metadata',
        service: 'nova',
        description: "the metadata API guests read their keys from, through the network's proxy",
        dependsOn: ['nova-db-sync', ctx.provider('cache'), ctx.provider('messaging')],
        objects: processObjects(ctx, {
          name: 'nova',
          component: 'metadata',
          image: 'nova',
          user: 'nova',
          command: ['uwsgi_python3', '--ini', '/etc/nova/nova-metadata-uwsgi.ini'],
          service: { name: 'nova-metadata', port: METADATA_PORT },
          readinessProbe: readinessHttp('/', METADATA_PORT),
          uwsgiPort: METADATA_PORT,
        }),
      },
      {
        name: 'nova-conductor',
        service: 'nova',
        description: 'nova-conductor: the database on behalf of the compute nodes',
        // Placement too: its task manager makes a Placement client as it starts, and exits when
        // Placement does not answer yet ("exists but does not have any supported versions").
        dependsOn: ['nova-db-sync', ctx.provider('messaging'), ctx.provider('placement')],
        objects: processObjects(ctx, {
          name: 'nova',
          component: 'conductor',
          image: 'nova',
          user: 'nova',
          command: ['nova-conductor'],
          queueWorker: true,
        }),
      },
      {
        name: 'nova-scheduler',
        service: 'nova',
        description: 'nova-scheduler, which also finds new compute nodes every 30 s',
        dependsOn: ['nova-db-sync', ctx.provider('messaging'), ctx.provider('placement')],
        objects: processObjects(ctx, {
          name: 'nova',
          component: 'scheduler',
          image: 'nova',
          user: 'nova',
          command: ['nova-scheduler'],
          queueWorker: true,
        }),
      },
      {
        name: 'nova-novncproxy',
        service: 'nova',
        description: "the noVNC console proxy, published for browsers at the console's port",
        dependsOn: ['nova-db-sync', ctx.provider('messaging')],
        objects: processObjects(ctx, {
          name: 'nova',
          component: 'novncproxy',
          image: 'nova',
          user: 'nova',
          command: ['nova-novncproxy', '--web', '/usr/share/novnc'],
          publish: [ctx.endpoints.publicServicePort('novncproxy', NOVNC_PORT, 'novnc')],
          readinessProbe: { tcpSocket: { port: NOVNC_PORT }, periodSeconds: 2 },
        }),
      },
      {
        name: 'nova-compute',
        service: 'nova',
        description: `the hypervisor node: libvirtd, nova-compute${node.map((p) => ` and ${p.service}'s`).join('')} containers`,
        dependsOn: [
          'nova-api',
          'nova-conductor',
          ctx.provider('placement'),
          ...node.flatMap((p) => p.dependsOn),
        ],
        objects: [
          computeNode(ctx.spec.name, ctx.image('nova-compute'), node, { volumes, migration: ctx.manyNodes }),
        ],
      },
    ];
  },
});

/**
 * The node pod. libvirtd and nova-compute share the instances folder (disks, console logs);
 * everything else they share through the pod's loopback, so nothing of the pod is reachable
 * from outside it. Both are privileged: libvirtd makes the guests' taps and runs QEMU,
 * nova-compute plugs the taps through os-vif and Open vSwitch.
 *
 * The guests live as long as the pod, not as long as any one container: the pod's network
 * namespace holds their taps, its shared PID namespace adopts their QEMU when libvirtd's
 * container ends, and podstack-libvirtd starts libvirtd (so QEMU) in a cgroup of its own outside
 * the container's. libvirt's state is on pod volumes, so a new libvirtd container (a crash, a new
 * image) takes the running guests over. Engines replace a changed container of this pod alone;
 * replacing the pod itself stops the guests, which the plan marks (ANNOTATION.guests).
 */

/** Where the libvirt container's own config (the Ceph secret, with Cinder) is mounted. */
const LIBVIRT_CONFIG = '/etc/podstack/libvirt';
const LIBVIRT_SECRETS = 'nova-libvirt-secrets';

/**
 * The libvirt container's own files. With Cinder: libvirt's secret with client.cinder's key, as
 * the files libvirtd loads from /etc/libvirt/secrets when it starts (kolla's way): no `virsh
 * secret-set-value`, whose argument would show the key. private='yes': libvirt never gives the
 * value back. QEMU opens a volume in Ceph with it, through its own RBD client (no kernel module
 * on the node). With many nodes: the SASL password libvirtd asks of TCP clients (live migration
 * between nodes; podstack-libvirtd), and the client side of it for virsh and for libvirtd itself.
 */
function libvirtSecrets(ctx: RenderContext, o: { volumes: boolean; migration: boolean }) {
  const s = ctx.secrets as Record<string, string>;
  const ceph = () => {
    const uuid = rbdSecretUuid(s);
    return [
      rootFile(
        'ceph-secret.xml',
        `/etc/libvirt/secrets/${uuid}.xml`,
        `<secret ephemeral='no' private='yes'>\n  <uuid>${uuid}</uuid>\n  <usage type='ceph'>\n    <name>client.cinder secret</name>\n  </usage>\n</secret>\n`,
      ),
      rootFile('ceph-secret.base64', `/etc/libvirt/secrets/${uuid}.base64`, cephxKey(s.ceph_cinder_key!)),
      rootFile('ceph.conf', '/etc/ceph/ceph.conf', cephClientConf(ctx), '0644'),
    ];
  };
  return secret(
    LIBVIRT_SECRETS,
    componentLabels('nova', 'config'),
    configBundle([
      ...(o.volumes ? ceph() : []),
      ...(o.migration
        ? [
            rootFile('auth.conf', '/etc/libvirt/auth.conf', libvirtAuth(ctx)),
            rootFile(
              'migration-password',
              '/etc/libvirt/podstack-migration-password',
              s.libvirt_migration_password!,
            ),
          ]
        : []),
    ]),
  );
}

/** Port of the node pod's sshd (podstack-nova-ssh), kolla's. */
const NODE_SSH_PORT = 8022;

/**
 * The nodes' SSH: one key pair for the cloud (from secrets.yaml), root's on every node pod, with
 * an ssh_config that takes every host on the node sshd's port and, as kolla's, checks no host
 * key (a node pod's host keys are new with each pod).
 */
function sshFiles(ctx: RenderContext) {
  const pair = sshKeyPair((ctx.secrets as Record<string, string>).nova_ssh_key!, `nova@${ctx.spec.name}`);
  const config = [
    'Host *',
    `    Port ${NODE_SSH_PORT}`,
    '    IdentityFile /root/.ssh/id_ed25519',
    '    IdentitiesOnly yes',
    '    StrictHostKeyChecking no',
    '    UserKnownHostsFile /dev/null',
    '    LogLevel ERROR',
    '',
  ].join('\n');
  return [
    rootFile('ssh-private-key', '/root/.ssh/id_ed25519', pair.privateKey),
    rootFile('ssh-authorized-keys', '/root/.ssh/authorized_keys', `${pair.publicKey}\n`),
    rootFile('ssh-config', '/root/.ssh/config', config),
  ];
}

/** libvirt's client credentials (auth.conf) for every libvirtd of the cloud: user nova, SASL. */
function libvirtAuth(ctx: RenderContext): string {
  const password = (ctx.secrets as Record<string, string>).libvirt_migration_password!;
  return `[credentials-podstack]\nauthname=nova\npassword=${password}\n\n[auth-libvirt-default]\ncredentials=podstack\n`;
}

function computeNode(
  cloud: string,
  image: string,
  parts: readonly { containers: readonly V1Container[]; volumes: readonly V1Volume[] }[],
  o: { volumes: boolean; migration: boolean },
) {
  const ownConfig = o.volumes || o.migration;
  const labels = componentLabels('nova', 'compute');
  const instances: V1Volume = {
    name: 'instances',
    hostPath: { path: `${NODE_DATA_ROOT}/${cloud}/nova-instances`, type: 'DirectoryOrCreate' },
  };
  const { volumes: podVolumes, volumeMounts } = podMounts([configMount(COMPUTE_SECRET)]);
  const libvirtState = podMounts([
    { name: 'libvirt-run', source: { emptyDir: true }, path: '/run/libvirt' },
    { name: 'libvirt-lib', source: { emptyDir: true }, path: '/var/lib/libvirt' },
    { name: 'libvirt-domains', source: { emptyDir: true }, path: '/etc/libvirt/qemu' },
  ]);
  const privileged = { privileged: true };
  const nodeName = { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };
  const instancesMount = { name: 'instances', mountPath: INSTANCES };
  const libvirtConfig = podMounts(
    ownConfig ? [{ name: 'libvirt-config', source: { secret: LIBVIRT_SECRETS }, path: LIBVIRT_CONFIG }] : [],
  );
  const ds = daemonSet('nova-compute', labels, {
    shareProcessNamespace: true,
    volumes: [
      ...podVolumes,
      instances,
      ...libvirtState.volumes,
      ...libvirtConfig.volumes,
      ...parts.flatMap((p) => p.volumes),
    ],
    containers: [
      {
        ...startContainer('libvirt', image, ['podstack-libvirtd'], {
          // Not nova.conf: libvirtd reads none of it, and a nova.conf change must not replace it.
          volumeMounts: [instancesMount, ...libvirtState.volumeMounts, ...libvirtConfig.volumeMounts],
          // The node's name is the hypervisor's: nova keeps its guests' records by it.
          env: [
            nodeName,
            { name: 'PODSTACK_LIBVIRT_CGROUP', value: `podstack-${cloud}-libvirt` },
            ...(ownConfig ? [{ name: 'PODSTACK_CONFIG_DIR', value: LIBVIRT_CONFIG }] : []),
            ...(o.migration ? [{ name: 'PODSTACK_LIBVIRT_MIGRATION', value: '1' }] : []),
          ],
        }),
        securityContext: privileged,
        readinessProbe: {
          exec: { command: ['virsh', '-c', LIBVIRT_URI, 'version'] },
          periodSeconds: 5,
        },
      },
      {
        ...startContainer('nova-compute', image, ['podstack-nova-compute'], {
          volumeMounts: [...volumeMounts, instancesMount],
          env: [nodeName],
        }),
        securityContext: privileged,
      },
      // Other nodes' nova-compute moves guests here over SSH (cold migration, resize).
      ...(o.migration
        ? [
            {
              ...startContainer('nova-ssh', image, ['podstack-nova-ssh'], {
                volumeMounts: [...volumeMounts, instancesMount],
              }),
              ports: [{ name: 'ssh', containerPort: NODE_SSH_PORT }],
              readinessProbe: readinessTcp(NODE_SSH_PORT),
            },
          ]
        : []),
      ...parts.flatMap((p) => p.containers),
    ],
  });
  const annotations = {
    [ANNOTATION.guests]: 'libvirt',
    [ANNOTATION.listGuests]: JSON.stringify(['virsh', '-c', LIBVIRT_URI, 'list', '--name']),
  };
  return { ...ds, metadata: { ...ds.metadata, annotations } };
}
