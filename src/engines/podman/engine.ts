import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { GuestRestartError, NotRunningError, PodstackError } from '../../errors.js';
import type { Reporter } from '../../events.js';
import { LABEL } from '../../model/objects.js';
import type { Plan, PlannedUnit, UnitChange } from '../../model/unit.js';
import type { Podman } from '../../podman/runner.js';
import { fileRevisions, type RevisionStore } from '../../revisions/store.js';
import { LIMITS } from '../shared/limits.js';
import { runGraph } from '../shared/schedule.js';
import type { ApplyOptions, ApplyResult, DataAccess, Engine, ExecResult, UnitStatus } from '../types.js';
import { configDiffers, writeConfig } from './config.js';
import { ensureHostLink, type HostLink, removeHostLink } from './host-link.js';
import { gatewayOf } from './network.js';
import { WorkloadRunner } from './run.js';
import { classify, configChange, isCurrent, type PsEntry, podActions, workloadChange } from './state.js';
import {
  hostPathClaim,
  PODMAN_LABEL,
  type PodmanNames,
  type PodmanWorkload,
  podmanLabels,
  translatePlan,
} from './translate.js';

interface Observed {
  readonly byUnit: Map<string, PsEntry[]>;
  /** Pod name -> its address on the cloud's network, for pods that exist. */
  readonly addresses: Map<string, string>;
}

type InfraInspect = { NetworkSettings: { Networks?: Record<string, { IPAddress: string }> } };

export interface PodmanEngineOptions {
  readonly podman: Podman;
  readonly cloud: string;
  /** podstack's state for this cloud: config folders, logs. */
  readonly stateDir: string;
  /** The cloud network's subnet: the plan publishes internal endpoints on its gateway. */
  readonly subnet: string;
  /** The host's link to the external network, and the node pod's container that has br-ex. */
  readonly hostLink: {
    readonly link: HostLink;
    readonly enabled: boolean;
    readonly unit: string;
    readonly container: string;
  };
}

/**
 * Maps the plan onto Podman 4.3 (see translate.ts for how each kind of object is realised).
 * Podman has no controller: podstack itself starts units in dependency order and waits.
 */
export class PodmanEngine implements Engine {
  readonly name = 'podman' as const;
  readonly names: PodmanNames;
  private readonly podman: Podman;
  private readonly cloud: string;
  private readonly stateDir: string;
  private readonly subnet: string;
  private readonly hostLink: PodmanEngineOptions['hostLink'];
  private readonly runner: WorkloadRunner;
  private network: Promise<void> | undefined;
  private volumes: Promise<Set<string>> | undefined;

  constructor(o: PodmanEngineOptions) {
    this.podman = o.podman;
    this.cloud = o.cloud;
    this.stateDir = o.stateDir;
    this.subnet = o.subnet;
    this.hostLink = o.hostLink;
    this.names = {
      cloud: o.cloud,
      network: `${o.cloud}`,
      node: hostname(),
      volume: (claim) => `${o.cloud}-${claim}`,
      configDir: (kind, name) =>
        join(o.stateDir, 'objects', kind === 'Secret' ? 'secrets' : 'configmaps', name),
    };
    this.runner = new WorkloadRunner(this.podman, this.names, () => this.ensureNetwork());
  }

  private filterArgs(): string[] {
    return [
      '--filter',
      `label=${LABEL.managedBy}=podstack`,
      '--filter',
      `label=${LABEL.instance}=${this.cloud}`,
    ];
  }

