import { UnitFailedError } from '../../errors.js';
import type { Reporter } from '../../events.js';
import type { Podman } from '../../podman/runner.js';
import { isCrashing } from '../shared/limits.js';
import { sleep } from '../shared/poll.js';
import { probe } from './probe.js';
import {
  CHANGED,
  type ContainerAction,
  isCurrent,
  type PsEntry,
  podActions,
  restartedAt,
  runsOf,
} from './state.js';
import {
  PODMAN_LABEL,
  type PodmanNames,
  type PodmanWorkload,
  podmanLabels,
  type Surge,
} from './translate.js';

/**
 * An HTTP GET over a Unix socket, run in a container with python3 (every OpenStack image):
 * exit 0 for a 2xx or 3xx answer, as a readiness probe counts it. Arguments: the socket, the
 * path and the Host header (the probe's own, or localhost).
 */
const SOCKET_PROBE = [
  'import socket, sys',
  's = socket.socket(socket.AF_UNIX)',
  's.settimeout(5)',
  's.connect(sys.argv[1])',
  "s.sendall(f'GET {sys.argv[2]} HTTP/1.0\\r\\nHost: {sys.argv[3]}\\r\\n\\r\\n'.encode())",
  'line = s.recv(128).split(b"\\r\\n")[0].decode()',
  'print(line)',
  'sys.exit(0 if line.split()[1][0] in "23" else 1)',
].join('\n');

type InfraInspect = { NetworkSettings: { Networks?: Record<string, { IPAddress: string }> } };
type Container = PodmanWorkload['containers'][number];

export interface RunOptions {
  readonly report: Reporter;
  readonly readyTimeout: number;
  readonly jobTimeout: number;
}

/**
 * Runs one workload on Podman as Kubernetes would: a Deployment's containers in a pod that
 * restarts them, a Job's to completion with its retries, init containers first, and readiness
 * probed from the host, as the kubelet probes.
 */
export class WorkloadRunner {
  constructor(
    private readonly podman: Podman,
    private readonly names: PodmanNames,
    /** Called before the first pod or Job container is made (the network must exist). */
    private readonly beforeCreate: () => Promise<void>,
  ) {}

  /** Brings a workload to the plan; false when it already was (then only readiness is checked). */
  async apply(
    w: PodmanWorkload,
    existing: readonly PsEntry[],
    o: RunOptions,
    addresses: ReadonlyMap<string, string>,
  ): Promise<boolean> {
    if (w.kind === 'job') return this.applyJob(w, existing, o);
    // Restart counts decide whether a running container is healthy or crash-looping: `up`
    // replaces a broken container as it replaces a changed one.
    const seen = existing.length > 0 ? await this.inspect(existing) : existing;
    const a = podActions(w, seen);
    const touched = a.containers.filter((c) => c.action !== 'keep');
    if (a.pod === 'keep' && touched.length === 0) {
      await this.waitReady(w, o, addresses);
      return false;
    }
    if (a.pod === 'keep') {
      o.report({
        type: 'unit',
        unit: w.unit,
        state: 'replacing',
        detail: touched.map((c) => `${c.name}${c.why ? ` (${c.why})` : ''}`).join(', '),
      });
      await this.replaceContainers(w, a.containers, o);
      await this.waitReady(w, o, addresses);
      return true;
    }
    o.report({
      type: 'unit',
      unit: w.unit,
      state: existing.length > 0 ? 'replacing' : 'creating',
      ...(a.why && existing.length > 0 ? { detail: a.why } : {}),
    });
    await this.remove(w.name, existing);
    await this.beforeCreate();
    await this.emptyScratch(w);
    await this.createPod(w);
    for (const c of w.containers) {
      const name = await this.createContainer(w, c);
      if (c.role === 'init') await this.runToCompletion(w, name, o.jobTimeout);
    }
    await this.podman.ok(['pod', 'start', w.name]);
    await this.waitReady(w, o);
    return true;
  }

