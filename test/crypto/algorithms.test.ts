import { describe, expect, it } from 'vitest';
import {
  encrInfo,
  encrName,
  integInfo,
  integName,
  keInfo,
  keName,
  prfName,
  supportedKeMethods,
  createPrf,
  createKeyExchange,
} from '../../firmware/crypto/registry.js';
import { Encr, IntegId, KeMethod, PrfId } from '../../firmware/ikev2/constants.js';
import { PqError } from '../../firmware/util/errors.js';
import { TestRng } from '../../firmware/util/rng.js';

function unsupported(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PqError);
    expect((e as PqError).code).toBe('ERR_UNSUPPORTED');
    return;
  }
  throw new Error('expected ERR_UNSUPPORTED');
}

describe('encrInfo', () => {
  it('AES-CBC: key from the Key Length attribute, 16-octet IV and block, no salt, ICV from INTEG', () => {
    for (const bits of [128, 192, 256]) {
      const i = encrInfo(Encr.AES_CBC, bits);
      expect(i).toMatchObject({ id: 12, aead: false, keySize: bits / 8, saltSize: 0, ivSize: 16, icvSize: 0, blockSize: 16 });
      expect(i.name).toBe(`AES_CBC_${bits}`);
    }
  });

  it('AES-GCM 8/12/16 (RFC 5282): key + 4-octet salt, 8-octet IV, ICV 8/12/16', () => {
    const icv: Record<number, number> = { 18: 8, 19: 12, 20: 16 };
    for (const id of [Encr.AES_GCM_8, Encr.AES_GCM_12, Encr.AES_GCM_16]) {
      for (const bits of [128, 192, 256]) {
        const i = encrInfo(id, bits);
        expect(i).toMatchObject({ id, aead: true, keySize: bits / 8, saltSize: 4, ivSize: 8, icvSize: icv[id], blockSize: 1 });
        expect(i.name).toBe(`AES_GCM_${icv[id]}_${bits}`);
      }
    }
  });

  it('ChaCha20-Poly1305 (RFC 7634): no Key Length attribute (or the compat 256), 32+4 key', () => {
    for (const bits of [undefined, 256]) {
      expect(encrInfo(Encr.CHACHA20_POLY1305, bits)).toMatchObject({
        name: 'CHACHA20_POLY1305',
        aead: true,
        keySize: 32,
        saltSize: 4,
        ivSize: 8,
        icvSize: 16,
      });
    }
    unsupported(() => encrInfo(Encr.CHACHA20_POLY1305, 128));
  });

  it('rejects missing/odd AES key lengths and unknown ids with ERR_UNSUPPORTED', () => {
    unsupported(() => encrInfo(Encr.AES_CBC));
    unsupported(() => encrInfo(Encr.AES_GCM_16, 512));
    unsupported(() => encrInfo(Encr.AES_GCM_16, 0));
    unsupported(() => encrInfo(3)); // 3DES
    unsupported(() => encrInfo(16, 128)); // AES-CCM-16: not offered
  });

  it('names', () => {
    expect(encrName(20, 256)).toBe('AES_GCM_16_256');
    expect(encrName(12, 128)).toBe('AES_CBC_128');
    expect(encrName(28)).toBe('CHACHA20_POLY1305');
  });
});

describe('integInfo / prf / ke tables', () => {
  it('HMAC-SHA2 INTEG (RFC 4868): key = hash length, ICV = half', () => {
    expect(integInfo(IntegId.HMAC_SHA2_256_128)).toMatchObject({ name: 'HMAC_SHA2_256_128', keySize: 32, icvSize: 16 });
    expect(integInfo(IntegId.HMAC_SHA2_384_192)).toMatchObject({ name: 'HMAC_SHA2_384_192', keySize: 48, icvSize: 24 });
    expect(integInfo(IntegId.HMAC_SHA2_512_256)).toMatchObject({ name: 'HMAC_SHA2_512_256', keySize: 64, icvSize: 32 });
    unsupported(() => integInfo(2)); // HMAC_SHA1_96
    unsupported(() => integInfo(IntegId.NONE));
    expect(integName(13)).toBe('HMAC_SHA2_384_192');
  });

  it('PRFs: key size = output size = hash length', () => {
    for (const [id, size] of [
      [PrfId.HMAC_SHA2_256, 32],
      [PrfId.HMAC_SHA2_384, 48],
      [PrfId.HMAC_SHA2_512, 64],
    ] as const) {
      const p = createPrf(id);
      expect(p.keySize).toBe(size);
      expect(p.outSize).toBe(size);
      expect(p.name).toBe(prfName(id));
    }
    expect(prfName(6)).toBe('PRF_HMAC_SHA2_384');
    unsupported(() => createPrf(2)); // PRF_HMAC_SHA1
  });

  it('KE sizes per RFC 3526 / RFC 5903 §7 / RFC 8031 / FIPS 203', () => {
    const want: Record<number, [string, number, number, boolean]> = {
      14: ['MODP_2048', 256, 256, false],
      15: ['MODP_3072', 384, 384, false],
      19: ['ECP_256', 64, 64, false],
      20: ['ECP_384', 96, 96, false],
      21: ['ECP_521', 132, 132, false],
      31: ['CURVE_25519', 32, 32, false],
      35: ['ML_KEM_512', 800, 768, true],
      36: ['ML_KEM_768', 1184, 1088, true],
      37: ['ML_KEM_1024', 1568, 1568, true],
    };
    expect(supportedKeMethods().sort((a, b) => a - b)).toEqual(Object.keys(want).map(Number));
    for (const [m, [name, i, r, pq]] of Object.entries(want)) {
      const info = keInfo(Number(m));
      expect(info).toMatchObject({ name, initiatorPublicSize: i, responderPublicSize: r, isKem: pq, postQuantum: pq });
      expect(keName(Number(m))).toBe(name);
    }
    unsupported(() => keInfo(KeMethod.NONE));
    unsupported(() => keInfo(16)); // MODP_4096
    unsupported(() => createKeyExchange(32, new TestRng('x'))); // Curve448
  });

  it('every supported method produces KE data of the advertised size on both sides', () => {
    const rng = new TestRng('sizes');
    for (const m of supportedKeMethods()) {
      const info = keInfo(m);
      const i = createKeyExchange(m, rng);
      const r = createKeyExchange(m, rng);
      expect(i.isKem).toBe(info.isKem);
      expect(i.name).toBe(info.name);
      const a = i.getPublic();
      expect(a.length).toBe(info.initiatorPublicSize);
      r.setPeerPublic(a);
      const b = r.getPublic();
      expect(b.length).toBe(info.responderPublicSize);
      i.setPeerPublic(b);
      expect(i.getSharedSecret()).toEqual(r.getSharedSecret());
      i.destroy();
      r.destroy();
    }
  });
});
