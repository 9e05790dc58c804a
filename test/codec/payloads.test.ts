import { describe, it, expect } from 'vitest';
import { decodeChain, encodePayloads, encodeSaBody, decodeSaBody, isUnknownPayload } from '../../firmware/ikev2/codec/index.js';
import type { Payload, SaPayload, TsPayload } from '../../firmware/ikev2/codec/types.js';
import { PayloadType, TransformType } from '../../firmware/ikev2/constants.js';
import { Reader, Writer, fromHex, hex } from '../../firmware/util/bytes.js';
import { everyPayload, saIke } from './fixtures.js';

function roundTrip(payloads: Payload[]): Payload[] {
  const bytes = encodePayloads(payloads);
  return decodeChain(bytes, 0, bytes.length, payloads[0]?.type ?? 0, 0, false).payloads;
}

describe('payload bodies', () => {
  it.each(everyPayload.map((p, i) => [i, p.type, p] as const))('round-trips payload #%i (type %i) alone', (_i, _t, p) => {
    expect(roundTrip([p])).toEqual([p]);
  });

  it('round-trips a chain of every payload type, keeping order and critical bits', () => {
    const back = roundTrip(everyPayload);
    expect(back).toEqual(everyPayload);
    expect(back.filter((p) => p.critical).map((p) => p.type)).toEqual([201, PayloadType.VENDOR]);
    expect(back.filter(isUnknownPayload).map((p) => p.type)).toEqual([200, 201]);
  });

  it('encodes the SA payload exactly as RFC 7296 §3.3 lays it out', () => {
    const sa: SaPayload = {
      type: 33,
      proposals: [{ num: 1, protocol: 1, spi: new Uint8Array(0), transforms: [{ type: TransformType.ENCR, id: 12, keyLength: 128 }, { type: TransformType.KE, id: 31 }] }],
    };
    const w = new Writer();
    encodeSaBody(w, sa);
    // proposal: last 0, len 0x1c (8 + 12 + 8), num 1, proto 1, spi 0, 2 transforms
    // transform 1: more(3), len 12, ENCR 12, TV attr 0x800e = 128; transform 2: last(0), len 8, KE 31
    expect(hex(w.finish())).toBe('0000001c' + '01010002' + '0300000c' + '0100000c' + '800e0080' + '00000008' + '0400001f');
    const back = decodeSaBody(new Reader(w.finish()));
    expect(back.proposals).toEqual(sa.proposals);
  });

  it('decodes the real SA payload of the AOSP IKE_SA_INIT vector', () => {
    // SA body: 1 proposal, IKE, AES-CBC-128, HMAC-SHA1-96, MODP-1024, PRF-HMAC-SHA1
    const body = fromHex('0000002c010100040300000c0100000c800e0080030000080300000203000008040000020000000802000002');
    const { proposals } = decodeSaBody(new Reader(body));
    expect(proposals).toEqual([
      {
        num: 1,
        protocol: 1,
        spi: new Uint8Array(0),
        transforms: [
          { type: 1, id: 12, keyLength: 128 },
          { type: 3, id: 2 },
          { type: 4, id: 2 },
          { type: 2, id: 2 },
        ],
      },
    ]);
  });

  it('keeps TV and TLV attributes other than Key Length for round trips', () => {
    const t = (saIke as SaPayload).proposals[1]!.transforms[0]!;
    const back = roundTrip([saIke])[0] as SaPayload;
    expect(back.proposals[1]!.transforms[0]).toEqual(t);
    expect(t.otherAttributes).toHaveLength(2);
  });

  it('accepts the OPAQUE port encoding (65535..0) but keeps ranges otherwise', () => {
    const back = roundTrip([everyPayload.find((p) => p.type === PayloadType.TSi)!])[0] as TsPayload;
    expect(back.selectors.map((s) => [s.startPort, s.endPort])).toEqual([
      [0, 65535],
      [500, 500],
      [65535, 0],
    ]);
  });

  it('accepts nonces of exactly 16 and 256 octets', () => {
    for (const n of [16, 256]) {
      const p: Payload = { type: 40, data: new Uint8Array(n) };
      expect(roundTrip([p])).toEqual([p]);
    }
  });

  it('rejects encoding values that do not fit their fields', () => {
    expect(() => encodePayloads([{ type: 40, data: new Uint8Array(70000) }])).toThrow(RangeError);
    expect(() => encodePayloads([{ type: 34, method: 70000, data: new Uint8Array(1) }])).toThrow(RangeError);
    expect(() =>
      encodePayloads([{ type: 44, selectors: [{ tsType: 7, ipProtocol: 0, startPort: 0, endPort: 1, startAddr: new Uint8Array(16), endAddr: new Uint8Array(16) }] }]),
    ).toThrow(RangeError);
    expect(() => encodePayloads([{ type: 33, proposals: [] }])).toThrow(RangeError);
  });
});
