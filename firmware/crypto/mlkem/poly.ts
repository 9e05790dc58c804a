/**
 * Arithmetic in R_q = Z_q[X]/(X^256 + 1), q = 3329, for ML-KEM (FIPS 203 §4.3).
 *
 *   ntt / invNtt    FIPS 203 Algorithms 9 and 10 (NTT, NTT^-1)
 *   basemulAcc      Algorithms 11 and 12 (MultiplyNTTs, BaseCaseMultiply),
 *                   summed over a row: the inner products Â∘ŝ, Âᵀ∘ŷ, t̂ᵀ∘ŷ, ŝᵀ∘û
 *
 * Representation: a polynomial is an Int16Array of 256 coefficients (a view
 * into a scratch buffer owned by the parameter-set context, kem.ts). Values
 * are kept in a lazily reduced signed range and brought to the canonical
 * [0, q) only where the spec needs exact values (ByteEncode, Compress).
 * Products of two variables use Montgomery reduction with R = 2^16, products
 * by a zeta in the forward NTT a Barrett (Shoup) multiplication with a
 * precomputed quotient constant, and sums are kept inside int16 by Barrett
 * reduction: the approach of the Kyber submission's reference code, with the
 * bounds re-derived below for our loop shapes (test/crypto/mlkem-fast.test.ts
 * checks the reductions exhaustively and the NTT product against schoolbook
 * multiplication). All of it is branch-free on coefficient values: secret
 * polynomials go through these functions.
 *
 * JS notes: Math.imul keeps products in int32 so V8 never falls back to
 * doubles; Int16Array stores truncate exactly like C's int16_t.
 *
 * ntt / invNtt / basemulAcc run in the native addon when it is loaded
 * (native/mlkem.c: the same operations in C, fed with the tables computed
 * here, ~4x faster per call); the JS functions (nttJs, ...) are the fallback
 * and the reference test/crypto/native.test.ts compares them with.
 */
import { nativeCrypto, type PqCryptoAddon } from '../native.js';

// Hot-path constants are module-private on purpose: V8 reads an *exported*
// binding through a cell on every access (live-binding semantics), which made
// the NTT ~15% slower. Other modules keep their own private copies too.
const N = 256;
const Q = 3329;
/** FIPS 203 §2.4 (n, q), for other modules' non-hot use and tests. */
export const MLKEM_N = 256;
export const MLKEM_Q = 3329;
/** q^-1 mod 2^16, as a signed 16-bit value. */
const QINV = -3327;
/** round(2^26 / q), for Barrett reduction of int16 values. */
const BARRETT_V = 20159;
/** 2^16 mod q: multiplying by it converts into Montgomery form. */
const MONT = 2285;
/** mont^2 / 128 mod q: the NTT^-1 final scaling (FIPS 203 Alg. 10 line 14: ×3303 = 128^-1) folded with one R. */
const INVNTT_F = 1441;
/** mont^2 mod q: fqmul(x, MONT2) = x·R, undoes the R^-1 of a Montgomery product. */
const MONT2 = 1353;

/**
 * Montgomery reduction: a·2^-16 mod q, for |a| < q·2^15; result in (-q, q).
 * t ≡ a·q^-1 (mod 2^16) makes a - t·q divisible by 2^16 exactly.
 */
export function mred(a: number): number {
  const t = (Math.imul(a, QINV) << 16) >> 16;
  return (a - Math.imul(t, Q)) >> 16;
}

/** Barrett reduction of |a| < 2^15 to the centered representative in [-(q-1)/2, (q-1)/2]. */
export function bred(a: number): number {
  const t = (Math.imul(BARRETT_V, a) + (1 << 25)) >> 26;
  return a - Math.imul(t, Q);
}

/** x·R mod q in (-q, q) for |x| < 2^15: undoes the R^-1 that basemulAcc leaves (keygen's t̂). */
export function fromMont(x: number): number {
  return mred(Math.imul(x, MONT2));
}

/** Canonical representative in [0, q) of |a| < 2^15 (Barrett, then add q if negative, branch-free). */
export function canon(a: number): number {
  const r = bred(a);
  return r + ((r >> 31) & Q);
}

