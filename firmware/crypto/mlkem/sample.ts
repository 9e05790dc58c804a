/**
 * ML-KEM hashing and sampling (FIPS 203 §4.1, §4.2.2), with every Keccak
 * call done by OpenSSL through node:crypto:
 *
 *   H = SHA3-256, G = SHA3-512, J(s) = SHAKE256(s, 8·32)   (§4.1)
 *   PRF_η(s, b) = SHAKE256(s‖b, 8·64η)                      (§4.1)
 *   XOF = SHAKE128, used only through SampleNTT            (§4.1, §4.2.2 Algorithm 7)
 *   SamplePolyCBD_η                                         (§4.2.2 Algorithm 8)
 *
 * node:crypto's XOF interface is one-shot (createHash(.., {outputLength})),
 * not incremental squeezing. SampleNTT therefore asks for a fixed number of
 * SHAKE128 blocks up front and, in the rare case the rejection sampler runs
 * out, asks again for a longer output: SHAKE's output for a longer length
 * has the shorter one as prefix, so parsing resumes where it stopped and the
 * result is exactly Algorithm 7's.
 *
 * With the native addon loaded (crypto/native.ts) every one of these is one
 * call into OpenSSL's Keccak with the EVP_MD fetched once and a reused
 * context, writing into a Uint8Array; node:crypto is the fallback.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { NativeHash, nativeCrypto } from '../native.js';

// Private copies (see poly.ts: exported bindings are slow in hot loops).
const N = 256;
const Q = 3329;

/** SHAKE128 rate in octets. */
const XOF_BLOCK = 168;
/**
 * 3 blocks = 504 octets = 336 candidates for 256 coefficients; each is
 * accepted with probability q/4096 ≈ 0.81 (mean 273), so a refill is needed
 * for 0.83% of matrix entries (binomial tail). Measured here (Node 20,
 * OpenSSL 3.0): 504 octets ≈ 1.9 µs, 672 ≈ 2.2 µs, 840 ≈ 2.55 µs per call, so
 * 504 plus the rare 840-octet retry (≈ 1.92 µs expected) beats always 672.
 */
export const XOF_INITIAL = 3 * XOF_BLOCK;

/** G(x) = SHA3-512(x): 64 octets. */
export function G(x: Uint8Array): Uint8Array {
  const lib = nativeCrypto();
  if (!lib) return oneShotHash('sha3-512', x, 'buffer');
  const out = new Uint8Array(64);
  lib.hash(NativeHash.SHA3_512, out, x);
  return out;
}

/** H(x) = SHA3-256(x): 32 octets. */
export function H(x: Uint8Array): Uint8Array {
  const lib = nativeCrypto();
  if (!lib) return oneShotHash('sha3-256', x, 'buffer');
  const out = new Uint8Array(32);
  lib.hash(NativeHash.SHA3_256, out, x);
  return out;
}

/** Scratch for hInto's native path (H(ek) is public). */
const H_SCRATCH = new Uint8Array(32);

/** H(x) into out[off .. off+32]; via a latin1 string (cheaper than a Buffer: H(ek) is public). */
export function hInto(x: Uint8Array, out: Uint8Array, off: number): void {
  const lib = nativeCrypto();
  if (lib) {
    lib.hash(NativeHash.SHA3_256, H_SCRATCH, x);
    out.set(H_SCRATCH, off);
    return;
  }
  const s = oneShotHash('sha3-256', x, 'binary');
  for (let i = 0; i < 32; i++) out[off + i] = s.charCodeAt(i);
}

const J_OPTS = { outputLength: 32 };
/** J(z‖c) = SHAKE256(z‖c, 32 octets), the implicit-rejection key K̄. */
export function J(z: Uint8Array, c: Uint8Array): Uint8Array {
  const lib = nativeCrypto();
  if (!lib) return createHash('shake256', J_OPTS).update(z).update(c).digest();
  const out = new Uint8Array(32);
  lib.hash(NativeHash.SHAKE256, out, z, c);
  return out;
}

