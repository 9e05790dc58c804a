/**
 * The one-call native ML-KEM (native/mlkem.c: mlkemKeygen / mlkemEncaps /
 * mlkemDecaps) against the JS K-PKE of firmware/crypto/mlkem/kem.ts (on the
 * native arithmetic and on pure JS) and @noble/post-quantum, on random seeds
 * for every parameter set; the ACVP vectors through the native path (also
 * when the suite runs with PQGATE_CRYPTO_NATIVE=0); FIPS 203 §7.2 / §7.3
 * input checks; malformed arguments to the addon entry points.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ml_kem1024, ml_kem512, ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { afterEach, describe, expect, it } from 'vitest';
import { mlkem1024, mlkem512, mlkem768, type MlKem } from '../../firmware/crypto/mlkem/index.js';
import { setNativeMlKem } from '../../firmware/crypto/mlkem/kem.js';
import { polyNative } from '../../firmware/crypto/mlkem/poly.js';
import { nativeCrypto, setNativeCrypto, type PqCryptoAddon } from '../../firmware/crypto/native.js';
import { findNativeAddon } from '../../firmware/util/native-addon.js';
import { KeyExchangeError } from '../../firmware/util/errors.js';

const VECTORS = fileURLToPath(new URL('../vectors/crypto/', import.meta.url));
const load = <T>(file: string): T => JSON.parse(readFileSync(VECTORS + file, 'utf8')) as T;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
const rand = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

const SETS = [
  { name: 'ML-KEM-512', ours: mlkem512, noble: ml_kem512, k: 2 },
  { name: 'ML-KEM-768', ours: mlkem768, noble: ml_kem768, k: 3 },
  { name: 'ML-KEM-1024', ours: mlkem1024, noble: ml_kem1024, k: 4 },
];
const byName = (n: string) => SETS.find((s) => s.name === n)!;

const built = findNativeAddon() !== undefined;

/** The addon with the tables handed over (the native KEM refuses to run without them). */
function addon(): Required<PqCryptoAddon> {
  setNativeCrypto(true);
  const l = nativeCrypto();
  if (!l || typeof l.mlkemKeygen !== 'function') throw new Error('native ML-KEM not available');
  polyNative();
  return l as Required<PqCryptoAddon>;
}

/** Run fn with the one-call native KEM, the JS K-PKE on native arithmetic, and pure JS. */
function threePaths<T>(fn: () => T): { native: T; jsNativeArith: T; js: T } {
  try {
    setNativeCrypto(true);
    setNativeMlKem(true);
    const native = fn();
    setNativeMlKem(false);
    const jsNativeArith = fn();
    setNativeCrypto(false);
    const js = fn();
    return { native, jsNativeArith, js };
  } finally {
    setNativeMlKem(undefined);
    setNativeCrypto(undefined);
  }
}

afterEach(() => {
  setNativeMlKem(undefined);
  setNativeCrypto(undefined);
});

