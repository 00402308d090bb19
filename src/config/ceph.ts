import { createHmac } from 'node:crypto';

/**
 * Ceph's own key material, derived from entries of secrets.yaml rather than kept beside them:
 * every entry there stays one kind of value (a password), and a key changes exactly when its
 * entry does. The derivation is one-way (HMAC-SHA-256), so a derived value says nothing of
 * another secret derived from the same entry.
 */

function derive(seed: string, purpose: string): Buffer {
  return createHmac('sha256', seed).update(`podstack ceph ${purpose}`).digest();
}

/**
 * A cephx secret as `ceph-authtool --gen-key` writes it: base64 of a header (type 1 = AES, a
 * creation time, a length of 16) and 16 key bytes. The creation time is fixed at 0 so that the
 * same entry always gives the same key (Ceph does not read it).
 */
export function cephxKey(seed: string): string {
  const header = Buffer.alloc(12);
  header.writeInt16LE(1, 0);
  header.writeInt32LE(0, 2);
  header.writeInt32LE(0, 6);
  header.writeInt16LE(16, 10);
  return Buffer.concat([header, derive(seed, 'cephx').subarray(0, 16)]).toString('base64');
}

/** A random-looking (version 4, RFC 4122 variant) UUID, the same for the same entry. */
export function uuidFrom(seed: string, purpose: string): string {
  const b = derive(seed, `uuid ${purpose}`).subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** One entity of a keyring file: its key and capabilities (`caps mon = "..."` lines). */
export interface KeyringEntry {
  readonly entity: string;
  readonly key: string;
  readonly caps: Readonly<Record<string, string>>;
}

/** A keyring file as ceph-authtool writes it, for `auth import` and the daemons. */
export function renderKeyring(entries: readonly KeyringEntry[]): string {
  return entries
    .map((e) =>
      [
        `[${e.entity}]`,
        `\tkey = ${e.key}`,
        ...Object.entries(e.caps).map(([what, cap]) => `\tcaps ${what} = "${cap}"`),
      ].join('\n'),
    )
    .map((s) => `${s}\n`)
    .join('');
}
