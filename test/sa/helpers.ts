import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPrf } from '../../firmware/crypto/registry.js';
import type { Prf } from '../../firmware/crypto/types.js';
import { fromHex } from '../../firmware/util/bytes.js';

/**
 * HMAC PRF built directly on node:crypto. The firmware's registry only has
 * the SHA-2 PRFs; the NIST sample set also has an HMAC-SHA-1 case (PRF id 2),
 * which exercises the keymat functions with a PRF whose key size (20) differs
 * from every SHA-2 one.
 */
export function hmacPrf(hash: 'sha1' | 'sha256' | 'sha384' | 'sha512', id: number): Prf {
  const size = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 }[hash];
  return {
    id,
    name: `TEST_HMAC_${hash}`,
    keySize: size,
    outSize: size,
    compute: (key, data) => new Uint8Array(createHmac(hash, key).update(data).digest()),
  };
}

/** Registry PRF for 5/6/7, the local one for HMAC-SHA-1. */
export function prfFor(hash: string, id: number): Prf {
  return hash === 'sha1' ? hmacPrf('sha1', id) : createPrf(id);
}

export function vector<T>(name: string): T {
  const p = fileURLToPath(new URL(`../vectors/kdf/${name}`, import.meta.url));
  return JSON.parse(readFileSync(p, 'utf8')) as T;
}

export const h = fromHex;
