/**
 * IKE header (RFC 7296 §3.1) and generic payload header (§3.2).
 *
 *   0..7   IKE SA Initiator's SPI      (MUST NOT be zero)
 *   8..15  IKE SA Responder's SPI
 *   16     Next Payload
 *   17     MjVer(4) | MnVer(4)         (2.0; a foreign major version is
 *                                       reported, not parsed: §2.5)
 *   18     Exchange Type
 *   19     Flags  X X R V I X X X      (R 0x20, V 0x10, I 0x08; X ignored)
 *   20..23 Message ID
 *   24..27 Length                       (whole message; must equal the datagram)
 */
import { ParseError } from '../../util/errors.js';
import { HeaderFlag, IKE_HEADER_LEN } from '../constants.js';
import { InvalidMajorVersionError } from './errors.js';
import type { IkeHeader } from './types.js';

export const IKE_MAJOR_VERSION = 2;
export const IKE_MINOR_VERSION = 0;
export const GENERIC_HEADER_LEN = 4;
/** Critical bit in the second octet of the generic payload header (§3.2). */
export const CRITICAL_BIT = 0x80;

export interface HeaderFields {
  spiI: Uint8Array;
  spiR: Uint8Array;
  nextPayload: number;
  exchange: number;
  response: boolean;
  initiator: boolean;
  messageId: number;
  length: number;
}

const LIMIT = { 8: 0x100, 16: 0x10000, 32: 0x100000000 } as const;

function checkU(name: string, v: number, bits: 8 | 16 | 32): void {
  if (!Number.isInteger(v) || v < 0 || v >= LIMIT[bits]) throw new RangeError(`${name}: ${v} does not fit in ${bits} bits`);
}

/** Writes the 28-octet header; MjVer 2, MnVer 0, V flag never set (we speak only 2.0). */
export function encodeHeader(h: HeaderFields): Uint8Array {
  const out = new Uint8Array(IKE_HEADER_LEN);
  writeHeader(out, h.spiI, h.spiR, h.nextPayload, h.exchange, h.response, h.initiator, h.messageId, h.length);
  return out;
}

/** encodeHeader() into the first 28 octets of `out` (the message buffer itself: no header copy per message). */
export function writeHeader(out: Uint8Array, spiI: Uint8Array, spiR: Uint8Array, nextPayload: number, exchange: number, response: boolean, initiator: boolean, messageId: number, length: number): void {
  if (!(spiI instanceof Uint8Array) || spiI.length !== 8) throw new TypeError('spiI: expected 8 bytes');
  if (!(spiR instanceof Uint8Array) || spiR.length !== 8) throw new TypeError('spiR: expected 8 bytes');
  checkU('nextPayload', nextPayload, 8);
  checkU('exchange', exchange, 8);
  checkU('messageId', messageId, 32);
  checkU('length', length, 32);
  out.set(spiI, 0);
  out.set(spiR, 8);
  out[16] = nextPayload;
  out[17] = (IKE_MAJOR_VERSION << 4) | IKE_MINOR_VERSION;
  out[18] = exchange;
  out[19] = (response ? HeaderFlag.RESPONSE : 0) | (initiator ? HeaderFlag.INITIATOR : 0);
  out[20] = messageId >>> 24;
  out[21] = (messageId >>> 16) & 0xff;
  out[22] = (messageId >>> 8) & 0xff;
  out[23] = messageId & 0xff;
  out[24] = length >>> 24;
  out[25] = (length >>> 16) & 0xff;
  out[26] = (length >>> 8) & 0xff;
  out[27] = length & 0xff;
}

/**
 * Parses and validates the header against the datagram it came in.
 * Order matters: the version is checked before the length, because a future
 * major version may define lengths differently (§2.5: drop and answer
 * INVALID_MAJOR_VERSION, which needs the SPIs and Message ID).
 */
export function decodeHeader(data: Uint8Array): IkeHeader {
  if (!(data instanceof Uint8Array)) throw new TypeError('data: expected Uint8Array');
  if (data.length < IKE_HEADER_LEN) throw new ParseError(`truncated IKE header: ${data.length} < ${IKE_HEADER_LEN}`, 0);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const spiI = data.slice(0, 8);
  const spiR = data.slice(8, 16);
  const nextPayload = data[16]!;
  const majorVersion = data[17]! >> 4;
  const minorVersion = data[17]! & 0x0f;
  const exchange = data[18]!;
  const flags = data[19]!;
  const messageId = v.getUint32(20);
  const length = v.getUint32(24);
  const response = (flags & HeaderFlag.RESPONSE) !== 0;
  const initiator = (flags & HeaderFlag.INITIATOR) !== 0;
  if (majorVersion !== IKE_MAJOR_VERSION) {
    throw new InvalidMajorVersionError(majorVersion, minorVersion, { spiI, spiR, exchange, messageId, response, initiator });
  }
  // §3.1: "Length of the total message (header + payloads) in octets."
  if (length !== data.length) throw new ParseError(`IKE header length ${length} != datagram length ${data.length}`, 24);
  // §3.1: the initiator's SPI "MUST NOT be zero".
  if (spiI.every((b) => b === 0)) throw new ParseError('initiator SPI is zero', 0);
  return { spiI, spiR, nextPayload, majorVersion, minorVersion, exchange, response, initiator, messageId, length };
}
