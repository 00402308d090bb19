import type { V1Container } from '@kubernetes/client-node';
import { type IniOverrides, type IniSections, mergeIni, renderIni } from '../config/ini.js';
import {
  CONFIG_DIR,
  componentLabels,
  type Deployment,
  deployment,
  type Job,
  job,
  type KubeObject,
  persistentVolumeClaim,
  type Rollout,
  type RollReadiness,
  type Secret,
  type ServicePort,
  secret,
  service,
  startContainer,
} from '../model/objects.js';
import type { Unit } from '../model/unit.js';
import { configBundle, type Mount, podMounts, readinessConnected, readinessHttp } from './_pod.js';
import { RABBITMQ_USER } from './rabbitmq.js';
import type { Capability, RenderContext, ServiceDefinition } from './types.js';
import { defineService } from './types.js';

/**
 * The one OpenStack service factory. Every OpenStack service has the same bones, as
 * openstack-helm's helm-toolkit and kolla's roles show: a database and its schema sync, a
 * Keystone user, service and endpoints, config files with the same shared sections, and an
 * API under a WSGI server. A catalog entry declares what is its own; this file writes the rest,
 * once, for every service.
 *
 * Who reads which secret is deliberate: each service has three Secrets, so a Job mounts only
 * what it needs and runs again only when that changes.
 *   <name>-db        its database password and a minimal config with only the connection
 *                    (db-init, db-sync)
 *   <name>-keystone  its Keystone user's password (the registration Job)
 *   <name>-config    its config files (the API pods)
 * Keystone's admin credential (Secret keystone-admin) is mounted by registration Jobs only.
 */

/** Where the Secrets of a pod are mounted. */
export const MOUNT = {
  config: CONFIG_DIR,
  db: CONFIG_DIR,
  service: '/etc/podstack/service',
  admin: '/etc/podstack/keystone-admin',
  mariadbRoot: '/etc/podstack/mariadb-root',
} as const;

export const ADMIN_SECRET = 'keystone-admin';
export const ADMIN_PASSWORD_KEY = 'admin-password';
export const MARIADB_ROOT_SECRET = 'mariadb-root';
export const MARIADB_ROOT_PASSWORD_KEY = 'root-password';
const DB_PASSWORD_KEY = 'database-password';
const SERVICE_PASSWORD_KEY = 'password';

/** The secrets.yaml entries of an OpenStack service, typed from its name. */
export type DatabaseSecret<N extends string> = `${N}_database_password`;
export type KeystoneSecret<N extends string> = `${N}_keystone_password`;

export interface DatabaseDeclaration {
  /** The config section holding `connection` (placement: placement_database). */
  readonly section?: string;
  /** The schema sync, run as the service's user. */
  readonly sync: readonly string[];
}

export interface ClaimDeclaration {
  readonly name: string;
  readonly path: string;
  readonly size: string;
}

export interface ApiComponent {
  /** The WSGI script uWSGI loads (Debian ships one per API in /usr/bin). */
  readonly wsgi: string;
  /** A path that answers 200 without a token: the readiness probe. */
  readonly ready: string;
  /** uWSGI options of this API, over the shared ones. */
  readonly uwsgi?: Readonly<Record<string, string | number | boolean>>;
  readonly claims?: readonly ClaimDeclaration[];
}

export interface OpenStackDeclaration<N extends string, F extends string> {
  readonly name: N;
  readonly description: string;
  /** Its image folder (images/<image>), a child of openstack-base. */
  readonly image: string;
  /** The system user its processes run as (Debian's package creates it). */
  readonly user: string;
  /** Capabilities beyond those every OpenStack service uses (database, identity, cache). */
  readonly needs?: readonly Capability[];
  readonly database: DatabaseDeclaration;
  /** Keystone service type, and the port the API listens on (the default published port). */
  readonly identity: { readonly type: Capability; readonly port: number; readonly path?: string };
  /** The main config file and where it goes; its defaults are merged over the shared sections. */
  readonly config: {
    readonly file: F;
    readonly dest: string;
    readonly defaults?: (ctx: RenderContext) => IniOverrides;
  };
  readonly api: ApiComponent;
  /** A commented override example for the cloud file template (YAML under services.<name>). */
  readonly example?: string;
  /** Off unless the cloud file enables it (default: on). */
  readonly enabledByDefault?: boolean;
  /** Entries of secrets.yaml it uses beyond its database and Keystone passwords. */
  readonly secrets?: readonly string[];
  /**
   * Its units beyond the API (a scheduler, a volume service), given its rendered main config
   * file's sections: they start after the schema is in place.
   */
  readonly more?: (ctx: RenderContext, conf: IniSections) => readonly Unit[];
}

