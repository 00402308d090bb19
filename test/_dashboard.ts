import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { deleteServer, fixedIp, type OpenStack, until } from './_cloud-checks.js';

/**
 * The dashboard as a person uses it, in a real browser: Debian's Chromium, driven by
 * playwright-core (which downloads no browser of its own). Both engines' end-to-end tests run
 * it against the cloud they made.
 */

/** Debian's chromium package (the tests install it with the other host packages they need). */
export const CHROMIUM = '/usr/bin/chromium';
export const BROWSER_PACKAGES = ['chromium'];
/** Where a failing step leaves its screenshot: the run's test logs. */
const LOG_DIR = new URL('../.test-logs/', import.meta.url).pathname;

export interface DashboardCheck {
  /** The dashboard's URL as `up` printed it (ends with /). */
  readonly url: string;
  readonly password: string;
  /** A server the test booted with the CLI, and its fixed IP: the Instances page must list both. */
  readonly server: { readonly name: string; readonly ip: string };
  /** The name of the instance to launch from the dashboard (the caller deletes it). */
  readonly launch: string;
  /** Names screenshots: dashboard-<label>-<step>.png. */
  readonly label: string;
  /**
   * Cinder is on: Launch Instance is told to make the instance a new volume from the image, to
   * go with the instance, and the Volumes panel lists it, attached to the instance.
   */
  readonly volumes?: boolean;
}

export interface DashboardTimes {
  /** From a fresh browser to the login page drawn. */
  readonly loginPageSeconds: number;
  /** From pressing Sign In to the Instances page listing the server. */
  readonly loginToInstancesSeconds: number;
  /** From pressing Launch to the new instance shown Active. */
  readonly launchToActiveSeconds: number;
}

const seconds = (start: number) => (Date.now() - start) / 1000;

/**
 * The dashboard check around a server the CLI booted (`server`): its address comes from the API,
 * and the instance launched from the dashboard (`<server>-dashboard`) is deleted afterwards.
 */
export async function checkDashboardWith(
  openstack: OpenStack,
  o: { url: string; password: string; server: string; label: string; volumes?: boolean },
): Promise<DashboardTimes> {
  const launch = `${o.server}-dashboard`;
  const times = await checkDashboard({
    url: o.url,
    password: o.password,
    server: { name: o.server, ip: await fixedIp(openstack, o.server) },
    launch,
    label: o.label,
    ...(o.volumes ? { volumes: true } : {}),
  });
  // The volume Launch Instance made was asked to go with the instance: Cinder deletes it.
  const attached =
    (
      JSON.parse(await openstack('server', 'show', launch, '-f', 'json', '-c', 'volumes_attached')) as {
        volumes_attached?: { id: string }[];
      }
    ).volumes_attached ?? [];
  assert.equal(attached.length, o.volumes ? 1 : 0, `volumes of ${launch}: ${JSON.stringify(attached)}`);
  await deleteServer(openstack, launch);
  for (const { id } of attached)
    await until(`the volume of ${launch} deleted with it`, 60, 1000, async () =>
      (await openstack('volume', 'list', '-f', 'value', '-c', 'ID')).includes(id) ? 'still there' : undefined,
    );
  return times;
}

