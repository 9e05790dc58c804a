/**
 * The native crypto fast path (native/pqcrypto.c through crypto/native.ts)
 * against node:crypto, @noble and the official vectors, and every native
 * entry point with malformed arguments (typed errors, never a crash).
 *
 * The firmware API (createPrf, prfPlus, createSkCipher, createKeyExchange,
 * sha1/sha256, ML-KEM) is run twice, with the fast path forced on and off
 * (setNativeCrypto), so both implementations meet the same vectors in one
 * process; the rest of test/crypto runs on whichever path the environment
 * selects (PQGATE_CRYPTO_NATIVE=0 for node:crypto).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 as nSha1 } from '@noble/hashes/legacy.js';
import { sha256 as nSha256, sha384 as nSha384, sha512 as nSha512 } from '@noble/hashes/sha2.js';
import { sha3_256, sha3_512, shake128, shake256 } from '@noble/hashes/sha3.js';
import { cbc, gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { NativeAead, NativeHash, nativeCrypto, setNativeCrypto, type NativeAeadHandle, type PqCryptoAddon } from '../../firmware/crypto/native.js';
import { findNativeAddon, loadNativeAddon } from '../../firmware/util/native-addon.js';
import { createKeyExchange, createPrf, createSkCipher, encrInfo, integInfo, prfPlus } from '../../firmware/crypto/registry.js';
import { sha1, sha256 } from '../../firmware/crypto/hash.js';
import { mlkem768 } from '../../firmware/crypto/mlkem/index.js';
import { basemulAcc, basemulAccJs, invNtt, invNttJs, ntt, nttJs } from '../../firmware/crypto/mlkem/poly.js';
import { Encr, IntegId, KeMethod, PrfId } from '../../firmware/ikev2/constants.js';
import { AuthTagError, KeyExchangeError } from '../../firmware/util/errors.js';
import { h, loadVectors, ScriptedRng, toHex } from './helpers.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = findNativeAddon() !== undefined;
const lib = (): PqCryptoAddon => {
  setNativeCrypto(true);
  const l = nativeCrypto();
  if (!l) throw new Error('native crypto not available');
  return l;
};
afterEach(() => setNativeCrypto(undefined));

const NOBLE_SHA = [nSha1, nSha256, nSha384, nSha512] as const;
const NODE_SHA = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
const MD_LEN = [20, 32, 48, 64];

/** Run `fn` once on each path; the results must be equal (and are returned from the native run). */
function bothPaths<T>(fn: () => T): T {
  setNativeCrypto(false);
  const js = fn();
  setNativeCrypto(true);
  const nat = fn();
  expect(nat).toEqual(js);
  return nat;
}

describe.skipIf(!built)('native crypto: loading', () => {
  it('the built addon exports the crypto functions and the loader is shared with the data plane', () => {
    const l = lib();
    expect(l).toBe(loadNativeAddon());
    expect(typeof l.hmac).toBe('function');
    expect(['direct', 'evp']).toContain(l.x25519Impl);
  });
  it('setNativeCrypto(false) selects node:crypto; by default PQGATE_CRYPTO_NATIVE=0 does, even after a forced use', () => {
    setNativeCrypto(false);
    expect(nativeCrypto()).toBeUndefined();
    lib();
    setNativeCrypto(undefined);
    expect(nativeCrypto() === undefined).toBe(process.env.PQGATE_CRYPTO_NATIVE === '0');
  });
});

