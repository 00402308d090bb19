import { ANNOTATION } from '../../model/objects.js';

/**
 * Which fields differ between a live object and what applying the plan would
 * make of it (the server's own dry-run answer), as dotted paths. Pure, so the
 * rules about what does not count are tested on their own.
 */

/** Fields the server writes on every object; they say nothing about the plan. */
const SERVER_METADATA = new Set([
  'resourceVersion',
  'managedFields',
  'generation',
  'uid',
  'creationTimestamp',
  'selfLink',
]);

/**
 * Annotations the controllers write, not the plan: the deployment controller's revision lands
 * between a read of the live object and the server's dry-run answer right after an apply, and the
 * diff then named it (seen once in CI on the API tier).
 */
const CONTROLLER_ANNOTATIONS = new Set([
  'deployment.kubernetes.io/revision',
  'deprecated.daemonset.template.generation',
  // podstack's record of its own last apply: it moves whenever something else does, and says
  // nothing a reader could use (an object applied before it existed gains it once, unseen).
  ANNOTATION.applied,
]);

export function changedFields(live: unknown, desired: unknown, limit = 20): string[] {
  const out: string[] = [];
  walk(strip(live), strip(desired), '', out, limit);
  return out;
}

function strip(o: unknown): unknown {
  if (!isRecord(o)) return o;
  const { status: _status, metadata, ...rest } = o;
  if (!isRecord(metadata)) return rest;
  const kept = Object.fromEntries(Object.entries(metadata).filter(([k]) => !SERVER_METADATA.has(k)));
  if (isRecord(kept.annotations)) {
    const own = Object.entries(kept.annotations).filter(([k]) => !CONTROLLER_ANNOTATIONS.has(k));
    if (own.length > 0) kept.annotations = Object.fromEntries(own);
    else delete kept.annotations;
  }
  return { ...rest, metadata: kept };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keys with dots (annotations, Secret keys) are bracketed so the path stays readable. */
function join(path: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${key}]`;
}

function walk(a: unknown, b: unknown, path: string, out: string[], limit: number): void {
  if (out.length >= limit) return;
  if (isRecord(a) && isRecord(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort())
      walk(a[key], b[key], join(path, key), out, limit);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((item, i) => {
      walk(item, b[i], `${path}[${i}]`, out, limit);
    });
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path === '' ? '(whole object)' : path);
}