const SHARED_NEEDS: readonly Capability[] = ['database', 'identity', 'cache'];

/** mysql+pymysql URL of a service's database on the cloud's MariaDB. */
export function databaseUrl(ctx: RenderContext, user: string, password: string, database: string): string {
  return `mysql+pymysql://${user}:${encodeURIComponent(password)}@${ctx.endpoints.address('database')}/${database}?charset=utf8mb4`;
}

/** The sections every OpenStack service's main config shares (logging to stderr, locks). */
export function sharedSections(lockPath: string): IniOverrides {
  return {
    DEFAULT: { debug: false, use_stderr: true, log_file: '' },
    oslo_concurrency: { lock_path: lockPath },
  };
}

/** keystonemiddleware's section: how an API validates the tokens it is given. */
export function authtokenSection(ctx: RenderContext, user: string, password: string): IniOverrides {
  return {
    keystone_authtoken: {
      www_authenticate_uri: ctx.endpoints.url('identity', 'public'),
      auth_url: ctx.endpoints.url('identity', 'internal'),
      memcached_servers: ctx.endpoints.address('cache'),
      auth_type: 'password',
      project_domain_name: 'Default',
      user_domain_name: 'Default',
      project_name: 'service',
      username: user,
      password,
      region_name: ctx.spec.region,
      interface: 'internal',
      service_token_roles_required: true,
      // A service calling another (Nova calling Neutron) sends its own token as a service token.
      // podstack-register gives every service user the admin role in project service, so that
      // is the role a service token must carry; keystonemiddleware's default asks for `service`,
      // which no podstack user has, and answers such calls 401.
      service_token_roles: 'admin',
    },
  };
}

/** The parent of every OpenStack image: Python, the openstack client, uWSGI (images/openstack-base). */
export const BASE_IMAGE = 'openstack-base';

/**
 * Where a uWSGI server's pod hands out its listening socket (uWSGI's zerg pool): an abstract
 * Unix socket, so one per pod network namespace and no file to share between containers.
 */
const LISTENER_POOL = '@podstack-listener';

/** Where a uWSGI server also answers HTTP inside its own container only (its /tmp). */
const SURGE_SOCKET = '/tmp/podstack-api.sock';

/**
 * The uWSGI ini of an API, sized for a small host; `extra` options win. The server binds no
 * port of its own: it takes the pod's listening socket from the listener (uwsgiPod), so two
 * generations accept from one queue and none of them closing it can reset a connection.
 */
export function uwsgiIni(
  name: string,
  wsgi: string,
  extra: Readonly<Record<string, string | number | boolean>> = {},
): IniOverrides {
  return {
    uwsgi: {
      zerg: LISTENER_POOL,
      // The sockets a zerg receives speak the default protocol; the ones it binds name theirs.
      protocol: 'http',
      'http-socket': SURGE_SOCKET,
      'wsgi-file': wsgi,
      name: `${name}-api`,
      master: true,
      processes: 2,
      // One thread per worker. A worker with more does not always stop gracefully in Debian's
      // uWSGI 2.0.21 (pthread_cancel from a non-main thread, fixed upstream in 2024, uwsgi#2615):
      // it is killed after worker-reload-mercy with the requests it holds (measured: a Glance
      // roll lost 2 of 20,027 requests so). Nova needs one thread anyway (nova.ts).
      threads: 1,
      'enable-threads': true,
      'lazy-apps': true,
      'thunder-lock': true,
      'buffer-size': 65535,
      'die-on-term': true,
      'no-orphans': true,
      'add-header': 'Connection: close',
      // SIGTERM (podman stop, a pod's deletion) ends uWSGI rather than reloading it, gracefully:
      // the workers finish the requests they have, then exit.
      'exit-on-reload': true,
      'hook-master-start': 'unix_signal:15 gracefully_kill_them_all',
      'worker-reload-mercy': 20,
      ...extra,
    },
  };
}

