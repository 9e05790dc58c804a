/**
 * firmware/crypto/mlkem: ML-KEM (FIPS 203) on node:crypto hashing.
 *
 *  - building blocks against independent, slow reference formulas
 *    (reductions, compression, NTT vs. schoolbook multiplication, CBD, SampleNTT refill)
 *  - NIST ACVP vectors: the shared subset in test/vectors/crypto/mlkem-acvp-*.json
 *    and the supplement in test/vectors/crypto/mlkem-fast/ (README there)
 *  - byte-for-byte cross-check and interop with @noble/post-quantum
 *  - FIPS 203 §7.2 / §7.3 input checks
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ml_kem1024, ml_kem512, ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { mlkem1024, mlkem512, mlkem768, type MlKem } from '../../firmware/crypto/mlkem/index.js';
import { setNativeMlKem } from '../../firmware/crypto/mlkem/kem.js';
import { GAMMAS_PLAIN, MLKEM_Q as Q, ZETAS_PLAIN, basemulAcc, bred, canon, invNtt, mred, ntt } from '../../firmware/crypto/mlkem/poly.js';
import { compress, compressEncode, compressMessage, decodeDecompress, decompress } from '../../firmware/crypto/mlkem/codec.js';
import { cbd, cbdAdd, sampleNtt } from '../../firmware/crypto/mlkem/sample.js';
import { KeyExchangeError } from '../../firmware/util/errors.js';

const VECTORS = fileURLToPath(new URL('../vectors/crypto/', import.meta.url));
const load = <T>(file: string): T => JSON.parse(readFileSync(VECTORS + file, 'utf8')) as T;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

type Noble = typeof ml_kem768;
const SETS: { name: string; ours: MlKem; noble: Noble; k: number }[] = [
  { name: 'ML-KEM-512', ours: mlkem512, noble: ml_kem512, k: 2 },
  { name: 'ML-KEM-768', ours: mlkem768, noble: ml_kem768, k: 3 },
  { name: 'ML-KEM-1024', ours: mlkem1024, noble: ml_kem1024, k: 4 },
];
const byName = (n: string) => SETS.find((s) => s.name === n)!;

const mod = (x: number): number => ((x % Q) + Q) % Q;

/** Deterministic PRNG for the building-block tests (xorshift32). */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

