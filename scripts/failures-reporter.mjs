// A node:test reporter that prints, once the run is over, each test that failed: its whole
// path (file, suites, name) and the first lines of its error. The TAP stream says the same in
// the middle of an hour of output, where a CI log cut to its tail loses it; this summary is
// the tail.
// Plain JavaScript (type-checked from its JSDoc): node:test loads reporters before a loader
// such as tsx is in place.
// @ts-check
import { relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

/** @param {unknown} error @param {number} count @returns {string} */
function firstLines(error, count) {
  const e = /** @type {{ cause?: unknown } | undefined} */ (error);
  // node:test wraps what a test threw in an ERR_TEST_FAILURE whose cause is the real error.
  const inner = /** @type {{ message?: string } | undefined} */ (e?.cause ?? e);
  const text = String(inner?.message ?? inner ?? 'no error message');
  return text.split('\n').slice(0, count).join('\n').trimEnd();
}

/**
 * @param {AsyncIterable<import('node:test/reporters').TestEvent>} source
 * @returns {AsyncGenerator<string>}
 */
export default async function* failures(source) {
  // Names of the suites that are open at each nesting level, per file.
  /** @type {Map<string, string[]>} */
  const open = new Map();
  /** @type {{ path: string, error: string }[]} */
  const failed = [];
  for await (const event of source) {
    if (event.type !== 'test:start' && event.type !== 'test:fail') continue;
    const data = /** @type {{ name: string, nesting: number, file?: string, details?: unknown }} */ (
      event.data
    );
    const file = data.file ? relative(root, data.file) : '';
    const stack = open.get(file) ?? [];
    if (event.type === 'test:start') {
      stack.length = data.nesting;
      stack[data.nesting] = data.name;
      open.set(file, stack);
      continue;
    }
    const details = /** @type {{ type?: string, error?: unknown }} */ (data.details);
    // A suite fails because a test in it did, and that test is listed already; or on its own
    // hook (before, after), which no test shows: that one is listed.
    const kind = /** @type {{ failureType?: string } | undefined} */ (details.error)?.failureType;
    if (details.type === 'suite' && kind === 'subtestsFailed') continue;
    const path = [file, ...stack.slice(0, data.nesting), data.name].filter(Boolean).join(' > ');
    failed.push({ path, error: firstLines(details.error, 12) });
  }
  if (failed.length === 0) return;
  yield `\n# ${failed.length} failed:\n`;
  for (const f of failed) {
    yield `#\n# FAILED ${f.path}\n${f.error
      .split('\n')
      .map((l) => `#   ${l}`)
      .join('\n')}\n`;
  }
}
