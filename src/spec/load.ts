import { isMap, isScalar, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import { SpecError, type SpecIssue } from '../errors.js';
import { readInputFile } from './files.js';
import { formatIssue, formatPath } from './issues.js';
import type { ServiceOptions } from './schema.js';
import { buildCloudSchema, type CloudSpec } from './schema.js';

/**
 * What the YAML library says when it refuses a document for safety (an alias-expansion bomb,
 * nesting too deep for the stack, an alias to nothing), as a sentence for the user.
 */
function yamlRefusal(err: unknown): string {
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  if (/alias count|resource exhaustion/i.test(message))
    return 'YAML refused: its aliases expand to too much data (an alias-expansion bomb?); write the values out instead';
  if (err instanceof RangeError) return 'YAML refused: nested too deeply';
  return `YAML: ${message}`;
}

/** Parses YAML text, returning its data and a function that locates a path in the text. */
export function parseYaml(text: string, file: string) {
  const lineCounter = new LineCounter();
  let doc: ReturnType<typeof parseDocument>;
  let data: unknown;
  try {
    // logLevel error: the library's warnings (a map used as a key) would go to stderr as Node
    // warnings; such a key is reported by the schema as an unknown key instead.
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
    if (doc.errors.length === 0) data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // The library throws (rather than reports) when it refuses a document for safety: that is
    // still the user's file, never a bug of podstack's.
    throw new SpecError(file, [{ path: '', message: yamlRefusal(err) }]);
  }
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
  const input = await readInputFile(file);
  if (input === undefined) {
    throw new SpecError(file, [
      { path: '', message: 'no such file; `podstack init` writes a commented one' },
    ]);
  }
  return parseCloud(input.text, file, catalog);
}
