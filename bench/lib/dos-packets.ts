/**
 * Precomputed IKE_SA_INIT requests for the DoS flood (bench/dos.ts,
 * test/interop/dos-flood.test.ts, test/ikev2/admission.test.ts): what a
 * spoofing attacker sends — a well-formed hybrid proposal, a KE payload and
 * a nonce, but nobody behind the source address to answer a COOKIE. Built
 * with the engine's own codec so the responder parses them exactly like an
 * initiator's.
 */
import { randomBytes } from 'node:crypto';
import { encodePlain } from '../../firmware/ikev2/codec/index.js';
import type { KePayload, Message, Payload, SaPayload } from '../../firmware/ikev2/codec/types.js';
import { ExchangeType, KeMethod, Notify, PayloadType } from '../../firmware/ikev2/constants.js';
import { parseProposals, toSaProposals } from '../../firmware/ikev2/sa/proposal.js';
import { notify } from '../../firmware/ikev2/payload-util.js';

export const FLOOD_PROPOSAL = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';

export interface InitRequestOptions {
  spiI?: Uint8Array;
  nonce?: Uint8Array;
  /** COOKIE notify data (first payload, RFC 7296 §2.6). */
  cookie?: Uint8Array;
  proposal?: string;
  /** X25519 public value (random by default: any 32 octets are a valid X25519 input). */
  kePublic?: Uint8Array;
}

/** One IKE_SA_INIT request as an initiator would send it (message ID 0, SPIr zero). */
export function initRequest(o: InitRequestOptions = {}): Uint8Array {
  const proposals = toSaProposals(parseProposals([o.proposal ?? FLOOD_PROPOSAL], 'ike'), 'ike', new Uint8Array(0));
  const payloads: Payload[] = [];
  if (o.cookie) payloads.push(notify(Notify.COOKIE, o.cookie));
  payloads.push({ type: PayloadType.SA, proposals } as SaPayload);
  payloads.push({ type: PayloadType.KE, method: KeMethod.CURVE_25519, data: o.kePublic ?? randomBytes(32) } as KePayload);
  payloads.push({ type: PayloadType.NONCE, data: o.nonce ?? randomBytes(32) });
  payloads.push(notify(Notify.INTERMEDIATE_EXCHANGE_SUPPORTED));
  const msg: Message = {
    spiI: o.spiI ?? randomBytes(8),
    spiR: new Uint8Array(8),
    exchange: ExchangeType.IKE_SA_INIT,
    response: false,
    initiator: true,
    messageId: 0,
    encrypted: false,
    payloads,
  };
  return encodePlain(msg);
}

/** Offset of the initiator SPI in the IKE header (RFC 7296 §3.1): a flood rewrites it per datagram. */
export const SPI_I_OFFSET = 0;
