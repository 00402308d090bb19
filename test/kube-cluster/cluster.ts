// A real single-node Kubernetes for podstack's tests, on this host, from Debian's parts and the
// binaries that binaries.ts builds. Two tiers: 'api' (etcd, kube-apiserver, controller-manager:
// enough to test applying, diffing and pruning) and 'full' (adds the scheduler, containerd, kubelet,
// kube-proxy, a registry and cluster DNS: pods run). Every daemon listens on loopback or on the node
// address of the cluster's own bridge, never on the host's outside interface; all state is under
// one folder. Why each setting is what it is: ../../../shared/reference/kubernetes-single-node.md
// has the facts this follows (no CAP_SYS_RESOURCE, no dummy links, no registry to pull from).
import { spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  StorageV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { exec } from '../../src/_exec.js';
import { addressIn } from '../../src/engines/podman/network.js';
import { ensurePackages } from '../../src/host/packages.js';
import { NODE_DATA_ROOT } from '../../src/model/objects.js';
import { binaryCache, CLUSTER_PACKAGES, ensureKubernetesBinaries, type Report } from './binaries.js';
import { ensureNodePki, ensurePki, NODE_NAME, writeKubeconfig } from './pki.js';

export type Tier = 'api' | 'full';

export interface Cluster {
  readonly kubeconfig: string;
  /** host:port of the plain-http registry the cluster pulls from. */
  readonly registry: string;
  /** The node's address: hostPorts and NodePorts are reachable on it from this host. */
  readonly nodeIp: string;
  readonly stateDir: string;
  readonly tier: Tier;
  /** The nodes' names, the first (this host's network namespace) first. */
  readonly nodes: readonly string[];
  /**
   * The full tier's stand-in for a physical external network: a Linux bridge of this name on every
   * node (network.externalBridge), one L2 segment, with this subnet, whose first address is this
   * host's (its router).
   */
  readonly externalBridge: string;
  readonly externalSubnet: string;
}

export interface StartOptions {
  readonly stateDir?: string;
  readonly tier?: Tier;
  readonly report?: Report;
  /**
   * Whether claims get volumes: the controller-manager's hostPath provisioner and the default
   * StorageClass `hostpath` (default true). false makes a cluster as one without storage set up
   * is: a running cluster is switched (only the controller-manager restarts), so a test that
   * asks for false asks for true again at its end.
   */
  readonly storage?: boolean;
  /**
   * 2: a second node (full tier only), tainted podstack.dev/hypervisor=true:NoSchedule so that
   * only what tolerates it (podstack's node pods) runs there. A running one-node cluster gains
   * it; asking for 1 leaves a running second node alone (stopSecondNode removes it).
   */
  readonly nodes?: 1 | 2;
}

export const DEFAULT_STATE_DIR = '/var/tmp/podstack-kube';
const NODE_IP = '10.244.0.1';
const POD_CIDR = '10.244.0.0/24';
const SERVICE_CIDR = '10.96.0.0/16';
const DNS_IP = '10.96.0.10';
const BRIDGE = 'podstack-k8s0';
/** The CNI network name: portmap's rules carry it, which is how ours are told apart. */
const NETWORK = 'podstack-test';
const API_PORT = 16443;
const ETCD_PORT = 12379;
const REGISTRY = '127.0.0.1:15500';
const PAUSE_IMAGE = 'localhost/pause:3.4.1-debian';

const CONTROL_PLANE = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;
const NODE = ['kube-scheduler', 'containerd', 'docker-registry', 'dnsmasq', 'cluster-feeder', 'kubelet', 'kube-proxy'] as const; // biome-ignore format: one list
/** The second node's own daemons (the -2 is dropped to find the process). */
const SECOND_NODE = ['docker-registry-2', 'containerd-2', 'kubelet-2', 'kube-proxy-2'] as const;
type Daemon = (typeof CONTROL_PLANE)[number] | (typeof NODE)[number] | (typeof SECOND_NODE)[number];

/**
 * A node of the test cluster. The first is this host's own network namespace; the second has
 * one of its own (a veth to the host, routes between the two pod subnets), its own containerd,
 * kubelet and kube-proxy, and its own cgroup root, /var/log, /var/lib/kubelet and podstack's
 * node folder (a mount namespace of its containerd and kubelet): two kubelets that share those
 * delete each other's pod logs and kill each other's pods' cgroups as orphans.
 */
interface NodeSpec {
  readonly name: string;
  readonly ip: string;
  readonly podCidr: string;
  /** The pod bridge's address, the pods' gateway. */
  readonly gateway: string;
  readonly bridge: string;
  /** containerd, kubelet, cni and kube-proxy state live under it. */
  readonly dir: string;
  /** Absent: the host's. */
  readonly netns?: string;
  /** The suffix of its daemons' names ('' or '-2'). */
  readonly suffix: '' | '-2';
}

/** The second node's name, and the taint on it that keeps all but podstack's node pods off. */
export const SECOND_NODE_NAME = 'podstack-node2';
export const HYPERVISOR_TAINT = {
  key: 'podstack.dev/hypervisor',
  value: 'true',
  effect: 'NoSchedule',
} as const;
const SECOND_NETNS = 'podstack-k8s-n2';
/** The host's end of the second node's veth; the node's own end is its eth0. */
const SECOND_LINK = 'podstack-k8s-n2';
const SECOND_LINK_HOST_IP = '10.244.255.1';
const SECOND_NODE_IP = '10.244.255.2';
const SECOND_POD_CIDR = '10.244.1.0/24';
/** The registry the second node pulls from: the first's storage, read-only, on the node address. */
const NODE_REGISTRY = `${NODE_IP}:15501`;
const SECOND_CGROUP = 'podstack-node2';
/**
 * The external network's bridge on each node; the second node's is joined to the first's (this
 * host's) by a veth pair, EXTERNAL_LINK here and `uplink` in the node. The host's address on it
 * is the subnet's first, its router: the host answers guests' replies and nothing else
 * (externalFence), so a guest's traffic to anywhere else ends here. Not the default external
 * subnet (172.24.4.0/24): a Podman cloud's host link beside a running cluster would find that
 * routed here already, and make none.
 */
export const EXTERNAL_BRIDGE = 'podstack-ext';
export const EXTERNAL_SUBNET = '172.24.5.0/24';
const EXTERNAL_HOST_ADDRESS = `${addressIn(EXTERNAL_SUBNET, 1)}/${EXTERNAL_SUBNET.split('/')[1]}`;
const EXTERNAL_LINK = 'podstack-ext2';

interface State {
  tier: Tier;
  pids: Partial<Record<Daemon, number>>;
  /** Absent: true (a state file from before the option). */
  storage?: boolean;
  /** Absent: 1. */
  nodes?: number;
}

const quiet: Report = () => {};

function alive(pid: number | undefined, daemon: string): boolean {
  if (!pid) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(
      daemon === 'cluster-feeder' ? 'feeder' : daemon.replace(/-2$/, ''),
    );
  } catch {
    return false;
  }
}

