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
    const pump = () => {
      if (errors.length === 0) {
        for (const [name, deps] of nodes) {
          if (running >= concurrency) break;
          if (started.has(name) || !deps.every((d) => done.has(d))) continue;
          started.add(name);
          running++;
          task(name).then(
            () => {
              done.add(name);
              running--;
              pump();
            },
            (err: unknown) => {
              errors.push(err);
              running--;
              pump();
            },
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
