// The whole test suite, as `npm test` runs it: lint and format, types, then every test file in
// one node:test run: unit tests, end-to-end tests against real Podman, then the Kubernetes engine
// against a real cluster (test/kube: the API-only tier, then the full one).
// `npm test -- unit` runs only the fast tier.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../src/_exec.js';
import { DEFAULT_STATE_DIR, stopCluster } from '../test/kube-cluster/cluster.js';

const tier = process.argv[2] ?? 'all';
if (tier !== 'unit' && process.getuid?.() !== 0) {
  // The end-to-end tiers skip themselves without root; a whole run that skipped them would
  // report success for tests that never ran.
  console.error(
    'npm test runs real clouds (rootful Podman, a Kubernetes test cluster) and needs root.\n' +
      'Run it as root, or `npm test -- unit` for lint, types and the unit tests alone.',
  );
  process.exit(1);
}
const root = new URL('..', import.meta.url).pathname;
const files = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(dir, f));

let cleanUp = async () => {};

async function step(title: string, file: string, args: string[]): Promise<void> {
  console.log(`\n== ${title}`);
  const r = await exec(file, args, { cwd: root, output: 'inherit' });
  if (r.exitCode !== 0) {
    console.error(`\n${title} failed (exit ${r.exitCode})`);
    await cleanUp();
    process.exit(r.exitCode ?? 1);
  }
}

await step('lint and format (biome)', 'npx', ['biome', 'check', '.']);
await step('types (tsc)', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
const tests = [
  ...files('test/unit'),
  ...(tier === 'unit' ? [] : [...files('test/e2e'), ...files('test/kube')]),
];
if (tier !== 'unit') {
  // The cluster's binaries take ~15 minutes to build the first time, mostly CPU, while the image
  // builds of the Podman tests mostly wait on disk and network: overlapping them saves most of
  // that. The cluster tests wait for this build (binaries.ts holds a lock) rather than start one.
  // At the lowest CPU priority: it fills the time the Podman tests wait, and never slows what
  // they measure (the roll tests' client loops send a fixed count of requests: a compiler taking
  // half the CPU would make them run that much longer).
  mkdirSync(join(root, '.test-logs'), { recursive: true });
  const log = openSync(join(root, '.test-logs', 'kubernetes-build.log'), 'w');
  spawn('nice', ['-n', '19', process.execPath, '--import', 'tsx', 'scripts/kube-cluster.ts', 'binaries'], {
    cwd: root,
    stdio: ['ignore', log, log],
    detached: true,
  }).unref();
  console.log('building the test cluster binaries in the background: .test-logs/kubernetes-build.log');
}
// One run, so the closing summary counts every test; files one at a time, because the
// end-to-end files share the host's Podman and ports.
// The test cluster is shared by the files that need it; it goes when the run ends, unless
// asked to stay for a look (`npm run cluster -- env` then points kubectl at it).
if (tier !== 'unit' && !process.env.PODSTACK_KEEP_CLUSTER) cleanUp = () => stopCluster(DEFAULT_STATE_DIR);
await step(`tests (${tests.length} files)`, 'node', [
  '--import',
  'tsx',
  '--test',
  '--test-concurrency=1',
  '--test-reporter=tap',
  '--test-reporter-destination=stdout',
  // The failures again, last, where a log cut to its tail still shows them.
  '--test-reporter=./scripts/failures-reporter.mjs',
  '--test-reporter-destination=stdout',
  ...tests,
]);
await cleanUp();
