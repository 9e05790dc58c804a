import { describe, expect, it } from 'vitest';
import { ml_kem1024, ml_kem512, ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { createKeyExchange } from '../../firmware/crypto/registry.js';
import { mlkemModulusOk } from '../../firmware/crypto/ke-mlkem.js';
import { KeMethod } from '../../firmware/ikev2/constants.js';
import { KeyExchangeError } from '../../firmware/util/errors.js';
import { TestRng, systemRng } from '../../firmware/util/rng.js';
import { ScriptedRng, flip, h, loadVectors, toHex } from './helpers.js';

const METHOD: Record<string, number> = {
  'ML-KEM-512': KeMethod.ML_KEM_512,
  'ML-KEM-768': KeMethod.ML_KEM_768,
  'ML-KEM-1024': KeMethod.ML_KEM_1024,
};
const NOBLE = { 'ML-KEM-512': ml_kem512, 'ML-KEM-768': ml_kem768, 'ML-KEM-1024': ml_kem1024 } as const;
const K: Record<number, number> = { 35: 2, 36: 3, 37: 4 };

function expectKeError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KeyExchangeError);
    expect((e as KeyExchangeError).code).toBe('ERR_KE');
    return;
  }
  throw new Error('expected KeyExchangeError');
}

describe('NIST ACVP ML-KEM vectors (FIPS 203)', () => {
  const keygen = loadVectors<{ parameterSet: string; tcId: number; d: string; z: string; ek: string }[]>('mlkem-acvp-keygen.json');
  for (const v of keygen) {
    it(`keyGen ${v.parameterSet} tc${v.tcId}: initiator KE data from rng d | z`, () => {
      const ke = createKeyExchange(METHOD[v.parameterSet]!, new ScriptedRng(new Uint8Array([...h(v.d), ...h(v.z)])));
      expect(toHex(ke.getPublic())).toBe(v.ek.toLowerCase());
    });
  }

  const encap = loadVectors<{ parameterSet: string; tcId: number; ek: string; m: string; c: string; k: string }[]>('mlkem-acvp-encap.json');
  for (const v of encap) {
    it(`encapsulation ${v.parameterSet} tc${v.tcId}: responder ct and K from rng m`, () => {
      const ke = createKeyExchange(METHOD[v.parameterSet]!, new ScriptedRng(h(v.m)));
      ke.setPeerPublic(h(v.ek));
      expect(toHex(ke.getPublic())).toBe(v.c.toLowerCase());
      expect(toHex(ke.getSharedSecret())).toBe(v.k.toLowerCase());
    });
  }

  const decap = loadVectors<{ parameterSet: keyof typeof NOBLE; tgId: number; dk: string; tests: { tcId: number; c: string; k: string; reason: string }[] }[]>(
    'mlkem-acvp-decap.json',
  );
  for (const g of decap) {
    for (const t of g.tests) {
      it(`decapsulation ${g.parameterSet} tc${t.tcId} (${t.reason}) in the ML-KEM library we depend on`, () => {
        expect(toHex(NOBLE[g.parameterSet].decapsulate(h(t.c), h(g.dk)))).toBe(t.k.toLowerCase());
      });
    }
  }
});

