import { z } from 'zod';
import { type IniOverrides, mergeIni, renderIni } from '../config/ini.js';
import {
  componentLabels,
  deployment,
  job,
  persistentVolumeClaim,
  secret,
  startContainer,
} from '../model/objects.js';
import type { ServiceSettings } from '../spec/schema.js';
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
import { configBundle, configMount, type Mount, podMounts } from './_pod.js';
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

const UNIT_SECONDS = { m: 60, h: 3600, d: 86_400 } as const;

/** "72h" -> 259200; "off" -> 0 (never). */
export function intervalSeconds(text: string): number {
  if (text === 'off') return 0;
  const m = /^([1-9]\d*)([mhd])$/.exec(text);
  if (!m) throw new Error(`not an interval: ${text}`);
  return Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
}

/**
 * A rotation interval. At least an hour: Keystone reads every Fernet key on every token
 * operation, and the number it must keep grows as the interval shrinks (fernetKeysNeeded).
 */
const interval = z.preprocess(
  // A bare number (72) is a YAML integer: say what is missing, not that it is not a string.
  (v) => (typeof v === 'number' ? String(v) : v),
  z
    .string()
    .regex(/^(off|[1-9]\d*[mhd])$/, {
      message: 'must be a number with a unit (m, h or d), such as 72h or 3d, or off',
      abort: true,
    })
    .refine((s) => s === 'off' || intervalSeconds(s) >= 3600, 'must be at least 1h (or off)'),
);

const keyRotationSchema = z
  .strictObject({
    fernet: interval
      .default('3d')
      .describe("How often the Fernet token keys rotate (default 3d, as kolla-ansible's), or off"),
    credential: interval
      .default('30d')
      .describe(
        'How often the credential encryption keys rotate (default 30d; credentials are re-encrypted), or off',
      ),
  })
  .prefault({})
  .describe(
    "Keystone's key rotation, done inside the cloud by the keystone-key-rotation container; `podstack rotate-keys` rotates at once",
  );
type KeyRotation = z.infer<typeof keyRotationSchema>;

/** Keystone's own defaults for the [token] options the key count depends on. */
const TOKEN_DEFAULTS = { expiration: 3600, allow_expired_window: 172_800 } as const;

/**
 * How many Fernet keys Keystone must keep so that no token it still accepts loses its key:
 * every token may live `expiration + allow_expired_window` seconds, a key signs tokens for one
 * interval after it becomes primary, and the staged key and the primary take two places
 * (Keystone's Fernet FAQ). Off: Keystone's default of 3.
 */
export function fernetKeysNeeded(rotation: KeyRotation, token: IniOverrides[string] | undefined): number {
  const every = intervalSeconds(rotation.fernet);
  if (every === 0) return 3;
  const seconds = (option: keyof typeof TOKEN_DEFAULTS) => {
    const v = Number(token?.[option] ?? TOKEN_DEFAULTS[option]);
    return Number.isFinite(v) && v > 0 ? v : TOKEN_DEFAULTS[option];
  };
  return Math.ceil((seconds('expiration') + seconds('allow_expired_window')) / every) + 2;
}

/** The unit, and its container, that `podstack rotate-keys` runs a rotation in. */
export const ROTATION_UNIT = 'keystone-key-rotation';
export const ROTATION_CONTAINER = 'rotate';

/**
 * The key rotation: one long-running container (kolla runs cron in a keystone_fernet
 * container), the same on both engines, that rotates each kind of key when its key 0 is older
 * than the interval (images/keystone/podstack-rotate-keys). No CronJob: a cron schedule cannot
 * say "every 72 hours", Podman has no cron, and a schedule kept in the keys' own age survives
 * restarts and rotations by hand. It mounts the key claims, so on Kubernetes it runs on the node
 * of the API pods, which mount them too (a ReadWriteOnce claim is one node's).
 */
function rotationDeployment(image: string, rotation: KeyRotation) {
  const labels = componentLabels('keystone', 'key-rotation');
  const { volumes, volumeMounts } = podMounts([configMount(ROTATION_UNIT), ...keyVolumes]);
  return deployment(ROTATION_UNIT, labels, {
    volumes,
    // The loop ends on SIGTERM between rounds; a rotation under way finishes within seconds.
    terminationGracePeriodSeconds: 30,
    affinity: {
      podAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          {
            labelSelector: { matchLabels: componentLabels('keystone', 'api') },
            topologyKey: 'kubernetes.io/hostname',
          },
        ],
      },
    },
    containers: [
      startContainer(ROTATION_CONTAINER, image, ['podstack-rotate-keys', 'loop'], {
        user: 'keystone',
        env: [
          { name: 'PODSTACK_FERNET_EVERY', value: String(intervalSeconds(rotation.fernet)) },
          { name: 'PODSTACK_CREDENTIAL_EVERY', value: String(intervalSeconds(rotation.credential)) },
        ],
        volumeMounts,
      }),
    ],
  });
}

const keystoneConf = (settings: ServiceSettings): IniOverrides =>
  (settings.config['keystone.conf'] ?? {}) as IniOverrides;

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
  fields: { keyRotation: keyRotationSchema },
  check(settings) {
    const rotation = settings.keyRotation as KeyRotation;
    const conf = keystoneConf(settings);
    const set = conf.fernet_tokens?.max_active_keys;
    const needed = fernetKeysNeeded(rotation, conf.token);
    if (set === undefined || Number(set) >= needed) return [];
    return [
      {
        path: ['config', 'keystone.conf', 'fernet_tokens', 'max_active_keys'],
        message:
          `with keys rotated every ${rotation.fernet}, Keystone must keep ${needed} ` +
          '(token expiration plus allow_expired_window, divided by the interval, plus 2): tokens would be ' +
          'refused before they expire. Remove it (podstack sets it from keyRotation.fernet) or raise it',
      },
    ];
  },
  render(ctx) {
    const label = (component: string) => componentLabels('keystone', component);
    const password = ctx.secrets.keystone_database_password;
    const settings = ctx.spec.services.keystone!;
    const rotation = settings.keyRotation as KeyRotation;
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
        fernet_tokens: {
          key_repository: '/etc/keystone/fernet-keys/',
          max_active_keys: fernetKeysNeeded(rotation, keystoneConf(settings).token),
        },
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
        migrates: ['keystone'],
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
      {
        name: ROTATION_UNIT,
        service: 'keystone',
        description: 'rotates the Fernet and credential keys when they are due (keyRotation)',
        // credential_migrate needs the schema, and a rotation is only worth anything to a running API.
        dependsOn: ['keystone-api'],
        objects: [
          // keystone-manage needs only these sections: a keystone.conf of its own, so a change
          // elsewhere in keystone.conf (a log level) leaves the rotation running.
          secret(
            ROTATION_UNIT,
            label('key-rotation'),
            configBundle([
              file(
                'keystone.conf',
                '/etc/keystone/keystone.conf',
                renderIni('keystone.conf', {
                  DEFAULT: { use_stderr: true, log_file: '' },
                  // Not the API's endless retries: a rotation with the database away fails, and
                  // the loop tries again next round.
                  database: { ...conf.database, max_retries: 3 },
                  fernet_tokens: conf.fernet_tokens ?? {},
                  credential: conf.credential ?? {},
                }),
              ),
            ]),
          ),
          rotationDeployment(ctx.image('keystone'), rotation),
        ],
      },
    ];
  },
});