describe('mlkem building blocks', () => {
  it('Barrett reduction: exact residue, centered, for every int16', () => {
    for (let a = -32768; a <= 32767; a++) {
      const r = bred(a);
      if (mod(r) !== mod(a) || r < -(Q - 1) / 2 || r > (Q - 1) / 2) throw new Error(`bred(${a}) = ${r}`);
      const c = canon(a);
      if (c !== mod(a)) throw new Error(`canon(${a}) = ${c}`);
    }
  });

  it('Montgomery reduction: a·2^-16 mod q, in (-q, q), over |a| < q·2^15', () => {
    const rnd = prng(1);
    const lim = Q * 2 ** 15;
    const rinv = 169; // 2^16 · 169 ≡ 1 (mod 3329)
    expect(mod(65536 * rinv)).toBe(1);
    for (let i = 0; i < 200_000; i++) {
      const a = (rnd() % (2 * lim - 1)) - (lim - 1);
      const r = mred(a);
      if (r <= -Q || r >= Q || mod(r) !== mod((a % Q) * rinv)) throw new Error(`mred(${a}) = ${r}`);
    }
    for (const a of [-(lim - 1), lim - 1, 0, 1, -1]) expect(mod(mred(a))).toBe(mod((a % Q) * rinv));
  });

  it('Compress_d / Decompress_d match the exact rational formulas for every input', () => {
    for (const d of [1, 4, 5, 10, 11]) {
      for (let x = 0; x < Q; x++) {
        // round(2^d x / q) mod 2^d with exact integer arithmetic (no ties: q is odd).
        const want = Math.floor((2 * x * 2 ** d + Q) / (2 * Q)) % 2 ** d;
        if (compress(x, d) !== want) throw new Error(`Compress_${d}(${x}) = ${compress(x, d)}, want ${want}`);
      }
      for (let y = 0; y < 2 ** d; y++) {
        const want = Math.floor((2 * Q * y + 2 ** d) / 2 ** (d + 1)); // round(q y / 2^d), ties up
        expect(decompress(y, d)).toBe(want);
      }
    }
  });

  it('compressEncode / compressMessage / decodeDecompress: every x in [0, q), every d', () => {
    // All 3329 residues, in lazily reduced representatives (x, x - q, x + q)
    // as the callers pass them, 256 per polynomial.
    const xs = Array.from({ length: 3 * Q }, (_, i) => i % Q);
    const rep = (i: number) => xs[i]! + [0, -Q, Q][Math.floor(i / Q)]!;
    for (const d of [4, 5, 10, 11]) {
      for (let base = 0; base < xs.length; base += 256) {
        const f = Int16Array.from({ length: 256 }, (_, i) => (base + i < xs.length ? rep(base + i) : 0));
        const out = new Uint8Array(32 * d);
        compressEncode(f, d, out, 0);
        const back = new Int16Array(256);
        decodeDecompress(out, 0, d, back);
        for (let i = 0; i < 256; i++) {
          let v = 0; // ByteDecode_d by the bit-string definition (Algorithm 6)
          for (let b = 0; b < d; b++) v |= ((out[(i * d + b) >> 3]! >> ((i * d + b) & 7)) & 1) << b;
          const x = mod(f[i]!);
          if (v !== compress(x, d)) throw new Error(`d=${d} x=${x}: encoded ${v}, want ${compress(x, d)}`);
          if (back[i] !== decompress(v, d)) throw new Error(`d=${d} decode of ${v}`);
        }
      }
    }
    for (let base = 0; base < xs.length; base += 256) {
      const f = Int16Array.from({ length: 256 }, (_, i) => (base + i < xs.length ? rep(base + i) : 0));
      const m = new Uint8Array(32);
      compressMessage(f, m, 0);
      for (let i = 0; i < 256; i++) expect((m[i >> 3]! >> (i & 7)) & 1).toBe(compress(mod(f[i]!), 1));
    }
  });

  it('zeta tables are FIPS 203 Appendix A', () => {
    // First and last entries of both Appendix A tables.
    expect(Array.from(ZETAS_PLAIN.slice(0, 8))).toEqual([1, 1729, 2580, 3289, 2642, 630, 1897, 848]);
    expect(Array.from(ZETAS_PLAIN.slice(124))).toEqual([2110, 2935, 885, 2154]);
    expect(Array.from(GAMMAS_PLAIN.slice(0, 6)).map((g) => (g > Q / 2 ? g - Q : g))).toEqual([17, -17, 2761 - Q, -(2761 - Q), 583, -583]);
  });

  it('NTT / basemul / NTT^-1 compute the negacyclic product (vs. schoolbook)', () => {
    const rnd = prng(7);
    for (let trial = 0; trial < 20; trial++) {
      for (const k of [1, 2, 3, 4]) {
        const as: Int16Array[] = [];
        const bs: Int16Array[] = [];
        const want = new Array<number>(256).fill(0);
        for (let l = 0; l < k; l++) {
          // a: canonical (like SampleNTT output); b: small signed (like CBD output) before the NTT.
          const a = Int16Array.from({ length: 256 }, () => rnd() % Q);
          const b = Int16Array.from({ length: 256 }, () => (rnd() % 5) - 2);
          // schoolbook in Z_q[X]/(X^256+1) on the *coefficient* form of a
          for (let i = 0; i < 256; i++)
            for (let j = 0; j < 256; j++) {
              const p = a[i]! * b[j]!;
              if (i + j < 256) want[i + j] += p;
              else want[i + j - 256] -= p;
            }
          const ah = a.slice();
          ntt(ah);
          for (let i = 0; i < 256; i++) ah[i] = canon(ah[i]!); // basemulAcc takes a in [0, q)
          const bh = b.slice();
          ntt(bh);
          as.push(ah);
          bs.push(bh);
        }
        const flat = (v: Int16Array[]) => {
          const out = new Int16Array(256 * v.length);
          v.forEach((p, l) => out.set(p, 256 * l));
          return out;
        };
        const r = new Int16Array(256);
        basemulAcc(r, flat(as), 0, flat(bs), k);
        invNtt(r);
        for (let i = 0; i < 256; i++) if (mod(r[i]!) !== mod(want[i]!)) throw new Error(`k=${k} coeff ${i}`);
      }
    }
  });

  it('NTT then NTT^-1 is the identity up to the Montgomery factor, on extreme inputs', () => {
    for (const fill of [Q - 1, -(Q - 1), 0]) {
      const f = new Int16Array(256).fill(fill);
      ntt(f);
      invNtt(f); // multiplies by 2^16 (expects a basemul R^-1 to cancel)
      for (let i = 0; i < 256; i++) expect(mod(f[i]!)).toBe(mod(fill * 65536));
    }
  });

  it('SamplePolyCBD_η matches the bit-by-bit definition (Algorithm 8)', () => {
    for (const eta of [2, 3]) {
      for (let t = 0; t < 50; t++) {
        const B = new Uint8Array(randomBytes(64 * eta));
        const f = new Int16Array(256).fill(1234);
        cbd(B, eta, f);
        const g = new Int16Array(256).fill(-7);
        cbdAdd(B, eta, g);
        for (let i = 0; i < 256; i++) expect(g[i]).toBe(f[i]! - 7);
        const bit = (i: number) => (B[i >> 3]! >> (i & 7)) & 1;
        for (let i = 0; i < 256; i++) {
          let x = 0;
          let y = 0;
          for (let j = 0; j < eta; j++) {
            x += bit(2 * i * eta + j);
            y += bit(2 * i * eta + eta + j);
          }
          if (f[i] !== x - y) throw new Error(`eta=${eta} coeff ${i}`);
        }
      }
    }
  });

  it('SampleNTT: the refill path (short first squeeze) gives Algorithm 7 output', () => {
    // Reference: one long SHAKE128 output, parsed per Algorithm 7.
    for (let t = 0; t < 100; t++) {
      const seed = new Uint8Array(randomBytes(34));
      const long = createHash('shake128', { outputLength: 168 * 8 }).update(seed).digest();
      const want: number[] = [];
      for (let i = 0; want.length < 256; i += 3) {
        const d1 = long[i]! | ((long[i + 1]! & 15) << 8);
        const d2 = (long[i + 1]! >> 4) | (long[i + 2]! << 4);
        if (d1 < Q) want.push(d1);
        if (d2 < Q && want.length < 256) want.push(d2);
      }
      for (const initial of [168, 336, 504]) {
        const f = new Int16Array(256);
        sampleNtt(seed, f, initial);
        expect(Array.from(f)).toEqual(want);
      }
    }
  });
});

