/**
 * Orders a dependency graph with Kahn's algorithm: waves of nodes whose
 * dependencies are all in earlier waves. Names are sorted inside a wave so the
 * output is deterministic. A cycle is reported with its full path.
 */
export function topologicalWaves(nodes: ReadonlyMap<string, readonly string[]>): string[][] {
  for (const [name, deps] of nodes) {
    for (const dep of deps) {
      if (!nodes.has(dep)) throw new Error(`${name} depends on ${dep}, which is not in the plan`);
    }
  }
  const remaining = new Map([...nodes].map(([n, deps]) => [n, new Set(deps)]));
  const waves: string[][] = [];
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, deps]) => deps.size === 0).map(([n]) => n);
    if (ready.length === 0) throw new Error(`dependency cycle: ${findCycle(remaining).join(' -> ')}`);
    ready.sort();
    waves.push(ready);
    for (const n of ready) remaining.delete(n);
    for (const deps of remaining.values()) for (const n of ready) deps.delete(n);
  }
  return waves;
}

function findCycle(graph: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const visiting: string[] = [];
  const done = new Set<string>();
  const visit = (n: string): string[] | undefined => {
    const at = visiting.indexOf(n);
    if (at >= 0) return [...visiting.slice(at), n];
    if (done.has(n)) return undefined;
    visiting.push(n);
    for (const d of [...(graph.get(n) ?? [])].sort()) {
      const cycle = visit(d);
      if (cycle) return cycle;
    }
    visiting.pop();
    done.add(n);
    return undefined;
  };
  for (const n of [...graph.keys()].sort()) {
    const cycle = visit(n);
    if (cycle) return cycle;
  }
  return [];
}
