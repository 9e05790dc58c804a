/**
 * The IKE crypto fast path in the in-tree addon (native/pqcrypto.c), typed.
 *
 * node:crypto builds a JS object, a C++ object and a fresh OpenSSL context per
 * call and looks the algorithm up by name; for the short inputs of an IKE
 * handshake that overhead is most of the cost (docs/benchmarks.md "native
 * crypto"). The addon does one call per HMAC / prf+ / hash / SK payload /
 * X25519 operation, with pre-keyed contexts.
 *
 * Used when the addon is built and exports these functions, unless
 * PQGATE_CRYPTO_NATIVE=0; otherwise every caller falls back to node:crypto,
 * which stays the reference (test/crypto/native.test.ts compares the two, and
 * @noble, on vectors and random inputs).
 */
import { loadNativeAddon } from '../util/native-addon.js';

/** HMAC / hash algorithm numbers of the addon. */
export const NativeHash = {
  SHA1: 0,
  SHA256: 1,
  SHA384: 2,
  SHA512: 3,
  SHA3_256: 4,
  SHA3_512: 5,
  SHAKE128: 6,
  SHAKE256: 7,
} as const;

/** SK AEAD algorithm numbers of the addon. */
export const NativeAead = {
  AES_128_GCM: 0,
  AES_192_GCM: 1,
  AES_256_GCM: 2,
  CHACHA20_POLY1305: 3,
} as const;

/** Opaque handle of one keyed AEAD context (an N-API external). */
export type NativeAeadHandle = { readonly __nativeAead: unique symbol };
/** Opaque handle of one keyed AES-CBC + HMAC context. */
export type NativeCbcHandle = { readonly __nativeCbc: unique symbol };

export interface PqCryptoAddon {
  /** HMAC(key, parts[0] | ... ) truncated to out.length (1..MAC length); 1-5 parts. */
  hmac(alg: number, key: Uint8Array, out: Uint8Array, ...parts: Uint8Array[]): void;
  /** prf+ (RFC 7296 §2.13) with HMAC-alg: out.length octets (at most 255 blocks); out must not overlap key/seed. */
  prfPlus(alg: number, key: Uint8Array, seed: Uint8Array, out: Uint8Array): void;
  /** Digest of parts[0] | ... into out (exactly the digest size; SHAKE: any length >= 1). */
  hash(alg: number, out: Uint8Array, ...parts: Uint8Array[]): void;
  skAeadNew(alg: number, key: Uint8Array, salt: Uint8Array, icvLen: number): NativeAeadHandle;
  /** out = C | tag, out.length = plain.length + icvLen. */
  skAeadSeal(h: NativeAeadHandle, aad: Uint8Array, iv: Uint8Array, plain: Uint8Array, out: Uint8Array): void;
  /** false when the tag does not verify or ctAndIcv is shorter than the ICV (out wiped). */
  skAeadOpen(h: NativeAeadHandle, aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array, out: Uint8Array): boolean;
  /** Cleanse and free the context now (idempotent). */
  skAeadFree(h: NativeAeadHandle): void;
  /** AES-CBC (key length 16/24/32) + HMAC-SHA2 (macAlg SHA256/384/512, RFC 4868 key and ICV sizes). */
  skCbcNew?(encKey: Uint8Array, macAlg: number, macKey: Uint8Array, icvLen: number): NativeCbcHandle;
  /** out = CBC(plain) | ICV, plain.length a multiple of 16, out.length = plain.length + icvLen. */
  skCbcSeal?(h: NativeCbcHandle, aad: Uint8Array, iv: Uint8Array, plain: Uint8Array, out: Uint8Array): void;
  /** ICV verified (constant time) before decryption; false for a bad ICV or length (out untouched). */
  skCbcOpen?(h: NativeCbcHandle, aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array, out: Uint8Array): boolean;
  skCbcFree?(h: NativeCbcHandle): void;
  x25519Public(priv: Uint8Array, out: Uint8Array): void;
  /** false (out zeroed) for an all-zero shared secret. */
  x25519Derive(priv: Uint8Array, peer: Uint8Array, out: Uint8Array): boolean;
  /** "direct" (OpenSSL's X25519 function, one scalar multiplication) or "evp" (public EVP_PKEY API). */
  readonly x25519Impl?: string;
  /** ML-KEM arithmetic (native/mlkem.c), same results as crypto/mlkem/poly.ts; tables first. */
  mlkemTables?(zb: Int32Array, zbShoup: Int32Array, zetas: Int32Array, gammas: Int32Array, invnttF: number, invnttZf: number): void;
  mlkemNtt?(f: Int16Array): void;
  mlkemInvNtt?(f: Int16Array): void;
  mlkemBasemulAcc?(r: Int16Array, a: Int16Array, aOff: number, b: Int16Array, k: number): void;
  /**
   * The whole ML-KEM (native/mlkem.c, FIPS 203 Algorithms 16-18) for k = 2/3/4, tables first.
   * Keygen from seed = d ‖ z; encaps returns false (nothing written) if ek fails the §7.2
   * modulus check; decaps returns false if dk fails the §7.3 hash check, else writes K' or
   * the implicit-rejection K̄. Lengths are exact (RangeError otherwise). aT: keygen writes Âᵀ there if given.
   */
  mlkemKeygen?(k: number, seed: Uint8Array, ek: Uint8Array, dk: Uint8Array, aT?: Int16Array): void;
  mlkemEncaps?(k: number, ek: Uint8Array, m: Uint8Array, ct: Uint8Array, ss: Uint8Array): boolean;
  /** aT (optional, Int16Array(k²·256)): Âᵀ written by mlkemKeygen for this dk's ρ, skips the k² SampleNTT. */
  mlkemDecaps?(k: number, ct: Uint8Array, dk: Uint8Array, ss: Uint8Array, aT?: Int16Array): boolean;
}

let cached: PqCryptoAddon | null | undefined;
let forced: boolean | undefined;
/** Read once: process.env is a slow getter, and this is asked on every crypto call. */
const ENV_OFF = process.env.PQGATE_CRYPTO_NATIVE === '0';

/** The addon's crypto functions, or undefined (not built, too old, or PQGATE_CRYPTO_NATIVE=0). */
export function nativeCrypto(): PqCryptoAddon | undefined {
  if (forced === false || (ENV_OFF && forced !== true)) return undefined;
  if (cached === undefined) {
    try {
      const lib = loadNativeAddon() as Partial<PqCryptoAddon>;
      cached = typeof lib.prfPlus === 'function' && typeof lib.skAeadNew === 'function' && typeof lib.x25519Derive === 'function' ? (lib as PqCryptoAddon) : null;
    } catch {
      cached = null; // not built: node:crypto only
    }
  }
  return cached ?? undefined;
}

/**
 * Tests only: force the fast path off (false), on if available (true), or back
 * to the default (undefined). Objects already built keep the path they chose.
 */
export function setNativeCrypto(on: boolean | undefined): void {
  forced = on;
}