interface KeyGenVec { parameterSet: string; tcId: number; z: string; d: string; ek?: string; dk?: string }
interface EncapVec { parameterSet: string; tcId: number; ek: string; m: string; c: string; k: string }
interface DecapGroup { parameterSet: string; tgId: number; dk: string; tests: { tcId: number; reason?: string; c: string; k: string }[] }

describe('mlkem ACVP vectors (shared subset, test/vectors/crypto/mlkem-acvp-*.json)', () => {
  const keygen = load<KeyGenVec[]>('mlkem-acvp-keygen.json');
  const encap = load<EncapVec[]>('mlkem-acvp-encap.json');
  const decap = load<DecapGroup[]>('mlkem-acvp-decap.json');

  it('has vectors for every parameter set', () => {
    for (const s of SETS) {
      expect(keygen.some((v) => v.parameterSet === s.name)).toBe(true);
      expect(encap.some((v) => v.parameterSet === s.name)).toBe(true);
    }
  });

  for (const v of keygen) {
    it(`keyGen ${v.parameterSet} tcId ${v.tcId}`, () => {
      const { ours } = byName(v.parameterSet);
      const seed = new Uint8Array([...hex(v.d), ...hex(v.z)]);
      const { publicKey, secretKey } = ours.keygen(seed);
      expect(toHex(publicKey)).toBe(v.ek!.toUpperCase());
      if (v.dk) expect(toHex(secretKey)).toBe(v.dk.toUpperCase());
    });
  }

  for (const v of encap) {
    it(`encapsulation ${v.parameterSet} tcId ${v.tcId}`, () => {
      const { ours } = byName(v.parameterSet);
      const { cipherText, sharedSecret } = ours.encapsulate(hex(v.ek), hex(v.m));
      expect(toHex(cipherText)).toBe(v.c.toUpperCase());
      expect(toHex(sharedSecret)).toBe(v.k.toUpperCase());
    });
  }

  for (const g of decap) {
    for (const t of g.tests) {
      it(`decapsulation ${g.parameterSet} tcId ${t.tcId} (${t.reason ?? ''})`, () => {
        const { ours } = byName(g.parameterSet);
        expect(toHex(ours.decapsulate(hex(t.c), hex(g.dk)))).toBe(t.k.toUpperCase());
      });
    }
  }
});

