import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../src/_exec.js';
import { packageRoot } from '../src/_paths.js';
import type { UpResult } from '../src/lifecycle/up.js';

/**
 * Users of a cloud while it changes: `clients` loops, each sending one request after another,
 * round robin over a token issue and a GET of every API and the dashboard, on the public and
 * the internal endpoints. A request fails on a network error, a timeout or an unexpected status.
 */

export interface Endpoint {
  readonly type: 'identity' | 'compute' | 'image' | 'network' | 'placement' | 'dashboard';
  /** Base URL, without a trailing slash (the identity one ends in /v3). */
  readonly url: string;
}

export interface LoopResult {
  readonly requests: number;
  readonly failed: number;
  /** The first failures, as `<method> <url>: <why>` with the time since the loop began. */
  readonly failures: readonly string[];
  /** The longest time any one client waited between two answers, in seconds. */
  readonly longestGap: number;
  /** The 20 slowest requests of over 2 s, with when they began and how long they took. */
  readonly slow: readonly string[];
  readonly seconds: number;
}

const PATHS: Record<Endpoint['type'], string> = {
  identity: '/projects',
  compute: '/servers',
  image: '/v2/images',
  network: '/v2.0/networks',
  placement: '/resource_providers',
  dashboard: '/auth/login/',
};

export interface LoopOptions {
  readonly endpoints: readonly Endpoint[];
  readonly user: string;
  readonly password: string;
  readonly project: string;
  readonly clients?: number;
}

