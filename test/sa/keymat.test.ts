import { describe, it, expect } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import {
  addKeSkeyseed,
  childKeymatSeed,
  deriveAddKeKeys,
  deriveChildKeys,
  deriveIkeKeys,
  deriveRekeyedIkeKeys,
  idPayloadBody,
  ikeKeymatLength,
  initialSkeyseed,
  intAuthStep,
  KEY_PAD,
  pskAuth,
  rekeySkeyseed,
  signedOctets,
  verifyAuth,
  type IkeKeys,
} from '../../firmware/ikev2/sa/keymat.js';
import { createPrf, encrInfo, integInfo, prfPlus } from '../../firmware/crypto/registry.js';
import type { Prf } from '../../firmware/crypto/types.js';
import { concat, hex } from '../../firmware/util/bytes.js';
import { Encr, IntegId, PrfId } from '../../firmware/ikev2/constants.js';
import { h, prfFor, vector } from './helpers.js';

interface NistCase {
  hash: string;
  prfId: number;
  gir: string;
  girNew: string;
  ni: string;
  nr: string;
  spiI: string;
  spiR: string;
  skeyseed: string;
  dkm: string;
  dkmChild?: string;
  dkmChildDh?: string;
  skeyseedRekey: string;
}
const nist = vector<{ cases: NistCase[] }>('nist-cavp-ikev2.json').cases;
const ss = vector<{ key: string; seed: string; reads: string[]; prfOfSeed: string; maxBlocks: number }>('strongswan-prf-plus.json');

// Algorithms with enough key material (>= 132 octets) to cover the whole 132-octet DKM.
const aesCbc256 = encrInfo(Encr.AES_CBC, 256);
const sha512Integ = integInfo(IntegId.HMAC_SHA2_512_256);
const flat = (k: IkeKeys): Uint8Array => concat(k.skD, k.skAi, k.skAr, k.skEi, k.skEr, k.skPi, k.skPr);

describe('keymat: NIST CAVP SP 800-135 IKEv2 vectors', () => {
  for (const v of nist) {
    const prf = prfFor(v.hash, v.prfId);
    const [ni, nr, spiI, spiR] = [h(v.ni), h(v.nr), h(v.spiI), h(v.spiR)];
    describe(`HMAC-${v.hash}`, () => {
      it('SKEYSEED = prf(Ni | Nr, g^ir)', () => {
        expect(hex(initialSkeyseed(prf, ni, nr, h(v.gir)))).toBe(v.skeyseed);
      });
      it('IKE SA keys are the DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), split in RFC 7296 order', () => {
        const a = { prf, encr: aesCbc256, integ: sha512Integ };
        expect(ikeKeymatLength(a)).toBeGreaterThanOrEqual(132);
        const keys = deriveIkeKeys({ ...a, sharedSecret: h(v.gir), ni, nr, spiI, spiR });
        expect(hex(flat(keys).subarray(0, 132))).toBe(v.dkm);
        expect(keys.skD.length).toBe(prf.keySize);
        expect(keys.skAi.length).toBe(64);
        expect(keys.skEi.length).toBe(32);
        expect(keys.skPr.length).toBe(prf.keySize);
        // Same keys from a precomputed SKEYSEED.
        expect(hex(flat(deriveIkeKeys({ ...a, skeyseed: h(v.skeyseed), ni, nr, spiI, spiR })))).toBe(hex(flat(keys)));
      });
      it('SKEYSEED(rekey) = prf(SK_d, g^ir(new) | Ni | Nr)', () => {
        const skD = h(v.dkm).subarray(0, prf.outSize);
        expect(hex(rekeySkeyseed(prf, skD, [h(v.girNew)], ni, nr))).toBe(v.skeyseedRekey);
      });
      if (v.dkmChild && v.dkmChildDh) {
        const skD = h(v.dkm).subarray(0, prf.outSize);
        const childFlat = (secrets: Uint8Array[]): string => {
          const k = deriveChildKeys({ prf, skD, ni, nr, secrets, encr: aesCbc256, integ: sha512Integ });
          expect([k.encrI.length, k.integI.length, k.encrR.length, k.integR.length]).toEqual([32, 64, 32, 64]);
          return hex(concat(k.encrI, k.integI, k.encrR, k.integR).subarray(0, 132));
        };
        it('Child SA KEYMAT = prf+(SK_d, Ni | Nr)', () => {
          expect(childFlat([])).toBe(v.dkmChild);
        });
        it('Child SA KEYMAT with PFS = prf+(SK_d, g^ir(new) | Ni | Nr)', () => {
          expect(childFlat([h(v.girNew)])).toBe(v.dkmChildDh);
        });
      }
    });
  }
});