describe.skipIf(!built)('native ML-KEM: byte-for-byte vs JS and @noble/post-quantum', () => {
  for (const { name, ours, noble } of SETS) {
    it(`${name}: random seeds, keygen / encaps / decaps / implicit rejection`, () => {
      addon();
      for (let t = 0; t < 25; t++) {
        const seed = rand(64);
        const m = rand(32);
        const run = (kem: MlKem) => {
          const { publicKey, secretKey } = kem.keygen(seed);
          const { cipherText, sharedSecret } = kem.encapsulate(publicKey, m);
          const good = kem.decapsulate(cipherText, secretKey);
          const bad = cipherText.slice();
          bad[t % bad.length]! ^= 1 << (t % 8);
          const rejected = kem.decapsulate(bad, secretKey);
          return [publicKey, secretKey, cipherText, sharedSecret, good, rejected].map(toHex);
        };
        const r = threePaths(() => run(ours));
        const nk = noble.keygen(seed);
        const ne = noble.encapsulate(nk.publicKey, m);
        const want = [nk.publicKey, nk.secretKey, ne.cipherText, ne.sharedSecret, ne.sharedSecret];
        expect(r.native.slice(0, 5)).toEqual(want.map(toHex));
        expect(r.native[5]).not.toBe(r.native[3]);
        const badCt = hex(r.native[2]!);
        badCt[t % badCt.length]! ^= 1 << (t % 8);
        expect(r.native[5]).toBe(toHex(noble.decapsulate(badCt, nk.secretKey)));
        expect(r.jsNativeArith).toEqual(r.native);
        expect(r.js).toEqual(r.native);
      }
    });
  }

  it('random seed and message when none are given; results round-trip through noble', () => {
    addon();
    for (const { ours, noble } of SETS) {
      const a = ours.keygen();
      const b = ours.keygen();
      expect(toHex(a.publicKey)).not.toBe(toHex(b.publicKey));
      const e = ours.encapsulate(a.publicKey);
      expect(toHex(noble.decapsulate(e.cipherText, a.secretKey))).toBe(toHex(e.sharedSecret));
      const n = noble.encapsulate(b.publicKey);
      expect(toHex(ours.decapsulate(n.cipherText, b.secretKey))).toBe(toHex(n.sharedSecret));
    }
  });
});

interface KeyGenVec { parameterSet: string; tcId: number; z: string; d: string; ek?: string; dk?: string }
interface EncapVec { parameterSet: string; tcId: number; ek: string; m: string; c: string; k: string }
interface DecapGroup { parameterSet: string; tgId: number; dk: string; tests: { tcId: number; reason?: string; c: string; k: string }[] }

describe.skipIf(!built)('native ML-KEM: ACVP vectors (test/vectors/crypto/mlkem-acvp-*.json, mlkem-fast/)', () => {
  it('keyGen', () => {
    const lib = addon();
    const vs = load<KeyGenVec[]>('mlkem-acvp-keygen.json');
    expect(vs.length).toBeGreaterThan(0);
    for (const v of vs) {
      const { k } = byName(v.parameterSet);
      const ek = new Uint8Array(384 * k + 32);
      const dk = new Uint8Array(768 * k + 96);
      lib.mlkemKeygen(k, new Uint8Array([...hex(v.d), ...hex(v.z)]), ek, dk);
      expect(toHex(ek), `tcId ${v.tcId}`).toBe(v.ek!.toUpperCase());
      if (v.dk) expect(toHex(dk), `tcId ${v.tcId}`).toBe(v.dk.toUpperCase());
    }
  });

  it('encapsulation', () => {
    const lib = addon();
    const vs = load<EncapVec[]>('mlkem-acvp-encap.json');
    expect(vs.length).toBeGreaterThan(0);
    for (const v of vs) {
      const { ours } = byName(v.parameterSet);
      const ct = new Uint8Array(ours.lengths.cipherText);
      const ss = new Uint8Array(32);
      expect(lib.mlkemEncaps(byName(v.parameterSet).k, hex(v.ek), hex(v.m), ct, ss)).toBe(true);
      expect(toHex(ct), `tcId ${v.tcId}`).toBe(v.c.toUpperCase());
      expect(toHex(ss), `tcId ${v.tcId}`).toBe(v.k.toUpperCase());
    }
  });

  it('decapsulation, including the modified-ciphertext (implicit rejection) cases', () => {
    const lib = addon();
    const groups = [...load<DecapGroup[]>('mlkem-acvp-decap.json'), ...load<DecapGroup[]>('mlkem-fast/acvp-decap-1024.json')];
    let rejections = 0;
    for (const g of groups) {
      const { k } = byName(g.parameterSet);
      for (const t of g.tests) {
        const ss = new Uint8Array(32);
        expect(lib.mlkemDecaps(k, hex(t.c), hex(g.dk), ss)).toBe(true);
        expect(toHex(ss), `tcId ${t.tcId} ${t.reason ?? ''}`).toBe(t.k.toUpperCase());
        if (t.reason && t.reason !== 'no modification') rejections++;
      }
    }
    expect(rejections).toBeGreaterThan(0);
  });
});

