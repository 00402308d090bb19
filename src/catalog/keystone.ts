import { mergeIni, renderIni } from '../config/ini.js';
import { componentLabels, job, persistentVolumeClaim, secret, startContainer } from '../model/objects.js';
import {
  ADMIN_PASSWORD_KEY,
  ADMIN_SECRET,
  apiObjects,
  databaseInitJob,
  databaseSecret,
  databaseSyncJob,
  databaseUrl,
  MOUNT,
  sharedSections,
  uwsgiIni,
} from './_factory.js';
import { configBundle, type Mount, podMounts } from './_pod.js';
import { defineService } from './types.js';

/**
 * Keystone is the one OpenStack service that cannot register itself through Keystone:
 * `keystone-manage bootstrap` makes the admin and the identity endpoints instead of the
 * factory's registration Job, and it keeps Fernet and credential keys on volumes. The rest
 * (database, schema sync, config sections, the API under uWSGI) are the factory's parts.
 */

const PORT = 5000;

const keyVolumes: Mount[] = [
  { name: 'fernet-keys', source: { claim: 'keystone-fernet-keys' }, path: '/etc/keystone/fernet-keys' },
  {
    name: 'credential-keys',
    source: { claim: 'keystone-credential-keys' },
    path: '/etc/keystone/credential-keys',
  },
];
const adminMount: Mount = { name: 'admin', source: { secret: ADMIN_SECRET }, path: MOUNT.admin };

export const keystone = defineService({
  name: 'keystone',
  description: 'Keystone, the Identity service: users, projects, tokens and the service catalog',
  kind: 'openstack',
  enabledByDefault: true,
  secrets: ['keystone_admin_password', 'keystone_database_password'],
  images: [{ name: 'keystone', parent: 'openstack-base' }],
  configFiles: ['keystone.conf', 'keystone-uwsgi.ini'],
  needs: ['database', 'cache'],
  provides: { identity: { unit: 'keystone-api' } },
  api: { type: 'identity', port: PORT, path: '/v3' },
  example: 'config:\n  keystone.conf:\n    DEFAULT:\n      debug: true',
  render(ctx) {
    const label = (component: string) => componentLabels('keystone', component);
    const password = ctx.secrets.keystone_database_password;
    const conf = mergeIni(
      sharedSections('/var/lib/keystone/tmp'),
      {
        database: { connection: databaseUrl(ctx, 'keystone', password, 'keystone'), max_retries: -1 },
        cache: {
          enabled: true,
          backend: 'oslo_cache.memcache_pool',
          memcache_servers: ctx.endpoints.address('cache'),
        },
        token: { provider: 'fernet' },
        fernet_tokens: { key_repository: '/etc/keystone/fernet-keys/', max_active_keys: 3 },
        credential: { key_repository: '/etc/keystone/credential-keys/' },
      },
      ctx.overrides('keystone.conf'),
    );
    // Debian's packaged uWSGI ini, minus what cannot work in a container (the AppArmor plugin,
    // a log file), sized for a small host.
    const uwsgi = mergeIni(
      uwsgiIni('keystone', '/usr/bin/keystone-wsgi-public', {
        // Token issue is CPU-bound (password hashing): processes, not threads, run it in parallel.
        processes: 3,
        chdir: '/var/lib/keystone',
        'paste-logger': true,
      }),
      ctx.overrides('keystone-uwsgi.ini'),
    );
    const file = (key: string, dest: string, content: string) => ({
      key,
      dest,
      owner: 'keystone',
      mode: '0640',
      content,
    });
    const withKeys = podMounts(keyVolumes);
    const forBootstrap = podMounts([
      { name: 'config', source: { secret: 'keystone-db' }, path: MOUNT.config },
      adminMount,
      ...keyVolumes,
    ]);
    const urls = {
      public: ctx.endpoints.url('identity', 'public'),
      internal: ctx.endpoints.url('identity', 'internal'),
      admin: ctx.endpoints.url('identity', 'admin'),
    };
    return [
      {
        name: 'keystone-config',
        service: 'keystone',
        description: 'keystone.conf, the uWSGI ini, the database password and the admin credential',
        dependsOn: [],
        objects: [
          secret(
            'keystone-config',
            label('config'),
            configBundle([
              file('keystone.conf', '/etc/keystone/keystone.conf', renderIni('keystone.conf', conf)),
              file(
                'keystone-uwsgi.ini',
                '/etc/keystone/keystone-uwsgi.ini',
                renderIni('keystone-uwsgi.ini', uwsgi),
              ),
            ]),
          ),
          databaseSecret(
            ctx,
            {
              name: 'keystone',
              user: 'keystone',
              password,
              section: 'database',
              file: 'keystone.conf',
              dest: '/etc/keystone/keystone.conf',
            },
            label('config'),
          ),
          secret(ADMIN_SECRET, label('config'), {
            [ADMIN_PASSWORD_KEY]: ctx.secrets.keystone_admin_password,
          }),
        ],
      },
      {
        name: 'keystone-db',
        service: 'keystone',
        description: 'create the keystone database and its user',
        dependsOn: [ctx.provider('database'), 'keystone-config'],
        objects: [databaseInitJob(ctx, 'keystone')],
      },
      {
        name: 'keystone-db-sync',
        service: 'keystone',
        description: 'keystone-manage db_sync: create or upgrade the schema',
        dependsOn: ['keystone-db'],
        objects: [
          databaseSyncJob(ctx, {
            name: 'keystone',
            image: 'keystone',
            user: 'keystone',
            command: ['keystone-manage', 'db_sync'],
          }),
        ],
      },
      {
        name: 'keystone-keys',
        service: 'keystone',
        description: 'fernet and credential key repositories, kept on volumes',
        dependsOn: [],
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
                ctx.image('keystone'),
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
            volumes: forBootstrap.volumes,
            containers: [
              startContainer(
                'bootstrap',
                ctx.image('keystone'),
                [
                  'sh',
                  '-ec',
                  // The password travels in the environment (keystone-manage reads OS_BOOTSTRAP_PASSWORD),
                  // never on a command line where `ps` would show it.
                  `OS_BOOTSTRAP_PASSWORD="$(cat ${MOUNT.admin}/${ADMIN_PASSWORD_KEY})" exec keystone-manage bootstrap` +
                    ` --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin` +
                    ` --bootstrap-service-name keystone --bootstrap-region-id '${ctx.spec.region}'` +
                    ` --bootstrap-admin-url ${urls.admin} --bootstrap-internal-url ${urls.internal}` +
                    ` --bootstrap-public-url ${urls.public}`,
                ],
                // As root: the password file is root's alone, and bootstrap writes no files.
                { volumeMounts: forBootstrap.volumeMounts },
              ),
            ],
          }),
        ],
      },
      {
        name: 'keystone-api',
        service: 'keystone',
        description: 'the Identity API under uWSGI',
        dependsOn: ['keystone-db-sync', 'keystone-keys', 'keystone-bootstrap', ctx.provider('cache')],
        objects: apiObjects(ctx, {
          name: 'keystone',
          image: 'keystone',
          user: 'keystone',
          type: 'identity',
          port: PORT,
          command: ['uwsgi_python3', '--ini', '/etc/keystone/keystone-uwsgi.ini'],
          ready: '/v3',
          mounts: keyVolumes,
        }),
      },
    ];
  },
});
