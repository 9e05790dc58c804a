import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EspSa, DecapStatus, SEQ_LIMIT_32, type EspSaParams } from '../../firmware/dataplane/esp/sa.js';
import { EspAlgorithmError } from '../../firmware/dataplane/esp/transforms.js';
import { Encr, IntegId } from '../../firmware/ikev2/constants.js';

const gcm: EspSaParams = { spi: 0x3000, encrId: Encr.AES_GCM_16, encrKeyBits: 256, encrKey: new Uint8Array(randomBytes(36)), integId: 0, integKey: new Uint8Array(0), esn: false, replayWindow: 64 };
const cbc: EspSaParams = { spi: 0x3001, encrId: Encr.AES_CBC, encrKeyBits: 128, encrKey: new Uint8Array(randomBytes(16)), integId: IntegId.HMAC_SHA2_256_128, integKey: new Uint8Array(randomBytes(32)), esn: false, replayWindow: 64 };

const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/** Encrypt an arbitrary plaintext (trailer included) as an ESP packet with sequence `seq`: for crafting bad padding. */
function sealRaw(sa: EspSa, seq: number, plaintext: Uint8Array): Uint8Array {
  const t = sa.transform;
  const pkt = new Uint8Array(8 + t.ivSize + plaintext.length + t.icvSize);
  new DataView(pkt.buffer).setUint32(0, sa.spi);
  new DataView(pkt.buffer).setUint32(4, seq);
  pkt.set(plaintext, 8 + t.ivSize);
  t.seal(pkt, plaintext.length, seq, -1);
  return pkt;
}

describe('ESP padding and trailer (RFC 4303 §2.4-2.6)', () => {
  for (const [name, p, block] of [['AEAD', gcm, 4], ['CBC', cbc, 16]] as const) {
    it(`${name}: pads with 1, 2, 3, ... to a ${block}-byte boundary and carries the next header`, () => {
      const tx = new EspSa(p);
      for (let len = 0; len <= 2 * block + 3; len++) {
        const inner = new Uint8Array(randomBytes(len));
        const pkt = tx.encapsulate(inner, len % 2 ? 41 : 4)!;
        const pt = tx.transform.open(pkt, pkt.length, -1)!;
        expect(pt.length % block).toBe(0);
        expect(pt.length).toBe(Math.ceil((len + 2) / block) * block); // minimal padding
        const padLen = pt[pt.length - 2]!;
        expect(padLen).toBe(pt.length - 2 - len);
        for (let i = 0; i < padLen; i++) expect(pt[len + i]).toBe(i + 1);
        expect(pt[pt.length - 1]).toBe(len % 2 ? 41 : 4);
        expect((pkt.length - 8) % 4).toBe(0);
      }
    });
  }

  it('maxInner is the exact inverse of espLength', () => {
    for (const p of [gcm, cbc]) {
      const sa = new EspSa(p);
      for (const budget of [100, 577, 1000, 1400, 1472, 1500 - 28]) {
        const m = sa.maxInner(budget);
        expect(sa.espLength(m)).toBeLessThanOrEqual(budget);
        expect(sa.espLength(m + 1)).toBeGreaterThan(budget);
      }
    }
  });

  it('decapsulate rejects wrong pad bytes and impossible pad lengths as malformed, after the window update', () => {
    const sa = new EspSa(gcm);
    // 6 bytes of payload, 4 pad bytes that are not 1,2,3,4.
    const badBytes = sealRaw(sa, 1, Uint8Array.from([1, 2, 3, 4, 5, 6, 1, 2, 9, 4, 4, 4]));
    const r = sa.decapsulate(badBytes);
    expect(r.status).toBe(DecapStatus.MALFORMED);
    // The packet was authentic: its number is used up.
    expect(sa.decapsulate(badBytes).status).toBe(DecapStatus.REPLAY);
    const tooLong = sealRaw(sa, 2, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 200, 4]));
    expect(sa.decapsulate(tooLong).status).toBe(DecapStatus.MALFORMED);
    const good = sealRaw(sa, 3, Uint8Array.from([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 4, 4]));
    const ok = sa.decapsulate(good);
    expect(ok.status).toBe(DecapStatus.OK);
    expect(Array.from(ok.payload)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ok.nextHeader).toBe(4);
  });

  it('truncated, misaligned and garbage packets are dropped with a status, never an exception', () => {
    for (const p of [gcm, cbc]) {
      const tx = new EspSa(p);
      const rx = new EspSa(p);
      const pkt = copy(tx.encapsulate(new Uint8Array(randomBytes(100)), 4)!);
      for (let n = 0; n < pkt.length; n++) {
        const st = rx.decapsulate(pkt.subarray(0, n)).status;
        expect([DecapStatus.MALFORMED, DecapStatus.AUTH, DecapStatus.REPLAY]).toContain(st);
      }
      for (let i = 0; i < 200; i++) {
        const junk = new Uint8Array(randomBytes(1 + (i * 7) % 300));
        expect(() => rx.decapsulate(junk)).not.toThrow();
      }
      expect(rx.replay.top).toBe(0);
      expect(rx.decapsulate(pkt).status).toBe(DecapStatus.OK);
    }
  });
});

