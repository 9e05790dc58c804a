/**
 * The addon's ESP AEAD path (native/pqtun.c aeadSeal/aeadOpen via
 * esp/native-aead.ts) against the node:crypto reference (AeadTransform),
 * byte for byte: AES-GCM with 128/192/256-bit keys and 8/12/16-byte ICVs,
 * ChaCha20-Poly1305, with and without ESN, every length from 0 to 64 and
 * random lengths up to 9000; each side opens what the other sealed;
 * tampering anywhere (header, IV, ciphertext, ICV, ESN high bits) fails and
 * leaves no plaintext behind; whole ESP packets through EspSa agree too.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { AeadTransform, createEspTransform, type EspTransform } from '../../firmware/dataplane/esp/transforms.js';
import { NativeAeadTransform, nativeAead } from '../../firmware/dataplane/esp/native-aead.js';
import { EspSa } from '../../firmware/dataplane/esp/sa.js';
import { Encr } from '../../firmware/ikev2/constants.js';
import { findTunAddon } from '../../firmware/dataplane/tun/tun.js';

const lib = findTunAddon() ? nativeAead() : undefined;
if (!lib) console.warn('[native-aead] addon not built (npm run build:native): skipped');

interface Suite {
  name: string;
  encrId: number;
  bits: number;
  icv: number;
}

const SUITES: Suite[] = [
  { name: 'AES-GCM-16-128', encrId: Encr.AES_GCM_16, bits: 128, icv: 16 },
  { name: 'AES-GCM-16-192', encrId: Encr.AES_GCM_16, bits: 192, icv: 16 },
  { name: 'AES-GCM-16-256', encrId: Encr.AES_GCM_16, bits: 256, icv: 16 },
  { name: 'AES-GCM-12-256', encrId: Encr.AES_GCM_12, bits: 256, icv: 12 },
  { name: 'AES-GCM-8-128', encrId: Encr.AES_GCM_8, bits: 128, icv: 8 },
  { name: 'ChaCha20-Poly1305', encrId: Encr.CHACHA20_POLY1305, bits: 256, icv: 16 },
];

function pair(s: Suite): { js: EspTransform; c: EspTransform; key: Uint8Array } {
  const key = new Uint8Array(randomBytes(s.bits / 8 + 4));
  const js = createEspTransform(s.encrId, s.bits, key, 0, new Uint8Array(0), false);
  const c = createEspTransform(s.encrId, s.bits, key, 0, new Uint8Array(0), true);
  expect(js).toBeInstanceOf(AeadTransform);
  expect(c).toBeInstanceOf(NativeAeadTransform);
  return { js, c, key };
}

/** An ESP packet frame with SPI/Seq filled and `plain` in place, room for the ICV. */
function frame(plain: Uint8Array, icv: number, spi: number, seq: number): Uint8Array {
  const p = new Uint8Array(16 + plain.length + icv);
  new DataView(p.buffer).setUint32(0, spi);
  new DataView(p.buffer).setUint32(4, seq >>> 0);
  p.set(plain, 16);
  return p;
}

