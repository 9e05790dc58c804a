/**
 * Full IKE_SA_INIT transcript authentication (IKEv2 downgrade prevention),
 * draft-ietf-ipsecme-ikev2-downgrade-prevention. Section numbers below are
 * those of the draft text read from the authors' repository
 * (smyslov/ikev2-downgrade-prevention, docName -06); the -08 upload (July
 * 2026, IESG-approved) keeps the same protocol. See
 * docs/downgrade-prevention.md for the quotes and what was verified where.
 *
 *  §3  RFC 7296 §2.15 has each side sign (or MAC) only the IKE_SA_INIT
 *      message it sent; an attacker who breaks the weak key exchange and
 *      holds one side's credential can strip the strong methods (e.g. the
 *      ML-KEM ADDKE) from the request and re-authenticate it (§4).
 *  §6  The initiator sends the status notify IKE_SA_INIT_FULL_TRANSCRIPT_AUTH
 *      (16447; Protocol ID 0, SPI Size 0, empty data) in its IKE_SA_INIT
 *      request. A supporting responder sends it in its response "regardless
 *      of whether it was received in the request or not". Received data
 *      MUST be ignored. A peer that sent AND received the notify uses
 *        InitiatorSignedOctets = ZeroPrefix | RealMessage2 | RealMessage1 | NonceRData | MACedIDForI
 *        ResponderSignedOctets = ZeroPrefix | RealMessage1 | RealMessage2 | NonceIData | MACedIDForR
 *      with ZeroPrefix = 8 zero octets, a domain separator: RFC 7296 octets
 *      start with the initiator's SPI, which is never zero.
 *      The construction replaces the signed octets for every AUTH method
 *      (PSK MAC, signatures, and therefore also NULL/EAP-MSK AUTH).
 *  §7.1 With IKE_INTERMEDIATE, RFC 9242 §3.3.2's IntAuth is appended to the
 *      modified octets.
 *  §5  There is no separate detection procedure: tampering with either
 *      IKE_SA_INIT message (or stripping the notify) makes the two sides
 *      compute different octets and IKE_AUTH fails as an ordinary
 *      authentication failure.
 *  §8  Deployments relying on it "should provide a local policy to require
 *      successful negotiation of this extension and to abort the connection
 *      otherwise": policy 'required' here.
 *
 * Pure functions only; the IKE engine decides where to call them.
 */
import { ExchangeType, HeaderFlag, IKE_HEADER_LEN, PayloadType } from './constants.js';
import type { NotifyPayload, Payload } from './codec/types.js';
import type { Prf } from '../crypto/types.js';
import { concat } from '../util/bytes.js';

/** Notify Message Status Type (IANA "IKEv2 Notify Message Status Types", draft §10). */
export const IKE_SA_INIT_FULL_TRANSCRIPT_AUTH = 16447;

/** §6: "ZeroPrefix is 8 octets of zero". */
export const ZERO_PREFIX_LEN = 8;

/**
 * Local policy:
 *  - 'off'      never announce; always the RFC 7296 octets.
 *  - 'on'       announce; full transcript when the peer announced too,
 *               RFC 7296 octets with a peer that did not.
 *  - 'required' announce and refuse a peer that did not (draft §8). Use it
 *               when the peer is known to implement the extension, e.g. a
 *               PQ-capable gateway that must not be downgraded.
 */
export type TranscriptPolicy = 'off' | 'on' | 'required';

export const TRANSCRIPT_POLICIES: readonly TranscriptPolicy[] = ['off', 'on', 'required'];

export function isTranscriptPolicy(v: unknown): v is TranscriptPolicy {
  return typeof v === 'string' && (TRANSCRIPT_POLICIES as readonly string[]).includes(v);
}

/** Whether we put the notify in our IKE_SA_INIT message (request or response alike, §6). */
export function announces(policy: TranscriptPolicy): boolean {
  return policy !== 'off';
}

/** N(IKE_SA_INIT_FULL_TRANSCRIPT_AUTH): Protocol ID 0, SPI Size 0, no data (§6). */
export function transcriptNotify(): NotifyPayload {
  return { type: PayloadType.NOTIFY, protocol: 0, spi: new Uint8Array(0), notifyType: IKE_SA_INIT_FULL_TRANSCRIPT_AUTH, data: new Uint8Array(0) };
}

