/**
 * The peer's health probes (Cloudflare-style ICMP echo inside the tunnel)
 * counted per tunnel by the userspace data plane: echo requests and
 * replies coming in are seen, echo replies going out are answers; other
 * traffic is not counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { A_OUTER, B_OUTER, MemoryNet, gateway, installChild, tunOf, until, udp, icmpEcho, type ChildParams, type Gateway } from './helpers.js';
import { internetChecksum } from '../../firmware/dataplane/ip.js';

const route: ChildParams = { reqid: 1, ifId: 7, tunnel: 'site', spiAB: 0xa0000001, spiBA: 0xb0000001, aNet: ['198.51.100.0/24'], bNet: ['203.0.113.0/24'] };

let open: Gateway[] = [];
afterEach(async () => {
  for (const g of open) await g.dp.close();
  open = [];
});

/** An ICMP echo reply (type 0) with a valid checksum. */
function echoReply(src: string, dst: string, id: number, seq: number): Uint8Array {
  const p = icmpEcho(src, dst, id, seq);
  p[20] = 0;
  p[22] = p[23] = 0;
  const c = internetChecksum(p, 20, p.length - 20);
  p[22] = c >> 8;
  p[23] = c & 0xff;
  return p;
}

describe('health-probe counters (userspace data plane)', () => {
  it('counts probes from the peer and the answers that go back, per tunnel, with the time of the last probe', async () => {
    const net = new MemoryNet();
    const a = gateway(net, A_OUTER);
    const b = gateway(net, B_OUTER);
    open.push(a, b);
    await installChild(a, b, route);
    expect(a.dp.probeCounters('site')).toBeUndefined();
    // The peer (b) probes a's side: echo request in; a's kernel answers with an echo reply out.
    tunOf(b, 'pqsite').inject(icmpEcho('203.0.113.1', '198.51.100.1', 9, 1));
    await until(() => tunOf(a, 'pqsite').delivered.length === 1);
    expect(a.dp.probeCounters('site')).toEqual({ probesSeen: 1, probesAnswered: 0, lastProbeAt: 1000 });
    tunOf(a, 'pqsite').inject(echoReply('198.51.100.1', '203.0.113.1', 9, 1));
    await until(() => tunOf(b, 'pqsite').delivered.length === 1);
    // Cloudflare's "reply" type: an echo reply comes in (with 0/0 selectors addressed to the
    // peer's side and routed back out; here within the specific selectors) and one goes back.
    tunOf(b, 'pqsite').inject(echoReply('203.0.113.1', '198.51.100.1', 9, 2));
    await until(() => tunOf(a, 'pqsite').delivered.length === 2);
    tunOf(a, 'pqsite').inject(echoReply('198.51.100.1', '203.0.113.1', 9, 2));
    await until(() => tunOf(b, 'pqsite').delivered.length === 2);
    expect(a.dp.probeCounters('site')).toEqual({ probesSeen: 2, probesAnswered: 2, lastProbeAt: 1000 });
    // Other traffic (UDP, our own echo requests going out) is not a probe.
    tunOf(a, 'pqsite').inject(udp('198.51.100.1', '203.0.113.1', 1000, 2000, new Uint8Array(10)));
    tunOf(a, 'pqsite').inject(icmpEcho('198.51.100.1', '203.0.113.1', 5, 1));
    tunOf(b, 'pqsite').inject(udp('203.0.113.1', '198.51.100.1', 2000, 1000, new Uint8Array(10)));
    await until(() => tunOf(a, 'pqsite').delivered.length === 3 && tunOf(b, 'pqsite').delivered.length === 4);
    expect(a.dp.probeCounters('site')).toEqual({ probesSeen: 2, probesAnswered: 2, lastProbeAt: 1000 });
    expect(a.dp.probeCounters('other')).toBeUndefined();
  });
});
