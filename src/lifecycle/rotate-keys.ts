import { ROTATION_CONTAINER, ROTATION_UNIT } from '../catalog/keystone.js';
import { PodstackError } from '../errors.js';
import type { Reporter } from '../events.js';
import { type EngineChoice, engineFor } from './engine.js';
import { openProject, type ProjectOptions } from './project.js';

export const KEY_KINDS = ['fernet', 'credential'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

export interface RotateKeysOptions extends Omit<ProjectOptions, 'engine'> {
  readonly report: Reporter;
  readonly engine?: EngineChoice;
  readonly kinds: readonly KeyKind[];
}

export interface Rotation {
  readonly kind: KeyKind;
  /** The key numbers after the rotation; the highest is the primary. */
  readonly keys: readonly number[];
  readonly seconds: number;
}

/**
 * Rotates Keystone's keys now, in the cloud's own rotation container (the one that rotates them
 * on schedule, so the two never run at once: the script holds a lock). Keystone reads its key
 * repository on every token operation: nothing restarts, and no token in use is refused. A
 * rotation by hand also starts the next interval: the schedule is the keys' own age.
 */
export async function rotateKeys(o: RotateKeysOptions): Promise<Rotation[]> {
  const project = await openProject({ ...o, engine: o.engine?.name ?? 'podman' });
  if (!project.plan.units.some((u) => u.name === ROTATION_UNIT)) {
    throw new PodstackError(`the cloud "${project.spec.name}" has no Keystone: it has no keys to rotate`, {
      exitCode: 2,
      hint: 'Set services.keystone.enabled to true (the default) and run `podstack up`.',
    });
  }
  const { engine } = await engineFor(project, o.engine);
  const done: Rotation[] = [];
  for (const kind of o.kinds) {
    o.report({ type: 'step', message: `rotating the ${kind} keys` });
    const started = performance.now();
    const r = await engine.exec(ROTATION_UNIT, ROTATION_CONTAINER, ['podstack-rotate-keys', kind]);
    if (r.exitCode !== 0) {
      const tail = (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n');
      throw new PodstackError(`rotating the ${kind} keys failed (exit ${r.exitCode}):\n${tail}`, {
        hint: 'The keys in use are unchanged unless the lines above say otherwise; run it again once the cause is fixed.',
      });
    }
    // The script's last line: "<kind> keys rotated: keys 0 1 2 3".
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const keys = (/keys rotated: keys ([\d ]+)$/.exec(line)?.[1] ?? '')
      .split(' ')
      .filter(Boolean)
      .map(Number);
    done.push({ kind, keys, seconds: (performance.now() - started) / 1000 });
  }
  return done;
}
