import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootAction } from '../../src/podman/boot.js';

describe('start on boot (Podman)', () => {
  it("enables Podman's restart unit where systemd runs and it is not enabled yet", () => {
    assert.deepEqual(bootAction({ systemd: true, unitExists: true, enabled: false }), { kind: 'enable' });
    assert.deepEqual(bootAction({ systemd: true, unitExists: true, enabled: true }), { kind: 'enabled' });
  });

  it('says what it cannot do: no systemd, or no unit', () => {
    assert.deepEqual(bootAction({ systemd: false, unitExists: false, enabled: false }), {
      kind: 'no-systemd',
    });
    assert.deepEqual(bootAction({ systemd: true, unitExists: false, enabled: false }), { kind: 'no-unit' });
  });
});