function bitRev7(i: number): number {
  let r = 0;
  for (let b = 0; b < 7; b++) r |= ((i >> b) & 1) << (6 - b);
  return r;
}

/**
 * 17^k mod q for k = 0..255, one multiplication each. The tables below index
 * it: computing each entry's power by repeated multiplication (up to 255 for
 * each of 256 entries) ran in V8's interpreter at every daemon start, ~0.09 s
 * under QEMU TCG (docs/image.md "Round 6").
 */
const POW17 = new Int32Array(256);
POW17[0] = 1;
for (let k = 1; k < 256; k++) POW17[k] = (POW17[k - 1]! * 17) % Q;

function centered(x: number): number {
  const r = ((x % Q) + Q) % Q;
  return r > (Q - 1) / 2 ? r - Q : r;
}

/**
 * FIPS 203 Appendix A: ζ^BitRev7(i) for ζ = 17 (zetas used by NTT / NTT^-1),
 * and ζ^(2·BitRev7(i)+1) (the γ of BaseCaseMultiply). Both computed here
 * rather than pasted, then stored in Montgomery form (×2^16 mod q, centered)
 * so that mred(zeta · x) = ζ·x mod q.
 */
export const ZETAS_PLAIN = new Int16Array(128);
export const GAMMAS_PLAIN = new Int16Array(128);
const ZETAS = new Int32Array(128);
const GAMMAS = new Int32Array(128);
/** ζ^BitRev7(i) centered, and round(that·2^16/q), for Barrett multiplication in ntt(). */
const ZB = new Int32Array(128);
const ZB_SHOUP = new Int32Array(128);
for (let i = 0; i < 128; i++) {
  ZETAS_PLAIN[i] = POW17[bitRev7(i)]!;
  GAMMAS_PLAIN[i] = POW17[2 * bitRev7(i) + 1]!;
  ZETAS[i] = centered(ZETAS_PLAIN[i]! * MONT);
  GAMMAS[i] = centered(GAMMAS_PLAIN[i]! * MONT);
  ZB[i] = centered(ZETAS_PLAIN[i]!);
  ZB_SHOUP[i] = Math.round((ZB[i]! * 65536) / Q);
}
/** ζ^BitRev7(1)·mont^2/128 in Montgomery form: invNtt's last-layer twiddle with the scaling folded in. */
const INVNTT_ZF = mred(Math.imul(ZETAS[1]!, INVNTT_F));

/**
 * a·z mod q for a constant z with zp = round(z·2^16/q) (Barrett / Shoup
 * multiplication): the quotient estimate round(a·zp/2^16) is within 0.75 of
 * a·z/q for |a| < 2^15, |z| <= (q-1)/2 (|zp| <= 2^15, so a·zp fits int32),
 * so the result is in (-0.75q, 0.75q). One shift fewer than a Montgomery
 * product, and no R factor.
 */
export function mulConst(a: number, z: number, zp: number): number {
  return Math.imul(a, z) - Math.imul((Math.imul(a, zp) + 0x8000) >> 16, Q);
}

/**
 * Forward NTT in place (FIPS 203 Algorithm 9), then Barrett-reduced.
 *
 * Layers are done two at a time (len = 128/64, 32/16, 8/4: each group of
 * four coefficients j, j+len/2, j+len, j+3len/2 goes through both layers in
 * registers), then the len = 2 layer fused with the final reduction; this
 * halves the loads/stores of the plain triple loop, same arithmetic.
 * Zeta for block b of layer len has index 128/len + b, as in Algorithm 9's
 * running index. Products by zetas are Barrett multiplications (mulConst):
 * plain domain, no Montgomery factor.
 * Bounds: input |f| < q; each layer adds less than q in magnitude (|mulConst| < q),
 * so before the final reduction |f| < 8q = 26632 < 2^15; output is centered,
 * which basemulAcc's bounds assume.
 */
