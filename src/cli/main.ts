#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { packageRoot } from '../_paths.js';
import { PodstackError } from '../errors.js';
import { silent } from '../events.js';
import type { EngineChoice, EngineName } from '../lifecycle/engine.js';
import type { ProjectOptions } from '../lifecycle/project.js';
import { lineReporter } from './progress.js';

// The library is loaded by the command that needs it, not at start: `podstack --help` should
// answer at once, and only `--engine kubernetes` pays for the Kubernetes client.
const lib = {
  backup: () => import('../lifecycle/backup.js'),
  build: () => import('../lifecycle/build.js'),
  endpoints: () => import('../lifecycle/endpoints.js'),
  engine: () => import('../lifecycle/engine.js'),
  openrc: () => import('../lifecycle/openrc.js'),
  project: () => import('../lifecycle/project.js'),
  up: () => import('../lifecycle/up.js'),
  revisions: () => import('../lifecycle/revisions.js'),
  rollback: () => import('../lifecycle/rollback.js'),
  rotateKeys: () => import('../lifecycle/rotate-keys.js'),
  snapshots: () => import('../lifecycle/snapshots.js'),
  render: () => import('../plan/render.js'),
};

interface GlobalOptions {
  file: string;
  secrets?: string;
}

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as {
  version: string;
};

// exitOverride: commander's own exits (a usage error: exit code 1) become a CommanderError that
// main() turns into exit code 2, invalid input, as for a bad cloud file. Subcommands inherit it.
const program = new Command('podstack')
  .description('Deploy OpenStack as containers from one declarative cloud file.')
  .version(version, '-V, --version')
  .option('-f, --file <path>', 'the cloud file', 'cloud.yaml')
  .option('--secrets <path>', 'the secrets file (default: secrets.yaml beside the cloud file)')
  .exitOverride()
  .configureHelp({ sortSubcommands: false });

function projectOptions(cmd: Command): ProjectOptions {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  return { file: g.file, ...(g.secrets ? { secretsFile: g.secrets } : {}), report: lineReporter() };
}

interface EngineOptions {
  engine: EngineName;
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

/** --engine, and where the cluster is for --engine kubernetes (read as kubectl reads them). */
function withEngine(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--engine <engine>', 'where the cloud runs')
        .choices(['podman', 'kubernetes'])
        .default('podman'),
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig for --engine kubernetes (default: $KUBECONFIG, ~/.kube/config)',
    )
    .option('--context <name>', "kubeconfig context (default: the kubeconfig's current context)")
    .option('-n, --namespace <name>', "namespace (default: the context's, else default)");
}

function engineChoice(o: EngineOptions): EngineChoice {
  return {
    name: o.engine,
    cluster: {
      ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}),
      ...(o.context ? { context: o.context } : {}),
      ...(o.namespace ? { namespace: o.namespace } : {}),
    },
  };
}

function output(choices: string[], fallback: string) {
  return new Option('-o, --output <format>', 'output format').choices(choices).default(fallback);
}

const print = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));

program
  .command('init')
  .description('write a commented cloud.yaml and generate secrets.yaml (never overwrites either)')
  .action(async (_o, cmd: Command) => {
    const { initProject } = await lib.project();
    const r = await initProject(projectOptions(cmd));
    print(r.wroteCloudFile ? `wrote ${r.file}` : `${r.file} exists: left as it is`);
    print(
      r.addedSecrets.length > 0
        ? `generated ${r.addedSecrets.length} secret(s) in ${r.secretsFile} (mode 0600)`
        : `${r.secretsFile} has every secret`,
    );
  });

program
  .command('build')
  .description('build the images the cloud needs (unchanged images are not rebuilt)')
  .option('--push', 'push them to the registry images.prefix names (for a Kubernetes cluster)')
  .addOption(output(['text', 'json'], 'text'))
  .action(async (o: { output: string; push?: boolean }, cmd: Command) => {
    const [{ openProject }, { buildProject, pushProject }] = await Promise.all([lib.project(), lib.build()]);
    const opts = projectOptions(cmd);
    const project = await openProject(opts);
    const r = await buildProject(project, opts.report ?? silent);
    const pushed = o.push ? await pushProject(project, opts.report ?? silent) : [];
    if (o.output === 'json')
      return printJson({ built: r.built, cached: r.cached, pushed, images: project.imageRefs });
    print(`${r.built.length} built, ${r.cached.length} already up to date`);
    if (o.push) print(`${pushed.length} pushed to ${project.spec.images.prefix}`);
  });