  /**
   * Replaces some containers of a pod that stays, one at a time, in the pod's order: its
   * namespaces, volumes and the other containers (and what they run: guests) go on.
   */
  private async replaceContainers(
    w: PodmanWorkload,
    actions: readonly ContainerAction[],
    o: RunOptions,
  ): Promise<void> {
    for (const a of actions) {
      const name = `${w.name}-${a.name}`;
      if (a.action === 'keep') continue;
      const c = w.containers.find((x) => x.name === a.name);
      // A changed API that runs well is rolled; a broken one has nothing to keep serving.
      if (a.action === 'replace' && c && w.surge && c.readiness?.httpGet && a.why === CHANGED) {
        await this.surge(w, c, w.surge, o);
        continue;
      }
      if (a.action === 'replace' && c && w.overlap && a.why === CHANGED) {
        await this.overlap(w, c, w.overlap, o);
        continue;
      }
      if (a.action !== 'create') await this.podman.run(['rm', '-f', '-t', '10', name]);
      if (a.action === 'remove' || !c) continue;
      await this.createContainer(w, c);
      await this.podman.ok(['start', name]);
    }
  }

  /**
   * Rolls an API with no failed request: the new generation starts beside the old one, takes
   * the same listening socket from the pod's listener (catalog uwsgiPod) or binds its own beside
   * the old one's (SO_REUSEPORT), is asked alone whether it is ready, and only then is the old
   * one stopped, gracefully: it finishes what it has, and what is queued stays in the one queue
   * for the new one (or moves to the new one's, tcp_migrate_req). If the new one never gets
   * ready it is removed and the old one goes on serving.
   */
  private async surge(w: PodmanWorkload, c: Container, surge: Surge, o: RunOptions): Promise<void> {
    const { name, next } = await this.startBeside(w, c);
    const deadline = Date.now() + o.readyTimeout * 1000;
    for (let said = false; ; ) {
      const why = await this.servesAlone(next, c, surge);
      if (why === undefined) break;
      if (Date.now() > deadline || !(await this.isRunning(next)))
        await this.abandon(w, next, `the new ${c.name} did not get ready (${why}); the old one still serves`);
      if (!said) {
        this.reportBeside(w, c, o);
        said = true;
      }
      await sleep(500);
    }
    await this.retire(w, c, { name, next, graceSeconds: 30, finished: 'its requests' }, o);
  }

  /**
   * Whether a next generation serves, asked of it alone (both generations answer on the pod's
   * port): undefined when it does, else what it said so far.
   */
  private async servesAlone(next: string, c: Container, surge: Surge): Promise<string | undefined> {
    if ('logged' in surge) {
      const log = await this.podman.run(['logs', next], { merge: true });
      return log.stdout.includes(surge.logged) ? undefined : `no "${surge.logged}" in its log yet`;
    }
    const probe = c.readiness!.httpGet!;
    const host = probe.httpHeaders?.find((h) => h.name.toLowerCase() === 'host')?.value ?? 'localhost';
    const r = await this.podman.run(
      ['exec', next, 'python3', '-c', SOCKET_PROBE, surge.socket, probe.path ?? '/', host],
      { merge: true },
    );
    return r.exitCode === 0 ? undefined : (r.stdout.trim().split('\n').pop() ?? '');
  }

