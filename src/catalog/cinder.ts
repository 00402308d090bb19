import { cephxKey, renderKeyring, uuidFrom } from '../config/ceph.js';
import { renderIni } from '../config/ini.js';
import { componentLabels, secret } from '../model/objects.js';
import { openstackService, processObjects, serviceAuth, transportUrl } from './_factory.js';
import { configBundle } from './_pod.js';
import { cephClientConf, cephClientsUnit, rbdClient, VOLUMES_POOL } from './ceph.js';

/**
 * Cinder, the Block Storage service, with its volumes in Ceph (the RBD driver): the API under
 * uWSGI, the scheduler, and the volume service, which alone holds Ceph's client.cinder key.
 * Guests reach their volumes through QEMU's own RBD client, with the same key as a libvirt
 * secret on the node: nothing needs the kernel's rbd module.
 */

/** The libvirt secret that holds client.cinder's key on the node, by its UUID (also in cinder.conf). */
export function rbdSecretUuid(secrets: Readonly<Record<string, string>>): string {
  return uuidFrom(secrets.ceph_cinder_key!, 'libvirt secret');
}

const VOLUME_CONFIG = 'cinder-volume-config';
/** The name every cinder-volume registers as (cinder/cmd/volume.py: backend_host@backend): one service that outlives its pods. */
const BACKEND_HOST = 'podstack';

export const cinder = openstackService({
  name: 'cinder',
  description: 'Cinder, the Block Storage service: volumes for servers, in Ceph',
  image: 'cinder',
  user: 'cinder',
  enabledByDefault: false,
  needs: ['messaging', 'image', 'ceph'],
  secrets: ['rabbitmq_password', 'ceph_fsid', 'ceph_admin_key', 'ceph_cinder_key'],
  database: { sync: ['cinder-manage', 'db', 'sync'] },
  identity: { type: 'volumev3', port: 8776, path: '/v3/%(project_id)s' },
  config: {
    file: 'cinder.conf',
    dest: '/etc/cinder/cinder.conf',
    defaults: (ctx) => {
      const s = ctx.secrets as Record<string, string>;
      return {
        DEFAULT: {
          // Service names that outlive pods (a pod's host name changes on Kubernetes): one
          // scheduler and one volume service (podstack@ceph), never a row left "down" per pod.
          host: BACKEND_HOST,
          transport_url: transportUrl(ctx, s.rabbitmq_password!),
          auth_strategy: 'keystone',
          state_path: '/var/lib/cinder',
          osapi_volume_workers: 1,
          enabled_backends: 'ceph',
          default_volume_type: '__DEFAULT__',
          // Else the first image endpoint of the catalog, which may be the public one.
          glance_api_servers: ctx.endpoints.url('image', 'internal'),
          image_conversion_dir: '/var/lib/cinder/conversion',
        },
        ceph: {
          volume_driver: 'cinder.volume.drivers.rbd.RBDDriver',
          volume_backend_name: 'ceph',
          rbd_pool: VOLUMES_POOL,
          rbd_ceph_conf: '/etc/ceph/ceph.conf',
          rbd_user: 'cinder',
          rbd_secret_uuid: rbdSecretUuid(s),
          rbd_flatten_volume_from_snapshot: false,
          rbd_max_clone_depth: 5,
          rbd_store_chunk_size: 4,
          rados_connect_timeout: -1,
          report_discard_supported: true,
        },
        nova: serviceAuth(ctx, 'cinder', s.cinder_keystone_password!),
        oslo_messaging_rabbit: { heartbeat_in_pthread: false },
      };
    },
  },
  api: { wsgi: '/usr/bin/cinder-wsgi', ready: '/healthcheck', uwsgi: { chdir: '/var/lib/cinder' } },
  example: 'config:\n  cinder.conf:\n    DEFAULT:\n      debug: true',
  more(ctx, conf) {
    const s = ctx.secrets as Record<string, string>;
    const key = cephxKey(s.ceph_cinder_key!);
    const file = (k: string, dest: string, content: string) => ({
      key: k,
      dest,
      owner: 'cinder',
      mode: '0640',
      content,
    });
    return [
      cephClientsUnit(ctx, {
        service: 'cinder',
        clients: [rbdClient('client.cinder', key, [VOLUMES_POOL])],
      }),
      {
        name: 'cinder-scheduler',
        service: 'cinder',
        description: 'cinder-scheduler: which backend a new volume goes to',
        dependsOn: ['cinder-db-sync', ctx.provider('messaging')],
        objects: processObjects(ctx, {
          name: 'cinder',
          component: 'scheduler',
          image: 'cinder',
          user: 'cinder',
          command: ['cinder-scheduler'],
          queueWorker: true,
        }),
      },
      {
        name: 'cinder-volume',
        service: 'cinder',
        description: "cinder-volume with Ceph's RBD driver, as client.cinder",
        dependsOn: ['cinder-db-sync', 'cinder-ceph-clients', ctx.provider('messaging')],
        objects: [
          secret(
            VOLUME_CONFIG,
            componentLabels('cinder', 'config'),
            configBundle([
              file('cinder.conf', '/etc/cinder/cinder.conf', renderIni('cinder.conf', conf)),
              file('ceph.conf', '/etc/ceph/ceph.conf', cephClientConf(ctx)),
              file(
                'ceph.client.cinder.keyring',
                '/etc/ceph/ceph.client.cinder.keyring',
                renderKeyring([{ entity: 'client.cinder', key, caps: {} }]),
              ),
            ]),
          ),
          ...processObjects(ctx, {
            name: 'cinder',
            component: 'volume',
            image: 'cinder',
            user: 'cinder',
            command: ['cinder-volume'],
            config: VOLUME_CONFIG,
            queueWorker: true,
          }),
        ],
      },
    ];
  },
});
