import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