const PRF_OPTS: Record<number, { outputLength: number }> = {
  2: { outputLength: 128 },
  3: { outputLength: 192 },
};

/** PRF_η(s, b): `seed33` holds s (32 octets) ‖ b (1 octet), set by the caller. */
export function prf(seed33: Uint8Array, eta: number): Uint8Array {
  const lib = nativeCrypto();
  if (!lib) return createHash('shake256', PRF_OPTS[eta]).update(seed33).digest();
  const out = new Uint8Array(64 * eta);
  lib.hash(NativeHash.SHAKE256, out, seed33);
  return out;
}

const XOF_OPTS: Record<number, { outputLength: number }> = {};
function xof(seed34: Uint8Array, len: number): string {
  const opts = (XOF_OPTS[len] ??= { outputLength: len });
  // 'binary' = latin1 (one octet per UTF-16 code unit) rather than a Buffer: a V8 string
  // is much cheaper to create and collect than a Buffer's external backing
  // store. Fine for this output only because it is public (derived from ρ).
  return createHash('shake128', opts).update(seed34).digest('binary');
}

/** The native path's XOF output (public: derived from ρ), grown on a refill. */
let xofBuf = new Uint8Array(XOF_INITIAL + 2 * XOF_BLOCK);

function xofNative(lib: NonNullable<ReturnType<typeof nativeCrypto>>, seed34: Uint8Array, len: number): Uint8Array {
  if (xofBuf.length < len) xofBuf = new Uint8Array(len);
  const out = xofBuf.length === len ? xofBuf : xofBuf.subarray(0, len);
  lib.hash(NativeHash.SHAKE128, out, seed34);
  return out;
}

/** Candidates of one 504-octet squeeze (336) + slack for a refill's 224. */
const candidates = new Int16Array(512);
const first256 = candidates.subarray(0, N);

/**
 * Algorithm 7's loop over 3-octet groups from `from` to `to` of `buf`,
 * appending the accepted 12-bit values to `candidates` from index j.
 * Branch-free (write always, advance only if < q): the accept/reject pattern
 * is public, but mispredicted branches cost more here than the extra stores.
 */
function parse(buf: string, from: number, to: number, j: number): number {
  for (let i = from; i < to; i += 3) {
    const b0 = buf.charCodeAt(i);
    const b1 = buf.charCodeAt(i + 1);
    const b2 = buf.charCodeAt(i + 2);
    const d1 = b0 | ((b1 & 0x0f) << 8);
    const d2 = (b1 >> 4) | (b2 << 4);
    candidates[j] = d1;
    j += (d1 - Q) >>> 31;
    candidates[j] = d2;
    j += (d2 - Q) >>> 31;
  }
  return j;
}

/** parse() over bytes (the native path); a separate function keeps both monomorphic. */
function parseBytes(buf: Uint8Array, from: number, to: number, j: number): number {
  for (let i = from; i < to; i += 3) {
    const b0 = buf[i]!;
    const b1 = buf[i + 1]!;
    const b2 = buf[i + 2]!;
    const d1 = b0 | ((b1 & 0x0f) << 8);
    const d2 = (b1 >> 4) | (b2 << 4);
    candidates[j] = d1;
    j += (d1 - Q) >>> 31;
    candidates[j] = d2;
    j += (d2 - Q) >>> 31;
  }
  return j;
}

/**
 * SampleNTT(ρ‖j‖i) (Algorithm 7): `seed34` = ρ ‖ j ‖ i, set by the caller.
 * Output coefficients in [0, q), in NTT domain. ρ is public, so the
 * data-dependent loop count leaks nothing secret. The first 256 accepted
 * values are Algorithm 7's output whatever was parsed after them.
 * `initialLen` (a multiple of 3) is a parameter only so tests can force the
 * refill path.
 */
