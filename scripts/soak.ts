// `npm run soak`: the end-to-end files of both engines with the soak's counts (PODSTACK_SOAK=1:
// 20 guests one after another and 10 at once, each to its lease, ping and SSH; the node pod made
// again 5 times with 3 guests running; the client loop through the rolls to 20,000 requests), and
// the Kubernetes checks CI runs on Podman only (test/kube/cloud.test.ts, SOAK_ONLY). Too long for every CI run, which runs the same checks with
// small counts; run it before resolving work on guests or networking, and quote its numbers.
import { exec } from '../src/_exec.js';
import { DEFAULT_STATE_DIR, stopCluster } from '../test/kube-cluster/cluster.js';

if (process.getuid?.() !== 0) {
  console.error('npm run soak runs real clouds (rootful Podman, a Kubernetes test cluster) and needs root.');
  process.exit(1);
}
const root = new URL('..', import.meta.url).pathname;
const files = process.argv.slice(2);
const r = await exec(
  'node',
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    ...(files.length > 0 ? files : ['test/e2e/cloud.test.ts', 'test/kube/cloud.test.ts']),
  ],
  { cwd: root, output: 'inherit', env: { PODSTACK_SOAK: '1' } },
);
if (!process.env.PODSTACK_KEEP_CLUSTER) await stopCluster(DEFAULT_STATE_DIR);
process.exit(r.exitCode ?? 1);
