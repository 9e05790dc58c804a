import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gcm, cbc } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { createSkCipher, encrInfo, integInfo } from '../../firmware/crypto/registry.js';
import { Encr, IntegId } from '../../firmware/ikev2/constants.js';
import { AuthTagError } from '../../firmware/util/errors.js';
import { flip, h, loadVectors, toHex } from './helpers.js';

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

function expectAuthFail(fn: () => unknown): void {
  expect(fn).toThrow(AuthTagError);
  try {
    fn();
  } catch (e) {
    expect((e as AuthTagError).code).toBe('ERR_ICV');
  }
}

describe('AES-GCM through createSkCipher (McGrew-Viega vectors, RFC 4106 layout)', () => {
  const { vectors } = loadVectors<{ vectors: AeadVec[] }>('aes-gcm-mcgrew-viega.json');
  for (const v of vectors) {
    it(`${v.name}: ${v.id} / ${v.bits}`, () => {
      const info = encrInfo(v.id!, v.bits);
      const c = createSkCipher(info, h(v.key));
      expect(c.aead).toBe(true);
      expect(c.ivSize).toBe(8);
      expect(c.icvSize).toBe(info.icvSize);
      const sealed = c.seal(h(v.aad), h(v.iv), h(v.plain));
      expect(toHex(sealed)).toBe(v.cipher);
      expect(toHex(c.open(h(v.aad), h(v.iv), h(v.cipher)))).toBe(v.plain);
    });
  }
});

describe('ChaCha20-Poly1305 through createSkCipher (RFC 7539 / RFC 7634 vectors)', () => {
  const { vectors } = loadVectors<{ vectors: AeadVec[] }>('chacha20poly1305.json');
  for (const v of vectors) {
    it(v.name, () => {
      const c = createSkCipher(encrInfo(Encr.CHACHA20_POLY1305), h(v.key));
      expect(toHex(c.seal(h(v.aad), h(v.iv), h(v.plain)))).toBe(v.cipher);
      expect(toHex(c.open(h(v.aad), h(v.iv), h(v.cipher)))).toBe(v.plain);
    });
  }
});

const HASH = { 12: sha256, 13: sha384, 14: sha512 } as const;

describe('AES-CBC + HMAC-SHA2 (encrypt-then-MAC, RFC 7296 §3.14)', () => {
  const { vectors } = loadVectors<{ vectors: { name: string; key: string; iv: string; plain: string; cipher: string }[] }>('aes-cbc.json');
  for (const v of vectors) {
    it(`${v.name}: ciphertext matches, ICV = trunc(HMAC(aad | iv | ct))`, () => {
      const key = h(v.key);
      const info = encrInfo(Encr.AES_CBC, key.length * 8);
      const integ = integInfo(IntegId.HMAC_SHA2_256_128);
      const ik = new Uint8Array(32).fill(0x5a);
      const aad = h('0011223344556677');
      const c = createSkCipher(info, key, integ, ik);
      expect(c.aead).toBe(false);
      expect(c.blockSize).toBe(16);
      const out = c.seal(aad, h(v.iv), h(v.plain));
      const ct = out.subarray(0, out.length - 16);
      expect(toHex(ct)).toBe(v.cipher);
      const icv = hmac(sha256, ik, new Uint8Array([...aad, ...h(v.iv), ...ct])).subarray(0, 16);
      expect(toHex(out.subarray(out.length - 16))).toBe(toHex(icv));
      expect(toHex(c.open(aad, h(v.iv), out))).toBe(v.plain);
    });
  }

  it('RFC 4868 truncated authenticators, checked through open() (aad | iv | ct = the 50-octet test data)', () => {
    const { vectors } = loadVectors<{ vectors: { name: string; integ: 12 | 13 | 14; key: string; data: string; icv: string }[] }>(
      'hmac-sha2-rfc4868-integ.json',
    );
    const usable = vectors.filter((v) => v.data.length / 2 === 50);
    expect(usable.length).toBe(3);
    for (const v of usable) {
      const data = h(v.data);
      const c = createSkCipher(encrInfo(Encr.AES_CBC, 128), new Uint8Array(16), integInfo(v.integ), h(v.key));
      // open() verifies the ICV over aad | iv | ct before decrypting; the
      // decrypted block is noise, but a wrong ICV would throw.
      const pt = c.open(data.subarray(0, 18), data.subarray(18, 34), new Uint8Array([...data.subarray(34), ...h(v.icv)]));
      expect(pt.length).toBe(16);
      expectAuthFail(() => c.open(data.subarray(0, 18), data.subarray(18, 34), new Uint8Array([...data.subarray(34), ...flip(h(v.icv), 0)])));
    }
    // The others (short data) directly against the HMAC definition.
    for (const v of vectors) {
      expect(toHex(hmac(HASH[v.integ], h(v.key), h(v.data)).subarray(0, h(v.icv).length))).toBe(v.icv);
    }
  });

  it('rejects unaligned plaintext on seal (codec bug) and bad lengths on open (peer input)', () => {
    const c = createSkCipher(encrInfo(Encr.AES_CBC, 256), new Uint8Array(32), integInfo(IntegId.HMAC_SHA2_384_192), new Uint8Array(48));
    expect(() => c.seal(new Uint8Array(0), new Uint8Array(16), new Uint8Array(15))).toThrow(TypeError);
    expect(() => c.seal(new Uint8Array(0), new Uint8Array(8), new Uint8Array(16))).toThrow(TypeError);
    expectAuthFail(() => c.open(new Uint8Array(0), new Uint8Array(16), new Uint8Array(24 + 15)));
    expectAuthFail(() => c.open(new Uint8Array(0), new Uint8Array(16), new Uint8Array(23)));
    expectAuthFail(() => c.open(new Uint8Array(0), new Uint8Array(15), new Uint8Array(40)));
  });
});