describe.skipIf(!built)('native ML-KEM: FIPS 203 §7.2 / §7.3 input checks', () => {
  for (const { name, ours, noble, k } of SETS) {
    it(`${name}: an ek with a coefficient >= q fails the modulus check (false, nothing written; KeyExchangeError above)`, () => {
      const lib = addon();
      const { publicKey } = ours.keygen(rand(64));
      // coefficient at an even and an odd position of one 3-octet group, value q and 4095, in every polynomial
      for (let poly = 0; poly < k; poly++) {
        for (const [pos, v] of [[0, 3329], [1, 3329], [255, 4095], [128, 3329]] as const) {
          const ek = publicKey.slice();
          const o = 384 * poly + 3 * (pos >> 1);
          if (pos & 1) {
            ek[o + 1] = (ek[o + 1]! & 0x0f) | ((v & 0x0f) << 4);
            ek[o + 2] = v >> 4;
          } else {
            ek[o] = v & 0xff;
            ek[o + 1] = (ek[o + 1]! & 0xf0) | (v >> 8);
          }
          expect(() => noble.encapsulate(ek)).toThrow();
          const ct = new Uint8Array(ours.lengths.cipherText).fill(0xaa);
          const ss = new Uint8Array(32).fill(0xbb);
          expect(lib.mlkemEncaps(k, ek, rand(32), ct, ss)).toBe(false);
          expect(ct.every((b) => b === 0xaa) && ss.every((b) => b === 0xbb)).toBe(true);
          expect(() => ours.encapsulate(ek)).toThrow(KeyExchangeError);
        }
      }
      // q - 1 everywhere is fine
      const edge = publicKey.slice();
      for (let i = 0; i < 384 * k; i += 3) {
        edge[i] = 0x00;
        edge[i + 1] = 0x0d;
        edge[i + 2] = 0xd0;
      }
      expect(lib.mlkemEncaps(k, edge, rand(32), new Uint8Array(ours.lengths.cipherText), new Uint8Array(32))).toBe(true);
    });

    it(`${name}: a dk whose H(ek) does not match fails the hash check`, () => {
      const lib = addon();
      const { publicKey, secretKey } = ours.keygen(rand(64));
      const { cipherText } = ours.encapsulate(publicKey);
      for (const off of [384 * k, 768 * k + 31, 768 * k + 32, 768 * k + 63]) {
        const dk = secretKey.slice();
        dk[off]! ^= 0x01;
        const ss = new Uint8Array(32);
        expect(lib.mlkemDecaps(k, cipherText, dk, ss)).toBe(false);
        expect(() => ours.decapsulate(cipherText, dk)).toThrow(KeyExchangeError);
      }
    });
  }
});

