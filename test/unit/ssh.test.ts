import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exec } from '../../src/_exec.js';
import { sshKeyPair } from '../../src/config/ssh.js';

describe('SSH keys derived from a secret', () => {
  it('ssh-keygen reads the private key and finds the public key beside it; one pair per secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podstack-ssh-'));
    try {
      const pair = sshKeyPair('a secret', 'nova@podstack-x');
      const file = join(dir, 'id_ed25519');
      await writeFile(file, pair.privateKey, { mode: 0o600 });
      const r = await exec('ssh-keygen', ['-y', '-f', file]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(
        r.stdout.trim().split(' ').slice(0, 2).join(' '),
        pair.publicKey.split(' ').slice(0, 2).join(' '),
      );
      assert.match(pair.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\S+ nova@podstack-x$/);
      assert.deepEqual(sshKeyPair('a secret', 'nova@podstack-x'), pair);
      assert.notEqual(sshKeyPair('another', 'nova@podstack').publicKey, pair.publicKey);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
