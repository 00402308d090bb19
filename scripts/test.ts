// The whole test suite, as `npm test` runs it: lint and format, types, then every test file
// (unit tests first, then end-to-end tests against real Podman) in one node:test run.
// `npm test -- unit` runs only the fast tier.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../src/_exec.js';

const tier = process.argv[2] ?? 'all';
const root = new URL('..', import.meta.url).pathname;
const files = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(dir, f));

async function step(title: string, file: string, args: string[]): Promise<void> {
  console.log(`\n== ${title}`);
  const r = await exec(file, args, { cwd: root, output: 'inherit' });
  if (r.exitCode !== 0) {
    console.error(`\n${title} failed (exit ${r.exitCode})`);
    process.exit(r.exitCode ?? 1);
  }
}

await step('lint and format (biome)', 'npx', ['biome', 'check', '.']);
await step('types (tsc)', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
const tests = [...files('test/unit'), ...(tier === 'unit' ? [] : files('test/e2e'))];
// One run, so the closing summary counts every test; files one at a time, because the
// end-to-end files share the host's Podman and ports.
await step(`tests (${tests.length} files)`, 'node', [
  '--import',
  'tsx',
  '--test',
  '--test-concurrency=1',
  ...tests,
]);
