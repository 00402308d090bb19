import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { allSecretNames, catalog } from '../../src/catalog/index.js';
import { FileError, PodstackError, SpecError } from '../../src/errors.js';
import { writeOpenrc } from '../../src/lifecycle/openrc.js';
import { initProject, openProject } from '../../src/lifecycle/project.js';

/** Commands that only read change no file; init writes only from valid input. */

const made: string[] = [];
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const tmp = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'podstack-project-'));
  made.push(dir);
  return dir;
};

/** name -> content and mtime of every file in dir. */
async function snapshot(dir: string) {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name));
    out[name] =
      `${st.mode.toString(8)} ${st.mtimeMs} ${st.isFile() ? await readFile(join(dir, name), 'utf8') : ''}`;
  }
  return out;
}

describe('project files', () => {
  it('openProject writes nothing: without secrets.yaml every secret is made in memory', async () => {
    const dir = await tmp();
    const file = join(dir, 'cloud.yaml');
    await writeFile(file, `dataDir: ${join(dir, 'data')}\n`);
    const before = await snapshot(dir);
    const project = await openProject({ file });
    assert.deepEqual(await snapshot(dir), before);
    assert.deepEqual([...project.generatedSecrets].sort(), [...new Set(allSecretNames(catalog))].sort());
    assert.ok(project.plan.units.length > 0, 'a plan is still made');
  });

  it('openProject leaves a secrets.yaml that lacks entries (and its loose mode) as it is', async () => {
    const dir = await tmp();
    const file = join(dir, 'cloud.yaml');
    await writeFile(file, '');
    await writeFile(join(dir, 'secrets.yaml'), 'keystone_admin_password: abcdefABCDEF0123\n', {
      mode: 0o644,
    });
    const before = await snapshot(dir);
    const warnings: string[] = [];
    const project = await openProject({
      file,
      report: (e) => {
        if (e.type === 'warning') warnings.push(e.message);
      },
    });
    assert.deepEqual(await snapshot(dir), before);
    assert.equal(project.secrets.keystone_admin_password, 'abcdefABCDEF0123');
    assert.ok(!project.generatedSecrets.includes('keystone_admin_password'));
    assert.match(warnings.join('\n'), /readable by others/);
  });

  it('init refuses an invalid cloud file before writing secrets.yaml', async () => {
    const dir = await tmp();
    const file = join(dir, 'cloud.yaml');
    await writeFile(file, 'endpoints:\n  address: 256.1.1.1\n');
    const before = await snapshot(dir);
    await assert.rejects(initProject({ file }), SpecError);
    assert.deepEqual(await snapshot(dir), before);
  });

  it('init refuses a secrets path that is a folder before writing cloud.yaml', async () => {
    const dir = await tmp();
    await mkdir(join(dir, 's'));
    const before = await snapshot(dir);
    await assert.rejects(
      initProject({ file: join(dir, 'cloud.yaml'), secretsFile: join(dir, 's') }),
      (e: unknown) => e instanceof FileError && e.exitCode === 2,
    );
    assert.deepEqual(await snapshot(dir), before);
  });

  it('openrc refuses a password made up in memory, and a clouds.yaml it cannot merge into, writing neither file', async () => {
    const dir = await tmp();
    const file = join(dir, 'cloud.yaml');
    await writeFile(file, '');
    const before = await snapshot(dir);
    await assert.rejects(writeOpenrc(await openProject({ file })), (e: unknown) => {
      assert.ok(e instanceof PodstackError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /secrets\.yaml has no keystone_admin_password/);
      return true;
    });
    assert.deepEqual(await snapshot(dir), before);

    await writeFile(join(dir, 'secrets.yaml'), 'keystone_admin_password: abcdefABCDEF0123\n', {
      mode: 0o600,
    });
    await writeFile(join(dir, 'clouds.yaml'), 'clouds:\n  - a\n');
    const withSecrets = await snapshot(dir);
    await assert.rejects(writeOpenrc(await openProject({ file })), (e: unknown) => {
      assert.ok(e instanceof SpecError);
      assert.equal(e.issues[0]!.path, 'clouds');
      return true;
    });
    assert.deepEqual(await snapshot(dir), withSecrets);
  });
});
