import { stringify } from 'yaml';
import { cephxKey } from '../config/ceph.js';
import type { KubeObject } from '../model/objects.js';
import type { Plan, UnitChange } from '../model/unit.js';

/** apiVersion, kind, metadata first, then the rest sorted: the order people expect and diffs like. */
function ordered(value: unknown, top = true): unknown {
  if (Array.isArray(value)) return value.map((v) => ordered(v, false));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  const rank = (k: string) => (top ? ['apiVersion', 'kind', 'metadata'].indexOf(k) : -1);
  entries.sort(([a], [b]) => {
    const ra = rank(a);
    const rb = rank(b);
    if (ra >= 0 || rb >= 0) return (ra < 0 ? 99 : ra) - (rb < 0 ? 99 : rb);
    return a < b ? -1 : a > b ? 1 : 0;
  });
  return Object.fromEntries(entries.map(([k, v]) => [k, ordered(v, false)]));
}

/**
 * Secret values never leave podstack. Without `secrets`, printed Secrets keep their keys and
 * lose their values. With them (the cloud's secrets.yaml), a Secret's files are shown with each
 * secret value, and its URL-encoded form, replaced by `<secret:NAME>`: a config change reads as a
 * diff, and a file that is nothing but a secret reads `<secret:NAME>`. A file that is not text
 * stays `<redacted>`.
 */
export function redact(o: KubeObject, secrets?: Readonly<Record<string, string>>): KubeObject {
  if (o.kind !== 'Secret') return o;
  const { data, ...rest } = o;
  const masks = Object.entries(secrets ?? {})
    .flatMap(([name, value]) => [
      [value, name],
      [encodeURIComponent(value), name],
      // What a config file holds in place of the entry itself: Ceph's keys are derived from theirs.
      [cephxKey(value), name],
    ])
    // Longest first: a value that contains another is masked whole.
    .sort(([a], [b]) => b!.length - a!.length);
  const show = (encoded: string): string => {
    if (!secrets) return '<redacted>';
    const text = Buffer.from(encoded, 'base64').toString('utf8');
    if (text.includes('\uFFFD') || Buffer.from(text, 'utf8').toString('base64') !== encoded)
      return '<redacted>';
    return masks.reduce((t, [value, name]) => t.split(value!).join(`<secret:${name}>`), text);
  };
  const stringData = Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, show(v)]));
  return { ...rest, stringData };
}

/**
 * The plan as Kubernetes YAML, one document per object, in dependency order; Secrets as
 * `redact` shows them (give `secrets` to see config files with only the secret values masked).
 */
export function planToYaml(plan: Plan, secrets?: Readonly<Record<string, string>>): string {
  const docs: string[] = [];
  for (const unit of plan.units) {
    for (const o of unit.objects) {
      const body = stringify(ordered(redact(o, secrets)), { lineWidth: 0, version: '1.1' });
      docs.push(
        `# unit ${unit.name} (${unit.kind}, depends on: ${unit.dependsOn.join(', ') || 'nothing'})\n${body}`,
      );
    }
  }
  const note = secrets
    ? '# Secret values are masked (<secret:NAME>, from secrets.yaml): podstack up applies the real ones.'
    : '# Secret values are redacted: podstack up applies the real ones.';
  return `${note}\n---\n${docs.join('---\n')}`;
}

const SYMBOL: Record<UnitChange['action'], string> = {
  create: '+',
  update: '~',
  unchanged: '=',
  delete: '-',
};

const EFFECT: Record<NonNullable<UnitChange['effect']>['kind'], string> = {
  rolled: 'rolled, no outage',
  restarted: 'restarted, an outage',
  guests: 'STOPS GUESTS',
};

/** The plan as people read it: wave by wave, each unit with its objects and what will happen to it. */
export function planToText(plan: Plan, changes?: readonly UnitChange[]): string {
  const lines: string[] = [];
  const byUnit = new Map(changes?.map((c) => [c.unit, c]));
  plan.waves.forEach((wave, i) => {
    lines.push(`wave ${i + 1}:`);
    for (const name of wave) {
      const unit = plan.units.find((u) => u.name === name)!;
      const change = byUnit.get(name);
      const mark = change ? `${SYMBOL[change.action]} ` : '';
      const objects = unit.objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
      lines.push(`  ${mark}${name.padEnd(20)} ${unit.kind.padEnd(10)} ${unit.description}`);
      lines.push(`  ${' '.repeat(mark.length)}${' '.repeat(21)}${objects}`);
      if (unit.dependsOn.length > 0)
        lines.push(`  ${' '.repeat(mark.length + 21)}after: ${unit.dependsOn.join(', ')}`);
      for (const d of change?.details ?? []) lines.push(`  ${' '.repeat(mark.length + 21)}${d}`);
      if (change?.effect)
        lines.push(`  ${' '.repeat(mark.length + 21)}${EFFECT[change.effect.kind]}: ${change.effect.detail}`);
      // up dumps what a migration that runs again may move (lifecycle/snapshots.ts).
      if (change?.action === 'update' && unit.migrates?.length)
        lines.push(`  ${' '.repeat(mark.length + 21)}runs again: ${unit.migrates.join(', ')} dumped first`);
    }
  });
  for (const c of changes?.filter((x) => x.action === 'delete') ?? [])
    lines.push(`  - ${c.unit} (no longer in the plan)`);
  if (changes) {
    const count = (a: UnitChange['action']) => changes.filter((c) => c.action === a).length;
    lines.push('');
    lines.push(
      `${count('create')} to create, ${count('update')} to change, ${count('delete')} to remove, ${count('unchanged')} unchanged`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The run-time relationships as a Graphviz graph: services as clusters, jobs as boxes, config as notes. */
export function planToDot(plan: Plan): string {
  const shape = { deployment: 'ellipse', job: 'box', config: 'note' } as const;
  const services = [...new Set(plan.units.map((u) => u.service))];
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    `digraph ${q(plan.cloud)} {`,
    '  rankdir=LR;',
    '  node [fontname="Helvetica", fontsize=11];',
    '  edge [color="#555555"];',
  ];
  for (const s of services) {
    lines.push(`  subgraph ${q(`cluster_${s}`)} {`, `    label=${q(s)}; style=rounded; color="#888888";`);
    for (const u of plan.units.filter((x) => x.service === s)) {
      lines.push(`    ${q(u.name)} [shape=${shape[u.kind]}, tooltip=${q(u.description)}];`);
    }
    lines.push('  }');
  }
  for (const u of plan.units) for (const d of u.dependsOn) lines.push(`  ${q(d)} -> ${q(u.name)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
