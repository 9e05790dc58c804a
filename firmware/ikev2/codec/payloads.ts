/**
 * Payload bodies and payload chains (RFC 7296 §3.2 - §3.16).
 *
 * Generic payload header (§3.2): Next Payload(1) | C(1 bit) + RESERVED(7) |
 * Payload Length(2, header included, >= 4). A chain starts at the type named
 * by the IKE header (or by the SK payload for the inner chain) and ends with
 * Next Payload 0 exactly at the end of its container.
 *
 * Bodies, one per `Payload` variant in types.ts:
 *   SA (§3.3)      see sa.ts
 *   KE (§3.4)      Method(2) | RESERVED(2) | Key Exchange Data
 *   IDi/IDr (§3.5) ID Type(1) | RESERVED(3) | Identification Data
 *   CERT (§3.6)    Cert Encoding(1) | Certificate Data
 *   CERTREQ (§3.7) Cert Encoding(1) | Certification Authority (20-octet SHA-1 hashes)
 *   AUTH (§3.8)    Auth Method(1) | RESERVED(3) | Authentication Data
 *   Nonce (§3.9)   Nonce Data, 16..256 octets
 *   N (§3.10)      Protocol(1) | SPI Size(1) | Type(2) | SPI | Notification Data
 *   D (§3.11)      Protocol(1) | SPI Size(1) | #SPIs(2) | SPIs
 *   V (§3.12)      Vendor ID
 *   TSi/TSr (§3.13) #TSs(1) | RESERVED(3) | TS: Type(1) | IP Proto(1) | Len(2) |
 *                  Start Port(2) | End Port(2) | Start Addr | End Addr
 *                  (type 7 IPv4, length 16; type 8 IPv6, length 40)
 *   CP (§3.15)     CFG Type(1) | RESERVED(3) | attributes R(1)+Type(15) | Len(2) | Value
 *   EAP (§3.16)    an EAP message (RFC 3748 §4: Code | Id | Length(2) | ...)
 * Other types are kept opaque as UnknownPayload with their critical bit (§2.5).
 * RESERVED fields are sent as zero and ignored on receipt (§3.2).
 */
import { Reader, Writer } from '../../util/bytes.js';
import { ParseError } from '../../util/errors.js';
import { CertEncoding, IdType, PayloadType, ProtocolId, TsType } from '../constants.js';
import { CRITICAL_BIT, GENERIC_HEADER_LEN } from './header.js';
import { decodeSaBody, encodeSaBody, u16ok, u8ok } from './sa.js';
import type {
  AuthPayload,
  CertPayload,
  CertReqPayload,
  CpAttribute,
  CpPayload,
  DeletePayload,
  EapPayload,
  IdPayload,
  KePayload,
  NoncePayload,
  NotifyPayload,
  Payload,
  SaPayload,
  TrafficSelector,
  TsPayload,
  UnknownPayload,
  VendorPayload,
} from './types.js';

export const NONCE_MIN = 16; // §3.9
export const NONCE_MAX = 256;
const SHA1_LEN = 20; // §3.7
const TS_LEN: Record<number, number> = { [TsType.IPV4_ADDR_RANGE]: 16, [TsType.IPV6_ADDR_RANGE]: 40 };
const ADDR_LEN: Record<number, number> = { [TsType.IPV4_ADDR_RANGE]: 4, [TsType.IPV6_ADDR_RANGE]: 16 };

/** Payload types with a body model in types.ts (SK/SKF are handled by message.ts). */
export const MODELED_PAYLOADS: ReadonlySet<number> = new Set([
  PayloadType.SA,
  PayloadType.KE,
  PayloadType.IDi,
  PayloadType.IDr,
  PayloadType.CERT,
  PayloadType.CERTREQ,
  PayloadType.AUTH,
  PayloadType.NONCE,
  PayloadType.NOTIFY,
  PayloadType.DELETE,
  PayloadType.VENDOR,
  PayloadType.TSi,
  PayloadType.TSr,
  PayloadType.CP,
  PayloadType.EAP,
]);

