// Certificates and kubeconfigs for the test cluster, made with openssl: one CA, one key pair
// per component, client identities in the subject as the apiserver's RBAC expects them.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { exec } from '../../src/_exec.js';

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await exec('openssl', args, { cwd });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.output}`);
}

interface Identity {
  readonly name: string;
  readonly subject: string;
  readonly usage: 'serverAuth' | 'clientAuth';
  readonly san?: string;
}

async function sign(dir: string, id: Identity): Promise<void> {
  await openssl(['genrsa', '-out', `${id.name}.key`, '2048'], dir);
  await openssl(
    ['req', '-new', '-key', `${id.name}.key`, '-subj', id.subject, '-out', `${id.name}.csr`],
    dir,
  );
  const ext = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${id.usage}`,
    ...(id.san ? [`subjectAltName=${id.san}`] : []),
  ];
  await writeFile(join(dir, `${id.name}.ext`), `${ext.join('\n')}\n`);
  // A random serial per certificate: a shared serial file races when certificates are signed
  // in parallel and leaves an empty certificate behind.
  const serial = `0x${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  await openssl(
    ['x509', '-req', '-in', `${id.name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', serial, '-days', '3650', '-extfile', `${id.name}.ext`, '-out', `${id.name}.crt`],
    dir,
  ); // biome-ignore format: one openssl command line
  if ((await readFile(join(dir, `${id.name}.crt`), 'utf8')).length === 0)
    throw new Error(`empty ${id.name}.crt`);
}

export const NODE_NAME = 'podstack-node';

/** Makes the PKI under `dir` unless it is already there (restarts keep their certificates). */
export async function ensurePki(dir: string, nodeIp: string): Promise<void> {
  if (existsSync(join(dir, 'done'))) return;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await openssl(['genrsa', '-out', 'ca.key', '2048'], dir);
  await openssl(['req', '-x509', '-new', '-nodes', '-key', 'ca.key', '-subj', '/CN=podstack-test-ca', '-days', '3650', '-out', 'ca.crt'], dir); // biome-ignore format: one command line
  const ids: Identity[] = [
    {
      name: 'apiserver',
      subject: '/CN=kube-apiserver',
      usage: 'serverAuth',
      san: `IP:127.0.0.1,IP:10.96.0.1,IP:${nodeIp},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local`,
    },
    {
      name: 'kubelet-server',
      subject: `/CN=${NODE_NAME}`,
      usage: 'serverAuth',
      san: `IP:${nodeIp},DNS:${NODE_NAME}`,
    },
    {
      name: 'apiserver-kubelet-client',
      subject: '/O=system:masters/CN=kube-apiserver-kubelet-client',
      usage: 'clientAuth',
    },
    { name: 'admin', subject: '/O=system:masters/CN=admin', usage: 'clientAuth' },
    { name: 'controller-manager', subject: '/CN=system:kube-controller-manager', usage: 'clientAuth' },
    { name: 'scheduler', subject: '/CN=system:kube-scheduler', usage: 'clientAuth' },
    { name: 'kubelet', subject: `/O=system:nodes/CN=system:node:${NODE_NAME}`, usage: 'clientAuth' },
    { name: 'kube-proxy', subject: '/CN=system:kube-proxy', usage: 'clientAuth' },
  ];
  await Promise.all(ids.map((id) => sign(dir, id)));
  await openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  await openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  await writeFile(join(dir, 'done'), '');
}

/**
 * A further node's kubelet identities (its client certificate, whose name the API server's
 * NodeRestriction checks, and its serving certificate for its address), unless already made.
 */
export async function ensureNodePki(dir: string, name: string, ip: string): Promise<void> {
  if (existsSync(join(dir, `kubelet-${name}.crt`)) && existsSync(join(dir, `kubelet-server-${name}.crt`)))
    return;
  await Promise.all([
    sign(dir, {
      name: `kubelet-${name}`,
      subject: `/O=system:nodes/CN=system:node:${name}`,
      usage: 'clientAuth',
    }),
    sign(dir, {
      name: `kubelet-server-${name}`,
      subject: `/CN=${name}`,
      usage: 'serverAuth',
      san: `IP:${ip},DNS:${name}`,
    }),
  ]);
}

/** A kubeconfig for one of the PKI's client identities, certificates embedded. */
export async function writeKubeconfig(
  file: string,
  pki: string,
  user: string,
  server: string,
): Promise<void> {
  const b64 = async (f: string) => (await readFile(join(pki, f))).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'podstack-test', cluster: { server, 'certificate-authority-data': await b64('ca.crt') } },
    ],
    users: [
      {
        name: user,
        user: {
          'client-certificate-data': await b64(`${user}.crt`),
          'client-key-data': await b64(`${user}.key`),
        },
      },
    ],
    contexts: [{ name: 'podstack-test', context: { cluster: 'podstack-test', user } }],
    'current-context': 'podstack-test',
  };
  await writeFile(file, stringify(config), { mode: 0o600 });
}
