import { mergeIni, renderKeyValue } from '../config/ini.js';
import {
  componentLabels,
  deployment,
  persistentVolumeClaim,
  secret,
  service,
  startContainer,
} from '../model/objects.js';
import { configBundle, configMount, podMounts, readinessTcp } from './_pod.js';
import { defineService } from './types.js';

const RABBITMQ_HOST = 'rabbitmq';
/** The one RabbitMQ user every OpenStack service connects as (transport_url). */
export const RABBITMQ_USER = 'openstack';

export const rabbitmq = defineService({
  name: 'rabbitmq',
  description: 'RabbitMQ, the message bus between OpenStack services',
  kind: 'infrastructure',
  enabledByDefault: true,
  secrets: ['rabbitmq_password'],
  needs: [],
  provides: { messaging: { unit: 'rabbitmq', address: 'rabbitmq:5672' } },
  images: [{ name: 'rabbitmq', parent: 'base' }],
  configFiles: ['rabbitmq.conf'],
  // Rendered by renderKeyValue: its sections are key prefixes, and '' holds keys without one.
  keyValueFiles: ['rabbitmq.conf'],
  render(ctx) {
    const labels = componentLabels('rabbitmq', 'server');
    const conf = mergeIni(
      {
        '': {
          default_user: RABBITMQ_USER,
          default_pass: ctx.secrets.rabbitmq_password,
          default_vhost: '/',
          loopback_users: 'none',
          'listeners.tcp.default': 5672,
          'log.console': 'true',
          'log.file': 'false',
          'vm_memory_high_watermark.relative': 0.2,
        },
      },
      ctx.overrides('rabbitmq.conf'),
    );
    const { volumes, volumeMounts } = podMounts([
      configMount('rabbitmq-config'),
      { name: 'data', source: { claim: 'rabbitmq-data' }, path: '/var/lib/rabbitmq' },
    ]);
    return [
      {
        name: 'rabbitmq',
        service: 'rabbitmq',
        description: 'RabbitMQ broker with its data volume',
        dependsOn: [],
        objects: [
          secret(
            'rabbitmq-config',
            labels,
            configBundle([
              {
                key: 'rabbitmq.conf',
                dest: '/etc/rabbitmq/rabbitmq.conf',
                owner: 'rabbitmq',
                mode: '0600',
                content: renderKeyValue('rabbitmq.conf', conf),
              },
            ]),
          ),
          persistentVolumeClaim('rabbitmq-data', labels, '2Gi'),
          deployment('rabbitmq', labels, {
            // RabbitMQ names its node and its data after the host name: it must not change between restarts.
            hostname: RABBITMQ_HOST,
            volumes,
            containers: [
              startContainer('rabbitmq', ctx.image('rabbitmq'), ['podstack-rabbitmq-start'], {
                env: [{ name: 'RABBITMQ_NODENAME', value: `rabbit@${RABBITMQ_HOST}` }],
                ports: [{ name: 'amqp', containerPort: 5672 }],
                volumeMounts,
                readinessProbe: readinessTcp(5672),
              }),
            ],
          }),
          service(RABBITMQ_HOST, labels, [{ name: 'amqp', port: 5672 }]),
        ],
      },
    ];
  },
});
