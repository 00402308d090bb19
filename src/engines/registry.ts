import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PreflightProblem } from './preflight.js';

/**
 * The registry host of an image name prefix, by the rules image references follow: the first
 * part is a registry when it has a dot or a port, or is `localhost`. Undefined when the prefix
 * names none (such names mean Docker Hub, which podstack never contacts on its own).
 */
export function registryOf(prefix: string): string | undefined {
  const slash = prefix.indexOf('/');
  if (slash < 0) return undefined;
  const first = prefix.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/** What one GET of a registry's /v2/ gave: an HTTP status, or the error that kept it from one. */
export type Answer = { readonly status: number } | { readonly error: string; readonly code?: string };

export type Getter = (url: string, verifyTls: boolean) => Promise<Answer>;

/** One GET, no redirects followed, no body read beyond what ends the request. */
export const getOnce: Getter = (url, verifyTls) => ask(url, verifyTls, 'GET');

/** One request; a HEAD's answer carries the headers too. */
function ask(
  url: string,
  verifyTls: boolean,
  method: 'GET' | 'HEAD',
  headers: Record<string, string> = {},
): Promise<Answer & { readonly headers?: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, { method, headers, timeout: 5000, rejectUnauthorized: verifyTls }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ error: e.message, ...(e.code ? { code: e.code } : {}) }),
    );
    req.end();
  });
}

/** The manifest types a push writes (OCI with zstd; Docker's schema 2 with gzip), and lists of them. */
const MANIFESTS = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/**
 * The digest of the manifest the registry holds for an image reference now, asked with one HEAD
 * of /v2/<repository>/manifests/<tag>, over HTTPS as tlsVerify says (without it, unverified HTTPS
 * then plain HTTP, as Podman pushes). Undefined when the registry has none, wants a login, or
 * does not answer: the caller then pushes, as it would have anyway.
 */
export async function manifestDigest(ref: string, tlsVerify: boolean): Promise<string | undefined> {
  const registry = registryOf(ref);
  const colon = ref.lastIndexOf(':');
  if (registry === undefined || colon <= ref.lastIndexOf('/')) return undefined;
  const path = `/v2/${ref.slice(registry.length + 1, colon)}/manifests/${ref.slice(colon + 1)}`;
  for (const scheme of tlsVerify ? ['https'] : ['https', 'http']) {
    const a = await ask(`${scheme}://${registry}${path}`, tlsVerify, 'HEAD', { Accept: MANIFESTS });
    if (!('status' in a)) continue;
    const digest = a.headers?.['docker-content-digest'];
    return a.status === 200 && typeof digest === 'string' ? digest : undefined;
  }
  return undefined;
}

/** The Docker registry API answers /v2/ with 200, or 401 when it wants a login: either way, it is there. */
const isRegistry = (a: Answer) => 'status' in a && (a.status === 200 || a.status === 401);

const describe = (a: Answer) => ('status' in a ? `HTTP ${a.status}, not a registry's answer` : a.error);

/**
 * Whether the registry in images.prefix answers, asked from where podstack runs (it pushes from
 * here; the nodes pull from it too, which only a pod could check). Only that registry is
 * contacted. With tlsVerify, HTTPS with a verified certificate, as the push will be; without it,
 * as Podman's --tls-verify=false does: HTTPS unverified, then plain HTTP.
 */
export async function registryProblems(
  prefix: string,
  tlsVerify: boolean,
  get: Getter = getOnce,
): Promise<PreflightProblem[]> {
  const registry = registryOf(prefix);
  if (registry === undefined) return [];
  const https = await get(`https://${registry}/v2/`, tlsVerify);
  if (isRegistry(https)) return [];
  if (tlsVerify) {
    const plain = 'status' in https ? undefined : await get(`http://${registry}/v2/`, false);
    return [
      {
        what: `the registry ${registry} (images.prefix) did not answer https://${registry}/v2/: ${describe(https)}`,
        fix:
          plain && isRegistry(plain)
            ? `it answers plain HTTP: set images.tlsVerify to false in the cloud file (and let the nodes' container runtime pull from it over HTTP)`
            : `start the registry, or set images.prefix to <host>:<port>/podstack of a registry that this host and the cluster's nodes reach${
                'code' in https && /CERT|SSL|TLS|SELF_SIGNED/i.test(https.code ?? '')
                  ? `; its certificate was refused: trust its CA on this host, or set images.tlsVerify to false`
                  : ''
              }`,
      },
    ];
  }
  const plain = await get(`http://${registry}/v2/`, false);
  if (isRegistry(plain)) return [];
  return [
    {
      what: `the registry ${registry} (images.prefix) did not answer /v2/ over HTTPS (${describe(https)}) or HTTP (${describe(plain)})`,
      fix: `start the registry, or set images.prefix to <host>:<port>/podstack of a registry that this host and the cluster's nodes reach`,
    },
  ];
}
