import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../src/_exec.js';
import { catalog } from '../src/catalog/index.js';

/**
 * What a user does with a cloud, as the end-to-end tests of both engines do it: the real
 * openstack CLI against every service the catalog publishes. Expectations come from the
 * catalog, so a service added there is checked here without a hand-written list.
 */

export type OpenStack = (...args: string[]) => Promise<string>;

/** Every service with an API, and the test port it is published on (its own port + offset). */
export function apiPorts(offset: number): { service: string; type: string; port: number; path: string }[] {
  return catalog.flatMap((s) =>
    s.api ? [{ service: s.name, type: s.api.type, port: s.api.port + offset, path: s.api.path ?? '' }] : [],
  );
}

/** The services: section of a test cloud file, publishing every API on its test port. */
export function servicesYaml(offset: number, extra: Record<string, string> = {}): string {
  const lines = ['services:'];
  for (const s of catalog) {
    const port = s.api ? [`    port: ${s.api.port + offset}`] : [];
    const more = extra[s.name] ? [extra[s.name]!.trimEnd()] : [];
    if (port.length + more.length > 0) lines.push(`  ${s.name}:`, ...port, ...more);
  }
  return `${lines.join('\n')}\n`;
}

type Row = Record<string, string>;

/** The Keystone catalog has public, internal and admin endpoints of every API, public ones on `host`. */
export async function checkCatalog(openstack: OpenStack, host: string, offset: number): Promise<void> {
  const endpoints = JSON.parse(await openstack('endpoint', 'list', '-f', 'json')) as Row[];
  for (const api of apiPorts(offset)) {
    const of = (iface: string) =>
      endpoints.filter((e) => e['Service Type'] === api.type && e.Interface === iface);
    for (const iface of ['public', 'internal', 'admin'])
      assert.equal(of(iface).length, 1, `${api.type} has ${of(iface).length} ${iface} endpoints`);
    assert.equal(of('public')[0]?.URL, `http://${host}:${api.port}${api.path}`);
  }
}

/**
 * Internal and admin endpoints answer from the host, as they do from the cloud's own
 * containers: an operator's tools (and Tempest) use them.
 */
export async function checkInternalFromHost(openstack: OpenStack): Promise<void> {
  await openstack('--os-interface', 'internal', 'image', 'list', '-f', 'json');
  await openstack('--os-interface', 'admin', 'image', 'list', '-f', 'json');
  const endpoints = JSON.parse(await openstack('endpoint', 'list', '-f', 'json')) as Row[];
  for (const e of endpoints.filter((x) => x.Interface !== 'public')) {
    const r = await fetch(e.URL!, { signal: AbortSignal.timeout(5000) });
    await r.body?.cancel();
    assert.ok(r.status < 500, `${e.Interface} ${e['Service Type']} ${e.URL}: HTTP ${r.status}`);
  }
}

/** A real qcow2 disk image of `megabytes`, made with qemu-img. */
export async function makeDiskImage(dir: string, megabytes = 16): Promise<string> {
  const file = join(dir, 'disk.qcow2');
  const r = await exec('qemu-img', ['create', '-f', 'qcow2', file, `${megabytes}M`]);
  assert.equal(r.exitCode, 0, r.output);
  return file;
}

/** Uploads a disk image to Glance, checks it is active, and returns its checksum. */
export async function uploadImage(openstack: OpenStack, file: string, name: string): Promise<void> {
  await openstack(
    'image',
    'create',
    '--file',
    file,
    '--disk-format',
    'qcow2',
    '--container-format',
    'bare',
    name,
  );
  const image = JSON.parse(await openstack('image', 'show', name, '-f', 'json')) as Row;
  assert.equal(image.status, 'active');
  const list = JSON.parse(await openstack('image', 'list', '-f', 'json')) as Row[];
  assert.ok(
    list.some((i) => i.Name === name),
    `${name} is not in image list`,
  );
}

/** Downloads an image and compares it with the file it was made from, byte for byte. */
export async function checkImageBytes(
  openstack: OpenStack,
  dir: string,
  file: string,
  name: string,
): Promise<void> {
  const back = join(dir, 'back.qcow2');
  await openstack('image', 'save', '--file', back, name);
  assert.ok((await readFile(back)).equals(await readFile(file)), 'the image came back different');
}

/** Placement answers the osc-placement plugin's calls. */
export async function checkPlacement(openstack: OpenStack): Promise<void> {
  JSON.parse(await openstack('resource', 'provider', 'list', '-f', 'json'));
  const classes = JSON.parse(await openstack('resource', 'class', 'list', '-f', 'json')) as Row[];
  assert.ok(
    classes.some((c) => c.name === 'VCPU'),
    'resource class VCPU missing',
  );
}

/** The host packages the checks use: the CLI, its Placement plugin, qemu-img. */
export const CHECK_PACKAGES = ['python3-openstackclient', 'python3-osc-placement', 'qemu-utils'];