describe('mlkem ACVP vectors (supplement, test/vectors/crypto/mlkem-fast/)', () => {
  const groups = load<DecapGroup[]>('mlkem-fast/acvp-decap-1024.json');
  for (const g of groups) {
    for (const t of g.tests) {
      it(`decapsulation ${g.parameterSet} tcId ${t.tcId} (${t.reason ?? ''})`, () => {
        const { ours, k } = byName(g.parameterSet);
        const dk = hex(g.dk);
        expect(ours.checkDecapsulationKey(dk)).toBe(true);
        expect(toHex(ours.decapsulate(hex(t.c), dk))).toBe(t.k.toUpperCase());
        if (t.reason !== 'no modification') {
          // implicit rejection: K = J(z ‖ c) (FIPS 203 Algorithm 18 lines 8, 11)
          const z = dk.subarray(768 * k + 64);
          expect(toHex(createHash('shake256', { outputLength: 32 }).update(z).update(hex(t.c)).digest())).toBe(t.k.toUpperCase());
        }
      });
    }
  }
});

describe('mlkem vs @noble/post-quantum', () => {
  const ROUNDS = 200;
  for (const { name, ours, noble } of SETS) {
    it(`${name}: ${ROUNDS} random seeds: identical ek/dk/ct/ss, interop both ways, same implicit rejection`, () => {
      for (let i = 0; i < ROUNDS; i++) {
        const seed = new Uint8Array(randomBytes(64));
        const m = new Uint8Array(randomBytes(32));
        const a = ours.keygen(seed);
        const b = noble.keygen(seed);
        expect(toHex(a.publicKey)).toBe(toHex(b.publicKey));
        expect(toHex(a.secretKey)).toBe(toHex(b.secretKey));

        const ea = ours.encapsulate(a.publicKey, m);
        const eb = noble.encapsulate(b.publicKey, m);
        expect(toHex(ea.cipherText)).toBe(toHex(eb.cipherText));
        expect(toHex(ea.sharedSecret)).toBe(toHex(eb.sharedSecret));

        // noble encapsulates (its own random m) -> we decapsulate, and vice versa.
        const fromNoble = noble.encapsulate(a.publicKey);
        expect(toHex(ours.decapsulate(fromNoble.cipherText, a.secretKey))).toBe(toHex(fromNoble.sharedSecret));
        const fromUs = ours.encapsulate(b.publicKey);
        expect(toHex(noble.decapsulate(fromUs.cipherText, b.secretKey))).toBe(toHex(fromUs.sharedSecret));

        // Tampered ciphertext: one bit flipped somewhere (alternating c1 / c2 regions).
        const bad = ea.cipherText.slice();
        const pos = i % 2 === 0 ? i % (bad.length - 128) : bad.length - 1 - (i % 128);
        bad[pos]! ^= 1 << (i % 8);
        const ra = ours.decapsulate(bad, a.secretKey);
        const rb = noble.decapsulate(bad, b.secretKey);
        expect(toHex(ra)).toBe(toHex(rb));
        expect(toHex(ra)).not.toBe(toHex(ea.sharedSecret));
        // ...and it is J(z ‖ c) (FIPS 203 Algorithm 18 line 8).
        const z = seed.subarray(32);
        expect(toHex(ra)).toBe(toHex(createHash('shake256', { outputLength: 32 }).update(z).update(bad).digest()));
      }
    });
  }

  it('random-seed keygen/encapsulate (no seed / msg given) round-trip and differ between calls', () => {
    for (const { ours, noble } of SETS) {
      const a = ours.keygen();
      const b = ours.keygen();
      expect(toHex(a.publicKey)).not.toBe(toHex(b.publicKey));
      const e1 = ours.encapsulate(a.publicKey);
      const e2 = ours.encapsulate(a.publicKey);
      expect(toHex(e1.sharedSecret)).not.toBe(toHex(e2.sharedSecret));
      expect(toHex(ours.decapsulate(e1.cipherText, a.secretKey))).toBe(toHex(e1.sharedSecret));
      expect(toHex(noble.decapsulate(e2.cipherText, a.secretKey))).toBe(toHex(e2.sharedSecret));
    }
  });

  it('does not modify its inputs and accepts Buffer / subarray views', () => {
    const { ours } = SETS[1]!;
    const seed = new Uint8Array(randomBytes(64));
    const seedCopy = seed.slice();
    const { publicKey, secretKey } = ours.keygen(seed);
    expect(seed).toEqual(seedCopy);
    // ek inside a larger buffer at an odd offset, as a Buffer
    const big = Buffer.alloc(publicKey.length + 7);
    big.set(publicKey, 3);
    const ekView = big.subarray(3, 3 + publicKey.length);
    const m = new Uint8Array(32).fill(9);
    const r1 = ours.encapsulate(ekView, m);
    const r2 = ours.encapsulate(publicKey, m);
    expect(toHex(r1.cipherText)).toBe(toHex(r2.cipherText));
    const ctCopy = r1.cipherText.slice();
    const dkCopy = secretKey.slice();
    expect(toHex(ours.decapsulate(Buffer.from(r1.cipherText), Buffer.from(secretKey)))).toBe(toHex(r1.sharedSecret));
    expect(r1.cipherText).toEqual(ctCopy);
    expect(secretKey).toEqual(dkCopy);
    expect(m).toEqual(new Uint8Array(32).fill(9));
  });

  for (const oneCall of [false, true]) {
    it(`decapsulating with a dk from our keygen reuses the expanded Âᵀ, and only while ρ matches (${oneCall ? 'one-call native KEM if built' : 'JS K-PKE'})`, () => {
      setNativeMlKem(oneCall ? undefined : false);
      onTestFinished(() => setNativeMlKem(undefined));
      for (const { ours, noble } of SETS) {
        const { publicKey, secretKey } = ours.keygen();
        const { cipherText, sharedSecret } = noble.encapsulate(publicKey);
        const cache = (ours as unknown as { expanded: WeakMap<Uint8Array, { rho: Uint8Array; aT: Int16Array }> }).expanded;
        const entry = cache.get(secretKey)!;
        expect(entry).toBeDefined();
        // cached path and uncached path (a copy is a different object) agree with noble
        expect(toHex(ours.decapsulate(cipherText, secretKey))).toBe(toHex(sharedSecret));
        expect(toHex(ours.decapsulate(cipherText, secretKey.slice()))).toBe(toHex(sharedSecret));
        // The cache really is used: a corrupted cached matrix breaks re-encryption,
        // so decapsulation implicitly rejects.
        const saved = entry.aT;
        entry.aT = new Int16Array(saved.length);
        expect(toHex(ours.decapsulate(cipherText, secretKey))).not.toBe(toHex(sharedSecret));
        entry.aT = saved;
        // Same dk object, overwritten with another valid key (other ρ): the
        // remembered matrix must not be used, or re-encryption would fail.
        const other = ours.keygen();
        secretKey.set(other.secretKey);
        const ct2 = noble.encapsulate(other.publicKey);
        expect(toHex(ours.decapsulate(ct2.cipherText, secretKey))).toBe(toHex(ct2.sharedSecret));
      }
    });
  }

  it('zeroes its secret-bearing scratch after each operation', () => {
    const { ours } = SETS[2]!;
    const { publicKey, secretKey } = ours.keygen();
    const { cipherText } = ours.encapsulate(publicKey);
    ours.decapsulate(cipherText, secretKey);
    const s = ours as unknown as Record<string, unknown>;
    for (const f of ['vs', 've']) expect((s[f] as { flat: Int16Array }).flat.every((x) => x === 0)).toBe(true);
    for (const f of ['p1', 'p2', 'gIn', 'seed33', 'ctBuf']) expect((s[f] as Int16Array).every((x) => x === 0)).toBe(true);
  });
});

