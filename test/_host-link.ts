import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exec } from '../src/_exec.js';
import { fenceRules, type HostLink } from '../src/engines/podman/host-link.js';
import { type OpenStack, sshOptions } from './_cloud-checks.js';

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
