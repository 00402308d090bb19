import { mergeIni, renderIni } from '../config/ini.js';
import {
  componentLabels,
  deployment,
  job,
  persistentVolumeClaim,
  secret,
  service,
  startContainer,
} from '../plan/objects.js';
import { DATABASE_PASSWORD_KEY, databaseJob, databaseUrl } from './_openstack.js';
import { configBundle, configMount, type Mount, podMounts, publishedPort } from './_pod.js';
import { MEMCACHED_SERVERS } from './memcached.js';
import type { RenderContext, ServiceDefinition } from './types.js';

export const KEYSTONE_HOST = 'keystone';
export const KEYSTONE_PORT = 5000;
const ADMIN_PASSWORD_KEY = 'admin-password';

/** Public (clients outside the cloud) and internal (service to service) identity URLs. */
export function identityUrls(ctx: RenderContext): { public: string; internal: string } {
  const port = ctx.spec.services.keystone?.port ?? KEYSTONE_PORT;
  const host = ctx.spec.endpoints.address.includes(':')
    ? `[${ctx.spec.endpoints.address}]`
    : ctx.spec.endpoints.address;
  return { public: `http://${host}:${port}/v3`, internal: `http://${KEYSTONE_HOST}:${KEYSTONE_PORT}/v3` };
}

const keyVolumes: Mount[] = [
  { name: 'fernet-keys', source: { claim: 'keystone-fernet-keys' }, path: '/etc/keystone/fernet-keys' },
  {
    name: 'credential-keys',
    source: { claim: 'keystone-credential-keys' },
    path: '/etc/keystone/credential-keys',
  },
];

function configFiles(ctx: RenderContext) {
  const conf = mergeIni(
    {
      DEFAULT: { debug: false, use_stderr: true, log_file: '' },
      database: {
        connection: databaseUrl('keystone', ctx.secrets.keystone_database_password!, 'keystone'),
        max_retries: -1,
      },
      cache: { enabled: true, backend: 'oslo_cache.memcache_pool', memcache_servers: MEMCACHED_SERVERS },
      token: { provider: 'fernet' },
      fernet_tokens: { key_repository: '/etc/keystone/fernet-keys/', max_active_keys: 3 },
      credential: { key_repository: '/etc/keystone/credential-keys/' },
    },
    ctx.overrides('keystone.conf'),
  );
  // Debian runs Keystone under uWSGI; this is its packaged ini minus what cannot work in a
  // container (the AppArmor plugin, a log file), sized for a small host.
  const uwsgi = mergeIni(
    {
      uwsgi: {
        'http-socket': `0.0.0.0:${KEYSTONE_PORT}`,
        'wsgi-file': '/usr/bin/keystone-wsgi-public',
        name: 'keystone-api',
        master: true,
        processes: 2,
        threads: 4,
        'enable-threads': true,
        'lazy-apps': true,
        'thunder-lock': true,
        'buffer-size': 65535,
        'die-on-term': true,
        'no-orphans': true,
        'add-header': 'Connection: close',
        chdir: '/var/lib/keystone',
        'paste-logger': true,
      },
    },
    ctx.overrides('keystone-uwsgi.ini'),
  );
  return configBundle(
    [
      {
        key: 'keystone.conf',
        dest: '/etc/keystone/keystone.conf',
        owner: 'keystone',
        mode: '0640',
        content: renderIni('keystone.conf', conf),
      },
      {
        key: 'keystone-uwsgi.ini',
        dest: '/etc/keystone/keystone-uwsgi.ini',
        owner: 'keystone',
        mode: '0640',
        content: renderIni('keystone-uwsgi.ini', uwsgi),
      },
    ],
    {
      [DATABASE_PASSWORD_KEY]: ctx.secrets.keystone_database_password!,
      [ADMIN_PASSWORD_KEY]: ctx.secrets.keystone_admin_password!,
    },
  );
}