describe.skipIf(!built)('native HMAC / prf+ on the vectors, both paths', () => {
  it('RFC 4231 HMAC-SHA2 through createPrf', () => {
    const { vectors } = loadVectors<{ vectors: { tc: number; key: string; data: string; truncateBytes?: number; sha256: string; sha384: string; sha512: string }[] }>(
      'hmac-sha2-rfc4231.json',
    );
    const ids = { sha256: PrfId.HMAC_SHA2_256, sha384: PrfId.HMAC_SHA2_384, sha512: PrfId.HMAC_SHA2_512 } as const;
    for (const v of vectors) {
      for (const [hash, id] of Object.entries(ids) as [keyof typeof ids, number][]) {
        const out = bothPaths(() => createPrf(id).compute(h(v.key), h(v.data)));
        expect(toHex(v.truncateBytes ? out.subarray(0, v.truncateBytes) : out)).toBe(v[hash]);
      }
    }
  });

  it('strongSwan prf+ vectors through prfPlus', () => {
    const { vectors } = loadVectors<{ vectors: { prf: number; key: string; seed: string; out: string }[] }>('prfplus-strongswan.json');
    for (const v of vectors) expect(toHex(bothPaths(() => prfPlus(createPrf(v.prf), h(v.key), h(v.seed), v.out.length / 2)))).toBe(v.out);
  });

  it('NIST CAVP SP 800-135 IKEv2 KDF (SHA-1, SHA-256, SHA-384): SKEYSEED and DKM on the raw addon', () => {
    const file = fileURLToPath(new URL('../vectors/kdf/nist-cavp-ikev2.json', import.meta.url));
    const { cases } = JSON.parse(readFileSync(file, 'utf8')) as { cases: { hash: string; gir: string; ni: string; nr: string; spiI: string; spiR: string; skeyseed: string; dkm: string }[] };
    const l = lib();
    for (const c of cases) {
      const alg = NODE_SHA.indexOf(c.hash as (typeof NODE_SHA)[number]);
      expect(alg).toBeGreaterThanOrEqual(0);
      // RFC 7296 §2.14: SKEYSEED = prf(Ni | Nr, g^ir); {SK_d | ...} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
      const skeyseed = new Uint8Array(MD_LEN[alg]!);
      l.hmac(alg, new Uint8Array([...h(c.ni), ...h(c.nr)]), skeyseed, h(c.gir));
      expect(toHex(skeyseed)).toBe(c.skeyseed);
      const dkm = new Uint8Array(c.dkm.length / 2);
      l.prfPlus(alg, skeyseed, new Uint8Array([...h(c.ni), ...h(c.nr), ...h(c.spiI), ...h(c.spiR)]), dkm);
      expect(toHex(dkm)).toBe(c.dkm);
    }
  });
});

describe.skipIf(!built)('native HMAC / prf+ / hashes against node:crypto and @noble on random inputs', () => {
  it('hmac: every hash, keys shorter and longer than the block, 1-5 parts, truncation', () => {
    const l = lib();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 64 }),
        (alg, key, parts, trunc) => {
          const full = new Uint8Array(MD_LEN[alg]!);
          l.hmac(alg, key, full, ...parts);
          const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let o = 0;
          for (const p of parts) joined.set(p, (o += p.length) - p.length);
          expect(full).toEqual(hmac(NOBLE_SHA[alg]!, key, joined));
          expect(full).toEqual(new Uint8Array(createHmac(NODE_SHA[alg]!, key).update(joined).digest()));
          const t = new Uint8Array(Math.min(trunc, MD_LEN[alg]!));
          l.hmac(alg, key, t, ...parts);
          expect(t).toEqual(full.subarray(0, t.length));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('prfPlus equals the node:crypto path for every PRF and lengths 0..3 blocks past 255', () => {
    fc.assert(
      fc.property(fc.constantFrom(PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512), fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 1000 }), (id, key, seed, len) => {
        bothPaths(() => prfPlus(createPrf(id), key, seed, len));
      }),
      { numRuns: 80 },
    );
    const l = lib();
    expect(() => l.prfPlus(NativeHash.SHA256, new Uint8Array(32), new Uint8Array(4), new Uint8Array(255 * 32 + 1))).toThrow(RangeError);
    const max = new Uint8Array(255 * 32);
    l.prfPlus(NativeHash.SHA256, new Uint8Array(32), new Uint8Array(4), max);
    expect(max.subarray(254 * 32).some((b) => b !== 0)).toBe(true);
  });

  it('hash: SHA-1/2, SHA3-256/512 and SHAKE128/256 of several parts; sha1()/sha256() on both paths', () => {
    const l = lib();
    const noble = [nSha1, nSha256, nSha384, nSha512, sha3_256, sha3_512] as const;
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 400 }), { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 1200 }), (parts, xlen) => {
        const joined = Uint8Array.from(parts.flatMap((p) => [...p]));
        for (let alg = 0; alg < 6; alg++) {
          const out = new Uint8Array(noble[alg]!.outputLen);
          l.hash(alg, out, ...parts);
          expect(out).toEqual(noble[alg]!(joined));
        }
        const x128 = new Uint8Array(xlen);
        l.hash(NativeHash.SHAKE128, x128, ...parts);
        expect(x128).toEqual(shake128(joined, { dkLen: xlen }));
        const x256 = new Uint8Array(xlen);
        l.hash(NativeHash.SHAKE256, x256, ...parts);
        expect(x256).toEqual(shake256(joined, { dkLen: xlen }));
        expect(bothPaths(() => sha1(...parts))).toEqual(nSha1(joined));
        expect(bothPaths(() => sha256(...parts))).toEqual(new Uint8Array(createHash('sha256').update(joined).digest()));
      }),
      { numRuns: 60 },
    );
  });

  it('ML-KEM-768 keygen / encapsulate / decapsulate give the same bytes on both paths (seeded)', () => {
    const kem = mlkem768;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed, m) => {
        const run = () => {
          const { publicKey, secretKey } = kem.keygen(seed);
          const { cipherText, sharedSecret } = kem.encapsulate(publicKey, m);
          const k2 = kem.decapsulate(cipherText, secretKey);
          const bad = cipherText.slice();
          bad[0]! ^= 1;
          return { publicKey, cipherText, sharedSecret, k2, rejected: kem.decapsulate(bad, secretKey) };
        };
        const r = bothPaths(run);
        expect(r.k2).toEqual(r.sharedSecret);
        expect(r.rejected).not.toEqual(r.sharedSecret);
      }),
      { numRuns: 8 },
    );
  });
});