/**
 * Runs a uWSGI server beside the pod's listener: waits for the listener first (a zerg that finds
 * no pool exits, and on Kubernetes a pod's containers start together), and restarts the server
 * when the listener restarts. A restarted listener binds a new socket beside the one the server
 * still holds, and nothing would accept what the kernel queues there (measured: 23 of 40
 * requests hung); the server's graceful exit hands its own queue over to the new socket
 * (tcp_migrate_req on Podman) and its next start takes the new socket. A listener that is only
 * gone (a pod stopping: Kubernetes signals every container at once, but the server's preStop
 * keeps it serving while kube-proxy moves away) is no reason to stop: the server holds the socket.
 * uWSGI binds the name with its terminating NUL, which /proc shows as a trailing @.
 */
const AFTER_LISTENER = [
  'sh',
  '-c',
  [
    'pool=$1',
    'shift',
    'listening() { awk -v p="$pool" \'$4 == "00010000" && ($8 == p || $8 == p "@") { print $7 }\' /proc/net/unix; }',
    'i=0',
    'until socket=$(listening) && [ -n "$socket" ]; do',
    '  i=$((i + 1))',
    '  [ $i -le 300 ] || { echo "podstack: no listener at $pool after 30 s" >&2; exit 1; }',
    '  sleep 0.1',
    'done',
    '"$@" &',
    'server=$!',
    "trap 'kill -TERM $server' TERM INT",
    'while kill -0 $server 2>/dev/null; do',
    '  now=$(listening)',
    '  if [ -n "$now" ] && [ "$now" != "$socket" ]; then',
    '    echo "podstack: the listener at $pool restarted; the server restarts to serve its socket" >&2',
    '    kill -TERM $server',
    '    wait $server',
    '    exit 1',
    '  fi',
    '  sleep 1',
    'done',
    'wait $server',
  ].join('\n'),
  'after-listener',
  LISTENER_POOL,
];

/**
 * A rolling server's pod keeps serving for a while after Kubernetes marks it for deletion:
 * until kube-proxy on every node has stopped sending it new connections (endpoint removal
 * travels through the API server and each node's proxy, about a second on a quiet cluster).
 * Only then does SIGTERM tell it to finish what it has and exit.
 */
const LEAVE_ENDPOINTS_FIRST: V1Container['lifecycle'] = { preStop: { exec: { command: ['sleep', '5'] } } };

/**
 * A uWSGI server's pod: a listener that owns the port, and the server, which takes the port's
 * socket from it. The listener outlives the server's generations (its image, openstack-base,
 * is not the server's), so an engine can start a new server beside the old one and stop the
 * old one with nothing to migrate: both accept from the one queue (its `ready` socket is where
 * to ask the new one alone whether it is ready).
 */
function uwsgiPod(
  ctx: RenderContext,
  port: number,
  server: V1Container,
): { containers: V1Container[]; ready: RollReadiness } {
  const listener = startContainer(
    `${server.name}-listener`,
    ctx.image(BASE_IMAGE),
    // reuse-port: a listener that restarts while servers hold the old socket can still bind.
    [
      'uwsgi',
      '--plugin',
      'zergpool',
      '--master',
      // uWSGI reloads on SIGTERM by default: a pod's stop would wait out its grace period.
      '--die-on-term',
      '--reuse-port',
      '--zerg-pool',
      `${LISTENER_POOL}:0.0.0.0:${port}`,
    ],
    { user: 'nobody' },
  );
  return {
    containers: [listener, { ...server, args: [...AFTER_LISTENER, ...(server.args ?? [])] }],
    ready: { socket: SURGE_SOCKET },
  };
}

const secretMount = (name: string, secretName: string, path: string): Mount => ({
  name,
  source: { secret: secretName },
  path,
});

/** The Secret with a service's database password, and a config holding only its connection. */
export function databaseSecret(
  ctx: RenderContext,
  o: { name: string; user: string; password: string; section: string; file: string; dest: string },
  labels: Record<string, string>,
): Secret {
  const conf = renderIni(o.file, {
    [o.section]: { connection: databaseUrl(ctx, o.name, o.password, o.name), max_retries: -1 },
  });
  return secret(
    `${o.name}-db`,
    labels,
    configBundle([{ key: o.file, dest: o.dest, owner: o.user, mode: '0640', content: conf }], {
      [DB_PASSWORD_KEY]: o.password,
    }),
  );
}