interface Suite {
  label: string;
  make: () => ReturnType<typeof createSkCipher>;
  iv: number;
}

const SUITES: Suite[] = [
  { label: 'AES_GCM_16_256', make: () => createSkCipher(encrInfo(20, 256), new Uint8Array(36).fill(7)), iv: 8 },
  { label: 'AES_GCM_8_128', make: () => createSkCipher(encrInfo(18, 128), new Uint8Array(20).fill(8)), iv: 8 },
  { label: 'AES_GCM_12_192', make: () => createSkCipher(encrInfo(19, 192), new Uint8Array(28).fill(9)), iv: 8 },
  { label: 'CHACHA20_POLY1305', make: () => createSkCipher(encrInfo(28), new Uint8Array(36).fill(1)), iv: 8 },
  {
    label: 'AES_CBC_128/HMAC_SHA2_256_128',
    make: () => createSkCipher(encrInfo(12, 128), new Uint8Array(16).fill(2), integInfo(12), new Uint8Array(32).fill(3)),
    iv: 16,
  },
  {
    label: 'AES_CBC_256/HMAC_SHA2_512_256',
    make: () => createSkCipher(encrInfo(12, 256), new Uint8Array(32).fill(4), integInfo(14), new Uint8Array(64).fill(5)),
    iv: 16,
  },
];

describe('tampering is an AuthTagError (RFC 7296 §2.21.2: silent drop)', () => {
  for (const s of SUITES) {
    it(s.label, () => {
      const c = s.make();
      const aad = h('5b3c5d1e7f0011223344556677889900' + '2e20250800000001000000502b00003c');
      const iv = new Uint8Array(s.iv).map((_, i) => i * 17);
      const plain = new Uint8Array(48).map((_, i) => i);
      const sealed = c.seal(aad, iv, plain);
      expect(sealed.length).toBe(48 + c.icvSize);
      expect(c.open(aad, iv, sealed)).toEqual(plain);
      expectAuthFail(() => c.open(flip(aad, 0), iv, sealed)); // header (AAD)
      expectAuthFail(() => c.open(aad.subarray(1), iv, sealed)); // truncated AAD
      expectAuthFail(() => c.open(aad, flip(iv, iv.length - 1), sealed)); // IV
      expectAuthFail(() => c.open(aad, iv, flip(sealed, 3))); // ciphertext
      expectAuthFail(() => c.open(aad, iv, flip(sealed, sealed.length - 1, 0x80))); // ICV
      expectAuthFail(() => c.open(aad, iv, sealed.subarray(0, sealed.length - 1))); // truncated
      expectAuthFail(() => c.open(aad, iv, new Uint8Array(c.icvSize - 1))); // shorter than the ICV
      expectAuthFail(() => c.open(aad, new Uint8Array(s.iv + 1), sealed)); // IV length
      c.destroy();
      expect(() => c.seal(aad, iv, plain)).toThrow();
    });
  }
});

