/**
 * PRFs and prf+.
 *
 *  - RFC 7296 §3.3.2 / RFC 4868 §2: PRF_HMAC_SHA2_256/384/512 (ids 5/6/7);
 *    HMAC per RFC 2104 with any key length (SKEYSEED is keyed with Ni | Nr).
 *  - RFC 7296 §2.13: prf+ (K,S) = T1 | T2 | T3 | ...
 *        T1 = prf (K, S | 0x01)
 *        Tn = prf (K, T(n-1) | S | n)      for n = 2 .. 255
 *    "The prf+ function is not defined beyond 255 times the size of the prf
 *    function output."
 *
 * Both run in one call of the native addon when it is loaded (crypto/native.ts:
 * HMAC on OpenSSL's SHA-2 block functions, the ipad/opad states computed once
 * per key and reused for every prf+ block); node:crypto is the fallback and
 * the reference.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { PqError } from '../util/errors.js';
import type { Prf } from './types.js';
import { PRF_TABLE } from './algorithms.js';
import { NativeHash, nativeCrypto } from './native.js';

const NATIVE_ALG: Record<string, number> = { sha256: NativeHash.SHA256, sha384: NativeHash.SHA384, sha512: NativeHash.SHA512 };

/** HMAC-based PRF. `mac()` avoids concatenating inputs (used by prf+). */
class HmacPrf implements Prf {
  readonly id: number;
  readonly name: string;
  readonly keySize: number;
  readonly outSize: number;
  readonly hash: string;
  /** The addon's algorithm number. */
  readonly nativeAlg: number;
  constructor(id: number, name: string, hash: string, size: number) {
    this.id = id;
    this.name = name;
    this.hash = hash;
    this.keySize = size;
    this.outSize = size;
    this.nativeAlg = NATIVE_ALG[hash]!;
  }
  compute(key: Uint8Array, data: Uint8Array): Uint8Array {
    const lib = nativeCrypto();
    if (lib) {
      if (!(key instanceof Uint8Array) || !(data instanceof Uint8Array)) throw new TypeError('prf: expected Uint8Array key and data');
      const out = new Uint8Array(this.outSize);
      lib.hmac(this.nativeAlg, key, out, data);
      return out;
    }
    return this.mac(key, data);
  }
  mac(key: Uint8Array | KeyObject, ...parts: Uint8Array[]): Uint8Array {
    const h = createHmac(this.hash, key);
    for (const p of parts) h.update(p);
    const d = h.digest();
    return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
  }
}

// PRF objects are stateless: one shared instance per id.
const prfs = new Map<number, HmacPrf>();

export function createPrf(id: number): Prf {
  let prf = prfs.get(id);
  if (!prf) {
    const row = PRF_TABLE[id];
    if (!row) throw new PqError('ERR_UNSUPPORTED', `unsupported PRF ${id}`);
    prf = new HmacPrf(id, row.name, row.hash, row.size);
    prfs.set(id, prf);
  }
  return prf;
}

/**
 * prf+ (RFC 7296 §2.13), truncated to `length` octets. Throws if more than
 * 255 PRF blocks would be needed.
 */
export function prfPlus(prf: Prf, key: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) throw new TypeError(`prfPlus: length must be a non-negative integer, got ${length}`);
  const blocks = Math.ceil(length / prf.outSize);
  if (blocks > 255) {
    throw new PqError('ERR_PRF_PLUS_LENGTH', `prf+ cannot produce ${length} octets with ${prf.name} (max ${255 * prf.outSize})`);
  }
  const lib = prf instanceof HmacPrf ? nativeCrypto() : undefined;
  if (lib) {
    if (!(key instanceof Uint8Array) || !(seed instanceof Uint8Array)) throw new TypeError('prfPlus: expected Uint8Array key and seed');
    const res = new Uint8Array(length);
    lib.prfPlus((prf as HmacPrf).nativeAlg, key, seed, res);
    return res;
  }
  const out = new Uint8Array(blocks * prf.outSize);
  const counter = new Uint8Array(1);
  // One KeyObject for all blocks: createHmac with a KeyObject skips the key
  // import that a raw key costs on every call (~40 % of a short HMAC here).
  const keyObj = prf instanceof HmacPrf && blocks > 1 && key.length > 0 ? createSecretKey(key) : undefined;
  const mac = prf instanceof HmacPrf ? (k: Uint8Array, ...p: Uint8Array[]) => prf.mac(keyObj ?? k, ...p) : null;
  let prev: Uint8Array = new Uint8Array(0);
  for (let n = 1; n <= blocks; n++) {
    counter[0] = n;
    // T(n) = prf(K, T(n-1) | S | n), with T(0) empty.
    const t = mac ? mac(key, prev, seed, counter) : prf.compute(key, concat3(prev, seed, counter));
    out.set(t, (n - 1) * prf.outSize);
    prev.fill(0);
    prev = t;
  }
  prev.fill(0);
  if (out.length === length) return out;
  const res = out.slice(0, length);
  out.fill(0);
  return res;
}

function concat3(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length + c.length);
  r.set(a, 0);
  r.set(b, a.length);
  r.set(c, a.length + b.length);
  return r;
}