/**
 * openstack-helm's db-init: creates the service's database and user and (re)sets its password,
 * idempotently, in the MariaDB image, which carries the client and podstack-db-ensure.
 */
export function databaseInitJob(
  ctx: RenderContext,
  name: string,
  databases: readonly string[] = [name],
): Job {
  const { volumes, volumeMounts } = podMounts([
    secretMount('db', `${name}-db`, MOUNT.db),
    secretMount('mariadb-root', MARIADB_ROOT_SECRET, MOUNT.mariadbRoot),
  ]);
  const ensure = (database: string): V1Container => ({
    name: databases.length === 1 ? 'db-ensure' : `db-ensure-${database.replaceAll('_', '-')}`,
    image: ctx.image('mariadb'),
    imagePullPolicy: 'IfNotPresent',
    command: [
      'podstack-db-ensure',
      ctx.endpoints.address('database').split(':')[0]!,
      database,
      name,
      `${MOUNT.db}/${DB_PASSWORD_KEY}`,
    ],
    env: [
      {
        name: 'MARIADB_ROOT_PASSWORD_FILE',
        value: `${MOUNT.mariadbRoot}/${MARIADB_ROOT_PASSWORD_KEY}`,
      },
    ],
    volumeMounts,
  });
  // One user, several databases (Nova's api, cell and cell0): one after the other, as init
  // containers, since they all set the same user's password.
  const containers = databases.map(ensure);
  return job(`${name}-db`, componentLabels(name, 'db-init'), {
    volumes,
    ...(containers.length > 1 ? { initContainers: containers.slice(0, -1) } : {}),
    containers: containers.slice(-1),
  });
}

/** The schema sync, with nothing but the database connection as its config. */
export function databaseSyncJob(
  ctx: RenderContext,
  o: { name: string; image: string; user: string; command: readonly string[] },
): Job {
  const { volumes, volumeMounts } = podMounts([secretMount('config', `${o.name}-db`, MOUNT.config)]);
  return job(`${o.name}-db-sync`, componentLabels(o.name, 'db-sync'), {
    volumes,
    containers: [startContainer('db-sync', ctx.image(o.image), o.command, { user: o.user, volumeMounts })],
  });
}

/**
 * openstack-helm's ks-user, ks-service and ks-endpoints in one Job: podstack-register
 * (images/openstack-base) makes the service's user, its admin role in project service, the
 * service and its three endpoints, idempotently. Passwords are read from files, never
 * passed on a command line.
 */
export function registrationJob(
  ctx: RenderContext,
  o: { name: string; type: Capability; description: string },
): Job {
  const { volumes, volumeMounts } = podMounts([
    secretMount('admin', ADMIN_SECRET, MOUNT.admin),
    secretMount('service', `${o.name}-keystone`, MOUNT.service),
  ]);
  const urls = (['public', 'internal', 'admin'] as const).flatMap((i) => [
    `--${i}`,
    ctx.endpoints.url(o.type, i),
  ]);
  return job(`${o.name}-register`, componentLabels(o.name, 'register'), {
    volumes,
    containers: [
      {
        name: 'register',
        image: ctx.image('openstack-base'),
        imagePullPolicy: 'IfNotPresent',
        command: [
          'podstack-register',
          '--name',
          o.name,
          '--type',
          o.type,
          '--description',
          o.description,
          '--region',
          ctx.spec.region,
          '--user',
          o.name,
          '--password-file',
          `${MOUNT.service}/${SERVICE_PASSWORD_KEY}`,
          ...urls,
        ],
        env: adminEnv(ctx),
        volumeMounts,
      },
    ],
  });
}

/** The admin credential as the openstack tools read it; the password stays in its file. */
export function adminEnv(ctx: RenderContext) {
  return [
    { name: 'OS_AUTH_URL', value: ctx.endpoints.url('identity', 'internal') },
    { name: 'OS_USERNAME', value: 'admin' },
    { name: 'OS_PROJECT_NAME', value: 'admin' },
    { name: 'OS_USER_DOMAIN_NAME', value: 'Default' },
    { name: 'OS_PROJECT_DOMAIN_NAME', value: 'Default' },
    { name: 'OS_REGION_NAME', value: ctx.spec.region },
    { name: 'OS_INTERFACE', value: 'internal' },
    { name: 'OS_PASSWORD_FILE', value: `${MOUNT.admin}/${ADMIN_PASSWORD_KEY}` },
  ];
}