describe('mlkem input checks (FIPS 203 §7.2, §7.3)', () => {
  for (const { name, ours, noble, k } of SETS) {
    it(`${name}: an ek with a coefficient >= q is rejected (modulus check), like noble`, () => {
      const { publicKey } = ours.keygen();
      expect(ours.checkEncapsulationKey(publicKey)).toBe(true);
      for (const [index, value] of [[0, Q], [255, 4095], [256 * k - 1, Q], [17, Q + 1]] as const) {
        const ek = publicKey.slice();
        // coefficient `index` lives in octets 3(index>>1) .. +2 (two per three octets)
        const o = 3 * (index >> 1);
        if (index % 2 === 0) {
          ek[o] = value & 0xff;
          ek[o + 1] = (ek[o + 1]! & 0xf0) | (value >> 8);
        } else {
          ek[o + 1] = (ek[o + 1]! & 0x0f) | ((value & 0x0f) << 4);
          ek[o + 2] = value >> 4;
        }
        expect(ours.checkEncapsulationKey(ek)).toBe(false);
        expect(() => ours.encapsulate(ek)).toThrow(KeyExchangeError);
        expect(() => noble.encapsulate(ek)).toThrow();
      }
      // q - 1 everywhere is fine; bytes in ρ are not checked.
      const ok = publicKey.slice();
      for (let o = 0; o < 384 * k; o += 3) {
        ok[o] = (Q - 1) & 0xff;
        ok[o + 1] = ((Q - 1) >> 8) | (((Q - 1) & 0x0f) << 4);
        ok[o + 2] = (Q - 1) >> 4;
      }
      ok.fill(0xff, 384 * k);
      expect(ours.checkEncapsulationKey(ok)).toBe(true);
      expect(toHex(ours.encapsulate(ok, new Uint8Array(32)).cipherText)).toBe(toHex(noble.encapsulate(ok, new Uint8Array(32)).cipherText));
    });

    it(`${name}: wrong lengths are rejected`, () => {
      const { publicKey, secretKey } = ours.keygen();
      const { cipherText } = ours.encapsulate(publicKey);
      const L = ours.lengths;
      expect([L.publicKey, L.cipherText, L.secretKey]).toEqual([384 * k + 32, k === 4 ? 1568 : 32 * (10 * k + 4), 768 * k + 96]);
      for (const ek of [publicKey.subarray(1), new Uint8Array(L.publicKey + 1), new Uint8Array(0)]) {
        expect(ours.checkEncapsulationKey(ek)).toBe(false);
        expect(() => ours.encapsulate(ek)).toThrow(KeyExchangeError);
      }
      for (const ct of [cipherText.subarray(1), new Uint8Array(L.cipherText + 1), new Uint8Array(0)]) {
        expect(() => ours.decapsulate(ct, secretKey)).toThrow(KeyExchangeError);
      }
      for (const dk of [secretKey.subarray(1), new Uint8Array(L.secretKey + 1)]) {
        expect(ours.checkDecapsulationKey(dk)).toBe(false);
        expect(() => ours.decapsulate(cipherText, dk)).toThrow(KeyExchangeError);
      }
      expect(() => ours.keygen(new Uint8Array(32))).toThrow(TypeError);
      expect(() => ours.encapsulate(publicKey, new Uint8Array(31))).toThrow(TypeError);
      expect(() => ours.decapsulate('x' as unknown as Uint8Array, secretKey)).toThrow(TypeError);
    });

    it(`${name}: a dk whose H(ek) does not match fails the hash check`, () => {
      const { publicKey, secretKey } = ours.keygen();
      const { cipherText } = ours.encapsulate(publicKey);
      expect(ours.checkDecapsulationKey(secretKey)).toBe(true);
      for (const pos of [384 * k + 5 /* inside ek */, 768 * k + 32 /* h */, 768 * k + 63]) {
        const dk = secretKey.slice();
        dk[pos]! ^= 0x80;
        expect(ours.checkDecapsulationKey(dk)).toBe(false);
        expect(() => ours.decapsulate(cipherText, dk)).toThrow(KeyExchangeError);
        expect(() => noble.decapsulate(cipherText, dk)).toThrow();
      }
      // z and dk_PKE are not covered by the hash: a changed z only changes the rejection key.
      const dk = secretKey.slice();
      dk[768 * k + 64]! ^= 1;
      expect(ours.checkDecapsulationKey(dk)).toBe(true);
    });
  }
});
