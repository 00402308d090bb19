// The test cluster by hand: `npm run cluster -- up [api|full] [--nodes 2] | stop-node2 | down | env | binaries`.
// Tests start it themselves; this is for looking at it, or at podstack on it, between runs.
import { ensureKubernetesBinaries } from '../test/kube-cluster/binaries.js';
import {
  DEFAULT_STATE_DIR,
  startCluster,
  stopCluster,
  stopSecondNode,
  type Tier,
} from '../test/kube-cluster/cluster.js';

const report = (m: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`);
const args = process.argv.slice(2);
const nodesAt = args.indexOf('--nodes');
const nodes = nodesAt >= 0 ? args.splice(nodesAt, 2)[1] : '1';
if (nodes !== '1' && nodes !== '2') {
  console.error(`--nodes ${nodes}: the test cluster has 1 or 2 nodes`);
  process.exit(2);
}
const [command = 'up', arg] = args;
switch (command) {
  case 'binaries':
    console.log(await ensureKubernetesBinaries(report));
    break;
  case 'up': {
    if (arg !== undefined && arg !== 'api' && arg !== 'full') {
      console.error(`unknown tier ${arg}: use api (etcd + control plane) or full (with a node)`);
      process.exit(2);
    }
    const c = await startCluster({ tier: (arg ?? 'full') as Tier, nodes: nodes === '2' ? 2 : 1, report });
    console.log(`export KUBECONFIG=${c.kubeconfig}   # registry ${c.registry}, nodes ${c.nodes.join(' ')}`);
    break;
  }
  case 'stop-node2':
    await stopSecondNode(DEFAULT_STATE_DIR, report);
    break;
  case 'env':
    console.log(`export KUBECONFIG=${DEFAULT_STATE_DIR}/admin.kubeconfig`);
    break;
  case 'down':
    await stopCluster(DEFAULT_STATE_DIR, report);
    break;
  default:
    console.error(
      `usage: npm run cluster -- up [api|full] [--nodes 2] | stop-node2 | down | env | binaries (got ${command})`,
    );
    process.exit(2);
}
