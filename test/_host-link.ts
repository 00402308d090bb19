import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exec } from '../src/_exec.js';
import { fenceRules, type HostLink } from '../src/engines/podman/host-link.js';
import { addressIn } from '../src/engines/podman/network.js';
import { type CloudNode, fromHost, type OpenStack, sshOptions } from './_cloud-checks.js';
import type { Guest } from './_guest-network.js';
import { guestUptime } from './_node-survival.js';

/**
 * Floating IPs from the host, through the cloud's own link (src/engines/podman/host-link.ts).
 * Nothing is sent to a floating IP before `ip route get` says the route is that link: otherwise
 * the address would leave the machine by the default route.
 */
export async function routeIsTheLink(fip: string, link: HostLink): Promise<void> {
  const route = (await exec('ip', ['-o', 'route', 'get', fip])).stdout.trim();
  assert.match(route, new RegExp(` dev ${link.device} `), `not sending to ${fip}: its route is ${route}`);
}

export interface HostLinkCheck {
  readonly openstack: OpenStack;
  readonly cloud: string;
  readonly link: HostLink;
  readonly guest: { readonly fip: string; readonly key: string };
  /** An address of the host's that is not on the link (the cloud network's gateway, with the APIs). */
  readonly otherHostAddress: string;
  /** `up`, which makes the fence again. */
  readonly up: () => Promise<void>;
}

/**
 * The host pings the guest's floating IP and logs in over SSH; the guest opens no connection to
 * the host through the link, to its address there or (through a route a tenant may add to its
 * router) to another of the host's addresses. Then the check is shown to be able to fail: with the
 * fence taken away the guest's request arrives, and `up` puts the fence back.
 */
export async function checkHostLink(o: HostLinkCheck): Promise<string> {
  const { fip, key } = o.guest;
  await routeIsTheLink(fip, o.link);
  const ping = await exec('ping', ['-c', '3', '-W', '2', fip]);
  assert.equal(ping.exitCode, 0, `ping ${fip} from the host:\n${ping.output}`);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1];
  const ssh = (script: string) => exec('ssh', [...sshOptions(key), `root@${fip}`, script]);
  const login = await ssh('hostname');
  assert.equal(login.exitCode, 0, `ssh root@${fip} from the host:\n${login.output}`);

  // A web server on every address of the host's: what a guest must not reach.
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end('reached\n');
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  const port = (server.address() as AddressInfo).port;
  const hostAddress = o.link.address.split('/')[0]!;
  const fromGuest = async (address: string) => {
    // busybox's wget -T segfaults when it times out: timeout(1) bounds it instead.
    const r = await ssh(`timeout 5 wget -q -O - http://${address}:${port}/ 2>/dev/null || echo refused`);
    assert.equal(r.exitCode, 0, r.output);
    return r.stdout.trim();
  };
  const route = `destination=${o.otherHostAddress}/32,gateway=${hostAddress}`;
  try {
    assert.equal(await fromGuest(hostAddress), 'refused', `the guest reached the host at ${hostAddress}`);
    await o.openstack('router', 'set', '--route', route, 'router1');
    try {
      assert.equal(
        await fromGuest(o.otherHostAddress),
        'refused',
        `the guest reached the host at ${o.otherHostAddress} through its router`,
      );
    } finally {
      await o.openstack('router', 'unset', '--route', route, 'router1');
    }
    assert.equal(requests, 0);
    // The control: without the fence the same request arrives; `up` puts the fence back.
    for (const { chain, rule } of fenceRules(o.link, o.cloud)) {
      const d = await exec('iptables', ['-w', '-D', chain, ...rule]);
      assert.equal(d.exitCode, 0, `the fence's rule ${chain} ${rule.join(' ')} was not there: ${d.output}`);
    }
    assert.equal(
      await fromGuest(hostAddress),
      'reached',
      'without the fence the guest should reach the host',
    );
    await o.up();
    assert.equal(await fromGuest(hostAddress), 'refused', 'up did not put the fence back');
  } finally {
    server.close();
  }
  return `ping ${fip} from the host: 3 of 3, ${rtt} ms average; ssh: ${login.stdout.trim()}`;
}