describe.skipIf(!lib)('native ESP AEAD (pqtun addon) against node:crypto', () => {
  for (const s of SUITES) {
    it(`${s.name}: identical packets, cross-open, tamper detection`, () => {
      const { js, c } = pair(s);
      const lengths = [...Array.from({ length: 65 }, (_, i) => i), ...Array.from({ length: 40 }, () => Math.floor(Math.random() * 9000))];
      let seq = 1;
      for (const n of lengths) {
        const plain = new Uint8Array(randomBytes(n));
        const esn = n % 3 === 0;
        const seqHi = esn ? 0x1234_5678 + n : -1;
        const fullSeq = esn ? seqHi * 0x1_0000_0000 + seq : seq;
        const a = frame(plain, s.icv, 0xc0ffee00 + n, fullSeq);
        const b = frame(plain, s.icv, 0xc0ffee00 + n, fullSeq);
        js.seal(a, n, fullSeq, seqHi);
        c.seal(b, n, fullSeq, seqHi);
        expect(Buffer.from(b).equals(Buffer.from(a)), `length ${n}`).toBe(true);
        // Each opens the other's.
        expect(Buffer.from(c.open(a, a.length, seqHi)!).equals(Buffer.from(plain))).toBe(true);
        expect(Buffer.from(js.open(b, b.length, seqHi)!).equals(Buffer.from(plain))).toBe(true);
        // Wrong ESN high bits (RFC 4303 §3.3.2: authenticated, not sent): both reject.
        if (esn) {
          expect(c.open(b, b.length, seqHi + 1)).toBeNull();
          expect(js.open(b, b.length, seqHi + 1)).toBeNull();
        }
        // Any flipped bit fails.
        const at = Math.floor(Math.random() * b.length);
        b[at]! ^= 1 << (n % 8);
        expect(c.open(b, b.length, seqHi), `flip at ${at} of ${b.length}`).toBeNull();
        expect(js.open(b, b.length, seqHi)).toBeNull();
        seq += 1 + (n % 7);
      }
      c.destroy();
      js.destroy();
    });
  }

  it('a failed open leaves no plaintext in the output buffer', () => {
    const key = new Uint8Array(randomBytes(36));
    const h = lib!.aeadNew('aes-256-gcm', key.subarray(0, 32), key.subarray(32), 16, true);
    const d = lib!.aeadNew('aes-256-gcm', key.subarray(0, 32), key.subarray(32), 16, false);
    const plain = new Uint8Array(200).fill(0x41);
    const pkt = frame(plain, 16, 0x1000, 1);
    lib!.aeadSeal(h, pkt, plain.length, -1);
    const out = new Uint8Array(200).fill(0xee);
    expect(lib!.aeadOpen(d, pkt, pkt.length, -1, out)).toBe(true);
    expect(out.every((x) => x === 0x41)).toBe(true);
    pkt[pkt.length - 1]! ^= 0x80;
    out.fill(0xee);
    expect(lib!.aeadOpen(d, pkt, pkt.length, -1, out)).toBe(false);
    expect(out.every((x) => x === 0)).toBe(true);
    lib!.aeadFree(h);
    lib!.aeadFree(d);
    lib!.aeadFree(d); // idempotent
    expect(() => lib!.aeadSeal(h, pkt, 10, -1)).toThrow(/freed/);
  });

  it('rejects bad arguments instead of reading or writing out of bounds', () => {
    const k = new Uint8Array(32);
    const s4 = new Uint8Array(4);
    expect(() => lib!.aeadNew('aes-256-gcm', new Uint8Array(16), s4, 16, true)).toThrow(/unsupported/);
    expect(() => lib!.aeadNew('chacha20-poly1305', k, s4, 8, true)).toThrow(/unsupported/);
    expect(() => lib!.aeadNew('aes-256-gcm', k, new Uint8Array(3), 16, true)).toThrow(/salt/);
    expect(() => lib!.aeadNew('des', k, s4, 16, true)).toThrow(/unsupported/);
    const e = lib!.aeadNew('aes-256-gcm', k, s4, 16, true);
    const d = lib!.aeadNew('aes-256-gcm', k, s4, 16, false);
    expect(() => lib!.aeadSeal(e, new Uint8Array(40), 20, -1)).toThrow(/too short/); // 16 + 20 + 16 > 40
    expect(() => lib!.aeadSeal(d, new Uint8Array(100), 20, -1)).toThrow(/decryption context/);
    expect(() => lib!.aeadOpen(e, new Uint8Array(100), 100, -1, new Uint8Array(100))).toThrow(/encryption context/);
    expect(() => lib!.aeadOpen(d, new Uint8Array(100), 101, -1, new Uint8Array(100))).toThrow(/len/);
    expect(() => lib!.aeadOpen(d, new Uint8Array(100), 20, -1, new Uint8Array(100))).toThrow(/shorter/);
    expect(() => lib!.aeadOpen(d, new Uint8Array(100), 100, -1, new Uint8Array(67))).toThrow(/out/);
    expect(() => lib!.aeadSeal({}, new Uint8Array(100), 20, -1)).toThrow(/handle/);
    lib!.aeadFree(e);
    lib!.aeadFree(d);
  });

  it('whole ESP packets: EspSa on the addon and on node:crypto produce the same bytes and open each other', () => {
    for (const s of SUITES) {
      const key = new Uint8Array(randomBytes(s.bits / 8 + 4));
      const params = { spi: 0x4242, encrId: s.encrId, encrKeyBits: s.bits, encrKey: key, integId: 0, integKey: new Uint8Array(0), esn: true, replayWindow: 64 };
      const txJs = new EspSa({ ...params, native: false });
      const txC = new EspSa({ ...params, native: true });
      const rxJs = new EspSa({ ...params, native: false });
      const rxC = new EspSa({ ...params, native: true });
      for (let i = 0; i < 50; i++) {
        const inner = new Uint8Array(randomBytes(20 + i * 29));
        inner[0] = 0x45;
        const a = txJs.encapsulate(inner, 4)!;
        const b = txC.encapsulate(inner, 4)!;
        expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
        const ra = rxC.decapsulate(a);
        const rb = rxJs.decapsulate(b);
        expect(ra.status).toBe(0);
        expect(rb.status).toBe(0);
        expect(Buffer.from(ra.payload).equals(Buffer.from(inner))).toBe(true);
        expect(Buffer.from(rb.payload).equals(Buffer.from(inner))).toBe(true);
      }
      for (const x of [txJs, txC, rxJs, rxC]) x.destroy();
    }
  });
});
