import { describe, it, expect } from 'vitest';
import { decodePlain, decodeProtected, encodePlain, encodeProtected, MessageRuleError, UnsupportedCriticalPayloadError, validateMessage, MESSAGE_RULES, findRule, type RuleViolation } from '../../firmware/ikev2/codec/index.js';
import type { DecodedMessage, Message, Payload } from '../../firmware/ikev2/codec/types.js';
import { ExchangeType as X, Notify, PayloadType as P } from '../../firmware/ikev2/constants.js';
import { counterIv, gcm256 } from './fake-cipher.js';
import { authRequest, initRequest, ke, nonce, notify, saEsp, saIke, SPI_I, SPI_R, tsV4 } from './fixtures.js';

const idr: Payload = { type: P.IDr, idType: 2, data: new Uint8Array([0x61]) };
const auth: Payload = { type: P.AUTH, method: 2, data: new Uint8Array(32) };

function msg(exchange: number, response: boolean, payloads: Payload[], encrypted = exchange !== X.IKE_SA_INIT): Message {
  return { spiI: SPI_I, spiR: SPI_R, exchange, response, initiator: !response, messageId: 1, encrypted, payloads };
}
/** Encodes and decodes through the real path, with rules on. */
function through(m: Message): DecodedMessage {
  if (!m.encrypted) return decodePlain(encodePlain(m));
  const c = gcm256();
  return decodeProtected(encodeProtected(m, c, counterIv()).datagrams[0]!, c) as DecodedMessage;
}
function violation(m: Message): [RuleViolation, number | undefined] {
  try {
    through(m);
  } catch (e) {
    if (e instanceof MessageRuleError) return [e.violation, e.payloadType];
    throw e;
  }
  throw new Error('no rule violation');
}

