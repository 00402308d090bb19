// Run by test-reporter.test.ts under node:test: one nested failure, one passing test, one
// top-level failure, so the summary must name the whole path of each and only those.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

describe('outer suite', () => {
  it('passes', () => {});
  describe('inner suite', () => {
    it('compares', () => {
      assert.equal(1, 2, 'one is not two');
    });
  });
});
it('throws', () => {
  throw new Error('first line\nsecond line');
});