/** After `down`: no link, and none of the cloud's rules. */
export async function checkHostLinkGone(cloud: string, link: HostLink): Promise<void> {
  assert.notEqual(
    (await exec('ip', ['link', 'show', 'dev', link.device])).exitCode,
    0,
    `${link.device} is left`,
  );
  const rules = (await exec('iptables', ['-w', '-S'])).stdout;
  assert.ok(!rules.includes(`podstack:${cloud}`), `rules of ${cloud} are left:\n${rules}`);
}

export interface ExternalBridgeCheck {
  readonly cloud: string;
  readonly link: HostLink;
  /** The cloud's node pod (its `reach` is the pod's namespace, where the host link ends). */
  readonly node: CloudNode;
  readonly guest: Guest;
  /** `up` with the cloud file that has `network.externalBridge: bridge`, then without it. */
  readonly upWith: (bridge: string | undefined) => Promise<void>;
}

/** The stand-in for the operator's external network: a bridge the test makes, and removes. */
const TEST_BRIDGE = 'podstack-t-ext';

/**
 * network.externalBridge on Podman: on a bridge of the host's (with the external subnet's first
 * address, its router, as an operator's would have), `up` makes the host link that bridge's port,
 * with no address and no fence, and takes br-ex's address away; the running guest answers ping and
 * SSH from the host through the bridge and keeps running. Then back: without the setting (and the
 * bridge), the host link has its address and fence again, and br-ex its.
 */
export async function checkExternalBridge(o: ExternalBridgeCheck): Promise<string> {
  const router = `${addressIn(o.link.subnet, 1)}/${o.link.subnet.split('/')[1]}`;
  const host = { ...o.node, reach: fromHost(TEST_BRIDGE, o.guest.fip) };
  const before = await guestUptime(o.node, o.guest);
  await exec('ip', ['link', 'del', TEST_BRIDGE]);
  for (const args of [
    ['link', 'add', TEST_BRIDGE, 'type', 'bridge'],
    ['addr', 'add', router, 'dev', TEST_BRIDGE],
    ['link', 'set', TEST_BRIDGE, 'up'],
  ]) {
    const r = await exec('ip', args);
    assert.equal(r.exitCode, 0, `ip ${args.join(' ')}: ${r.output}`);
  }
  let printed: string;
  try {
    await o.upWith(TEST_BRIDGE);
    const port = JSON.parse((await exec('ip', ['-j', 'addr', 'show', 'dev', o.link.device])).stdout) as {
      master?: string;
      addr_info: unknown[];
    }[];
    assert.equal(port[0]?.master, TEST_BRIDGE, `${o.link.device} is not a port of ${TEST_BRIDGE}`);
    assert.deepEqual(
      port[0]?.addr_info.filter((a) => (a as { family: string }).family === 'inet'),
      [],
    );
    const brEx = await o.node.run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'br-ex']);
    assert.equal(brEx.exitCode, 0, brEx.output);
    assert.equal(brEx.output.trim(), '', `br-ex still has an address: ${brEx.output}`);
    assert.ok(
      !(await exec('iptables', ['-w', '-S'])).stdout.includes(`podstack:${o.cloud}`),
      'the fence is left',
    );
    const ping = await host.reach('ping', ['-c', '3', '-W', '2', o.guest.fip]);
    assert.equal(ping.exitCode, 0, `ping ${o.guest.fip} through ${TEST_BRIDGE}:\n${ping.output}`);
    const during = await guestUptime(host, o.guest);
    assert.ok(during > before, `the guest restarted (uptime ${before} s, then ${during} s)`);
    printed = `through ${TEST_BRIDGE}: ping 3 of 3, SSH answered, the guest ran on (uptime ${before.toFixed(0)} -> ${during.toFixed(0)} s)`;
  } finally {
    await exec('ip', ['link', 'del', TEST_BRIDGE]);
    await o.upWith(undefined);
  }
  await routeIsTheLink(o.guest.fip, o.link);
  const address = (await exec('ip', ['-o', '-4', 'addr', 'show', 'dev', o.link.device])).stdout;
  assert.ok(address.includes(` ${o.link.address} `), `${o.link.device} has not its address back: ${address}`);
  const brEx = await o.node.run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'br-ex']);
  assert.match(brEx.output, new RegExp(` ${router} `), `br-ex has not its address back: ${brEx.output}`);
  return printed;
}
