import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json and images/, whether running from src/ (tsx) or dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'images'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the podstack package root (package.json beside images/)');
    dir = up;
  }
  return dir;
}

/** podstack's own version, from its package.json. */
export function podstackVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
    .version;
}
