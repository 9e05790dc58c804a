import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nSha256, sha384 as nSha384, sha512 as nSha512 } from '@noble/hashes/sha2.js';
import { sha1 as nSha1 } from '@noble/hashes/legacy.js';
import { createPrf, prfPlus } from '../../firmware/crypto/registry.js';
import { sha1, sha256 } from '../../firmware/crypto/hash.js';
import { PrfId } from '../../firmware/ikev2/constants.js';
import { PqError } from '../../firmware/util/errors.js';
import type { Prf } from '../../firmware/crypto/types.js';
import { h, loadVectors, toHex } from './helpers.js';

interface HmacVec {
  tc: number;
  key: string;
  data: string;
  truncateBytes?: number;
  sha256: string;
  sha384: string;
  sha512: string;
}

const PRFS = [
  { id: PrfId.HMAC_SHA2_256, hash: 'sha256' as const, noble: nSha256 },
  { id: PrfId.HMAC_SHA2_384, hash: 'sha384' as const, noble: nSha384 },
  { id: PrfId.HMAC_SHA2_512, hash: 'sha512' as const, noble: nSha512 },
];

describe('PRF_HMAC_SHA2_* against RFC 4231', () => {
  const { vectors } = loadVectors<{ vectors: HmacVec[] }>('hmac-sha2-rfc4231.json');
  for (const v of vectors) {
    for (const p of PRFS) {
      it(`test case ${v.tc} ${p.hash}`, () => {
        const out = createPrf(p.id).compute(h(v.key), h(v.data));
        expect(out.length).toBe(createPrf(p.id).outSize);
        const got = v.truncateBytes ? out.subarray(0, v.truncateBytes) : out;
        expect(toHex(got)).toBe(v[p.hash]);
      });
    }
  }
});

describe('PRF cross-check against @noble/hashes', () => {
  it('random keys (including longer than the block) and data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.uint8Array({ maxLength: 600 }), (key, data) => {
        for (const p of PRFS) {
          expect(createPrf(p.id).compute(key, data)).toEqual(hmac(p.noble, key, data));
        }
      }),
      { numRuns: 100 },
    );
  });
});

/** prf+ written out independently from RFC 7296 §2.13, on @noble/hashes. */
type NobleHash = Parameters<typeof hmac>[0];

function referencePrfPlus(hash: NobleHash, key: Uint8Array, seed: Uint8Array, len: number): Uint8Array {
  const out: number[] = [];
  let t: Uint8Array = new Uint8Array(0);
  for (let n = 1; out.length < len; n++) {
    t = hmac(hash, key, new Uint8Array([...t, ...seed, n]));
    out.push(...t);
  }
  return new Uint8Array(out.slice(0, len));
}

describe('prf+ (RFC 7296 §2.13)', () => {
  it('matches strongSwan test_prf_plus.c counter vector (HMAC-SHA2-256)', () => {
    const { vectors } = loadVectors<{ vectors: { prf: number; key: string; seed: string; out: string; chunks: string[] }[] }>(
      'prfplus-strongswan.json',
    );
    for (const v of vectors) {
      const prf = createPrf(v.prf);
      const out = prfPlus(prf, h(v.key), h(v.seed), v.out.length / 2);
      expect(toHex(out)).toBe(v.out);
      // A shorter request is a prefix of the longer stream.
      expect(toHex(prfPlus(prf, h(v.key), h(v.seed), 3))).toBe(v.chunks[0]);
    }
  });

  it('first block is prf(K, S | 0x01) and T1 | T2 chains with the counter', () => {
    const prf = createPrf(PrfId.HMAC_SHA2_384);
    const k = h('0102030405'),
      s = h('aabbcc');
    const t1 = prf.compute(k, new Uint8Array([...s, 1]));
    const t2 = prf.compute(k, new Uint8Array([...t1, ...s, 2]));
    expect(prfPlus(prf, k, s, 96)).toEqual(new Uint8Array([...t1, ...t2]));
  });

  it('agrees with an independent implementation for every PRF and many lengths', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 80 }), fc.uint8Array({ maxLength: 100 }), fc.integer({ min: 0, max: 700 }), (key, seed, len) => {
        for (const p of PRFS) {
          expect(prfPlus(createPrf(p.id), key, seed, len)).toEqual(referencePrfPlus(p.noble, key, seed, len));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('works through a non-HMAC Prf object too (generic compute path)', () => {
    const inner = createPrf(PrfId.HMAC_SHA2_256);
    const wrapped: Prf = { id: 99, name: 'wrapped', keySize: 32, outSize: 32, compute: (k, d) => inner.compute(k, d) };
    const k = h('00112233'),
      s = h('44556677');
    expect(prfPlus(wrapped, k, s, 100)).toEqual(prfPlus(inner, k, s, 100));
  });

  it('allows exactly 255 blocks and refuses more', () => {
    const prf = createPrf(PrfId.HMAC_SHA2_256);
    expect(prfPlus(prf, h('0b'), h('00'), 255 * 32).length).toBe(8160);
    expect(() => prfPlus(prf, h('0b'), h('00'), 255 * 32 + 1)).toThrow(PqError);
    expect(() => prfPlus(prf, h('0b'), h('00'), -1)).toThrow(TypeError);
    expect(prfPlus(prf, h('0b'), h('00'), 0).length).toBe(0);
  });
});

describe('hash helpers', () => {
  it('FIPS 180 "abc" examples and multi-part input', () => {
    const abc = new TextEncoder().encode('abc');
    expect(toHex(sha1(abc))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(toHex(sha256(abc))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256(abc.subarray(0, 1), abc.subarray(1))).toEqual(sha256(abc));
    expect(sha1()).toEqual(nSha1(new Uint8Array(0)));
  });
  it('cross-check against @noble/hashes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (d) => {
        expect(sha1(d)).toEqual(nSha1(d));
        expect(sha256(d)).toEqual(nSha256(d));
      }),
      { numRuns: 50 },
    );
  });
});
