/**
 * Malformed input, one row per defect: each must raise exactly the expected
 * typed error (never a TypeError/RangeError or a crash).
 */
import { describe, it, expect } from 'vitest';
import {
  decodePlain,
  decodeProtected,
  encodeHeader,
  encodePlain,
  encodeProtected,
  FragmentLimitError,
  InvalidMajorVersionError,
  MessageRuleError,
  Reassembler,
  UnsupportedCriticalPayloadError,
  type FragmentInfo,
} from '../../firmware/ikev2/codec/index.js';
import type { Message, Payload } from '../../firmware/ikev2/codec/types.js';
import type { SkCipher } from '../../firmware/crypto/types.js';
import { ExchangeType, Notify, PayloadType } from '../../firmware/ikev2/constants.js';
import { AuthTagError, ParseError } from '../../firmware/util/errors.js';
import { concat } from '../../firmware/util/bytes.js';
import { cbc256, counterIv, gcm256 } from './fake-cipher.js';
import { craft, innerOf, pad } from './craft.js';
import { authRequest, emptyInformational, initRequest, notify, payloadOffset, SPI_I, SPI_R, tsV4 } from './fixtures.js';

type ErrClass = abstract new (...args: never[]) => Error;
interface Case {
  name: string;
  run: () => unknown;
  err: ErrClass;
  check?: (e: Error) => void;
}

const raw = (type: number, bytes: number[]): Payload => ({ type, unknown: true, data: Uint8Array.from(bytes) });

