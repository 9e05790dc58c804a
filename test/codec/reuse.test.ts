/**
 * The codec reuses state between messages for speed (docs/benchmarks.md,
 * "JS-side engine speed"): one scratch Writer for every encode, and one
 * payload-count array in validateMessage(). Nothing a caller holds may
 * alias that state, and a message that fails must not leave it dirty.
 */
import { describe, it, expect } from 'vitest';
import { decodeProtected, encodePayloads, encodePlain, encodeProtected, MessageRuleError, validateMessage } from '../../firmware/ikev2/codec/index.js';
import type { DecodedMessage, Payload } from '../../firmware/ikev2/codec/types.js';
import { Encr, ExchangeType as X, IntegId, PayloadType as P } from '../../firmware/ikev2/constants.js';
import { createSkCipher, encrInfo, integInfo } from '../../firmware/crypto/registry.js';
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

describe('the real SK ciphers leave the sealed plaintext alone', () => {
  // encodeProtected() hands out IntAuth_P as a view of the padded plaintext it
  // sealed (one copy less per message): a cipher that encrypted in place would
  // corrupt the RFC 9242 IntAuth input. Checked against every cipher kind.
  const key = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
  const ciphers = {
    'AES-256-GCM-16': () => createSkCipher(encrInfo(Encr.AES_GCM_16, 256), key(36)),
    'ChaCha20-Poly1305': () => createSkCipher(encrInfo(Encr.CHACHA20_POLY1305), key(36)),
    'AES-256-CBC + HMAC-SHA-256-128': () => createSkCipher(encrInfo(Encr.AES_CBC, 256), key(32), integInfo(IntegId.HMAC_SHA2_256_128), key(32)),
  };
  for (const [name, mk] of Object.entries(ciphers)) {
    it(name, () => {
      const c = mk();
      const iv = (n: number) => new Uint8Array(n).fill(1);
      const m = intermediateRequest();
      const expectP = encodePayloads(m.payloads);
      const r = encodeProtected(m, c, iv);
      expect(r.intAuthP).toEqual(expectP);
      const d = decodeProtected(r.datagrams[0]!, mk()) as DecodedMessage;
      expect(d.intAuthP).toEqual(expectP);
      c.destroy();
    });
  }
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
