import type { ApplyResult } from '../engines/types.js';
import { PodstackError } from '../errors.js';
import type { Reporter } from '../events.js';
import { ensurePackages, HOST_PACKAGES } from '../host/packages.js';
import type { BuildResult } from '../images/build.js';
import { ensureStartOnBoot } from '../podman/boot.js';
import { buildProject, pushProject } from './build.js';
import { type Endpoint, publishedEndpoints } from './endpoints.js';
import { type EngineChoice, engineFor } from './engine.js';
import { initProject, openProject, type Project, type ProjectOptions } from './project.js';
import { RevisionInProgress } from './revisions.js';
import { migrationsAhead, schemaVersions, takeSnapshot } from './snapshots.js';

export interface UpOptions extends Omit<ProjectOptions, 'engine'> {
  readonly report: Reporter;
  readonly engine?: EngineChoice;
  /** Install missing host packages (as root). */
  readonly installHostPackages?: boolean;
  readonly concurrency?: number;
  /** Seconds a Deployment may take to become ready (default 300). */
  readonly readyTimeout?: number;
  /** Apply changes that stop running guests (see ApplyOptions). */
  readonly allowGuestRestart?: boolean;
  /** Why this up runs, first in its revision's words (a restore says so). */
  readonly because?: string;
}

export interface UpResult {
  readonly project: Project;
  readonly build: BuildResult;
  readonly apply: ApplyResult;
  readonly endpoints: readonly Endpoint[];
  readonly revision: number;
}

/** init (if needed) -> build (what changed) -> apply (what changed) -> record. */
export async function up(o: UpOptions): Promise<UpResult> {
  // init first: it refuses an invalid cloud file before anything (host packages included) changes.
  const init = await initProject({ ...o, engine: o.engine?.name ?? 'podman' });
  if (init.wroteCloudFile)
    o.report({ type: 'step', message: `wrote ${init.file} (the default cloud; edit and re-run)` });
  if (o.installHostPackages ?? true) await ensurePackages(HOST_PACKAGES, o.report);
  const project = await openProject({ ...o, engine: o.engine?.name ?? 'podman' });
  const kubernetes = project.engine === 'kubernetes';
  if (kubernetes && project.spec.images.prefix.startsWith('localhost/')) {
    throw new PodstackError(
      `images.prefix is ${project.spec.images.prefix}: a cluster cannot pull from there`,
      {
        hint: 'Set images.prefix in the cloud file to a registry the cluster pulls from, as <registry host>:<port>/podstack.',
        exitCode: 2,
      },
    );
  }
  // Reach the cluster before building for minutes: a wrong kubeconfig, a cluster without the
  // StorageClass, rights or API versions the plan needs, or a registry that is not there, should
  // fail at once.
  const { engine, preflight } = await engineFor(project, o.engine);
  if (preflight) await preflight(o.report);
  // From here on the cloud may change: the attempt is a revision, pending until it ends.
  const pending = await RevisionInProgress.begin(project, engine.revisions(), o.because);
  let build: Awaited<ReturnType<typeof buildProject>>;
  let apply: ApplyResult;
  try {
    build = await buildProject(project, o.report);
    await pending.built(build.ids);
    if (kubernetes) await pushProject(project, o.report, build.ids);
    // Last before the apply: the dump holds everything written until the migrations run.
    const migrations = migrationsAhead(project.plan, pending.deployedBefore);
    if (migrations.length > 0)
      await pending.snapshotted(await takeSnapshot(engine, pending.revision, migrations, o.report));
    apply = await engine.apply(project.plan, {
      report: o.report,
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      ...(o.readyTimeout ? { readyTimeout: o.readyTimeout } : {}),
      ...(o.allowGuestRestart ? { allowGuestRestart: true } : {}),
    });
  } catch (err) {
    await pending.failed(err);
    throw err;
  }
  // Where the schemas went: what a rollback to before this revision must restore.
  const dumped = pending.snapshot?.databases.map((d) => d.name) ?? [];
  if (dumped.length > 0)
    await schemaVersions(engine, dumped).then(
      (v) => pending.migrated(v),
      (err: Error) =>
        o.report({
          type: 'warning',
          message: `the schema versions after the migrations are unknown: ${err.message}`,
        }),
    );
  const revision = await pending.deployed(apply);
  // A cluster restarts its pods itself; Podman needs systemd's help after a reboot.
  if (!kubernetes) await ensureStartOnBoot(o.report);
  return {
    project,
    build,
    apply,
    endpoints: publishedEndpoints(project.endpoints),
    revision,
  };
}
