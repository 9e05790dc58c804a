/**
 * Per-exchange payload rules as data (strongSwan encoding/message.c idea):
 * for each exchange type and direction, which payloads may appear, how
 * often, which are mandatory, and whether the message travels inside SK.
 *
 * Sources: RFC 7296 §1.2-§1.5 (exchanges), §2.5 (critical bit, unknown
 * payloads), §2.21 (error responses), §3.14 (SK is last); RFC 6023
 * (childless IKE_AUTH: SA, TSi, TSr absent together); RFC 9242 §3.2
 * (IKE_INTERMEDIATE: SK present, content defined by the extension, may be
 * empty); RFC 9370 §2.2.2 (IKE_FOLLOWUP_KE carries KE and
 * N(ADDITIONAL_KEY_EXCHANGE)). Counts follow strongSwan's limits
 * (MAX_NOTIFY 20, MAX_VID 20, MAX_CERT 8, MAX_DELETE 20).
 *
 * Not modelled: EAP rounds after the first IKE_AUTH request (the product
 * authenticates with PSK only): an IKE_AUTH request must carry IDi and AUTH
 * unless it carries EAP.
 */
import { ExchangeType, Notify, PayloadType as P, isErrorNotify } from '../constants.js';
import { MessageRuleError, UnsupportedCriticalPayloadError } from './errors.js';
import { isUnknownPayload } from './payloads.js';
import type { NotifyPayload, Payload } from './types.js';

export interface PayloadRule {
  type: number;
  min: number;
  max: number;
}

export interface MessageRule {
  exchange: number;
  response: boolean;
  /** Payloads travel inside SK/SKF (everything but IKE_SA_INIT and §1.5 notifications). */
  encrypted: boolean;
  payloads: readonly PayloadRule[];
  /** Any of these makes the `min` requirements void (an error or COOKIE answer, EAP round). */
  sufficient?: { errorNotify?: boolean; notifyTypes?: readonly number[]; payloadTypes?: readonly number[] };
  /** Payload types that appear all together or not at all. */
  together?: readonly (readonly number[])[];
}

const MAX_N = 20;
const MAX_V = 20;
const MAX_CERT = 8;
const MAX_D = 20;

const r = (type: number, min: number, max: number): PayloadRule => ({ type, min, max });
const CHILD_TRIPLE = [P.SA, P.TSi, P.TSr] as const;

