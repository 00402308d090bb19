import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RollGate } from '../../src/engines/shared/roll-gate.js';
import { runGraph } from '../../src/engines/shared/schedule.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('runGraph', () => {
  it('runs independent tasks together and dependents after their dependencies', async () => {
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    await runGraph(
      new Map([
        ['a', []],
        ['b', []],
        ['c', ['a', 'b']],
      ]),
      async (n) => {
        running++;
        peak = Math.max(peak, running);
        log.push(`start ${n}`);
        await tick();
        log.push(`end ${n}`);
        running--;
      },
      4,
    );
    assert.equal(peak, 2);
    assert.ok(log.indexOf('start c') > log.indexOf('end a') && log.indexOf('start c') > log.indexOf('end b'));
  });

  it('respects the concurrency limit', async () => {
    let running = 0;
    let peak = 0;
    await runGraph(
      new Map(['a', 'b', 'c', 'd'].map((n) => [n, []])),
      async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
      },
      2,
    );
    assert.equal(peak, 2);
  });

  it('starts nothing new after a failure, lets running tasks finish, then throws', async () => {
    const finished: string[] = [];
    await assert.rejects(
      runGraph(
        new Map([
          ['bad', []],
          ['slow', []],
          ['after', ['bad']],
        ]),
        async (n) => {
          if (n === 'bad') throw new Error('bad failed');
          await tick();
          finished.push(n);
        },
        4,
      ),
      /bad failed/,
    );
    assert.deepEqual(finished, ['slow']);
  });
});

describe('RollGate', () => {
  it('runs one roll at a time, in the order they asked, and tells the waiting ones what they wait for', async () => {
    const gate = new RollGate();
    const said: string[] = [];
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    const roll = (unit: string) =>
      gate.turn(
        unit,
        (e) => void said.push(e.type === 'unit' ? `${e.unit}: ${e.detail}` : e.type),
        async () => {
          running++;
          peak = Math.max(peak, running);
          log.push(`${unit} start`);
          await tick();
          log.push(`${unit} end`);
          running--;
        },
      );
    const first = roll('keystone-api');
    await Promise.resolve();
    await Promise.all([first, roll('glance-api'), roll('neutron-api')]);
    assert.equal(peak, 1);
    assert.deepEqual(log, [
      'keystone-api start',
      'keystone-api end',
      'glance-api start',
      'glance-api end',
      'neutron-api start',
      'neutron-api end',
    ]);
    assert.deepEqual(said, [
      'glance-api: rolls after keystone-api: one server at a time',
      'neutron-api: rolls after keystone-api: one server at a time',
    ]);
  });

  it('starts no roll after one failed, and names it', async () => {
    const gate = new RollGate();
    const ran: string[] = [];
    const quiet = () => undefined;
    const results = await Promise.allSettled([
      gate.turn('keystone-api', quiet, async () => {
        ran.push('keystone-api');
        throw new Error('keystone-api crashed');
      }),
      gate.turn('glance-api', quiet, async () => void ran.push('glance-api')),
    ]);
    assert.deepEqual(ran, ['keystone-api']);
    assert.equal(results[1].status, 'rejected');
    assert.match(
      String((results[1] as PromiseRejectedResult).reason),
      /glance-api was not rolled: keystone-api failed/,
    );
  });
});
