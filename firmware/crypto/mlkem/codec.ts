/**
 * ML-KEM encodings (FIPS 203 §4.2.1): ByteEncode_d / ByteDecode_d
 * (Algorithms 5 and 6) fused with Compress_d / Decompress_d (§4.2.1) where
 * the spec always applies them together.
 *
 * Compress_d(x) = round(2^d·x / q) mod 2^d on the canonical x ∈ [0, q).
 * Because q is odd there are no ties, so round(2^d·x/q) = ⌊(2^d·x + 1664)/q⌋.
 * The division is a multiply by a constant: for d = 10, 11 by ⌈2^32/q⌉ in
 * double precision (every product is < 2^53, so exact), then truncation; for
 * d <= 5 by ⌈2^S/q⌉ in uint32 (Math.imul, then >>> S). No integer division
 * on secret data (the KyberSlash timing issue), and no table lookups indexed
 * by secret values. test/crypto/mlkem-fast.test.ts checks every path against
 * the exact rational formula for every x in [0, q).
 */
import { canon } from './poly.js';

// Private copies (see poly.ts: exported bindings are slow in hot loops).
const N = 256;
const Q = 3329;

/** ⌈2^32 / q⌉: ⌊n·M / 2^32⌋ = ⌊n / q⌋ for all n < 2^23 (all n here). */
const COMPRESS_M = 1290168;
const TWO_POW_M32 = 2 ** -32;

/** ⌈2^27/q⌉ and ⌈2^26/q⌉: exact for (x·2^d + 1664) with d <= 4 resp. d = 5, all products < 2^32. */
const M27 = 40318;
const M26 = 20159;

/** Compress_d of a canonical x ∈ [0, q) (the double-precision path, any d <= 11). */
export function compress(x: number, d: number): number {
  return ((x * (1 << d) + 1664) * COMPRESS_M * TWO_POW_M32) & ((1 << d) - 1);
}

/** Decompress_d(y) = round(q·y / 2^d) = ⌊(q·y + 2^(d-1)) / 2^d⌋. */
export function decompress(y: number, d: number): number {
  return (Math.imul(y, Q) + (1 << (d - 1))) >> d;
}

/**
 * ByteEncode_12 of a polynomial already in canonical form [0, q)
 * (two coefficients in three octets, little-endian).
 */
export function encode12(f: Int16Array, out: Uint8Array, off: number): void {
  for (let i = 0, o = off; i < N; i += 2, o += 3) {
    const a = f[i]!;
    const b = f[i + 1]!;
    out[o] = a;
    out[o + 1] = (a >> 8) | (b << 4);
    out[o + 2] = b >> 4;
  }
}

/**
 * ByteDecode_12 (Algorithm 6 with m = q): the 12-bit values are reduced
 * mod q, as the spec says for d = 12; used for ŝ and t̂ read from a
 * decapsulation key (which, unlike an ek, gets no modulus check).
 */
export function decode12(b: Uint8Array, off: number, f: Int16Array): void {
  for (let i = 0, o = off; i < N; i += 2, o += 3) {
    const b1 = b[o + 1]!;
    const x = b[o]! | ((b1 & 0x0f) << 8);
    const y = (b1 >> 4) | (b[o + 2]! << 4);
    // x < 4096 < 2q: one conditional subtraction, branch-free.
    const xr = x - Q;
    const yr = y - Q;
    f[i] = xr + ((xr >> 31) & Q);
    f[i + 1] = yr + ((yr >> 31) & Q);
  }
}

/**
 * ByteDecode_12 for an encapsulation key, fused with the FIPS 203 §7.2
 * modulus check: ByteEncode12(ByteDecode12(x)) = x exactly when every 12-bit
 * value is < q. Returns true if all are; f is filled either way.
 */
export function decode12Checked(b: Uint8Array, off: number, f: Int16Array): boolean {
  let bad = 0;
  for (let i = 0, o = off; i < N; i += 2, o += 3) {
    const b1 = b[o + 1]!;
    const x = b[o]! | ((b1 & 0x0f) << 8);
    const y = (b1 >> 4) | (b[o + 2]! << 4);
    f[i] = x;
    f[i + 1] = y;
    bad |= (Q - 1 - x) | (Q - 1 - y); // negative iff a value is >= q
  }
  return bad >= 0;
}

/** Modulus check alone (no decode), for checkEncapsulationKey. */
export function modulusOk(b: Uint8Array, off: number, len: number): boolean {
  let bad = 0;
  for (let o = off, end = off + len; o < end; o += 3) {
    const b1 = b[o + 1]!;
    bad |= (Q - 1 - (b[o]! | ((b1 & 0x0f) << 8))) | (Q - 1 - ((b1 >> 4) | (b[o + 2]! << 4)));
  }
  return bad >= 0;
}

/**
 * ByteEncode_d(Compress_d(f)) for d ∈ {4, 5, 10, 11}: the ciphertext parts
 * c1 (d = du) and c2 (d = dv). f may be in any lazily reduced range |f| < 2^15.
 * Octet layout per Algorithm 5: value i occupies bits i·d .. i·d+d-1 of a
 * little-endian bit string.
 */