/**
 * Did this (IKE_SA_INIT) message carry the notify? Its data is not looked at:
 * "Implementations compliant with this document MUST ignore the content of
 * the notification data ... if it is not empty" (§6).
 */
export function carriesTranscriptNotify(msg: { payloads: readonly Payload[] }): boolean {
  return msg.payloads.some((p) => p.type === PayloadType.NOTIFY && (p as NotifyPayload).notifyType === IKE_SA_INIT_FULL_TRANSCRIPT_AUTH);
}

export type TranscriptDecision =
  /** Proceed; `fullTranscript` selects the draft §6 octets (true) or RFC 7296 §2.15 (false). */
  | { ok: true; fullTranscript: boolean }
  /** Policy 'required' and the extension was not negotiated: abort (draft §8). */
  | { ok: false; reason: string };

/**
 * §6: "If a peer sent and received the IKE_SA_INIT_FULL_TRANSCRIPT_AUTH
 * notification, then it uses the modified construction". `weSent` /
 * `peerSent` are what the final (accepted) IKE_SA_INIT messages actually
 * carried, so a notify stripped on the path changes only one side's view
 * and the resulting octet mismatch fails IKE_AUTH (§6, Aside).
 */
export function negotiated(weSent: boolean, peerSent: boolean, policy: TranscriptPolicy): TranscriptDecision {
  const fullTranscript = weSent && peerSent;
  if (policy === 'required' && !fullTranscript) {
    const why = !weSent ? 'we did not announce it' : 'the peer did not announce it';
    return { ok: false, reason: `full IKE_SA_INIT transcript authentication (notify ${IKE_SA_INIT_FULL_TRANSCRIPT_AUTH}) is required but ${why}` };
  }
  return { ok: true, fullTranscript };
}

/**
 * A responder has to answer IKE_SA_INIT before it knows which tunnel the
 * initiator's identity selects (IKE_AUTH), so it decides for the whole
 * candidate set: announce if any candidate announces; refuse a peer that
 * did not announce only if every candidate requires it. `tunnelAccepts`
 * then filters the candidates at IKE_AUTH (libreswan issue #3035 discusses
 * the same connection-switching problem).
 */
export function responderPolicy(candidates: readonly TranscriptPolicy[]): TranscriptPolicy {
  if (candidates.length === 0 || candidates.every((p) => p === 'off')) return 'off';
  if (candidates.every((p) => p === 'required')) return 'required';
  return 'on';
}

/**
 * May an IKE SA whose octets were fixed at IKE_SA_INIT (`fullTranscript`)
 * be bound to a tunnel with this policy? Only 'required' says no. An 'off'
 * tunnel still accepts a full-transcript SA: once both notifies were
 * exchanged the construction cannot change, and AUTH succeeding proves the
 * peer implements it.
 */
export function tunnelAccepts(policy: TranscriptPolicy, fullTranscript: boolean): boolean {
  return policy !== 'required' || fullTranscript;
}

export interface AuthOctetsInput {
  /** Octets for the initiator's AUTH (InitiatorSignedOctets) or the responder's. */
  ofInitiator: boolean;
  /** Draft §6 construction (true) or RFC 7296 §2.15 (false). */
  fullTranscript: boolean;
  /**
   * The final IKE_SA_INIT request and response (§3 Aside: not those of an
   * exchange restarted after COOKIE / INVALID_KE_PAYLOAD), from the IKE
   * header on, without the 4-octet non-ESP marker. Each side uses its own
   * copies: what it sent and what it received.
   */
  realMessage1: Uint8Array;
  realMessage2: Uint8Array;
  /** Nonce Data of Ni and Nr (no payload header). */
  nonceI: Uint8Array;
  nonceR: Uint8Array;
  prf: Prf;
  /** SK_pi for the initiator's octets, SK_pr for the responder's (final keys, after all ADDKE rounds). */
  skP: Uint8Array;
  /** RestOfInitIDPayload / RestOfRespIDPayload: ID Type | RESERVED(3) | ID data. */
  idPayloadBody: Uint8Array;
  /** RFC 9242 §3.3.2 IntAuth_iN | IntAuth_rN | IKE_AUTH MID; empty without IKE_INTERMEDIATE. */
  intAuth?: Uint8Array;
}

