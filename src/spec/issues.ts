import type { z } from 'zod';

/**
 * Turns zod's issues into sentences a person can act on: the field path, the bad
 * value, and what is allowed (with a "did you mean" for misspelt keys).
 */

type Segment = string | number;

/** services.keystone.config["keystone.conf"].DEFAULT.debug */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(seg)))
      out += out === '' ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

interface ZodDefLike {
  type: string;
  innerType?: ZodLike;
  shape?: Record<string, ZodLike>;
  valueType?: ZodLike;
  in?: ZodLike;
}
interface ZodLike {
  _zod: { def: ZodDefLike };
}

/** The keys an object schema allows at `path`, found by walking the schema itself. */
export function allowedKeysAt(schema: z.ZodType, path: readonly Segment[]): string[] {
  let cur: ZodLike | undefined = schema as unknown as ZodLike;
  const unwrap = (s: ZodLike | undefined): ZodLike | undefined => {
    let x = s;
    while (
      x &&
      ['default', 'prefault', 'optional', 'nullable', 'readonly', 'pipe'].includes(x._zod.def.type)
    ) {
      x = x._zod.def.innerType ?? x._zod.def.in;
    }
    return x;
  };
  for (const seg of path) {
    cur = unwrap(cur);
    if (!cur) return [];
    const def = cur._zod.def;
    if (def.type === 'object') cur = def.shape?.[String(seg)];
    else if (def.type === 'record') cur = def.valueType;
    else return [];
  }
  cur = unwrap(cur);
  return cur?._zod.def.type === 'object' ? Object.keys(cur._zod.def.shape ?? {}) : [];
}

/** Levenshtein distance, for suggesting the key the user probably meant. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

export function suggest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of allowed) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

export interface FormattedIssue {
  /** Path of the field the message is about (for unknown keys: the key itself). */
  readonly path: Segment[];
  readonly message: string;
  /** True when path names a key rather than a value (used to point at the key's line). */
  readonly atKey: boolean;
}

export function formatIssue(issue: z.core.$ZodIssue, schema: z.ZodType, data: unknown): FormattedIssue[] {
  const path = issue.path.filter((p): p is Segment => typeof p !== 'symbol');
  const got = describeValue(valueAt(data, path));
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, path);
      return issue.keys.map((key) => {
        const hint = suggest(key, allowed);
        const list = allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : '';
        return {
          path: [...path, key],
          message: `unknown key${hint ? `; did you mean "${hint}"?` : ''}${list}`,
          atKey: true,
        };
      });
    }
    case 'invalid_type':
      if (got === 'nothing') return [{ path, message: `is required (${issue.expected})`, atKey: false }];
      return [{ path, message: `got ${got}, expected ${issue.expected}`, atKey: false }];
    case 'invalid_value':
      return [
        {
          path,
          message: `got ${got}; allowed: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`,
          atKey: false,
        },
      ];
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? `at least ${issue.minimum}` : `at most ${issue.maximum}`;
      const what = issue.origin === 'string' ? `${bound} characters` : bound;
      return [{ path, message: `got ${got}; must be ${what}`, atKey: false }];
    }
    case 'invalid_union': {
      // Unions here are "'' or a host name": the most specific branch's message is the useful one.
      const inner = issue.errors.flat().find((e) => e.code !== 'invalid_value') ?? issue.errors.flat()[0];
      if (inner) return formatIssue({ ...inner, path: issue.path } as z.core.$ZodIssue, schema, data);
      return [{ path, message: `got ${got}: ${issue.message}`, atKey: false }];
    }
    case 'invalid_key': {
      // A record's key (a config section or option name) that is not allowed: the path ends
      // with the key itself, so name the key, not the value under it.
      const key = path[path.length - 1];
      const why = issue.issues[0]?.message ?? issue.message;
      return [{ path, message: `key ${JSON.stringify(String(key))} is not allowed: ${why}`, atKey: true }];
    }
    default:
      // A check of the whole file (a field that another one makes necessary) may be about a
      // field that is not in the file at all: then there is no value to name.
      if (got === 'nothing') return [{ path, message: issue.message, atKey: false }];
      return [{ path, message: `got ${got}: ${issue.message}`, atKey: false }];
  }
}