export function sampleNtt(seed34: Uint8Array, f: Int16Array, initialLen: number = XOF_INITIAL): void {
  if (initialLen > XOF_INITIAL || initialLen % 3 !== 0) throw new RangeError('sampleNtt: initialLen must be a multiple of 3, at most 504');
  let len = initialLen;
  const lib = nativeCrypto();
  if (lib) {
    let j = parseBytes(xofNative(lib, seed34, len), 0, len, 0);
    while (j < N) {
      const from = len;
      len += 2 * XOF_BLOCK;
      j = parseBytes(xofNative(lib, seed34, len), from, len, j);
    }
    f.set(first256);
    return;
  }
  let j = parse(xof(seed34, len), 0, len, 0);
  while (j < N) {
    // Out of XOF output: squeeze further (re-hash for a longer output, same
    // prefix) and parse only the new part; at most 224 more candidates, and
    // j < 256 here, so `candidates` cannot overflow.
    const from = len;
    len += 2 * XOF_BLOCK;
    j = parse(xof(seed34, len), from, len, j);
  }
  f.set(first256);
}

/**
 * SamplePolyCBD_η (Algorithm 8) for η ∈ {2, 3}: coefficient i is
 * (sum of η bits) - (sum of the next η bits), bits taken little-endian from
 * B (64η octets). Bit-sliced: each bit-pair/triple field of `d` holds one
 * partial sum. Output in [-η, η] (not reduced mod q; the NTT accepts it).
 * Runs on secret data: no branches or lookups on it.
 */
export function cbd(B: Uint8Array, eta: number, f: Int16Array): void {
  f.fill(0);
  cbdAdd(B, eta, f);
}

/** f += SamplePolyCBD_η(B): adds the noise in place (e1, e2 in K-PKE.Encrypt). Unrolled: V8 does not unroll loops. */
export function cbdAdd(B: Uint8Array, eta: number, f: Int16Array): void {
  if (eta === 2) {
    // 4 octets -> 8 coefficients, 4 bits each: two 2-bit sums (x, y).
    for (let i = 0, o = 0; i < N; i += 8, o += 4) {
      const t = B[o]! | (B[o + 1]! << 8) | (B[o + 2]! << 16) | (B[o + 3]! << 24);
      // (x + y) | 0 keeps the sum an int32 bit pattern (the fields never carry).
      const d = ((t & 0x55555555) + ((t >>> 1) & 0x55555555)) | 0;
      f[i] = f[i]! + (d & 3) - ((d >>> 2) & 3);
      f[i + 1] = f[i + 1]! + ((d >>> 4) & 3) - ((d >>> 6) & 3);
      f[i + 2] = f[i + 2]! + ((d >>> 8) & 3) - ((d >>> 10) & 3);
      f[i + 3] = f[i + 3]! + ((d >>> 12) & 3) - ((d >>> 14) & 3);
      f[i + 4] = f[i + 4]! + ((d >>> 16) & 3) - ((d >>> 18) & 3);
      f[i + 5] = f[i + 5]! + ((d >>> 20) & 3) - ((d >>> 22) & 3);
      f[i + 6] = f[i + 6]! + ((d >>> 24) & 3) - ((d >>> 26) & 3);
      f[i + 7] = f[i + 7]! + ((d >>> 28) & 3) - (d >>> 30);
    }
  } else {
    // 3 octets -> 4 coefficients, 6 bits each: two 3-bit sums.
    for (let i = 0, o = 0; i < N; i += 4, o += 3) {
      const t = B[o]! | (B[o + 1]! << 8) | (B[o + 2]! << 16);
      const d = (t & 0x249249) + ((t >>> 1) & 0x249249) + ((t >>> 2) & 0x249249);
      f[i] = f[i]! + (d & 7) - ((d >>> 3) & 7);
      f[i + 1] = f[i + 1]! + ((d >>> 6) & 7) - ((d >>> 9) & 7);
      f[i + 2] = f[i + 2]! + ((d >>> 12) & 7) - ((d >>> 15) & 7);
      f[i + 3] = f[i + 3]! + ((d >>> 18) & 7) - (d >>> 21);
    }
  }
}