export const MESSAGE_RULES: readonly MessageRule[] = [
  // RFC 7296 §1.2: HDR, SAi1, KEi, Ni  -->  <-- HDR, SAr1, KEr, Nr, [CERTREQ]
  {
    exchange: ExchangeType.IKE_SA_INIT,
    response: false,
    encrypted: false,
    payloads: [r(P.SA, 1, 1), r(P.KE, 1, 1), r(P.NONCE, 1, 1), r(P.NOTIFY, 0, MAX_N), r(P.VENDOR, 0, MAX_V)],
  },
  {
    exchange: ExchangeType.IKE_SA_INIT,
    response: true,
    encrypted: false,
    payloads: [r(P.SA, 1, 1), r(P.KE, 1, 1), r(P.NONCE, 1, 1), r(P.CERTREQ, 0, MAX_CERT), r(P.NOTIFY, 0, MAX_N), r(P.VENDOR, 0, MAX_V)],
    // §2.6 / §1.3: a responder may answer with only N(COOKIE) or an error such as INVALID_KE_PAYLOAD.
    sufficient: { errorNotify: true, notifyTypes: [Notify.COOKIE] },
  },
  // §1.2: HDR, SK {IDi, [CERT,] [CERTREQ,] [IDr,] AUTH, SAi2, TSi, TSr}
  {
    exchange: ExchangeType.IKE_AUTH,
    response: false,
    encrypted: true,
    payloads: [
      r(P.IDi, 1, 1),
      r(P.CERT, 0, MAX_CERT),
      r(P.CERTREQ, 0, MAX_CERT),
      r(P.IDr, 0, 1),
      r(P.AUTH, 1, 1),
      r(P.EAP, 0, 1),
      r(P.CP, 0, 1),
      r(P.SA, 0, 1),
      r(P.TSi, 0, 1),
      r(P.TSr, 0, 1),
      r(P.NOTIFY, 0, MAX_N),
      r(P.VENDOR, 0, MAX_V),
    ],
    sufficient: { payloadTypes: [P.EAP] },
    together: [CHILD_TRIPLE],
  },
  // §1.2: <-- HDR, SK {IDr, [CERT,] AUTH, SAr2, TSi, TSr}; §2.21.2: errors may stand alone.
  {
    exchange: ExchangeType.IKE_AUTH,
    response: true,
    encrypted: true,
    payloads: [
      r(P.IDr, 1, 1),
      r(P.CERT, 0, MAX_CERT),
      r(P.AUTH, 1, 1),
      r(P.EAP, 0, 1),
      r(P.CP, 0, 1),
      r(P.SA, 0, 1),
      r(P.TSi, 0, 1),
      r(P.TSr, 0, 1),
      r(P.NOTIFY, 0, MAX_N),
      r(P.VENDOR, 0, MAX_V),
    ],
    sufficient: { errorNotify: true, payloadTypes: [P.EAP] },
    together: [CHILD_TRIPLE],
  },
  // §1.3: HDR, SK {SA, Ni, [KEi,] [TSi, TSr]} (TS absent for an IKE SA rekey)
  {
    exchange: ExchangeType.CREATE_CHILD_SA,
    response: false,
    encrypted: true,
    payloads: [r(P.SA, 1, 1), r(P.NONCE, 1, 1), r(P.KE, 0, 1), r(P.TSi, 0, 1), r(P.TSr, 0, 1), r(P.CP, 0, 1), r(P.NOTIFY, 0, MAX_N), r(P.VENDOR, 0, MAX_V)],
    together: [[P.TSi, P.TSr]],
  },
  {
    exchange: ExchangeType.CREATE_CHILD_SA,
    response: true,
    encrypted: true,
    payloads: [r(P.SA, 1, 1), r(P.NONCE, 1, 1), r(P.KE, 0, 1), r(P.TSi, 0, 1), r(P.TSr, 0, 1), r(P.CP, 0, 1), r(P.NOTIFY, 0, MAX_N), r(P.VENDOR, 0, MAX_V)],
    sufficient: { errorNotify: true },
    together: [[P.TSi, P.TSr]],
  },
  // §1.4: HDR, SK {[N,] [D,] [CP,] ...}, possibly empty (liveness check).
  ...[false, true].map(
    (response): MessageRule => ({
      exchange: ExchangeType.INFORMATIONAL,
      response,
      encrypted: true,
      payloads: [r(P.NOTIFY, 0, MAX_N), r(P.DELETE, 0, MAX_D), r(P.CP, 0, 1), r(P.VENDOR, 0, MAX_V)],
    }),
  ),
  // §1.5: notifications outside an IKE SA (INVALID_IKE_SPI, INVALID_SYNTAX, ...)
  // travel unprotected; the receiver treats them as hints only.
  ...[false, true].map(
    (response): MessageRule => ({
      exchange: ExchangeType.INFORMATIONAL,
      response,
      encrypted: false,
      payloads: [r(P.NOTIFY, 1, MAX_N)],
    }),
  ),
  // RFC 9242 §3.2: SK present, may be empty; RFC 9370 puts one KE in it.
  ...[false, true].map(
    (response): MessageRule => ({
      exchange: ExchangeType.IKE_INTERMEDIATE,
      response,
      encrypted: true,
      payloads: [r(P.KE, 0, 1), r(P.NOTIFY, 0, MAX_N), r(P.VENDOR, 0, MAX_V)],
    }),
  ),
  // RFC 9370 §2.2.2: HDR, SK {KEi(n), N(ADDITIONAL_KEY_EXCHANGE)} <--> HDR, SK {KEr(n), [N(ADDITIONAL_KEY_EXCHANGE)]}
  {
    exchange: ExchangeType.IKE_FOLLOWUP_KE,
    response: false,
    encrypted: true,
    payloads: [r(P.KE, 1, 1), r(P.NOTIFY, 0, MAX_N), r(P.VENDOR, 0, MAX_V)],
  },
  {
    exchange: ExchangeType.IKE_FOLLOWUP_KE,
    response: true,
    encrypted: true,
    payloads: [r(P.KE, 1, 1), r(P.NOTIFY, 0, MAX_N), r(P.VENDOR, 0, MAX_V)],
    sufficient: { errorNotify: true }, // e.g. STATE_NOT_FOUND (RFC 9370 §2.2.2)
  },
];

/**
 * Lookup tables built once from MESSAGE_RULES: validateMessage() runs for
 * every message, and scanning the rule list, filtering and counting into a
 * fresh Map each time was a measurable share of the codec's allocations.
 */
const ruleKey = (exchange: number, response: boolean, encrypted: boolean): number => exchange * 4 + (response ? 2 : 0) + (encrypted ? 1 : 0);
const RULE_BY_KEY = new Map<number, MessageRule>();
/** Per rule: its PayloadRule by payload type (0..255). */
const PAYLOAD_RULES = new Map<MessageRule, (PayloadRule | undefined)[]>();
const ENCRYPTED_BY_EXCHANGE = new Map<number, boolean>();
for (const m of MESSAGE_RULES) {
  const k = ruleKey(m.exchange, m.response, m.encrypted);
  if (!RULE_BY_KEY.has(k)) RULE_BY_KEY.set(k, m); // first match wins, as a find() over the list would
  const byType: (PayloadRule | undefined)[] = new Array<PayloadRule | undefined>(256).fill(undefined);
  for (const pr of [...m.payloads].reverse()) byType[pr.type] = pr; // the first rule of a type wins
  PAYLOAD_RULES.set(m, byType);
  ENCRYPTED_BY_EXCHANGE.set(m.exchange, (ENCRYPTED_BY_EXCHANGE.get(m.exchange) ?? false) || m.encrypted);
}

/** The rule for an exchange/direction/protection, or undefined. */
export function findRule(exchange: number, response: boolean, encrypted: boolean): MessageRule | undefined {
  return RULE_BY_KEY.get(ruleKey(exchange, response, encrypted));
}