export async function launchBrowser(): Promise<Browser> {
  // As root, Chromium's sandbox refuses to start; the pages are the cloud's own.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/**
 * Logs in, finds the server on the Instances page, sees the guest image and the networks, launches
 * an instance from the dashboard and waits for it to be Active, opens its noVNC console, and logs
 * out. A failing step throws with the page's address and leaves a screenshot in .test-logs.
 */
export async function checkDashboard(o: DashboardCheck): Promise<DashboardTimes> {
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(30_000);
  let step = 'start';
  const at = (path: string) => new URL(path, o.url).toString();
  try {
    step = 'login-page';
    const opened = Date.now();
    await page.goto(at('auth/login/'));
    await page.locator('#id_username').waitFor();
    const loginPageSeconds = seconds(opened);

    step = 'login';
    await page.fill('#id_username', 'admin');
    await page.fill('#id_password', o.password);
    const signIn = Date.now();
    await page.click('#loginBtn');
    await page.waitForURL(/\/project\//);
    await page.goto(at('project/instances/'));
    const row = page.locator('#instances tbody tr', { hasText: o.server.name });
    await row.waitFor();
    const loginToInstancesSeconds = seconds(signIn);

    step = 'instances';
    const text = ((await row.textContent()) ?? '').replace(/\s+/g, ' ');
    assert.match(text, /Active/, `the Instances page shows ${o.server.name} as: ${text}`);
    assert.ok(
      text.includes(o.server.ip),
      `the Instances page shows no ${o.server.ip} for ${o.server.name}: ${text}`,
    );

    step = 'images';
    await page.goto(at('project/images/'));
    await page.getByText('podstack-guest').first().waitFor();

    step = 'network-topology';
    await page.goto(at('project/network_topology/'));
    // The networks are labelled bars; the router between them names itself when clicked.
    for (const name of ['public', 'private'])
      await page
        .locator('svg text:visible', { hasText: new RegExp(`^${name}$`) })
        .first()
        .waitFor();
    await page.locator('svg g.router_small:visible').first().click();
    await page.locator('.topologyBalloon:visible', { hasText: 'router1' }).waitFor();

    step = 'launch';
    const launched = await launchInstance(page, at('project/instances/'), o.launch, o.volumes ?? false);
    const launchToActiveSeconds = seconds(launched);

    if (o.volumes) {
      step = 'volumes';
      await page.goto(at('project/volumes/'));
      const volume = page.locator('#volumes tbody tr', { hasText: o.launch });
      await volume.waitFor();
      const said = ((await volume.textContent()) ?? '').replace(/\s+/g, ' ');
      assert.match(said, /In-use/, `the Volumes page shows the volume of ${o.launch} as: ${said}`);
      await page.goto(at('project/instances/'));
    }

    step = 'console';
    await page.locator('#instances a', { hasText: o.launch }).click();
    await page.locator('a[data-target$="__console"]').click();
    // The console is nova's noVNC page, served by novncproxy on its own port, in an iframe.
    const vnc = page.frameLocator('iframe');
    await vnc.locator('canvas').waitFor();
    await vnc.getByText(/^Connected/).waitFor();

    step = 'logout';
    await page.goto(at('auth/logout/'));
    await page.locator('#id_username').waitFor();
    await page.goto(at('project/instances/'));
    await page.waitForURL(/\/auth\/login\//);
    return { loginPageSeconds, loginToInstancesSeconds, launchToActiveSeconds };
  } catch (err) {
    await mkdir(LOG_DIR, { recursive: true });
    const shot = join(LOG_DIR, `dashboard-${o.label}-${step}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    // What the dashboard itself said (a refused login, an error it shows), in its own words.
    const said = await page
      .locator('.alert-danger:visible, .alert-error:visible')
      .allTextContents()
      .catch(() => []);
    const alerts = said.map((t) => t.replace(/\s+/g, ' ').trim()).filter(Boolean);
    throw new Error(
      `dashboard step "${step}" failed at ${page.url()} (screenshot: ${shot})${alerts.length ? `; the page says: ${alerts.join(' | ')}` : ''}:\n${err}`,
    );
  } finally {
    await browser.close();
  }
}

/**
 * The Launch Instance dialog, as a person fills it: a name, then (with `volume`) a new volume
 * that goes with the instance, the guest image, the smallest flavor and the tenant network moved
 * to "Allocated". Returns when Launch was pressed; resolves
 * once the Instances page shows the instance Active (a fault fails at once).
 */
/** The Source step's "Yes" buttons that give an instance a new volume, deleted with it. */
function volumeToggles(page: Page, dialog: Locator): [string, Locator][] {
  const yes = /^\s*Yes\s*$/;
  return [
    ['Create New Volume', dialog.locator('label#vol-create', { hasText: yes })],
    [
      'Delete Volume on Instance Delete',
      dialog
        .locator('.form-group', {
          has: page.locator('label.control-label', { hasText: 'Delete Volume on Instance Delete' }),
        })
        .locator('label.btn', { hasText: yes }),
    ],
  ];
}

/** The boot sources Launch Instance offers on a cloud with block storage, all loaded. */
const BOOT_SOURCES = ['Image', 'Instance Snapshot', 'Volume', 'Volume Snapshot'];

/** Waits (30 s at most) until the Source step's "Select Boot Source" lists every boot source. */
async function bootSourcesLoaded(dialog: Locator): Promise<void> {
  const options = dialog.locator('select#boot-source-type option');
  await until("Launch Instance's boot sources all loaded within 30 s", 120, 250, async () => {
    const seen = (await options.allTextContents()).map((t) => t.trim());
    return BOOT_SOURCES.every((s) => seen.includes(s))
      ? undefined
      : `it offers ${JSON.stringify(seen)}, not ${JSON.stringify(BOOT_SOURCES)}`;
  });
}

/** Waits until a toggle button shows as chosen (Angular's `active`), naming it if it never does. */
async function expectActive(button: Locator, name: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    if (((await button.getAttribute('class')) ?? '').split(/\s+/).includes('active')) return;
    await button.page().waitForTimeout(250);
  }
  throw new Error(`"${name}: Yes" did not stay chosen in Launch Instance`);
}

async function launchInstance(page: Page, instances: string, name: string, volume: boolean): Promise<number> {
  await page.goto(instances);
  await page.locator('a', { hasText: 'Launch Instance' }).click();
  const dialog = page.locator('.modal-dialog');
  await dialog.locator('input[name="name"]').fill(name);
  const allocate = async (tab: RegExp, item: string) => {
    await dialog.getByRole('link', { name: tab }).click();
    const available = dialog.locator('transfer-table .transfer-available tr', { hasText: item });
    await available.first().locator('button').last().click();
    await dialog.locator('transfer-table .transfer-allocated tr', { hasText: item }).first().waitFor();
  };
  await allocate(/Source/, 'podstack-guest');
  if (volume) {
    // Offered only when the cloud has block storage; podstack's default is No (local_settings).
    // Chosen once every boot source has loaded: Horizon 23's Source step sets the toggle back
    // to that default each time a source type arrives (its allowedBootSources watcher), and
    // Volume Snapshot arrives last, after two Cinder round trips. Chosen before, it was undone
    // twice in full runs, and the instance would have booted from its image.
    await bootSourcesLoaded(dialog);
    for (const [group, button] of volumeToggles(page, dialog)) {
      await button.click();
      await expectActive(button, group);
    }
  }
  await allocate(/Flavor/, 'm1.nano');
  await allocate(/Networks/, 'private');
  if (volume) {
    // Still chosen after the other steps, as the instance is launched.
    await dialog.getByRole('link', { name: /Source/ }).click();
    for (const [group, button] of volumeToggles(page, dialog)) await expectActive(button, group);
  }
  const start = Date.now();
  await dialog.locator('button', { hasText: 'Launch Instance' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = page.locator('#instances tbody tr', { hasText: name });
  // Bounded: 3 minutes, the page reloaded every 10 s as a person would.
  for (let i = 0; i < 36; i++) {
    const text = ((await row.textContent().catch(() => '')) ?? '').replace(/\s+/g, ' ');
    if (/\bActive\b/.test(text)) return start;
    assert.doesNotMatch(text, /\bError\b/, `the instance ${name} failed: ${text}`);
    await page.waitForTimeout(5000);
    if (i % 2 === 1) await page.reload();
  }
  throw new Error(`the instance ${name} launched from the dashboard was not Active within 3 minutes`);
}
