/**
 * Runs a dependency graph of tasks: each task starts as soon as everything it
 * depends on has finished, up to `concurrency` at once. After a failure nothing
 * new starts; tasks already running are allowed to finish (a half-run bootstrap
 * Job is worse than a finished one), then the first error is thrown.
 */
export async function runGraph(
  nodes: ReadonlyMap<string, readonly string[]>,
  task: (name: string) => Promise<void>,
  concurrency: number,
): Promise<void> {
  const done = new Set<string>();
  const started = new Set<string>();
  const errors: unknown[] = [];
  let running = 0;
  await new Promise<void>((resolve) => {
    const ready = (name: string, deps: readonly string[]) =>
      !started.has(name) && deps.every((d) => done.has(d));
    const finish = (name: string) => (err?: unknown) => {
      if (err === undefined) done.add(name);
      else errors.push(err);
      running--;
      pump();
    };
    const pump = () => {
      if (errors.length === 0) {
        for (const [name, deps] of nodes) {
          if (running >= concurrency) break;
          if (!ready(name, deps)) continue;
          started.add(name);
          running++;
          task(name).then(
            () => finish(name)(),
            (err: unknown) => finish(name)(err ?? new Error(`${name} failed`)),
          );
        }
      }
      if (running === 0) resolve();
    };
    pump();
  });
  if (errors.length > 0) throw errors[0];
  const stuck = [...nodes.keys()].filter((n) => !done.has(n));
  if (stuck.length > 0) throw new Error(`never ran (unmet dependencies): ${stuck.join(', ')}`);
}

/** Runs `fn` over `items`, at most `limit` at once. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