describe('prf+ (strongSwan test_prf_plus.c, HMAC-SHA-256)', () => {
  const prf = createPrf(PrfId.HMAC_SHA2_256);
  const stream = ss.reads.join('');
  it('matches the reference stream', () => {
    expect(hex(prfPlus(prf, h(ss.key), h(ss.seed), stream.length / 2))).toBe(stream);
  });
  it('is prf with the counter octet, not plain prf', () => {
    expect(hex(prf.compute(h(ss.key), h(ss.seed)))).toBe(ss.prfOfSeed);
    expect(hex(prfPlus(prf, h(ss.key), h(ss.seed), 32))).not.toBe(ss.prfOfSeed);
  });
  it('stops after 255 blocks', () => {
    expect(prfPlus(prf, h(ss.key), h(ss.seed), ss.maxBlocks * 32).length).toBe(8160);
    expect(() => prfPlus(prf, h(ss.key), h(ss.seed), ss.maxBlocks * 32 + 1)).toThrow();
  });
});

// ---------------------------------------------------------------- structure

const prf256 = createPrf(PrfId.HMAC_SHA2_256);
const prf384 = createPrf(PrfId.HMAC_SHA2_384);
const gcm256 = encrInfo(Encr.AES_GCM_16, 256);
const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

/** RFC 7296 §2.14 split of prf+ output, written out independently of splitIkeKeymat. */
function manualSplit(km: Uint8Array, p: number, a: number, e: number): IkeKeys {
  const at = (o: number, n: number): Uint8Array => km.slice(o, o + n);
  return {
    skD: at(0, p),
    skAi: at(p, a),
    skAr: at(p + a, a),
    skEi: at(p + 2 * a, e),
    skEr: at(p + 2 * a + e, e),
    skPi: at(p + 2 * a + 2 * e, p),
    skPr: at(p + 2 * a + 2 * e + p, p),
  };
}

describe('keymat: AEAD key layout', () => {
  it('SK_a is empty and SK_e carries the 4-octet salt (AES-GCM-256: 36 octets)', () => {
    const [ni, nr, spiI, spiR, gir] = [rnd(32), rnd(32), rnd(8), rnd(8), rnd(32)];
    const keys = deriveIkeKeys({ prf: prf256, encr: gcm256, sharedSecret: gir, ni, nr, spiI, spiR });
    const seed = createHmac('sha256', concat(ni, nr)).update(gir).digest();
    const km = prfPlus(prf256, new Uint8Array(seed), concat(ni, nr, spiI, spiR), 3 * 32 + 2 * 36);
    expect(keys).toEqual(manualSplit(km, 32, 0, 36));
    expect(keys.skAi.length).toBe(0);
    expect(keys.skEi.length).toBe(36);
  });
  it('an integrity algorithm passed alongside AEAD is ignored', () => {
    const args = { prf: prf256, encr: gcm256, sharedSecret: rnd(32), ni: rnd(16), nr: rnd(16), spiI: rnd(8), spiR: rnd(8) };
    expect(deriveIkeKeys({ ...args, integ: integInfo(IntegId.HMAC_SHA2_256_128) })).toEqual(deriveIkeKeys(args));
  });
  it('rejects a classic cipher without integrity and non-8-octet SPIs', () => {
    const base = { prf: prf256, encr: aesCbc256, sharedSecret: rnd(32), ni: rnd(16), nr: rnd(16) };
    expect(() => deriveIkeKeys({ ...base, spiI: rnd(8), spiR: rnd(8) })).toThrow(/integrity/);
    expect(() => deriveIkeKeys({ ...base, integ: sha512Integ, spiI: rnd(4), spiR: rnd(8) })).toThrow(/SPI/);
  });
});