describe.skipIf(!built)('native ML-KEM arithmetic (native/mlkem.c) equals poly.ts coefficient for coefficient', () => {
  const Q = 3329;
  const poly = (max: number) => fc.array(fc.integer({ min: -max, max }), { minLength: 256, maxLength: 256 }).map((a) => Int16Array.from(a));

  it('ntt, invNtt on random inputs in their documented input range |f| < q, and the extremes', () => {
    setNativeCrypto(true);
    const check = (f: Int16Array) => {
      const a = f.slice(), b = f.slice();
      nttJs(a);
      ntt(b);
      expect(b).toEqual(a);
      const c = f.slice(), d = f.slice();
      invNttJs(c);
      invNtt(d);
      expect(d).toEqual(c);
    };
    fc.assert(fc.property(poly(Q - 1), check), { numRuns: 300 });
    check(new Int16Array(256).fill(Q - 1));
    check(new Int16Array(256).fill(-(Q - 1)));
  });

  it('basemulAcc for k = 1..4 with an offset into a, in its input ranges (|a| < q, |b| <= (q-1)/2)', () => {
    setNativeCrypto(true);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.array(fc.integer({ min: -(Q - 1), max: Q - 1 }), { minLength: 2048, maxLength: 2048 }), fc.array(fc.integer({ min: -(Q - 1) / 2, max: (Q - 1) / 2 }), { minLength: 1024, maxLength: 1024 }), (k, row, av, bv) => {
        const a = Int16Array.from(av);
        const b = Int16Array.from(bv);
        const off = Math.min(row * 256 * k, a.length - 256 * k);
        const r1 = new Int16Array(256), r2 = new Int16Array(256);
        basemulAccJs(r1, a, off, b, k);
        basemulAcc(r2, a, off, b, k);
        expect(r2).toEqual(r1);
      }),
      { numRuns: 150 },
    );
  });

  it('rejects malformed arguments', () => {
    const l = lib();
    const call = (f: unknown, ...args: unknown[]) => () => (f as (...a: unknown[]) => unknown)(...args);
    expectArgError(call(l.mlkemNtt, new Int16Array(255)), RangeError);
    expectArgError(call(l.mlkemNtt, new Uint16Array(256)));
    expectArgError(call(l.mlkemInvNtt, new Int32Array(256)));
    expectArgError(call(l.mlkemInvNtt));
    const r = new Int16Array(256);
    expectArgError(call(l.mlkemBasemulAcc, r, new Int16Array(768), 1, new Int16Array(768), 3), RangeError);
    expectArgError(call(l.mlkemBasemulAcc, r, new Int16Array(768), 0, new Int16Array(512), 3), RangeError);
    expectArgError(call(l.mlkemBasemulAcc, r, new Int16Array(1280), 0, new Int16Array(1280), 5), RangeError);
    expectArgError(call(l.mlkemBasemulAcc, r, new Int16Array(768), -1, new Int16Array(768), 2), RangeError);
    expectArgError(call(l.mlkemBasemulAcc, r, [1, 2], 0, new Int16Array(768), 1));
    expectArgError(call(l.mlkemTables, new Int32Array(127), new Int32Array(128), new Int32Array(128), new Int32Array(128), 1, 1), RangeError);
  });
});

