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

export const readinessTcp = (port: number) => ({
  tcpSocket: { port },
  periodSeconds: 2,
  failureThreshold: 3,
});
