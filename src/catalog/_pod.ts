import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { CONFIG_DIR } from '../model/objects.js';

/**
 * Helpers shared by catalog files. A catalog file should read like a
 * description of its service; the Kubernetes plumbing that repeats lives here.
 */

export type MountSource =
  | { secret: string }
  | { configMap: string }
  | { claim: string }
  /** Scratch space shared by a pod's containers, emptied with every new pod. */
  | { emptyDir: true };

export interface Mount {
  readonly name: string;
  readonly source: MountSource;
  readonly path: string;
  readonly readOnly?: boolean;
}

/** Pod volumes plus the matching container mounts, from one list. */
export function podMounts(mounts: readonly Mount[]): { volumes: V1Volume[]; volumeMounts: V1VolumeMount[] } {
  const volumes = mounts.map((m): V1Volume => {
    if ('secret' in m.source)
      return { name: m.name, secret: { secretName: m.source.secret, defaultMode: 0o400 } };
    if ('configMap' in m.source) return { name: m.name, configMap: { name: m.source.configMap } };
    if ('emptyDir' in m.source) return { name: m.name, emptyDir: {} };
    return { name: m.name, persistentVolumeClaim: { claimName: m.source.claim } };
  });
  const volumeMounts = mounts.map(
    (m): V1VolumeMount => ({
      name: m.name,
      mountPath: m.path,
      ...(m.readOnly || !('claim' in m.source || 'emptyDir' in m.source) ? { readOnly: true } : {}),
    }),
  );
  return { volumes, volumeMounts };
}

/** A file the start protocol (podstack-start) copies from the config volume into place. */
export interface ConfigFile {
  readonly key: string;
  readonly dest: string;
  readonly owner: string;
  readonly mode: string;
  readonly content: string;
}

/**
 * The data of a config volume: the files, plus the `podstack-files` manifest
 * that tells podstack-start where each goes, who owns it and its mode.
 * `raw` entries are read in place by scripts (passwords), never copied.
 */
export function configBundle(
  files: readonly ConfigFile[],
  raw: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const manifest = files.map((f) => `${f.key} ${f.dest} ${f.owner} ${f.mode}`).join('\n');
  return {
    ...Object.fromEntries(files.map((f) => [f.key, f.content])),
    ...raw,
    'podstack-files': `${manifest}\n`,
  };
}

export const configMount = (secretName: string): Mount => ({
  name: 'config',
  source: { secret: secretName },
  path: CONFIG_DIR,
});

/**
 * An HTTP readiness probe for a server that a Service sends clients to. Ready as soon as it
 * answers once (a roll waits on that), but out of the Service only after it has not answered for
 * half a minute: under load (8 clients on a busy 2-core host) an API took 17 s per request, a
 * probe with the kubelet's 1 s timeout failed three times in a row, and with one replica the
 * Service was left with no endpoint at all, so every client was refused where it would have
 * waited.
 */
export const readinessHttp = (
  path: string,
  port: number,
  headers: readonly { name: string; value: string }[] = [],
) => ({
  httpGet: { path, port, ...(headers.length > 0 ? { httpHeaders: [...headers] } : {}) },
  periodSeconds: 2,
  timeoutSeconds: 10,
  failureThreshold: 3,
});

export const readinessTcp = (port: number) => ({
  tcpSocket: { port },
  periodSeconds: 2,
  failureThreshold: 3,
});