withEngine(program.command('plan'))
  .description('show what `up` would do: units, their objects, and what changes against the running cloud')
  .addOption(output(['text', 'yaml', 'json'], 'text'))
  .option('--offline', 'do not compare with the running cloud')
  .action(async (o: EngineOptions & { output: string; offline?: boolean }, cmd: Command) => {
    const [{ openProject }, { engineFor }, { planToText, planToYaml }] = await Promise.all([
      lib.project(),
      lib.engine(),
      lib.render(),
    ]);
    const project = await openProject({ ...projectOptions(cmd), engine: o.engine });
    if (o.output === 'yaml') return print(planToYaml(project.plan, project.secrets));
    const changes = o.offline
      ? undefined
      : await (await engineFor(project, engineChoice(o))).engine.diff(project.plan);
    if (o.output === 'json') {
      return printJson({
        cloud: project.plan.cloud,
        waves: project.plan.waves,
        units: project.plan.units.map((u) => ({
          name: u.name,
          service: u.service,
          kind: u.kind,
          hash: u.hash,
          dependsOn: u.dependsOn,
          objects: u.objects.map((x) => `${x.kind}/${x.metadata.name}`),
          ...(changes ? { action: changes.find((c) => c.unit === u.name)?.action } : {}),
        })),
        ...(changes ? { changes } : {}),
      });
    }
    print(planToText(project.plan, changes));
  });

program
  .command('graph')
  .description('print the run-time relationships as a Graphviz graph (render with `| dot -Tsvg > cloud.svg`)')
  .action(async (_o, cmd: Command) => {
    const [{ openProject }, { planToDot }] = await Promise.all([lib.project(), lib.render()]);
    const project = await openProject(projectOptions(cmd));
    print(planToDot(project.plan));
  });

withEngine(program.command('up'))
  .description(
    'bring the cloud to what cloud.yaml describes: install, init, build, apply, wait until healthy',
  )
  .option('--no-install', 'do not install missing host packages')
  .option(
    '--allow-guest-restart',
    'apply a change that stops running guests (a new node pod); without it such a change is refused',
  )
  .option('--concurrency <n>', 'units applied at once', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1');
    return n;
  })
  .addOption(output(['text', 'json'], 'text'))
  .action(
    async (
      o: EngineOptions & {
        install: boolean;
        concurrency?: number;
        output: string;
        allowGuestRestart?: boolean;
      },
      cmd: Command,
    ) => {
      const { up } = await lib.up();
      const opts = projectOptions(cmd);
      const r = await up({
        ...opts,
        report: opts.report ?? silent,
        engine: engineChoice(o),
        installHostPackages: o.install,
        allowGuestRestart: o.allowGuestRestart === true,
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      });
      if (o.output === 'json') {
        return printJson({
          cloud: r.project.spec.name,
          revision: r.revision,
          images: { built: r.build.built, cached: r.build.cached },
          ...r.apply,
          endpoints: r.endpoints,
        });
      }
      print(
        `cloud "${r.project.spec.name}" is up (revision ${r.revision}): ${r.apply.changed.length} unit(s) changed, ${r.apply.unchanged.length} unchanged`,
      );
      for (const e of r.endpoints) print(`  ${e.type.padEnd(10)} ${e.url}`);
      print('Use it:  podstack openrc && source admin-openrc.sh && openstack token issue');
    },
  );

withEngine(program.command('status'))
  .description('every unit of the cloud: healthy or not, and why')
  .addOption(output(['text', 'json'], 'text'))
  .action(async (o: EngineOptions & { output: string }, cmd: Command) => {
    const [{ openProject }, { engineFor }, { publishedEndpoints }] = await Promise.all([
      lib.project(),
      lib.engine(),
      lib.endpoints(),
    ]);
    const project = await openProject({ ...projectOptions(cmd), engine: o.engine, report: silent });
    const statuses = await (await engineFor(project, engineChoice(o))).engine.status(project.plan);
    const endpoints = publishedEndpoints(project.endpoints);
    const healthy = statuses.every((s) => ['ready', 'completed', 'applied'].includes(s.state));
    // Unhealthy is exit code 3 in every output format: scripts read -o json.
    if (!healthy) process.exitCode = 3;
    if (o.output === 'json') return printJson({ cloud: project.spec.name, units: statuses, endpoints });
    for (const s of statuses) {
      print(`${s.unit.padEnd(20)} ${s.kind.padEnd(10)} ${s.state.padEnd(10)} ${s.reason ?? ''}`.trimEnd());
      // A failed unit shows why in its own words: the last lines of its log.
      for (const line of s.log?.split('\n') ?? []) print(`    | ${line}`);
    }
    for (const e of endpoints) print(`endpoint ${e.type}: ${e.url}`);
  });