interface AeadVec {
  name: string;
  id?: number;
  bits?: number;
  key: string;
  iv: string;
  aad: string;
  plain: string;
  cipher: string;
}

describe.skipIf(!built)('native SK AEAD', () => {
  it('McGrew-Viega AES-GCM and RFC 7539 / RFC 7634 ChaCha20-Poly1305 vectors through createSkCipher, both paths', () => {
    const gcmV = loadVectors<{ vectors: AeadVec[] }>('aes-gcm-mcgrew-viega.json').vectors.map((v) => ({ ...v, info: encrInfo(v.id!, v.bits) }));
    const chaV = loadVectors<{ vectors: AeadVec[] }>('chacha20poly1305.json').vectors.map((v) => ({ ...v, info: encrInfo(Encr.CHACHA20_POLY1305) }));
    for (const v of [...gcmV, ...chaV]) {
      const sealed = bothPaths(() => createSkCipher(v.info, h(v.key)).seal(h(v.aad), h(v.iv), h(v.plain)));
      expect(toHex(sealed), v.name).toBe(v.cipher);
      expect(toHex(bothPaths(() => createSkCipher(v.info, h(v.key)).open(h(v.aad), h(v.iv), h(v.cipher))))).toBe(v.plain);
    }
  });

  it('random messages: native seal = node:crypto seal = @noble, and each opens the other; tampering is one AuthTagError', () => {
    const algs = [
      { info: encrInfo(Encr.AES_GCM_16, 256), noble: (k: Uint8Array, n: Uint8Array, a: Uint8Array) => gcm(k, n, a) },
      { info: encrInfo(Encr.AES_GCM_8, 128), noble: (k: Uint8Array, n: Uint8Array, a: Uint8Array) => gcm(k, n, a) },
      { info: encrInfo(Encr.AES_GCM_12, 192), noble: (k: Uint8Array, n: Uint8Array, a: Uint8Array) => gcm(k, n, a) },
      { info: encrInfo(Encr.CHACHA20_POLY1305), noble: (k: Uint8Array, n: Uint8Array, a: Uint8Array) => chacha20poly1305(k, n, a) },
    ];
    fc.assert(
      fc.property(fc.nat(3), fc.uint8Array({ minLength: 36, maxLength: 36 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 700 }), fc.nat(), (ai, km, iv, aad, plain, flipAt) => {
        const { info, noble } = algs[ai]!;
        const key = km.subarray(0, info.keySize + 4);
        setNativeCrypto(true);
        const nat = createSkCipher(info, key);
        setNativeCrypto(false);
        const js = createSkCipher(info, key);
        const sealed = nat.seal(aad, iv, plain);
        expect(sealed).toEqual(js.seal(aad, iv, plain));
        const nonce = new Uint8Array([...key.subarray(info.keySize), ...iv]);
        // RFC 4106 §6 / NIST SP 800-38D §5.2.1.2: a shorter ICV is the leftmost octets of the 16-octet tag.
        expect(sealed).toEqual(noble(key.subarray(0, info.keySize), nonce, aad).encrypt(plain).subarray(0, plain.length + info.icvSize));
        expect(nat.open(aad, iv, sealed)).toEqual(plain);
        expect(js.open(aad, iv, nat.seal(aad, iv, plain))).toEqual(plain);
        const bad = sealed.slice();
        bad[flipAt % bad.length]! ^= 0x80;
        expect(() => nat.open(aad, iv, bad)).toThrow(AuthTagError);
        expect(() => nat.open(aad, iv, sealed.subarray(0, info.icvSize - 1))).toThrow(AuthTagError);
        nat.destroy();
        js.destroy();
      }),
      { numRuns: 120 },
    );
  });

  it('AES-CBC + HMAC-SHA2 (encrypt-then-MAC): native = node:crypto = @noble on random messages; tampering and bad lengths are one AuthTagError', () => {
    const integs = [
      { id: IntegId.HMAC_SHA2_256_128, noble: nSha256 },
      { id: IntegId.HMAC_SHA2_384_192, noble: nSha384 },
      { id: IntegId.HMAC_SHA2_512_256, noble: nSha512 },
    ];
    fc.assert(
      fc.property(fc.constantFrom(128, 192, 256), fc.nat(2), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 40 }), fc.nat(), (bits, ii, km, mk, iv, aad, blocks, flipAt) => {
        const info = encrInfo(Encr.AES_CBC, bits);
        const integ = integInfo(integs[ii]!.id);
        const key = km.subarray(0, bits / 8);
        const macKey = mk.subarray(0, integ.keySize);
        const plain = new Uint8Array(blocks * 16).map((_, i) => (i * 7 + blocks) & 0xff);
        setNativeCrypto(true);
        const nat = createSkCipher(info, key, integ, macKey);
        setNativeCrypto(false);
        const js = createSkCipher(info, key, integ, macKey);
        const sealed = nat.seal(aad, iv, plain);
        expect(sealed).toEqual(js.seal(aad, iv, plain));
        const ct = cbc(key, iv, { disablePadding: true }).encrypt(plain);
        expect(sealed.subarray(0, ct.length)).toEqual(ct);
        expect(sealed.subarray(ct.length)).toEqual(hmac(integs[ii]!.noble, macKey, new Uint8Array([...aad, ...iv, ...ct])).subarray(0, integ.icvSize));
        expect(nat.open(aad, iv, sealed)).toEqual(plain);
        expect(js.open(aad, iv, sealed)).toEqual(plain);
        const bad = sealed.slice();
        bad[flipAt % bad.length]! ^= 1;
        expect(() => nat.open(aad, iv, bad)).toThrow(AuthTagError);
        expect(() => nat.open(aad, iv, sealed.subarray(1))).toThrow(AuthTagError);
        expect(() => nat.open(aad, iv.subarray(1), sealed)).toThrow(AuthTagError);
        nat.destroy();
        expect(() => nat.open(aad, iv, sealed)).toThrow(/after destroy/);
        js.destroy();
      }),
      { numRuns: 100 },
    );
  });

  it('destroy() frees the context: later use throws, a second destroy is harmless', () => {
    setNativeCrypto(true);
    const c = createSkCipher(encrInfo(Encr.AES_GCM_16, 256), new Uint8Array(36));
    const iv = new Uint8Array(8);
    const sealed = c.seal(new Uint8Array(4), iv, new Uint8Array(10));
    c.destroy();
    expect(() => c.seal(new Uint8Array(4), iv, new Uint8Array(10))).toThrow(/after destroy/);
    expect(() => c.open(new Uint8Array(4), iv, sealed)).toThrow(/after destroy/);
    c.destroy();
  });
});

