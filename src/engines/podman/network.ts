import { hashOf } from '../../model/hash.js';

/**
 * The cloud's Podman network has a subnet known before it exists, because the plan needs the
 * host's address on it: internal endpoints are published there, where both the host and the
 * cloud's containers reach them (as kolla's internal VIP).
 */
export function cloudSubnet(cloud: string, configured: string): string {
  if (configured) return configured;
  // 10.89.0.0/24 upwards is where Podman itself allocates; the upper half is left to podstack,
  // one /24 per cloud name, so two clouds on a host get different ones.
  const n = 128 + (Number.parseInt(hashOf(cloud).slice(0, 8), 16) % 120);
  return `10.89.${n}.0/24`;
}

/** The first address of a subnet: the bridge's, the host's address on the network. */
export function gatewayOf(subnet: string): string {
  return addressIn(subnet, 1);
}

/** The n-th address of a subnet (1 is the first after the network's own). */
export function addressIn(subnet: string, n: number): string {
  const [address, bits] = subnet.split('/') as [string, string];
  const value = address.split('.').reduce((v, o) => v * 256 + Number(o), 0);
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  const nth = ((value & mask) >>> 0) + n;
  return [24, 16, 8, 0].map((s) => (nth >>> s) & 255).join('.');
}
