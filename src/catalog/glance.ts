import { openstackService } from './_factory.js';

/** Glance, the Image service, storing images in files on a claim. */
export const glance = openstackService({
  name: 'glance',
  description: 'Glance, the Image service: disk images for servers',
  image: 'glance',
  user: 'glance',
  database: { sync: ['glance-manage', 'db_sync'] },
  identity: { type: 'image', port: 9292 },
  config: {
    file: 'glance-api.conf',
    dest: '/etc/glance/glance-api.conf',
    defaults: (ctx) => ({
      // Where another Glance worker reaches this one (image import hands work between them).
      DEFAULT: {
        enabled_backends: 'file:file',
        worker_self_reference_url: ctx.endpoints.url('image', 'internal'),
      },
      glance_store: { default_backend: 'file' },
      file: { filesystem_store_datadir: '/var/lib/glance/images/' },
      // Image import's reserved stores (images/glance makes these folders).
      os_glance_staging_store: { filesystem_store_datadir: '/var/lib/glance/staging/' },
      os_glance_tasks_store: { filesystem_store_datadir: '/var/lib/glance/tasks_work_dir/' },
      paste_deploy: { flavor: 'keystone' },
    }),
  },
  api: {
    wsgi: '/usr/bin/glance-wsgi-api',
    ready: '/healthcheck',
    // Uploads of unknown size arrive chunked, and Glance reads them with uwsgi.chunked_read(),
    // which fails on any chunk over this limit (default 1 MB: "unable to receive chunked part").
    // devstack's http-chunked-input and friends belong to uWSGI's HTTP router, not http-socket.
    uwsgi: { 'chunked-input-limit': 16777216, 'socket-timeout': 30, chdir: '/var/lib/glance' },
    claims: [{ name: 'images', path: '/var/lib/glance/images', size: '20Gi' }],
  },
  example: 'config:\n  glance-api.conf:\n    DEFAULT:\n      debug: true',
});