withEngine(program.command('history'))
  .description('every revision of the cloud: when, whether it deployed, and what it changed in words')
  .addOption(output(['text', 'json'], 'text'))
  .action(async (o: EngineOptions & { output: string }, cmd: Command) => {
    const [{ openProject }, { engineFor }, { history, historyToText }] = await Promise.all([
      lib.project(),
      lib.engine(),
      lib.revisions(),
    ]);
    const project = await openProject({ ...projectOptions(cmd), engine: o.engine, report: silent });
    const { engine } = await engineFor(project, engineChoice(o));
    const entries = await history(engine.revisions());
    if (o.output === 'json') return printJson({ cloud: project.spec.name, revisions: entries });
    print(historyToText(entries));
  });

withEngine(program.command('rollback'))
  .description(
    'return the cloud to a revision: its plan, images (by ID) and cloud file; a new revision says so',
  )
  .argument('<revision>', 'the revision to return to (`podstack history` lists them)', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError('must be a revision number (1 or more)');
    return n;
  })
  .option('--dry-run', 'say what would change, and change nothing')
  .option(
    '--yes',
    'where a schema moved since, put back the snapshot taken before it, losing what was written since',
  )
  .option('--allow-guest-restart', 'apply it even when it stops running guests (a new node pod)')
  .addOption(output(['text', 'json'], 'text'))
  .action(
    async (
      revision: number,
      o: EngineOptions & { dryRun?: boolean; yes?: boolean; allowGuestRestart?: boolean; output: string },
      cmd: Command,
    ) => {
      const { rollback } = await lib.rollback();
      const opts = projectOptions(cmd);
      const r = await rollback({
        ...opts,
        report: opts.report ?? silent,
        engine: engineChoice(o),
        revision,
        dryRun: o.dryRun === true,
        yes: o.yes === true,
        allowGuestRestart: o.allowGuestRestart === true,
      });
      if (o.output === 'json') return printJson(r);
      if (r.units.length === 0 && r.revision === undefined && !o.dryRun)
        return print(`the cloud is at revision ${revision}'s plan already: nothing to do`);
      const what = `${r.changes.join(', ') || 'no option'}; units: ${r.units.join(', ') || 'none'}`;
      const { lossesInWords } = await lib.snapshots();
      const restores = (r.restores ?? []).map(
        (x) =>
          `${x.databases.join(', ')} from snapshot ${x.from}, undoing ${lossesInWords(x.databases, x.lost)}`,
      );
      if (o.dryRun) {
        print(`rollback to ${revision} would undo: ${what}`);
        for (const x of restores) print(`and would put back ${x}`);
        if (restores.length > 0) print('(it goes ahead with --yes)');
        return;
      }
      print(
        `rolled back to revision ${revision} in ${r.seconds.toFixed(1)} s (revision ${r.revision}): undid ${what}`,
      );
      for (const x of restores) print(`put back ${x}`);
      print("cloud.yaml is now that revision's");
      if (r.unappliedFile) print(`its edits that were never applied are in ${r.unappliedFile}`);
    },
  );

withEngine(program.command('backup'))
  .description(
    "write what the cloud needs to come back into one file (mode 0600: it holds the cloud's secrets), while it runs",
  )
  .argument('<file>', 'where the backup goes (a .tar.gz); an existing file is not overwritten')
  .addOption(output(['text', 'json'], 'text'))
  .action(async (target: string, o: EngineOptions & { output: string }, cmd: Command) => {
    const { backup } = await lib.backup();
    const { formatBytes } = await lib.snapshots();
    const opts = projectOptions(cmd);
    const r = await backup({
      ...opts,
      report: opts.report ?? silent,
      engine: engineChoice(o),
      output: target,
    });
    if (o.output === 'json') return printJson(r);
    print(
      `backed up to ${r.file} in ${r.seconds.toFixed(1)} s: ${formatBytes(r.bytes)}, mode 0600 (it holds the cloud's secrets)`,
    );
    print(`databases: ${r.databases.map((d) => `${d.name} (${formatBytes(d.bytes)})`).join(', ')}`);
    print(`claims: ${r.claims.map((c) => `${c.claim} (${formatBytes(c.bytes)})`).join(', ')}`);
    for (const f of r.folders)
      print(
        `guests' disks: ${f.path} (${formatBytes(f.bytes)}), ${f.guests.length > 0 ? `${f.guests.join(', ')} paused for ${r.pausedSeconds.toFixed(1)} s` : 'no guest running'}`,
      );
    if (r.leftOut.length > 0) print(`not in it yet: ${r.leftOut.join('; ')}`);
  });