/** A plain IKE_SA_INIT-shaped message with `payloads`, then `patch` applied to its octets. */
function plain(payloads: Payload[], patch?: (b: Uint8Array, at: (i: number) => number) => void, exchange: number = ExchangeType.IKE_SA_INIT): Uint8Array {
  const b = encodePlain({ spiI: SPI_I, spiR: SPI_R, exchange, response: false, initiator: true, messageId: 0, encrypted: false, payloads });
  patch?.(b, (i) => payloadOffset(b, i));
  return b;
}
const init = (patch?: (b: Uint8Array, at: (i: number) => number) => void): Uint8Array => plain(initRequest().payloads, patch);
const dp = (b: Uint8Array) => () => decodePlain(b, { rules: false });
const dpr = (b: Uint8Array) => () => decodePlain(b);
const setU16 = (b: Uint8Array, off: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint16(off, v);
const getU16 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint16(off);
const setU32 = (b: Uint8Array, off: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(off, v);

// SA of initRequest() at payload 0: generic header 28, proposal 1 at 32, its first transform at 40.
const P1 = 32;
const p2 = (b: Uint8Array) => P1 + getU16(b, P1 + 2);

const gcmAuth = () => encodeProtected(authRequest(), gcm256(), counterIv()).datagrams[0]!;
const cbcAuth = () => encodeProtected(authRequest(), cbc256(), counterIv()).datagrams[0]!;
const withLen = (b: Uint8Array): Uint8Array => {
  setU32(b, 24, b.length);
  return b;
};
const skf = (number: number, total: number, c: SkCipher = gcm256()) => craft({ exchange: ExchangeType.IKE_INTERMEDIATE, plain: pad(innerOf([notify(Notify.COOKIE, new Uint8Array(8))]), c.blockSize), skNext: PayloadType.NOTIFY, frag: { number, total } }, c);

const cases: Case[] = [
  // ---- IKE header (RFC 7296 §3.1)
  { name: 'empty datagram', run: dp(new Uint8Array(0)), err: ParseError },
  { name: 'truncated header (27 octets)', run: dp(init().subarray(0, 27)), err: ParseError },
  { name: 'header length larger than datagram', run: dp(init((b) => setU32(b, 24, b.length + 1))), err: ParseError },
  { name: 'trailing octets beyond header length', run: dp(concat(init(), new Uint8Array(2))), err: ParseError },
  { name: 'major version 1 (IKEv1)', run: dp(init((b) => (b[17] = 0x10))), err: InvalidMajorVersionError, check: (e) => expect((e as InvalidMajorVersionError).majorVersion).toBe(1) },
  { name: 'major version 3', run: dp(init((b) => (b[17] = 0x30))), err: InvalidMajorVersionError },
  { name: 'zero initiator SPI', run: dp(init((b) => b.fill(0, 0, 8))), err: ParseError },
  // ---- generic payload header (§3.2)
  { name: 'payload length 0', run: dp(init((b) => setU16(b, 30, 0))), err: ParseError, check: (e) => expect((e as ParseError).payloadType).toBe(33) },
  { name: 'payload length 3', run: dp(init((b) => setU16(b, 30, 3))), err: ParseError },
  { name: 'last payload length runs past the end', run: dp(init((b, at) => setU16(b, at(5) + 2, getU16(b, at(5) + 2) + 1))), err: ParseError },
  { name: 'last payload names a next payload that is not there', run: dp(init((b, at) => (b[at(5)] = PayloadType.NONCE))), err: ParseError },
  { name: 'header says no payloads but octets follow', run: dp(init((b) => (b[16] = 0))), err: ParseError },
  { name: 'SK payload inside a plain IKE_SA_INIT', run: dp(init((b) => (b[16] = PayloadType.SK))), err: ParseError },
  { name: 'SKF payload inside a plain message', run: dp(init((b) => (b[16] = PayloadType.SKF))), err: ParseError },
  // ---- SA / proposal / transform / attribute (§3.3)
  { name: 'SA payload without proposals', run: dp(plain([raw(33, [])])), err: ParseError },
  { name: 'proposal last-substruc 1', run: dp(init((b) => (b[P1] = 1))), err: ParseError },
  { name: 'first of two proposals marked last', run: dp(init((b) => (b[P1] = 0))), err: ParseError },
  { name: 'last proposal marked "more"', run: dp(init((b) => (b[p2(b)] = 2))), err: ParseError },
  { name: 'proposal length < 8', run: dp(init((b) => setU16(b, P1 + 2, 4))), err: ParseError },
  { name: 'proposal length beyond the SA payload', run: dp(init((b) => setU16(b, p2(b) + 2, getU16(b, p2(b) + 2) + 4))), err: ParseError },
  { name: '#transforms one more than present', run: dp(init((b) => b[P1 + 7]!++)), err: ParseError },
  { name: '#transforms one less than present', run: dp(init((b) => b[P1 + 7]!--)), err: ParseError },
  { name: 'transform last-substruc 2 (proposal value)', run: dp(init((b) => (b[P1 + 8] = 2))), err: ParseError },
  { name: 'transform length < 8', run: dp(init((b) => setU16(b, P1 + 10, 4))), err: ParseError },
  { name: 'proposal number 0', run: dp(init((b) => (b[P1 + 4] = 0))), err: ParseError },
  { name: 'second proposal numbered 3', run: dp(init((b) => (b[p2(b) + 4] = 3))), err: ParseError },
  { name: 'SPI size 4 for an IKE proposal', run: dp(init((b) => (b[P1 + 6] = 4))), err: ParseError },
  { name: 'unknown protocol id 9', run: dp(init((b) => (b[P1 + 5] = 9))), err: ParseError },
  { name: 'Key Length attribute in TLV form', run: dp(init((b) => (b[P1 + 16] = 0x00))), err: ParseError },
  {
    name: 'TLV attribute length beyond its transform',
    run: dp(plain([{ type: 33, proposals: [{ num: 1, protocol: 1, spi: new Uint8Array(0), transforms: [{ type: 1, id: 12, otherAttributes: [{ type: 18, value: Uint8Array.from([1, 2, 3]) }] }] }] }], (b) => setU16(b, 50, 50))),
    err: ParseError,
  },
  // ---- other bodies
  { name: 'nonce of 15 octets', run: dp(plain([{ type: 40, data: new Uint8Array(15) }])), err: ParseError, check: (e) => expect((e as ParseError).payloadType).toBe(40) },
  { name: 'nonce of 257 octets', run: dp(plain([{ type: 40, data: new Uint8Array(257) }])), err: ParseError },
  { name: 'KE body of 2 octets', run: dp(plain([raw(34, [0, 31])])), err: ParseError },
  { name: 'ID_IPV4_ADDR with 5 octets', run: dp(plain([{ type: 35, idType: 1, data: new Uint8Array(5) }])), err: ParseError },
  { name: 'CERTREQ X.509 list of 21 octets', run: dp(plain([{ type: 38, encoding: 4, data: new Uint8Array(21) }])), err: ParseError },
  { name: 'notify SPI size 3', run: dp(plain([raw(41, [3, 3, 0x40, 0x00, 1, 2, 3])])), err: ParseError },
  { name: 'notify SPI size beyond the payload', run: dp(plain([raw(41, [3, 4, 0x40, 0x09, 1, 2])])), err: ParseError },
  { name: 'delete announces 3 SPIs, carries 2', run: dp(plain([raw(42, [3, 4, 0, 3, 1, 1, 1, 1, 2, 2, 2, 2])])), err: ParseError },
  { name: 'IKE delete with SPI size 8', run: dp(plain([raw(42, [1, 8, 0, 0])])), err: ParseError },
  { name: 'TS IPv4 selector length 15', run: dp(plain([tsV4(44)], (b) => setU16(b, 28 + 8 + 2, 15))), err: ParseError, check: (e) => expect((e as ParseError).payloadType).toBe(44) },
  { name: 'TS IPv6 selector length 16', run: dp(plain([tsV4(44)], (b) => setU16(b, 28 + 8 + 16 + 2, 16))), err: ParseError },
  { name: 'TS unknown type 9', run: dp(plain([tsV4(44)], (b) => (b[28 + 8] = 9))), err: ParseError },
  { name: '#TSs 4 but 3 selectors', run: dp(plain([tsV4(44)], (b) => (b[32] = 4))), err: ParseError },
  { name: '#TSs 0', run: dp(plain([raw(44, [0, 0, 0, 0])])), err: ParseError },
  {
    name: 'TS start port > end port',
    run: dp(plain([{ type: 44, selectors: [{ tsType: 7, ipProtocol: 6, startPort: 80, endPort: 79, startAddr: new Uint8Array(4), endAddr: new Uint8Array(4) }] }])),
    err: ParseError,
  },
  {
    name: 'TS start address > end address',
    run: dp(plain([{ type: 45, selectors: [{ tsType: 7, ipProtocol: 0, startPort: 0, endPort: 65535, startAddr: Uint8Array.from([10, 0, 0, 2]), endAddr: Uint8Array.from([10, 0, 0, 1]) }] }])),
    err: ParseError,
  },
  { name: 'CP attribute length beyond the payload', run: dp(plain([raw(47, [1, 0, 0, 0, 0, 1, 0, 9, 1, 2])])), err: ParseError },
  { name: 'EAP length field disagrees with the payload', run: dp(plain([{ type: 48, data: Uint8Array.from([1, 7, 0, 9, 1, 0x41]) }])), err: ParseError },
  // ---- rules (rules.ts)
  { name: 'IKE_SA_INIT request without nonce', run: dpr(plain(initRequest().payloads.filter((p) => p.type !== 40))), err: MessageRuleError, check: (e) => expect((e as MessageRuleError).payloadType).toBe(40) },
  {
    name: 'unknown critical payload in IKE_SA_INIT',
    run: dpr(plain([...initRequest().payloads, { type: 99, critical: true, unknown: true, data: new Uint8Array(3) }])),
    err: UnsupportedCriticalPayloadError,
    check: (e) => expect((e as UnsupportedCriticalPayloadError).payloadType).toBe(99),
  },
  { name: 'IKE_AUTH sent in the clear', run: dpr(plain(authRequest().payloads, undefined, ExchangeType.IKE_AUTH)), err: MessageRuleError, check: (e) => expect((e as MessageRuleError).violation).toBe('must-be-encrypted') },
  // ---- SK (§3.14)
  { name: 'ICV flipped (GCM)', run: () => decodeProtected(((b) => (b[b.length - 1]! ^= 1, b))(gcmAuth()), gcm256()), err: AuthTagError },
  { name: 'ICV flipped (CBC+HMAC)', run: () => decodeProtected(((b) => (b[b.length - 1]! ^= 0x80, b))(cbcAuth()), cbc256()), err: AuthTagError },
  { name: 'ciphertext bit flipped (GCM)', run: () => decodeProtected(((b) => (b[60]! ^= 4, b))(gcmAuth()), gcm256()), err: AuthTagError },
  { name: 'header bit flipped (authenticated as AAD)', run: () => decodeProtected(((b) => (b[23]! ^= 1, b))(gcmAuth()), gcm256()), err: AuthTagError },
  {
    name: 'CBC ciphertext not a multiple of the block size',
    run: () => {
      const b = cbcAuth();
      const cut = concat(b.subarray(0, 48), b.subarray(49));
      setU16(cut, 30, getU16(cut, 30) - 1);
      return decodeProtected(withLen(cut), cbc256());
    },
    err: ParseError,
  },
  {
    name: 'SK body shorter than IV + ICV',
    run: () => {
      const b = new Uint8Array(28 + 4 + 10);
      b.set(encodeHeader({ spiI: SPI_I, spiR: SPI_R, nextPayload: 46, exchange: 37, response: false, initiator: true, messageId: 1, length: b.length }));
      setU16(b, 30, 14);
      return decodeProtected(b, gcm256());
    },
    err: ParseError,
  },
  { name: 'SK is not the last payload', run: () => decodeProtected(withLen(concat(gcmAuth(), Uint8Array.from([0, 0, 0, 4]))), gcm256()), err: ParseError, check: (e) => expect((e as ParseError).payloadType).toBe(46) },
  { name: 'SK length runs past the datagram', run: () => decodeProtected(((b) => (setU16(b, 30, getU16(b, 30) + 1), b))(gcmAuth()), gcm256()), err: ParseError },
  { name: 'pad length larger than the plaintext', run: () => decodeProtected(craft({ exchange: 37, plain: pad(new Uint8Array(0), 1, 200), skNext: 0 }, gcm256()), gcm256()), err: ParseError },
  { name: 'pad length larger than the plaintext (CBC)', run: () => decodeProtected(craft({ exchange: 37, plain: pad(innerOf([notify(16384)]), 16, 40), skNext: 41 }, cbc256()), cbc256()), err: ParseError },
  {
    name: 'inner payload length 2',
    run: () => {
      const inner = innerOf([notify(16384), notify(16385)]);
      setU16(inner, 2, 2);
      return decodeProtected(craft({ exchange: 37, plain: pad(inner, 1), skNext: 41 }, gcm256()), gcm256());
    },
    err: ParseError,
  },
  {
    name: 'inner chain names a payload after the last one',
    run: () => {
      const inner = innerOf([notify(16384)]);
      inner[0] = PayloadType.NOTIFY;
      return decodeProtected(craft({ exchange: 37, plain: pad(inner, 1), skNext: 41 }, gcm256()), gcm256());
    },
    err: ParseError,
  },
  { name: 'SK nested inside SK', run: () => decodeProtected(craft({ exchange: 37, plain: pad(Uint8Array.from([0, 0, 0, 4]), 1), skNext: 46 }, gcm256()), gcm256()), err: ParseError },
  { name: 'protected exchange without SK', run: () => decodeProtected(plain([notify(Notify.INVALID_SYNTAX)], undefined, ExchangeType.INFORMATIONAL), gcm256()), err: ParseError },
  { name: 'IKE_SA_INIT carrying SK', run: () => decodeProtected(craft({ exchange: 34, plain: pad(new Uint8Array(0), 1), skNext: 0 }, gcm256()), gcm256()), err: MessageRuleError, check: (e) => expect((e as MessageRuleError).violation).toBe('must-not-be-encrypted') },
  { name: 'unknown exchange type 99', run: () => decodeProtected(craft({ exchange: 99, plain: pad(new Uint8Array(0), 1), skNext: 0 }, gcm256()), gcm256()), err: MessageRuleError, check: (e) => expect((e as MessageRuleError).violation).toBe('unknown-exchange') },
  {
    name: 'unprotected Notify before SK',
    run: () => decodeProtected(craft({ exchange: 37, unprotected: [notify(16384)], plain: pad(new Uint8Array(0), 1), skNext: 0 }, gcm256()), gcm256()),
    err: MessageRuleError,
    check: (e) => expect((e as MessageRuleError).violation).toBe('not-encrypted'),
  },
  {
    name: 'unknown critical payload inside SK',
    run: () => decodeProtected(craft({ exchange: 37, plain: pad(innerOf([notify(16384), { type: 77, critical: true, unknown: true, data: new Uint8Array(1) }]), 1), skNext: 41 }, gcm256()), gcm256()),
    err: UnsupportedCriticalPayloadError,
    check: (e) => expect((e as UnsupportedCriticalPayloadError).payloadType).toBe(77),
  },
  { name: 'IKE_INTERMEDIATE with two KE payloads', run: () => decodeProtected(craft({ exchange: 43, plain: pad(innerOf([{ type: 34, method: 36, data: new Uint8Array(4) }, { type: 34, method: 36, data: new Uint8Array(4) }]), 1), skNext: 34 }, gcm256()), gcm256()), err: MessageRuleError, check: (e) => expect((e as MessageRuleError).violation).toBe('too-many') },
  // ---- SKF (RFC 7383 §2.5)
  { name: 'SKF Fragment Number 0', run: () => decodeProtected(skf(0, 2), gcm256()), err: ParseError, check: (e) => expect((e as ParseError).payloadType).toBe(53) },
  { name: 'SKF Fragment Number > Total', run: () => decodeProtected(skf(3, 2), gcm256()), err: ParseError },
  { name: 'SKF Total Fragments 0', run: () => decodeProtected(skf(0, 0), gcm256()), err: ParseError },
  {
    name: 'SKF payload shorter than its 8-octet header',
    run: () => {
      const b = new Uint8Array(28 + 6);
      b.set(encodeHeader({ spiI: SPI_I, spiR: SPI_R, nextPayload: 53, exchange: 43, response: false, initiator: true, messageId: 1, length: b.length }));
      setU16(b, 30, 6);
      return decodeProtected(b, gcm256());
    },
    err: ParseError,
  },
  { name: 'Total Fragments 65 > default limit 64', run: () => new Reassembler().add('', decodeProtected(skf(1, 65), gcm256()) as FragmentInfo), err: FragmentLimitError },
  { name: 'SKF with ICV flipped (CBC)', run: () => decodeProtected(((b) => (b[b.length - 2]! ^= 1, b))(skf(1, 2, cbc256())), cbc256()), err: AuthTagError },
];

describe('malformed input table', () => {
  it('has at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    let thrown: unknown;
    try {
      c.run();
    } catch (e) {
      thrown = e;
    }
    expect(thrown, 'no error thrown').toBeDefined();
    expect(thrown).toBeInstanceOf(c.err);
    if (thrown instanceof ParseError) {
      expect(thrown.code).toBe('ERR_PARSE');
      expect(thrown.offset).toBeGreaterThanOrEqual(0);
    }
    c.check?.(thrown as Error);
  });

  it('sanity: the unmodified bases decode', () => {
    expect(() => decodePlain(init())).not.toThrow();
    expect(() => decodeProtected(gcmAuth(), gcm256())).not.toThrow();
    expect(() => decodeProtected(cbcAuth(), cbc256())).not.toThrow();
    expect((decodeProtected(skf(1, 2), gcm256()) as FragmentInfo).number).toBe(1);
    const m: Message = emptyInformational();
    expect(() => decodeProtected(craft({ exchange: m.exchange, plain: pad(new Uint8Array(0), 1), skNext: 0 }, gcm256()), gcm256())).not.toThrow();
    expect(() => decodeProtected(craft({ exchange: 37, plain: pad(innerOf([notify(16384)]), 16), skNext: 41 }, cbc256()), cbc256())).not.toThrow();
  });
});
