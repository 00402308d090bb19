import { componentLabels, job } from '../model/objects.js';
import { ADMIN_SECRET, adminEnv, MOUNT } from './_factory.js';
import { podMounts } from './_pod.js';
import { defineService } from './types.js';

/** Where images/guest puts the guest disk it builds. */
const GUEST_IMAGE = '/usr/share/podstack/guest/podstack-guest.qcow2';

/**
 * What a new cloud needs to be tried at once, as devstack leaves it: a small guest image
 * (built by podstack from Debian's kernel, busybox and dropbear: images/guest), flavors, an
 * external network with a router, a tenant network, and ICMP and SSH let in. One Job,
 * idempotent (podstack-first-resources): it keeps what exists, so a user's changes stay.
 */
export const starter = defineService({
  name: 'starter',
  description:
    'A first cloud to try: the guest image, flavors m1.nano/m1.micro, networks public and private, router1',
  kind: 'openstack',
  enabledByDefault: true,
  secrets: [],
  images: [{ name: 'guest', parent: 'openstack-base' }],
  configFiles: [],
  needs: ['identity', 'image', 'compute', 'network'],
  provides: {},
  render(ctx) {
    const { volumes, volumeMounts } = podMounts([
      { name: 'admin', source: { secret: ADMIN_SECRET }, path: MOUNT.admin },
    ]);
    return [
      {
        name: 'starter',
        service: 'starter',
        description: 'image podstack-guest, flavors, networks public and private, router1, default rules',
        dependsOn: [ctx.provider('image'), ctx.provider('compute'), ctx.provider('network')],
        objects: [
          job('starter', componentLabels('starter', 'resources'), {
            volumes,
            containers: [
              {
                name: 'first-resources',
                image: ctx.image('guest'),
                imagePullPolicy: 'IfNotPresent',
                command: [
                  'podstack-first-resources',
                  '--image-file',
                  GUEST_IMAGE,
                  '--external-cidr',
                  ctx.spec.network.external,
                  '--tenant-cidr',
                  ctx.spec.network.tenant,
                ],
                env: adminEnv(ctx),
                volumeMounts,
              },
            ],
          }),
        ],
      },
    ];
  },
});
