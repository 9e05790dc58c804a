/**
 * Malformed and hostile input at the engine boundary: every datagram of a
 * handshake is also delivered in mutated forms (bit flips, truncation,
 * extension, header field changes). The engines must never throw, never
 * count an internal error, and still complete the real handshake.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { pair, up } from './harness.js';
import { Engine } from '../../firmware/ikev2/engine.js';
import { FakeClock } from '../../firmware/util/clock.js';
import { TestRng } from '../../firmware/util/rng.js';

function mutate(d: Uint8Array, r: () => number): Uint8Array {
  const c = d.slice();
  switch (Math.floor(r() * 6)) {
    case 0: // flip 1-4 bits
      for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) c[Math.floor(r() * c.length)]! ^= 1 << Math.floor(r() * 8);
      return c;
    case 1: // truncate
      return c.slice(0, Math.floor(r() * c.length));
    case 2: // extend with garbage
      return new Uint8Array([...c, ...Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256))]);
    case 3: // corrupt a length field in the first 64 bytes
      {
        const i = Math.floor(r() * Math.min(64, c.length - 1));
        c[i] = Math.floor(r() * 256);
        c[i + 1] = Math.floor(r() * 256);
      }
      return c;
    case 4: // flip response/initiator flags or exchange type
      if (c.length > 19) {
        c[18] = [34, 35, 36, 37, 43, 44, 0, 255][Math.floor(r() * 8)]!;
        c[19] ^= [0x08, 0x20, 0x28, 0x10][Math.floor(r() * 4)]!;
      }
      return c;
    default: // message ID change
      if (c.length > 23) c[23] = (c[23]! + 1 + Math.floor(r() * 3)) & 0xff;
      return c;
  }
}

describe('engine robustness', () => {
  for (const seed of [11, 12, 13]) {
    it(`completes the hybrid handshake while mutated copies of every datagram arrive (seed ${seed})`, () => {
      let s = seed;
      const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
      const { lab, a, b } = pair({ ikeProposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke2_mlkem1024'], fragmentSize: 700 }, { ikeProposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke2_mlkem1024'], fragmentSize: 700 });
      const orig = lab.net.send.bind(lab.net);
      let mutants = 0;
      // IKE_SA_INIT is unauthenticated: an on-path forger that wins the race
      // can break it (as for any IKEv2 implementation), so its mutants come
      // after the genuine datagram. Protected messages get mutants before too.
      lab.net.send = (from, to, data) => {
        const plain = data.length > 18 && data[18] === 34;
        if (plain) orig(from, to, data);
        for (let i = 0; i < 20; i++) {
          orig(from, to, mutate(data, r));
          mutants++;
        }
        if (!plain) orig(from, to, data);
      };
      up(lab, a);
      lab.run(120_000);
      expect(mutants).toBeGreaterThan(100);
      expect(lab.status(a).map((x) => x.state)).toEqual(['ESTABLISHED']);
      expect(lab.status(b).map((x) => x.state)).toEqual(['ESTABLISHED']);
      expect(a.engine.stats.internalErrors + b.engine.stats.internalErrors).toBe(0);
      expect(a.installs).toHaveLength(1);
    });
  }

  it('never throws on arbitrary datagrams to a responder', () => {
    const clock = new FakeClock();
    const { b } = pair();
    const e: Engine = b.engine;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.boolean(), (bytes, ikeHeader) => {
        const d = bytes.slice();
        if (ikeHeader && d.length >= 28) {
          d[17] = 0x20; // version 2.0
          d[18] = 34; // IKE_SA_INIT
          d[19] = 0x08;
          new DataView(d.buffer).setUint32(24, d.length);
          d.fill(0, 8, 16);
        }
        e.receive(d, { address: '198.51.100.7', port: 500 }, { address: '192.0.2.2', port: 500 });
        return e.stats.internalErrors === 0;
      }),
      { numRuns: 3000 },
    );
    void clock;
    void TestRng;
  });
});