export function compressEncode(f: Int16Array, d: number, out: Uint8Array, off: number): void {
  const mask = (1 << d) - 1;
  const scale = 1 << d;
  let o = off;
  if (d === 10) {
    // 4 values -> 5 octets (the hot case: du for ML-KEM-512/768).
    for (let i = 0; i < N; i += 4, o += 5) {
      const c0 = ((canon(f[i]!) * 1024 + 1664) * COMPRESS_M * TWO_POW_M32) & 1023;
      const c1 = ((canon(f[i + 1]!) * 1024 + 1664) * COMPRESS_M * TWO_POW_M32) & 1023;
      const c2 = ((canon(f[i + 2]!) * 1024 + 1664) * COMPRESS_M * TWO_POW_M32) & 1023;
      const c3 = ((canon(f[i + 3]!) * 1024 + 1664) * COMPRESS_M * TWO_POW_M32) & 1023;
      out[o] = c0;
      out[o + 1] = (c0 >> 8) | (c1 << 2);
      out[o + 2] = (c1 >> 6) | (c2 << 4);
      out[o + 3] = (c2 >> 4) | (c3 << 6);
      out[o + 4] = c3 >> 2;
    }
    return;
  }
  if (d === 4) {
    // dv for ML-KEM-512/768: 2 values per octet.
    for (let i = 0; i < N; i += 2, o++) {
      const c0 = (Math.imul((canon(f[i]!) << 4) + 1664, M27) >>> 27) & 15;
      const c1 = (Math.imul((canon(f[i + 1]!) << 4) + 1664, M27) >>> 27) & 15;
      out[o] = c0 | (c1 << 4);
    }
    return;
  }
  if (d === 5) {
    // dv for ML-KEM-1024: 8 values -> 5 octets.
    for (let i = 0; i < N; i += 8, o += 5) {
      const c0 = (Math.imul((canon(f[i]!) << 5) + 1664, M26) >>> 26) & 31;
      const c1 = (Math.imul((canon(f[i + 1]!) << 5) + 1664, M26) >>> 26) & 31;
      const c2 = (Math.imul((canon(f[i + 2]!) << 5) + 1664, M26) >>> 26) & 31;
      const c3 = (Math.imul((canon(f[i + 3]!) << 5) + 1664, M26) >>> 26) & 31;
      const c4 = (Math.imul((canon(f[i + 4]!) << 5) + 1664, M26) >>> 26) & 31;
      const c5 = (Math.imul((canon(f[i + 5]!) << 5) + 1664, M26) >>> 26) & 31;
      const c6 = (Math.imul((canon(f[i + 6]!) << 5) + 1664, M26) >>> 26) & 31;
      const c7 = (Math.imul((canon(f[i + 7]!) << 5) + 1664, M26) >>> 26) & 31;
      out[o] = c0 | (c1 << 5);
      out[o + 1] = (c1 >> 3) | (c2 << 2) | (c3 << 7);
      out[o + 2] = (c3 >> 1) | (c4 << 4);
      out[o + 3] = (c4 >> 4) | (c5 << 1) | (c6 << 6);
      out[o + 4] = (c6 >> 2) | (c7 << 3);
    }
    return;
  }
  // d = 11 (du for ML-KEM-1024): generic bit packing.
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < N; i++) {
    const c = ((canon(f[i]!) * scale + 1664) * COMPRESS_M * TWO_POW_M32) & mask;
    acc |= c << bits;
    bits += d;
    while (bits >= 8) {
      out[o++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  }
}

/** Decompress_d(ByteDecode_d(b[off ..])) for d ∈ {4, 5, 10, 11}; output in [0, q). */
export function decodeDecompress(b: Uint8Array, off: number, d: number, f: Int16Array): void {
  let o = off;
  if (d === 10) {
    for (let i = 0; i < N; i += 4, o += 5) {
      const b0 = b[o]!, b1 = b[o + 1]!, b2 = b[o + 2]!, b3 = b[o + 3]!, b4 = b[o + 4]!;
      f[i] = (Math.imul(b0 | ((b1 & 0x03) << 8), Q) + 512) >> 10;
      f[i + 1] = (Math.imul((b1 >> 2) | ((b2 & 0x0f) << 6), Q) + 512) >> 10;
      f[i + 2] = (Math.imul((b2 >> 4) | ((b3 & 0x3f) << 4), Q) + 512) >> 10;
      f[i + 3] = (Math.imul((b3 >> 6) | (b4 << 2), Q) + 512) >> 10;
    }
    return;
  }
  if (d === 4) {
    for (let i = 0; i < N; i += 2, o++) {
      const x = b[o]!;
      f[i] = (Math.imul(x & 15, Q) + 8) >> 4;
      f[i + 1] = (Math.imul(x >> 4, Q) + 8) >> 4;
    }
    return;
  }
  const mask = (1 << d) - 1;
  const half = 1 << (d - 1);
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < N; i++) {
    while (bits < d) {
      acc |= b[o++]! << bits;
      bits += 8;
    }
    f[i] = (Math.imul(acc & mask, Q) + half) >> d;
    acc >>>= d;
    bits -= d;
  }
}

/**
 * μ = Decompress_1(ByteDecode_1(m)) (FIPS 203 Algorithm 14 line 20), added to f:
 * each message bit becomes 0 or ⌈q/2⌋ = 1665. Branch-free on m (secret).
 */
export function addMessage(f: Int16Array, m: Uint8Array, off: number): void {
  for (let i = 0; i < 32; i++) {
    const byte = m[off + i]!;
    for (let j = 0; j < 8; j++) {
      const idx = 8 * i + j;
      f[idx] = f[idx]! + (-((byte >> j) & 1) & 1665);
    }
  }
}

/** ByteEncode_1(Compress_1(f)) (Algorithm 15 line 7): the decrypted message. */
export function compressMessage(f: Int16Array, out: Uint8Array, off: number): void {
  for (let i = 0; i < 32; i++) {
    let byte = 0;
    for (let j = 0; j < 8; j++) {
      const c = (Math.imul((canon(f[8 * i + j]!) << 1) + 1664, M27) >>> 27) & 1;
      byte |= c << j;
    }
    out[off + i] = byte;
  }
}