describe.skipIf(!built)('native ML-KEM: malformed arguments throw typed errors', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return 'no error';
  };

  it('mlkemKeygen / mlkemEncaps / mlkemDecaps', () => {
    const lib = addon();
    const k = 3;
    const seed = rand(64);
    const ek = new Uint8Array(384 * k + 32);
    const dk = new Uint8Array(768 * k + 96);
    lib.mlkemKeygen(k, seed, ek, dk);
    const ct = new Uint8Array(1088);
    const ss = new Uint8Array(32);
    const f = lib as unknown as Record<string, (...a: unknown[]) => unknown>;
    // arity, k
    expect(code(() => f.mlkemKeygen!(k, seed, ek))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => f.mlkemKeygen!('3', seed, ek, dk))).toBe('ERR_INVALID_ARG_TYPE');
    for (const bad of [0, 1, 5, -3, 2 ** 31 - 1]) expect(code(() => lib.mlkemKeygen(bad, seed, ek, dk))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemKeygen(2, seed, ek, dk))).toBe('ERR_OUT_OF_RANGE'); // ek/dk sized for k = 3
    // types
    expect(code(() => f.mlkemKeygen!(k, Array.from(seed), ek, dk))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => f.mlkemKeygen!(k, new Int16Array(32), ek, dk))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => f.mlkemEncaps!(k, ek, 'm', ct, ss))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => f.mlkemDecaps!(k, ct, dk, null))).toBe('ERR_INVALID_ARG_TYPE');
    // lengths
    expect(code(() => lib.mlkemKeygen(k, seed.subarray(1), ek, dk))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemEncaps(k, ek.subarray(1), rand(32), ct, ss))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemEncaps(k, ek, rand(31), ct, ss))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemEncaps(k, ek, rand(32), new Uint8Array(1089), ss))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemEncaps(k, ek, rand(32), ct, new Uint8Array(0)))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemDecaps(k, ct.subarray(0, 1087), dk, ss))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemDecaps(k, ct, dk.subarray(1), ss))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => lib.mlkemDecaps(k, ct, dk, new Uint8Array(33)))).toBe('ERR_OUT_OF_RANGE');
    // the optional Âᵀ argument
    expect(code(() => lib.mlkemKeygen(k, seed, ek, dk, new Int16Array(9 * 256 - 1)))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => f.mlkemKeygen!(k, seed, ek, dk, new Uint8Array(9 * 512)))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => lib.mlkemDecaps(k, ct, dk, ss, new Int16Array(4 * 256)))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => f.mlkemDecaps!(k, ct, dk, ss, null))).toBe('ERR_INVALID_ARG_TYPE');
    // a valid call still works afterwards
    expect(lib.mlkemEncaps(k, ek, rand(32), ct, ss)).toBe(true);
    const out = new Uint8Array(32);
    expect(lib.mlkemDecaps(k, ct, dk, out)).toBe(true);
    expect(toHex(out)).toBe(toHex(ss));
  });

  it('Âᵀ from keygen: the transpose of the expanded matrix, and decaps with it equals decaps without', () => {
    const lib = addon();
    for (const { ours, k } of SETS) {
      const ek = new Uint8Array(384 * k + 32);
      const dk = new Uint8Array(768 * k + 96);
      const aT = new Int16Array(k * k * 256);
      lib.mlkemKeygen(k, rand(64), ek, dk, aT);
      expect(aT.every((c) => c >= 0 && c < 3329)).toBe(true);
      expect(aT.some((c) => c !== 0)).toBe(true);
      const { cipherText, sharedSecret } = ours.encapsulate(ek);
      const a = new Uint8Array(32);
      const b = new Uint8Array(32);
      expect(lib.mlkemDecaps(k, cipherText, dk, a, aT)).toBe(true);
      expect(lib.mlkemDecaps(k, cipherText, dk, b)).toBe(true);
      expect(toHex(a)).toBe(toHex(sharedSecret));
      expect(toHex(b)).toBe(toHex(sharedSecret));
      // a wrong matrix only changes c': implicit rejection, no crash
      const c = new Uint8Array(32);
      expect(lib.mlkemDecaps(k, cipherText, dk, c, new Int16Array(k * k * 256))).toBe(true);
      expect(toHex(c)).not.toBe(toHex(sharedSecret));
    }
  });

  it('the KEM wrappers keep their typed errors on the native path', () => {
    addon();
    setNativeMlKem(true);
    expect(() => mlkem768.keygen(new Uint8Array(63))).toThrow(TypeError);
    expect(() => mlkem768.encapsulate(new Uint8Array(1183))).toThrow(KeyExchangeError);
    expect(() => mlkem768.encapsulate(new Uint8Array(1184), new Uint8Array(31))).toThrow(TypeError);
    expect(() => mlkem768.decapsulate(new Uint8Array(1087), new Uint8Array(2400))).toThrow(KeyExchangeError);
    expect(() => mlkem768.decapsulate(new Uint8Array(1088), new Uint8Array(2399))).toThrow(KeyExchangeError);
  });
});
