import { catalog } from '../../src/catalog/index.js';
import { buildPlan } from '../../src/plan/build.js';
import { parseCloud } from '../../src/spec/load.js';

export const SECRETS = {
  mariadb_root_password: 'root-SECRET-value-1',
  rabbitmq_password: 'rabbit-SECRET-value-2',
  keystone_admin_password: 'admin-SECRET-value-3',
  keystone_database_password: 'db-SECRET-value-4',
};

export const IMAGE_REFS = Object.fromEntries(
  ['base', 'openstack-base', 'keystone', 'mariadb', 'rabbitmq', 'memcached'].map((n) => [
    n,
    `localhost/t/${n}:1`,
  ]),
);

/** The plan of a cloud file, with fixed secrets and image tags. */
export function planOf(cloudYaml = '') {
  const spec = parseCloud(cloudYaml, 'cloud.yaml', catalog);
  return buildPlan({ spec, secrets: SECRETS, catalog, imageRefs: IMAGE_REFS });
}