export function isUnknownPayload(p: Payload): p is UnknownPayload {
  return (p as UnknownPayload).unknown === true;
}

// ------------------------------------------------------------------ bodies: decode

/** Decodes one body; `r` spans exactly the body, which must be consumed completely. */
export function decodePayloadBody(type: number, critical: boolean, r: Reader): Payload {
  const p = decodeBody(type, r);
  // The critical bit (§2.5) is almost never set: added afterwards, so each
  // payload type keeps one object shape on the hot path (a `...spread` of an
  // optional `{ critical }` object per payload was a generic property copy).
  if (critical) p.critical = true;
  return p;
}

function decodeBody(type: number, r: Reader): Payload {
  switch (type) {
    case PayloadType.SA:
      return { type, proposals: decodeSaBody(r).proposals } as SaPayload;
    case PayloadType.KE: {
      const method = r.u16('KE method');
      r.skip(2, 'KE reserved');
      return { type, method, data: r.rest() } as KePayload;
    }
    case PayloadType.IDi:
    case PayloadType.IDr: {
      const idType = r.u8('ID type');
      r.skip(3, 'ID reserved');
      const data = r.rest();
      if (idType === IdType.IPV4_ADDR && data.length !== 4) r.fail(`ID_IPV4_ADDR with ${data.length} octets`);
      if (idType === IdType.IPV6_ADDR && data.length !== 16) r.fail(`ID_IPV6_ADDR with ${data.length} octets`);
      return { type, idType, data } as IdPayload;
    }
    case PayloadType.CERT:
      return { type, encoding: r.u8('cert encoding'), data: r.rest() } as CertPayload;
    case PayloadType.CERTREQ: {
      const encoding = r.u8('certreq encoding');
      const data = r.rest();
      if (encoding === CertEncoding.X509_SIGNATURE && data.length % SHA1_LEN !== 0) r.fail(`CERTREQ CA list of ${data.length} octets is not a multiple of ${SHA1_LEN}`);
      return { type, encoding, data } as CertReqPayload;
    }
    case PayloadType.AUTH: {
      const method = r.u8('auth method');
      r.skip(3, 'AUTH reserved');
      return { type, method, data: r.rest() } as AuthPayload;
    }
    case PayloadType.NONCE: {
      if (r.remaining < NONCE_MIN || r.remaining > NONCE_MAX) r.fail(`nonce of ${r.remaining} octets outside ${NONCE_MIN}..${NONCE_MAX}`);
      return { type, data: r.rest() } as NoncePayload;
    }
    case PayloadType.NOTIFY:
      return decodeNotify(type, r);
    case PayloadType.DELETE:
      return decodeDelete(type, r);
    case PayloadType.VENDOR:
      return { type, data: r.rest() } as VendorPayload;
    case PayloadType.TSi:
    case PayloadType.TSr:
      return { type, selectors: decodeTs(r) } as TsPayload;
    case PayloadType.CP: {
      const cfgType = r.u8('CFG type');
      r.skip(3, 'CP reserved');
      const attributes: CpAttribute[] = [];
      while (r.remaining > 0) {
        const atype = r.u16('CP attribute type') & 0x7fff; // R bit ignored (§3.15.1)
        const len = r.u16('CP attribute length');
        attributes.push({ type: atype, value: r.bytes(len, 'CP attribute value') });
      }
      return { type, cfgType, attributes } as CpPayload;
    }
    case PayloadType.EAP: {
      const data = r.rest();
      // RFC 3748 §4: Code(1) Identifier(1) Length(2); Length covers the whole EAP packet.
      if (data.length < 4) throw new ParseError(`EAP message of ${data.length} octets`, r.base + r.pos - data.length, r.payloadType);
      const eapLen = (data[2]! << 8) | data[3]!;
      if (eapLen !== data.length) throw new ParseError(`EAP length ${eapLen} != payload data ${data.length}`, r.base + r.pos - data.length + 2, r.payloadType);
      return { type, data } as EapPayload;
    }
    default:
      return { type, unknown: true, data: r.rest() } as UnknownPayload;
  }
}