describe.skipIf(!built)('native X25519', () => {
  const vec = loadVectors<{ vectors: { scalarMult: { scalar: string; u: string; out: string }[] } }>('x25519.json').vectors;

  it('RFC 7748 §5.2 scalar multiplications on the raw addon', () => {
    const l = lib();
    for (const v of vec.scalarMult) {
      const out = new Uint8Array(32);
      expect(l.x25519Derive(h(v.scalar), h(v.u), out)).toBe(true);
      expect(toHex(out)).toBe(v.out);
    }
  });

  it('public keys and shared secrets equal @noble and the node:crypto key exchange (both directions)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (a, b) => {
        const ka = bothPaths(() => {
          const ke = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(a));
          return ke.getPublic();
        });
        expect(ka).toEqual(x25519.getPublicKey(a));
        const pb = x25519.getPublicKey(b);
        const z = bothPaths(() => {
          const ke = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(a));
          ke.setPeerPublic(pb);
          const s = ke.getSharedSecret();
          ke.destroy();
          return s;
        });
        expect(z).toEqual(x25519.getSharedSecret(a, pb));
      }),
      { numRuns: 40 },
    );
  });

  it('low-order peer points give an all-zero result: false from the addon, KeyExchangeError from the KE, on both paths', () => {
    const l = lib();
    // RFC 7748 §6.1: u = 0 and u = 1 are of small order; every scalar maps them to zero.
    for (const u of [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0))]) {
      const out = new Uint8Array(32).fill(0xaa);
      expect(l.x25519Derive(new Uint8Array(32).fill(7), u, out)).toBe(false);
      expect(out.every((x) => x === 0)).toBe(true);
      for (const on of [true, false]) {
        setNativeCrypto(on);
        const ke = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(new Uint8Array(32).fill(7)));
        expect(() => ke.setPeerPublic(u)).toThrow(KeyExchangeError);
      }
    }
  });

  it('destroy() zeroes the scalar the native KE kept', () => {
    setNativeCrypto(true);
    const ke = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(new Uint8Array(32).fill(9)));
    const priv = (ke as unknown as { priv: Uint8Array }).priv;
    expect(priv).toBeInstanceOf(Uint8Array);
    ke.destroy();
    expect(priv.every((x) => x === 0)).toBe(true);
  });
});