/** Sanity checks that catch swapped or wrong messages; these are engine invariants, not peer input. */
function checkInitMessage(name: string, m: Uint8Array, response: boolean): void {
  if (!(m instanceof Uint8Array) || m.length < IKE_HEADER_LEN) throw new TypeError(`${name}: not an IKE message`);
  if (m[18] !== ExchangeType.IKE_SA_INIT) throw new TypeError(`${name}: exchange type ${m[18]}, expected IKE_SA_INIT (did it keep the non-ESP marker?)`);
  if (((m[19]! & HeaderFlag.RESPONSE) !== 0) !== response) throw new TypeError(`${name}: expected the IKE_SA_INIT ${response ? 'response' : 'request'}`);
  if (m.subarray(0, 8).every((b) => b === 0)) throw new TypeError(`${name}: initiator SPI is zero`);
}

function sameSpiI(m1: Uint8Array, m2: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if (m1[i] !== m2[i]) return false;
  return true;
}

/**
 * The octets an AUTH payload signs or MACs:
 *
 *   RFC 7296 §2.15 (+ RFC 9242 §3.3.2), fullTranscript = false:
 *     InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi') [| IntAuth]
 *     ResponderSignedOctets = RealMessage2 | NonceIData | prf(SK_pr, IDr') [| IntAuth]
 *   draft §6 (+ §7.1), fullTranscript = true:
 *     InitiatorSignedOctets = 0^8 | RealMessage2 | RealMessage1 | NonceRData | prf(SK_pi, IDi') [| IntAuth]
 *     ResponderSignedOctets = 0^8 | RealMessage1 | RealMessage2 | NonceIData | prf(SK_pr, IDr') [| IntAuth]
 *
 * In the full transcript each side puts the message it received first and
 * the one it sent second (libreswan logs it as "ZeroPrefix | received |
 * sent"). With fullTranscript = false the result is byte-identical to
 * sa/keymat.ts signedOctets().
 */
export function authOctets(a: AuthOctetsInput): Uint8Array {
  const own = a.ofInitiator ? a.realMessage1 : a.realMessage2;
  const peerNonce = a.ofInitiator ? a.nonceR : a.nonceI;
  const maced = a.prf.compute(a.skP, a.idPayloadBody);
  const intAuth = a.intAuth ?? new Uint8Array(0);
  if (!a.fullTranscript) {
    checkInitMessage(a.ofInitiator ? 'realMessage1' : 'realMessage2', own, !a.ofInitiator);
    return concat(own, peerNonce, maced, intAuth);
  }
  checkInitMessage('realMessage1', a.realMessage1, false);
  checkInitMessage('realMessage2', a.realMessage2, true);
  if (!sameSpiI(a.realMessage1, a.realMessage2)) throw new TypeError('realMessage1 and realMessage2 belong to different IKE SAs (initiator SPIs differ)');
  const other = a.ofInitiator ? a.realMessage2 : a.realMessage1;
  return concat(new Uint8Array(ZERO_PREFIX_LEN), other, own, peerNonce, maced, intAuth);
}

/** The draft §6 octets (authOctets with fullTranscript = true). */
export function transcriptSignedOctets(a: Omit<AuthOctetsInput, 'fullTranscript'>): Uint8Array {
  return authOctets({ ...a, fullTranscript: true });
}

/** One-line description for debug logs, e.g. "ZeroPrefix | RealMessage2 (received) | RealMessage1 (sent) | NonceRData | MACedIDForI". */
export function describeAuthOctets(ofInitiator: boolean, fullTranscript: boolean): string {
  const sent = ofInitiator ? 'RealMessage1' : 'RealMessage2';
  const recv = ofInitiator ? 'RealMessage2' : 'RealMessage1';
  const tail = ofInitiator ? 'NonceRData | MACedIDForI' : 'NonceIData | MACedIDForR';
  return fullTranscript ? `ZeroPrefix | ${recv} (received) | ${sent} (sent) | ${tail}` : `${sent} (sent) | ${tail}`;
}
