import { PodstackError } from '../errors.js';

/**
 * What a preflight finds: something the plan needs that the place it is going to (a cluster, a
 * registry) does not have, and what to do about it. A preflight lists every problem at once, so
 * that one run names everything to fix.
 */
export interface PreflightProblem {
  /** What is missing, and what of the plan needs it. */
  readonly what: string;
  /** What to do about it: a setting of the cloud file, or a command for whoever runs the cluster. */
  readonly fix: string;
}

/**
 * Invalid input for this target (exit code 2), found before anything was built, pushed or
 * applied: by construction nothing has been touched.
 */
export class PreflightError extends PodstackError {
  readonly problems: readonly PreflightProblem[];

  constructor(target: string, problems: readonly PreflightProblem[]) {
    const n = problems.length;
    super(
      `${target} cannot take this cloud (${n} problem${n === 1 ? '' : 's'}):\n${problems
        .map((p) => `  - ${p.what}\n    fix: ${p.fix}`)
        .join('\n')}`,
      {
        exitCode: 2,
        hint: 'Fix what is named above and run the command again; nothing was built, pushed or applied.',
      },
    );
    this.problems = problems;
  }
}
