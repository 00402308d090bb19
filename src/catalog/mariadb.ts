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
} from '../model/objects.js';
import { MARIADB_ROOT_PASSWORD_KEY, MARIADB_ROOT_SECRET, MOUNT } from './_factory.js';
import { configBundle, podMounts, readinessTcp } from './_pod.js';
import { defineService } from './types.js';

/** The unit and container a database snapshot runs in (`Engine.exec`), and where it writes. */
export const MARIADB_UNIT = 'mariadb';
export const MARIADB_CONTAINER = 'mariadb';
/**
 * The snapshots' own claim, beside the data's: a dump must not sit in the data directory
 * (MariaDB takes every folder there for a database), and it outlives the data's loss.
 */
export const SNAPSHOT_DIR = '/var/lib/podstack-snapshots';

export const mariadb = defineService({
  name: 'mariadb',
  description: 'MariaDB, the SQL database of every OpenStack service',
  kind: 'infrastructure',
  enabledByDefault: true,
  secrets: ['mariadb_root_password'],
  needs: [],
  provides: { database: { unit: 'mariadb', address: 'mariadb:3306' } },
  example: 'config:\n  mariadb.cnf:\n    mysqld:\n      max_connections: 2000',
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
      { name: 'root-password', source: { secret: MARIADB_ROOT_SECRET }, path: MOUNT.mariadbRoot },
      { name: 'data', source: { claim: 'mariadb-data' }, path: '/var/lib/mysql' },
      { name: 'snapshots', source: { claim: 'mariadb-snapshots' }, path: SNAPSHOT_DIR },
    ]);
    return [
      {
        name: MARIADB_UNIT,
        service: 'mariadb',
        description:
          'MariaDB server with its data volume, and one for the snapshots taken before schema migrations',
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
          secret(MARIADB_ROOT_SECRET, labels, {
            [MARIADB_ROOT_PASSWORD_KEY]: ctx.secrets.mariadb_root_password,
          }),
          persistentVolumeClaim('mariadb-data', labels, '10Gi'),
          persistentVolumeClaim('mariadb-snapshots', labels, '10Gi'),
          deployment('mariadb', labels, {
            hostname: 'mariadb',
            volumes,
            containers: [
              startContainer(MARIADB_CONTAINER, ctx.image('mariadb'), ['podstack-mariadb-start'], {
                env: [
                  {
                    name: 'MARIADB_ROOT_PASSWORD_FILE',
                    value: `${MOUNT.mariadbRoot}/${MARIADB_ROOT_PASSWORD_KEY}`,
                  },
                ],
                ports: [{ name: 'mysql', containerPort: 3306 }],
                volumeMounts,
                readinessProbe: readinessTcp(3306),
              }),
            ],
          }),
          service('mariadb', labels, [{ name: 'mysql', port: 3306 }]),
        ],
      },
    ];
  },
});
