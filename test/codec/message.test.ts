import { describe, it, expect } from 'vitest';
import {
  decodeHeader,
  decodeHeaderOnly,
  decodePlain,
  decodeProtected,
  encodeHeader,
  encodePayloads,
  encodePlain,
  encodeProtected,
  isFragment,
  InvalidMajorVersionError,
  type FragmentInfo,
} from '../../firmware/ikev2/codec/index.js';
import type { DecodedMessage, Message } from '../../firmware/ikev2/codec/types.js';
import type { SkCipher } from '../../firmware/crypto/types.js';
import { ExchangeType, KeMethod, PayloadType } from '../../firmware/ikev2/constants.js';
import { ParseError } from '../../firmware/util/errors.js';
import { cbc256, counterIv, gcm256 } from './fake-cipher.js';
import { authRequest, emptyInformational, initRequest, intermediateRequest, SPI_I, SPI_R } from './fixtures.js';

function stripDecoded(m: DecodedMessage): Message {
  const { spiI, spiR, exchange, response, initiator, messageId, encrypted, payloads } = m;
  return { spiI, spiR, exchange, response, initiator, messageId, encrypted, payloads };
}

describe('IKE header (RFC 7296 §3.1)', () => {
  it('encodes version 2.0, R/I flags, Message ID and length', () => {
    const h = encodeHeader({ spiI: SPI_I, spiR: SPI_R, nextPayload: 46, exchange: 35, response: true, initiator: true, messageId: 0x01020304, length: 28 });
    expect(Array.from(h.subarray(16))).toEqual([46, 0x20, 35, 0x28, 1, 2, 3, 4, 0, 0, 0, 28]);
    const d = decodeHeader(h);
    expect(d).toMatchObject({ nextPayload: 46, majorVersion: 2, minorVersion: 0, exchange: 35, response: true, initiator: true, messageId: 0x01020304, length: 28 });
    expect(d.spiI).toEqual(SPI_I);
  });

  it('ignores the minor version, the V flag and the reserved flag bits', () => {
    const h = encodeHeader({ spiI: SPI_I, spiR: SPI_R, nextPayload: 0, exchange: 37, response: false, initiator: false, messageId: 7, length: 28 });
    h[17] = 0x27;
    h[19] = 0x10 | 0x80 | 0x07;
    const d = decodeHeader(h);
    expect(d).toMatchObject({ minorVersion: 7, response: false, initiator: false, messageId: 7 });
  });

  it('reports a foreign major version with the fields needed to answer INVALID_MAJOR_VERSION', () => {
    const h = encodeHeader({ spiI: SPI_I, spiR: SPI_R, nextPayload: 0, exchange: 34, response: false, initiator: true, messageId: 0, length: 99 });
    h[17] = 0x30; // IKE 3.0; the length is not even checked (§2.5: drop and notify)
    try {
      decodeHeaderOnly(h);
      expect.fail('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidMajorVersionError);
      const err = e as InvalidMajorVersionError;
      expect(err.code).toBe('ERR_IKE_MAJOR_VERSION');
      expect(err.majorVersion).toBe(3);
      expect(err.header.spiI).toEqual(SPI_I);
      expect(err.header.exchange).toBe(34);
    }
  });

  it('requires the header length to equal the datagram length', () => {
    const h = encodeHeader({ spiI: SPI_I, spiR: SPI_R, nextPayload: 0, exchange: 37, response: false, initiator: true, messageId: 0, length: 28 });
    const longer = new Uint8Array(30);
    longer.set(h);
    expect(() => decodeHeader(longer)).toThrow(ParseError);
  });
});

describe('plain messages', () => {
  it('round-trips an IKE_SA_INIT request and keeps the raw octets', () => {
    const m = initRequest();
    const bytes = encodePlain(m);
    const d = decodePlain(bytes);
    expect(stripDecoded(d)).toEqual(m);
    expect(d.raw).toEqual(bytes);
    expect(d.fragments).toBe(0);
    expect(bytes[16]).toBe(PayloadType.SA);
  });

  it('round-trips an IKE_SA_INIT with a pure ML-KEM-768 KE (1184-octet ek)', () => {
    const m = initRequest(1184, KeMethod.ML_KEM_768);
    expect(stripDecoded(decodePlain(encodePlain(m)))).toEqual(m);
  });

  it('refuses to encode a message marked encrypted in the clear, and vice versa', () => {
    expect(() => encodePlain(authRequest())).toThrow(TypeError);
    expect(() => encodeProtected(initRequest(), gcm256(), counterIv())).toThrow(TypeError);
  });
});

describe.each([
  ['AES-256-GCM-16', gcm256],
  ['AES-256-CBC + HMAC-SHA-256-128', cbc256],
])('protected messages with %s', (_name, mk) => {
  it('round-trips IKE_AUTH, IKE_INTERMEDIATE and an empty INFORMATIONAL', () => {
    for (const m of [authRequest(), intermediateRequest(), emptyInformational(), emptyInformational(true)]) {
      const { datagrams } = encodeProtected(m, mk(), counterIv());
      expect(datagrams).toHaveLength(1);
      const d = decodeProtected(datagrams[0]!, mk());
      expect(isFragment(d)).toBe(false);
      expect(stripDecoded(d as DecodedMessage)).toEqual(m);
      expect((d as DecodedMessage).raw).toEqual(datagrams[0]);
    }
  });

  it('pads the SK plaintext to the block size (RFC 7296 §3.14)', () => {
    const c = mk();
    for (let extra = 0; extra < 20; extra++) {
      const m = intermediateRequest(100 + extra);
      const dg = encodeProtected(m, c, counterIv()).datagrams[0]!;
      const ctLen = dg.length - 32 - c.ivSize - c.icvSize;
      expect(ctLen % c.blockSize).toBe(0);
      expect(ctLen).toBeGreaterThanOrEqual(108 + extra + 1);
      expect(ctLen).toBeLessThan(108 + extra + 1 + c.blockSize);
    }
  });

  it('returns IntAuth_A/P with the RFC 9242 adjusted lengths', () => {
    const m = intermediateRequest(1184);
    const c = mk();
    const { datagrams, intAuthA, intAuthP } = encodeProtected(m, c, counterIv());
    const p = encodePayloads(m.payloads);
    expect(intAuthP).toEqual(p);
    expect(intAuthA).toHaveLength(32);
    const v = new DataView(intAuthA.buffer, intAuthA.byteOffset);
    expect(intAuthA[16]).toBe(PayloadType.SK);
    expect(v.getUint32(24)).toBe(32 + p.length); // |A| + |P|
    expect(intAuthA[28]).toBe(PayloadType.KE);
    expect(v.getUint16(30)).toBe(4 + p.length); // 4 + |P|
    // Apart from the two lengths, A is the datagram's own prefix.
    const prefix = datagrams[0]!.slice(0, 32);
    expect(intAuthA.subarray(0, 24)).toEqual(prefix.subarray(0, 24));
    expect(intAuthA.subarray(28, 30)).toEqual(prefix.subarray(28, 30));
    const d = decodeProtected(datagrams[0]!, mk()) as DecodedMessage;
    expect(d.intAuthA).toEqual(intAuthA);
    expect(d.intAuthP).toEqual(intAuthP);
  });
});

/** Fragments every datagram and checks the size budget. */
function fragment(m: Message, mk: () => SkCipher, fragmentSize: number, ipOverhead: number, marker: boolean) {
  const r = encodeProtected(m, mk(), counterIv(), { fragmentSize, ipOverhead, marker });
  for (const d of r.datagrams) expect(d.length + ipOverhead + 8 + (marker ? 4 : 0)).toBeLessThanOrEqual(fragmentSize);
  return r;
}

describe('RFC 7383 fragmentation', () => {
  it('an ML-KEM-768 IKE_INTERMEDIATE (1249 octets with GCM) fits 1280 over IPv4 without marker, not with it', () => {
    const m = intermediateRequest(1184);
    const plain = encodeProtected(m, gcm256(), counterIv());
    expect(plain.datagrams[0]!.length).toBe(1249); // digest §4.1 arithmetic
    expect(encodeProtected(m, gcm256(), counterIv(), { fragmentSize: 1280, ipOverhead: 20, marker: false }).datagrams).toHaveLength(1);
    expect(fragment(m, gcm256, 1280, 20, true).datagrams).toHaveLength(2);
    expect(fragment(m, gcm256, 1280, 40, false).datagrams).toHaveLength(2);
  });

  it('576-octet fragments carry the 1184-octet ek in 3 fragments (as strongSwan does)', () => {
    expect(fragment(intermediateRequest(1184), gcm256, 576, 20, true).datagrams).toHaveLength(3);
  });

  it.each([
    ['GCM', gcm256, 576, 20, false],
    ['GCM', gcm256, 1280, 40, true],
    ['GCM', gcm256, 300, 20, true],
    ['CBC', cbc256, 576, 20, true],
    ['CBC', cbc256, 1280, 40, false],
    ['CBC', cbc256, 200, 40, true],
  ] as const)('%s at %i octets (IP %i, marker %s): fragments are well formed and reassemble in any order', async (_n, mk, size, ip, marker) => {
    const { Reassembler } = await import('../../firmware/ikev2/codec/index.js');
    const m = intermediateRequest(1184, 3);
    const whole = encodeProtected(m, mk(), counterIv());
    const r = fragment(m, mk, size, ip, marker);
    expect(r.datagrams.length).toBeGreaterThan(1);
    const frags = r.datagrams.map((d) => decodeProtected(d, mk()) as FragmentInfo);
    frags.forEach((f, i) => {
      expect(f.kind).toBe('fragment');
      expect(f.number).toBe(i + 1);
      expect(f.total).toBe(r.datagrams.length);
      expect(f.header.messageId).toBe(3);
      expect(f.firstPayload).toBe(i === 0 ? PayloadType.KE : 0);
      expect(r.datagrams[i]![16]).toBe(PayloadType.SKF);
    });
    for (const order of [frags, [...frags].reverse()]) {
      const ra = new Reassembler();
      const results = order.map((f) => ra.add('q', f));
      expect(results.slice(0, -1).every((x) => x === undefined)).toBe(true);
      const msg = results[results.length - 1]!;
      expect(stripDecoded(msg)).toEqual(m);
      expect(msg.fragments).toBe(frags.length);
      expect(msg.raw).toBeUndefined();
      // RFC 9242: the reassembled IntAuth equals the unfragmented one.
      expect(msg.intAuthA).toEqual(whole.intAuthA);
      expect(msg.intAuthP).toEqual(whole.intAuthP);
      expect(msg.intAuthA).toEqual(r.intAuthA);
      expect(ra.pending).toBe(0);
    }
  });

  it('rejects a fragment size too small to carry anything', () => {
    expect(() => encodeProtected(intermediateRequest(), gcm256(), counterIv(), { fragmentSize: 80, ipOverhead: 20, marker: true })).toThrow(RangeError);
  });

  it('never fragments when no fragmentSize is given', () => {
    const m = { ...authRequest(), payloads: [...authRequest().payloads, { type: 43 as const, data: new Uint8Array(5000) }] };
    expect(encodeProtected(m, gcm256(), counterIv()).datagrams).toHaveLength(1);
  });

  it('uses a fresh IV per fragment', () => {
    const ivs: number[] = [];
    const iv = counterIv(100);
    encodeProtected(intermediateRequest(1184), gcm256(), (n) => {
      const v = iv(n);
      ivs.push(v[n - 1]!);
      return v;
    }, { fragmentSize: 576 });
    expect(new Set(ivs).size).toBe(ivs.length);
    expect(ivs.length).toBe(3);
  });

  it('the exchange type and flags are kept in every fragment', () => {
    const m: Message = { ...intermediateRequest(1184, 9), exchange: ExchangeType.CREATE_CHILD_SA, response: true, initiator: false, payloads: [{ type: 33, proposals: [{ num: 1, protocol: 3, spi: new Uint8Array(4), transforms: [{ type: 1, id: 20, keyLength: 256 }] }] }, { type: 40, data: new Uint8Array(32) }, { type: 34, method: 36, data: new Uint8Array(1088) }] };
    const r = fragment(m, gcm256, 576, 20, false);
    for (const d of r.datagrams) expect(decodeHeaderOnly(d)).toMatchObject({ exchange: ExchangeType.CREATE_CHILD_SA, response: true, initiator: false, messageId: 9 });
  });
});