describe('ML-KEM as a KeyExchange (draft-ietf-ipsecme-ikev2-mlkem)', () => {
  for (const m of [KeMethod.ML_KEM_512, KeMethod.ML_KEM_768, KeMethod.ML_KEM_1024]) {
    it(`method ${m}: initiator ek -> responder ct -> same 32-octet secret`, () => {
      const ini = createKeyExchange(m, new TestRng('i' + m));
      const res = createKeyExchange(m, new TestRng('r' + m));
      expect(ini.isKem).toBe(true);
      const ek = ini.getPublic();
      expect(ini.getPublic()).toEqual(ek); // stable
      res.setPeerPublic(ek);
      const ct = res.getPublic();
      ini.setPeerPublic(ct);
      expect(ini.getSharedSecret().length).toBe(32);
      expect(ini.getSharedSecret()).toEqual(res.getSharedSecret());
      expectKeError(() => ini.setPeerPublic(ct)); // only once
      expectKeError(() => res.setPeerPublic(ek));
      ini.destroy();
      res.destroy();
      expect(() => ini.getSharedSecret()).toThrow();
    });

    it(`method ${m}: randomness comes from the Rng (64-octet d|z, 32-octet m), distinct per object`, () => {
      const a = createKeyExchange(m, new TestRng('same'));
      const b = createKeyExchange(m, new TestRng('same'));
      expect(a.getPublic()).toEqual(b.getPublic());
      const c = createKeyExchange(m, new TestRng('other'));
      expect(c.getPublic()).not.toEqual(a.getPublic());
      // responder draws exactly one 32-octet m and no keygen seed
      const rng = new ScriptedRng(new Uint8Array(32).fill(7));
      createKeyExchange(m, rng).setPeerPublic(a.getPublic());
      expect(rng.remaining).toBe(0);
    });

    it(`method ${m}: a tampered ciphertext decapsulates to a different secret (implicit rejection), not an error`, () => {
      const ini = createKeyExchange(m, systemRng);
      const res = createKeyExchange(m, systemRng);
      res.setPeerPublic(ini.getPublic());
      const ct = res.getPublic();
      ini.setPeerPublic(flip(ct, 100));
      expect(ini.getSharedSecret().length).toBe(32);
      expect(ini.getSharedSecret()).not.toEqual(res.getSharedSecret());
    });

    it(`method ${m}: FIPS 203 §7.2 / §7.3 input checks raise KeyExchangeError`, () => {
      const ek = createKeyExchange(m, systemRng).getPublic();
      const k = K[m]!;
      // wrong ek lengths
      expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(ek.subarray(1)));
      expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(new Uint8Array([...ek, 0])));
      expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(new Uint8Array(0)));
      // modulus violation: first coefficient := 3329 (q), then 4095
      for (const coeff of [3329, 4095]) {
        const bad = ek.slice();
        bad[0] = coeff & 0xff;
        bad[1] = (bad[1]! & 0xf0) | (coeff >> 8);
        expect(mlkemModulusOk(bad, k)).toBe(false);
        expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(bad));
      }
      // last coefficient of the last polynomial (high nibble of octet 384k-2, octet 384k-1)
      const bad2 = ek.slice();
      bad2[384 * k - 1] = 0xff;
      expect(mlkemModulusOk(bad2, k)).toBe(false);
      expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(bad2));
      // the 32-octet rho is not subject to the check
      const rhoChanged = ek.slice();
      rhoChanged[ek.length - 1]! ^= 0xff;
      expect(mlkemModulusOk(rhoChanged, k)).toBe(true);
      createKeyExchange(m, systemRng).setPeerPublic(rhoChanged);
      // wrong ct lengths at the initiator
      const ini = createKeyExchange(m, systemRng);
      ini.getPublic();
      const res = createKeyExchange(m, systemRng);
      res.setPeerPublic(ini.getPublic());
      const ct = res.getPublic();
      expectKeError(() => ini.setPeerPublic(ct.subarray(1)));
      expectKeError(() => ini.setPeerPublic(new Uint8Array([...ct, 1])));
      // and the initiator still works with the right one afterwards
      ini.setPeerPublic(ct);
      expect(ini.getSharedSecret()).toEqual(res.getSharedSecret());
    });
  }

  it('the modulus check agrees with ByteEncode12(ByteDecode12(ek)) == ek (via noble) on edge coefficients', () => {
    const ek = createKeyExchange(KeMethod.ML_KEM_512, new TestRng('mod')).getPublic();
    for (const coeff of [0, 1, 3327, 3328, 3329, 3330, 4095]) {
      for (const pos of [0, 1]) {
        const bad = ek.slice();
        if (pos === 0) {
          bad[0] = coeff & 0xff;
          bad[1] = (bad[1]! & 0xf0) | (coeff >> 8);
        } else {
          bad[1] = (bad[1]! & 0x0f) | ((coeff & 0x0f) << 4);
          bad[2] = coeff >> 4;
        }
        let nobleOk = true;
        try {
          ml_kem512.encapsulate(bad, new Uint8Array(32));
        } catch {
          nobleOk = false;
        }
        expect(mlkemModulusOk(bad, 2)).toBe(coeff < 3329);
        expect(nobleOk).toBe(coeff < 3329);
      }
    }
  });

  it('interoperates with @noble/post-quantum used directly (both roles)', () => {
    const ours = createKeyExchange(KeMethod.ML_KEM_768, systemRng);
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(ours.getPublic());
    ours.setPeerPublic(cipherText);
    expect(ours.getSharedSecret()).toEqual(sharedSecret);

    const { publicKey, secretKey } = ml_kem768.keygen();
    const resp = createKeyExchange(KeMethod.ML_KEM_768, systemRng);
    resp.setPeerPublic(publicKey);
    expect(ml_kem768.decapsulate(resp.getPublic(), secretKey)).toEqual(resp.getSharedSecret());
  });
});
