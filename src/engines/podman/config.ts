import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileOrUndefined, writeFileIfChanged } from '../../_fs.js';
import type { ConfigMap, Secret } from '../../model/objects.js';
import type { PlannedUnit } from '../../model/unit.js';
import type { PodmanNames } from './translate.js';

/**
 * ConfigMaps and Secrets on Podman are host folders mounted read-only, one file a key, as the
 * kubelet projects them. Secrets are 0600 files in 0700 folders.
 */

export function configFiles(o: ConfigMap | Secret): Record<string, string> {
  if (o.kind === 'ConfigMap') return { ...(o.data ?? {}) };
  return Object.fromEntries(
    Object.entries(o.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

const configObjects = (unit: PlannedUnit) =>
  unit.objects.filter((o): o is ConfigMap | Secret => o.kind === 'Secret' || o.kind === 'ConfigMap');

/** Writes a unit's config folders; true when a file changed. */
export async function writeConfig(unit: PlannedUnit, names: PodmanNames): Promise<boolean> {
  let changed = false;
  for (const o of configObjects(unit)) {
    const dir = names.configDir(o.kind, o.metadata.name);
    const isSecret = o.kind === 'Secret';
    await mkdir(dir, { recursive: true, mode: isSecret ? 0o700 : 0o755 });
    const files = configFiles(o);
    for (const [key, content] of Object.entries(files)) {
      changed = (await writeFileIfChanged(join(dir, key), content, isSecret ? 0o600 : 0o644)) || changed;
    }
    for (const stale of (await readdir(dir)).filter((f) => !(f in files) && !f.endsWith('.tmp'))) {
      await rm(join(dir, stale), { force: true });
      changed = true;
    }
  }
  return changed;
}

/** The files of a unit's config that differ from the plan, as Kind/name: key (never their content). */
export async function configDiffers(unit: PlannedUnit, names: PodmanNames): Promise<string[]> {
  const out: string[] = [];
  for (const o of configObjects(unit)) {
    const dir = names.configDir(o.kind, o.metadata.name);
    for (const [key, content] of Object.entries(configFiles(o))) {
      if ((await readFileOrUndefined(join(dir, key))) !== content)
        out.push(`${o.kind}/${o.metadata.name}: ${key}`);
    }
  }
  return out;
}
