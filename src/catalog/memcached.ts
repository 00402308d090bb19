import { componentLabels, deployment, service } from '../model/objects.js';
import { readinessTcp } from './_pod.js';
import { defineService } from './types.js';

export const memcached = defineService({
  name: 'memcached',
  description: 'memcached, the cache for tokens and API responses',
  kind: 'infrastructure',
  enabledByDefault: true,
  secrets: [],
  needs: [],
  provides: { cache: { unit: 'memcached', address: 'memcached:11211' } },
  images: [{ name: 'memcached', parent: 'base' }],
  configFiles: [],
  render(ctx) {
    const labels = componentLabels('memcached', 'server');
    return [
      {
        name: 'memcached',
        service: 'memcached',
        description: 'memcached server',
        dependsOn: [],
        objects: [
          deployment('memcached', labels, {
            containers: [
              {
                name: 'memcached',
                image: ctx.image('memcached'),
                imagePullPolicy: 'IfNotPresent',
                command: [
                  'memcached',
                  '-u',
                  'memcache',
                  '-l',
                  '0.0.0.0',
                  '-p',
                  '11211',
                  '-m',
                  '128',
                  '-c',
                  '4096',
                ],
                ports: [{ name: 'memcache', containerPort: 11211 }],
                readinessProbe: readinessTcp(11211),
              },
            ],
          }),
          service('memcached', labels, [{ name: 'memcache', port: 11211 }]),
        ],
      },
    ];
  },
});
