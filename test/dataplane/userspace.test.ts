/**
 * Two UserspaceDataPlanes in one process: gateway A (LAN 198.51.100.0/24,
 * outer 192.0.2.1) and gateway B (LAN 203.0.113.0/24, outer 192.0.2.2),
 * joined by an in-memory UDP network with loss and reordering, their TUN
 * devices replaced by in-memory fakes.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EspSa } from '../../firmware/dataplane/esp/sa.js';
import { Encr } from '../../firmware/ikev2/constants.js';
import { newFlow, parseFlow, internetChecksum } from '../../firmware/dataplane/ip.js';
import {
  A_OUTER, B_OUTER, MemoryNet, gateway, installChild, policySpec, tunOf, until, udp, tcpSyn, icmpEcho, ipv4, ipv6, hexOf, l4Checksum, type ChildParams, type Gateway,
} from './helpers.js';

const route: ChildParams = { reqid: 1, ifId: 7, tunnel: 'site', spiAB: 0xa0000001, spiBA: 0xb0000001, aNet: ['198.51.100.0/24'], bNet: ['203.0.113.0/24'] };
const policy: ChildParams = { ...route, ifId: 0, tunnel: 'pol' };

let open: Gateway[] = [];
afterEach(async () => {
  for (const g of open) await g.dp.close();
  open = [];
});

function pair(net: MemoryNet, extraA = {}, extraB = {}): [Gateway, Gateway] {
  const a = gateway(net, A_OUTER, extraA);
  const b = gateway(net, B_OUTER, extraB);
  open.push(a, b);
  return [a, b];
}

describe('route-based tunnel (one TUN per tunnel)', () => {
  it('creates and configures the interface, routes the remote subnet into it', async () => {
    const net = new MemoryNet();
    const [a] = pair(net);
    await a.dp.setTunnelOptions('site', { insideAddr: '10.100.0.0/31', mtu: 1380 });
    const b = gateway(net, B_OUTER);
    open.push(b);
    await installChild(a, b, route);
    expect(a.links.log).toEqual(['open pqsite', 'configure pqsite mtu 1380 addr 10.100.0.0/31', 'route add 203.0.113.0/24 dev pqsite']);
    expect([...a.links.routes.get('pqsite')!]).toEqual(['203.0.113.0/24']);
    // Without options: default MTU (1400), no address.
    expect(b.links.log[1]).toBe('configure pqsite mtu 1400');
  });

  it('carries ping-sized packets both ways, byte for byte', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    const ping = icmpEcho('198.51.100.10', '203.0.113.20', 0x77, 1);
    tunOf(a, 'pqsite').inject(ping);
    await until(() => tunOf(b, 'pqsite').delivered.length === 1);
    expect(hexOf(tunOf(b, 'pqsite').delivered[0]!)).toBe(hexOf(ping));
    const pong = icmpEcho('203.0.113.20', '198.51.100.10', 0x77, 1);
    tunOf(b, 'pqsite').inject(pong);
    await until(() => tunOf(a, 'pqsite').delivered.length === 1);
    expect(hexOf(tunOf(a, 'pqsite').delivered[0]!)).toBe(hexOf(pong));
    const qa = (await a.dp.querySa(route.spiAB, 'out'))!;
    expect(qa).toMatchObject({ packets: 1, bytes: ping.length, replayDrops: 0, authFailures: 0, lastUsed: 1000 });
    expect(await b.dp.querySa(route.spiAB, 'in')).toMatchObject({ packets: 1, bytes: ping.length });
    expect(await a.dp.querySa(0xdead, 'in')).toBeUndefined();
  });

  it("sends only traffic inside the Child SA's selectors: the kernel's IPv6 router solicitations and off-selector IPv4 stay out", async () => {
    // Seen in the strongSwan traffic test: the TUN's fe80:: address sent router solicitations
    // (ICMPv6 133 to ff02::2, hop limit 255) and pqgate sealed them into the IPv4-only SA.
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    const sealed: number[] = [];
    net.tap = (d) => sealed.push(d.length);
    const rs = ipv6('fe80::db5:dbfa:dbf6:295d', 'ff02::2', 58, Uint8Array.from([133, 0, 0, 0, 0, 0, 0, 0]));
    rs[7] = 255;
    const dad = ipv6('::', 'ff02::1:ff00:1', 58, Uint8Array.from([135, 0, 0, 0, 0, 0, 0, 0, ...new Uint8Array(16)]));
    tunOf(a, 'pqsite').inject(rs);
    tunOf(a, 'pqsite').inject(dad);
    tunOf(a, 'pqsite').inject(icmpEcho('10.9.9.9', '203.0.113.20', 1, 1)); // source outside aNet
    tunOf(a, 'pqsite').inject(icmpEcho('198.51.100.10', '192.0.2.77', 1, 1)); // destination outside bNet
    const ping = icmpEcho('198.51.100.10', '203.0.113.20', 2, 1);
    tunOf(a, 'pqsite').inject(ping);
    await until(() => tunOf(b, 'pqsite').delivered.length === 1);
    expect(hexOf(tunOf(b, 'pqsite').delivered[0]!)).toBe(hexOf(ping));
    expect(sealed).toHaveLength(1);
    expect(a.dp.stats.noPolicy).toBe(4);
    expect(a.dp.stats.txEsp).toBe(1);
    expect((await a.dp.querySa(route.spiAB, 'out'))!.packets).toBe(1);
    expect(b.dp.stats.policyDrops).toBe(0);
  });

  it('bulk both ways over a lossy, reordering path: what arrives is intact, counters agree', async () => {
    const net = new MemoryNet({ loss: 0.02, reorder: 12, seed: 42 });
    const [a, b] = pair(net);
    await installChild(a, b, route);
    const N = 1500;
    const sentAB = new Set<string>();
    const sentBA = new Set<string>();
    for (let i = 0; i < N; i += 50) {
      const batchA: Uint8Array[] = [];
      const batchB: Uint8Array[] = [];
      for (let j = i; j < i + 50; j++) {
        const pa = udp('198.51.100.10', '203.0.113.20', 5000, 6000, new Uint8Array(randomBytes(1300 + (j % 60))));
        const pb = udp('203.0.113.20', '198.51.100.10', 6000, 5000, new Uint8Array(randomBytes(200 + (j % 900))));
        sentAB.add(hexOf(pa));
        sentBA.add(hexOf(pb));
        batchA.push(pa);
        batchB.push(pb);
      }
      tunOf(a, 'pqsite').inject(...batchA);
      tunOf(b, 'pqsite').inject(...batchB);
      await new Promise((r) => setImmediate(r));
    }
    await until(() => net.delivered + net.dropped === net.sent);
    await new Promise((r) => setImmediate(r));
    const gotB = tunOf(b, 'pqsite').delivered;
    const gotA = tunOf(a, 'pqsite').delivered;
    for (const p of gotB) expect(sentAB.has(hexOf(p))).toBe(true);
    for (const p of gotA) expect(sentBA.has(hexOf(p))).toBe(true);
    expect(new Set(gotB.map(hexOf)).size).toBe(gotB.length); // no duplicates
    expect(gotB.length + gotA.length).toBe(2 * N - net.dropped);
    expect(gotB.length).toBeGreaterThan(N * 0.9);
    const outA = (await a.dp.querySa(route.spiAB, 'out'))!;
    const inB = (await b.dp.querySa(route.spiAB, 'in'))!;
    expect(outA.packets).toBe(N);
    expect(inB.packets).toBe(gotB.length);
    expect(inB.replayDrops).toBe(0); // reordering stays inside the 128-packet window
    expect(inB.authFailures).toBe(0);
  });

  it('make-before-break rekey: outbound switches at once, the old inbound SA keeps working until deleted', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array([i])));
    };
    await send(3);
    // Packets encrypted with the old SA but still in flight when the new one is installed:
    const inFlight = new EspSa({ spi: route.spiAB, encrId: Encr.AES_GCM_16, encrKeyBits: 128, encrKey: Uint8Array.from({ length: 20 }, (_, i) => (route.spiAB * 31 + i * 7) & 0xff), integId: 0, integKey: new Uint8Array(0), esn: false, replayWindow: 0 });
    inFlight.seq = 10;
    const late = new Uint8Array(inFlight.encapsulate(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array([99])), 4)!);
    const rekeyed: ChildParams = { ...route, spiAB: 0xa0000002, spiBA: 0xb0000002 };
    await installChild(a, b, rekeyed, 'sas'); // new SAs, same reqid/policies
    await send(4);
    await until(() => tunOf(b, 'pqsite').delivered.length === 7);
    expect((await a.dp.querySa(route.spiAB, 'out'))!.packets).toBe(3);
    expect((await a.dp.querySa(rekeyed.spiAB, 'out'))!.packets).toBe(4);
    expect((await b.dp.querySa(rekeyed.spiAB, 'in'))!.packets).toBe(4);
    b.dp.receiveEsp(late, A_OUTER, B_OUTER); // old inbound SA still installed
    await until(() => tunOf(b, 'pqsite').delivered.length === 8);
    await a.dp.deleteSa(route.spiAB, 'out');
    await b.dp.deleteSa(route.spiAB, 'in');
    b.dp.receiveEsp(late, A_OUTER, B_OUTER);
    expect(b.dp.stats.unknownSpi).toBe(1);
    await send(2);
    await until(() => tunOf(b, 'pqsite').delivered.length === 10);
  });

  it('keeps its routes when the Child SA goes away (no clear-text leak between SAs); removeInterface drops the device', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    await a.dp.deletePolicy(policySpec(route, 'a', 'out'));
    await a.dp.deleteSa(route.spiAB, 'out');
    expect([...a.links.routes.get('pqsite')!]).toEqual(['203.0.113.0/24']);
    tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(4)));
    expect(a.dp.stats.noPolicy).toBe(1); // the policy went first
    expect(net.sent).toBe(0);
    await a.dp.removeInterface(route.ifId);
    expect(tunOf(a, 'pqsite').closed).toBe(true);
  });
});

describe('policy-based tunnels (shared TUN + SPD)', () => {
  it('selects the SA by SPD lookup and drops traffic no policy covers', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    const second: ChildParams = { reqid: 2, ifId: 0, tunnel: 'pol2', spiAB: 0xa0000010, spiBA: 0xb0000010, aNet: ['198.51.100.0/24'], bNet: ['203.0.113.128/25'] };
    await installChild(a, b, policy);
    await installChild(a, b, second);
    // 203.0.113.200 is covered by both; the narrower /25 (reqid 2) wins.
    tunOf(a, 'pqpol0').inject(udp('198.51.100.10', '203.0.113.200', 1, 2, new Uint8Array(8)), udp('198.51.100.10', '203.0.113.5', 1, 2, new Uint8Array(8)));
    tunOf(a, 'pqpol0').inject(udp('198.51.100.10', '192.0.2.99', 1, 2, new Uint8Array(8))); // no policy
    await until(() => tunOf(b, 'pqpol0').delivered.length === 2);
    expect((await a.dp.querySa(second.spiAB, 'out'))!.packets).toBe(1);
    expect((await a.dp.querySa(policy.spiAB, 'out'))!.packets).toBe(1);
    expect(a.dp.stats.noPolicy).toBe(1);
    expect([...a.links.routes.get('pqpol0')!].sort()).toEqual(['203.0.113.0/24', '203.0.113.128/25']);
    // Policy-based routes follow the policies.
    await a.dp.deletePolicy(policySpec(second, 'a', 'out'));
    expect([...a.links.routes.get('pqpol0')!]).toEqual(['203.0.113.0/24']);
  });

  it('inbound policy check (RFC 4301 §5.2): a decrypted packet outside the SA selectors is dropped', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    // A may send anything into the tunnel, but B only accepts 198.51.100.0/24 -> 203.0.113.0/24.
    await installChild(a, b, policy, 'sas');
    await a.dp.addPolicy({ ...policySpec(policy, 'a', 'out'), local: [sel0()], remote: [sel0()] });
    await b.dp.addPolicy(policySpec(policy, 'b', 'in'));
    tunOf(a, 'pqpol0').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(8)), udp('192.0.2.77', '203.0.113.20', 1, 2, new Uint8Array(8)));
    await until(() => b.dp.stats.policyDrops === 1);
    await until(() => tunOf(b, 'pqpol0').delivered.length === 1);
    expect(hexOf(tunOf(b, 'pqpol0').delivered[0]!).slice(24, 32)).toBe('c633640a'); // 198.51.100.10
    expect(a.links.routes.get('pqpol0')!.size).toBe(0); // 0.0.0.0/0 is never routed into the TUN
  });

  it('acquire: a packet matching a policy without an SA asks the engine for one, rate-limited', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, policy, 'policies');
    const pkt = udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(8));
    tunOf(a, 'pqpol0').inject(pkt, pkt);
    await Promise.resolve();
    expect(a.events).toEqual([{ kind: 'acquire', reqid: 1 }]);
    a.clock.advance(5000);
    tunOf(a, 'pqpol0').inject(pkt);
    await Promise.resolve();
    expect(a.events.length).toBe(2);
    expect(a.dp.stats.noSa).toBe(3);
  });
});

function sel0() {
  return { family: 4 as const, startAddr: new Uint8Array(4), endAddr: new Uint8Array([255, 255, 255, 255]), ipProtocol: 0, startPort: 0, endPort: 0xffff };
}

describe('MSS clamping (TCP SYNs entering the tunnel)', () => {
  for (const variant of [{ name: 'IPv4 SYN', v6: false, odd: false, ack: false }, { name: 'IPv4 SYN-ACK, MSS at an odd offset', v6: false, odd: true, ack: true }, { name: 'IPv6 SYN', v6: true, odd: false, ack: false }]) {
    it(`${variant.name}: MSS lowered to the clamp, checksum still valid`, async () => {
      const net = new MemoryNet();
      const [a, b] = pair(net, { mss: 1360 });
      const c = variant.v6 ? { ...route, aNet: ['2001:db8:a::/48'], bNet: ['2001:db8:b::/48'] } : route;
      await installChild(a, b, c);
      const syn = variant.v6
        ? tcpSyn('2001:db8:a::10', '2001:db8:b::20', 40000, 443, 1440)
        : tcpSyn('198.51.100.10', '203.0.113.20', 40000, 443, 1460, { oddMss: variant.odd, ack: variant.ack });
      tunOf(a, 'pqsite').inject(syn);
      await until(() => tunOf(b, 'pqsite').delivered.length === 1);
      const got = tunOf(b, 'pqsite').delivered[0]!;
      const f = newFlow();
      expect(parseFlow(got, f)).toBe(true);
      const optOff = f.l4Off + 20 + (variant.odd ? 1 : 0);
      expect(got[optOff]).toBe(2);
      expect((got[optOff + 2]! << 8) | got[optOff + 3]!).toBe(1360);
      const stored = (got[f.l4Off + 16]! << 8) | got[f.l4Off + 17]!;
      expect(stored).toBe(l4Checksum(got)); // the incremental update equals a full recomputation
      expect(a.dp.stats.mssClamped).toBe(1);
    });
  }

  it('leaves smaller MSS values and non-SYN segments alone', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net, { mss: 1360 });
    await installChild(a, b, route);
    const small = tcpSyn('198.51.100.10', '203.0.113.20', 40000, 443, 1200);
    tunOf(a, 'pqsite').inject(small);
    await until(() => tunOf(b, 'pqsite').delivered.length === 1);
    expect(hexOf(tunOf(b, 'pqsite').delivered[0]!)).toBe(hexOf(small));
    expect(a.dp.stats.mssClamped).toBe(0);
  });
});

describe('path MTU (RFC 4301 §8.2)', () => {
  it('IPv4 with DF too big for the path after ESP overhead: ICMP fragmentation-needed back to the sender', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net, { pathMtu: 1200 });
    await installChild(a, b, route);
    const big = udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(1300), { df: true });
    tunOf(a, 'pqsite').inject(big);
    expect(net.sent).toBe(0);
    const icmps = tunOf(a, 'pqsite').delivered;
    expect(icmps.length).toBe(1);
    const icmp = icmps[0]!;
    const f = newFlow();
    expect(parseFlow(icmp, f)).toBe(true);
    expect(f.proto).toBe(1);
    expect(icmp.subarray(12, 16)).toEqual(big.subarray(16, 20)); // from the original destination
    expect(icmp.subarray(16, 20)).toEqual(big.subarray(12, 16)); // to the sender
    expect(internetChecksum(icmp, 0, 20)).toBe(0);
    expect(internetChecksum(icmp, 20, icmp.length - 20)).toBe(0);
    expect([icmp[20], icmp[21]]).toEqual([3, 4]);
    // GCM-16: 1200 - 20 (IPv4) - 8 (UDP) = 1172 for ESP; minus 8+8+16 = 1140 padded payload; -2 trailer.
    const mtu = (icmp[26]! << 8) | icmp[27]!;
    expect(mtu).toBe(1138);
    expect(icmp.subarray(28, 48)).toEqual(big.subarray(0, 20)); // quotes the offending header
    // A packet of exactly that size passes.
    tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(mtu - 28), { df: true }));
    expect(net.sent).toBe(1);
    expect(a.dp.stats.tooBig).toBe(1);
  });

  it('without DF the packet goes out (the outer datagram is fragmented instead)', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net, { pathMtu: 1200 });
    await installChild(a, b, route);
    tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(1300)));
    await until(() => tunOf(b, 'pqsite').delivered.length === 1);
    expect(tunOf(a, 'pqsite').delivered.length).toBe(0);
  });

  it('IPv6: Packet Too Big with the usable MTU', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net, { pathMtu: 1400 });
    const c = { ...route, aNet: ['2001:db8:a::/48'], bNet: ['2001:db8:b::/48'] };
    await installChild(a, b, c);
    tunOf(a, 'pqsite').inject(udp('2001:db8:a::10', '2001:db8:b::20', 1, 2, new Uint8Array(1320)));
    const icmp = tunOf(a, 'pqsite').delivered[0]!;
    expect(icmp[6]).toBe(58);
    expect(icmp[40]).toBe(2);
    const mtu = new DataView(icmp.buffer, icmp.byteOffset).getUint32(44);
    expect(mtu).toBe(1338); // 1400 - 28 outer - 8 - 8 - 16, aligned, - 2
    expect((icmp[42]! << 8) | icmp[43]!).toBe(l4Checksum(icmp));
  });
});

describe('expiry and counters', () => {
  it('soft and hard packet limits raise expire events once; a hard-expired SA sends nothing', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, { ...route, limits: { softPackets: 3, hardPackets: 5 } });
    for (let i = 0; i < 8; i++) tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(10)));
    await Promise.resolve();
    expect(a.events).toEqual([
      { kind: 'expire', spi: route.spiAB, direction: 'out', hard: false },
      { kind: 'expire', spi: route.spiAB, direction: 'out', hard: true },
      { kind: 'acquire', reqid: 1 },
    ]);
    expect(net.sent).toBe(5);
    expect(a.dp.stats.noSa).toBe(3);
  });

  it('sequence counter: soft expire at 15/16 of the space, hard expire and no wrap at 2^32-1', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    // Reach into the SA to skip four billion packets.
    const esp = (a.dp as unknown as { sadOut: Map<number, { esp: EspSa }> }).sadOut.get(route.spiAB)!.esp;
    esp.seq = 0xf000_0000 - 1;
    tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(10)));
    esp.seq = 0xffff_fffe;
    tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(10)), udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(10)));
    await Promise.resolve();
    expect(a.events.slice(0, 2)).toEqual([
      { kind: 'expire', spi: route.spiAB, direction: 'out', hard: false },
      { kind: 'expire', spi: route.spiAB, direction: 'out', hard: true },
    ]);
    expect(net.sent).toBe(2);
    expect(a.dp.stats.expiredDrops).toBe(1);
  });
});

describe('robustness: bad input is dropped and counted, never thrown', () => {
  it('garbage, truncated, unknown-SPI and tampered datagrams', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    const captured: Uint8Array[] = [];
    net.tap = (d) => captured.push(d);
    tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(100)));
    await until(() => tunOf(b, 'pqsite').delivered.length === 1);
    const good = captured[0]!;
    const rx = b.dp;
    for (let n = 0; n < good.length; n++) rx.receiveEsp(good.subarray(0, n), A_OUTER, B_OUTER);
    for (let i = 0; i < 300; i++) rx.receiveEsp(new Uint8Array(randomBytes(i)), A_OUTER, B_OUTER);
    const tampered = good.slice();
    tampered[7] = 77; // a fresh sequence number passes the replay check, then fails the ICV
    rx.receiveEsp(tampered, A_OUTER, B_OUTER);
    rx.receiveEsp(good, A_OUTER, B_OUTER); // replay
    const q = (await rx.querySa(route.spiAB, 'in'))!;
    expect(q.packets).toBe(1);
    expect(q.replayDrops).toBeGreaterThanOrEqual(1);
    expect(q.authFailures).toBe(1);
    expect(rx.stats.malformedIn).toBe(8 + 8); // the 0..7-byte prefixes and random 0..7-byte datagrams
    expect(rx.stats.unknownSpi).toBeGreaterThan(250);
    expect(rx.stats.internalErrors).toBe(0);
    expect(rx.malformedCount(route.spiAB, 'in')).toBeGreaterThan(0);
    // Non-IP junk from the TUN side.
    tunOf(a, 'pqsite').inject(new Uint8Array([0x45, 0, 0]), new Uint8Array(randomBytes(60)).fill(0x70, 0, 1), new Uint8Array(0));
    expect(a.dp.stats.malformedOut).toBe(3);
    expect(a.dp.stats.internalErrors).toBe(0);
  });

  it('a dummy packet (next header 59) and a wrong inner version are dropped', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    const forger = new EspSa({ spi: route.spiAB, encrId: Encr.AES_GCM_16, encrKeyBits: 128, encrKey: Uint8Array.from({ length: 20 }, (_, i) => (route.spiAB * 31 + i * 7) & 0xff), integId: 0, integKey: new Uint8Array(0), esn: false, replayWindow: 0 });
    b.dp.receiveEsp(forger.encapsulate(new Uint8Array(30), 59)!, A_OUTER, B_OUTER);
    b.dp.receiveEsp(forger.encapsulate(ipv4('198.51.100.1', '203.0.113.1', 17, new Uint8Array(8)), 41)!, A_OUTER, B_OUTER);
    expect(b.dp.stats.dummyPackets).toBe(1);
    expect(b.dp.malformedCount(route.spiAB, 'in')).toBe(1);
    expect(tunOf(b, 'pqsite').delivered.length).toBe(0);
  });

  it('rejects SAs it cannot run and duplicate SPIs', async () => {
    const net = new MemoryNet();
    const [a, b] = pair(net);
    await installChild(a, b, route);
    const base = { spi: 0x5000, direction: 'in' as const, src: B_OUTER, dst: A_OUTER, encap: true, encrId: Encr.AES_GCM_16, encrKeyBits: 128, encrKey: new Uint8Array(20), integId: 0, integKey: new Uint8Array(0), esn: false, replayWindow: 32, reqid: 9, ifId: 7, tunnel: 'site' };
    await expect(a.dp.addSa({ ...base, encap: false })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    await expect(a.dp.addSa({ ...base, spi: route.spiBA })).rejects.toMatchObject({ code: 'ERR_SA_EXISTS' });
    await expect(a.dp.addSa({ ...base, encrId: 3 })).rejects.toMatchObject({ code: 'ERR_ESP_ALGORITHM' });
    await a.dp.updateSa(route.spiAB, 'out', { address: '192.0.2.1', port: 4500 }, { address: '192.0.2.2', port: 31000 });
    const seen: number[] = [];
    net.attach({ address: '192.0.2.2', port: 31000 }, () => seen.push(1));
    tunOf(a, 'pqsite').inject(udp('198.51.100.10', '203.0.113.20', 1, 2, new Uint8Array(1)));
    await until(() => seen.length === 1); // NAT mapping change followed
  });
});