export function nttJs(f: Int16Array): void {
  for (let len = 128; len >= 8; len >>= 2) {
    const h = len >> 1;
    for (let b = 0, start = 0; start < N; b++, start += 2 * len) {
      const k1 = 128 / len + b; // layer len, block b
      const k2 = 256 / len + 2 * b; // layer len/2, blocks 2b and 2b+1
      const z1 = ZB[k1]!, z1p = ZB_SHOUP[k1]!;
      const z2 = ZB[k2]!, z2p = ZB_SHOUP[k2]!;
      const z3 = ZB[k2 + 1]!, z3p = ZB_SHOUP[k2 + 1]!;
      for (let j = start, end = start + h; j < end; j++) {
        let a0 = f[j]!;
        let a1 = f[j + h]!;
        let a2 = f[j + len]!;
        let a3 = f[j + len + h]!;
        let t = mulConst(a2, z1, z1p);
        a2 = a0 - t;
        a0 = a0 + t;
        t = mulConst(a3, z1, z1p);
        a3 = a1 - t;
        a1 = a1 + t;
        t = mulConst(a1, z2, z2p);
        a1 = a0 - t;
        a0 = a0 + t;
        t = mulConst(a3, z3, z3p);
        a3 = a2 - t;
        a2 = a2 + t;
        f[j] = a0;
        f[j + h] = a1;
        f[j + len] = a2;
        f[j + len + h] = a3;
      }
    }
  }
  // len = 2 (zeta index 64 + b) with the Barrett reduction folded in.
  for (let b = 0, j = 0; j < N; b++, j += 4) {
    const z = ZB[64 + b]!;
    const zp = ZB_SHOUP[64 + b]!;
    const a0 = f[j]!;
    const a1 = f[j + 1]!;
    const t0 = mulConst(f[j + 2]!, z, zp);
    const t1 = mulConst(f[j + 3]!, z, zp);
    f[j] = bred(a0 + t0);
    f[j + 1] = bred(a1 + t1);
    f[j + 2] = bred(a0 - t0);
    f[j + 3] = bred(a1 - t1);
  }
}

/**
 * Inverse NTT in place (FIPS 203 Algorithm 10), Gentleman-Sande butterflies:
 * layers two at a time (2/4, 8/16, 32/64), then the len = 128 layer alone
 * with the final scaling folded in. Block c of layer len uses
 * ZETAS[256/len - 1 - c] (Algorithm 10's index running down from 127).
 * Differences go through a Montgomery product (|.| < q); sums are
 * Barrett-reduced once per layer pair: inside a pair they stay in int32
 * registers and reach at most 4q (mred inputs stay below 1664·4q < q·2^15).
 * Last layer: f[j] = (a + b)·F and f[j+128] = (b - a)·ζ·F as single
 * Montgomery products, with F = mont^2/128 (divides by 128 — Algorithm 10
 * line 14's ×3303 — and multiplies by R, cancelling the R^-1 basemulAcc
 * leaves) and ZF = ζ^BitRev7(1)·F pre-multiplied.
 * Input |f| < q; output in (-q, q).
 */
export function invNttJs(f: Int16Array): void {
  for (let len = 2; len <= 32; len <<= 2) {
    const len2 = 2 * len;
    for (let b = 0, start = 0; start < N; b++, start += 2 * len2) {
      const z2 = ZETAS[256 / len - 1 - 2 * b]!; // layer len, block 2b
      const z3 = ZETAS[256 / len - 2 - 2 * b]!; // layer len, block 2b+1
      const z1 = ZETAS[256 / len2 - 1 - b]!; // layer 2len, block b
      for (let j = start, end = start + len; j < end; j++) {
        let a0 = f[j]!;
        let a1 = f[j + len]!;
        let a2 = f[j + len2]!;
        let a3 = f[j + len2 + len]!;
        let t = a0;
        a0 = t + a1;
        a1 = mred(Math.imul(z2, a1 - t));
        t = a2;
        a2 = t + a3;
        a3 = mred(Math.imul(z3, a3 - t));
        t = a0;
        a0 = bred(t + a2);
        a2 = mred(Math.imul(z1, a2 - t));
        t = a1;
        a1 = bred(t + a3);
        a3 = mred(Math.imul(z1, a3 - t));
        f[j] = a0;
        f[j + len] = a1;
        f[j + len2] = a2;
        f[j + len2 + len] = a3;
      }
    }
  }
  for (let j = 0; j < 128; j++) {
    const t = f[j]!;
    const u = f[j + 128]!;
    f[j] = mred(Math.imul(t + u, INVNTT_F));
    f[j + 128] = mred(Math.imul(u - t, INVNTT_ZF));
  }
}

