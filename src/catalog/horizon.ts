import { mergeIni, renderIni } from '../config/ini.js';
import { mergeSettings, type PythonSettings, renderSettings } from '../config/python.js';
import { componentLabels, secret } from '../model/objects.js';
import { processObjects, uwsgiIni } from './_factory.js';
import { configBundle, readinessHttp } from './_pod.js';
import { defineService } from './types.js';

/**
 * Horizon, the dashboard: Debian's openstack-dashboard under uWSGI (images/horizon), which also
 * serves the static files compressed at image build time. It keeps no database: sessions live in
 * memcached, so any of its processes (or pods) can serve any request.
 *
 * Its Django process calls the APIs from inside the cloud, so it uses their internal endpoints;
 * only the browser uses public addresses (the dashboard's own, and the noVNC console's, which
 * Nova hands out).
 */

/** uWSGI's port in the container; the published port (services.horizon.ports.dashboard) may differ. */
const PORT = 8080;
const SETTINGS_DEST = '/etc/openstack-dashboard/local_settings.d/_90_podstack.py';
const UWSGI_DEST = '/etc/openstack-dashboard/horizon-uwsgi.ini';
/** Django answers only to the Host names in ALLOWED_HOSTS, so the probe says which it asks. */
const PROBE_HOST = 'localhost';

export const horizon = defineService({
  name: 'horizon',
  description: 'Horizon, the dashboard: the cloud in a browser',
  kind: 'openstack',
  enabledByDefault: true,
  secrets: ['horizon_secret_key'],
  images: [{ name: 'horizon', parent: 'openstack-base' }],
  configFiles: ['local_settings.py', 'horizon-uwsgi.ini'],
  settingsFiles: ['local_settings.py'],
  needs: ['identity', 'cache'],
  provides: {},
  ports: { dashboard: 80 },
  pages: { dashboard: '/' },
  example: 'config:\n  local_settings.py:\n    SESSION_TIMEOUT: 7200',
  render(ctx) {
    const labels = componentLabels('horizon', 'config');
    const { public: publicHost, internal } = ctx.endpoints.addresses;
    const defaults: PythonSettings = {
      DEBUG: false,
      // The names a browser may use for the dashboard. Another name (a DNS name of this host)
      // goes here through services.horizon.config; Django answers anything else 400.
      ALLOWED_HOSTS: [...new Set([publicHost, internal, PROBE_HOST, '127.0.0.1'])],
      // One key for every process and pod, and kept over restarts, so sessions stay valid.
      SECRET_KEY: ctx.secrets.horizon_secret_key,
      CACHES: {
        default: {
          BACKEND: 'django.core.cache.backends.memcached.MemcachedCache',
          LOCATION: ctx.endpoints.address('cache'),
        },
      },
      SESSION_ENGINE: 'django.contrib.sessions.backends.cache',
      OPENSTACK_KEYSTONE_URL: ctx.endpoints.url('identity', 'internal'),
      OPENSTACK_ENDPOINT_TYPE: 'internalURL',
      OPENSTACK_KEYSTONE_DEFAULT_ROLE: 'member',
      DEFAULT_SERVICE_REGIONS: { '*': ctx.spec.region },
      // An instance boots from its image, as `server create --image` does. With Cinder on, Launch
      // Instance offers a new volume one click away; as Horizon's default it would outlive every
      // instance and fill a small pool (and without Cinder there is nothing to offer).
      LAUNCH_INSTANCE_DEFAULTS: { create_volume: false },
      TIME_ZONE: 'UTC',
    };
    const settings = mergeSettings(defaults, ctx.settings('local_settings.py'));
    const uwsgi = mergeIni(
      uwsgiIni('horizon', '/usr/share/openstack-dashboard/wsgi.py', {
        name: 'horizon',
        chdir: '/usr/share/openstack-dashboard',
        'static-map': '/static=/var/lib/openstack-dashboard/static',
      }),
      ctx.overrides('horizon-uwsgi.ini'),
    );
    const file = (key: string, dest: string, content: string) => ({
      key,
      dest,
      owner: 'horizon',
      mode: '0640',
      content,
    });
    return [
      {
        name: 'horizon-config',
        service: 'horizon',
        description: 'the dashboard settings (with its secret key) and its uWSGI ini',
        dependsOn: [],
        objects: [
          secret(
            'horizon-config',
            labels,
            configBundle([
              file('local_settings.py', SETTINGS_DEST, renderSettings('local_settings.py', settings)),
              file('horizon-uwsgi.ini', UWSGI_DEST, renderIni('horizon-uwsgi.ini', uwsgi)),
            ]),
          ),
        ],
      },
      {
        name: 'horizon',
        service: 'horizon',
        description: 'the dashboard under uWSGI, published for browsers',
        dependsOn: ['horizon-config', ctx.provider('identity'), ctx.provider('cache')],
        objects: processObjects(ctx, {
          name: 'horizon',
          component: 'dashboard',
          image: 'horizon',
          user: 'horizon',
          command: ['podstack-horizon'],
          publish: [ctx.endpoints.publicServicePort('dashboard', PORT)],
          readinessProbe: readinessHttp('/auth/login/', PORT, [{ name: 'Host', value: PROBE_HOST }]),
          uwsgiPort: PORT,
        }),
      },
    ];
  },
});