export const keystone: ServiceDefinition = {
  name: 'keystone',
  description: 'Keystone, the Identity service: users, projects, tokens and the service catalog',
  kind: 'openstack',
  enabledByDefault: true,
  requires: ['mariadb', 'memcached'],
  secrets: ['keystone_admin_password', 'keystone_database_password'],
  images: [{ name: 'keystone', parent: 'openstack-base' }],
  configFiles: ['keystone.conf', 'keystone-uwsgi.ini'],
  defaultPort: KEYSTONE_PORT,
  render(ctx) {
    const image = ctx.image('keystone');
    const label = (component: string) => componentLabels('keystone', component);
    const urls = identityUrls(ctx);
    const withConfig = podMounts([configMount('keystone-config')]);
    const withKeys = podMounts([configMount('keystone-config'), ...keyVolumes]);
    const port = ctx.spec.services.keystone?.port ?? KEYSTONE_PORT;
    return [
      {
        name: 'keystone-config',
        service: 'keystone',
        description: 'keystone.conf, the uWSGI ini and the passwords they need',
        dependsOn: [],
        objects: [secret('keystone-config', label('config'), configFiles(ctx))],
      },
      {
        name: 'keystone-db',
        service: 'keystone',
        description: 'create the keystone database and its user',
        dependsOn: ['mariadb', 'keystone-config'],
        objects: [databaseJob(ctx, 'keystone-db', label('db-init'), 'keystone')],
      },
      {
        name: 'keystone-db-sync',
        service: 'keystone',
        description: 'keystone-manage db_sync: create or upgrade the schema',
        dependsOn: ['keystone-db'],
        objects: [
          job('keystone-db-sync', label('db-sync'), {
            volumes: withConfig.volumes,
            containers: [
              startContainer('db-sync', image, ['keystone-manage', 'db_sync'], {
                user: 'keystone',
                volumeMounts: withConfig.volumeMounts,
              }),
            ],
          }),
        ],
      },
      {
        name: 'keystone-keys',
        service: 'keystone',
        description: 'fernet and credential key repositories, kept on volumes',
        dependsOn: ['keystone-config'],
        objects: [
          persistentVolumeClaim('keystone-fernet-keys', label('keys'), '16Mi'),
          persistentVolumeClaim('keystone-credential-keys', label('keys'), '16Mi'),
          job('keystone-keys', label('keys'), {
            volumes: withKeys.volumes,
            containers: [
              // Both setups leave an existing key repository alone, so re-running is safe.
              // keystone-manage writes the keys as the keystone user: a fresh volume (a hostPath or
              // local PV, unlike a Podman volume) is root's until it is handed over.
              startContainer(
                'keys',
                image,
                [
                  'sh',
                  '-ec',
                  'install -d -o keystone -g keystone -m 0700 /etc/keystone/fernet-keys /etc/keystone/credential-keys\n' +
                    'keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone\n' +
                    'keystone-manage credential_setup --keystone-user keystone --keystone-group keystone',
                ],
                { volumeMounts: withKeys.volumeMounts },
              ),
            ],
          }),
        ],
      },
      {
        name: 'keystone-bootstrap',
        service: 'keystone',
        description: 'admin user, project and role; region and identity endpoints',
        // bootstrap refuses to run without the Fernet keys it would sign with.
        dependsOn: ['keystone-db-sync', 'keystone-keys'],
        objects: [
          job('keystone-bootstrap', label('bootstrap'), {
            volumes: withKeys.volumes,
            containers: [
              startContainer(
                'bootstrap',
                image,
                [
                  'sh',
                  '-ec',
                  // The password travels in the environment (keystone-manage reads OS_BOOTSTRAP_PASSWORD),
                  // never on a command line where `ps` would show it.
                  `OS_BOOTSTRAP_PASSWORD="$(cat /etc/podstack/config/${ADMIN_PASSWORD_KEY})" exec keystone-manage bootstrap` +
                    ` --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin` +
                    ` --bootstrap-service-name keystone --bootstrap-region-id '${ctx.spec.region}'` +
                    ` --bootstrap-admin-url ${urls.internal} --bootstrap-internal-url ${urls.internal}` +
                    ` --bootstrap-public-url ${urls.public}`,
                ],
                // As root: the password file is root's alone, and bootstrap writes no files.
                { volumeMounts: withKeys.volumeMounts },
              ),
            ],
          }),
        ],
      },
      {
        name: 'keystone-api',
        service: 'keystone',
        description: 'the Identity API under uWSGI',
        dependsOn: ['keystone-db-sync', 'keystone-keys', 'keystone-bootstrap', 'memcached'],
        objects: [
          deployment('keystone-api', label('api'), {
            volumes: withKeys.volumes,
            containers: [
              startContainer(
                'keystone-api',
                image,
                ['uwsgi_python3', '--ini', '/etc/keystone/keystone-uwsgi.ini'],
                {
                  user: 'keystone',
                  ports: [publishedPort(ctx, 'api', KEYSTONE_PORT, port)],
                  volumeMounts: withKeys.volumeMounts,
                  readinessProbe: {
                    httpGet: { path: '/v3', port: KEYSTONE_PORT },
                    periodSeconds: 2,
                    failureThreshold: 3,
                  },
                },
              ),
            ],
          }),
          service(KEYSTONE_HOST, label('api'), [{ name: 'api', port: KEYSTONE_PORT }]),
        ],
      },
    ];
  },
};