/**
 * r = R^-1 · Σ_l a_l ∘ b_l (FIPS 203 Algorithms 11/12, accumulated over l),
 * where a and b hold k polynomials back to back
 * (a_l = a[aOff + 256l .. aOff + 256l + 255], b_l = b[256l .. 256l + 255]).
 *
 * For each coefficient pair (Alg. 12 with γ = ζ^(2·BitRev7(p)+1)):
 *   c0 = a0·b0 + a1·b1·γ,  c1 = a0·b1 + a1·b0
 * The raw products are summed in int32 registers and reduced once at the end:
 * with |a| < q, |b| <= (q-1)/2 (a from SampleNTT or ByteDecode12, b from ntt())
 * each product is < q·(q-1)/2, so |c0|, |c1| < q^2 per l and the k <= 4 sum
 * stays below 4q^2 < q·2^15, the mred input bound. a1·b1 is reduced before
 * the γ multiply (γ is in Montgomery form, so mred(a1·b1)·γ is again a
 * plain-scale product). Output in (-q, q) carries a factor R^-1, removed by
 * invNtt's scaling or by an explicit ·MONT2 (keygen).
 */
export function basemulAccJs(r: Int16Array, a: Int16Array, aOff: number, b: Int16Array, k: number): void {
  const span = N * k;
  const d = aOff;
  for (let p = 0, i = 0; p < 128; p++, i += 2) {
    const g = GAMMAS[p]!;
    let c0 = 0;
    let c1 = 0;
    for (let o = i, end = i + span; o < end; o += N) {
      const a0 = a[d + o]!;
      const a1 = a[d + o + 1]!;
      const b0 = b[o]!;
      const b1 = b[o + 1]!;
      c0 += Math.imul(a0, b0) + Math.imul(mred(Math.imul(a1, b1)), g);
      c1 += Math.imul(a0, b1) + Math.imul(a1, b0);
    }
    r[i] = mred(c0);
    r[i + 1] = mred(c1);
  }
}

// ---------------------------------------------------------------- native dispatch

type PolyNative = Required<Pick<PqCryptoAddon, 'mlkemTables' | 'mlkemNtt' | 'mlkemInvNtt' | 'mlkemBasemulAcc'>>;
let tablesLoaded: PqCryptoAddon | undefined;

/** The addon's ML-KEM arithmetic, with this module's tables handed over once (kem.ts needs them too). */
export function polyNative(): PolyNative | undefined {
  const lib = nativeCrypto();
  if (!lib || typeof lib.mlkemNtt !== 'function') return undefined;
  if (tablesLoaded !== lib) {
    lib.mlkemTables!(ZB, ZB_SHOUP, ZETAS, GAMMAS, INVNTT_F, INVNTT_ZF);
    tablesLoaded = lib;
  }
  return lib as PolyNative;
}

/** FIPS 203 Algorithm 9 (see nttJs). */
export function ntt(f: Int16Array): void {
  const lib = polyNative();
  if (lib) lib.mlkemNtt(f);
  else nttJs(f);
}

/** FIPS 203 Algorithm 10 (see invNttJs). */
export function invNtt(f: Int16Array): void {
  const lib = polyNative();
  if (lib) lib.mlkemInvNtt(f);
  else invNttJs(f);
}

/** FIPS 203 Algorithms 11/12 summed over a row (see basemulAccJs). */
export function basemulAcc(r: Int16Array, a: Int16Array, aOff: number, b: Int16Array, k: number): void {
  const lib = polyNative();
  if (lib) lib.mlkemBasemulAcc(r, a, aOff, b, k);
  else basemulAccJs(r, a, aOff, b, k);
}
