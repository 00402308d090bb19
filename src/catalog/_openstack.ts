import { type Job, job } from '../plan/objects.js';
import { configMount, podMounts } from './_pod.js';
import {
  MARIADB_HOST,
  MARIADB_ROOT_DIR,
  MARIADB_ROOT_PASSWORD_FILE,
  MARIADB_ROOT_SECRET,
} from './mariadb.js';
import type { RenderContext } from './types.js';

/** The key, inside a service's config Secret, of its database password (read in place by scripts). */
export const DATABASE_PASSWORD_KEY = 'database-password';

/** mysql+pymysql URL of a service's database on the cloud's MariaDB. */
export function databaseUrl(user: string, password: string, database: string): string {
  return `mysql+pymysql://${user}:${encodeURIComponent(password)}@${MARIADB_HOST}/${database}?charset=utf8mb4`;
}

/**
 * The db-init Job of openstack-helm: creates the service's database and user,
 * and (re)sets the user's password, idempotently. It runs in the MariaDB image,
 * which carries the client and podstack-db-ensure.
 */
export function databaseJob(
  ctx: RenderContext,
  name: string,
  labels: Record<string, string>,
  database: string,
): Job {
  const configSecret = `${database}-config`;
  const { volumes, volumeMounts } = podMounts([
    configMount(configSecret),
    { name: 'mariadb-root', source: { secret: MARIADB_ROOT_SECRET }, path: MARIADB_ROOT_DIR },
  ]);
  return job(name, labels, {
    volumes,
    containers: [
      {
        name: 'db-ensure',
        image: ctx.image('mariadb'),
        imagePullPolicy: 'IfNotPresent',
        command: [
          'podstack-db-ensure',
          MARIADB_HOST,
          database,
          database,
          `/etc/podstack/config/${DATABASE_PASSWORD_KEY}`,
        ],
        env: [{ name: 'MARIADB_ROOT_PASSWORD_FILE', value: MARIADB_ROOT_PASSWORD_FILE }],
        volumeMounts,
      },
    ],
  });
}
