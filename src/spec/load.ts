import { readFile } from 'node:fs/promises';
import { isMap, isScalar, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import { SpecError, type SpecIssue } from '../errors.js';
import { formatIssue, formatPath } from './issues.js';
import type { ServiceOptions } from './schema.js';
import { buildCloudSchema, type CloudSpec } from './schema.js';

/** Parses YAML text, returning its data and a function that locates a path in the text. */
export function parseYaml(text: string, file: string) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SpecError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          path: '',
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
          line: pos.line,
          column: pos.col,
        };
      }),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  /** Line of the value at `path`, or of its key when `atKey`; undefined if not in the text. */
  const locate = (path: readonly (string | number)[], atKey: boolean) => {
    const parent = path.length === 0 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (!isMap(parent)) return undefined;
    const last = path[path.length - 1];
    const pair = (parent as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === last);
    const node = atKey ? pair?.key : (pair?.value ?? pair?.key);
    const offset = (node as { range?: [number, number, number] } | undefined)?.range?.[0];
    return offset === undefined ? undefined : lineCounter.linePos(offset);
  };
  return { data, locate };
}

/** Validates cloud file text: defaults filled in, or a SpecError listing every problem. */
export function parseCloud(text: string, file: string, catalog: readonly ServiceOptions[]): CloudSpec {
  const { data, locate } = parseYaml(text, file);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new SpecError(file, [
      { path: '', message: 'must be a map of settings (see `podstack init`)', line: 1 },
    ]);
  }
  const schema = buildCloudSchema(catalog);
  const result = schema.safeParse(data);
  if (result.success) return result.data as CloudSpec;
  const issues: SpecIssue[] = result.error.issues.flatMap((issue) =>
    formatIssue(issue, schema, data).map((f) => {
      const pos = locate(f.path, f.atKey) ?? locate(f.path.slice(0, -1), true);
      return {
        path: formatPath(f.path),
        message: f.message,
        ...(pos ? { line: pos.line, column: pos.col } : {}),
      };
    }),
  );
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  throw new SpecError(file, issues);
}

export async function loadCloud(file: string, catalog: readonly ServiceOptions[]): Promise<CloudSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SpecError(file, [
        { path: '', message: 'no such file; `podstack init` writes a commented one' },
      ]);
    }
    throw err;
  }
  return parseCloud(text, file, catalog);
}