withEngine(program.command('restore'))
  .description(
    'make the cloud again from a backup file, on a host where it is not (after down --purge, or a new one)',
  )
  .argument('<file>', 'the backup file')
  .option('--no-install', 'do not install missing host packages')
  .addOption(output(['text', 'json'], 'text'))
  .action(async (input: string, o: EngineOptions & { output: string; install: boolean }, cmd: Command) => {
    const { restore } = await lib.backup();
    const opts = projectOptions(cmd);
    const r = await restore({
      ...opts,
      report: opts.report ?? silent,
      engine: engineChoice(o),
      input,
      installHostPackages: o.install,
    });
    if (o.output === 'json') return printJson({ ...r, up: { revision: r.up.revision } });
    print(
      `restored cloud ${r.cloud} from the backup of ${r.from} in ${r.seconds.toFixed(1)} s (revision ${r.up.revision}): ${r.databases.length} databases, claims ${r.claims.join(', ')}, ${r.folders} node folders, ${r.revisions} revisions`,
    );
    if (r.keptFile) print(`the cloud file that was there is kept as ${r.keptFile}`);
  });

withEngine(program.command('rotate-keys'))
  .description(
    "rotate Keystone's keys now, with no restart and no token refused (they rotate on a schedule too)",
  )
  .addArgument(
    new Argument('[kind]', 'which keys: fernet (token keys), credential (credential encryption keys) or all')
      .choices(['fernet', 'credential', 'all'])
      .default('fernet'),
  )
  .addOption(output(['text', 'json'], 'text'))
  .action(async (kind: string, o: EngineOptions & { output: string }, cmd: Command) => {
    const { rotateKeys, KEY_KINDS } = await lib.rotateKeys();
    const opts = projectOptions(cmd);
    const rotations = await rotateKeys({
      ...opts,
      report: opts.report ?? silent,
      engine: engineChoice(o),
      kinds: kind === 'all' ? KEY_KINDS : KEY_KINDS.filter((k) => k === kind),
    });
    if (o.output === 'json') return printJson({ rotations });
    for (const r of rotations) {
      print(
        `${r.kind} keys rotated in ${r.seconds.toFixed(1)} s: primary key ${r.keys.at(-1)}, ${r.keys.length} keys kept (${r.keys.join(' ')})`,
      );
    }
  });

program
  .command('openrc')
  .description(
    'write admin credentials for the openstack CLI: admin-openrc.sh and a clouds.yaml entry (mode 0600)',
  )
  .option('--dir <dir>', 'where to write them (default: beside the cloud file)')
  .action(async (o: { dir?: string }, cmd: Command) => {
    const [{ openProject }, { writeOpenrc }] = await Promise.all([lib.project(), lib.openrc()]);
    const project = await openProject({ ...projectOptions(cmd), report: silent });
    const r = await writeOpenrc(project, o.dir);
    print(`wrote ${r.openrc} and ${r.cloudsYaml} (cloud "${r.cloudName}")`);
    print(
      `Use either:  source ${r.openrc}   or:  export OS_CLOUD=${r.cloudName} (from ${r.cloudsYaml}'s folder)`,
    );
  });

withEngine(program.command('down'))
  .description("remove the cloud's containers; its data volumes stay unless --purge")
  .option('--purge', 'also delete the data volumes (databases, keys): the cloud is gone for good')
  .action(async (o: EngineOptions & { purge?: boolean }, cmd: Command) => {
    const [{ openProject }, { engineFor }] = await Promise.all([lib.project(), lib.engine()]);
    const opts = projectOptions(cmd);
    const project = await openProject({ ...opts, engine: o.engine, report: silent });
    const r = await (await engineFor(project, engineChoice(o))).engine.destroy({
      purge: o.purge ?? false,
      report: opts.report ?? silent,
    });
    print(
      `removed ${r.removed.length} unit(s)${o.purge ? ' and the data volumes' : '; data volumes kept (--purge deletes them)'}`,
    );
  });

// A usage error is followed by the usage line of the command it is about, not its whole help.
for (const cmd of [program, ...program.commands]) {
  const name = [...ancestors(cmd), cmd.name()].join(' ');
  cmd.showHelpAfterError(`Usage: ${name} ${cmd.usage()}\n(\`${name} --help\` for more)`);
}

function ancestors(cmd: Command): string[] {
  return cmd.parent ? [...ancestors(cmd.parent), cmd.parent.name()] : [];
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await program.parseAsync(argv as string[]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // --help and --version "exit" with 0; every other exit of commander's is a usage error,
    // already printed with the usage line.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof PodstackError) {
      process.stderr.write(`error: ${err.message}\n`);
      if (err.hint) process.stderr.write(`${err.hint}\n`);
      return err.exitCode;
    }
    process.stderr.write(
      `internal error (a bug in podstack; please report it with this output):\n${(err as Error).stack ?? String(err)}\n`,
    );
    return 70;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
