import { openstackService } from './_factory.js';

/** Placement: the inventories and usages of resources that Nova schedules against. */
export const placement = openstackService({
  name: 'placement',
  description: 'Placement: resource providers, inventories and allocations for scheduling',
  image: 'placement',
  user: 'placement',
  database: { section: 'placement_database', sync: ['placement-manage', 'db', 'sync'] },
  identity: { type: 'placement', port: 8778 },
  config: {
    file: 'placement.conf',
    dest: '/etc/placement/placement.conf',
    defaults: () => ({ api: { auth_strategy: 'keystone' } }),
  },
  // Placement has no unauthenticated /healthcheck; its version document at / answers 200.
  api: { wsgi: '/usr/bin/placement-api', ready: '/', uwsgi: { chdir: '/var/lib/placement' } },
});