describe('keymat: RFC 9370 IKE_INTERMEDIATE chain', () => {
  it('k rounds of deriveAddKeKeys equal the manual prf / prf+ composition', () => {
    const [ni, nr, spiI, spiR] = [rnd(32), rnd(32), rnd(8), rnd(8)];
    const a = { prf: prf384, encr: gcm256 };
    let keys = deriveIkeKeys({ ...a, sharedSecret: rnd(32), ni, nr, spiI, spiR });
    let manual = keys;
    for (let round = 1; round <= 3; round++) {
      const sk = rnd(32); // an ML-KEM shared secret
      keys = deriveAddKeKeys({ ...a, prev: keys, sharedSecret: sk, ni, nr, spiI, spiR });
      // SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
      const seed = new Uint8Array(createHmac('sha384', manual.skD).update(concat(sk, ni, nr)).digest());
      expect(hex(addKeSkeyseed(prf384, manual.skD, sk, ni, nr))).toBe(hex(seed));
      manual = manualSplit(prfPlus(prf384, seed, concat(ni, nr, spiI, spiR), 3 * 48 + 2 * 36), 48, 0, 36);
      expect(keys).toEqual(manual);
    }
  });
  it('the secret comes before the nonces (order matters)', () => {
    const [skD, sk, ni, nr] = [rnd(32), rnd(32), rnd(32), rnd(32)];
    const right = addKeSkeyseed(prf256, skD, sk, ni, nr);
    expect(hex(right)).toBe(hex(prf256.compute(skD, concat(sk, ni, nr))));
    expect(hex(right)).not.toBe(hex(prf256.compute(skD, concat(ni, nr, sk))));
  });
});

describe('keymat: rekey and Child SA formulas (RFC 7296 §2.17/§2.18 + RFC 9370)', () => {
  const [ni, nr, spiI, spiR] = [rnd(32), rnd(32), rnd(8), rnd(8)];
  const secrets = [rnd(56), rnd(32), rnd(32)]; // SK(0) from CREATE_CHILD_SA, SK(1..2) from IKE_FOLLOWUP_KE

  it('IKE rekey SKEYSEED = prf_old(SK_d(old), SK(0) | Ni | Nr | SK(1) | SK(2))', () => {
    const oldSkD = rnd(32);
    const seed = rekeySkeyseed(prf256, oldSkD, secrets, ni, nr);
    expect(hex(seed)).toBe(hex(prf256.compute(oldSkD, concat(secrets[0]!, ni, nr, secrets[1]!, secrets[2]!))));
    expect(hex(seed)).not.toBe(hex(prf256.compute(oldSkD, concat(secrets[0]!, secrets[1]!, secrets[2]!, ni, nr))));
    expect(() => rekeySkeyseed(prf256, oldSkD, [], ni, nr)).toThrow();
  });

  it('IKE rekey: prf+ with the old PRF by default (strongSwan), the new one on request (RFC 7296 text)', () => {
    const oldSkD = rnd(32);
    const base = { prf: prf384, encr: gcm256, oldPrf: prf256, oldSkD, secrets, ni, nr, spiI, spiR };
    const seed = prf256.compute(oldSkD, concat(secrets[0]!, ni, nr, secrets[1]!, secrets[2]!));
    const len = 3 * 48 + 2 * 36; // sizes of the NEW SA (PRF-SHA-384 keys)
    const viaOld = manualSplit(prfPlus(prf256, seed, concat(ni, nr, spiI, spiR), len), 48, 0, 36);
    const viaNew = manualSplit(prfPlus(prf384, seed, concat(ni, nr, spiI, spiR), len), 48, 0, 36);
    expect(deriveRekeyedIkeKeys(base)).toEqual(viaOld);
    expect(deriveRekeyedIkeKeys({ ...base, prfPlusWith: 'new' })).toEqual(viaNew);
    expect(viaOld).not.toEqual(viaNew);
    // Same PRF on both sides of the rekey: the two readings agree.
    const same = { ...base, prf: prf256, oldPrf: prf256 };
    expect(deriveRekeyedIkeKeys(same)).toEqual(deriveRekeyedIkeKeys({ ...same, prfPlusWith: 'new' }));
  });

  it('Child SA with PFS + follow-up KEs: KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | SK(2))', () => {
    const skD = rnd(32);
    const k = deriveChildKeys({ prf: prf256, skD, ni, nr, secrets, encr: gcm256 });
    const km = prfPlus(prf256, skD, concat(secrets[0]!, ni, nr, secrets[1]!, secrets[2]!), 72);
    expect(k).toEqual({ encrI: km.slice(0, 36), integI: new Uint8Array(0), encrR: km.slice(36, 72), integR: new Uint8Array(0) });
    expect(hex(childKeymatSeed(ni, nr, secrets))).toBe(hex(concat(secrets[0]!, ni, nr, secrets[1]!, secrets[2]!)));
    expect(hex(childKeymatSeed(ni, nr, []))).toBe(hex(concat(ni, nr)));
  });

  it('Child SA key order is encr_i, integ_i, encr_r, integ_r', () => {
    const skD = rnd(32);
    const k = deriveChildKeys({ prf: prf256, skD, ni, nr, encr: encrInfo(Encr.AES_CBC, 128), integ: integInfo(IntegId.HMAC_SHA2_256_128) });
    const km = prfPlus(prf256, skD, concat(ni, nr), 2 * (16 + 32));
    expect(hex(k.encrI)).toBe(hex(km.subarray(0, 16)));
    expect(hex(k.integI)).toBe(hex(km.subarray(16, 48)));
    expect(hex(k.encrR)).toBe(hex(km.subarray(48, 64)));
    expect(hex(k.integR)).toBe(hex(km.subarray(64, 96)));
  });
});

