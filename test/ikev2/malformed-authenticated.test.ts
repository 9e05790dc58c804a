/**
 * RFC 7296 §2.21.2 / §2.5: an authenticated request that is malformed inside
 * is answered with an error notify (the message ID is consumed); an unknown
 * payload with the critical bit gets UNSUPPORTED_CRITICAL_PAYLOAD; a foreign
 * major version gets INVALID_MAJOR_VERSION. The keys to craft such messages
 * come from the engine's own key log line, as Wireshark would use them.
 */
import { describe, it, expect } from 'vitest';
import { pair, up } from './harness.js';
import { fromHex } from '../../firmware/util/bytes.js';
import { createSkCipher, encrInfo } from '../../firmware/crypto/registry.js';
import { encodeProtected, decodeProtected, decodeHeaderOnly, decodePlain } from '../../firmware/ikev2/codec/index.js';
import type { DecodedMessage, Payload } from '../../firmware/ikev2/codec/types.js';
import { ExchangeType, Notify } from '../../firmware/ikev2/constants.js';

function established() {
  const { lab, a, b } = pair({ ikeProposals: ['aes256gcm16-prfsha384-x25519'] }, { ikeProposals: ['aes256gcm16-prfsha384-x25519'] });
  up(lab, a);
  lab.run();
  const line = a.keylog.find((l) => !l.startsWith('#'))!;
  const [spiI, spiR, skEi, skEr] = line.split(',');
  const encr = encrInfo(20, 256);
  return { lab, a, b, spiI: fromHex(spiI!), spiR: fromHex(spiR!), outI: createSkCipher(encr, fromHex(skEi!)), inI: createSkCipher(encr, fromHex(skEr!)) };
}

describe('authenticated but malformed requests', () => {
  for (const [what, payloads, expectNotify] of [
    ['an unknown critical payload', [{ type: 200, critical: true, unknown: true, data: new Uint8Array([1, 2, 3]) }], Notify.UNSUPPORTED_CRITICAL_PAYLOAD],
    ['a CREATE_CHILD_SA without its mandatory payloads', [{ type: 41, protocol: 0, spi: new Uint8Array(0), notifyType: Notify.REKEY_SA, data: new Uint8Array(0) }], Notify.INVALID_SYNTAX],
  ] as [string, Payload[], number][]) {
    it(`answers ${what} with ${expectNotify === 1 ? 'UNSUPPORTED_CRITICAL_PAYLOAD' : 'INVALID_SYNTAX'}`, () => {
      const { lab, b, spiI, spiR, outI, inI } = established();
      const exchange = expectNotify === 1 ? ExchangeType.INFORMATIONAL : ExchangeType.CREATE_CHILD_SA;
      // The initiator's next message ID after IKE_SA_INIT (0) and IKE_AUTH (1) is 2.
      const msg = { spiI, spiR, exchange, response: false, initiator: true, messageId: 2, encrypted: true, payloads };
      let n = 0;
      const { datagrams } = encodeProtected(msg, outI, (len) => new Uint8Array(len).fill(0x40 + n++));
      const replies: Uint8Array[] = [];
      lab.net.attach({ address: '192.0.2.9', port: 500 }, (d) => replies.push(d));
      lab.apply(b, b.engine.receive(datagrams[0]!, { address: '192.0.2.9', port: 500 }, { address: '192.0.2.2', port: 500 }));
      lab.net.deliverDue();
      // The responder answers to where the request came from (RFC 7296 §2.11).
      expect(replies).toHaveLength(1);
      const r = decodeProtected(replies[0]!, inI) as DecodedMessage;
      expect(r.response).toBe(true);
      expect(r.messageId).toBe(2);
      const nt = r.payloads.find((p) => p.type === 41) as { notifyType: number; data: Uint8Array } | undefined;
      expect(nt?.notifyType).toBe(expectNotify);
      if (expectNotify === 1) expect([...nt!.data]).toEqual([200]);
      // The SA is still usable: a liveness check from the initiator side works.
      expect(lab.status(b)[0]!.state).toBe('ESTABLISHED');
    });
  }

  it('drops an integrity failure silently and keeps the message ID', () => {
    const { lab, b, spiI, spiR, outI } = established();
    const msg = { spiI, spiR, exchange: ExchangeType.INFORMATIONAL, response: false, initiator: true, messageId: 2, encrypted: true, payloads: [] };
    const { datagrams } = encodeProtected(msg, outI, (len) => new Uint8Array(len).fill(7));
    const bad = datagrams[0]!.slice();
    bad[bad.length - 1]! ^= 1;
    const out = b.engine.receive(bad, { address: '192.0.2.1', port: 500 }, { address: '192.0.2.2', port: 500 });
    expect(out.filter((x) => x.kind === 'send')).toHaveLength(0);
    const good = b.engine.receive(datagrams[0]!, { address: '192.0.2.1', port: 500 }, { address: '192.0.2.2', port: 500 });
    expect(good.filter((x) => x.kind === 'send')).toHaveLength(1);
    void lab;
  });

  it('answers a higher major version in IKE_SA_INIT with INVALID_MAJOR_VERSION', () => {
    const { b } = pair();
    const d = new Uint8Array(28);
    d.set([1, 2, 3, 4, 5, 6, 7, 8], 0);
    d[16] = 0;
    d[17] = 0x30; // version 3.0
    d[18] = 34;
    d[19] = 0x08;
    new DataView(d.buffer).setUint32(24, 28);
    const out = b.engine.receive(d, { address: '192.0.2.7', port: 500 }, { address: '192.0.2.2', port: 500 });
    const sends = out.filter((x) => x.kind === 'send');
    expect(sends).toHaveLength(1);
    const data = (sends[0] as { data: Uint8Array }).data;
    const h = decodeHeaderOnly(data);
    expect(h.majorVersion).toBe(2);
    expect(h.response).toBe(true);
    const m = decodePlain(data, { rules: false });
    expect((m.payloads[0] as { notifyType: number }).notifyType).toBe(Notify.INVALID_MAJOR_VERSION);
  });
});
