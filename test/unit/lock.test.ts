import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hostLock } from '../../src/_lock.js';

describe('hostLock', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podstack-lock-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('makes a second holder wait, saying so once, until the first releases', async () => {
    const path = join(dir, 'a.lock');
    const release = await hostLock(path);
    let waited = 0;
    let taken = false;
    const taking = hostLock(path, { onWait: () => waited++ }).then((r) => {
      taken = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(taken, false, 'the second holder took a held lock');
    assert.equal(waited, 1);
    await release();
    await (await taking)();
  });

  it('is free again when its holder is killed', async () => {
    const path = join(dir, 'b.lock');
    // A holder in another process, killed as the OOM killer would kill a podstack.
    const holder = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import('${new URL('../../src/_lock.ts', import.meta.url).pathname}').then((m) => m.hostLock('${path}')).then(() => { console.log('held'); setInterval(() => {}, 1000); })`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      let taken = false;
      const taking = hostLock(path).then(async (release) => {
        taken = true;
        await release();
      });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(taken, false);
      holder.kill('SIGKILL');
      await taking;
      assert.equal(taken, true);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('gives up after its timeout, naming the lock', async () => {
    const path = join(dir, 'c.lock');
    const release = await hostLock(path);
    await assert.rejects(hostLock(path, { timeoutSeconds: 1 }), new RegExp(`another podstack held ${path}`));
    await release();
  });
});