/** True if the exchange has any rule saying it is protected by SK (all but IKE_SA_INIT). */
export function exchangeIsEncrypted(exchange: number): boolean | undefined {
  return ENCRYPTED_BY_EXCHANGE.get(exchange);
}

/** Payload counts by type, for validateMessage(); every entry it sets is reset before it returns or throws. */
const COUNTS = new Uint16Array(256);

export interface ValidateInput {
  exchange: number;
  response: boolean;
  encrypted: boolean;
  /** Payloads inside SK (or all payloads of a plain message). */
  payloads: readonly Payload[];
  /** Payloads found before SK/SKF in a protected message (no rule allows these). */
  unprotected?: readonly Payload[];
}

/**
 * Checks a decoded message against its rule. Order (RFC 7296 §2.5): an
 * unrecognised critical payload wins over every other complaint, so the
 * peer learns which payload we lack. Returns the payloads the engine should
 * act on, i.e. without ignored unknown non-critical payloads.
 */
export function validateMessage(m: ValidateInput): Payload[] {
  const unprotected = m.unprotected ?? [];
  let unknown = 0;
  for (const p of unprotected) if (isUnknownPayload(p) && p.critical) throw new UnsupportedCriticalPayloadError(p.type);
  for (const p of m.payloads) {
    if (!isUnknownPayload(p)) continue;
    if (p.critical) throw new UnsupportedCriticalPayloadError(p.type);
    unknown++;
  }
  const rule = findRule(m.exchange, m.response, m.encrypted);
  if (!rule) {
    const enc = exchangeIsEncrypted(m.exchange);
    if (enc === undefined) throw new MessageRuleError('unknown-exchange', m.exchange, undefined, `no rules for exchange type ${m.exchange}`);
    if (enc && !m.encrypted) throw new MessageRuleError('must-be-encrypted', m.exchange, undefined, `exchange ${m.exchange} must be protected by SK`);
    throw new MessageRuleError('must-not-be-encrypted', m.exchange, undefined, `exchange ${m.exchange} must not be encrypted`);
  }
  checkUnprotected(m.exchange, unprotected);
  // Without ignored unknown payloads; the caller's (fresh) array itself when there are none.
  const kept = unknown === 0 ? (m.payloads as Payload[]) : m.payloads.filter((p) => !isUnknownPayload(p));
  const byType = PAYLOAD_RULES.get(rule)!;
  const counts = COUNTS;
  for (const p of kept) counts[p.type & 0xff]++;
  try {
    // In order of first appearance, as the checks always ran.
    for (const p of kept) {
      const type = p.type;
      const n = counts[type & 0xff]!;
      const pr = byType[type & 0xff];
      if (!pr || pr.type !== type) throw new MessageRuleError('not-allowed', m.exchange, type, `payload ${type} not allowed in exchange ${m.exchange} ${m.response ? 'response' : 'request'}`);
      if (n > pr.max) throw new MessageRuleError('too-many', m.exchange, type, `${n} payloads of type ${type}, at most ${pr.max} allowed`);
    }
    if (!isSufficient(rule, kept)) {
      for (const pr of rule.payloads) {
        if (counts[pr.type & 0xff]! < pr.min) throw new MessageRuleError('missing', m.exchange, pr.type, `mandatory payload ${pr.type} missing in exchange ${m.exchange} ${m.response ? 'response' : 'request'}`);
      }
    }
    for (const group of rule.together ?? []) {
      let present = 0;
      for (const t of group) if (counts[t & 0xff]! > 0) present++;
      if (present !== 0 && present !== group.length) {
        const absent = group.find((t) => counts[t & 0xff] === 0)!;
        throw new MessageRuleError('incomplete-group', m.exchange, absent, `payloads ${group.join('/')} must appear together; ${absent} missing`);
      }
    }
  } finally {
    for (const p of kept) counts[p.type & 0xff] = 0;
  }
  return kept;
}

/**
 * Payloads before SK/SKF: RFC 7296 §3.14 only says SK is last; no exchange
 * defines unprotected companions (strongSwan marks every payload of an
 * encrypted exchange as "must be encrypted"), so only unknown non-critical
 * payloads pass, and are ignored.
 */
export function checkUnprotected(exchange: number, unprotected: readonly Payload[]): void {
  for (const p of unprotected) {
    if (isUnknownPayload(p)) {
      if (p.critical) throw new UnsupportedCriticalPayloadError(p.type);
      continue;
    }
    throw new MessageRuleError('not-encrypted', exchange, p.type, `payload ${p.type} outside SK in exchange ${exchange}`);
  }
}

function isSufficient(rule: MessageRule, payloads: readonly Payload[]): boolean {
  const s = rule.sufficient;
  if (!s) return false;
  for (const p of payloads) {
    if (s.payloadTypes?.includes(p.type)) return true;
    if (p.type === P.NOTIFY) {
      const t = (p as NotifyPayload).notifyType;
      if (s.errorNotify && isErrorNotify(t)) return true;
      if (s.notifyTypes?.includes(t)) return true;
    }
  }
  return false;
}
