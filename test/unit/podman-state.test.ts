import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cloudSubnet, gatewayOf } from '../../src/engines/podman/network.js';
import {
  classify,
  isCurrent,
  type PsEntry,
  podActions,
  workloadChange,
} from '../../src/engines/podman/state.js';
import { PODMAN_LABEL, type PodmanWorkload } from '../../src/engines/podman/translate.js';
import { LIMITS } from '../../src/engines/shared/limits.js';

const workload = (
  kind: 'deployment' | 'job',
  hash = 'h1',
  o: { podHash?: string; more?: string[]; guests?: boolean } = {},
): PodmanWorkload => ({
  unit: 'u',
  kind,
  hash,
  podHash: o.podHash ?? 'p1',
  sharePid: false,
  ...(o.guests ? { guests: { container: 'main', list: ['list'] } } : {}),
  name: 'c-u',
  aliases: [],
  publish: [],
  containers: [
    { name: 'main', role: 'main', args: [], hash },
    ...(o.more ?? []).map((name) => ({ name, role: 'main' as const, args: [], hash: 'h1' })),
  ],
  claims: [],
  scratch: [],
  backoffLimit: 2,
});
const entry = (state: string, o: Partial<PsEntry> & { name?: string; podHash?: string } = {}): PsEntry => {
  const { name, podHash, ...rest } = o;
  return {
    Id: name ?? 'id',
    Names: [`c-u-${name ?? 'main'}`],
    Labels: {
      [PODMAN_LABEL.hash]: 'h1',
      [PODMAN_LABEL.podHash]: podHash ?? 'p1',
      [PODMAN_LABEL.role]: 'main',
    },
    State: state,
    ExitCode: 0,
    Pod: '',
    PodName: 'c-u',
    ...rest,
  };
};
const secondsAgo = (s: number) => new Date(Date.now() - s * 1000).toISOString();