  /**
   * Replaces a worker that takes its calls from RabbitMQ queues: the new one starts beside the
   * old one and must still run after a few seconds (a config it cannot read ends it at once);
   * then the old one is stopped with time to finish the calls it took (oslo.service waits for
   * them on SIGTERM, up to graceful_shutdown_timeout, 60 s). Calls not yet taken wait in the
   * queue for whichever of the two takes them next: none is lost, as stopping the old one
   * first with 10 s would lose a call it was still making.
   */
  private async overlap(
    w: PodmanWorkload,
    c: Container,
    roll: NonNullable<PodmanWorkload['overlap']>,
    o: RunOptions,
  ): Promise<void> {
    const { name, next } = await this.startBeside(w, c);
    this.reportBeside(w, c, o);
    await sleep(roll.settleSeconds * 1000);
    // Ready (connected to its queues, asked of it alone): until then the old one is all there is.
    const deadline = Date.now() + o.readyTimeout * 1000;
    for (;;) {
      if (!(await this.isRunning(next)))
        await this.abandon(w, next, `the new ${c.name} did not keep running; the old one still works`);
      const why = await this.readyAlone(next, c);
      if (why === undefined) break;
      if (Date.now() > deadline)
        await this.abandon(w, next, `the new ${c.name} did not get ready (${why}); the old one still works`);
      await sleep(1000);
    }
    await this.retire(w, c, { name, next, graceSeconds: roll.graceSeconds, finished: 'its calls' }, o);
  }

  /** A next generation's own exec readiness probe: undefined when it passes (or it has none). */
  private async readyAlone(next: string, c: Container): Promise<string | undefined> {
    if (!c.readiness?.exec) return undefined;
    const r = await probe(c.readiness, '', this.execIn(next));
    return r.ok ? undefined : r.detail;
  }

  /** An exec probe's command, run in a container. */
  private execIn(container: string) {
    return async (cmd: readonly string[]) => {
      const r = await this.podman.run(['exec', container, ...cmd], { merge: true });
      return { exitCode: r.exitCode ?? -1, output: r.stdout };
    };
  }

  /** Starts a container's next generation in its pod, beside the one that runs (surge, overlap). */
  private async startBeside(w: PodmanWorkload, c: Container): Promise<{ name: string; next: string }> {
    const name = `${w.name}-${c.name}`;
    const next = `${name}-next`;
    await this.podman.run(['rm', '-f', '-t', '0', next]);
    await this.createContainer(w, c, next);
    await this.podman.ok(['start', next]);
    return { name, next };
  }

  private reportBeside(w: PodmanWorkload, c: Container, o: RunOptions): void {
    o.report({
      type: 'unit',
      unit: w.unit,
      state: 'waiting',
      detail: `the new ${c.name} starts beside the old one`,
    });
  }

  private async isRunning(container: string): Promise<boolean> {
    const [state] = await this.podman.json<{ State: { Status: string } }[]>([
      'inspect',
      '--format',
      'json',
      container,
    ]);
    return state?.State.Status === 'running';
  }

  /** Removes a next generation that failed, with its log in the error; the old one runs on. */
  private async abandon(w: PodmanWorkload, next: string, why: string): Promise<never> {
    const log = await this.logTail(next);
    await this.podman.run(['rm', '-f', '-t', '0', next]);
    throw new UnitFailedError(w.unit, why, log);
  }

  /** Stops the old generation gracefully, then gives its name to the next one. */
  private async retire(
    w: PodmanWorkload,
    c: Container,
    g: { name: string; next: string; graceSeconds: number; finished: string },
    o: RunOptions,
  ): Promise<void> {
    const draining = Date.now();
    await this.podman.run(['stop', '-t', String(g.graceSeconds), g.name]);
    o.report({
      type: 'unit',
      unit: w.unit,
      state: 'waiting',
      detail: `the old ${c.name} finished ${g.finished} and stopped in ${((Date.now() - draining) / 1000).toFixed(1)}s`,
    });
    await this.podman.run(['rm', '-f', g.name]);
    await this.podman.ok(['rename', g.next, g.name]);
  }

  private async applyJob(w: PodmanWorkload, existing: readonly PsEntry[], o: RunOptions): Promise<boolean> {
    if (isCurrent(w, existing)) return false;
    const running = existing.find((e) => e.State === 'running');
    if (running) {
      // A bootstrap Job still running (another podstack started it) is waited for, never killed:
      // a half-run bootstrap is worse than a finished one.
      o.report({
        type: 'unit',
        unit: w.unit,
        state: 'waiting',
        detail: `${running.Names[0]} is still running`,
      });
      await this.podman.run(['wait', running.Id], { timeoutMs: o.jobTimeout * 1000 });
    }
    o.report({ type: 'unit', unit: w.unit, state: existing.length > 0 ? 'replacing' : 'creating' });
    await this.remove(w.name, existing);
    await this.beforeCreate();
    for (const c of w.containers) {
      const name = await this.createContainer(w, c);
      await this.runToCompletion(w, name, o.jobTimeout);
    }
    return true;
  }

