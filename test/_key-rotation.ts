import assert from 'node:assert/strict';
import { passwordAuth, reasonOf } from './_client-loop.js';

/**
 * Keystone's key rotation as its users feel it, the same on both engines: clients issue tokens
 * and validate each one they got before (POST and GET /v3/auth/tokens) while the keys rotate by
 * hand (`podstack rotate-keys`) five times and the credential keys once; an EC2 credential made
 * before must still decrypt; then a key 0 made old rotates by itself, by the schedule.
 */

export interface RotationHarness {
  readonly password: string;
  /** `podstack rotate-keys <kind> -o json` for this cloud: its parsed output. */
  rotate(
    kind: 'fernet' | 'credential',
  ): Promise<{ rotations: readonly { keys: readonly number[]; seconds: number }[] }>;
  /** A shell command in the cloud's rotation container (as root), its stdout. */
  inRotator(script: string): Promise<string>;
  /** The openstack CLI as admin, its stdout. */
  openstack(...args: string[]): Promise<string>;
}

export interface RotationReport {
  readonly requests: number;
  readonly failed: number;
  readonly failures: readonly string[];
  readonly rotationSeconds: readonly number[];
  readonly summary: string;
}

const keysIn = async (h: RotationHarness, repo: string) =>
  (await h.inRotator(`ls ${repo}`))
    .split(/\s+/)
    .filter((k) => /^\d+$/.test(k))
    .map(Number)
    .sort((a, b) => a - b);

/**
 * Token clients: each issues a token, then validates the one it issued before with it, about
 * three times a second.
 */
function tokenLoop(identity: string, password: string, clients = 4) {
  let running = true;
  let requests = 0;
  let failed = 0;
  const failures: string[] = [];
  const begun = Date.now();
  const fail = (what: string) => {
    failed++;
    if (failures.length < 20) failures.push(`${((Date.now() - begun) / 1000).toFixed(1)}s ${what}`);
  };
  const body = passwordAuth('admin', password, 'admin');
  const issue = async (): Promise<string | undefined> => {
    requests++;
    try {
      const r = await fetch(`${identity}/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      await r.arrayBuffer();
      if (r.status === 201) return r.headers.get('x-subject-token') ?? undefined;
      fail(`POST /auth/tokens: HTTP ${r.status}`);
    } catch (e) {
      fail(`POST /auth/tokens: ${reasonOf(e)}`);
    }
    return undefined;
  };
  const validate = async (token: string, subject: string) => {
    requests++;
    try {
      const r = await fetch(`${identity}/auth/tokens`, {
        headers: { 'x-auth-token': token, 'x-subject-token': subject },
        signal: AbortSignal.timeout(30_000),
      });
      await r.arrayBuffer();
      if (r.status !== 200) fail(`GET /auth/tokens: HTTP ${r.status}`);
    } catch (e) {
      fail(`GET /auth/tokens: ${reasonOf(e)}`);
    }
  };
  const client = async () => {
    let before: string | undefined;
    while (running) {
      const token = await issue();
      if (token && before) await validate(token, before);
      before = token ?? before;
      // Users, not a load test: a Keystone saturated by back-to-back password checks on 2 busy
      // cores misses its readiness probes, and Kubernetes takes its only pod out of the Service.
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const all = Promise.all(Array.from({ length: clients }, client));
  return {
    async stop() {
      running = false;
      await all;
      return { requests, failed, failures, seconds: (Date.now() - begun) / 1000 };
    },
  };
}

export async function keysRotateUnderTokens(h: RotationHarness): Promise<RotationReport> {
  const FERNET = '/etc/keystone/fernet-keys';
  const CREDENTIAL = '/etc/keystone/credential-keys';
  const [endpoint] = JSON.parse(
    await h.openstack('endpoint', 'list', '--service', 'identity', '--interface', 'public', '-f', 'json'),
  ) as { URL: string }[];
  // max_active_keys as the rotation runs it (its own keystone.conf).
  const maxActiveKeys = Number(
    /^max_active_keys = (\d+)$/m.exec(await h.inRotator('cat /etc/keystone/keystone.conf'))?.[1],
  );
  const ec2 = JSON.parse(await h.openstack('ec2', 'credentials', 'create', '-f', 'json')) as {
    access: string;
    secret: string;
  };
  const loop = tokenLoop(endpoint!.URL, h.password);
  const rotationSeconds: number[] = [];
  let result: Awaited<ReturnType<typeof loop.stop>>;
  try {
    let before = await keysIn(h, FERNET);
    for (let i = 0; i < 5; i++) {
      const { rotations } = await h.rotate('fernet');
      const keys = await keysIn(h, FERNET);
      assert.deepEqual(rotations[0]?.keys, keys, 'rotate-keys reports the keys the repository has');
      assert.equal(keys.at(-1), before.at(-1)! + 1, `rotation ${i + 1}: a new primary key`);
      assert.ok(keys.includes(0), `rotation ${i + 1}: a new staged key 0`);
      assert.ok(keys.length <= maxActiveKeys, `rotation ${i + 1}: ${keys.length} keys kept`);
      rotationSeconds.push(rotations[0]!.seconds);
      before = keys;
    }
    assert.equal(before.length, maxActiveKeys, 'five rotations fill the repository to max_active_keys');
    const credentialBefore = await keysIn(h, CREDENTIAL);
    const { rotations } = await h.rotate('credential');
    rotationSeconds.push(rotations[0]!.seconds);
    assert.equal((await keysIn(h, CREDENTIAL)).at(-1), credentialBefore.at(-1)! + 1, 'a new credential key');
  } finally {
    result = await loop.stop();
  }
  // The credential made before the rotation decrypts with the keys after it.
  const shown = JSON.parse(await h.openstack('ec2', 'credentials', 'show', ec2.access, '-f', 'json')) as {
    secret: string;
  };
  assert.equal(shown.secret, ec2.secret, 'the EC2 secret reads back after the credential rotation');
  await h.openstack('ec2', 'credentials', 'delete', ec2.access);

  // The schedule: key 0 made older than the 3-day interval rotates by itself within a check or two.
  const primary = (await keysIn(h, FERNET)).at(-1)!;
  await h.inRotator(`touch -d @$(( $(date +%s) - 4 * 86400 )) ${FERNET}/0`);
  const deadline = Date.now() + 90_000;
  let now = primary;
  while (now === primary && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 3000));
    now = (await keysIn(h, FERNET)).at(-1)!;
  }
  assert.equal(now, primary + 1, 'a key 0 older than the interval was rotated by the schedule');

  const summary =
    `${result.requests} token requests in ${result.seconds.toFixed(0)} s, ${result.failed} failed; ` +
    `rotations took ${rotationSeconds.map((s) => s.toFixed(1)).join(', ')} s`;
  return { ...result, rotationSeconds, summary };
}