export interface ApiDeploymentOptions {
  readonly name: string;
  readonly image: string;
  readonly user: string;
  readonly type: Capability;
  readonly port: number;
  readonly command: readonly string[];
  readonly ready: string;
  /**
   * For a server that binds its port itself with SO_REUSEPORT (not uWSGI): the line it logs once
   * it serves, so an engine can roll it (ANNOTATION.surgeLog).
   */
  readonly servesWhenLogged?: string;
  /** Secrets and claims the API mounts besides its config. */
  readonly mounts?: readonly Mount[];
  readonly claims?: readonly ClaimDeclaration[];
}

/**
 * An API as a Deployment, its in-cloud Service and its claims. Claims are handed to the
 * service's user first: a fresh volume (a hostPath or local PV, unlike a Podman volume) is root's.
 */
export function apiObjects(ctx: RenderContext, o: ApiDeploymentOptions): KubeObject[] {
  const labels = componentLabels(o.name, 'api');
  const claims = o.claims ?? [];
  const mounts: Mount[] = [
    secretMount('config', `${o.name}-config`, MOUNT.config),
    ...(o.mounts ?? []),
    ...claims.map((c): Mount => ({ name: c.name, source: { claim: `${o.name}-${c.name}` }, path: c.path })),
  ];
  const { volumes, volumeMounts } = podMounts(mounts);
  const claimMounts = volumeMounts.filter((m) => claims.some((c) => c.name === m.name));
  const init: V1Container[] =
    claims.length === 0
      ? []
      : [
          {
            name: 'own-claims',
            image: ctx.image(o.image),
            imagePullPolicy: 'IfNotPresent',
            command: ['chown', `${o.user}:${o.user}`, ...claims.map((c) => c.path)],
            volumeMounts: claimMounts,
          },
        ];
  const server = startContainer(`${o.name}-api`, ctx.image(o.image), o.command, {
    user: o.user,
    ports: ctx.endpoints.containerPorts(o.type),
    volumeMounts,
    lifecycle: LEAVE_ENDPOINTS_FIRST,
    readinessProbe: readinessHttp(o.ready, o.port),
  });
  const pod = o.command[0] === 'uwsgi_python3' ? uwsgiPod(ctx, o.port, server) : undefined;
  const ready: RollReadiness | undefined =
    pod?.ready ?? (o.servesWhenLogged ? { logged: o.servesWhenLogged } : undefined);
  if (!ready)
    throw new Error(`${o.name}'s API is neither uWSGI nor says servesWhenLogged: it could not roll`);
  // An API runs twice while it rolls; with claims, both pods on the node that can mount them
  // (a ReadWriteOnce claim is one node's).
  const api: Deployment = deployment(
    `${o.name}-api`,
    labels,
    {
      volumes,
      ...(init.length > 0 ? { initContainers: init } : {}),
      containers: pod?.containers ?? [server],
    },
    // Keystone's key claims come as mounts, not as claims of its own: they count the same.
    { type: 'rolling', colocate: mounts.some((m) => 'claim' in m.source), ready },
  );
  return [
    ...claims.map((c) => persistentVolumeClaim(`${o.name}-${c.name}`, labels, c.size)),
    api,
    service(o.name, labels, [{ name: 'api', port: o.port }]),
    service(
      `${o.name}-api-published`,
      labels,
      ctx.endpoints.publishedPorts(o.type),
      ctx.endpoints.apiAddresses(),
    ),
  ];
}

/**
 * An OpenStack service from its declaration: config, db-init, db-sync, registration and the
 * API, in that order of dependencies.
 */
