// podstack's speed targets, measured (never asserted in tests): prints one line per number.
//   npm run bench                    no-op build, cold up with images built (until a token is issued), no-op up
//   npm run bench -- --from-scratch  also a build from nothing, with an image prefix of its own
//   npm run bench -- --kubernetes    the same cloud on the test cluster: harness start from cached
//                                    binaries, cold up until a token, no-op re-apply (objects written)
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../src/_exec.js';
import { silent } from '../src/events.js';
import { buildProject } from '../src/lifecycle/build.js';
import { engineFor } from '../src/lifecycle/engine.js';
import { writeOpenrc } from '../src/lifecycle/openrc.js';
import { openProject } from '../src/lifecycle/project.js';
import { up } from '../src/lifecycle/up.js';

const CLOUD = 'podstack-bench';
const fromScratch = process.argv.includes('--from-scratch');
const dir = await mkdtemp(join(tmpdir(), 'podstack-bench-'));
const file = join(dir, 'cloud.yaml');
const prefix = fromScratch ? `localhost/podstack-bench-${Date.now()}` : 'localhost/podstack';
await writeFile(
  file,
  `name: ${CLOUD}\ndataDir: ${join(dir, 'data')}\nimages:\n  prefix: ${prefix}\nservices:\n  keystone:\n    port: 15100\n`,
);

const time = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e9, value];
};
const line = (metric: string, seconds: number, note = '') =>
  console.log(`${metric.padEnd(56)} ${seconds.toFixed(2).padStart(8)} s${note ? `   ${note}` : ''}`);

/** The moment a cloud counts as up: the openstack CLI got a token from it. */
async function issueToken(): Promise<void> {
  const r = await exec('openstack', ['token', 'issue', '-f', 'value', '-c', 'id'], {
    cwd: dir,
    env: { OS_CLOUD: CLOUD },
  });
  if (r.exitCode !== 0) throw new Error(`openstack token issue failed: ${r.stderr}`);
}

async function destroy(): Promise<void> {
  const { engine } = await engineFor(await openProject({ file }));
  await engine.destroy({ purge: true, report: silent });
}

if (process.argv.includes('--kubernetes')) {
  await benchKubernetes();
  process.exit(0);
}

try {
  const project = await openProject({ file });
  if (fromScratch) {
    const [s, r] = await time(() => buildProject(project, silent));
    line('build from scratch', s, `${r.built.length} images`);
  } else {
    await buildProject(project, silent); // make sure every image exists before timing
  }
  const [noop] = await time(() => buildProject(project, silent));
  line('build with nothing changed (target < 3 s)', noop);

  await destroy();
  const [cold] = await time(async () => {
    await up({ file, report: silent, installHostPackages: false });
    await writeOpenrc(project, dir);
    await issueToken();
  });
  line('cold up, images built, until a token is issued', cold);

  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [s, r] = await time(() => up({ file, report: silent, installHostPackages: false }));
    if (r.apply.changed.length > 0) throw new Error(`a no-op up changed ${r.apply.changed.join(', ')}`);
    runs.push(s);
  }
  line(
    'up with nothing changed (target < 2 s)',
    Math.min(...runs),
    `runs: ${runs.map((r) => r.toFixed(2)).join(', ')}`,
  );
} finally {
  await destroy();
  if (fromScratch) {
    const images = await exec('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    const ours = images.stdout.split('\n').filter((i) => i.startsWith(`${prefix}/`));
    if (ours.length > 0) await exec('podman', ['rmi', ...ours]);
  }
}

async function benchKubernetes(): Promise<void> {
  const { startCluster, stopCluster } = await import('../test/kube-cluster/cluster.js');
  const { ensureKubernetesBinaries } = await import('../test/kube-cluster/binaries.js');
  await ensureKubernetesBinaries(() => {});
  await stopCluster();
  const [start, cluster] = await time(() => startCluster({ tier: 'full' }));
  line('test cluster up from cached binaries', start);
  await writeFile(
    file,
    [
      `name: ${CLOUD}`,
      `dataDir: ${join(dir, 'data')}`,
      `endpoints: {address: ${cluster.nodeIp}}`,
      `images: {prefix: ${cluster.registry}/podstack, tlsVerify: false}`,
      'services: {keystone: {port: 15100}}',
      '',
    ].join('\n'),
  );
  const engine = {
    name: 'kubernetes' as const,
    cluster: { kubeconfig: cluster.kubeconfig, namespace: 'podstack-bench' },
  };
  const project = await openProject({ file });
  await buildProject(project, silent);
  const { pushProject } = await import('../src/lifecycle/build.js');
  await pushProject(project, silent);
  try {
    const [cold] = await time(async () => {
      await up({ file, report: silent, engine, installHostPackages: false });
      await writeOpenrc(project, dir);
      await issueToken();
    });
    line('up --engine kubernetes until a token (node pulls images)', cold);
    const runs: [number, number][] = [];
    for (let i = 0; i < 3; i++) {
      const [s, r] = await time(() => up({ file, report: silent, engine, installHostPackages: false }));
      runs.push([s, r.apply.written ?? -1]);
    }
    line(
      're-apply with nothing changed (target < 2 s)',
      Math.min(...runs.map(([s]) => s)),
      `runs: ${runs.map(([s, w]) => `${s.toFixed(2)} s, ${w} written`).join('; ')}`,
    );
    // The same cloud again from nothing on a node that has its images: what a redeploy costs.
    const { engine: k8s } = await engineFor(project, engine);
    await k8s.destroy({ purge: true, report: silent });
    const [warm] = await time(async () => {
      await up({ file, report: silent, engine, installHostPackages: false });
      await issueToken();
    });
    line('up --engine kubernetes until a token (images on the node)', warm);
  } finally {
    const { engine: k8s } = await engineFor(await openProject({ file }), engine);
    await k8s.destroy({ purge: true, report: silent });
  }
}