async function readState(stateDir: string): Promise<State | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, 'cluster.json'), 'utf8')) as State;
  } catch {
    return undefined;
  }
}

const clusterOf = (stateDir: string, tier: Tier, nodes: number): Cluster => ({
  kubeconfig: join(stateDir, 'admin.kubeconfig'),
  registry: REGISTRY,
  nodeIp: NODE_IP,
  stateDir,
  tier,
  nodes: nodes > 1 ? [NODE_NAME, SECOND_NODE_NAME] : [NODE_NAME],
  externalBridge: EXTERNAL_BRIDGE,
  externalSubnet: EXTERNAL_SUBNET,
});

const firstNode = (dir: string): NodeSpec => ({
  name: NODE_NAME,
  ip: NODE_IP,
  podCidr: POD_CIDR,
  gateway: NODE_IP,
  bridge: BRIDGE,
  dir,
  suffix: '',
});

const secondNode = (dir: string): NodeSpec => ({
  name: SECOND_NODE_NAME,
  ip: SECOND_NODE_IP,
  podCidr: SECOND_POD_CIDR,
  gateway: '10.244.1.1',
  bridge: 'podstack-k8s1',
  dir: join(dir, 'node2'),
  netns: SECOND_NETNS,
  suffix: '-2',
});

/** The daemons a cluster of a tier and a number of nodes runs. */
function daemonsOf(tier: Tier, nodes: number): readonly Daemon[] {
  if (tier === 'api') return CONTROL_PLANE;
  return [...CONTROL_PLANE, ...NODE, ...(nodes > 1 ? SECOND_NODE : [])];
}

/**
 * Starts the cluster, or returns the running one. A running 'api' cluster asked for 'full' gains
 * its node; a half-dead one (a daemon gone, say after a reboot) is stopped and started afresh.
 */