function decodeNotify(type: number, r: Reader): NotifyPayload {
  const protocol = r.u8('notify protocol');
  const spiSize = r.u8('notify spi size');
  const notifyType = r.u16('notify type');
  // §3.10: SPI size is that of the protocol (IKE 8, AH/ESP 4) or 0 when no SPI applies.
  if (spiSize !== 0 && spiSize !== 4 && spiSize !== 8) r.fail(`notify SPI size ${spiSize}`);
  if ((protocol === ProtocolId.AH || protocol === ProtocolId.ESP) && spiSize === 8) r.fail(`notify SPI size 8 for protocol ${protocol}`);
  const spi = r.bytes(spiSize, 'notify spi');
  return { type, protocol, spi, notifyType, data: r.rest() } as NotifyPayload;
}

function decodeDelete(type: number, r: Reader): DeletePayload {
  const protocol = r.u8('delete protocol');
  const spiSize = r.u8('delete spi size');
  const n = r.u16('delete #spis');
  // §3.11: the IKE SA is deleted with protocol 1, SPI size 0 and no SPIs; AH/ESP SPIs are 4 octets.
  if (protocol === ProtocolId.IKE) {
    if (spiSize !== 0 || n !== 0) r.fail(`IKE delete with SPI size ${spiSize} and ${n} SPIs`);
  } else if (protocol === ProtocolId.AH || protocol === ProtocolId.ESP) {
    if (spiSize !== 4) r.fail(`delete SPI size ${spiSize} for protocol ${protocol}`);
    if (n === 0) r.fail('AH/ESP delete without SPIs');
  } else r.fail(`delete for unknown protocol ${protocol}`);
  if (r.remaining !== n * spiSize) r.fail(`delete announces ${n} SPIs of ${spiSize} octets but carries ${r.remaining} octets`);
  const spis: Uint8Array[] = [];
  for (let i = 0; i < n; i++) spis.push(r.bytes(spiSize, 'delete spi'));
  return { type, protocol, spiSize, spis } as DeletePayload;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function decodeTs(r: Reader): TrafficSelector[] {
  const n = r.u8('#TSs');
  r.skip(3, 'TS reserved');
  if (n === 0) r.fail('TS payload with zero selectors');
  const out: TrafficSelector[] = [];
  while (r.remaining > 0) {
    const start = r.pos;
    const tsType = r.u8('TS type');
    const ipProtocol = r.u8('TS ip protocol');
    const len = r.u16('selector length');
    const want = TS_LEN[tsType];
    if (want === undefined) throw new ParseError(`unsupported TS type ${tsType}`, r.base + start, r.payloadType);
    if (len !== want) throw new ParseError(`TS type ${tsType} with selector length ${len}, want ${want}`, r.base + start + 2, r.payloadType);
    const sel = r.sub(len - 4, 'traffic selector');
    const startPort = sel.u16('start port');
    const endPort = sel.u16('end port');
    const al = ADDR_LEN[tsType]!;
    const startAddr = sel.bytes(al, 'start address');
    const endAddr = sel.bytes(al, 'end address');
    // §3.13.1: start <= end, except the OPAQUE port encoding (start 65535, end 0).
    const opaque = startPort === 0xffff && endPort === 0;
    if (startPort > endPort && !opaque) throw new ParseError(`TS start port ${startPort} > end port ${endPort}`, r.base + start + 4, r.payloadType);
    if (compareBytes(startAddr, endAddr) > 0) throw new ParseError('TS start address > end address', r.base + start + 8, r.payloadType);
    out.push({ tsType, ipProtocol, startPort, endPort, startAddr, endAddr });
  }
  if (out.length !== n) r.fail(`#TSs ${n} but ${out.length} selectors present`);
  return out;
}

// ------------------------------------------------------------------ bodies: encode

export function encodePayloadBody(w: Writer, p: Payload): void {
  if (isUnknownPayload(p)) {
    w.bytes(p.data);
    return;
  }
  switch (p.type) {
    case PayloadType.SA:
      return encodeSaBody(w, p as SaPayload);
    case PayloadType.KE: {
      const k = p as KePayload;
      w.u16(u16ok('KE method', k.method)).u16(0).bytes(k.data);
      return;
    }
    case PayloadType.IDi:
    case PayloadType.IDr: {
      const k = p as IdPayload;
      w.u8(u8ok('ID type', k.idType)).zeros(3).bytes(k.data);
      return;
    }
    case PayloadType.CERT:
    case PayloadType.CERTREQ: {
      const k = p as CertPayload | CertReqPayload;
      w.u8(u8ok('cert encoding', k.encoding)).bytes(k.data);
      return;
    }
    case PayloadType.AUTH: {
      const k = p as AuthPayload;
      w.u8(u8ok('auth method', k.method)).zeros(3).bytes(k.data);
      return;
    }
    case PayloadType.NONCE:
    case PayloadType.VENDOR:
    case PayloadType.EAP:
      w.bytes((p as NoncePayload | VendorPayload | EapPayload).data);
      return;
    case PayloadType.NOTIFY: {
      const k = p as NotifyPayload;
      w.u8(u8ok('notify protocol', k.protocol)).u8(u8ok('notify spi size', k.spi.length)).u16(u16ok('notify type', k.notifyType)).bytes(k.spi).bytes(k.data);
      return;
    }
    case PayloadType.DELETE: {
      const k = p as DeletePayload;
      w.u8(u8ok('delete protocol', k.protocol)).u8(u8ok('delete spi size', k.spiSize)).u16(u16ok('delete #spis', k.spis.length));
      for (const s of k.spis) {
        if (s.length !== k.spiSize) throw new RangeError(`delete SPI of ${s.length} octets, spiSize ${k.spiSize}`);
        w.bytes(s);
      }
      return;
    }
    case PayloadType.TSi:
    case PayloadType.TSr: {
      const k = p as TsPayload;
      w.u8(u8ok('#TSs', k.selectors.length)).zeros(3);
      for (const s of k.selectors) {
        const al = ADDR_LEN[s.tsType];
        if (al === undefined) throw new RangeError(`unsupported TS type ${s.tsType}`);
        if (s.startAddr.length !== al || s.endAddr.length !== al) throw new RangeError(`TS type ${s.tsType} needs ${al}-octet addresses`);
        w.u8(s.tsType).u8(u8ok('TS ip protocol', s.ipProtocol)).u16(TS_LEN[s.tsType]!);
        w.u16(u16ok('start port', s.startPort)).u16(u16ok('end port', s.endPort)).bytes(s.startAddr).bytes(s.endAddr);
      }
      return;
    }
    case PayloadType.CP: {
      const k = p as CpPayload;
      w.u8(u8ok('CFG type', k.cfgType)).zeros(3);
      for (const a of k.attributes) {
        if ((a.type & 0x7fff) !== a.type) throw new RangeError(`CP attribute type ${a.type} exceeds 15 bits`);
        w.u16(a.type).u16(u16ok('CP attribute length', a.value.length)).bytes(a.value);
      }
      return;
    }
    default:
      throw new TypeError(`payload type ${(p as Payload).type} has no body encoder; use an UnknownPayload`);
  }
}

// ------------------------------------------------------------------ chains

/** Writes a payload chain; the last payload's Next Payload is `lastNext` (0 unless the caller appends). */
export function encodeChain(w: Writer, payloads: readonly Payload[], lastNext = 0): void {
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    const start = w.len;
    const next = i + 1 < payloads.length ? payloads[i + 1]!.type : lastNext;
    w.u8(u8ok('payload type', next)).u8(p.critical ? CRITICAL_BIT : 0).u16(0);
    encodePayloadBody(w, p);
    const len = w.len - start;
    if (len > 0xffff) u16ok(`payload ${p.type} length`, len); // throws; the message is built only on failure
    w.setU16(start + 2, len);
  }
}

