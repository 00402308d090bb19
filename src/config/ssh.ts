import { createHmac, createPrivateKey, createPublicKey } from 'node:crypto';

/**
 * An SSH key pair derived from an entry of secrets.yaml, as Ceph's keys are (src/config/ceph.ts):
 * the entry stays a password, and every node gets the same pair from it. Ed25519, whose private
 * key is any 32 bytes (the seed); OpenSSH's own file formats, which ssh reads as it reads what
 * ssh-keygen writes.
 */
export interface SshKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` ... (openssh-key-v1, unencrypted). */
  readonly privateKey: string;
  /** One authorized_keys line: `ssh-ed25519 AAAA... comment`. */
  readonly publicKey: string;
}

// PKCS#8 for an Ed25519 private key is this fixed prefix and the 32-byte seed (RFC 8410).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (b: Buffer | string) => {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([u32(buf.length), buf]);
};

export function sshKeyPair(seed: string, comment: string): SshKeyPair {
  const secret = createHmac('sha256', seed).update('podstack ssh ed25519').digest();
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, secret]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const pub = Buffer.from(jwk.x!, 'base64url');
  const publicBlob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  // The two check words only have to match each other; derived, so the file is the same every time.
  const check = secret.readUInt32BE(28);
  let keys = Buffer.concat([
    u32(check),
    u32(check),
    str('ssh-ed25519'),
    str(pub),
    str(Buffer.concat([secret, pub])),
    str(comment),
  ]);
  const pad = [];
  for (let i = 1; (keys.length + pad.length) % 8 !== 0; i++) pad.push(i);
  keys = Buffer.concat([keys, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    str('none'),
    str('none'),
    str(''),
    u32(1),
    str(publicBlob),
    str(keys),
  ]).toString('base64');
  const lines = body.match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
  };
}
