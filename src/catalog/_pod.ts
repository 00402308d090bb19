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

/** A file only root reads (a key, a password), copied into place by podstack-start. */
export function rootFile(key: string, dest: string, content: string, mode = '0600'): ConfigFile {
  return { key, dest, owner: 'root', mode, content };
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

/**
 * Exit 0 when a process of the container it runs in holds an established TCP connection to
 * `port` (argument 1): a queue worker's readiness, run in the worker's container (python3 is in
 * every OpenStack image). It sees only its own container's processes, so a new generation
 * beside the old one (same network namespace, both connected) answers for itself. oslo.messaging
 * declares a server's queues, its fanout queue too, on the connection it has just made: the old
 * generation, whose fanout queue goes with it, must not stop before then, or RabbitMQ deletes the
 * fanout exchange (auto-delete, no queue left) and nova-compute's casts to it fail (seen: a
 * server build went to ERROR, "no exchange 'scheduler_fanout'").
 */
export const CONNECTED_PROBE = [
  'import os, sys',
  'port = int(sys.argv[1])',
  'inodes = set()',
  "for table in ('/proc/net/tcp', '/proc/net/tcp6'):",
  '    try:',
  '        rows = open(table).read().splitlines()[1:]',
  '    except OSError:',
  '        continue',
  '    for row in rows:',
  '        f = row.split()',
  "        if len(f) > 9 and f[3] == '01' and int(f[2].rsplit(':', 1)[1], 16) == port:",
  '            inodes.add(f[9])',
  'def holds(pids):',
  '    denied = []',
  '    for pid in pids:',
  '        try:',
  "            for fd in os.listdir(f'/proc/{pid}/fd'):",
  "                target = os.readlink(f'/proc/{pid}/fd/{fd}')",
  "                if target.startswith('socket:[') and target[8:-1] in inodes:",
  '                    return True, []',
  '        except PermissionError:',
  '            denied.append(pid)',
  '        except OSError:',
  '            pass',
  '    return False, denied',
  "found, denied = holds([p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()])",
  '# Root in a container (no CAP_SYS_PTRACE) may not read the sockets of a process of another',
  "# user (the service's, after podstack-start dropped to it): ask again as that user.",
  'owners = {}',
  'for pid in denied if os.getuid() == 0 and not found else []:',
  '    try:',
  "        st = os.stat(f'/proc/{pid}')",
  '    except OSError:',
  '        continue',
  '    owners.setdefault((st.st_uid, st.st_gid), []).append(pid)',
  'for (uid, gid), pids in owners.items():',
  '    child = os.fork()',
  '    if child == 0:',
  '        os.setgroups([])',
  '        os.setgid(gid)',
  '        os.setuid(uid)',
  '        os._exit(0 if holds(pids)[0] else 1)',
  '    if os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0:',
  '        found = True',
  '        break',
  'if not found:',
  "    print(f'no connection to port {port} yet')",
  'sys.exit(0 if found else 1)',
].join('\n');

/** A queue worker is ready once it is connected to the queue's port (see CONNECTED_PROBE). */
export const readinessConnected = (port: number) => ({
  exec: { command: ['python3', '-c', CONNECTED_PROBE, String(port)] },
  periodSeconds: 5,
  timeoutSeconds: 10,
  failureThreshold: 3,
});

/**
 * oslo.service's wait for a stopping nova-compute or metadata agent: 5 s, not 60. Their node pod
 * stops only when its guests stop with it (down, a new node pod), and each of them outlived the
 * pod's 30 s grace on SIGTERM (measured: the two were the last containers running, killed at
 * 30 s). The user's own setting wins.
 */
export const NODE_SHUTDOWN = { DEFAULT: { graceful_shutdown_timeout: 5 } } as const;
