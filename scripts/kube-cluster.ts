// The test cluster by hand: `npm run cluster -- up [api|full] | down | env | binaries`.
// Tests start it themselves; this is for looking at it, or at podstack on it, between runs.
import { ensureKubernetesBinaries } from '../test/kube-cluster/binaries.js';
import { DEFAULT_STATE_DIR, startCluster, stopCluster, type Tier } from '../test/kube-cluster/cluster.js';

const report = (m: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`);
const [command = 'up', arg] = process.argv.slice(2);
switch (command) {
  case 'binaries':
    console.log(await ensureKubernetesBinaries(report));
    break;
  case 'up': {
    if (arg !== undefined && arg !== 'api' && arg !== 'full') {
      console.error(`unknown tier ${arg}: use api (etcd + control plane) or full (with a node)`);
      process.exit(2);
    }
    const c = await startCluster({ tier: (arg ?? 'full') as Tier, report });
    console.log(`export KUBECONFIG=${c.kubeconfig}   # registry ${c.registry}, node ${c.nodeIp}`);
    break;
  }
  case 'env':
    console.log(`export KUBECONFIG=${DEFAULT_STATE_DIR}/admin.kubeconfig`);
    break;
  case 'down':
    await stopCluster(DEFAULT_STATE_DIR, report);
    break;
  default:
    console.error(`usage: npm run cluster -- up [api|full] | down | env | binaries (got ${command})`);
    process.exit(2);
}
