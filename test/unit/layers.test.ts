import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

/**
 * The layers of src/, lowest first: a module may import its own layer and those below it,
 * never one above (README, "Layout"). Files directly in src/ (errors, events, _fs...) are the
 * floor; index.ts, the library's entry, is the roof.
 */
const LAYERS = [
  'config',
  'spec',
  'model',
  'catalog',
  'plan',
  'revisions',
  'podman',
  'images',
  'engines',
  'host',
  'lifecycle',
  'cli',
];
const src = resolve(new URL('../../src', import.meta.url).pathname);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The layer of a file: its top folder under src/, -1 for the floor, Infinity for the entry. */
function layerOf(file: string): number {
  const rel = relative(src, file);
  if (rel === 'index.ts') return Number.POSITIVE_INFINITY;
  if (!rel.includes('/')) return -1;
  const layer = LAYERS.indexOf(rel.split('/')[0]!);
  assert.ok(layer >= 0, `${rel} is in no known layer: add its folder to LAYERS`);
  return layer;
}

describe('layers', () => {
  it('no module imports one of a higher layer, not even for types', () => {
    const wrong: string[] = [];
    for (const file of files(src)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
        const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        if (layerOf(target) > layerOf(file))
          wrong.push(`${relative(src, file)} imports ${relative(src, target)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('the Podman engine does not import the Kubernetes client (it is loaded for --engine kubernetes only)', () => {
    for (const file of files(join(src, 'engines', 'podman'))) {
      assert.ok(
        !/from '@kubernetes\/client-node'/.test(readFileSync(file, 'utf8').replace(/import type[^;]+;/g, '')),
        file,
      );
    }
  });
});