describe('sequence numbers (RFC 4303 §3.3.3)', () => {
  it('start at 1 and stop at 2^32-1 without ESN', () => {
    const sa = new EspSa(gcm);
    const first = sa.encapsulate(new Uint8Array(20), 4)!;
    expect(new DataView(first.buffer, first.byteOffset).getUint32(4)).toBe(1);
    sa.seq = SEQ_LIMIT_32 - 1;
    const last = sa.encapsulate(new Uint8Array(20), 4)!;
    expect(new DataView(last.buffer, last.byteOffset).getUint32(4)).toBe(0xffff_ffff);
    expect(sa.exhausted).toBe(true);
    expect(sa.encapsulate(new Uint8Array(20), 4)).toBeNull();
    expect(sa.seq).toBe(SEQ_LIMIT_32);
  });

  it('with ESN the counter crosses 2^32 and the receiver follows', () => {
    const p = { ...gcm, esn: true };
    const tx = new EspSa(p);
    const rx = new EspSa(p);
    tx.seq = 2 ** 32 - 2;
    rx.replay.update(2 ** 32 - 2);
    for (let i = 0; i < 4; i++) {
      const r = rx.decapsulate(tx.encapsulate(new Uint8Array(20), 4)!);
      expect(r.status).toBe(DecapStatus.OK);
      expect(r.seq).toBe(2 ** 32 - 1 + i);
    }
    expect(tx.exhausted).toBe(false);
  });

  it('ESN and non-ESN peers do not interoperate silently (SeqHi is authenticated)', () => {
    const tx = new EspSa({ ...gcm, esn: true });
    const rx = new EspSa({ ...gcm, esn: false });
    tx.seq = 2 ** 32 + 5;
    rx.replay.update(2);
    expect(rx.decapsulate(tx.encapsulate(new Uint8Array(20), 4)!).status).toBe(DecapStatus.AUTH);
  });
});

describe('SA parameters', () => {
  it('rejects reserved SPIs and unsupported or inconsistent algorithms', () => {
    expect(() => new EspSa({ ...gcm, spi: 255 })).toThrow(RangeError);
    expect(() => new EspSa({ ...gcm, encrKey: new Uint8Array(32) })).toThrow(EspAlgorithmError);
    expect(() => new EspSa({ ...gcm, integId: IntegId.HMAC_SHA2_256_128, integKey: new Uint8Array(32) })).toThrow(EspAlgorithmError);
    expect(() => new EspSa({ ...cbc, integId: 0 })).toThrow(EspAlgorithmError);
    expect(() => new EspSa({ ...cbc, integKey: new Uint8Array(20) })).toThrow(EspAlgorithmError);
    expect(() => new EspSa({ ...gcm, encrId: 3 /* 3DES */ })).toThrow(EspAlgorithmError);
    try {
      new EspSa({ ...gcm, encrId: 3 });
    } catch (e) {
      expect((e as EspAlgorithmError).code).toBe('ERR_ESP_ALGORITHM');
    }
  });

  it('destroy wipes the key copies so the SA no longer produces valid packets', () => {
    const rx = new EspSa(gcm);
    const tx = new EspSa(gcm);
    const pkt = copy(tx.encapsulate(new Uint8Array(30), 4)!);
    rx.destroy();
    expect(rx.decapsulate(pkt).status).toBe(DecapStatus.AUTH); // salt wiped: the nonce no longer matches
  });
});
