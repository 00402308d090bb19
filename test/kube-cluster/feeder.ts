// The test cluster's DNS feeder: writes every Service's ClusterIP as
// <name>.<namespace>.svc.cluster.local into the hosts file dnsmasq watches, so pods resolve
// Service names as they would with CoreDNS. A separate process, started by cluster.ts, so that
// the cluster keeps resolving names between test runs.
// Usage: feeder.ts <kubeconfig> <hosts file>
import { readFile, rename, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

const [kubeconfig, hostsFile] = process.argv.slice(2);
if (!kubeconfig || !hostsFile) {
  console.error('usage: feeder.ts <kubeconfig> <hosts file>');
  process.exit(2);
}
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(CoreV1Api);

for (;;) {
  try {
    const services = await core.listServiceForAllNamespaces();
    const lines = services.items
      .filter((s) => s.spec?.clusterIP && s.spec.clusterIP !== 'None')
      .map((s) => `${s.spec?.clusterIP} ${s.metadata?.name}.${s.metadata?.namespace}.svc.cluster.local`)
      .sort();
    const text = `${lines.join('\n')}\n`;
    const old = await readFile(hostsFile, 'utf8').catch(() => '');
    // dnsmasq re-reads the folder on inotify: replace the file whole, and only when it changed.
    if (text !== old) {
      await writeFile(`${hostsFile}.tmp`, text);
      await rename(`${hostsFile}.tmp`, hostsFile);
    }
  } catch (e) {
    console.error(new Date().toISOString(), (e as Error).message);
  }
  await sleep(1000);
}
