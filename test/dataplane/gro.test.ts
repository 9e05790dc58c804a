/**
 * Userspace TCP GRO for TUN writes (firmware/dataplane/tun/gro.ts): runs of
 * segments merge into one packet whose headers, payload and virtio_net_hdr
 * are what the kernel expects (the checksum the kernel completes from the
 * partial one equals a from-scratch TCP checksum), and everything the rules
 * exclude stays untouched and in order. The real kernel's side is covered by
 * test/dataplane/tun-real.test.ts and the interop traffic tests.
 */
import { describe, expect, it } from 'vitest';
import { TcpGro, VNET_HDR_LEN } from '../../firmware/dataplane/tun/gro.js';
import { internetChecksum } from '../../firmware/dataplane/ip.js';
import { ipv4, ipv6, l4Checksum, udp } from './helpers.js';

interface SegOpts {
  seq: number;
  len: number;
  flags?: number;
  ack?: number;
  ts?: number;
  sport?: number;
  v6?: boolean;
  ttl?: number;
}

const ACK = 0x10;
const PSH = 0x08;

/** A TCP segment with a timestamp option (12 option bytes), valid checksums, payload bytes seq-dependent. */
function seg(o: SegOpts): Uint8Array {
  const t = new Uint8Array(32 + o.len);
  const v = new DataView(t.buffer);
  v.setUint16(0, o.sport ?? 40000);
  v.setUint16(2, 5201);
  v.setUint32(4, o.seq >>> 0);
  v.setUint32(8, o.ack ?? 0x01020304);
  t[12] = 8 << 4;
  t[13] = o.flags ?? ACK;
  v.setUint16(14, 502);
  t.set([1, 1, 8, 10], 20);
  v.setUint32(24, o.ts ?? 1000);
  v.setUint32(28, 2000);
  for (let i = 0; i < o.len; i++) t[32 + i] = (o.seq + i) & 0xff;
  const p = o.v6 ? ipv6('2001:db8::1', '2001:db8::2', 6, t) : ipv4('198.51.100.10', '198.51.100.130', 6, t, { df: true, ttl: o.ttl ?? 64 });
  const l4 = o.v6 ? 40 : 20;
  const c = l4Checksum(p);
  p[l4 + 16] = c >> 8;
  p[l4 + 17] = c & 0xff;
  return p;
}

function run(start: number, n: number, len: number, extra: Partial<SegOpts> = {}): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => seg({ seq: start + i * len, len, ...extra }));
}

/** What the kernel does with NEEDS_CSUM: checksum from csum_start over the rest, with the field as given. */
function kernelChecksum(m: Uint8Array, start: number): number {
  return internetChecksum(m, start, m.length - start);
}

const hdr = (r: { hdrs: Uint8Array }, i: number) => Array.from(r.hdrs.subarray(i * VNET_HDR_LEN, (i + 1) * VNET_HDR_LEN));