export function clientLoop(o: LoopOptions): {
  begun: number;
  stop: () => Promise<LoopResult>;
  requests: () => number;
} {
  const identity = o.endpoints.filter((e) => e.type === 'identity');
  assert.ok(identity.length > 0, 'the loop needs an identity endpoint');
  const begun = Date.now();
  let running = true;
  let requests = 0;
  let failed = 0;
  let longestGap = 0;
  const failures: string[] = [];
  const slow: { at: number; what: string; took: number }[] = [];
  let token = '';
  /** Runs one request, noting it when it was slow. */
  const timed = async (what: string, request: () => Promise<boolean>): Promise<boolean> => {
    const start = Date.now();
    const ok = await request();
    const took = (Date.now() - start) / 1000;
    if (took > 2) slow.push({ at: (start - begun) / 1000, what, took });
    return ok;
  };
  /** Counts a failure (the first ones with their reason); false, for the caller to return. */
  const fail = (what: string, why: string): false => {
    failed++;
    if (failures.length < 20) failures.push(`${((Date.now() - begun) / 1000).toFixed(1)}s ${what}: ${why}`);
    return false;
  };

  const issue = async (base: string): Promise<boolean> => {
    const body = passwordAuth(o.user, o.password, o.project);
    const what = `POST ${base}/auth/tokens`;
    try {
      const r = await fetch(`${base}/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      await r.arrayBuffer();
      if (r.status !== 201) return fail(what, `HTTP ${r.status}`);
      token = r.headers.get('x-subject-token') ?? token;
      return true;
    } catch (e) {
      return fail(what, reasonOf(e));
    }
  };

  const get = async (e: Endpoint): Promise<boolean> => {
    const url = `${e.url}${PATHS[e.type]}`;
    try {
      const r = await fetch(url, {
        headers: e.type === 'dashboard' ? {} : { 'x-auth-token': token },
        signal: AbortSignal.timeout(30_000),
      });
      await r.arrayBuffer();
      if (r.status !== 200) return fail(`GET ${url}`, `HTTP ${r.status}`);
      return true;
    } catch (err) {
      return fail(`GET ${url}`, reasonOf(err));
    }
  };

  const client = async (n: number) => {
    let last = Date.now();
    for (let i = n; running; i++) {
      // Every 25th request a new token (a password check: the costliest call); the rest, each
      // endpoint in turn.
      const e = o.endpoints[i % o.endpoints.length]!;
      const base = identity[i % identity.length]!.url;
      const ok =
        i % 25 === 0
          ? await timed(`POST ${base}/auth/tokens`, () => issue(base))
          : await timed(`GET ${e.url}${PATHS[e.type]}`, () => get(e));
      requests++;
      if (ok) {
        longestGap = Math.max(longestGap, (Date.now() - last) / 1000);
        last = Date.now();
      }
    }
  };

  const started = (async () => {
    assert.ok(await issue(identity[0]!.url), `no token to start with: ${failures.join('; ')}`);
    failed = 0;
    failures.length = 0;
    await Promise.all(Array.from({ length: o.clients ?? 8 }, (_, i) => client(i)));
  })();

  return {
    begun,
    requests: () => requests,
    async stop() {
      running = false;
      await started;
      // The slowest, in the order they were sent: where a roll made clients wait, and on what.
      const slowest = [...slow]
        .sort((a, b) => b.took - a.took)
        .slice(0, 20)
        .sort((a, b) => a.at - b.at)
        .map((r) => `${r.at.toFixed(1)}s ${r.what}: ${r.took.toFixed(1)}s`);
      return { requests, failed, failures, longestGap, slow: slowest, seconds: (Date.now() - begun) / 1000 };
    },
  };
}

/** The body of a project-scoped password token request (POST /v3/auth/tokens). */
export function passwordAuth(user: string, password: string, project: string): string {
  return JSON.stringify({
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user, domain: { name: 'Default' }, password } },
      },
      scope: { project: { name: project, domain: { name: 'Default' } } },
    },
  });
}

/** fetch says only "fetch failed"; the socket's error (ECONNRESET, ECONNREFUSED) is its cause. */
export function reasonOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause ? `${err.message} (${err.cause.code ?? err.cause.message})` : err.message;
}

/** A change to a running cloud that the loop watches: `apply` returns once it is applied. */
export interface Change {
  readonly name: string;
  readonly apply: () => Promise<void>;
}

/**
 * Applies each change in turn while the client loop runs, then keeps the loop going until it
 * has sent `minRequests` (at most 15 minutes more): the issue's bar is a count of requests, none
 * failed. Returns what the loop saw, each change's duration and the requests sent during it.
 */
export async function changesUnderLoad(
  o: LoopOptions & { readonly changes: readonly Change[]; readonly minRequests: number },
): Promise<{ result: LoopResult; changes: string[]; summary: string }> {
  const loop = clientLoop(o);
  const changes: string[] = [];
  let result: LoopResult | undefined;
  let short = '';
  try {
    for (const c of o.changes) {
      const start = Date.now();
      const at = loop.requests();
      await c.apply();
      // From when (on the loop's clock, as the slow requests say it) and for how long.
      changes.push(
        `${c.name} at ${((start - loop.begun) / 1000).toFixed(0)}s ${((Date.now() - start) / 1000).toFixed(1)}s/${loop.requests() - at} requests`,
      );
    }
    // A count, not a time: on a slower or busier host the loop runs longer. It stops at 15
    // minutes all the same and says so in the summary; what the test asserts is that no request
    // failed, never how fast the host is (a cold CI run, with the cluster's compiler beside it,
    // once fell 400 requests short and failed for that alone).
    for (const deadline = Date.now() + 900_000; loop.requests() < o.minRequests; ) {
      if (Date.now() >= deadline) {
        short = ` (stopped after 15 minutes short of ${o.minRequests})`;
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    result = await loop.stop();
  }
  const summary =
    `${changes.join(', ')}: ${result.requests} requests${short} in ${result.seconds.toFixed(0)}s, ` +
    `${result.failed} failed, longest gap a client saw ${result.longestGap.toFixed(2)}s` +
    (result.slow.length > 0 ? `; slow requests:\n      ${result.slow.join('\n      ')}` : '');
  return { result, changes, summary };
}

/** The public and internal endpoints of every API in the catalog (`openstack endpoint list -f json`), and the dashboard. */
export function loopEndpoints(endpointList: string, dashboard: string): Endpoint[] {
  const rows = JSON.parse(endpointList) as Record<string, string>[];
  return [
    ...rows
      .filter((r) => ['public', 'internal'].includes(r.Interface ?? ''))
      .filter((r) =>
        ['identity', 'compute', 'image', 'network', 'placement'].includes(r['Service Type'] ?? ''),
      )
      .map((r) => ({ type: r['Service Type'] as Endpoint['type'], url: (r.URL ?? '').replace(/\/$/, '') })),
    { type: 'dashboard', url: dashboard.replace(/\/$/, '') },
  ];
}

/**
 * A change to nova.conf that the hypervisor node's copy leaves out (the conductor's section): the
 * Compute API and nova's other services roll, nova-compute stays.
 */
export const NOVA_NOT_ON_THE_NODE = '    config:\n      nova.conf:\n        conductor:\n          workers: 2';

const debugIn = (conf: string) => `    config:\n      ${conf}:\n        DEFAULT:\n          debug: true`;

/**
 * The API servers whose rolls the client loop measures: the service, the unit that rolls, and
 * the lines under services.<service> that change its config.
 */
export const CONFIG_ROLLS = [
  ['keystone', 'keystone-api', debugIn('keystone.conf')],
  ['glance', 'glance-api', debugIn('glance-api.conf')],
  ['placement', 'placement-api', debugIn('placement.conf')],
  // neutron-server is eventlet, not uWSGI: its generations share the port with SO_REUSEPORT.
  ['neutron', 'neutron-api', debugIn('neutron.conf')],
  // A section of nova.conf that the node's copy leaves out: nova's services roll (the APIs, the
  // conductor and the scheduler new beside old), nova-compute stays. (A DEFAULT change replaces
  // it too: the node survival tests make one.)
  ['nova', 'nova-api', NOVA_NOT_ON_THE_NODE],
  ['horizon', 'horizon', '    config:\n      local_settings.py:\n        SESSION_TIMEOUT: 7200'],
] as const;

/**
 * Requests the roll tests' client loop sends at least. The soak (PODSTACK_SOAK=1) holds the
 * issue's bar, 20,000 with none failed; every CI run sends what the changes take and at least
 * 2,000. The changes are the same in both: the count only adds idle minutes after them, which
 * CI's budget does not have (the rolls alone send 2,500-5,000).
 */
export const MIN_REQUESTS = Number(
  process.env.PODSTACK_ROLL_REQUESTS ?? (process.env.PODSTACK_SOAK ? 20_000 : 2_000),
);

/**
 * A new Keystone image and back, as two changes for the client loop: `upWith(imagesDir)` applies
 * the cloud with those recipes (undefined: the packaged ones). The Kubernetes roll test applies
 * them on their own: with every API rolling back at once beside the image, a neutron-server GET
 * there once outlived the client's timeout on 2 busy cores.
 */
export async function keystoneImageRolls(
  dir: string,
  upWith: (imagesDir?: string) => Promise<UpResult>,
  keystoneRef: (imagesDir?: string) => Promise<string>,
): Promise<Change[]> {
  const variant = await keystoneImageVariant(dir, keystoneRef);
  return [variant.imagesDir, undefined].map((imagesDir) => ({
    name: imagesDir ? 'keystone image' : 'keystone image back',
    apply: async () => {
      const r = await upWith(imagesDir);
      assert.ok(r.apply.changed.includes('keystone-api'), r.apply.changed.join(' '));
      if (imagesDir) assert.deepEqual(r.build.built, ['keystone']);
      else await variant.remove();
    },
  }));
}

/**
 * A new Keystone image, as a podstack upgrade would bring one: the recipes copied into `dir`,
 * Keystone's made the packaged image with one more label (a rebuilt image with a changed label: a
 * new ID and reference, the same content, so seconds to build rather than the minutes of
 * installing Keystone again). `imagesDir` is the recipes to apply the cloud with: Keystone's server
 * rolls onto the new image as it does for config, and its bootstrap Jobs run again. `remove`
 * takes the test's image off the host once the cloud is back on the packaged one.
 * `keystoneRef(imagesDir)` names the image a set of recipes gives (undefined: the packaged ones).
 */
export async function keystoneImageVariant(
  dir: string,
  keystoneRef: (imagesDir?: string) => Promise<string>,
): Promise<{ imagesDir: string; remove: () => Promise<void> }> {
  const imagesDir = join(dir, 'images');
  await cp(join(packageRoot(), 'images'), imagesDir, { recursive: true });
  await writeFile(
    join(imagesDir, 'keystone', 'Containerfile'),
    `ARG PARENT\nFROM ${await keystoneRef()}\nLABEL dev.podstack.test.generation="2"\n`,
  );
  // One left by an interrupted run would be taken as built: the test is of building it.
  await exec('podman', ['rmi', '--ignore', await keystoneRef(imagesDir)]);
  return {
    imagesDir,
    remove: async () => {
      const rmi = await exec('podman', ['rmi', await keystoneRef(imagesDir)]);
      assert.equal(rmi.exitCode, 0, rmi.output);
    },
  };
}
