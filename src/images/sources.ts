import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostError } from '../errors.js';

/**
 * Where the images' Debian packages come from. podstack never names a mirror
 * itself: it takes the one this host's apt already uses (or the cloud file's),
 * so a build works wherever the host's apt works.
 */

export interface AptSource {
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
}

export interface DebianSources {
  /** Mirror of the main archive, for debootstrap. */
  readonly mirror: string;
  /** The deb822 sources file the images get. */
  readonly sourcesFile: string;
}

/** Parses deb822 (.sources) text into its `deb` stanzas. */
export function parseDeb822(text: string): AptSource[] {
  return text
    .split(/\n\s*\n/)
    .map((stanza) => {
      const fields = new Map<string, string>();
      let last = '';
      for (const line of stanza.split('\n')) {
        if (line.startsWith('#') || line.trim() === '') continue;
        if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)} ${line.trim()}`);
        else {
          const at = line.indexOf(':');
          if (at < 0) continue;
          last = line.slice(0, at).trim().toLowerCase();
          fields.set(last, line.slice(at + 1).trim());
        }
      }
      return fields;
    })
    .filter((f) => (f.get('types') ?? '').split(/\s+/).includes('deb') && f.get('enabled') !== 'no')
    .map((f) => ({
      uris: (f.get('uris') ?? '').split(/\s+/).filter(Boolean),
      suites: (f.get('suites') ?? '').split(/\s+/).filter(Boolean),
      components: (f.get('components') ?? '').split(/\s+/).filter(Boolean),
    }));
}

/** Parses one-line sources.list text ("deb [opts] uri suite comp..."). */
export function parseOneLine(text: string): AptSource[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.startsWith('deb '))
    .map((l) => {
      const words = l
        .replace(/\[[^\]]*\]/, '')
        .split(/\s+/)
        .slice(1);
      return { uris: words.slice(0, 1), suites: words.slice(1, 2), components: words.slice(2) };
    });
}

/**
 * Picks the Debian mirrors for `suite` from the host's sources (or the
 * overrides) and writes the sources file the images get.
 */
export function debianSourcesFor(
  suite: string,
  hostSources: readonly AptSource[],
  overrides: { mirror?: string; securityMirror?: string } = {},
): DebianSources {
  const forSuite = (s: string) => hostSources.find((src) => src.suites.includes(s) && src.uris.length > 0);
  const mirror = overrides.mirror ?? forSuite(suite)?.uris[0];
  if (!mirror) {
    throw new HostError(`no Debian mirror for ${suite} in this host's apt sources`, {
      hint: `Set images.debian.mirror in cloud.yaml to the Debian mirror to build images from.`,
    });
  }
  const security = overrides.securityMirror ?? forSuite(`${suite}-security`)?.uris[0];
  const stanzas = [
    { uri: mirror, suites: `${suite} ${suite}-updates` },
    ...(security ? [{ uri: security, suites: `${suite}-security` }] : []),
  ].map(
    (s) =>
      `Types: deb\nURIs: ${s.uri}\nSuites: ${s.suites}\nComponents: main\n` +
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
  );
  return { mirror, sourcesFile: stanzas.join('\n') };
}

export async function readHostSources(root = '/etc/apt'): Promise<AptSource[]> {
  const out: AptSource[] = [];
  const list = await readFile(join(root, 'sources.list'), 'utf8').catch(() => '');
  out.push(...parseOneLine(list));
  const dir = join(root, 'sources.list.d');
  const files = await readdir(dir).catch(() => [] as string[]);
  for (const f of files.sort()) {
    const text = await readFile(join(dir, f), 'utf8').catch(() => '');
    if (f.endsWith('.sources')) out.push(...parseDeb822(text));
    else if (f.endsWith('.list')) out.push(...parseOneLine(text));
  }
  return out;
}
