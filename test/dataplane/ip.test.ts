import { describe, it, expect } from 'vitest';
import { clampMss, formatAddr, icmpTooBig, newFlow, parseAddr, parseFlow, rangeToCidrs } from '../../firmware/dataplane/ip.js';
import { Spd } from '../../firmware/dataplane/spd.js';
import { icmpEcho, ipv4, ipv6, sel, tcpSyn, udp } from './helpers.js';

describe('addresses and CIDR ranges', () => {
  it('parses and formats IPv4/IPv6 literals (RFC 5952 compression)', () => {
    expect(Array.from(parseAddr('198.51.100.7'))).toEqual([198, 51, 100, 7]);
    expect(formatAddr(parseAddr('2001:db8::1'))).toBe('2001:db8::1');
    expect(formatAddr(parseAddr('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect(formatAddr(parseAddr('::'))).toBe('::');
    expect(formatAddr(parseAddr('::ffff:192.0.2.1'))).toBe('::ffff:c000:201');
    for (const bad of ['1.2.3', '256.1.1.1', '1::2::3', 'g::1', '1:2:3:4:5:6:7:8:9']) expect(() => parseAddr(bad), bad).toThrow(TypeError);
  });

  it('turns selector ranges into the fewest covering CIDRs', () => {
    expect(rangeToCidrs(parseAddr('203.0.113.0'), parseAddr('203.0.113.255'))).toEqual(['203.0.113.0/24']);
    expect(rangeToCidrs(parseAddr('203.0.113.1'), parseAddr('203.0.113.6'))).toEqual(['203.0.113.1/32', '203.0.113.2/31', '203.0.113.4/31', '203.0.113.6/32']);
    expect(rangeToCidrs(parseAddr('0.0.0.0'), parseAddr('255.255.255.255'))).toEqual(['0.0.0.0/0']);
    expect(rangeToCidrs(parseAddr('2001:db8::'), parseAddr('2001:db8::ffff:ffff:ffff:ffff'))).toEqual(['2001:db8::/64']);
    expect(() => rangeToCidrs(parseAddr('0.0.0.1'), parseAddr('255.255.255.254'), 16)).toThrow(RangeError);
  });
});

describe('flow extraction', () => {
  const f = newFlow();

  it('IPv4 TCP/UDP ports, ICMP type/code as the port, DF bit, fragments', () => {
    expect(parseFlow(udp('198.51.100.1', '203.0.113.2', 1234, 53, new Uint8Array(4), { df: true }), f)).toBe(true);
    expect([f.family, f.proto, f.sport, f.dport, f.df]).toEqual([4, 17, 1234, 53, true]);
    expect(parseFlow(icmpEcho('198.51.100.1', '203.0.113.2', 1, 1), f)).toBe(true);
    expect([f.proto, f.sport, f.dport]).toEqual([1, 0x0800, 0x0800]);
    const frag = udp('198.51.100.1', '203.0.113.2', 1234, 53, new Uint8Array(40));
    frag[6] = 0x00;
    frag[7] = 0x10; // fragment offset 16 (x8 bytes)
    expect(parseFlow(frag, f)).toBe(true);
    expect([f.firstFragment, f.l4Off, f.sport]).toEqual([false, -1, -1]);
  });

  it('IPv6 walks extension headers to the upper layer', () => {
    const u = udp('2001:db8::1', '2001:db8::2', 7, 9, new Uint8Array(4));
    // Insert a hop-by-hop header (8 bytes: next=17, len=0, PadN).
    const hbh = Uint8Array.from([17, 0, 1, 4, 0, 0, 0, 0]);
    const withExt = ipv6('2001:db8::1', '2001:db8::2', 0, new Uint8Array([...hbh, ...u.subarray(40)]));
    expect(parseFlow(withExt, f)).toBe(true);
    expect([f.family, f.proto, f.l4Off, f.sport, f.dport, f.df]).toEqual([6, 17, 48, 7, 9, true]);
    // A non-first fragment: no ports.
    const fragHdr = Uint8Array.from([17, 0, 0x00, 0x08, 0, 0, 0, 1]);
    expect(parseFlow(ipv6('2001:db8::1', '2001:db8::2', 44, new Uint8Array([...fragHdr, ...u.subarray(40)])), f)).toBe(true);
    expect([f.proto, f.firstFragment, f.sport]).toEqual([17, false, -1]);
  });

  it('rejects what is not a well-formed IP packet', () => {
    const good = udp('198.51.100.1', '203.0.113.2', 1, 2, new Uint8Array(10));
    expect(parseFlow(good.subarray(0, 19), f)).toBe(false);
    expect(parseFlow(good.subarray(0, good.length - 1), f)).toBe(false); // total length > buffer
    const badIhl = good.slice();
    badIhl[0] = 0x44;
    expect(parseFlow(badIhl, f)).toBe(false);
    expect(parseFlow(new Uint8Array([0x70, 0, 0, 0]), f)).toBe(false);
    const v6 = udp('2001:db8::1', '2001:db8::2', 1, 2, new Uint8Array(4));
    expect(parseFlow(v6.subarray(0, 45), f)).toBe(false);
    const loop = ipv6('2001:db8::1', '2001:db8::2', 0, Uint8Array.from([0, 200, 0, 0, 0, 0, 0, 0]));
    expect(parseFlow(loop, f)).toBe(false); // extension header claims more than the packet
  });
});

describe('MSS clamp edge cases', () => {
  it('ignores malformed option lists and non-TCP packets', () => {
    const f = newFlow();
    const syn = tcpSyn('198.51.100.1', '203.0.113.2', 1, 2, 1460);
    parseFlow(syn, f);
    const broken = syn.slice();
    broken[41] = 0; // MSS option length 0
    expect(clampMss(broken, f, 1200)).toBe(false);
    const u = udp('198.51.100.1', '203.0.113.2', 1, 2, new Uint8Array(30));
    parseFlow(u, f);
    expect(clampMss(u, f, 100)).toBe(false);
  });
});

describe('ICMP errors are not sent about ICMP errors or non-initial fragments (RFC 1122 §3.2.2)', () => {
  it('refuses the forbidden cases', () => {
    const f = newFlow();
    const unreach = ipv4('198.51.100.1', '203.0.113.2', 1, Uint8Array.from([3, 1, 0, 0, 0, 0, 0, 0]));
    parseFlow(unreach, f);
    expect(icmpTooBig(unreach, f, 1000)).toBeNull();
    const frag = udp('198.51.100.1', '203.0.113.2', 1, 2, new Uint8Array(40));
    frag[7] = 0x10;
    parseFlow(frag, f);
    expect(icmpTooBig(frag, f, 1000)).toBeNull();
    const mcast = udp('224.0.0.5', '203.0.113.2', 1, 2, new Uint8Array(40));
    parseFlow(mcast, f);
    expect(icmpTooBig(mcast, f, 1000)).toBeNull();
    const ok = udp('198.51.100.1', '203.0.113.2', 1, 2, new Uint8Array(1000));
    parseFlow(ok, f);
    expect(icmpTooBig(ok, f, 900)!.length).toBe(576); // RFC 1812: at most 576 bytes
  });
});

describe('SPD', () => {
  const base = { reqid: 1, direction: 'out' as const, ifId: 0, tunnel: 't', src: { address: '192.0.2.1', port: 4500 }, dst: { address: '192.0.2.2', port: 4500 } };
  const f = newFlow();

  it('ports and protocols; non-initial fragments only match ANY-port selectors (RFC 4301 §7)', () => {
    const spd = new Spd();
    spd.add({ ...base, reqid: 1, local: [sel('198.51.100.0/24')], remote: [sel('203.0.113.0/24', 17, [53, 53])] });
    spd.add({ ...base, reqid: 2, local: [sel('198.51.100.0/24')], remote: [sel('203.0.113.0/24')] });
    const dns = udp('198.51.100.1', '203.0.113.2', 999, 53, new Uint8Array(8));
    parseFlow(dns, f);
    expect(spd.lookupOut(dns, f, 0)!.spec.reqid).toBe(1);
    const other = udp('198.51.100.1', '203.0.113.2', 999, 54, new Uint8Array(8));
    parseFlow(other, f);
    expect(spd.lookupOut(other, f, 0)!.spec.reqid).toBe(2);
    const frag = dns.slice();
    frag[7] = 0x10;
    parseFlow(frag, f);
    expect(spd.lookupOut(frag, f, 0)!.spec.reqid).toBe(2);
    // Policies on another interface are invisible to the shared TUN.
    expect(spd.lookupOut(dns, (parseFlow(dns, f), f), 5)).toBeUndefined();
  });

  it('adding the same policy twice is idempotent; removing restores the order', () => {
    const spd = new Spd();
    const p = { ...base, local: [sel('198.51.100.0/24')], remote: [sel('203.0.113.0/24')] };
    spd.add(p);
    spd.add({ ...p });
    expect(spd.outPolicies().length).toBe(1);
    expect(spd.remove({ ...p })).toBeDefined();
    expect(spd.outPolicies().length).toBe(0);
    expect(spd.remove(p)).toBeUndefined();
  });
});
