/**
 * TCP receive coalescing for TUN writes (generic receive offload done in
 * userspace, as wireguard-go does): consecutive decrypted TCP segments of one
 * flow become one large segment handed to the kernel with a virtio_net_hdr
 * (IFF_VNET_HDR) that says "GSO TCP, segment size N, checksum partial". The
 * host stack then runs its TCP receive path once per 64 KiB instead of once
 * per 1400-byte packet — the largest cost on a receiving gateway (see
 * docs/dataplane.md), and what Linux's own GRO does for NIC traffic.
 *
 * Coalescing rules (the ones Linux's tcp_gro_receive applies):
 *   IPv4 without options or fragmentation, or IPv6 with TCP as the first next
 *   header; same addresses, ports, TOS/TTL and DF (IPv4) or version/class/flow
 *   label/hop limit (IPv6); same TCP header length and option bytes, ACK
 *   number and window; flags exactly ACK (the last may add PSH; PSH ends a run);
 *   consecutive sequence numbers; every segment the size of the first except a
 *   shorter last one; at most 64 segments and 65535 bytes.
 * Anything else is written as it is, in its original order.
 *
 * The inner TCP checksums are not verified here (ESP already authenticated
 * every packet, RFC 4303 §3.4.4): the merged packet carries the pseudo-header
 * sum with VIRTIO_NET_HDR_F_NEEDS_CSUM, like a locally generated TSO packet.
 * If the kernel forwards it, it re-segments it (software GSO).
 */

/** sizeof(struct virtio_net_hdr) (linux/virtio_net.h). */
export const VNET_HDR_LEN = 10;
const F_NEEDS_CSUM = 1;
const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
const MAX_SEGS = 64;
const MAX_LEN = 65535;

interface Seg {
  v6: boolean;
  ipHl: number;
  thl: number;
  seq: number;
  payLen: number;
  flags: number;
}

/** A coalescable TCP segment (see the rules above), or undefined. */
function segInfo(p: Uint8Array): Seg | undefined {
  const n = p.length;
  if (n < 40) return undefined;
  const ver = p[0]! >> 4;
  let ipHl: number;
  let v6: boolean;
  if (ver === 4) {
    if (p[0] !== 0x45 || p[9] !== 6 || ((p[6]! & 0x3f) | p[7]!) !== 0 || ((p[2]! << 8) | p[3]!) !== n) return undefined;
    ipHl = 20;
    v6 = false;
  } else if (ver === 6) {
    if (n < 60 || p[6] !== 6 || ((p[4]! << 8) | p[5]!) !== n - 40) return undefined;
    ipHl = 40;
    v6 = true;
  } else return undefined;
  const thl = (p[ipHl + 12]! >> 4) * 4;
  const flags = p[ipHl + 13]!;
  const payLen = n - ipHl - thl;
  if (thl < 20 || payLen <= 0 || (flags & ~(TCP_ACK | TCP_PSH)) !== 0 || (flags & TCP_ACK) === 0 || (p[ipHl + 12]! & 0x0f) !== 0) return undefined;
  const seq = ((p[ipHl + 4]! << 24) | (p[ipHl + 5]! << 16) | (p[ipHl + 6]! << 8) | p[ipHl + 7]!) >>> 0;
  return { v6, ipHl, thl, seq, payLen, flags };
}

