import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cloudSubnet, gatewayOf } from '../../src/engines/podman/network.js';
import { classify, isCurrent, type PsEntry, workloadChange } from '../../src/engines/podman/state.js';
import { PODMAN_LABEL, type PodmanWorkload } from '../../src/engines/podman/translate.js';

const workload = (kind: 'deployment' | 'job', hash = 'h1'): PodmanWorkload => ({
  unit: 'u',
  kind,
  hash,
  name: 'c-u',
  aliases: [],
  publish: [],
  containers: [{ name: 'main', role: 'main', args: [] }],
  claims: [],
  scratch: [],
  backoffLimit: 2,
});
const entry = (state: string, o: Partial<PsEntry> = {}): PsEntry => ({
  Id: 'id',
  Names: ['c-u-main'],
  Labels: { [PODMAN_LABEL.hash]: 'h1', [PODMAN_LABEL.role]: 'main' },
  State: state,
  ExitCode: 0,
  Pod: '',
  PodName: 'c-u',
  ...o,
});

describe('podman unit state', () => {
  it('a running Deployment of the same hash is current, and its probe decides readiness', () => {
    const w = workload('deployment');
    assert.equal(isCurrent(w, [entry('running')]), true);
    assert.deepEqual(classify(w, [entry('running')]), { state: 'ready', probe: true });
  });

  it('a container that keeps restarting is failed, with its count, even while it is up', () => {
    const c = classify(workload('deployment'), [entry('running', { Restarts: 5, ExitCode: 1 })]);
    assert.equal(c.state, 'failed');
    assert.match(c.reason ?? '', /keeps exiting \(restarted 5 times/);
    assert.equal(c.container, 'c-u-main', 'the container whose log says why');
    assert.equal(classify(workload('deployment'), [entry('running', { Restarts: 1 })]).state, 'ready');
  });

  it("a crash loop's reason is read from its log before Podman started it again, not after", () => {
    const started = '2026-11-30T06:15:13.915287293Z';
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
    assert.deepEqual(workloadChange(workload('deployment', 'h2'), [entry('running')]), {
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
