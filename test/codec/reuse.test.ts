/**
 * The codec reuses state between messages for speed (docs/benchmarks.md,
 * "JS-side engine speed"): one scratch Writer for every encode, and one
 * payload-count array in validateMessage(). Nothing a caller holds may
 * alias that state, and a message that fails must not leave it dirty.
 */
import { describe, it, expect } from 'vitest';
import { decodeProtected, encodePayloads, encodePlain, encodeProtected, MessageRuleError, validateMessage } from '../../firmware/ikev2/codec/index.js';
import type { DecodedMessage, Payload } from '../../firmware/ikev2/codec/types.js';
import { ExchangeType as X, PayloadType as P } from '../../firmware/ikev2/constants.js';
import { counterIv, gcm256 } from './fake-cipher.js';
import { authRequest, initRequest, intermediateRequest } from './fixtures.js';

describe('scratch Writer reuse', () => {
  it('returns copies: a later, smaller encode leaves an earlier result untouched', () => {
    const big = encodePayloads(intermediateRequest().payloads);
    const bigCopy = big.slice();
    const small = encodePayloads(authRequest().payloads);
    encodePlain(initRequest());
    expect(big).toEqual(bigCopy);
    expect(big.buffer).not.toBe(small.buffer);
    expect(small.length).toBeLessThan(big.length);
  });

  it('IntAuth_P of one protected message survives the next encodes', () => {
    const c = gcm256();
    const first = encodeProtected(intermediateRequest(), c, counterIv());
    const p = first.intAuthP.slice();
    encodeProtected(authRequest(), c, counterIv(5));
    encodePlain(initRequest());
    expect(first.intAuthP).toEqual(p);
    // And it is exactly the inner payloads the receiver sees.
    const d = decodeProtected(first.datagrams[0]!, c) as DecodedMessage;
    expect(d.intAuthP).toEqual(p);
  });

  it('an encode that throws halfway does not leak into the next one', () => {
    const bad = { ...authRequest(), payloads: [...authRequest().payloads, { type: P.NONCE, data: new Uint8Array(70000) } as Payload] };
    expect(() => encodePayloads(bad.payloads)).toThrow(RangeError);
    expect(encodePayloads(authRequest().payloads)).toEqual(encodePayloads(authRequest().payloads));
    expect(encodePayloads([])).toHaveLength(0);
  });
});

describe('validateMessage count reuse', () => {
  const nonce: Payload = { type: P.NONCE, data: new Uint8Array(32) };
  const ke: Payload = { type: P.KE, method: 31, data: new Uint8Array(32) };

  it('a rejected message leaves no counts behind', () => {
    // Two KE payloads: too many; the counts of that attempt must be reset.
    const twoKe = { exchange: X.IKE_INTERMEDIATE, response: false, encrypted: true, payloads: [ke, ke] };
    for (let i = 0; i < 3; i++) expect(() => validateMessage(twoKe)).toThrow(MessageRuleError);
    expect(validateMessage({ exchange: X.IKE_INTERMEDIATE, response: false, encrypted: true, payloads: [ke] })).toEqual([ke]);
  });

  it('counts each message on its own', () => {
    const inter = { exchange: X.IKE_INTERMEDIATE, response: false, encrypted: true, payloads: [ke] };
    for (let i = 0; i < 5; i++) expect(validateMessage(inter)).toEqual([ke]);
    // A nonce is not allowed in IKE_INTERMEDIATE, whatever came before.
    expect(() => validateMessage({ ...inter, payloads: [nonce] })).toThrow(MessageRuleError);
    expect(validateMessage(inter)).toEqual([ke]);
  });
});