  async remove(name: string, existing: readonly PsEntry[]): Promise<void> {
    const pods = [...new Set(existing.map((e) => e.PodName).filter(Boolean))];
    for (const pod of pods) await this.podman.run(['pod', 'rm', '-f', '-t', '10', pod]);
    const loose = existing.filter((e) => !e.PodName).map((e) => e.Id);
    if (loose.length > 0) await this.podman.run(['rm', '-f', '-t', '10', ...loose]);
    // A pod left over from an interrupted run carries no containers yet; remove it by name too.
    await this.podman.run(['pod', 'rm', '-f', '-t', '10', name]);
  }

  /** A new pod's emptyDirs start empty, as on Kubernetes: stale sockets and pid files go with the old pod. */
  private async emptyScratch(w: PodmanWorkload): Promise<void> {
    const labels = Object.entries(podmanLabels(this.names.cloud, w.unit, '')).filter(
      ([k]) => k !== PODMAN_LABEL.hash,
    );
    for (const volume of w.scratch) {
      await this.podman.run(['volume', 'rm', '-f', volume]);
      await this.podman.ok([
        'volume',
        'create',
        ...labels.flatMap(([k, v]) => ['--label', `${k}=${v}`]),
        '--label',
        `${PODMAN_LABEL.scratch}=true`,
        volume,
      ]);
    }
  }

  /** The last lines of a container's log (all its runs), or the last ones before `until`. */
  async logTail(container: string, lines = 30, until?: string): Promise<string> {
    if (until === undefined) {
      const r = await this.podman.run(['logs', '--tail', String(lines), container], { merge: true });
      return r.stdout.trim();
    }
    // `podman logs` applies --tail before --until: the newest lines, all after `until`, would
    // leave nothing. So a window of the ten minutes before it, cut here.
    const since = new Date(new Date(until).getTime() - 600_000).toISOString();
    const r = await this.podman.run(['logs', '--since', since, '--until', until, container], {
      merge: true,
    });
    return r.stdout.trim().split('\n').slice(-lines).join('\n');
  }

