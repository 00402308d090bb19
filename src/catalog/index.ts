import { ceph } from './ceph.js';
import { cinder } from './cinder.js';
import { glance } from './glance.js';
import { horizon } from './horizon.js';
import { keystone } from './keystone.js';
import { mariadb } from './mariadb.js';
import { memcached } from './memcached.js';
import { neutron } from './neutron.js';
import { nova } from './nova.js';
import { ovn } from './ovn.js';
import { placement } from './placement.js';
import { rabbitmq } from './rabbitmq.js';
import { starter } from './starter.js';
import type { ServiceDefinition } from './types.js';

/** Every service podstack knows, infrastructure first. Adding a service: add its file, list it here. */
export const catalog: readonly ServiceDefinition[] = [
  mariadb,
  memcached,
  rabbitmq,
  ceph,
  keystone,
  glance,
  placement,
  ovn,
  neutron,
  nova,
  cinder,
  starter,
  horizon,
];

/** The image that carries podstack-wait and podstack-register (Python and the openstack client). */
export { BASE_IMAGE as WAIT_IMAGE } from './_factory.js';

export function allSecretNames(services: readonly ServiceDefinition[] = catalog): string[] {
  return [...new Set(services.flatMap((s) => s.secrets))].sort();
}

export type { Capability, ImageRecipe, RenderContext, ServiceDefinition } from './types.js';