  private async observe(): Promise<Observed> {
    const [containers, pods] = await Promise.all([
      this.podman.json<PsEntry[]>(['ps', '-a', '--format', 'json', ...this.filterArgs()]),
      this.podman.json<{ Name: string; InfraId: string }[]>([
        'pod',
        'ps',
        '--format',
        'json',
        ...this.filterArgs(),
      ]),
    ]);
    // One inspect for every pod's address: a no-op `up` probes each pod and must not pay per pod.
    const infra = pods.filter((p) => p.InfraId);
    const inspected =
      infra.length === 0
        ? []
        : await this.podman.json<InfraInspect[]>([
            'inspect',
            '--format',
            'json',
            ...infra.map((p) => p.InfraId),
          ]);
    const addresses = new Map<string, string>();
    infra.forEach((p, i) => {
      const ip = inspected[i]?.NetworkSettings.Networks?.[this.names.network]?.IPAddress;
      if (ip) addresses.set(p.Name, ip);
    });
    const byUnit = new Map<string, PsEntry[]>();
    for (const c of containers) {
      const unit = c.Labels?.[LABEL.unit];
      if (unit) byUnit.set(unit, [...(byUnit.get(unit) ?? []), c]);
    }
    return { byUnit, addresses };
  }

  /** The cloud's volumes, listed once, the first time a unit that is not current needs them. */
  private existingVolumes(): Promise<Set<string>> {
    // One label filter, the rest checked here: Podman 4.3's `volume ls` ORs its label filters,
    // so asking for managed-by=podstack and instance=<cloud> listed every podstack cloud's
    // volumes, and `down --purge` of one cloud deleted the data of all of them.
    this.volumes ??= this.podman
      .json<{ Name: string; Labels: Record<string, string> | null }[]>([
        'volume',
        'ls',
        '--format',
        'json',
        '--filter',
        `label=${LABEL.instance}=${this.cloud}`,
      ])
      .then(
        (vs) =>
          new Set(
            vs
              .filter(
                (v) =>
                  v.Labels?.[LABEL.managedBy] === 'podstack' && v.Labels?.[LABEL.instance] === this.cloud,
              )
              .map((v) => v.Name),
          ),
      );
    return this.volumes;
  }

