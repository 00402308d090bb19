import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SpecError } from '../../src/errors.js';
import { ensureSecrets, generatePassword } from '../../src/spec/secrets.js';

// Folders holding generated secrets: every one is removed when the file's tests end.
const made: string[] = [];
const tmp = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'podstack-secrets-'));
  made.push(dir);
  return dir;
};
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

describe('secrets', () => {
  it('generates every missing secret into a 0600 file', async () => {
    const file = join(await tmp(), 'secrets.yaml');
    const r = await ensureSecrets(file, ['b_password', 'a_password']);
    assert.equal(r.created, true);
    assert.deepEqual(r.added, ['a_password', 'b_password']);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(r.secrets.a_password!, /^[A-Za-z0-9]{32}$/);
    assert.notEqual(r.secrets.a_password, r.secrets.b_password);
  });

  it('never overwrites an existing value, and adds only what is missing', async () => {
    const file = join(await tmp(), 'secrets.yaml');
    await writeFile(file, 'a_password: kept-as-is\n', { mode: 0o600 });
    const r = await ensureSecrets(file, ['a_password', 'c_password']);
    assert.deepEqual(r.added, ['c_password']);
    assert.equal(r.secrets.a_password, 'kept-as-is');
    const again = await ensureSecrets(file, ['a_password', 'c_password']);
    assert.deepEqual(again.added, []);
    assert.equal(again.secrets.c_password, r.secrets.c_password);
    assert.match(await readFile(file, 'utf8'), /a_password: kept-as-is/);
  });

  it('tightens a file that others could read', async () => {
    const file = join(await tmp(), 'secrets.yaml');
    await writeFile(file, 'a_password: x1\n', { mode: 0o644 });
    const r = await ensureSecrets(file, ['a_password']);
    assert.equal(r.tightened, true);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it('rejects a non-string value by name, without printing any value', async () => {
    const file = join(await tmp(), 'secrets.yaml');
    await writeFile(file, 'a_password: hunter2-secret\nb_password: 12345\n', { mode: 0o600 });
    await assert.rejects(ensureSecrets(file, ['a_password']), (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.equal(err.issues[0]!.path, 'b_password');
      assert.equal(err.issues[0]!.line, 2);
      assert.doesNotMatch(err.message, /hunter2|12345/);
      return true;
    });
    assert.equal(await readFile(file, 'utf8'), 'a_password: hunter2-secret\nb_password: 12345\n');
  });

  it('generates passwords from a safe alphabet', () => {
    for (let i = 0; i < 50; i++) assert.match(generatePassword(), /^[A-Za-z0-9]{32}$/);
  });
});
