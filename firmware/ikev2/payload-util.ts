/** Small helpers to build and look up payloads in decoded messages. */
import type { DecodedMessage, NotifyPayload, Payload, KePayload, NoncePayload, SaPayload, IdPayload, AuthPayload, TsPayload } from './codec/types.js';
import { PayloadType, Notify, isErrorNotify, NotifyName } from './constants.js';
import { ipToBytes } from '../util/ip.js';
import { u16be, concat } from '../util/bytes.js';
import { sha1 } from '../crypto/hash.js';

/** Shared zero-length default for notify data and SPI (nothing can be written into it). */
const EMPTY = new Uint8Array(0);

export function notify(notifyType: number, data: Uint8Array = EMPTY, protocol = 0, spi: Uint8Array = EMPTY): NotifyPayload {
  return { type: PayloadType.NOTIFY, protocol, spi, notifyType, data };
}

export function findNotify(msg: { payloads: Payload[] }, type: number): NotifyPayload | undefined {
  return msg.payloads.find((p): p is NotifyPayload => p.type === PayloadType.NOTIFY && (p as NotifyPayload).notifyType === type);
}

export function notifies(msg: { payloads: Payload[] }, type: number): NotifyPayload[] {
  return msg.payloads.filter((p): p is NotifyPayload => p.type === PayloadType.NOTIFY && (p as NotifyPayload).notifyType === type);
}

/** The first error notify (RFC 7296 §3.10.1: types below 16384), if any. */
export function errorNotify(msg: { payloads: Payload[] }): NotifyPayload | undefined {
  return msg.payloads.find((p): p is NotifyPayload => p.type === PayloadType.NOTIFY && isErrorNotify((p as NotifyPayload).notifyType));
}

export function notifyName(type: number): string {
  return NotifyName[type] ?? `NOTIFY_${type}`;
}

export function getPayload<T extends Payload>(msg: DecodedMessage | { payloads: Payload[] }, type: number): T | undefined {
  return msg.payloads.find((p) => p.type === type) as T | undefined;
}

/** Like getPayload but a missing payload is a protocol error (INVALID_SYNTAX). */
export function requirePayload<T extends Payload>(msg: { payloads: Payload[] }, type: number, what: string): T {
  const p = msg.payloads.find((x) => x.type === type) as T | undefined;
  if (!p) throw new ProtocolError(Notify.INVALID_SYNTAX, `missing ${what} payload`);
  return p;
}

export const P = {
  sa: (m: { payloads: Payload[] }) => getPayload<SaPayload>(m, PayloadType.SA),
  ke: (m: { payloads: Payload[] }) => getPayload<KePayload>(m, PayloadType.KE),
  nonce: (m: { payloads: Payload[] }) => getPayload<NoncePayload>(m, PayloadType.NONCE),
  idi: (m: { payloads: Payload[] }) => getPayload<IdPayload>(m, PayloadType.IDi),
  idr: (m: { payloads: Payload[] }) => getPayload<IdPayload>(m, PayloadType.IDr),
  auth: (m: { payloads: Payload[] }) => getPayload<AuthPayload>(m, PayloadType.AUTH),
  tsi: (m: { payloads: Payload[] }) => getPayload<TsPayload>(m, PayloadType.TSi),
  tsr: (m: { payloads: Payload[] }) => getPayload<TsPayload>(m, PayloadType.TSr),
};

/**
 * A protocol failure that maps to an error notify in our response
 * (requests) or to a failed SA (responses).
 */
export class ProtocolError extends Error {
  readonly code = 'ERR_PROTOCOL';
  constructor(
    readonly notifyType: number,
    message: string,
    readonly data: Uint8Array = new Uint8Array(0),
  ) {
    super(message);
  }
}

/** RFC 7296 §2.23: NAT-D hash = SHA-1(SPIi | SPIr | IP | port). */
export function natdHash(spiI: Uint8Array, spiR: Uint8Array, address: string, port: number): Uint8Array {
  return sha1(spiI, spiR, ipToBytes(address), u16be(port));
}

/** IDType | RESERVED(3) | data: the body AUTH's MACedIDFor{I,R} covers (RFC 7296 §2.15). */
export function idBody(id: IdPayload): Uint8Array {
  return concat(new Uint8Array([id.idType, 0, 0, 0]), id.data);
}
