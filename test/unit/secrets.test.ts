import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileError, SpecError } from '../../src/errors.js';
import { ensureSecrets, generatePassword, readSecrets } from '../../src/spec/secrets.js';

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

  it('readSecrets writes nothing: missing entries are made in memory, the file and its mode stay', async () => {
    const dir = await tmp();
    const file = join(dir, 'secrets.yaml');
    const none = await readSecrets(file, ['a_password', 'b_password']);
    assert.deepEqual(none.added, ['a_password', 'b_password']);
    assert.match(none.secrets.a_password!, /^[A-Za-z0-9]{32}$/);
    assert.deepEqual(await readdir(dir), [], 'no file created');

    await writeFile(file, 'a_password: kept-as-is\n', { mode: 0o644 });
    const before = await stat(file);
    const partial = await readSecrets(file, ['a_password', 'b_password']);
    assert.deepEqual(partial.added, ['b_password']);
    assert.equal(partial.secrets.a_password, 'kept-as-is');
    assert.equal(partial.loose, true);
    const after = await stat(file);
    assert.equal(await readFile(file, 'utf8'), 'a_password: kept-as-is\n');
    assert.equal(after.mode & 0o777, 0o644, 'mode left alone (up tightens it)');
    assert.equal(after.mtimeMs, before.mtimeMs);
  });

  it('rejects values with line breaks or control characters by name, without printing them', async () => {
    const file = join(await tmp(), 'secrets.yaml');
    await writeFile(file, 'a_password: ok-value\nb_password: "hunter2\\nsecret"\n', { mode: 0o600 });
    for (const read of [readSecrets, ensureSecrets]) {
      await assert.rejects(read(file, ['a_password']), (err: unknown) => {
        assert.ok(err instanceof SpecError);
        assert.equal(err.issues[0]!.path, 'b_password');
        assert.match(err.issues[0]!.message, /line breaks/);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      });
    }
  });

  it('refuses a secrets path that is a folder or YAML the parser refuses, naming the file, changing nothing', async () => {
    const dir = await tmp();
    await mkdir(join(dir, 'secrets.yaml'));
    for (const read of [readSecrets, ensureSecrets]) {
      await assert.rejects(read(join(dir, 'secrets.yaml'), ['a']), (err: unknown) => {
        assert.ok(err instanceof FileError);
        assert.equal(err.exitCode, 2);
        assert.match(err.message, /secrets\.yaml: is a folder/);
        return true;
      });
    }
    const file = join(dir, 'bomb.yaml');
    let bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\n';
    for (const [p, c] of ['ab', 'bc', 'cd', 'de', 'ef', 'fg'])
      bomb += `${c}: &${c} [${Array(9).fill(`*${p}`)}]\n`;
    await writeFile(file, bomb, { mode: 0o600 });
    await assert.rejects(ensureSecrets(file, ['x_password']), (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.equal(err.file, file);
      assert.match(err.issues[0]!.message, /alias/);
      return true;
    });
    assert.equal(await readFile(file, 'utf8'), bomb);
  });
});
