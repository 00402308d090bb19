/**
 * Three tiers of errors, as changesets does: the library throws domain errors
 * (subclasses of PodstackError carrying an exit code and a hint), the CLI turns
 * them into a message and that exit code, and anything else is a bug.
 */
export class PodstackError extends Error {
  readonly exitCode: number;
  /** The next thing the user can do about it, printed under the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
  }
}

/** One problem in the cloud file (or secrets file), located by field path and, when known, by line. */
export interface SpecIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** Invalid input: exit code 2, and by construction nothing has been touched yet. */
export class SpecError extends PodstackError {
  readonly file: string;
  readonly issues: readonly SpecIssue[];

  constructor(file: string, issues: readonly SpecIssue[]) {
    const lines = issues.map((i) => {
      const where = i.line === undefined ? file : `${file}:${i.line}:${i.column ?? 1}`;
      return `  ${where}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
    });
    super(
      `${file} is not valid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      {
        exitCode: 2,
        hint: 'Fix the fields named above and run the command again; nothing was changed.',
      },
    );
    this.file = file;
    this.issues = issues;
  }
}

/**
 * An input file (the cloud file, secrets.yaml) that cannot be read or written as one: a folder,
 * a device, unreadable, not UTF-8 text. Exit code 2, like any invalid input: nothing was changed.
 */
export class FileError extends PodstackError {
  readonly file: string;

  constructor(
    file: string,
    reason: string,
    hint = 'Name a readable file and run the command again; nothing was changed.',
  ) {
    super(`${file}: ${reason}`, { exitCode: 2, hint });
    this.file = file;
  }
}

/** A command was to run in a unit's container, and none runs. */
export class NotRunningError extends PodstackError {
  constructor(unit: string, container: string) {
    super(`${unit} has no running ${container} container`, {
      hint: '`podstack status` says why; `podstack up` brings it back.',
    });
  }
}

/** A unit failed to become ready or a job failed; carries the tail of its log. */
export class UnitFailedError extends PodstackError {
  readonly unit: string;
  readonly logTail: string;

  constructor(unit: string, reason: string, logTail: string) {
    super(`${unit}: ${reason}${logTail === '' ? '' : `\n--- last log lines of ${unit} ---\n${logTail}`}`, {
      hint: `Fix the cause and run \`podstack up\` again; units that are already healthy are left alone.`,
    });
    this.unit = unit;
    this.logTail = logTail;
  }
}

/** A host prerequisite is missing or the host cannot run containers as podstack needs. */
export class HostError extends PodstackError {}

/** An image build failed; carries the tail of its build log. */
export class BuildError extends PodstackError {
  readonly image: string;
  constructor(image: string, reason: string, logTail: string, logFile: string) {
    super(`building image ${image} failed: ${reason}\n--- last lines of ${logFile} ---\n${logTail}`, {
      hint: `The full log is in ${logFile}.`,
    });
    this.image = image;
  }
}

/** A change would stop running guests, and the user has not allowed it: nothing was changed. */
export class GuestRestartError extends PodstackError {
  constructor(units: readonly { unit: string; guests: readonly string[]; why: string }[]) {
    const lines = units.map(
      (u) =>
        `${u.unit}: ${u.why}; it runs ${u.guests.length} guest(s): ${u.guests.join(', ') || '(none listed)'}`,
    );
    super(`this change would stop running guests:\n  ${lines.join('\n  ')}`, {
      exitCode: 2,
      hint: 'Stop or migrate them first, or run `podstack up --allow-guest-restart` to let them restart (nova starts them again). Nothing was changed.',
    });
  }
}
