import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;

describe('the failures reporter (scripts/failures-reporter.mjs)', () => {
  it('ends the run with each failed test by its whole path and its error, and no passing test', () => {
    // Without NODE_TEST_CONTEXT: set, it makes the inner run speak TAP to this one and drop
    // its reporters.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        '--test-reporter=./scripts/failures-reporter.mjs',
        '--test-reporter-destination=stdout',
        'test/unit/__fixtures__/fails-twice.ts',
      ],
      { cwd: root, env, encoding: 'utf8' },
    );
    assert.notEqual(r.status, 0);
    const out = r.stdout;
    assert.match(out, /# 2 failed:/);
    assert.match(
      out,
      /FAILED test\/unit\/__fixtures__\/fails-twice\.ts > outer suite > inner suite > compares\n#\s+one is not two/,
    );
    assert.match(
      out,
      /FAILED test\/unit\/__fixtures__\/fails-twice\.ts > throws\n#\s+first line\n#\s+second line/,
    );
    assert.doesNotMatch(out, /FAILED .*passes/);
    assert.doesNotMatch(out, /FAILED .*outer suite\n/);
  });
});