/** Same flow and mergeable headers (everything but length, IPv4 id/checksum, seq, PSH, TCP checksum). */
function sameFlow(a: Uint8Array, sa: Seg, b: Uint8Array, sb: Seg): boolean {
  if (sa.v6 !== sb.v6 || sa.thl !== sb.thl) return false;
  if (sa.v6) {
    for (let i = 0; i < 4; i++) if (a[i] !== b[i]) return false; // version, traffic class, flow label
    if (a[7] !== b[7]) return false;
    for (let i = 8; i < 40; i++) if (a[i] !== b[i]) return false;
  } else {
    if (a[1] !== b[1] || (a[6]! & 0x40) !== (b[6]! & 0x40) || a[8] !== b[8]) return false;
    for (let i = 12; i < 20; i++) if (a[i] !== b[i]) return false;
  }
  const t = sa.ipHl;
  for (let i = 0; i < 4; i++) if (a[t + i] !== b[t + i]) return false; // ports
  for (let i = 8; i < 12; i++) if (a[t + i] !== b[t + i]) return false; // ack
  if (a[t + 14] !== b[t + 14] || a[t + 15] !== b[t + 15]) return false; // window
  for (let i = 20; i < sa.thl; i++) if (a[t + i] !== b[t + i]) return false; // options (timestamps...)
  return true;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

function sum16(p: Uint8Array, off: number, len: number, acc: number): number {
  for (let i = 0; i < len; i += 2) acc += (p[off + i]! << 8) | p[off + i + 1]!;
  return acc;
}

export interface GroResult {
  /** Packets to write, in order: merged ones and untouched ones. */
  pkts: Uint8Array[];
  /** count * VNET_HDR_LEN bytes: each packet's virtio_net_hdr (zero for untouched packets). */
  hdrs: Uint8Array;
  count: number;
  /** Input packets that went into merged packets. */
  merged: number;
}

export class TcpGro {
  private hdrs = new Uint8Array(64 * VNET_HDR_LEN);
  private readonly out: Uint8Array[] = [];

  /** Coalesce pkts[0..count). The result (and its arrays) is valid until the next call. */
  coalesce(pkts: Uint8Array[], count: number): GroResult {
    if (this.hdrs.length < count * VNET_HDR_LEN) this.hdrs = new Uint8Array(count * VNET_HDR_LEN);
    const hdrs = this.hdrs;
    const out = this.out;
    let n = 0;
    let merged = 0;
    let i = 0;
    while (i < count) {
      const p = pkts[i]!;
      const s = segInfo(p);
      let j = i + 1;
      if (s) {
        const seg = s.payLen;
        let total = p.length;
        let last = seg;
        let next = (s.seq + seg) >>> 0;
        let psh = (s.flags & TCP_PSH) !== 0;
        let lastFlags = s.flags;
        while (j < count && j - i < MAX_SEGS && !psh && last === seg) {
          const q = pkts[j]!;
          const t = segInfo(q);
          if (!t || t.seq !== next || t.payLen > seg || total + t.payLen > MAX_LEN || !sameFlow(p, s, q, t)) break;
          total += t.payLen;
          last = t.payLen;
          next = (next + t.payLen) >>> 0;
          psh = (t.flags & TCP_PSH) !== 0;
          lastFlags = t.flags;
          j++;
        }
        if (j - i > 1) {
          out[n] = this.merge(pkts, i, j, s, total, lastFlags);
          this.gsoHeader(hdrs, n * VNET_HDR_LEN, s, seg);
          n++;
          merged += j - i;
          i = j;
          continue;
        }
      }
      out[n] = p;
      hdrs.fill(0, n * VNET_HDR_LEN, (n + 1) * VNET_HDR_LEN);
      n++;
      i++;
    }
    return { pkts: out, hdrs, count: n, merged };
  }

  private merge(pkts: Uint8Array[], from: number, to: number, s: Seg, total: number, lastFlags: number): Uint8Array {
    const first = pkts[from]!;
    const hl = s.ipHl + s.thl;
    const m = Buffer.allocUnsafe(total);
    m.set(first.subarray(0, hl), 0);
    let off = hl;
    for (let k = from; k < to; k++) {
      const q = pkts[k]!;
      m.set(q.subarray(hl), off); // same header length in every segment (sameFlow)
      off += q.length - hl;
    }
    const t = s.ipHl;
    m[t + 13] = (m[t + 13]! & ~TCP_PSH) | (lastFlags & TCP_PSH);
    const tcpLen = total - s.ipHl;
    let pseudo: number;
    if (s.v6) {
      m[4] = (tcpLen >> 8) & 0xff;
      m[5] = tcpLen & 0xff;
      pseudo = sum16(m, 8, 32, 0) + 6 + (tcpLen >>> 16) + (tcpLen & 0xffff);
    } else {
      m[2] = total >> 8;
      m[3] = total & 0xff;
      m[10] = 0;
      m[11] = 0;
      const ck = ~fold(sum16(m, 0, 20, 0)) & 0xffff;
      m[10] = ck >> 8;
      m[11] = ck & 0xff;
      pseudo = sum16(m, 12, 8, 0) + 6 + tcpLen;
    }
    // CHECKSUM_PARTIAL: the checksum field holds the (uncomplemented) pseudo-header sum; the kernel adds the rest.
    const ps = fold(pseudo);
    m[t + 16] = ps >> 8;
    m[t + 17] = ps & 0xff;
    return m;
  }

  private gsoHeader(h: Uint8Array, o: number, s: Seg, segSize: number): void {
    // struct virtio_net_hdr, little-endian (the TUN default on little-endian hosts; x86, arm64).
    const hl = s.ipHl + s.thl;
    h[o] = F_NEEDS_CSUM;
    h[o + 1] = s.v6 ? GSO_TCPV6 : GSO_TCPV4;
    h[o + 2] = hl & 0xff;
    h[o + 3] = hl >> 8;
    h[o + 4] = segSize & 0xff;
    h[o + 5] = segSize >> 8;
    h[o + 6] = s.ipHl & 0xff; // csum_start
    h[o + 7] = 0;
    h[o + 8] = 16; // csum_offset: TCP checksum field
    h[o + 9] = 0;
  }
}
