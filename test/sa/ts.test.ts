import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  formatTs,
  isDynamicTs,
  narrow,
  parseTs,
  payloadToTs,
  resolveDynamicTs,
  tsFromPayload,
  tsToPayload,
  type DynamicTs,
} from '../../firmware/ikev2/sa/ts.js';
import type { TrafficSelector } from '../../firmware/ikev2/codec/types.js';
import type { TsConfig } from '../../firmware/config/types.js';
import { ConfigError } from '../../firmware/util/errors.js';
import { bytesToIp } from '../../firmware/util/ip.js';

const ts = (text: string): TsConfig => {
  const t = parseTs(text);
  if (isDynamicTs(t)) throw new Error('unexpected dynamic');
  return t;
};
const sel = (text: string): TrafficSelector => tsToPayload([ts(text)])[0]!;
const show = (s: TrafficSelector[]): string[] => s.map((x) => formatTs(x));

describe('parseTs', () => {
  const table: [string, { family: 4 | 6; start: string; end: string; proto: number; ports: [number, number]; text: string }][] = [
    ['10.0.0.0/24', { family: 4, start: '10.0.0.0', end: '10.0.0.255', proto: 0, ports: [0, 65535], text: '10.0.0.0/24' }],
    ['0.0.0.0/0', { family: 4, start: '0.0.0.0', end: '255.255.255.255', proto: 0, ports: [0, 65535], text: '0.0.0.0/0' }],
    ['::/0', { family: 6, start: '::', end: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', proto: 0, ports: [0, 65535], text: '::/0' }],
    ['192.0.2.1', { family: 4, start: '192.0.2.1', end: '192.0.2.1', proto: 0, ports: [0, 65535], text: '192.0.2.1/32' }],
    ['10.1.0.0/16[tcp/443]', { family: 4, start: '10.1.0.0', end: '10.1.255.255', proto: 6, ports: [443, 443], text: '10.1.0.0/16[tcp/443]' }],
    ['[udp]', { family: 4, start: '0.0.0.0', end: '255.255.255.255', proto: 17, ports: [0, 65535], text: '0.0.0.0/0[udp]' }],
    ['10.0.0.1-10.0.0.9', { family: 4, start: '10.0.0.1', end: '10.0.0.9', proto: 0, ports: [0, 65535], text: '10.0.0.1-10.0.0.9' }],
    ['10.0.0.0-10.0.0.255', { family: 4, start: '10.0.0.0', end: '10.0.0.255', proto: 0, ports: [0, 65535], text: '10.0.0.0/24' }],
    ['10.0.0.5/24', { family: 4, start: '10.0.0.0', end: '10.0.0.255', proto: 0, ports: [0, 65535], text: '10.0.0.0/24' }],
    [' 10.0.0.0/24 ', { family: 4, start: '10.0.0.0', end: '10.0.0.255', proto: 0, ports: [0, 65535], text: '10.0.0.0/24' }],
    ['2001:db8::/32[udp/500-4500]', { family: 6, start: '2001:db8::', end: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', proto: 17, ports: [500, 4500], text: '2001:db8::/32[udp/500-4500]' }],
    ['10.0.0.0/8[icmp/8]', { family: 4, start: '10.0.0.0', end: '10.255.255.255', proto: 1, ports: [0x800, 0x8ff], text: '10.0.0.0/8[icmp/8]' }],
    ['10.0.0.0/8[6/1000-2000]', { family: 4, start: '10.0.0.0', end: '10.255.255.255', proto: 6, ports: [1000, 2000], text: '10.0.0.0/8[tcp/1000-2000]' }],
    ['10.0.0.0/8[tcp/opaque]', { family: 4, start: '10.0.0.0', end: '10.255.255.255', proto: 6, ports: [65535, 0], text: '10.0.0.0/8[tcp/opaque]' }],
    ['10.0.0.0/8[tcp/https]', { family: 4, start: '10.0.0.0', end: '10.255.255.255', proto: 6, ports: [443, 443], text: '10.0.0.0/8[tcp/443]' }],
    ['10.0.0.0/8[47]', { family: 4, start: '10.0.0.0', end: '10.255.255.255', proto: 47, ports: [0, 65535], text: '10.0.0.0/8[gre]' }],
    ['10.0.0.0/31', { family: 4, start: '10.0.0.0', end: '10.0.0.1', proto: 0, ports: [0, 65535], text: '10.0.0.0/31' }],
  ];
  for (const [text, w] of table) {
    it(text, () => {
      const t = ts(text);
      expect([t.family, bytesToIp(t.startAddr), bytesToIp(t.endAddr), t.ipProtocol, [t.startPort, t.endPort], t.text]).toEqual([
        w.family,
        w.start,
        w.end,
        w.proto,
        w.ports,
        w.text,
      ]);
      // canonical text parses back to the same selector
      expect(ts(t.text)).toEqual(t);
    });
  }
  it('dynamic, optionally with protocol/port, resolved by the caller', () => {
    const d = parseTs('dynamic[udp/53]') as DynamicTs;
    expect(isDynamicTs(d)).toBe(true);
    expect([d.ipProtocol, d.startPort, d.endPort, d.text]).toEqual([17, 53, 53, 'dynamic[udp/53]']);
    expect(resolveDynamicTs(d, '192.0.2.7').text).toBe('192.0.2.7/32[udp/53]');
    expect(resolveDynamicTs(parseTs('dynamic') as DynamicTs, '2001:db8::7').text).toBe('2001:db8::7/128');
  });
  const bad: [string, RegExp][] = [
    ['10.0.0.0/33', /prefix length/],
    ['::/129', /prefix length/],
    ['10.0.0.0/x', /prefix length/],
    ['10.0.0.300', /invalid address/],
    ['garbage', /invalid address/],
    ['10.0.0.9-10.0.0.1', /start is above its end/],
    ['10.0.0.1-::1', /mixes IPv4 and IPv6/],
    ['10.0.0.0/24[tcp/70000]', /port 70000 out of range/],
    ['10.0.0.0/24[tcp/2000-1000]', /reversed/],
    ['10.0.0.0/24[foo]', /unknown IP protocol 'foo'/],
    ['10.0.0.0/24[256]', /IP protocol 256 out of range/],
    ['10.0.0.0/24[tcp', /missing closing/],
    ['10.0.0.0/24[tcp/nosuchservice]', /unknown port/],
    ['10.0.0.0/8[icmp/300]', /ICMP type 300 out of range/],
  ];
  for (const [text, re] of bad) {
    it(`rejects '${text}'`, () => {
      expect(() => parseTs(text, 'tunnels[0].local_ts[1]')).toThrow(ConfigError);
      expect(() => parseTs(text, 'tunnels[0].local_ts[1]')).toThrow(re);
      try {
        parseTs(text, 'tunnels[0].local_ts[1]');
      } catch (e) {
        expect((e as ConfigError).path).toBe('tunnels[0].local_ts[1]');
      }
    });
  }
});

describe('TS payload conversion', () => {
  it('round-trips through TS substructures (type 7 / 8)', () => {
    const cfg = [ts('10.0.0.0/24[tcp/22]'), ts('2001:db8::/48')];
    const p = tsToPayload(cfg);
    expect(p.map((x) => x.tsType)).toEqual([7, 8]);
    expect(payloadToTs(p)).toEqual(cfg);
  });
  it('ignores unknown TS types and inconsistent address lengths', () => {
    const good = sel('10.0.0.0/24');
    expect(tsFromPayload({ ...good, tsType: 9 })).toBeUndefined();
    expect(tsFromPayload({ ...good, endAddr: new Uint8Array(16) })).toBeUndefined();
    expect(payloadToTs([{ ...good, tsType: 13 }, good])).toHaveLength(1);
  });
});

describe('narrow (RFC 7296 §2.9)', () => {
  const table: [string, string[], string[], string[]][] = [
    ['peer wider than us', ['0.0.0.0/0'], ['10.0.0.0/24'], ['10.0.0.0/24']],
    ['peer narrower than us', ['10.0.0.0/24'], ['0.0.0.0/0'], ['10.0.0.0/24']],
    ['disjoint → TS_UNACCEPTABLE', ['10.0.0.0/24'], ['10.0.1.0/24'], []],
    ['family mismatch', ['::/0'], ['10.0.0.0/8'], []],
    ['partial range overlap', ['10.0.0.128-10.0.1.127'], ['10.0.1.0/24'], ['10.0.1.0/25']],
    ['protocol taken from the specific side', ['0.0.0.0/0[tcp]'], ['10.0.0.0/8'], ['10.0.0.0/8[tcp]']],
    ['protocol mismatch', ['0.0.0.0/0[udp]'], ['0.0.0.0/0[tcp]'], []],
    ['port range intersection', ['0.0.0.0/0[tcp/1000-2000]'], ['0.0.0.0/0[tcp/1500-3000]'], ['0.0.0.0/0[tcp/1500-2000]']],
    ['opaque ports vs any', ['0.0.0.0/0[tcp/opaque]'], ['10.0.0.0/8'], ['10.0.0.0/8[tcp/opaque]']],
    ['opaque ports vs a port', ['0.0.0.0/0[tcp/opaque]'], ['10.0.0.0/8[tcp/80]'], []],
    ['ICMP type', ['0.0.0.0/0[icmp]'], ['10.0.0.0/8[icmp/8]'], ['10.0.0.0/8[icmp/8]']],
    ['the first (specific) selector stays first', ['10.0.0.5/32[tcp/80]', '10.0.0.0/24'], ['10.0.0.0/16'], ['10.0.0.5/32[tcp/80]', '10.0.0.0/24']],
    ['several configured selectors', ['0.0.0.0/0'], ['10.0.0.0/24', '192.168.0.0/16'], ['10.0.0.0/24', '192.168.0.0/16']],
    ['duplicates removed', ['10.0.0.0/24', '10.0.0.0/16'], ['10.0.0.0/24'], ['10.0.0.0/24']],
    ['dual stack', ['0.0.0.0/0', '::/0'], ['10.0.0.0/8', '2001:db8::/32'], ['10.0.0.0/8', '2001:db8::/32']],
  ];
  for (const [name, offered, configured, want] of table) {
    it(name, () => {
      expect(show(narrow(offered.map(sel), configured.map(ts)))).toEqual(want);
    });
  }
  it('skips unknown selector types', () => {
    expect(show(narrow([{ ...sel('0.0.0.0/0'), tsType: 9 }, sel('10.0.0.0/8')], [ts('0.0.0.0/0')]))).toEqual(['10.0.0.0/8']);
  });

  // Property: narrowing returns exactly the traffic both sides accept (per offered/configured pair).
  const v4 = (n: number): Uint8Array => new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const num = (b: Uint8Array): number => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const small = fc.integer({ min: 0, max: 63 }).map((x) => x * 4);
  const arbSel = fc.record({ a: small, b: small, proto: fc.constantFrom(0, 6, 17), p1: fc.integer({ min: 0, max: 20 }), p2: fc.integer({ min: 0, max: 20 }) }).map(
    ({ a, b, proto, p1, p2 }): TrafficSelector => ({
      tsType: 7,
      ipProtocol: proto,
      startPort: Math.min(p1, p2) * 1000,
      endPort: Math.max(p1, p2) * 1000 + 999,
      startAddr: v4(0x0a000000 + Math.min(a, b)),
      endAddr: v4(0x0a000000 + Math.max(a, b)),
    }),
  );
  const inSel = (s: TrafficSelector, addr: number, proto: number, port: number): boolean =>
    num(s.startAddr) <= addr && addr <= num(s.endAddr) && (s.ipProtocol === 0 || s.ipProtocol === proto) && s.startPort <= port && port <= s.endPort;
  it('is sound and complete on sampled packets', () => {
    fc.assert(
      fc.property(
        fc.array(arbSel, { minLength: 1, maxLength: 3 }),
        fc.array(arbSel, { minLength: 1, maxLength: 3 }),
        fc.array(fc.record({ addr: fc.integer({ min: 0, max: 255 }), proto: fc.constantFrom(6, 17), port: fc.integer({ min: 0, max: 21999 }) }), { minLength: 20, maxLength: 20 }),
        (offered, configuredSel, packets) => {
          const configured = payloadToTs(configuredSel);
          const result = narrow(offered, configured);
          for (const { addr, proto, port } of packets) {
            const a = 0x0a000000 + addr;
            const inResult = result.some((r) => inSel(r, a, proto, port));
            const inBoth = offered.some((o) => inSel(o, a, proto, port)) && configuredSel.some((c) => inSel(c, a, proto, port));
            if (inResult !== inBoth) return false;
          }
          return true;
        },
      ),
      { numRuns: 500 },
    );
  });
});
