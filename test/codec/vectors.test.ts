/**
 * Real IKEv2 messages with their SK keys from the AOSP IKE library tests
 * (test/vectors/codec/README.md).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { decodePlain, decodeProtected, encodePlain, encodeProtected, isFragment, AuthTagError, type FragmentInfo } from '../../firmware/ikev2/codec/index.js';
import type { DecodedMessage, IdPayload, NotifyPayload, SaPayload, TsPayload, KePayload, NoncePayload } from '../../firmware/ikev2/codec/types.js';
import { ExchangeType, PayloadType } from '../../firmware/ikev2/constants.js';
import { fromHex } from '../../firmware/util/bytes.js';
import { FakeCbcHmac, FakeGcm } from './fake-cipher.js';

const V = JSON.parse(readFileSync(new URL('../vectors/codec/aosp-ike-messages.json', import.meta.url), 'utf8'));
const hx = (parts: string[]): Uint8Array => fromHex(parts.join(''));
const ivOnce = (iv: string) => (n: number) => {
  const b = fromHex(iv);
  expect(b.length).toBe(n);
  return b;
};

describe('AOSP IKE_SA_INIT request', () => {
  const bytes = hx(V.ikeSaInitRequest.hex);
  it('decodes every payload', () => {
    const m = decodePlain(bytes);
    expect(m).toMatchObject({ exchange: ExchangeType.IKE_SA_INIT, response: false, initiator: true, messageId: 0, encrypted: false });
    expect(m.payloads.map((p) => p.type)).toEqual([33, 34, 40, 41, 41, 43]);
    const sa = m.payloads[0] as SaPayload;
    expect(sa.proposals[0]!.transforms.map((t) => [t.type, t.id, t.keyLength])).toEqual([
      [1, 12, 128],
      [3, 2, undefined],
      [4, 2, undefined],
      [2, 2, undefined],
    ]);
    expect((m.payloads[1] as KePayload).method).toBe(2);
    expect((m.payloads[1] as KePayload).data).toHaveLength(128);
    expect((m.payloads[2] as NoncePayload).data).toHaveLength(32);
    expect((m.payloads.slice(3, 5) as NotifyPayload[]).map((n) => [n.notifyType, n.data.length])).toEqual([
      [16388, 20],
      [16389, 20],
    ]);
  });
  it('re-encodes to the identical octets', () => {
    expect(encodePlain(decodePlain(bytes))).toEqual(bytes);
  });
});

describe('AOSP IKE_AUTH request, AES-128-CBC + HMAC-SHA1-96', () => {
  const v = V.ikeAuthAesCbcHmacSha1;
  const mk = () => new FakeCbcHmac('aes-128-cbc', fromHex(v.encKey), 'sha1', fromHex(v.integKey), 12);
  const bytes = hx(v.message);
  it('verifies, decrypts and parses', () => {
    const m = decodeProtected(bytes, mk()) as DecodedMessage;
    expect(isFragment(m)).toBe(false);
    expect(m).toMatchObject({ exchange: ExchangeType.IKE_AUTH, response: false, initiator: true, messageId: 1 });
    expect(m.payloads.map((p) => p.type)).toEqual([35, 36, 39, 33, 44, 45, 41, 41]);
    expect((m.payloads[0] as IdPayload).data).toEqual(Uint8Array.from([10, 80, 80, 13]));
    expect((m.payloads[3] as SaPayload).proposals[0]).toMatchObject({ num: 1, protocol: 3, spi: fromHex('2ad4c0a2') });
    expect((m.payloads[4] as TsPayload).selectors[0]).toMatchObject({ tsType: 7, startPort: 0, endPort: 65535 });
    expect(m.intAuthP).toEqual(hx(v.inner));
  });
  it('re-encodes byte for byte with the same IV (zero padding, minimal length)', () => {
    const m = decodeProtected(bytes, mk()) as DecodedMessage;
    expect(encodeProtected(m, mk(), ivOnce(v.iv)).datagrams).toEqual([bytes]);
  });
  it('rejects the message under a wrong integrity key', () => {
    const bad = new FakeCbcHmac('aes-128-cbc', fromHex(v.encKey), 'sha1', new Uint8Array(20), 12);
    expect(() => decodeProtected(bytes, bad)).toThrow(AuthTagError);
  });
});

describe('AOSP IKE_AUTH, AES-256-GCM-16', () => {
  const v = V.ikeAuthAesGcm16;
  const bytes = hx(v.message);
  const mk = () => new FakeGcm(fromHex(v.encKeyWithSalt), 16);
  it('decrypts to the AUTH payload (an EAP-final round: rules off, PSK-only product)', () => {
    const m = decodeProtected(bytes, mk(), { rules: false }) as DecodedMessage;
    expect(m.messageId).toBe(5);
    expect(m.payloads).toEqual([{ type: PayloadType.AUTH, method: 2, data: hx(v.inner).subarray(8) }]);
    expect(m.intAuthP).toEqual(hx(v.inner));
  });
  it('re-encodes byte for byte with the same IV (AEAD: no padding)', () => {
    const m = decodeProtected(bytes, mk(), { rules: false }) as DecodedMessage;
    expect(encodeProtected(m, mk(), ivOnce(v.iv)).datagrams).toEqual([bytes]);
  });
  it('cross-check: the firmware registry cipher decrypts it too', async () => {
    const reg = await import('../../firmware/crypto/registry.js');
    const c = reg.createSkCipher(reg.encrInfo(20, 256), fromHex(v.encKeyWithSalt));
    const m = decodeProtected(bytes, c, { rules: false }) as DecodedMessage;
    expect(m.intAuthP).toEqual(hx(v.inner));
  });
});

describe('AOSP SKF fragment 2/2, AES-256-GCM-16 (AAD includes Fragment Number / Total)', () => {
  const v = V.skfAesGcm16Fragment2of2;
  it('verifies and yields the fragment', () => {
    const f = decodeProtected(hx(v.message), new FakeGcm(fromHex(v.encKeyWithSalt), 16)) as FragmentInfo;
    expect(f.kind).toBe('fragment');
    expect([f.number, f.total, f.firstPayload]).toEqual([2, 2, 0]);
    expect(f.header).toMatchObject({ exchange: ExchangeType.IKE_AUTH, response: true, messageId: 1 });
    expect(f.plaintext).toEqual(hx(v.plaintext));
  });
  it('fails the tag when Total Fragments is changed (it is authenticated)', () => {
    const b = hx(v.message);
    b[28 + 6] = 0;
    b[28 + 7] = 3;
    expect(() => decodeProtected(b, new FakeGcm(fromHex(v.encKeyWithSalt), 16))).toThrow(AuthTagError);
  });
});

describe('AOSP 3DES + HMAC-SHA1-96 messages', () => {
  it('decrypts the IKE_AUTH response carrying EAP', () => {
    const v = V.ikeAuth3desHmacSha1;
    const c = new FakeCbcHmac('des-ede3-cbc', fromHex(v.encKey), 'sha1', fromHex(v.integKey), 12);
    const m = decodeProtected(hx(v.message), c) as DecodedMessage;
    expect(m).toMatchObject({ exchange: ExchangeType.IKE_AUTH, response: true, messageId: 2 });
    expect(m.payloads.map((p) => p.type)).toEqual([PayloadType.EAP]);
    expect(m.intAuthP).toEqual(hx(v.inner));
  });
  it('decrypts SKF fragment 5/5 (random padding accepted)', () => {
    const v = V.skf3desHmacSha1Fragment5of5;
    const c = new FakeCbcHmac('des-ede3-cbc', fromHex(v.encKey), 'sha1', fromHex(v.integKey), 12);
    const f = decodeProtected(hx(v.message), c) as FragmentInfo;
    expect([f.number, f.total]).toEqual([5, 5]);
    expect(f.plaintext).toEqual(hx(v.plaintext));
  });
});