export function openstackService<const N extends string, const F extends string>(
  d: OpenStackDeclaration<N, F>,
): ServiceDefinition {
  const uwsgiFile = `${d.name}-uwsgi.ini` as const;
  const dbSecret = `${d.name}_database_password` as DatabaseSecret<N>;
  const ksSecret = `${d.name}_keystone_password` as KeystoneSecret<N>;
  const needs = [...new Set([...SHARED_NEEDS, ...(d.needs ?? [])])];
  return defineService<DatabaseSecret<N> | KeystoneSecret<N>, F | typeof uwsgiFile>({
    name: d.name,
    description: d.description,
    kind: 'openstack',
    enabledByDefault: d.enabledByDefault ?? true,
    secrets: [dbSecret, ksSecret, ...((d.secrets ?? []) as (typeof dbSecret)[])],
    images: [{ name: d.image, parent: 'openstack-base' }],
    configFiles: [d.config.file, uwsgiFile],
    needs,
    provides: { [d.identity.type]: { unit: `${d.name}-api` } },
    api: d.identity,
    ...(d.example ? { example: d.example } : {}),
    render(ctx) {
      const label = (c: string) => componentLabels(d.name, c);
      const section = d.database.section ?? 'database';
      const conf = mergeIni(
        sharedSections(`/var/lib/${d.name}/tmp`),
        {
          [section]: { connection: databaseUrl(ctx, d.name, ctx.secrets[dbSecret], d.name), max_retries: -1 },
        },
        authtokenSection(ctx, d.name, ctx.secrets[ksSecret]),
        d.config.defaults?.(ctx) ?? {},
        ctx.overrides(d.config.file),
      );
      const uwsgi = mergeIni(uwsgiIni(d.name, d.api.wsgi, d.api.uwsgi), ctx.overrides(uwsgiFile));
      const dest = (file: string) => `${d.config.dest.slice(0, d.config.dest.lastIndexOf('/'))}/${file}`;
      const files = configBundle([
        {
          key: d.config.file,
          dest: d.config.dest,
          owner: d.user,
          mode: '0640',
          content: renderIni(d.config.file, conf),
        },
        {
          key: uwsgiFile,
          dest: dest(uwsgiFile),
          owner: d.user,
          mode: '0640',
          content: renderIni(uwsgiFile, uwsgi),
        },
      ]);
      const dbUnit = `${d.name}-db`;
      const units: Unit[] = [
        {
          name: `${d.name}-config`,
          service: d.name,
          description: `${d.config.file}, the uWSGI ini, and the passwords of its database and Keystone user`,
          dependsOn: [],
          objects: [
            secret(`${d.name}-config`, label('config'), files),
            databaseSecret(
              ctx,
              {
                name: d.name,
                user: d.user,
                password: ctx.secrets[dbSecret],
                section,
                file: d.config.file,
                dest: d.config.dest,
              },
              label('config'),
            ),
            secret(`${d.name}-keystone`, label('config'), { [SERVICE_PASSWORD_KEY]: ctx.secrets[ksSecret] }),
          ],
        },
        {
          name: dbUnit,
          service: d.name,
          description: `create the ${d.name} database and its user`,
          dependsOn: [ctx.provider('database'), `${d.name}-config`],
          objects: [databaseInitJob(ctx, d.name)],
        },
        {
          name: `${d.name}-db-sync`,
          service: d.name,
          description: `${d.database.sync.join(' ')}: create or upgrade the schema`,
          dependsOn: [dbUnit],
          migrates: [d.name],
          objects: [
            databaseSyncJob(ctx, { name: d.name, image: d.image, user: d.user, command: d.database.sync }),
          ],
        },
        {
          name: `${d.name}-register`,
          service: d.name,
          description: `Keystone user ${d.name}, service ${d.identity.type} and its endpoints`,
          dependsOn: [ctx.provider('identity'), `${d.name}-config`],
          objects: [
            registrationJob(ctx, { name: d.name, type: d.identity.type, description: d.description }),
          ],
        },
        {
          name: `${d.name}-api`,
          service: d.name,
          description: `the ${d.identity.type} API under uWSGI`,
          dependsOn: [
            `${d.name}-db-sync`,
            `${d.name}-register`,
            ...needs.filter((n) => n !== 'database' && n !== 'identity').map((n) => ctx.provider(n)),
          ],
          objects: apiObjects(ctx, {
            name: d.name,
            image: d.image,
            user: d.user,
            type: d.identity.type,
            port: d.identity.port,
            command: ['uwsgi_python3', '--ini', dest(uwsgiFile)],
            ready: d.api.ready,
            claims: d.api.claims ?? [],
          }),
        },
      ];
      return [...units, ...(d.more?.(ctx, conf) ?? [])];
    },
  });
}

/** The port of a host:port address. */
function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** transport_url of the cloud's RabbitMQ: every OpenStack service connects as the one user. */
export function transportUrl(ctx: RenderContext, password: string): string {
  return `rabbit://${RABBITMQ_USER}:${encodeURIComponent(password)}@${ctx.endpoints.address('messaging')}/`;
}

