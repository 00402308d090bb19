import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileIfChanged } from '../../_fs.js';
import { UnitFailedError } from '../../errors.js';
import type { Reporter } from '../../events.js';
import { runGraph } from '../../lifecycle/schedule.js';
import { type ConfigMap, LABEL, type Secret } from '../../plan/objects.js';
import type { Plan, PlannedUnit } from '../../plan/unit.js';
import type { Podman } from '../../podman/runner.js';
import type { ApplyOptions, ApplyResult, Engine, UnitChange, UnitStatus } from '../types.js';
import { probe } from './probe.js';
import {
  PODMAN_LABEL,
  type PodmanNames,
  type PodmanWorkload,
  podmanLabels,
  translatePlan,
} from './translate.js';

/** One container as `podman ps -a --format json` lists it. */
interface PsEntry {
  Id: string;
  Names: string[];
  Labels: Record<string, string> | null;
  State: string;
  ExitCode: number;
  Pod: string;
  PodName: string;
}

interface Observed {
  readonly byUnit: Map<string, PsEntry[]>;
  /** Pod name -> its address on the cloud's network, for pods that exist. */
  readonly addresses: Map<string, string>;
}

type InfraInspect = { NetworkSettings: { Networks?: Record<string, { IPAddress: string }> } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PodmanEngineOptions {
  readonly podman: Podman;
  readonly cloud: string;
  /** podstack's state for this cloud: config folders, logs. */
  readonly stateDir: string;
}

export class PodmanEngine implements Engine {
  readonly name = 'podman' as const;
  readonly names: PodmanNames;
  private readonly podman: Podman;
  private readonly cloud: string;
  private readonly stateDir: string;
  private network: Promise<void> | undefined;
  private volumes: Promise<Set<string>> | undefined;

  constructor(o: PodmanEngineOptions) {
    this.podman = o.podman;
    this.cloud = o.cloud;
    this.stateDir = o.stateDir;
    this.names = {
      cloud: o.cloud,
      network: `${o.cloud}`,
      volume: (claim) => `${o.cloud}-${claim}`,
      configDir: (kind, name) =>
        join(o.stateDir, 'objects', kind === 'Secret' ? 'secrets' : 'configmaps', name),
    };
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
      if (!unit) continue;
      byUnit.set(unit, [...(byUnit.get(unit) ?? []), c]);
    }
    return { byUnit, addresses };
  }

  /** Folder content of every ConfigMap and Secret of a unit, as files. Secrets are 0600 in a 0700 folder. */
  private async writeConfig(unit: PlannedUnit): Promise<boolean> {
    let changed = false;
    for (const o of unit.objects) {
      if (o.kind !== 'Secret' && o.kind !== 'ConfigMap') continue;
      const dir = this.names.configDir(o.kind, o.metadata.name);
      const isSecret = o.kind === 'Secret';
      await mkdir(dir, { recursive: true, mode: isSecret ? 0o700 : 0o755 });
      const files = configFiles(o);
      for (const [key, content] of Object.entries(files)) {
        changed = (await writeFileIfChanged(join(dir, key), content, isSecret ? 0o600 : 0o644)) || changed;
      }
      for (const stale of (await readdir(dir)).filter((f) => !(f in files) && !f.endsWith('.tmp'))) {
        await rm(join(dir, stale), { force: true });
        changed = true;
      }
    }
    return changed;
  }

  /** The cloud's volumes, listed once, the first time a unit that is not current needs them. */
  private existingVolumes(): Promise<Set<string>> {
    this.volumes ??= this.podman
      .json<{ Name: string }[]>(['volume', 'ls', '--format', 'json', ...this.filterArgs()])
      .then((vs) => new Set(vs.map((v) => v.Name)));
    return this.volumes;
  }

  private async ensureVolumes(unit: PlannedUnit): Promise<void> {
    for (const o of unit.objects) {
      if (o.kind !== 'PersistentVolumeClaim') continue;
      const name = this.names.volume(o.metadata.name);
      const existing = await this.existingVolumes();
      if (existing.has(name)) continue;
      const labels = Object.entries(podmanLabels(this.cloud, unit.name, '')).filter(
        ([k]) => k !== PODMAN_LABEL.hash,
      );
      await this.podman.ok([
        'volume',
        'create',
        ...labels.flatMap(([k, v]) => ['--label', `${k}=${v}`]),
        name,
      ]);
      existing.add(name);
    }
  }

  /** Creates the cloud's network the first time something needs it (a no-op `up` never asks). */
  private ensureNetwork(): Promise<void> {
    this.network ??= this.createNetwork();
    return this.network;
  }

  private async createNetwork(): Promise<void> {
    if ((await this.podman.run(['network', 'exists', this.names.network])).exitCode === 0) return;
    // A network per cloud: its DNS resolves pods by their Services' names (network aliases).
    const r = await this.podman.run([
      'network',
      'create',
      '--label',
      `${LABEL.managedBy}=podstack`,
      '--label',
      `${LABEL.instance}=${this.cloud}`,
      this.names.network,
    ]);
    if (r.exitCode !== 0 && !/already exists/.test(r.stderr)) {
      throw new Error(`cannot create podman network ${this.names.network}: ${r.stderr.trim()}`);
    }
  }

  private isCurrent(w: PodmanWorkload, existing: readonly PsEntry[]): boolean {
    const mains = w.containers.filter((c) => c.role === 'main').map((c) => `${w.name}-${c.name}`);
    const found = mains.map((n) => existing.find((e) => e.Names.includes(n)));
    if (found.some((e) => e === undefined || e.Labels?.[PODMAN_LABEL.hash] !== w.hash)) return false;
    if (w.kind === 'job') return found.every((e) => e!.State === 'exited' && e!.ExitCode === 0);
    return found.every((e) => e!.State === 'running');
  }

  private async removeUnit(name: string, existing: readonly PsEntry[]): Promise<void> {
    const pods = [...new Set(existing.map((e) => e.PodName).filter(Boolean))];
    for (const pod of pods) await this.podman.run(['pod', 'rm', '-f', '-t', '10', pod]);
    const loose = existing.filter((e) => !e.PodName).map((e) => e.Id);
    if (loose.length > 0) await this.podman.run(['rm', '-f', '-t', '10', ...loose]);
    // A pod left over from an interrupted run carries no containers yet; remove it by name too.
    await this.podman.run(['pod', 'rm', '-f', '-t', '10', name]);
  }

  private labelArgs(w: PodmanWorkload, extra: Record<string, string> = {}): string[] {
    return Object.entries({ ...podmanLabels(this.cloud, w.unit, w.hash), ...extra }).flatMap(([k, v]) => [
      '--label',
      `${k}=${v}`,
    ]);
  }

  private async logTail(container: string, lines = 30): Promise<string> {
    const r = await this.podman.run(['logs', '--tail', String(lines), container], { merge: true });
    return r.stdout.trim();
  }

  private async createPod(w: PodmanWorkload): Promise<void> {
    await this.podman.ok([
      'pod',
      'create',
      '--name',
      w.name,
      ...this.labelArgs(w),
      '--network',
      this.names.network,
      ...w.aliases.flatMap((a) => ['--network-alias', a]),
      ...(w.hostname ? ['--hostname', w.hostname] : []),
      ...w.publish.flatMap((p) => ['--publish', p]),
    ]);
  }

  /** Runs one container to completion (an init container, or a Job's), retrying as the Job allows. */
  private async runToCompletion(w: PodmanWorkload, name: string, timeoutSeconds: number): Promise<void> {
    const attempts = w.backoffLimit + 1;
    for (let attempt = 1; ; attempt++) {
      const r = await this.podman.run(['start', '--attach', name], { timeoutMs: timeoutSeconds * 1000 });
      const state = await this.podman.json<{ State: { ExitCode: number; Status: string } }[]>([
        'inspect',
        '--format',
        'json',
        name,
      ]);
      const code = state[0]?.State.ExitCode ?? r.exitCode;
      if (state[0]?.State.Status === 'exited' && code === 0) return;
      if (state[0]?.State.Status === 'running') {
        await this.podman.run(['stop', '-t', '5', name]);
        throw new UnitFailedError(
          w.unit,
          `${name} did not finish within ${timeoutSeconds}s`,
          await this.logTail(name),
        );
      }
      if (attempt >= attempts) {
        throw new UnitFailedError(
          w.unit,
          `${name} failed with exit code ${code}${attempts > 1 ? ` (${attempts} attempts)` : ''}`,
          await this.logTail(name),
        );
      }
      await sleep(1000 * attempt);
    }
  }

  private async createContainer(w: PodmanWorkload, c: PodmanWorkload['containers'][number]): Promise<string> {
    const name = `${w.name}-${c.name}`;
    const placement =
      w.kind === 'deployment'
        ? ['--pod', w.name, ...(c.role === 'main' ? ['--restart', 'always'] : [])]
        : [
            '--network',
            this.names.network,
            ...(w.hostname ? ['--hostname', w.hostname] : []),
            ...w.aliases.flatMap((a) => ['--network-alias', a]),
          ];
    await this.podman.ok([
      'create',
      '--name',
      name,
      ...this.labelArgs(w, { [PODMAN_LABEL.role]: c.role }),
      ...placement,
      ...c.args,
    ]);
    return name;
  }

  private async podAddress(w: PodmanWorkload, known?: ReadonlyMap<string, string>): Promise<string> {
    const cached = known?.get(w.name);
    if (cached) return cached;
    const pod = await this.podman.json<{ InfraContainerID?: string }>(['pod', 'inspect', w.name]);
    const infra = await this.podman.json<InfraInspect[]>([
      'inspect',
      '--format',
      'json',
      pod.InfraContainerID ?? '',
    ]);
    const ip = infra[0]?.NetworkSettings.Networks?.[this.names.network]?.IPAddress;
    if (!ip)
      throw new UnitFailedError(w.unit, `pod ${w.name} has no address on network ${this.names.network}`, '');
    return ip;
  }

  /** Waits until every main container passes its readiness probe; fails fast on a container that keeps dying. */
  private async waitReady(
    w: PodmanWorkload,
    timeoutSeconds: number,
    report: Reporter,
    known?: ReadonlyMap<string, string>,
  ): Promise<void> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    const mains = w.containers.filter((c) => c.role === 'main');
    const address = await this.podAddress(w, known);
    let last = 'not probed yet';
    let announced = false;
    for (let round = 0; ; round++) {
      const results = await Promise.all(
        mains.map((c) =>
          c.readiness
            ? probe(
                c.readiness,
                address,
                async (cmd) => (await this.podman.run(['exec', `${w.name}-${c.name}`, ...cmd])).exitCode,
              )
            : Promise.resolve({ ok: true, detail: '' }),
        ),
      );
      if (results.every((r) => r.ok)) return;
      last = results
        .filter((r) => !r.ok)
        .map((r) => r.detail)
        .join('; ');
      if (round > 0) await this.failIfDying(w, mains);
      if (Date.now() > deadline) {
        const logs = await Promise.all(mains.map((c) => this.logTail(`${w.name}-${c.name}`)));
        throw new UnitFailedError(w.unit, `not ready after ${timeoutSeconds}s (${last})`, logs.join('\n'));
      }
      if (!announced) {
        report({ type: 'unit', unit: w.unit, state: 'waiting', detail: last });
        announced = true;
      }
      await sleep(1000);
    }
  }

  /** A container that keeps exiting will never become ready: say so now, with its log, instead of at the timeout. */
  private async failIfDying(
    w: PodmanWorkload,
    mains: readonly PodmanWorkload['containers'][number][],
  ): Promise<void> {
    const states = await this.podman.json<
      { Name: string; RestartCount: number; State: { Status: string; ExitCode: number } }[]
    >(['inspect', '--format', 'json', ...mains.map((c) => `${w.name}-${c.name}`)]);
    const dying = states.find(
      (s) => s.RestartCount >= 3 || (s.State.Status === 'exited' && s.RestartCount >= 1),
    );
    if (dying) {
      throw new UnitFailedError(
        w.unit,
        `${dying.Name} keeps exiting (exit code ${dying.State.ExitCode}, restarted ${dying.RestartCount} times)`,
        await this.logTail(dying.Name),
      );
    }
  }

  private async applyWorkload(
    w: PodmanWorkload,
    existing: readonly PsEntry[],
    o: Required<Omit<ApplyOptions, 'report' | 'wait'>> & { report: Reporter },
    addresses: ReadonlyMap<string, string>,
  ): Promise<boolean> {
    if (this.isCurrent(w, existing)) {
      if (w.kind === 'deployment') await this.waitReady(w, o.readyTimeout, o.report, addresses);
      return false;
    }
    o.report({ type: 'unit', unit: w.unit, state: existing.length > 0 ? 'replacing' : 'creating' });
    await this.removeUnit(w.name, existing);
    await this.ensureNetwork();
    if (w.kind === 'deployment') await this.createPod(w);
    for (const c of w.containers) {
      const name = await this.createContainer(w, c);
      if (c.role === 'init' || w.kind === 'job') await this.runToCompletion(w, name, o.jobTimeout);
    }
    if (w.kind === 'deployment') {
      await this.podman.ok(['pod', 'start', w.name]);
      await this.waitReady(w, o.readyTimeout, o.report);
    }
    return true;
  }

  async apply(plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
    const o = { concurrency: 4, readyTimeout: 300, jobTimeout: 900, ...options };
    const observed = await this.observe();
    const workloads = translatePlan(plan, this.names);
    const changed: string[] = [];
    const unchanged: string[] = [];
    const units = new Map(plan.units.map((u) => [u.name, u]));
    await runGraph(
      new Map(plan.units.map((u) => [u.name, u.dependsOn])),
      async (name) => {
        const unit = units.get(name)!;
        if (!realizedOnPodman(unit)) return;
        const started = Date.now();
        let didChange = await this.writeConfig(unit);
        const w = workloads.get(name);
        // A running current workload proves its volumes exist: a no-op `up` does not list them.
        if (!w || !this.isCurrent(w, observed.byUnit.get(name) ?? [])) await this.ensureVolumes(unit);
        if (w) {
          try {
            didChange =
              (await this.applyWorkload(w, observed.byUnit.get(name) ?? [], o, observed.addresses)) ||
              didChange;
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
    return { changed, unchanged, removed };
  }

  /** Removes what podstack created for units that left the plan. Volumes are data: they stay. */
  private async prune(plan: Plan, observed: Observed): Promise<string[]> {
    const wanted = new Set(plan.units.map((u) => u.name));
    const removed: string[] = [];
    for (const [unit, entries] of observed.byUnit) {
      if (wanted.has(unit)) continue;
      await this.removeUnit(`${this.cloud}-${unit}`, entries);
      removed.push(unit);
    }
    return removed;
  }

  async diff(plan: Plan): Promise<UnitChange[]> {
    const observed = await this.observe();
    const workloads = translatePlan(plan, this.names);
    const changes: UnitChange[] = [];
    for (const unit of plan.units.filter(realizedOnPodman)) {
      const w = workloads.get(unit.name);
      const existing = observed.byUnit.get(unit.name) ?? [];
      const configChanged = await this.configDiffers(unit);
      if (w) {
        if (existing.length === 0) changes.push({ unit: unit.name, action: 'create', details: [] });
        else if (this.isCurrent(w, existing))
          changes.push({ unit: unit.name, action: 'unchanged', details: [] });
        else {
          const stale = existing.some((e) => e.Labels?.[PODMAN_LABEL.hash] !== w.hash);
          const details = stale
            ? ['spec or config changed']
            : [w.kind === 'job' ? 'did not complete' : 'not running'];
          changes.push({ unit: unit.name, action: 'update', details });
        }
      } else {
        changes.push({
          unit: unit.name,
          action: configChanged.length > 0 ? 'update' : 'unchanged',
          details: configChanged,
        });
      }
    }
    for (const unit of observed.byUnit.keys()) {
      if (!plan.units.some((u) => u.name === unit)) changes.push({ unit, action: 'delete', details: [] });
    }
    return changes;
  }

  private async configDiffers(unit: PlannedUnit): Promise<string[]> {
    const { readFileOrUndefined } = await import('../../_fs.js');
    const out: string[] = [];
    for (const o of unit.objects) {
      if (o.kind !== 'Secret' && o.kind !== 'ConfigMap') continue;
      const dir = this.names.configDir(o.kind, o.metadata.name);
      for (const [key, content] of Object.entries(configFiles(o))) {
        if ((await readFileOrUndefined(join(dir, key))) !== content)
          out.push(`${o.kind}/${o.metadata.name}: ${key}`);
      }
    }
    return out;
  }

  async status(plan: Plan): Promise<UnitStatus[]> {
    const observed = await this.observe();
    const workloads = translatePlan(plan, this.names);
    return Promise.all(
      plan.units.filter(realizedOnPodman).map(async (unit): Promise<UnitStatus> => {
        const base = { unit: unit.name, service: unit.service, kind: unit.kind };
        const w = workloads.get(unit.name);
        if (!w) {
          const differs = await this.configDiffers(unit);
          return differs.length === 0
            ? { ...base, state: 'applied' }
            : { ...base, state: 'outdated', reason: `${differs.length} file(s) differ from the plan` };
        }
        const existing = observed.byUnit.get(unit.name) ?? [];
        const mains = existing.filter((e) => e.Labels?.[PODMAN_LABEL.role] === 'main');
        if (mains.length === 0) return { ...base, state: 'missing', reason: 'not deployed' };
        const outdated = mains.some((e) => e.Labels?.[PODMAN_LABEL.hash] !== w.hash);
        if (w.kind === 'job') {
          const failed = mains.find((e) => e.State === 'exited' && e.ExitCode !== 0);
          if (failed) return { ...base, state: 'failed', reason: `exit code ${failed.ExitCode}` };
          if (mains.some((e) => e.State === 'running')) return { ...base, state: 'running' };
          if (outdated) return { ...base, state: 'outdated', reason: 'its inputs changed since it ran' };
          return { ...base, state: mains.every((e) => e.State === 'exited') ? 'completed' : 'not-ready' };
        }
        const down = mains.find((e) => e.State !== 'running');
        if (down) return { ...base, state: 'failed', reason: `${down.Names[0]} is ${down.State}` };
        try {
          const address = await this.podAddress(w, observed.addresses);
          for (const c of w.containers.filter((x) => x.role === 'main' && x.readiness)) {
            const r = await probe(
              c.readiness!,
              address,
              async (cmd) => (await this.podman.run(['exec', `${w.name}-${c.name}`, ...cmd])).exitCode,
            );
            if (!r.ok) return { ...base, state: 'not-ready', reason: r.detail };
          }
        } catch (err) {
          return { ...base, state: 'not-ready', reason: (err as Error).message };
        }
        return outdated
          ? { ...base, state: 'outdated', reason: 'running an older spec' }
          : { ...base, state: 'ready' };
      }),
    );
  }

  async destroy(options: { purge: boolean; report: Reporter }): Promise<{ removed: string[] }> {
    const observed = await this.observe();
    const removed: string[] = [];
    await Promise.all(
      [...observed.byUnit].map(async ([unit, entries]) => {
        await this.removeUnit(`${this.cloud}-${unit}`, entries);
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
    await rm(join(this.stateDir, 'objects'), { recursive: true, force: true });
    if (options.purge) {
      for (const v of await this.existingVolumes()) {
        await this.podman.ok(['volume', 'rm', '-f', v]);
        options.report({ type: 'step', message: `removed volume ${v}` });
      }
    }
    return { removed: removed.sort() };
  }
}

function configFiles(o: ConfigMap | Secret): Record<string, string> {
  if (o.kind === 'ConfigMap') return { ...(o.data ?? {}) };
  return Object.fromEntries(
    Object.entries(o.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

/**
 * Whether Podman has anything to do for a unit. Some units exist only for the cluster's own
 * machinery (the pods' read-only API access for waiting on their dependencies): on Podman,
 * podstack itself waits, so they are neither applied nor shown.
 */
const PODMAN_KINDS = new Set([
  'ConfigMap',
  'Secret',
  'Deployment',
  'Job',
  'Service',
  'PersistentVolumeClaim',
]);
function realizedOnPodman(unit: PlannedUnit): boolean {
  return unit.objects.some((o) => PODMAN_KINDS.has(o.kind));
}
