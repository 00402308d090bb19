import { mergeIni, renderIni } from '../config/ini.js';
import {
  CONFIG_DIR,
  componentLabels,
  configMap,
  deployment,
  persistentVolumeClaim,
  secret,
  service,
  startContainer,
} from '../plan/objects.js';
import { configBundle, podMounts, readinessTcp } from './_pod.js';
import type { ServiceDefinition } from './types.js';

export const MARIADB_HOST = 'mariadb';
export const MARIADB_ROOT_SECRET = 'mariadb-root';
export const MARIADB_ROOT_DIR = '/etc/podstack/mariadb-root';
/** Where bootstrap jobs find the root password (podstack-db-ensure reads it from this file). */
export const MARIADB_ROOT_PASSWORD_FILE = `${MARIADB_ROOT_DIR}/root-password`;

export const mariadb: ServiceDefinition = {
  name: 'mariadb',
  description: 'MariaDB, the SQL database of every OpenStack service',
  kind: 'infrastructure',
  enabledByDefault: true,
  requires: [],
  secrets: ['mariadb_root_password'],
  images: [{ name: 'mariadb', parent: 'base' }],
  configFiles: ['mariadb.cnf'],
  render(ctx) {
    const labels = componentLabels('mariadb', 'server');
    const cnf = mergeIni(
      {
        mysqld: {
          'bind-address': '0.0.0.0',
          port: 3306,
          'skip-name-resolve': 1,
          'character-set-server': 'utf8mb4',
          'collation-server': 'utf8mb4_general_ci',
          max_connections: 1000,
          innodb_buffer_pool_size: '256M',
        },
      },
      ctx.overrides('mariadb.cnf'),
    );
    const { volumes, volumeMounts } = podMounts([
      { name: 'config', source: { configMap: 'mariadb-config' }, path: CONFIG_DIR },
      { name: 'root-password', source: { secret: MARIADB_ROOT_SECRET }, path: MARIADB_ROOT_DIR },
      { name: 'data', source: { claim: 'mariadb-data' }, path: '/var/lib/mysql' },
    ]);
    return [
      {
        name: 'mariadb',
        service: 'mariadb',
        description: 'MariaDB server with its data volume',
        dependsOn: [],
        objects: [
          configMap(
            'mariadb-config',
            labels,
            configBundle([
              {
                key: 'mariadb.cnf',
                dest: '/etc/mysql/mariadb.conf.d/99-podstack.cnf',
                owner: 'root',
                mode: '0644',
                content: renderIni('mariadb.cnf', cnf),
              },
            ]),
          ),
          secret(MARIADB_ROOT_SECRET, labels, { 'root-password': ctx.secrets.mariadb_root_password! }),
          persistentVolumeClaim('mariadb-data', labels, '10Gi'),
          deployment('mariadb', labels, {
            hostname: 'mariadb',
            volumes,
            containers: [
              startContainer('mariadb', ctx.image('mariadb'), ['podstack-mariadb-start'], {
                env: [{ name: 'MARIADB_ROOT_PASSWORD_FILE', value: MARIADB_ROOT_PASSWORD_FILE }],
                ports: [{ name: 'mysql', containerPort: 3306 }],
                volumeMounts,
                readinessProbe: readinessTcp(3306),
              }),
            ],
          }),
          service(MARIADB_HOST, labels, [{ name: 'mysql', port: 3306 }]),
        ],
      },
    ];
  },
};