  /** The pod's address on the cloud's network, where its probes are sent. */
  async podAddress(w: PodmanWorkload, known?: ReadonlyMap<string, string>): Promise<string> {
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

  /** Runs a workload's readiness probes once: the first failure, or undefined when all pass. */
  async probeOnce(w: PodmanWorkload, address: string): Promise<string | undefined> {
    const mains = w.containers.filter((c) => c.role === 'main' && c.readiness);
    const results = await Promise.all(
      mains.map((c) => probe(c.readiness!, address, this.execIn(`${w.name}-${c.name}`))),
    );
    const failed = results.filter((r) => !r.ok);
    return failed.length === 0 ? undefined : failed.map((r) => r.detail).join('; ');
  }

  private labelArgs(w: PodmanWorkload, c?: Container): string[] {
    const labels = {
      ...podmanLabels(this.names.cloud, w.unit, c?.hash ?? w.hash),
      ...(w.kind === 'deployment' ? { [PODMAN_LABEL.podHash]: w.podHash } : {}),
      ...(c ? { [PODMAN_LABEL.role]: c.role } : {}),
    };
    return Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
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
      // Guests' QEMU outlives libvirtd's container only in a PID namespace the pod owns.
      ...(w.sharePid ? ['--share', 'ipc,net,uts,pid'] : []),
      // A listener that restarts, or an eventlet API's new generation, binds its port again
      // beside a socket that is still open; when that one closes, connections queued there move
      // to the new socket instead of being reset (Linux 5.14+; per network namespace, so per pod).
      ...(w.surge ? ['--sysctl', 'net.ipv4.tcp_migrate_req=1'] : []),
    ]);
  }

  private async createContainer(w: PodmanWorkload, c: Container, as?: string): Promise<string> {
    const name = as ?? `${w.name}-${c.name}`;
    const placement =
      w.kind === 'deployment'
        ? ['--pod', w.name, ...(c.role === 'main' ? ['--restart', 'always'] : [])]
        : [
            '--network',
            this.names.network,
            ...(w.hostname ? ['--hostname', w.hostname] : []),
            ...w.aliases.flatMap((a) => ['--network-alias', a]),
          ];
    await this.podman.ok(['create', '--name', name, ...this.labelArgs(w, c), ...placement, ...c.args]);
    return name;
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

  /** Waits until every main container passes its readiness probe; fails fast on one that keeps dying. */
  private async waitReady(
    w: PodmanWorkload,
    o: RunOptions,
    known?: ReadonlyMap<string, string>,
  ): Promise<void> {
    const deadline = Date.now() + o.readyTimeout * 1000;
    const address = await this.podAddress(w, known);
    let announced = false;
    for (let round = 0; ; round++) {
      const failed = await this.probeOnce(w, address);
      if (failed === undefined) return;
      if (round > 0) await this.failIfDying(w);
      if (Date.now() > deadline) {
        const mains = w.containers.filter((c) => c.role === 'main');
        const logs = await Promise.all(mains.map((c) => this.logTail(`${w.name}-${c.name}`)));
        throw new UnitFailedError(w.unit, `not ready after ${o.readyTimeout}s (${failed})`, logs.join('\n'));
      }
      if (!announced) {
        o.report({ type: 'unit', unit: w.unit, state: 'waiting', detail: failed });
        announced = true;
      }
      await sleep(1000);
    }
  }

  /** A container that keeps exiting will never become ready: say so now, with its log, instead of at the timeout. */
  private async failIfDying(w: PodmanWorkload): Promise<void> {
    const mains = await this.inspect(await this.mainsOf(w));
    const dying = mains.find(
      (e) => isCrashing(runsOf(e)) || (e.State === 'exited' && (e.Restarts ?? 0) >= 1),
    );
    if (!dying) return;
    const name = dying.Names[0] ?? w.name;
    throw new UnitFailedError(
      w.unit,
      `${name} keeps exiting (exit code ${dying.ExitCode}, restarted ${dying.Restarts} times)`,
      await this.logTail(name, 30, restartedAt(dying)),
    );
  }

  /** The workload's main containers that exist, as `podman ps` lists them. */
  async mainsOf(w: PodmanWorkload): Promise<PsEntry[]> {
    return this.podman.json<PsEntry[]>([
      'ps',
      '-a',
      '--format',
      'json',
      '--filter',
      `pod=${w.name}`,
      '--filter',
      `label=${PODMAN_LABEL.role}=main`,
    ]);
  }

  /** Containers as PsEntry, with their restart counts and start times (which `podman ps` does not give). */
  async inspect(entries: readonly PsEntry[]): Promise<PsEntry[]> {
    if (entries.length === 0) return [];
    const states = await this.podman.json<
      {
        Id: string;
        Name: string;
        RestartCount: number;
        Pod: string;
        Config: { Labels: Record<string, string> | null };
        State: { Status: string; ExitCode: number; StartedAt: string };
      }[]
    >(['inspect', '--format', 'json', ...entries.map((e) => e.Id)]);
    return states.map((s) => {
      const listed = entries.find((e) => e.Id === s.Id);
      return {
        Id: s.Id,
        Names: [s.Name],
        Labels: s.Config.Labels,
        State: s.State.Status,
        ExitCode: s.State.ExitCode,
        Pod: s.Pod,
        PodName: listed?.PodName ?? '',
        Restarts: s.RestartCount,
        StartedAt: s.State.StartedAt,
      };
    });
  }
}