describe('keymat: IntAuth and AUTH', () => {
  const prf: Prf = prf256;
  it('IntAuth chain (RFC 9242 §3.3.1)', () => {
    const [skP1, skP2, a1, p1, a2, p2] = [rnd(32), rnd(32), rnd(60), rnd(1200), rnd(60), rnd(80)];
    const i1 = intAuthStep(prf, skP1, undefined, a1, p1);
    expect(hex(i1)).toBe(hex(prf.compute(skP1, concat(a1, p1))));
    const i2 = intAuthStep(prf, skP2, i1, a2, p2);
    expect(hex(i2)).toBe(hex(prf.compute(skP2, concat(i1, a2, p2))));
  });

  it('signed octets = RealMessage | peer nonce | prf(SK_p, ID body) | IntAuth', () => {
    const [msg, nonce, skP, intAuth] = [rnd(300), rnd(32), rnd(32), rnd(68)];
    const idBody = idPayloadBody(2, new TextEncoder().encode('gw.example.net'));
    expect(hex(idBody.subarray(0, 4))).toBe('02000000');
    const o = signedOctets({ realMessage: msg, peerNonce: nonce, prf, skP, idPayloadBody: idBody, intAuth });
    expect(hex(o)).toBe(hex(concat(msg, nonce, prf.compute(skP, idBody), intAuth)));
    expect(hex(signedOctets({ realMessage: msg, peerNonce: nonce, prf, skP, idPayloadBody: idBody }))).toBe(hex(concat(msg, nonce, prf.compute(skP, idBody))));
  });

  it('PSK AUTH = prf(prf(PSK, "Key Pad for IKEv2"), octets), pad without NUL', () => {
    expect(KEY_PAD.length).toBe(17);
    expect(new TextDecoder().decode(KEY_PAD)).toBe('Key Pad for IKEv2');
    const psk = new TextEncoder().encode('a long shared secret');
    const octets = rnd(400);
    const inner = createHmac('sha256', psk).update('Key Pad for IKEv2').digest();
    const expected = createHmac('sha256', inner).update(octets).digest();
    const auth = pskAuth(prf, psk, octets);
    expect(hex(auth)).toBe(expected.toString('hex'));
    expect(verifyAuth(auth, new Uint8Array(expected))).toBe(true);
    const bad = auth.slice();
    bad[5]! ^= 1;
    expect(verifyAuth(auth, bad)).toBe(false);
    expect(verifyAuth(auth, auth.subarray(0, 16))).toBe(false);
  });
});