describe('userspace TCP GRO for TUN writes', () => {
  it('merges a run into one GSO packet the kernel can check and re-segment', () => {
    const segs = run(1_000_000, 40, 1348);
    const r = new TcpGro().coalesce(segs, segs.length);
    expect(r.count).toBe(1);
    expect(r.merged).toBe(40);
    const m = r.pkts[0]!;
    expect(m.length).toBe(52 + 40 * 1348);
    expect((m[2]! << 8) | m[3]!).toBe(m.length);
    expect(internetChecksum(m, 0, 20)).toBe(0); // valid IPv4 header checksum
    // virtio_net_hdr: NEEDS_CSUM, GSO_TCPV4, hdr_len 52, gso_size 1348, csum_start 20, csum_offset 16 (little-endian)
    expect(hdr(r, 0)).toEqual([1, 1, 52, 0, 1348 & 0xff, 1348 >> 8, 20, 0, 16, 0]);
    // The kernel completes the partial checksum: must equal a from-scratch TCP checksum of the merged packet.
    const completed = kernelChecksum(m, 20);
    const copy = new Uint8Array(m);
    expect(completed).toBe(l4Checksum(copy));
    // Re-segmenting at gso_size gives back the original payloads, in order.
    for (let i = 0; i < 40; i++) expect(Buffer.from(m.subarray(52 + i * 1348, 52 + (i + 1) * 1348)).equals(Buffer.from(segs[i]!.subarray(52)))).toBe(true);
    // Headers other than length/checksums are the first segment's.
    expect(Buffer.from(m.subarray(4, 10)).equals(Buffer.from(segs[0]!.subarray(4, 10)))).toBe(true);
    expect(Buffer.from(m.subarray(20, 36)).equals(Buffer.from(segs[0]!.subarray(20, 36)))).toBe(true);
  });

  it('IPv6: payload length and the pseudo-header with the 32-bit length', () => {
    const segs = run(5, 10, 1200, { v6: true });
    const r = new TcpGro().coalesce(segs, segs.length);
    expect(r.count).toBe(1);
    const m = r.pkts[0]!;
    expect((m[4]! << 8) | m[5]!).toBe(m.length - 40);
    expect(hdr(r, 0)).toEqual([1, 4, 72, 0, 1200 & 0xff, 1200 >> 8, 40, 0, 16, 0]);
    expect(kernelChecksum(m, 40)).toBe(l4Checksum(new Uint8Array(m)));
  });

  it('PSH ends a run (the PSH segment is its last); a shorter segment ends it too', () => {
    const a = run(0, 3, 1000);
    const psh = seg({ seq: 3000, len: 1000, flags: ACK | PSH });
    const b = run(4000, 2, 1000);
    const short = seg({ seq: 6000, len: 300 });
    const c = run(6300, 2, 1000);
    const all = [...a, psh, ...b, short, ...c];
    const r = new TcpGro().coalesce(all, all.length);
    expect(r.count).toBe(3);
    expect(r.pkts[0]!.length).toBe(52 + 4000);
    expect(r.pkts[0]![20 + 13]).toBe(ACK | PSH);
    expect(r.pkts[1]!.length).toBe(52 + 2300); // b + short
    expect(r.pkts[1]![20 + 13]).toBe(ACK);
    expect(r.pkts[2]!.length).toBe(52 + 2000);
    expect(r.merged).toBe(all.length);
    for (let i = 0; i < 3; i++) expect(kernelChecksum(r.pkts[i]!, 20)).toBe(l4Checksum(new Uint8Array(r.pkts[i]!)));
  });

  it('leaves alone what must not merge, keeping the order', () => {
    const syn = seg({ seq: 100, len: 0, flags: 0x02 });
    const fin = seg({ seq: 0, len: 100, flags: ACK | 0x01 });
    const u = udp('198.51.100.10', '198.51.100.130', 1, 2, new Uint8Array(100));
    const gap = [seg({ seq: 0, len: 500 }), seg({ seq: 600, len: 500 })]; // sequence gap
    const otherFlow = [seg({ seq: 0, len: 500 }), seg({ seq: 500, len: 500, sport: 40001 })];
    const otherAck = [seg({ seq: 0, len: 500 }), seg({ seq: 500, len: 500, ack: 7 })];
    const otherTs = [seg({ seq: 0, len: 500 }), seg({ seq: 500, len: 500, ts: 1001 })];
    const otherTtl = [seg({ seq: 0, len: 500 }), seg({ seq: 500, len: 500, ttl: 63 })];
    const bigger = [seg({ seq: 0, len: 500 }), seg({ seq: 500, len: 600 })];
    const pureAck = [seg({ seq: 0, len: 0 }), seg({ seq: 0, len: 0 })];
    const frag = seg({ seq: 0, len: 500 });
    frag[6] = 0x20; // MF
    const all = [syn, fin, u, ...gap, ...otherFlow, ...otherAck, ...otherTs, ...otherTtl, ...bigger, ...pureAck, frag];
    const r = new TcpGro().coalesce(all, all.length);
    expect(r.count).toBe(all.length);
    expect(r.merged).toBe(0);
    for (let i = 0; i < all.length; i++) {
      expect(r.pkts[i]).toBe(all[i]); // the very same packets
      expect(hdr(r, i)).toEqual(new Array(10).fill(0));
    }
  });

  it('caps a merged packet at 64 segments and 65535 bytes', () => {
    const many = run(0, 100, 500);
    const r = new TcpGro().coalesce(many, many.length);
    expect(r.pkts.slice(0, r.count).map((p) => (p.length - 52) / 500)).toEqual([64, 36]);
    const big = run(0, 60, 1400);
    const r2 = new TcpGro().coalesce(big, big.length);
    for (const p of r2.pkts.slice(0, r2.count)) expect(p.length).toBeLessThanOrEqual(65535);
    expect(r2.pkts.slice(0, r2.count).reduce((s, p) => s + p.length - 52, 0)).toBe(60 * 1400);
  });
});
