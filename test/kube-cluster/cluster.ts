// A real single-node Kubernetes for podstack's tests, on this host, from Debian's parts and the
// binaries that binaries.ts builds. Two tiers: 'api' (etcd, kube-apiserver, controller-manager:
// enough to test applying, diffing and pruning) and 'full' (adds the scheduler, containerd, kubelet,
// kube-proxy, a registry and cluster DNS: pods run). Every daemon listens on loopback or on the node
// address of the cluster's own bridge, never on the host's outside interface; all state is under
// one folder. Why each setting is what it is: ../../../shared/reference/kubernetes-single-node.md
// has the facts this follows (no CAP_SYS_RESOURCE, no dummy links, no registry to pull from).
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
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
import { ensurePackages } from '../../src/host/packages.js';
import { binaryCache, CLUSTER_PACKAGES, ensureKubernetesBinaries, type Report } from './binaries.js';
import { ensurePki, NODE_NAME, writeKubeconfig } from './pki.js';

export type Tier = 'api' | 'full';

export interface Cluster {
  readonly kubeconfig: string;
  /** host:port of the plain-http registry the cluster pulls from. */
  readonly registry: string;
  /** The node's address: hostPorts and NodePorts are reachable on it from this host. */
  readonly nodeIp: string;
  readonly stateDir: string;
  readonly tier: Tier;
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
type Daemon = (typeof CONTROL_PLANE)[number] | (typeof NODE)[number];

interface State {
  tier: Tier;
  pids: Partial<Record<Daemon, number>>;
  /** Absent: true (a state file from before the option). */
  storage?: boolean;
}

const quiet: Report = () => {};

function alive(pid: number | undefined, daemon: string): boolean {
  if (!pid) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(
      daemon === 'cluster-feeder' ? 'feeder' : daemon,
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

const clusterOf = (stateDir: string, tier: Tier): Cluster => ({
  kubeconfig: join(stateDir, 'admin.kubeconfig'),
  registry: REGISTRY,
  nodeIp: NODE_IP,
  stateDir,
  tier,
});

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
  const want: readonly Daemon[] = tier === 'full' ? [...CONTROL_PLANE, ...NODE] : CONTROL_PLANE;
  const have = state ? want.filter((d) => alive(state.pids[d], d)) : [];
  if (state && have.length === want.length) {
    await new Starter(stateDir, join(binaryCache(), 'bin'), report, state).ensureStorage(storage);
    return clusterOf(stateDir, state.tier === 'full' ? 'full' : tier);
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
  if (tier === 'full') await s.node(home);
  s.state.tier = tier;
  await s.save();
  report(`cluster (${tier}) up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return clusterOf(stateDir, tier);
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

  private async daemon(name: Daemon, file: string, args: string[]): Promise<void> {
    await mkdir(join(this.dir, 'logs'), { recursive: true });
    const log = openSync(join(this.dir, 'logs', `${name}.log`), 'a');
    const child = spawn(file, args, {
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
      const config = join(dir, 'registry', 'config.yml');
      await mkdir(join(dir, 'registry', 'data'), { recursive: true });
      await writeFile(
        config,
        stringify({
          version: 0.1,
          log: { level: 'warn' },
          storage: {
            filesystem: { rootdirectory: join(dir, 'registry', 'data') },
            delete: { enabled: true },
          },
          http: { addr: REGISTRY },
        }),
      );
      await this.daemon('docker-registry', 'docker-registry', ['serve', config]);
      await this.until('docker-registry', async () => (await fetch(`http://${REGISTRY}/v2/`)).ok);
    }

    const containerdSock = join(dir, 'containerd', 'containerd.sock');
    if (!running('containerd')) {
      await removeHostPortRules(); // left by a cluster that was not stopped cleanly
      await this.startContainerd(containerdSock);
      await this.importPause(home, containerdSock);
      this.report('cluster: containerd ready, pause image imported');
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

    if (!running('kubelet')) {
      await this.startKubelet(containerdSock);
      await this.until(
        'kubelet',
        async () => {
          const node = await admin.core.readNode({ name: NODE_NAME });
          if (!node.spec?.podCIDR) {
            await admin.core.patchNode(
              { name: NODE_NAME, body: { spec: { podCIDR: POD_CIDR, podCIDRs: [POD_CIDR] } } },
              setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
            );
          }
          return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
        },
        90_000,
      );
      this.report('cluster: node Ready');
    }

    if (!running('kube-proxy')) {
      const config = join(dir, 'kube-proxy', 'config.yaml');
      await mkdir(join(dir, 'kube-proxy'), { recursive: true });
      await writeFile(
        config,
        stringify({
          apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
          kind: 'KubeProxyConfiguration',
          clientConnection: { kubeconfig: join(dir, 'kube-proxy.kubeconfig') },
          mode: 'iptables',
          clusterCIDR: '10.244.0.0/16',
          hostnameOverride: NODE_NAME,
          bindAddress: '0.0.0.0',
          healthzBindAddress: '127.0.0.1:10256',
          metricsBindAddress: '127.0.0.1:10249',
          // NodePorts only on the node address, never on the host's outside interface.
          nodePortAddresses: [`${NODE_IP}/32`],
          // Zero leaves the host's conntrack sysctls alone.
          conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
        }),
      );
      await this.daemon('kube-proxy', join(bin, 'kube-proxy'), [`--config=${config}`]);
      await this.until('kube-proxy', async () => (await fetch('http://127.0.0.1:10256/healthz')).ok);
    }
  }

  private async startContainerd(sock: string): Promise<void> {
    const c = join(this.dir, 'containerd');
    await mkdir(join(c, 'certs.d', REGISTRY), { recursive: true });
    await writeFile(
      join(c, 'certs.d', REGISTRY, 'hosts.toml'),
      `server = "http://${REGISTRY}"\n\n[host."http://${REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    await mkdir(join(this.dir, 'cni', 'net.d'), { recursive: true });
    // Pods get routes to the pod and service ranges only: nothing in the cluster can reach
    // beyond this host. portmap publishes hostPorts (how podstack exposes its APIs).
    await writeFile(
      join(this.dir, 'cni', 'net.d', '10-podstack.conflist'),
      JSON.stringify({
        cniVersion: '0.4.0',
        name: NETWORK,
        plugins: [
          {
            type: 'bridge',
            bridge: BRIDGE,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP }]],
              routes: [{ dst: '10.244.0.0/16' }, { dst: SERVICE_CIDR }],
              dataDir: join(this.dir, 'cni', 'ipam'),
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
      conf_dir = "${this.dir}/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "${c}/certs.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "${c}/opt"
`,
    );
    await this.daemon('containerd', 'containerd', ['--config', join(c, 'config.toml')]);
    await this.until('containerd', async () => (await ctr(sock, ['version'])).exitCode === 0);
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
    const create = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        if ((e as { code?: number }).code !== 409) throw e;
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

  private async startKubelet(sock: string): Promise<void> {
    const k = join(this.dir, 'kubelet');
    await mkdir(k, { recursive: true });
    await writeFile(join(k, 'resolv.conf'), 'nameserver 127.0.0.1\noptions ndots:1\n');
    await writeFile(
      join(k, 'config.yaml'),
      stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: NODE_IP,
        port: 10250,
        readOnlyPort: 0,
        healthzBindAddress: '127.0.0.1',
        healthzPort: 10248,
        tlsCertFile: join(this.pki, 'kubelet-server.crt'),
        tlsPrivateKeyFile: join(this.pki, 'kubelet-server.key'),
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: true },
          x509: { clientCAFile: join(this.pki, 'ca.crt') },
        },
        authorization: { mode: 'Webhook' },
        cgroupDriver: 'cgroupfs',
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
    await this.daemon('kubelet', join(this.bin, 'kubelet'), [
      `--config=${k}/config.yaml`,
      `--kubeconfig=${this.dir}/kubelet.kubeconfig`,
      `--root-dir=${k}/root`,
      `--cert-dir=${k}/pki`,
      '--container-runtime=remote',
      `--container-runtime-endpoint=unix://${sock}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NODE_IP}`,
    ]);
  }
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
  const stop = async (names: readonly Daemon[]) => {
    const running = names.flatMap((d) => (pid(d) ? [{ d, p: pid(d)! }] : []));
    for (const { p } of running) process.kill(p, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    const left = () => running.filter(({ d, p }) => alive(p, d));
    while (left().length > 0 && Date.now() < deadline) await sleep(100);
    for (const { p } of left()) process.kill(p, 'SIGKILL');
  };
  await stop(['kubelet', 'kube-proxy', 'kube-scheduler', 'cluster-feeder', 'dnsmasq', 'docker-registry']);
  const sock = join(stateDir, 'containerd', 'containerd.sock');
  // The pods' network namespaces, bind-mounted under /run/netns by containerd: nothing removes
  // them once the tasks are killed rather than torn down by the kubelet (35 had piled up here).
  const netns = pid('containerd') ? await podNetworkNamespaces(sock) : [];
  if (pid('containerd')) {
    const tasks = await ctr(sock, ['-n', 'k8s.io', 'tasks', 'ls', '-q']);
    for (const id of tasks.stdout.split('\n').filter(Boolean)) {
      await ctr(sock, ['-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', id]);
    }
    await sleep(500);
    for (const id of tasks.stdout.split('\n').filter(Boolean)) {
      await ctr(sock, ['-n', 'k8s.io', 'tasks', 'delete', '-f', id]);
    }
  }
  await stop(['containerd', 'kube-controller-manager', 'kube-apiserver', 'etcd']);
  // Shims outlive containerd by design; ours are the ones pointing at our socket.
  const shims = await exec('pgrep', ['-f', `containerd-shim.*${stateDir}`]);
  for (const p of shims.stdout.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {}
  }
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