export async function startCluster(options: StartOptions = {}): Promise<Cluster> {
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const tier = options.tier ?? 'full';
  const report = options.report ?? quiet;
  const storage = options.storage ?? true;
  const state = await readState(stateDir);
  const nodes = Math.max(options.nodes ?? 1, state?.nodes ?? 1);
  if (nodes > 1 && tier !== 'full') throw new Error('a second node needs the full tier');
  if (state && daemonsOf(tier, nodes).every((d) => alive(state.pids[d], d))) {
    await new Starter(stateDir, join(binaryCache(), 'bin'), report, state).ensureStorage(storage);
    return clusterOf(stateDir, state.tier === 'full' ? 'full' : tier, nodes);
  }
  const controlPlaneUp = state && CONTROL_PLANE.every((d) => alive(state.pids[d], d));
  if (state && !controlPlaneUp) await stopCluster(stateDir);

  const started = Date.now();
  const home = await ensureKubernetesBinaries(report);
  await ensurePackages(CLUSTER_PACKAGES, (e) => report(e.type === 'step' ? e.message : JSON.stringify(e)));
  const s = new Starter(
    stateDir,
    join(home, 'bin'),
    report,
    controlPlaneUp && state ? state : { tier, pids: {}, storage },
  );
  if (!controlPlaneUp) await s.controlPlane();
  else await s.ensureStorage(storage);
  await s.nodes(tier, nodes, home);
  s.state.tier = tier;
  s.state.nodes = nodes;
  await s.save();
  report(
    `cluster (${tier}, ${nodes} node${nodes > 1 ? 's' : ''}) up in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return clusterOf(stateDir, tier, nodes);
}

class Starter {
  private readonly pki: string;
  constructor(
    readonly dir: string,
    readonly bin: string,
    readonly report: Report,
    readonly state: State,
  ) {
    this.pki = join(dir, 'pki');
  }

  async save(): Promise<void> {
    await writeFile(join(this.dir, 'cluster.json'), JSON.stringify(this.state, null, 2));
  }

  /** `wrap`: a command line that ends by exec-ing file (a namespace to enter first). */
  private async daemon(name: Daemon, file: string, args: string[], wrap: string[] = []): Promise<void> {
    await mkdir(join(this.dir, 'logs'), { recursive: true });
    const log = openSync(join(this.dir, 'logs', `${name}.log`), 'a');
    const [command, ...pre] = [...wrap, file];
    const child = spawn(command!, [...pre, ...args], {
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    if (!child.pid) throw new Error(`${name} did not start`);
    this.state.pids[name] = child.pid;
    await this.save();
  }

  private async until(
    what: Daemon | string,
    check: () => Promise<boolean>,
    timeoutMs = 60_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check().catch(() => false)) return;
      const pid = this.state.pids[what as Daemon];
      if (pid && !alive(pid, what))
        throw new Error(`${what} exited; see ${join(this.dir, 'logs', `${what}.log`)}`);
      if (Date.now() > deadline)
        throw new Error(`${what} not ready after ${timeoutMs / 1000} s; see ${this.dir}/logs`);
      await sleep(250);
    }
  }

  async controlPlane(): Promise<void> {
    const { dir, bin, pki } = this;
    await mkdir(dir, { recursive: true });
    // The node address lives on the cluster's own bridge: kubelet refuses a loopback node IP and
    // this kernel has no dummy links. The service range is routed into it so that a ClusterIP
    // nothing answers for never follows the default route out of the host.
    if ((await exec('ip', ['link', 'show', BRIDGE])).exitCode !== 0) {
      await must('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
      await must('ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', BRIDGE]);
      await must('ip', ['link', 'set', BRIDGE, 'up']);
      await must('ip', ['route', 'replace', SERVICE_CIDR, 'dev', BRIDGE]);
    }
    await ensurePki(pki, NODE_IP);
    const server = `https://${NODE_IP}:${API_PORT}`;
    for (const user of ['admin', 'controller-manager', 'scheduler', 'kubelet', 'kube-proxy']) {
      await writeKubeconfig(join(dir, `${user}.kubeconfig`), pki, user, server);
    }
    this.report('cluster: PKI and kubeconfigs ready');

    await this.daemon('etcd', 'etcd', [
      '--name=podstack-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${ETCD_PORT}`,
      `--advertise-client-urls=http://127.0.0.1:${ETCD_PORT}`,
      `--listen-peer-urls=http://127.0.0.1:${ETCD_PORT + 1}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ETCD_PORT + 1}`,
      `--initial-cluster=podstack-test=http://127.0.0.1:${ETCD_PORT + 1}`,
      '--listen-metrics-urls=',
    ]);
    await this.until('etcd', async () => (await fetch(`http://127.0.0.1:${ETCD_PORT}/health`)).ok);

    // Bound to the node address (not loopback) so that pods reach it through the `kubernetes`
    // Service without a forwarder.
    await this.daemon('kube-apiserver', join(bin, 'kube-apiserver'), [
      `--bind-address=${NODE_IP}`,
      `--secure-port=${API_PORT}`,
      '--insecure-port=0',
      `--advertise-address=${NODE_IP}`,
      `--etcd-servers=http://127.0.0.1:${ETCD_PORT}`,
      `--client-ca-file=${pki}/ca.crt`,
      `--tls-cert-file=${pki}/apiserver.crt`,
      `--tls-private-key-file=${pki}/apiserver.key`,
      `--kubelet-client-certificate=${pki}/apiserver-kubelet-client.crt`,
      `--kubelet-client-key=${pki}/apiserver-kubelet-client.key`,
      '--kubelet-preferred-address-types=InternalIP',
      `--service-account-key-file=${pki}/sa.pub`,
      `--service-account-signing-key-file=${pki}/sa.key`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      '--profiling=false',
    ]);
    const admin = this.client();
    await this.until('kube-apiserver', async () => {
      const ns = await admin.core.listNamespace();
      return ns.items.some((n) => n.metadata?.name === 'default');
    });
    this.report('cluster: kube-apiserver ready');

    await this.startControllerManager();
    if (this.state.storage !== false) await this.applyStorageClass();
    await this.until('kube-controller-manager', async () => {
      const sa = await admin.core.listNamespacedServiceAccount({ namespace: 'default' });
      return sa.items.some((a) => a.metadata?.name === 'default' && (a.secrets?.length ?? 0) > 0);
    });
    this.report('cluster: controller-manager ready (service account tokens issued)');
  }

  /**
   * Without --allocate-node-cidrs: in 1.20 it delays every controller by 10 s; the node's
   * podCIDR is set directly instead. The hostPath provisioner gives claims real volumes (under
   * /tmp/hostpath_pv, removed again when a claim is deleted) with no storage system; without
   * `storage` it is off, as on a cluster where nobody set storage up.
   */
  private async startControllerManager(): Promise<void> {
    const { dir, bin, pki } = this;
    await this.daemon('kube-controller-manager', join(bin, 'kube-controller-manager'), [
      `--kubeconfig=${dir}/controller-manager.kubeconfig`,
      `--authentication-kubeconfig=${dir}/controller-manager.kubeconfig`,
      `--authorization-kubeconfig=${dir}/controller-manager.kubeconfig`,
      '--bind-address=127.0.0.1',
      '--secure-port=10257',
      '--port=0',
      '--leader-elect=false',
      `--service-account-private-key-file=${pki}/sa.key`,
      `--root-ca-file=${pki}/ca.crt`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${pki}/ca.crt`,
      `--cluster-signing-key-file=${pki}/ca.key`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--enable-hostpath-provisioner=${this.state.storage !== false}`,
      '--profiling=false',
    ]);
  }

  /** Turns claims' storage on or off in a running cluster: the provisioner and the default class. */
  async ensureStorage(storage: boolean): Promise<void> {
    if ((this.state.storage ?? true) === storage) return;
    const pid = this.state.pids['kube-controller-manager'];
    if (alive(pid, 'kube-controller-manager')) {
      process.kill(pid!, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (alive(pid, 'kube-controller-manager') && Date.now() < deadline) await sleep(100);
      if (alive(pid, 'kube-controller-manager')) process.kill(pid!, 'SIGKILL');
    }
    this.state.storage = storage;
    await this.startControllerManager();
    if (storage) await this.applyStorageClass();
    else await this.removeStorageClass();
    await this.until('kube-controller-manager', healthz);
    await this.save();
    this.report(`cluster: storage ${storage ? 'on' : 'off'} (hostPath provisioner, default StorageClass)`);
  }

  client(): { core: CoreV1Api; storage: StorageV1Api } {
    const kc = new KubeConfig();
    kc.loadFromFile(join(this.dir, 'admin.kubeconfig'));
    return { core: kc.makeApiClient(CoreV1Api), storage: kc.makeApiClient(StorageV1Api) };
  }

  private async applyStorageClass(): Promise<void> {
    const { storage } = this.client();
    try {
      await storage.createStorageClass({
        body: {
          metadata: {
            name: 'hostpath',
            annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
          },
          provisioner: 'kubernetes.io/host-path',
          reclaimPolicy: 'Delete',
          volumeBindingMode: 'Immediate',
        },
      });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
    }
  }

  private async removeStorageClass(): Promise<void> {
    try {
      await this.client().storage.deleteStorageClass({ name: 'hostpath' });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
  }

  /** The nodes' daemons that are not running; only the second node missing leaves the first alone. */
  async nodes(tier: Tier, nodes: number, home: string): Promise<void> {
    const firstUp = daemonsOf('full', 1).every((d) => alive(this.state.pids[d], d));
    if (tier === 'full') await ensureExternalNetwork();
    if (tier === 'full' && !firstUp) await this.node(home);
    if (nodes > 1) await this.secondNode(home);
  }

  async node(home: string): Promise<void> {
    const { dir, bin } = this;
    const running = (d: Daemon) => alive(this.state.pids[d], d);
    const admin = this.client();

    if (!running('kube-scheduler')) {
      await this.daemon('kube-scheduler', join(bin, 'kube-scheduler'), [
        `--kubeconfig=${dir}/scheduler.kubeconfig`,
        `--authentication-kubeconfig=${dir}/scheduler.kubeconfig`,
        `--authorization-kubeconfig=${dir}/scheduler.kubeconfig`,
        '--bind-address=127.0.0.1',
        '--secure-port=10259',
        '--port=0',
        '--leader-elect=false',
        '--profiling=false',
      ]);
    }

    // A plain-http registry on loopback: podstack pushes its images here and containerd pulls them.
    if (!running('docker-registry')) {
      await mkdir(join(dir, 'registry', 'data'), { recursive: true });
      await this.registry('docker-registry', join(dir, 'registry', 'config.yml'), REGISTRY, { delete: { enabled: true } }); // biome-ignore format: one call
    }

    // Cluster DNS without CoreDNS (Debian has none): dnsmasq on the node address, fed a hosts file
    // of Services by the feeder; no upstream servers, so no name is ever forwarded off the host.
    const hosts = join(dir, 'dns', 'hosts.d');
    await mkdir(hosts, { recursive: true });
    if (!running('dnsmasq')) {
      await this.daemon('dnsmasq', 'dnsmasq', [
        '--conf-file=/dev/null',
        '--keep-in-foreground',
        '--user=root',
        '--no-resolv',
        '--no-hosts',
        '--no-poll',
        `--listen-address=${NODE_IP}`,
        '--bind-interfaces',
        '--port=53',
        `--hostsdir=${hosts}`,
        '--local=/cluster.local/',
        '--domain-needed',
        '--bogus-priv',
      ]);
    }
    if (!running('cluster-feeder')) {
      await this.daemon('cluster-feeder', process.execPath, [
        '--import',
        import.meta.resolve('tsx'),
        new URL('./feeder.ts', import.meta.url).pathname,
        join(dir, 'admin.kubeconfig'),
        join(hosts, 'cluster.hosts'),
      ]);
    }
    await this.kubeDns(admin.core);

    if (!running('containerd')) await removeHostPortRules(); // left by a cluster not stopped cleanly
    await this.nodeDaemons(firstNode(dir), home);
  }

  /** The second node: its namespace and link, its registry, containerd, kubelet and kube-proxy. */
  async secondNode(home: string): Promise<void> {
    const node = secondNode(this.dir);
    const running = (d: Daemon) => alive(this.state.pids[d], d);
    await mkdir(node.dir, { recursive: true });
    await ensureNodePki(this.pki, node.name, node.ip);
    const server = `https://${NODE_IP}:${API_PORT}`;
    await writeKubeconfig(join(node.dir, 'kubelet.kubeconfig'), this.pki, `kubelet-${node.name}`, server);
    // The same storage as the first's registry, read-only, where the second node can reach it:
    // the first's listens on loopback, which is the host's alone.
    if (!running('docker-registry-2'))
      await this.registry('docker-registry-2', join(node.dir, 'registry.yml'), NODE_REGISTRY, { maintenance: { readonly: { enabled: true } } }); // biome-ignore format: one call
    if (!running('containerd-2')) await prepareSecondNode(node);
    await this.nodeDaemons(node, home);
  }

  /** A docker-registry over the cluster's image storage, listening on `addr`; `storage`: its options. */
  private async registry(name: Daemon, config: string, addr: string, storage: object): Promise<void> {
    await writeFile(
      config,
      stringify({
        version: 0.1,
        log: { level: 'warn' },
        storage: { filesystem: { rootdirectory: join(this.dir, 'registry', 'data') }, ...storage },
        http: { addr },
      }),
    );
    await this.daemon(name, 'docker-registry', ['serve', config]);
    await this.until(name, async () => (await fetch(`http://${addr}/v2/`)).ok);
  }

  /** A node's containerd (with the pause image), kubelet (until Ready) and kube-proxy. */
  private async nodeDaemons(node: NodeSpec, home: string): Promise<void> {
    const admin = this.client();
    const running = (d: Daemon) => alive(this.state.pids[d], d);
    const daemon = (d: 'containerd' | 'kubelet' | 'kube-proxy') => `${d}${node.suffix}` as Daemon;
    const containerdSock = join(node.dir, 'containerd', 'containerd.sock');
    if (!running(daemon('containerd'))) {
      await this.startContainerd(node, containerdSock);
      await this.importPause(home, containerdSock);
      this.report(`cluster: ${node.name}: containerd ready, pause image imported`);
    }
    if (!running(daemon('kubelet'))) {
      await this.startKubelet(node, containerdSock);
      await this.until(
        daemon('kubelet'),
        async () => {
          const found = await admin.core.readNode({ name: node.name });
          if (!found.spec?.podCIDR) {
            await admin.core.patchNode(
              { name: node.name, body: { spec: { podCIDR: node.podCidr, podCIDRs: [node.podCidr] } } },
              setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
            );
          }
          return found.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
        },
        90_000,
      );
      this.report(`cluster: ${node.name} Ready`);
    }
    if (!running(daemon('kube-proxy'))) {
      const config = join(node.dir, 'kube-proxy', 'config.yaml');
      await mkdir(join(node.dir, 'kube-proxy'), { recursive: true });
      await writeFile(
        config,
        stringify({
          apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
          kind: 'KubeProxyConfiguration',
          clientConnection: { kubeconfig: join(this.dir, 'kube-proxy.kubeconfig') },
          mode: 'iptables',
          clusterCIDR: '10.244.0.0/16',
          hostnameOverride: node.name,
          bindAddress: '0.0.0.0',
          healthzBindAddress: '127.0.0.1:10256',
          metricsBindAddress: '127.0.0.1:10249',
          // NodePorts only on the node address, never on the host's outside interface.
          nodePortAddresses: [`${node.ip}/32`],
          // Zero leaves the host's conntrack sysctls alone.
          conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
        }),
      );
      await this.daemon(
        daemon('kube-proxy'),
        join(this.bin, 'kube-proxy'),
        [`--config=${config}`],
        netnsOf(node),
      );
      await this.until(daemon('kube-proxy'), async () =>
        node.netns
          ? (await exec('nsenter', [`--net=/run/netns/${node.netns}`, 'iptables', '-t', 'nat', '-S', 'KUBE-SERVICES'])).exitCode === 0 // biome-ignore format: one call
          : (await fetch('http://127.0.0.1:10256/healthz')).ok,
      );
    }
  }

  private async startContainerd(node: NodeSpec, sock: string): Promise<void> {
    const c = join(node.dir, 'containerd');
    // Images are named for the registry on the host's loopback; a node in a namespace of its
    // own pulls them from the read-only one on the node address.
    const from = node.netns ? NODE_REGISTRY : REGISTRY;
    await mkdir(join(c, 'certs.d', REGISTRY), { recursive: true });
    await writeFile(
      join(c, 'certs.d', REGISTRY, 'hosts.toml'),
      `server = "http://${from}"\n\n[host."http://${from}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const cni = join(node.dir, 'cni');
    await mkdir(join(cni, 'net.d'), { recursive: true });
    // Pods get routes to the pod and service ranges only: nothing in the cluster can reach
    // beyond this host. portmap publishes hostPorts (how podstack exposes its APIs).
    await writeFile(
      join(cni, 'net.d', '10-podstack.conflist'),
      JSON.stringify({
        cniVersion: '0.4.0',
        name: NETWORK,
        plugins: [
          {
            type: 'bridge',
            bridge: node.bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: node.podCidr, gateway: node.gateway }]],
              routes: [{ dst: '10.244.0.0/16' }, { dst: SERVICE_CIDR }],
              dataDir: join(cni, 'ipam'),
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    // restrict_oom_score_adj: root here may lack CAP_SYS_RESOURCE, and runc then cannot give a
    // sandbox the -998 containerd asks for; clamping works on every host.
    await writeFile(
      join(c, 'config.toml'),
      `version = 2
root = "${c}/root"
state = "${c}/state"
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "${PAUSE_IMAGE}"
    disable_apparmor = true
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "${c}/runc"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "${cni}/net.d"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "${c}/certs.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "${c}/opt"
`,
    );
    const name = `containerd${node.suffix}` as Daemon;
    await this.daemon(name, 'containerd', ['--config', join(c, 'config.toml')], node.netns ? privateMounts(node) : []); // biome-ignore format: one call
    await this.until(name, async () => (await ctr(sock, ['version'])).exitCode === 0);
  }

  /** The sandbox image, compiled from the Kubernetes source's pause.c: there is no registry to pull it from. */
  private async importPause(home: string, sock: string): Promise<void> {
    const work = join(this.dir, 'pause');
    await mkdir(work, { recursive: true });
    await must('gcc', [
      '-Os',
      '-static',
      '-DVERSION=v3.4.1-debian',
      '-o',
      join(work, 'pause'),
      join(home, 'pause.c'),
    ]);
    await writeFile(
      join(work, 'Containerfile'),
      'FROM scratch\nADD pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n',
    );
    await must('podman', ['build', '-q', '-t', PAUSE_IMAGE, work]);
    await rm(join(work, 'pause.tar'), { force: true });
    await must('podman', ['save', '-o', join(work, 'pause.tar'), PAUSE_IMAGE]);
    const r = await ctr(sock, ['-n', 'k8s.io', 'images', 'import', join(work, 'pause.tar')]);
    if (r.exitCode !== 0) throw new Error(`ctr import of the pause image failed: ${r.output}`);
  }

  private async kubeDns(core: CoreV1Api): Promise<void> {
    const ports = [
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ];
    // A Service that exists is refused for its address (422) before its name (409).
    const create = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        const code = (e as { code?: number }).code;
        if (code !== 409 && !(code === 422 && /already allocated/.test(String((e as Error).message))))
          throw e;
      }
    };
    await create(() =>
      core.createNamespacedService({
        namespace: 'kube-system',
        body: { metadata: { name: 'kube-dns' }, spec: { clusterIP: DNS_IP, ports } },
      }),
    );
    await create(() =>
      core.createNamespacedEndpoints({
        namespace: 'kube-system',
        body: { metadata: { name: 'kube-dns' }, subsets: [{ addresses: [{ ip: NODE_IP }], ports }] },
      }),
    );
  }

  private async startKubelet(node: NodeSpec, sock: string): Promise<void> {
    const k = join(node.dir, 'kubelet');
    const pki = (f: string) => join(this.pki, node.netns ? f.replace(/^kubelet-server/, `kubelet-server-${node.name}`) : f); // biome-ignore format: one line
    await mkdir(k, { recursive: true });
    await writeFile(join(k, 'resolv.conf'), 'nameserver 127.0.0.1\noptions ndots:1\n');
    await writeFile(
      join(k, 'config.yaml'),
      stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: node.ip,
        port: 10250,
        readOnlyPort: 0,
        healthzBindAddress: '127.0.0.1',
        healthzPort: 10248,
        tlsCertFile: pki('kubelet-server.crt'),
        tlsPrivateKeyFile: pki('kubelet-server.key'),
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: true },
          x509: { clientCAFile: join(this.pki, 'ca.crt') },
        },
        authorization: { mode: 'Webhook' },
        cgroupDriver: 'cgroupfs',
        ...(node.netns ? { cgroupRoot: `/${SECOND_CGROUP}` } : {}),
        failSwapOn: false,
        clusterDomain: 'cluster.local',
        clusterDNS: [DNS_IP],
        resolvConf: join(k, 'resolv.conf'),
        volumePluginDir: join(k, 'volume-plugins'),
        // No pull rate limit: a cold node pulls every image of the cloud at once, and the default
        // (5 a second, burst 10) failed one with "pull QPS exceeded" in CI.
        registryPullQPS: 0,
        // Pulls side by side, not one after another (the default): a pod waits for its
        // dependencies in an init container, and only then are its own images pulled, so with
        // one pull at a time each pull was on the cold up's critical path behind the others.
        serializeImagePulls: false,
        // Requests to the API server as fast as kubelets since 1.27 make them (50 a second, burst
        // 100), not 1.20's 5 (burst 10): with the cloud's forty pods starting at once, the kubelet
        // queued its pods' status updates and its secret and config map reads behind that limit,
        // and a pod the node had started was seen Running 15-25 s later.
        kubeAPIQPS: 50,
        kubeAPIBurst: 100,
        // Status every 2 s, not 10: the node is Ready (and pods start) that much sooner.
        nodeStatusUpdateFrequency: '2s',
        // A test host's disk is often fuller than a production node's: evict only when it is
        // really out of room, never because the default 10-15 % thresholds are crossed.
        evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        rotateCertificates: false,
        serverTLSBootstrap: false,
      }),
    );
    const name = `kubelet${node.suffix}` as Daemon;
    // The second node's kubelet shares its containerd's mount namespace: the volumes it mounts
    // for a pod must be where runc looks for them.
    const containerd = this.state.pids[`containerd${node.suffix}` as Daemon];
    const wrap = node.netns
      ? ['nsenter', `--mount=/proc/${containerd}/ns/mnt`, `--net=/run/netns/${node.netns}`, '--']
      : [];
    await this.daemon(
      name,
      join(this.bin, 'kubelet'),
      [
        `--config=${k}/config.yaml`,
        `--kubeconfig=${node.netns ? join(node.dir, 'kubelet.kubeconfig') : join(this.dir, 'kubelet.kubeconfig')}`,
        `--root-dir=${k}/root`,
        `--cert-dir=${k}/pki`,
        '--container-runtime=remote',
        `--container-runtime-endpoint=unix://${sock}`,
        `--hostname-override=${node.name}`,
        `--node-ip=${node.ip}`,
        ...(node.netns
          ? [
              `--register-with-taints=${HYPERVISOR_TAINT.key}=${HYPERVISOR_TAINT.value}:${HYPERVISOR_TAINT.effect}`,
            ]
          : []),
      ],
      wrap,
    );
  }
}

/** The command line that runs a daemon in a node's network namespace (none for the first). */
function netnsOf(node: NodeSpec): string[] {
  return node.netns ? ['nsenter', `--net=/run/netns/${node.netns}`, '--'] : [];
}

/** Where a node with a mount namespace of its own keeps what it binds over the host's `dir`. */
function ownHostDir(node: NodeSpec, dir: string): string {
  return join(node.dir, 'host', dir.replaceAll('/', '-').slice(1));
}

/**
 * The second node's containerd starts in a mount namespace of its own, with its own /var/log
 * and /var/lib/kubelet bound over the host's (its kubelet joins it): kubelet 1.20 keeps pod logs
 * in /var/log/pods and its device-plugin socket in /var/lib/kubelet whatever its root dir, and
 * deletes what it does not know there. And its own podstack node folder (NODE_DATA_ROOT, the
 * guests' disks): two machines do not share a disk, and with one folder Nova took the two nodes
 * for shared storage, which libvirt then refused to live-migrate on ("Migration without shared
 * storage is unsafe": the folder is not on a shared file system). Slave propagation: the host's
 * mounts still show inside.
 */
function privateMounts(node: NodeSpec): string[] {
  const own = (d: string) => ownHostDir(node, d);
  const script = [
    'set -e',
    ...['/var/log', '/var/lib/kubelet', NODE_DATA_ROOT].map(
      (d) => `mkdir -p ${own(d)} ${d} && mount --bind ${own(d)} ${d}`,
    ),
    `exec nsenter --net=/run/netns/${node.netns} -- "$@"`,
  ].join('\n');
  return ['unshare', '--mount', '--propagation', 'slave', '--', 'sh', '-c', script, 'sh'];
}

/** The cgroup hierarchies (cgroup v1) the second node's pods live under, at /podstack-node2. */
function secondCgroups(): string[] {
  return readdirSync('/sys/fs/cgroup')
    .filter((c) => c !== 'unified')
    .map((c) => join('/sys/fs/cgroup', c, SECOND_CGROUP));
}

/**
 * The second node's network namespace, its veth to the host (the host end 10.244.255.1, the
 * node's 10.244.255.2), routes between the two pod subnets (and to the service range, which its
 * kube-proxy translates), forwarding inside it, and its cgroup root. Made afresh: anything left
 * of an earlier one (its pods' sandboxes) went with its containerd.
 */
async function prepareSecondNode(node: NodeSpec): Promise<void> {
  const ns = node.netns!;
  const inside = (args: string[]) => must('nsenter', [`--net=/run/netns/${ns}`, ...args]);
  await exec('ip', ['netns', 'delete', ns]);
  await must('ip', ['netns', 'add', ns]);
  await must('ip', ['link', 'add', SECOND_LINK, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await must('ip', ['addr', 'add', `${SECOND_LINK_HOST_IP}/30`, 'dev', SECOND_LINK]);
  await must('ip', ['link', 'set', SECOND_LINK, 'up']);
  await must('ip', ['route', 'replace', node.podCidr, 'via', node.ip]);
  await inside(['ip', 'link', 'set', 'lo', 'up']);
  await inside(['ip', 'addr', 'add', `${node.ip}/30`, 'dev', 'eth0']);
  await inside(['ip', 'link', 'set', 'eth0', 'up']);
  // No default route: the node reaches the cluster's ranges and nothing else.
  await inside(['ip', 'route', 'add', '10.244.0.0/16', 'via', SECOND_LINK_HOST_IP]);
  await inside(['ip', 'route', 'add', SERVICE_CIDR, 'via', SECOND_LINK_HOST_IP]);
  await inside(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await exec('nsenter', [`--net=/run/netns/${ns}`, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1']);
  // Its external bridge, joined to the first node's: the same L2 segment, as one switch would be.
  await exec('ip', ['link', 'del', EXTERNAL_LINK]);
  await must('ip', ['link', 'add', EXTERNAL_LINK, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', ns]);
  await must('ip', ['link', 'set', EXTERNAL_LINK, 'master', EXTERNAL_BRIDGE, 'up']);
  await inside(['ip', 'link', 'add', EXTERNAL_BRIDGE, 'type', 'bridge']);
  await inside(['ip', 'link', 'set', 'uplink', 'master', EXTERNAL_BRIDGE, 'up']);
  await inside(['ip', 'link', 'set', EXTERNAL_BRIDGE, 'up']);
  for (const dir of secondCgroups()) {
    await mkdir(dir, { recursive: true });
    // A new cpuset cgroup has no CPUs or memory nodes of its own; its parent's are every one.
    if (dir.includes('/cpuset/')) {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        await writeFile(join(dir, f), await readFile(join(dir, '..', f), 'utf8'));
      }
    }
  }
}

/**
 * The external network's bridge on this host (the first node), with the host's address on it, and
 * its fence: what comes in on it is let in only as a reply to what the host sent, and nothing is
 * routed to or from it (frames bridged between its ports, the nodes', pass).
 */
async function ensureExternalNetwork(): Promise<void> {
  if ((await exec('ip', ['link', 'show', EXTERNAL_BRIDGE])).exitCode !== 0) {
    await must('ip', ['link', 'add', EXTERNAL_BRIDGE, 'type', 'bridge']);
    await must('ip', ['addr', 'add', EXTERNAL_HOST_ADDRESS, 'dev', EXTERNAL_BRIDGE]);
    await must('ip', ['link', 'set', EXTERNAL_BRIDGE, 'up']);
  }
  for (const { chain, rule } of [...externalFence()].reverse()) {
    if ((await exec('iptables', ['-w', '-C', chain, ...rule])).exitCode !== 0)
      await must('iptables', ['-w', '-I', chain, '1', ...rule]);
  }
}

/** The rules of ensureExternalNetwork, in order (iptables arguments after the chain). */
export function externalFence(): { chain: string; rule: string[] }[] {
  const tag = ['-m', 'comment', '--comment', 'podstack-test-cluster external'];
  const b = EXTERNAL_BRIDGE;
  return [
    { chain: 'INPUT', rule: ['-i', b, ...tag, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'] }, // biome-ignore format: one rule
    { chain: 'INPUT', rule: ['-i', b, ...tag, '-j', 'DROP'] },
    { chain: 'FORWARD', rule: ['-i', b, '!', '-o', b, ...tag, '-j', 'DROP'] },
    { chain: 'FORWARD', rule: ['-o', b, '!', '-i', b, ...tag, '-j', 'DROP'] },
  ];
}

async function removeExternalNetwork(): Promise<void> {
  await exec('ip', ['link', 'del', EXTERNAL_LINK]);
  await exec('ip', ['link', 'del', EXTERNAL_BRIDGE]);
  for (const { chain, rule } of externalFence()) {
    while ((await exec('iptables', ['-w', '-C', chain, ...rule])).exitCode === 0)
      await exec('iptables', ['-w', '-D', chain, ...rule]);
  }
}

/** Removes the second node's cgroups (its pods' first, deepest first) once their tasks are gone. */
async function removeSecondCgroups(): Promise<void> {
  for (const dir of secondCgroups()) {
    if (existsSync(dir)) await exec('find', [dir, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
  }
}

/**
 * Stops the second node as a lost machine stops: its kubelet and kube-proxy, every container
 * of its pods, its containerd. Its Node object stays (NotReady, as the API server sees a node
 * that went away). `startCluster({ nodes: 2 })` brings it back with the same name.
 */
export async function stopSecondNode(stateDir = DEFAULT_STATE_DIR, report: Report = quiet): Promise<void> {
  const state = await readState(stateDir);
  if (!state) return;
  const pid = (d: Daemon) => (alive(state.pids[d], d) ? state.pids[d] : undefined);
  await stopDaemons(pid, ['kubelet-2', 'kube-proxy-2']);
  const sock = join(secondNode(stateDir).dir, 'containerd', 'containerd.sock');
  if (pid('containerd-2')) await killTasks(sock);
  await stopDaemons(pid, ['containerd-2']);
  await killShims(secondNode(stateDir).dir);
  await sleep(200);
  await removeSecondCgroups();
  await exec('ip', ['netns', 'delete', SECOND_NETNS]);
  await exec('ip', ['route', 'del', SECOND_POD_CIDR]);
  report(`cluster: ${SECOND_NODE_NAME} stopped (kubelet, pods, containerd)`);
}

/**
 * Takes the second node out of the cluster for good: stopped, its node folder removed, its Node
 * object deleted (its pods go with it), and the cluster back to one node.
 */
export async function removeSecondNode(stateDir = DEFAULT_STATE_DIR, report: Report = quiet): Promise<void> {
  await stopSecondNode(stateDir, report);
  // Its disk goes with it: the guests' disks and node folders it kept.
  await rm(ownHostDir(secondNode(stateDir), NODE_DATA_ROOT), { recursive: true, force: true });
  const state = await readState(stateDir);
  if (!state) return;
  const s = new Starter(stateDir, join(binaryCache(), 'bin'), report, state);
  const { core } = s.client();
  try {
    await core.deleteNode({ name: SECOND_NODE_NAME });
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw e;
  }
  // Its pods' objects would wait for the pod garbage collector; their containers are gone.
  const pods = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${SECOND_NODE_NAME}` });
  for (const pod of pods.items) {
    await core
      .deleteNamespacedPod({
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        gracePeriodSeconds: 0,
      })
      .catch((e: { code?: number }) => {
        if (e.code !== 404) throw e;
      });
  }
  state.nodes = 1;
  await s.save();
  report(`cluster: ${SECOND_NODE_NAME} removed`);
}

/** Shims outlive containerd by design; ours are the ones whose command line names our folder. */
async function killShims(dir: string): Promise<void> {
  const shims = await exec('pgrep', ['-f', `containerd-shim.*${dir}`]);
  for (const p of shims.stdout.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {}
  }
}

async function stopDaemons(pid: (d: Daemon) => number | undefined, names: readonly Daemon[]): Promise<void> {
  const running = names.flatMap((d) => (pid(d) ? [{ d, p: pid(d)! }] : []));
  for (const { p } of running) process.kill(p, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  const left = () => running.filter(({ d, p }) => alive(p, d));
  while (left().length > 0 && Date.now() < deadline) await sleep(100);
  for (const { p } of left()) process.kill(p, 'SIGKILL');
}

async function killTasks(sock: string): Promise<void> {
  const tasks = (await ctr(sock, ['-n', 'k8s.io', 'tasks', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
  for (const id of tasks) await ctr(sock, ['-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', id]);
  await sleep(500);
  for (const id of tasks) await ctr(sock, ['-n', 'k8s.io', 'tasks', 'delete', '-f', id]);
}

/** The controller-manager answers its health check (its own self-signed certificate). */
function healthz(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet('https://127.0.0.1:10257/healthz', { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });
}

async function must(file: string, args: string[]): Promise<void> {
  const r = await exec(file, args);
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${r.failure ?? r.output}`);
}

function ctr(sock: string, args: string[]) {
  return exec('ctr', ['--address', sock, ...args]);
}

/** The names (under /run/netns) of the network namespaces of the cluster's pod sandboxes. */
async function podNetworkNamespaces(sock: string): Promise<string[]> {
  const ids = (await ctr(sock, ['-n', 'k8s.io', 'containers', 'ls', '-q'])).stdout
    .split('\n')
    .filter(Boolean);
  const names = new Set<string>();
  for (const id of ids) {
    const info = await ctr(sock, ['-n', 'k8s.io', 'containers', 'info', id]);
    if (info.exitCode !== 0) continue;
    const spec = (
      JSON.parse(info.stdout) as { Spec?: { linux?: { namespaces?: { type: string; path?: string }[] } } }
    ).Spec;
    const path = spec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
    const name = path && /^\/(var\/)?run\/netns\/([^/]+)$/.exec(path)?.[2];
    if (name) names.add(name);
  }
  return [...names];
}

/**
 * Stops every daemon of the cluster and removes what it left on the host: its pods' containers
 * and network namespaces, mounts, the bridge, kube-proxy's iptables chains, and the state folder.
 */
export async function stopCluster(stateDir = DEFAULT_STATE_DIR, report: Report = quiet): Promise<void> {
  const state = await readState(stateDir);
  const pid = (d: Daemon) => (state && alive(state.pids[d], d) ? state.pids[d] : undefined);
  const stop = (names: readonly Daemon[]) => stopDaemons(pid, names);
  await stopSecondNode(stateDir);
  await stop(['kubelet', 'kube-proxy', 'kube-scheduler', 'cluster-feeder', 'dnsmasq', 'docker-registry', 'docker-registry-2']); // biome-ignore format: one list
  const sock = join(stateDir, 'containerd', 'containerd.sock');
  // The pods' network namespaces, bind-mounted under /run/netns by containerd: nothing removes
  // them once the tasks are killed rather than torn down by the kubelet (35 had piled up here).
  const netns = pid('containerd') ? await podNetworkNamespaces(sock) : [];
  if (pid('containerd')) await killTasks(sock);
  await stop(['containerd', 'kube-controller-manager', 'kube-apiserver', 'etcd']);
  await killShims(stateDir);
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${stateDir}/`))
    .reverse();
  for (const m of mounts) await exec('umount', ['-l', m]);
  const proxy = join(binaryCache(), 'bin', 'kube-proxy');
  if (existsSync(join(stateDir, 'kube-proxy')) && existsSync(proxy)) await exec(proxy, ['--cleanup']);
  await removeHostPortRules();
  for (const name of netns) await exec('ip', ['netns', 'delete', name]);
  await exec('ip', ['link', 'del', BRIDGE]);
  await removeExternalNetwork();
  await rm(stateDir, { recursive: true, force: true });
  report('cluster: stopped and removed');
}

/**
 * The CNI portmap plugin's DNAT rules for our pods' hostPorts. Killing the pods with the node
 * skips the CNI teardown that would remove them, and a stale rule for a port sends the next
 * cluster's traffic for it to an address nobody has ("no route to host").
 */
async function removeHostPortRules(): Promise<void> {
  const list = await exec('iptables', ['-t', 'nat', '-L', 'CNI-HOSTPORT-DNAT', '-n', '--line-numbers']);
  if (list.exitCode !== 0) return;
  const ours = list.stdout
    .split('\n')
    .filter((l) => l.includes(`dnat name: "${NETWORK}"`))
    .map((l) => ({ number: Number(l.split(/\s+/)[0]), chain: l.split(/\s+/)[1] ?? '' }))
    .reverse(); // deleting by number from the bottom keeps the numbers above valid
  for (const rule of ours) {
    await exec('iptables', ['-t', 'nat', '-D', 'CNI-HOSTPORT-DNAT', String(rule.number)]);
    if (rule.chain.startsWith('CNI-DN-')) {
      await exec('iptables', ['-t', 'nat', '-F', rule.chain]);
      await exec('iptables', ['-t', 'nat', '-X', rule.chain]);
    }
  }
}
