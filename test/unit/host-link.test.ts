import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fenceRules, hostLinkOf } from '../../src/engines/podman/host-link.js';

describe("the host's link to the external network (Podman)", () => {
  it("takes the subnet's second address (the first is the node's, the floating IPs' gateway), and a device name per cloud that fits IFNAMSIZ", () => {
    const a = hostLinkOf('podstack', '172.24.4.0/24');
    assert.equal(a.address, '172.24.4.2/24');
    assert.match(a.device, /^psx[0-9a-f]{8}$/);
    assert.ok(a.device.length <= 15);
    assert.notEqual(hostLinkOf('other', '172.24.4.0/24').device, a.device);
    assert.equal(hostLinkOf('podstack', '192.168.96.64/26').address, '192.168.96.66/26');
  });

  it('lets in replies only, and forwards nothing either way, each rule tagged with the cloud', () => {
    const link = hostLinkOf('podstack', '172.24.4.0/24');
    const rules = fenceRules(link, 'podstack');
    const input = rules.filter((r) => r.chain === 'INPUT').map((r) => r.rule.join(' '));
    assert.equal(input.length, 2);
    assert.match(input[0]!, /^-i psx\w+ .*--ctstate ESTABLISHED,RELATED -j ACCEPT$/);
    assert.match(input[1]!, /^-i psx\w+ .*-j DROP$/);
    const forward = rules.filter((r) => r.chain === 'FORWARD').map((r) => r.rule.join(' '));
    assert.deepEqual(
      forward.map((f) => f.split(' ').slice(0, 2).join(' ')),
      [`-i ${link.device}`, `-o ${link.device}`],
    );
    for (const f of forward) assert.match(f, /-j DROP$/);
    for (const r of rules) assert.ok(r.rule.join(' ').includes('--comment podstack:podstack'));
  });
});