describe('createSkCipher argument checks', () => {
  it('key sizes and AEAD/INTEG combination', () => {
    expect(() => createSkCipher(encrInfo(20, 256), new Uint8Array(32))).toThrow(TypeError); // salt missing
    expect(() => createSkCipher(encrInfo(20, 256), new Uint8Array(36), integInfo(12), new Uint8Array(32))).toThrow(TypeError);
    expect(() => createSkCipher(encrInfo(12, 128), new Uint8Array(16))).toThrow(TypeError);
    expect(() => createSkCipher(encrInfo(12, 128), new Uint8Array(16), integInfo(12), new Uint8Array(16))).toThrow(TypeError);
  });

  it('copies the key: wiping the caller buffer after construction changes nothing', () => {
    const key = new Uint8Array(36).fill(0x42);
    const c = createSkCipher(encrInfo(20, 256), key);
    const before = c.seal(new Uint8Array(0), new Uint8Array(8), new Uint8Array(5));
    key.fill(0);
    expect(c.seal(new Uint8Array(0), new Uint8Array(8), new Uint8Array(5))).toEqual(before);
  });
});

describe('cross-check against @noble/ciphers on random inputs', () => {
  const arb = fc.record({
    key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    salt: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    iv: fc.uint8Array({ minLength: 8, maxLength: 8 }),
    aad: fc.uint8Array({ maxLength: 64 }),
    plain: fc.uint8Array({ maxLength: 300 }),
  });

  it('AES-GCM-16/8/12 (truncated tags are prefixes of the full tag)', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom(128, 192, 256), ({ key, salt, iv, aad, plain }, bits) => {
        const k = key.subarray(0, bits / 8);
        const full = gcm(k, new Uint8Array([...salt, ...iv]), aad).encrypt(plain);
        for (const [id, icv] of [
          [20, 16],
          [19, 12],
          [18, 8],
        ] as const) {
          const c = createSkCipher(encrInfo(id, bits), new Uint8Array([...k, ...salt]));
          const ours = c.seal(aad, iv, plain);
          expect(ours).toEqual(full.subarray(0, plain.length + icv));
          expect(c.open(aad, iv, ours)).toEqual(plain);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('ChaCha20-Poly1305', () => {
    fc.assert(
      fc.property(arb, ({ key, salt, iv, aad, plain }) => {
        const ref = chacha20poly1305(key, new Uint8Array([...salt, ...iv]), aad).encrypt(plain);
        const c = createSkCipher(encrInfo(28), new Uint8Array([...key, ...salt]));
        expect(c.seal(aad, iv, plain)).toEqual(ref);
        expect(c.open(aad, iv, ref)).toEqual(plain);
      }),
      { numRuns: 60 },
    );
  });

  it('AES-CBC (no padding) + HMAC-SHA2', () => {
    fc.assert(
      fc.property(
        arb,
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom(12, 13, 14),
        ({ key, aad }, iv, blocks, integ) => {
          const plain = new Uint8Array(16 * blocks).map((_, i) => (i * 31) & 0xff);
          const ii = integInfo(integ);
          const ik = new Uint8Array(ii.keySize).fill(integ);
          const c = createSkCipher(encrInfo(12, 256), key, ii, ik);
          const out = c.seal(aad, iv, plain);
          const ct = cbc(key, iv, { disablePadding: true }).encrypt(plain);
          expect(out.subarray(0, ct.length)).toEqual(ct);
          const mac = hmac(HASH[integ as 12 | 13 | 14], ik, new Uint8Array([...aad, ...iv, ...ct])).subarray(0, ii.icvSize);
          expect(out.subarray(ct.length)).toEqual(mac);
        },
      ),
      { numRuns: 40 },
    );
  });
});