/**
 * One Writer reused by every encode (the engine is single-threaded and no
 * encoder calls another one while it writes): a message is written without
 * growing a fresh buffer two or three times, then copied out once. One that
 * grew past 64 KiB (a large certificate chain) is not kept.
 */
let scratch = new Writer(4096);
export function scratchWriter(): Writer {
  if (scratch.capacity > 65536) scratch = new Writer(4096);
  return scratch.reset();
}

/** Encodes a chain of payloads into fresh bytes (e.g. the SK plaintext). */
export function encodePayloads(payloads: readonly Payload[]): Uint8Array {
  const w = scratchWriter();
  encodeChain(w, payloads);
  return w.finish();
}

/** Where an SK / SKF payload was found while walking a chain. */
export interface EncryptedPayloadRef {
  type: number; // 46 or 53
  /** Offset of its generic header in the buffer. */
  start: number;
  /** Its Next Payload field: the type of the first inner payload. */
  nextPayload: number;
  /** Its second header octet (C bit + RESERVED); RFC 9242 copies it into IntAuth_A. */
  flags: number;
  length: number;
  /** Offset of the Next Payload octet that named it (16 = the IKE header). */
  pointerOffset: number;
}

export interface ChainResult {
  payloads: Payload[];
  encrypted?: EncryptedPayloadRef;
}