describe('podman unit state', () => {
  it('a running Deployment of the same hash is current, and its probe decides readiness', () => {
    const w = workload('deployment');
    assert.equal(isCurrent(w, [entry('running')]), true);
    assert.deepEqual(classify(w, [entry('running')]), { state: 'ready', probe: true });
  });

  it('a container that keeps restarting is failed, with its count, even while it is up', () => {
    const looping = entry('running', { Restarts: 5, ExitCode: 1, StartedAt: secondsAgo(2) });
    const c = classify(workload('deployment'), [looping]);
    assert.equal(c.state, 'failed');
    assert.match(c.reason ?? '', /keeps exiting \(restarted 5 times/);
    assert.equal(c.container, 'c-u-main', 'the container whose log says why');
    assert.equal(classify(workload('deployment'), [entry('running', { Restarts: 1 })]).state, 'ready');
  });

  it('restarts stop counting once the container has run for a while (the one crash rule)', () => {
    const stable = entry('running', { Restarts: 5, StartedAt: secondsAgo(LIMITS.stableSeconds + 5) });
    assert.equal(classify(workload('deployment'), [stable]).state, 'ready');
    const fresh = entry('running', { Restarts: 5, StartedAt: secondsAgo(LIMITS.stableSeconds - 5) });
    assert.equal(classify(workload('deployment'), [fresh]).state, 'failed');
  });

  it('up replaces a crash-looping or stopped container of a current pod, and only that one', () => {
    const w = workload('deployment', 'h1', { more: ['side'] });
    const looping = entry('running', { Restarts: 9, StartedAt: secondsAgo(1) });
    const side = entry('running', { name: 'side' });
    assert.equal(isCurrent(w, [looping, side]), false, 'a crash loop with an unchanged spec is repaired');
    assert.deepEqual(
      podActions(w, [looping, side]).containers.map((c) => c.action),
      ['replace', 'keep'],
    );
    const stopped = entry('exited', { ExitCode: 137 });
    assert.deepEqual(podActions(w, [stopped, side]).containers[0], {
      name: 'main',
      action: 'replace',
      why: 'it is exited',
    });
  });

  it('a changed container is replaced in the pod that stays; a changed pod is made again', () => {
    const w = workload('deployment', 'h2', { more: ['side'] });
    const a = podActions(w, [entry('running'), entry('running', { name: 'side' })]);
    assert.equal(a.pod, 'keep');
    assert.deepEqual(
      a.containers.map((c) => `${c.name}:${c.action}`),
      ['main:replace', 'side:keep'],
    );
    const moved = workload('deployment', 'h1', { podHash: 'p2' });
    assert.equal(podActions(moved, [entry('running')]).pod, 'replace');
    const gone = workload('deployment');
    assert.deepEqual(
      podActions(gone, [entry('running'), entry('running', { name: 'old' })]).containers.at(-1),
      { name: 'old', action: 'remove' },
    );
  });

  it('the plan says how a change reaches the running pod, and when it stops guests', () => {
    const node = (hash: string, podHash: string) => workload('deployment', hash, { podHash, guests: true });
    const rolled = workloadChange(node('h2', 'p1'), [entry('running')]);
    assert.equal(rolled.effect?.kind, 'rolled');
    assert.deepEqual(rolled.details, ['container main: replace (its spec or config changed)']);
    assert.equal(workloadChange(node('h1', 'p2'), [entry('running')]).effect?.kind, 'guests');
    assert.equal(
      workloadChange(workload('deployment', 'h1', { podHash: 'p2' }), [entry('running')]).effect?.kind,
      'restarted',
    );
    // A changed container of a plain Deployment stops, then starts; a queue worker's overlaps.
    assert.equal(workloadChange(workload('deployment', 'h2'), [entry('running')]).effect?.kind, 'restarted');
    const worker = { ...workload('deployment', 'h2'), overlap: { settleSeconds: 5, graceSeconds: 70 } };
    assert.equal(workloadChange(worker, [entry('running')]).effect?.kind, 'rolled');
  });

  it("a crash loop's reason is read from its log before Podman started it again, not after", () => {
    const started = secondsAgo(2);
    const again = classify(workload('deployment'), [
      entry('running', { Restarts: 5, ExitCode: 1, StartedAt: started }),
    ]);
    assert.equal(again.logUntil, started, "a running attempt's newest lines are its start, not the crash");
    const waiting = classify(workload('deployment'), [
      entry('exited', { Restarts: 5, ExitCode: 1, StartedAt: started }),
    ]);
    assert.equal(waiting.logUntil, undefined, 'an exited attempt ends with its own reason');
  });

  it('an older hash is outdated; nothing at all is missing', () => {
    assert.equal(classify(workload('deployment', 'h2'), [entry('running')]).state, 'outdated');
    assert.equal(classify(workload('deployment'), []).state, 'missing');
    assert.deepEqual(workloadChange(workload('job', 'h2'), [entry('exited')]), {
      action: 'update',
      details: ['spec or config changed'],
    });
  });

  it('a Job is completed when its container exited 0, failed otherwise', () => {
    const job = workload('job');
    assert.equal(classify(job, [entry('exited')]).state, 'completed');
    assert.equal(isCurrent(job, [entry('exited')]), true);
    assert.deepEqual(classify(job, [entry('exited', { ExitCode: 3 })]), {
      state: 'failed',
      reason: 'exit code 3',
      container: 'c-u-main',
    });
    assert.equal(isCurrent(job, [entry('exited', { ExitCode: 3 })]), false);
    assert.equal(classify(job, [entry('running')]).state, 'running');
  });
});

describe('podman cloud network', () => {
  it('gives each cloud its own /24 in the upper half of 10.89, or the one configured', () => {
    const a = cloudSubnet('podstack', '');
    assert.match(a, /^10\.89\.(1[2-9]\d|2[0-4]\d)\.0\/24$/);
    assert.notEqual(cloudSubnet('podstack-e2e', ''), a);
    assert.equal(cloudSubnet('podstack', '192.0.2.0/24'), '192.0.2.0/24');
  });

  it('puts the host at the first address', () => {
    assert.equal(gatewayOf('10.89.7.0/24'), '10.89.7.1');
    assert.equal(gatewayOf('172.20.0.0/16'), '172.20.0.1');
    assert.equal(gatewayOf('10.0.0.64/28'), '10.0.0.65');
  });
});