/** A service user's credentials for calling another API (Nova's [placement], [neutron]...). */
export function serviceAuth(ctx: RenderContext, user: string, password: string) {
  return {
    auth_type: 'password',
    auth_url: ctx.endpoints.url('identity', 'internal'),
    username: user,
    password,
    project_name: 'service',
    user_domain_name: 'Default',
    project_domain_name: 'Default',
    region_name: ctx.spec.region,
    valid_interfaces: 'internal',
  };
}

export interface ProcessOptions {
  /** The service; the Deployment is named <name>-<component>. */
  readonly name: string;
  readonly component: string;
  readonly image: string;
  readonly user?: string;
  readonly command: readonly string[];
  /** The Secret with its config files (default <name>-config). */
  readonly config?: string;
  /** Ports published for clients outside the cloud, on the public bind address. */
  readonly publish?: readonly ServicePort[];
  /** A Service of that name in front of it, on these ports. */
  readonly service?: { readonly name: string; readonly port: number };
  readonly readinessProbe?: V1Container['readinessProbe'];
  /** A uWSGI server (its ini from uwsgiIni) on this port, which the pod's listener owns. */
  readonly uwsgiPort?: number;
  /**
   * Takes its work from RabbitMQ queues only (no port): a new one starts beside the old one, is
   * ready once connected to RabbitMQ (its queues declared: readinessConnected) and has kept
   * running for WORKER_ROLL.settleSeconds; the old one then has the time oslo.service takes to
   * finish the calls it took. Calls not yet taken wait in the queue the two share.
   */
  readonly queueWorker?: boolean;
}

/**
 * How a queue worker rolls: the new one must still run after `settleSeconds` (a config it
 * cannot read ends it at once), and the old one then has `graceSeconds` to finish the calls it
 * took: oslo.service's graceful_shutdown_timeout (60 s), and a little more.
 */
const WORKER_ROLL = { settleSeconds: 5, graceSeconds: 70 } as const;

/**
 * A long-running process of a service that is not its API: a conductor, a scheduler, a proxy.
 * The same start protocol and config as the API, one Deployment each, as kolla and
 * openstack-helm run them.
 */
export function processObjects(ctx: RenderContext, o: ProcessOptions): KubeObject[] {
  const labels = componentLabels(o.name, o.component);
  const { volumes, volumeMounts } = podMounts([
    secretMount('config', o.config ?? `${o.name}-config`, MOUNT.config),
  ]);
  const server = startContainer(`${o.name}-${o.component}`, ctx.image(o.image), o.command, {
    ...(o.user ? { user: o.user } : {}),
    ...(o.publish
      ? {
          ports: o.publish.map((p) => ({
            name: p.name,
            containerPort: p.targetPort ?? p.port,
            protocol: 'TCP',
          })),
        }
      : {}),
    volumeMounts,
    ...(o.readinessProbe
      ? { readinessProbe: o.readinessProbe }
      : o.queueWorker
        ? { readinessProbe: readinessConnected(portOf(ctx.endpoints.address('messaging'))) }
        : {}),
    ...(o.uwsgiPort === undefined ? {} : { lifecycle: LEAVE_ENDPOINTS_FIRST }),
  });
  const pod = o.uwsgiPort === undefined ? undefined : uwsgiPod(ctx, o.uwsgiPort, server);
  // A uWSGI server rolls (it runs twice for a while), and so does a queue worker; other
  // processes (a proxy holding its clients' connections) stop before they start again.
  const rollout: Rollout = pod
    ? { type: 'rolling', ready: pod.ready }
    : o.queueWorker
      ? { type: 'rolling', ready: { settledSeconds: WORKER_ROLL.settleSeconds } }
      : { type: 'recreate' };
  const d: Deployment = deployment(
    `${o.name}-${o.component}`,
    labels,
    {
      volumes,
      containers: pod?.containers ?? [server],
      ...(o.queueWorker ? { terminationGracePeriodSeconds: WORKER_ROLL.graceSeconds } : {}),
    },
    rollout,
  );
  return [
    d,
    ...(o.service ? [service(o.service.name, labels, [{ name: o.component, port: o.service.port }])] : []),
    ...(o.publish
      ? [service(`${o.name}-${o.component}-published`, labels, o.publish, [ctx.endpoints.bindAddress()])]
      : []),
  ];
}