/** Every call must throw a TypeError/RangeError carrying a code. */
function expectArgError(fn: () => unknown, kind: typeof TypeError | typeof RangeError = TypeError): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, String(fn)).toBeInstanceOf(kind);
  expect((err as { code?: string }).code, String(fn)).toMatch(/^ERR_/);
}

describe.skipIf(!built)('native entry points reject malformed arguments', () => {
  const u = (n: number) => new Uint8Array(n);
  const call = (f: unknown, ...args: unknown[]) => () => (f as (...a: unknown[]) => unknown)(...args);

  it('hmac / prfPlus / hash', () => {
    const l = lib();
    expectArgError(call(l.hmac));
    expectArgError(call(l.hmac, 0, u(4), u(20)));
    expectArgError(call(l.hmac, 4, u(4), u(20), u(1)));
    expectArgError(call(l.hmac, -1, u(4), u(20), u(1)));
    expectArgError(call(l.hmac, '1', u(4), u(20), u(1)));
    expectArgError(call(l.hmac, 1, 'key', u(32), u(1)));
    expectArgError(call(l.hmac, 1, new Uint16Array(4), u(32), u(1)));
    expectArgError(call(l.hmac, 1, u(4), u(33), u(1)), RangeError);
    expectArgError(call(l.hmac, 1, u(4), u(0), u(1)), RangeError);
    expectArgError(call(l.hmac, 1, u(4), u(32), [1, 2]));
    expectArgError(call(l.hmac, 1, u(4), u(32), u(1), u(1), u(1), u(1), u(1), u(1)));
    expectArgError(call(l.prfPlus, 1, u(4), u(4)));
    expectArgError(call(l.prfPlus, 1, u(4), null, u(4)));
    expectArgError(call(l.prfPlus, 2, u(4), u(4), u(255 * 48 + 1)), RangeError);
    const shared = u(64);
    expectArgError(call(l.prfPlus, 1, shared.subarray(0, 32), u(4), shared.subarray(16, 64)), RangeError);
    expectArgError(call(l.hash, 1, u(32)));
    expectArgError(call(l.hash, 8, u(32), u(1)));
    expectArgError(call(l.hash, 1, u(31), u(1)), RangeError);
    expectArgError(call(l.hash, 4, u(64), u(1)), RangeError);
    expectArgError(call(l.hash, NativeHash.SHAKE128, u(0), u(1)), RangeError);
    expectArgError(call(l.hash, 1, {}, u(1)));
  });

  it('skAead*', () => {
    const l = lib();
    expectArgError(call(l.skAeadNew, 4, u(32), u(4), 16));
    expectArgError(call(l.skAeadNew, NativeAead.AES_256_GCM, u(16), u(4), 16), RangeError);
    expectArgError(call(l.skAeadNew, NativeAead.AES_256_GCM, u(32), u(3), 16), RangeError);
    expectArgError(call(l.skAeadNew, NativeAead.AES_256_GCM, u(32), u(4), 10), RangeError);
    expectArgError(call(l.skAeadNew, NativeAead.CHACHA20_POLY1305, u(32), u(4), 12), RangeError);
    expectArgError(call(l.skAeadNew, NativeAead.AES_256_GCM, u(32), u(4), 'x'));
    const hd = l.skAeadNew(NativeAead.AES_128_GCM, u(16), u(4), 16);
    expectArgError(call(l.skAeadSeal, hd, u(0), u(8), u(10), u(25)), RangeError);
    expectArgError(call(l.skAeadSeal, hd, u(0), u(7), u(10), u(26)), RangeError);
    expectArgError(call(l.skAeadSeal, hd, u(0), u(8), u(10)));
    expectArgError(call(l.skAeadSeal, {}, u(0), u(8), u(10), u(26)));
    expectArgError(call(l.skAeadSeal, 1, u(0), u(8), u(10), u(26)));
    const buf = u(40);
    expectArgError(call(l.skAeadSeal, hd, u(0), u(8), buf.subarray(0, 10), buf.subarray(4, 30)), RangeError);
    expectArgError(call(l.skAeadOpen, hd, u(0), u(8), u(26), u(11)), RangeError);
    expect(l.skAeadOpen(hd, u(0), u(8), u(15), u(0))).toBe(false);
    // A foreign N-API external (the data plane's ESP AEAD handle) is not an SK context.
    const esp = (loadNativeAddon() as { aeadNew(...a: unknown[]): unknown }).aeadNew('aes-128-gcm', u(16), u(4), 16, true);
    expectArgError(call(l.skAeadSeal, esp, u(0), u(8), u(10), u(26)));
    expectArgError(call(l.skAeadFree, esp));
    l.skAeadFree(hd);
    l.skAeadFree(hd);
    expectArgError(call(l.skAeadSeal, hd, u(0), u(8), u(10), u(26)));
    expectArgError(call(l.skAeadOpen, hd as NativeAeadHandle, u(0), u(8), u(26), u(10)));
  });

  it('skCbc*', () => {
    const l = lib();
    const n = l.skCbcNew!;
    expectArgError(call(n, u(20), NativeHash.SHA256, u(32), 16), RangeError);
    expectArgError(call(n, u(16), NativeHash.SHA1, u(20), 10), RangeError);
    expectArgError(call(n, u(16), NativeHash.SHA256, u(31), 16), RangeError);
    expectArgError(call(n, u(16), NativeHash.SHA384, u(48), 16), RangeError);
    expectArgError(call(n, u(16), 9, u(32), 16));
    expectArgError(call(n, 'k', NativeHash.SHA256, u(32), 16));
    const hd = n(u(16), NativeHash.SHA256, u(32), 16);
    expectArgError(call(l.skCbcSeal, hd, u(0), u(16), u(15), u(31)), RangeError);
    expectArgError(call(l.skCbcSeal, hd, u(0), u(8), u(16), u(32)), RangeError);
    expectArgError(call(l.skCbcSeal, hd, u(0), u(16), u(16), u(31)), RangeError);
    expect(l.skCbcOpen!(hd, u(0), u(16), u(40), u(24))).toBe(false); // 40 - 16 is not a multiple of 16
    expect(l.skCbcOpen!(hd, u(0), u(16), u(48), u(32))).toBe(false); // all-zero ICV does not verify
    expectArgError(call(l.skCbcOpen, hd, u(0), u(16), u(48), u(31)), RangeError);
    const aead = l.skAeadNew(NativeAead.AES_128_GCM, u(16), u(4), 16);
    expectArgError(call(l.skCbcSeal, aead, u(0), u(16), u(16), u(32)));
    expectArgError(call(l.skAeadSeal, hd, u(0), u(8), u(16), u(32)));
    l.skCbcFree!(hd);
    l.skCbcFree!(hd);
    expectArgError(call(l.skCbcSeal, hd, u(0), u(16), u(16), u(32)));
  });

  it('x25519*', () => {
    const l = lib();
    expectArgError(call(l.x25519Public, u(31), u(32)), RangeError);
    expectArgError(call(l.x25519Public, u(32), u(33)), RangeError);
    expectArgError(call(l.x25519Public, u(32)));
    expectArgError(call(l.x25519Derive, u(32), u(31), u(32)), RangeError);
    expectArgError(call(l.x25519Derive, u(32), 'peer', u(32)));
  });
});

describe.skipIf(!built)('native contexts are released by the garbage collector too', () => {
  it('200,000 SK AEAD contexts never destroyed do not accumulate (finalizer), in a child with --expose-gc', () => {
    const addon = findNativeAddon()!;
    // Each context holds an EVP_CIPHER_CTX with an AES-256 key schedule and GCM tables (~1 KiB):
    // leaked, 200,000 of them are ~250 MiB (measured with the finalizer disabled).
    // N-API runs the finalizers after the GC from the event loop, so the rounds yield.
    const script = `
      const l = require(${JSON.stringify(addon)});
      const rss = () => process.memoryUsage().rss;
      const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
      (async () => {
        for (let i = 0; i < 20000; i++) l.skAeadNew(2, new Uint8Array(32), new Uint8Array(4), 16);
        await settle();
        const before = rss();
        for (let r = 0; r < 10; r++) {
          for (let i = 0; i < 20000; i++) l.skAeadNew(2, new Uint8Array(32), new Uint8Array(4), 16);
          await settle();
        }
        process.stdout.write(String((rss() - before) / 1048576));
      })();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(Number(r.stdout)).toBeLessThan(40);
  });
});