  /** The unit's claims and the node folders (hostPaths) its pod uses, as labelled volumes. */
  private async ensureVolumes(unit: PlannedUnit, w: PodmanWorkload | undefined): Promise<void> {
    const claims = new Set([
      ...unit.objects.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name),
      ...(w?.claims ?? []),
    ]);
    for (const claim of claims) {
      const name = this.names.volume(claim);
      if (!(await this.existingVolumes()).has(name)) await this.createVolume(unit.name, claim);
    }
  }

  /** A claim's volume, labelled as the unit's: `down --purge` finds it by its labels. */
  private async createVolume(unit: string, claim: string): Promise<void> {
    const name = this.names.volume(claim);
    const labels = Object.entries(podmanLabels(this.cloud, unit, '')).filter(
      ([k]) => k !== PODMAN_LABEL.hash,
    );
    await this.podman.ok(['volume', 'create', ...labels.flatMap(([k, v]) => ['--label', `${k}=${v}`]), name]);
    (await this.existingVolumes()).add(name);
  }

  /** Creates the cloud's network the first time something needs it (a no-op `up` never asks). */
  private ensureNetwork(): Promise<void> {
    this.network ??= this.createNetwork();
    return this.network;
  }

  private async createNetwork(): Promise<void> {
    const existing = await this.podman.run(['network', 'inspect', this.names.network]);
    if (existing.exitCode === 0) {
      const [net] = JSON.parse(existing.stdout) as { subnets?: { subnet: string }[] }[];
      const subnets = (net?.subnets ?? []).map((s) => s.subnet);
      if (subnets.includes(this.subnet)) return;
      throw new PodstackError(
        `podman network ${this.names.network} has subnet ${subnets.join(', ') || 'none'}, but the cloud's is ${this.subnet}`,
        {
          hint: 'Run `podstack down` (data volumes stay), then `podstack up`: the network is made again with the right subnet.',
          exitCode: 2,
        },
      );
    }
    // A network per cloud: its DNS resolves pods by their Services' names (network aliases), and
    // its gateway, the host's address on it, carries the internal endpoints.
    const r = await this.podman.run([
      'network',
      'create',
      '--label',
      `${LABEL.managedBy}=podstack`,
      '--label',
      `${LABEL.instance}=${this.cloud}`,
      '--subnet',
      this.subnet,
      '--gateway',
      gatewayOf(this.subnet),
      this.names.network,
    ]);
    if (r.exitCode !== 0 && !/already exists/.test(r.stderr)) {
      throw new PodstackError(`cannot create podman network ${this.names.network}: ${r.stderr.trim()}`, {
        hint: 'If the subnet is taken by another network, choose another one in the cloud file: network.subnet.',
        exitCode: 2,
      });
    }
  }

  async apply(plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
    const o = {
      concurrency: 4,
      readyTimeout: LIMITS.readyTimeout,
      jobTimeout: LIMITS.jobTimeout,
      ...options,
    };
    const observed = await this.observe();
    const workloads = translatePlan(plan, this.names);
    if (!o.allowGuestRestart) await this.refuseGuestRestarts(workloads, observed);
    const changed: string[] = [];
    const unchanged: string[] = [];
    const units = new Map(plan.units.map((u) => [u.name, u]));
    await runGraph(
      new Map(plan.units.map((u) => [u.name, u.dependsOn])),
      async (name) => {
        const unit = units.get(name)!;
        const started = Date.now();
        const existing = observed.byUnit.get(name) ?? [];
        let didChange = await writeConfig(unit, this.names);
        const w = workloads.get(name);
        // A running current workload proves its volumes exist: a no-op `up` does not list them.
        if (!w || !isCurrent(w, existing)) await this.ensureVolumes(unit, w);
        if (w) {
          try {
            didChange = (await this.runner.apply(w, existing, o, observed.addresses)) || didChange;
          } catch (err) {
            o.report({ type: 'unit', unit: name, state: 'failed', seconds: (Date.now() - started) / 1000 });
            throw err;
          }
        }
        (didChange ? changed : unchanged).push(name);
        const state = !didChange ? 'unchanged' : unit.kind === 'job' ? 'completed' : 'ready';
        o.report({ type: 'unit', unit: name, state, seconds: (Date.now() - started) / 1000 });
      },
      o.concurrency,
    );
    const removed = await this.prune(plan, observed);
    for (const r of removed) o.report({ type: 'unit', unit: r, state: 'removed' });
    await this.linkHost(plan, o.report);
    return { changed, unchanged, removed };
  }

  /** The host's link to the external network, made (again) once the node pod runs; see host-link.ts. */
  private async linkHost(plan: Plan, report: Reporter): Promise<void> {
    const { link, enabled, unit, container } = this.hostLink;
    if (!enabled || !plan.units.some((u) => u.name === unit)) {
      await removeHostLink(this.cloud, link);
      return;
    }
    const why = await ensureHostLink({
      podman: this.podman,
      cloud: this.cloud,
      link,
      container: `${this.cloud}-${unit}-${container}`,
      report,
    });
    if (why)
      report({
        type: 'step',
        message: `warning: floating IPs answer in the node pod only, not on this host: ${why}`,
      });
  }

  /**
   * Refuses, before anything changes, a plan that would make a new pod where guests run (or
   * remove it), naming them: replacing a container of that pod keeps them, a new pod does not.
   */
  private async refuseGuestRestarts(
    workloads: ReadonlyMap<string, PodmanWorkload>,
    observed: Observed,
  ): Promise<void> {
    const refused: { unit: string; guests: string[]; why: string }[] = [];
    for (const w of workloads.values()) {
      const existing = observed.byUnit.get(w.unit) ?? [];
      if (!w.guests || !existing.some((e) => e.State === 'running')) continue;
      const a = podActions(w, existing);
      if (a.pod !== 'replace') continue;
      const guests = await this.guestsOf(`${w.name}-${w.guests.container}`, w.guests.list);
      if (guests.length > 0) refused.push({ unit: w.unit, guests, why: a.why ?? 'a new pod' });
    }
    if (refused.length > 0) throw new GuestRestartError(refused);
  }

  /** The guests a container runs, by the plan's own command for listing them. */
  private async guestsOf(container: string, list: readonly string[]): Promise<string[]> {
    if (list.length === 0) return ['(unknown: the plan gives no way to list them)'];
    const r = await this.podman.run(['exec', container, ...list]);
    if (r.exitCode !== 0) return [`(unknown: ${r.stderr.trim().split('\n').pop() ?? 'listing failed'})`];
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /** Removes what podstack created for units that left the plan. Volumes are data: they stay. */
  private async prune(plan: Plan, observed: Observed): Promise<string[]> {
    const wanted = new Set(plan.units.map((u) => u.name));
    const removed: string[] = [];
    for (const [unit, entries] of observed.byUnit) {
      if (wanted.has(unit)) continue;
      await this.runner.remove(`${this.cloud}-${unit}`, entries);
      removed.push(unit);
    }
    return removed;
  }

  async diff(plan: Plan): Promise<UnitChange[]> {
    const observed = await this.observe();
    const workloads = translatePlan(plan, this.names);
    const changes: UnitChange[] = [];
    for (const unit of plan.units) {
      const w = workloads.get(unit.name);
      const listed = observed.byUnit.get(unit.name) ?? [];
      // Restart counts: the plan shows a crash-looping container as one `up` will replace.
      const existing =
        w?.kind === 'deployment' && listed.length > 0 ? await this.runner.inspect(listed) : listed;
      const change = w ? workloadChange(w, existing) : configChange(await configDiffers(unit, this.names));
      changes.push({ unit: unit.name, ...change });
    }
    for (const unit of observed.byUnit.keys()) {
      if (!plan.units.some((u) => u.name === unit)) changes.push({ unit, action: 'delete', details: [] });
    }
    return changes;
  }

  async status(plan: Plan): Promise<UnitStatus[]> {
    const observed = await this.observe();
    const workloads = translatePlan(plan, this.names);
    return Promise.all(
      plan.units.map(async (unit): Promise<UnitStatus> => {
        const base = { unit: unit.name, service: unit.service, kind: unit.kind };
        const w = workloads.get(unit.name);
        if (!w) {
          const differs = await configDiffers(unit, this.names);
          return differs.length === 0
            ? { ...base, state: 'applied' }
            : { ...base, state: 'outdated', reason: `${differs.length} file(s) differ from the plan` };
        }
        return { ...base, ...(await this.workloadStatus(w, observed)) };
      }),
    );
  }

  /** A workload's state from its containers (with restart counts), its probe, and its log when failed. */
  private async workloadStatus(
    w: PodmanWorkload,
    observed: Observed,
  ): Promise<Pick<UnitStatus, 'state' | 'reason' | 'log'>> {
    const existing = observed.byUnit.get(w.unit) ?? [];
    const inspected =
      w.kind === 'deployment' && existing.length > 0
        ? await this.runner.inspect(existing).catch(() => existing)
        : existing;
    const c = classify(w, inspected.length > 0 ? inspected : existing);
    if (!c.probe) {
      const log = c.container ? await this.runner.logTail(c.container, 20, c.logUntil) : '';
      return { state: c.state, ...(c.reason ? { reason: c.reason } : {}), ...(log ? { log } : {}) };
    }
    try {
      const failed = await this.runner.probeOnce(w, await this.runner.podAddress(w, observed.addresses));
      return failed === undefined ? { state: 'ready' } : { state: 'not-ready', reason: failed };
    } catch (err) {
      return { state: 'not-ready', reason: (err as Error).message };
    }
  }

  // A node folder is a volume here (hostPathClaim): the same as a claim.
  readonly data: DataAccess = {
    exportFolder: (unit, path, file) => this.data.exportClaim(unit, hostPathClaim(path), file),
    hasFolder: (_unit, path) => this.data.hasClaim(hostPathClaim(path)),
    importFolder: (unit, path, file) => this.data.importClaim(unit, hostPathClaim(path), file),
    exportClaim: async (_unit, claim, file) => {
      await this.podman.ok(['volume', 'export', '--output', file, this.names.volume(claim)]);
    },
    hasClaim: async (claim) => (await this.existingVolumes()).has(this.names.volume(claim)),
    importClaim: async (unit, claim, file) => {
      const name = this.names.volume(claim);
      if ((await this.existingVolumes()).has(name))
        throw new PodstackError(`volume ${name} exists already: a restore makes it from the backup`, {
          exitCode: 2,
          hint: 'Restore onto a cloud that is not there: `podstack down --purge` first (it deletes the data).',
        });
      await this.createVolume(unit.name, claim);
      await this.podman.ok(['volume', 'import', name, file]);
    },
    copyOut: async (unit, container, path, hostPath) => {
      await this.podman.ok(['cp', `${await this.runningContainer(unit, container)}:${path}`, hostPath]);
    },
    copyIn: async (unit, container, hostPath, path) => {
      await this.podman.ok(['cp', hostPath, `${await this.runningContainer(unit, container)}:${path}`]);
    },
  };

  private async runningContainer(unit: string, container: string): Promise<string> {
    const running = await this.podman.json<PsEntry[]>([
      'ps',
      '--format',
      'json',
      ...this.filterArgs(),
      '--filter',
      `label=${LABEL.unit}=${unit}`,
      '--filter',
      'status=running',
    ]);
    const name = running.flatMap((e) => e.Names).find((n) => n.endsWith(`-${container}`));
    if (!name) throw new NotRunningError(unit, container);
    return name;
  }

  async exec(unit: string, container: string, command: readonly string[]): Promise<ExecResult> {
    const name = await this.runningContainer(unit, container);
    const r = await this.podman.run(['exec', name, ...command]);
    return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
  }

  revisions(): RevisionStore {
    return fileRevisions(this.stateDir);
  }

  async destroy(options: { purge: boolean; report: Reporter }): Promise<{ removed: string[] }> {
    const observed = await this.observe();
    const removed: string[] = [];
    await Promise.all(
      [...observed.byUnit].map(async ([unit, entries]) => {
        await this.runner.remove(`${this.cloud}-${unit}`, entries);
        removed.push(unit);
        options.report({ type: 'unit', unit, state: 'removed' });
      }),
    );
    // Pods created by an interrupted run may have no containers: find them by label.
    const pods = await this.podman.json<{ Name: string }[]>([
      'pod',
      'ps',
      '--format',
      'json',
      ...this.filterArgs(),
    ]);
    for (const p of pods) await this.podman.run(['pod', 'rm', '-f', p.Name]);
    await this.podman.run(['network', 'rm', '-f', this.names.network]);
    await removeHostLink(this.cloud, this.hostLink.link);
    await rm(join(this.stateDir, 'objects'), { recursive: true, force: true });
    // The pods' emptyDirs go with the pods (one label filter: see existingVolumes).
    const scratch = await this.podman.json<{ Name: string; Labels: Record<string, string> | null }[]>([
      'volume',
      'ls',
      '--format',
      'json',
      '--filter',
      `label=${PODMAN_LABEL.scratch}=true`,
    ]);
    for (const v of scratch.filter((v) => v.Labels?.[LABEL.instance] === this.cloud))
      await this.podman.run(['volume', 'rm', '-f', v.Name]);
    this.volumes = undefined;
    if (options.purge) {
      for (const v of await this.existingVolumes()) {
        await this.podman.ok(['volume', 'rm', '-f', v]);
        options.report({ type: 'step', message: `removed volume ${v}` });
      }
      await this.revisions().removeAll();
    }
    return { removed: removed.sort() };
  }
}