describe('per-exchange payload rules', () => {
  it('has a rule for both directions of every exchange', () => {
    for (const x of Object.values(X)) for (const r of [false, true]) expect(findRule(x, r, x !== X.IKE_SA_INIT), `${x}/${r}`).toBeDefined();
    expect(MESSAGE_RULES.every((r) => r.payloads.every((p) => p.min <= p.max))).toBe(true);
  });

  it('accepts the usual messages', () => {
    expect(() => through(initRequest())).not.toThrow();
    expect(() => through(msg(X.IKE_SA_INIT, true, [saIke, ke(31, 32), nonce(), notify(Notify.IKEV2_FRAGMENTATION_SUPPORTED), { type: P.CERTREQ, encoding: 4, data: new Uint8Array(20) }]))).not.toThrow();
    expect(() => through(authRequest())).not.toThrow();
    expect(() => through(msg(X.IKE_AUTH, true, [idr, auth, saEsp, tsV4(P.TSi), tsV4(P.TSr)]))).not.toThrow();
    expect(() => through(msg(X.CREATE_CHILD_SA, false, [notify(Notify.REKEY_SA, new Uint8Array(0), 3, new Uint8Array(4)), saEsp, nonce(), ke(31, 32), tsV4(P.TSi), tsV4(P.TSr)]))).not.toThrow();
    expect(() => through(msg(X.CREATE_CHILD_SA, false, [saIke, nonce(), ke(31, 32)]))).not.toThrow(); // IKE SA rekey: no TS
    expect(() => through(msg(X.IKE_FOLLOWUP_KE, false, [ke(36, 1184), notify(Notify.ADDITIONAL_KEY_EXCHANGE, Uint8Array.from([0x42]))]))).not.toThrow();
    expect(() => through(msg(X.INFORMATIONAL, false, [{ type: P.DELETE, protocol: 1, spiSize: 0, spis: [] }]))).not.toThrow();
  });

  it('IKE_INTERMEDIATE: SK present, may be empty (RFC 9242 §3.2)', () => {
    expect(through(msg(X.IKE_INTERMEDIATE, false, [])).payloads).toEqual([]);
    expect(through(msg(X.IKE_INTERMEDIATE, true, [ke(36, 1088)])).payloads).toHaveLength(1);
    expect(violation(msg(X.IKE_INTERMEDIATE, false, [ke(36, 1184), { type: P.CERT, encoding: 4, data: new Uint8Array(4) }]))).toEqual(['not-allowed', P.CERT]);
  });

  it('childless IKE_AUTH (RFC 6023) omits SA, TSi and TSr together', () => {
    const childless = authRequest().payloads.filter((p) => p.type !== P.SA && p.type !== P.TSi && p.type !== P.TSr);
    expect(() => through({ ...authRequest(), payloads: childless })).not.toThrow();
    expect(violation({ ...authRequest(), payloads: authRequest().payloads.filter((p) => p.type !== P.TSr) })).toEqual(['incomplete-group', P.TSr]);
    expect(violation(msg(X.CREATE_CHILD_SA, false, [saEsp, nonce(), tsV4(P.TSi)]))).toEqual(['incomplete-group', P.TSr]);
  });

  it('requires the mandatory payloads', () => {
    expect(violation({ ...initRequest(), payloads: initRequest().payloads.filter((p) => p.type !== P.KE) })).toEqual(['missing', P.KE]);
    expect(violation({ ...authRequest(), payloads: authRequest().payloads.filter((p) => p.type !== P.AUTH) })).toEqual(['missing', P.AUTH]);
    expect(violation({ ...authRequest(), payloads: authRequest().payloads.filter((p) => p.type !== P.IDi) })).toEqual(['missing', P.IDi]);
    expect(violation(msg(X.IKE_AUTH, true, [auth]))).toEqual(['missing', P.IDr]);
    expect(violation(msg(X.IKE_FOLLOWUP_KE, false, [notify(Notify.ADDITIONAL_KEY_EXCHANGE)]))).toEqual(['missing', P.KE]);
    expect(violation(msg(X.CREATE_CHILD_SA, false, [saEsp]))).toEqual(['missing', P.NONCE]);
    // A status notify does not excuse a response from its mandatory payloads.
    expect(violation(msg(X.IKE_SA_INIT, true, [notify(Notify.NAT_DETECTION_SOURCE_IP, new Uint8Array(20))]))).toEqual(['missing', P.SA]);
  });

  it('lets error responses (and N(COOKIE)) omit mandatory payloads (RFC 7296 §2.21)', () => {
    expect(() => through(msg(X.IKE_SA_INIT, true, [notify(Notify.COOKIE, new Uint8Array(16))]))).not.toThrow();
    expect(() => through(msg(X.IKE_SA_INIT, true, [notify(Notify.INVALID_KE_PAYLOAD, Uint8Array.from([0, 36]))]))).not.toThrow();
    expect(() => through(msg(X.IKE_SA_INIT, true, [notify(Notify.NO_PROPOSAL_CHOSEN)]))).not.toThrow();
    expect(() => through(msg(X.IKE_AUTH, true, [notify(Notify.AUTHENTICATION_FAILED)]))).not.toThrow();
    expect(() => through(msg(X.IKE_AUTH, true, [idr, auth, notify(Notify.TS_UNACCEPTABLE)]))).not.toThrow();
    expect(() => through(msg(X.CREATE_CHILD_SA, true, [notify(Notify.NO_ADDITIONAL_SAS)]))).not.toThrow();
    expect(() => through(msg(X.IKE_FOLLOWUP_KE, true, [notify(Notify.STATE_NOT_FOUND)]))).not.toThrow();
    // ... but an error notify in a *request* excuses nothing.
    expect(violation(msg(X.CREATE_CHILD_SA, false, [notify(Notify.NO_ADDITIONAL_SAS)]))).toEqual(['missing', P.SA]);
  });

  it('caps repeated payloads', () => {
    expect(violation({ ...initRequest(), payloads: [...initRequest().payloads, nonce()] })).toEqual(['too-many', P.NONCE]);
    const many = Array.from({ length: 21 }, () => notify(Notify.INITIAL_CONTACT));
    expect(violation(msg(X.INFORMATIONAL, false, many))).toEqual(['too-many', P.NOTIFY]);
  });

  it('rejects payloads the exchange does not define', () => {
    expect(violation({ ...initRequest(), payloads: [...initRequest().payloads, auth] })).toEqual(['not-allowed', P.AUTH]);
    expect(violation(msg(X.INFORMATIONAL, true, [saEsp]))).toEqual(['not-allowed', P.SA]);
  });

  it('ignores unknown non-critical payloads and rejects unknown critical ones first (RFC 7296 §2.5)', () => {
    const unknown: Payload = { type: 150, unknown: true, data: new Uint8Array(3) };
    const d = through({ ...initRequest(), payloads: [unknown, ...initRequest().payloads] });
    expect(d.payloads).toEqual(initRequest().payloads);
    // Critical unknown wins even over a missing mandatory payload.
    try {
      through(msg(X.IKE_AUTH, false, [{ type: 151, critical: true, unknown: true, data: new Uint8Array(0) }]));
      expect.fail('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(UnsupportedCriticalPayloadError);
      expect((e as UnsupportedCriticalPayloadError).code).toBe('ERR_UNSUPPORTED_CRITICAL_PAYLOAD');
      expect((e as UnsupportedCriticalPayloadError).payloadType).toBe(151);
    }
    // The critical bit on a known payload is not an error.
    expect(() => through({ ...initRequest(), payloads: initRequest().payloads.map((p) => (p.type === P.NONCE ? { ...p, critical: true } : p)) })).not.toThrow();
  });

  it('accepts RFC 7296 §1.5 notifications outside an IKE SA in the clear', () => {
    const m = msg(X.INFORMATIONAL, true, [notify(Notify.INVALID_IKE_SPI)], false);
    expect(through(m).payloads).toEqual(m.payloads);
    expect(violation(msg(X.INFORMATIONAL, true, [], false))).toEqual(['missing', P.NOTIFY]);
  });

  it('validateMessage can be used on a model directly', () => {
    expect(validateMessage({ exchange: X.IKE_AUTH, response: false, encrypted: true, payloads: authRequest().payloads })).toHaveLength(6);
    expect(() => validateMessage({ exchange: 200, response: false, encrypted: true, payloads: [] })).toThrow(MessageRuleError);
  });
});