/**
 * Walks a payload chain in buf[start, end). `base` is added to offsets in
 * errors. With `allowEncrypted`, an SK/SKF payload ends the walk and must
 * reach exactly to `end` (§3.14: it is the last payload of the message).
 */
export function decodeChain(buf: Uint8Array, start: number, end: number, first: number, base: number, allowEncrypted: boolean, pointerOffset = -1): ChainResult {
  const r = new Reader(buf, start, end, base);
  const payloads: Payload[] = [];
  let next = first;
  let pointer = pointerOffset;
  while (next !== PayloadType.NONE) {
    const type = next;
    const pStart = r.pos;
    r.payloadType = type;
    if (r.remaining === 0) r.fail(`chain names payload ${type} but the container ends`);
    next = r.u8('next payload');
    const flags = r.u8('payload flags');
    const len = r.u16('payload length');
    if (len < GENERIC_HEADER_LEN) throw new ParseError(`payload length ${len} < 4`, base + pStart + 2, type);
    if (type === PayloadType.SK || type === PayloadType.SKF) {
      if (!allowEncrypted) throw new ParseError(`encrypted payload ${type} where none is allowed`, base + pStart, type);
      if (pStart + len > end) throw new ParseError(`payload length ${len} exceeds the ${end - pStart} octets left`, base + pStart + 2, type);
      if (pStart + len !== end) throw new ParseError(`encrypted payload ${type} is not the last payload (${end - pStart - len} octets follow)`, base + pStart + len, type);
      return { payloads, encrypted: { type, start: pStart, nextPayload: next, flags, length: len, pointerOffset: pointer } };
    }
    const body = r.sub(len - GENERIC_HEADER_LEN, 'payload body', type);
    payloads.push(decodePayloadBody(type, (flags & CRITICAL_BIT) !== 0, body));
    pointer = pStart;
  }
  r.payloadType = undefined;
  if (r.remaining !== 0) r.fail(`${r.remaining} octets after the last payload`);
  return { payloads };
}
