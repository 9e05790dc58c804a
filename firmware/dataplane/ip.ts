/**
 * The little IP the data plane needs: flow extraction for SPD lookups,
 * checksums, TCP MSS clamping and ICMP "too big" errors.
 *
 *   RFC 791 / RFC 8200       IPv4 / IPv6 headers; IPv6 extension headers are
 *                            walked to the upper-layer protocol (RFC 8200 §4).
 *   RFC 4301 §4.4.1.1, §7    selectors: addresses, next-layer protocol, ports;
 *                            non-initial fragments carry no ports.
 *   RFC 7296 §3.13.1         ICMP type/code take the place of a port
 *                            (type in the high byte, code in the low byte).
 *   RFC 1071, RFC 1624       Internet checksum; incremental update
 *                            HC' = ~(~HC + ~m + m').
 *   RFC 792, RFC 1191 §4     ICMP Destination Unreachable / Fragmentation
 *                            Needed (type 3 code 4) with the next-hop MTU.
 *   RFC 4443 §3.2            ICMPv6 Packet Too Big (type 2).
 *   RFC 1812 §4.3.2.3        an ICMPv4 error carries as much of the original
 *                            as fits in 576 bytes; RFC 4443 §2.4(c): 1280 for v6.
 *   RFC 1122 §3.2.2          no ICMP error about an ICMP error or a non-initial
 *                            fragment.
 */

export const Proto = { ICMP: 1, TCP: 6, UDP: 17, IPV6_IN_IP: 41, ICMPV6: 58, SCTP: 132, UDPLITE: 136, NONE: 59 } as const;

/** What the SPD and the pipeline need to know about a packet; offsets point into the packet. */
export interface Flow {
  family: 4 | 6;
  /** Length from the IP header (total length / 40 + payload length); <= packet length. */
  length: number;
  /** Upper-layer protocol after IPv6 extension headers. */
  proto: number;
  srcOff: number;
  dstOff: number;
  /** Offset of the upper-layer header, -1 for non-initial fragments or when truncated. */
  l4Off: number;
  /** Source/destination port (or ICMP type<<8|code for both); -1 when there are none. */
  sport: number;
  dport: number;
  /** IPv4 Don't Fragment; always true for IPv6 (routers never fragment). */
  df: boolean;
  /** First fragment or unfragmented. */
  firstFragment: boolean;
}

export function newFlow(): Flow {
  return { family: 4, length: 0, proto: 0, srcOff: 0, dstOff: 0, l4Off: -1, sport: -1, dport: -1, df: false, firstFragment: true };
}

function hasPorts(proto: number): boolean {
  return proto === Proto.TCP || proto === Proto.UDP || proto === Proto.SCTP || proto === Proto.UDPLITE;
}

/** IPv6 extension headers walked to find the upper layer (RFC 8200 §4.1). */
const V6_EXT = new Set([0, 43, 60, 135, 139, 140]);

/**
 * Fill `f` from an IPv4/IPv6 packet. Returns false for anything that is not
 * a well-formed IP packet (wrong version, short header, length fields that
 * exceed the buffer), which the pipeline drops and counts.
 */
export function parseFlow(pkt: Uint8Array, f: Flow): boolean {
  const n = pkt.length;
  if (n < 1) return false;
  const version = pkt[0]! >> 4;
  let off: number;
  let proto: number;
  if (version === 4) {
    if (n < 20) return false;
    const ihl = (pkt[0]! & 0x0f) * 4;
    const total = (pkt[2]! << 8) | pkt[3]!;
    if (ihl < 20 || total < ihl || total > n) return false;
    f.family = 4;
    f.length = total;
    f.srcOff = 12;
    f.dstOff = 16;
    f.df = (pkt[6]! & 0x40) !== 0;
    const fragOff = ((pkt[6]! & 0x1f) << 8) | pkt[7]!;
    f.firstFragment = fragOff === 0;
    proto = pkt[9]!;
    off = f.firstFragment ? ihl : -1;
  } else if (version === 6) {
    if (n < 40) return false;
    const total = 40 + ((pkt[4]! << 8) | pkt[5]!);
    if (total > n) return false;
    f.family = 6;
    f.length = total;
    f.srcOff = 8;
    f.dstOff = 24;
    f.df = true;
    f.firstFragment = true;
    proto = pkt[6]!;
    off = 40;
    // Walk extension headers; bounded by the packet length.
    while (off >= 0) {
      if (V6_EXT.has(proto)) {
        if (off + 8 > total) return false;
        const next = pkt[off]!;
        off += (pkt[off + 1]! + 1) * 8;
        proto = next;
      } else if (proto === 44) {
        // Fragment header (RFC 8200 §4.5): 8 bytes; offset in the high 13 bits of bytes 2-3.
        if (off + 8 > total) return false;
        const next = pkt[off]!;
        const fragOff = ((pkt[off + 2]! << 8) | pkt[off + 3]!) >> 3;
        f.firstFragment = fragOff === 0;
        proto = next;
        off = f.firstFragment ? off + 8 : -1;
      } else break;
    }
    if (off > total) return false;
  } else return false;
  f.proto = proto;
  f.l4Off = off;
  f.sport = -1;
  f.dport = -1;
  if (off >= 0) {
    if (hasPorts(proto) && off + 4 <= f.length) {
      f.sport = (pkt[off]! << 8) | pkt[off + 1]!;
      f.dport = (pkt[off + 2]! << 8) | pkt[off + 3]!;
    } else if ((proto === Proto.ICMP || proto === Proto.ICMPV6) && off + 2 <= f.length) {
      f.sport = f.dport = (pkt[off]! << 8) | pkt[off + 1]!;
    }
  }
  return true;
}

/** One's-complement sum of 16-bit words (RFC 1071), not folded or inverted. */
export function sum16(buf: Uint8Array, off: number, len: number, acc = 0): number {
  let i = off;
  const end = off + len;
  for (; i + 1 < end; i += 2) acc += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) acc += buf[i]! << 8;
  return acc;
}

/** Fold and invert a sum into a checksum field value. */
export function finishChecksum(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}

export function internetChecksum(buf: Uint8Array, off: number, len: number, acc = 0): number {
  return finishChecksum(sum16(buf, off, len, acc));
}

/** Sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 793 §3.1, RFC 8200 §8.1). */
export function pseudoHeaderSum(pkt: Uint8Array, f: Flow, l4Len: number): number {
  const alen = f.family === 4 ? 4 : 16;
  let acc = sum16(pkt, f.srcOff, alen);
  acc = sum16(pkt, f.dstOff, alen, acc);
  return acc + f.proto + l4Len;
}

/**
 * Replace bytes of a packet covered by a checksum and fix the checksum
 * incrementally (RFC 1624 eqn. 3), word by word: `base` is where the
 * checksummed region starts (word alignment), `csumOff` where the checksum is.
 */
function patchChecksummed(pkt: Uint8Array, base: number, csumOff: number, at: number, bytes: number[]): void {
  let hc = (pkt[csumOff]! << 8) | pkt[csumOff + 1]!;
  const first = base + ((at - base) & ~1);
  const last = base + ((at + bytes.length - 1 - base) & ~1);
  for (let w = first; w <= last; w += 2) {
    const m = (pkt[w]! << 8) | pkt[w + 1]!;
    for (let i = 0; i < bytes.length; i++) if (at + i === w || at + i === w + 1) pkt[at + i] = bytes[i]!;
    const m2 = (pkt[w]! << 8) | pkt[w + 1]!;
    let s = (~hc & 0xffff) + (~m & 0xffff) + m2;
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    hc = ~s & 0xffff;
  }
  pkt[csumOff] = hc >> 8;
  pkt[csumOff + 1] = hc & 0xff;
}

/**
 * Lower the MSS option of a TCP SYN (or SYN-ACK) to `mss` if it is larger,
 * fixing the TCP checksum incrementally. Returns true if the packet changed.
 */
export function clampMss(pkt: Uint8Array, f: Flow, mss: number): boolean {
  if (f.proto !== Proto.TCP || f.l4Off < 0) return false;
  const t = f.l4Off;
  if (t + 20 > f.length) return false;
  if ((pkt[t + 13]! & 0x02) === 0) return false; // not a SYN
  const hlen = (pkt[t + 12]! >> 4) * 4;
  const end = t + hlen;
  if (hlen < 20 || end > f.length) return false;
  let o = t + 20;
  while (o < end) {
    const kind = pkt[o]!;
    if (kind === 0) break; // end of option list
    if (kind === 1) {
      o++; // NOP
      continue;
    }
    if (o + 1 >= end) break;
    const len = pkt[o + 1]!;
    if (len < 2 || o + len > end) break; // malformed options: leave the packet alone
    if (kind === 2 && len === 4) {
      const cur = (pkt[o + 2]! << 8) | pkt[o + 3]!;
      if (cur <= mss) return false;
      patchChecksummed(pkt, t, t + 16, o + 2, [mss >> 8, mss & 0xff]);
      return true;
    }
    o += len;
  }
  return false;
}

function isIcmpError(pkt: Uint8Array, f: Flow): boolean {
  if (f.l4Off < 0) return false;
  if (f.proto === Proto.ICMP) {
    const type = pkt[f.l4Off]!;
    return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
  }
  if (f.proto === Proto.ICMPV6) return pkt[f.l4Off]! < 128;
  return false;
}

/**
 * The ICMP error telling the sender of `pkt` that it must send packets of at
 * most `mtu` bytes: IPv4 type 3 code 4 (RFC 1191), IPv6 Packet Too Big
 * (RFC 4443). It is addressed back to the sender, from the original
 * destination (a source the host accepts on the tunnel interface: its own
 * addresses would be martians there). Returns null where RFC 1122 forbids an
 * error (ICMP errors, non-initial fragments, multicast/unspecified sources).
 */
export function icmpTooBig(pkt: Uint8Array, f: Flow, mtu: number): Uint8Array | null {
  if (!f.firstFragment || isIcmpError(pkt, f)) return null;
  if (f.family === 4) {
    const s0 = pkt[12]!;
    if (s0 === 0 || s0 >= 224) return null;
    const quote = Math.min(f.length, 576 - 28);
    const out = new Uint8Array(28 + quote);
    out[0] = 0x45;
    out[1] = 0xc0; // DSCP CS6, as routers send their ICMP
    out[2] = out.length >> 8;
    out[3] = out.length & 0xff;
    out[8] = 64; // TTL
    out[9] = Proto.ICMP;
    out.set(pkt.subarray(16, 20), 12); // from the original destination
    out.set(pkt.subarray(12, 16), 16); // to the original source
    const ipc = internetChecksum(out, 0, 20);
    out[10] = ipc >> 8;
    out[11] = ipc & 0xff;
    out[20] = 3;
    out[21] = 4;
    out[26] = (mtu >> 8) & 0xff;
    out[27] = mtu & 0xff;
    out.set(pkt.subarray(0, quote), 28);
    const c = internetChecksum(out, 20, out.length - 20);
    out[22] = c >> 8;
    out[23] = c & 0xff;
    return out;
  }
  if (pkt[8]! === 0xff || isUnspecified(pkt, 8, 16)) return null;
  const quote = Math.min(f.length, 1280 - 48);
  const out = new Uint8Array(48 + quote);
  out[0] = 0x60;
  const plen = 8 + quote;
  out[4] = plen >> 8;
  out[5] = plen & 0xff;
  out[6] = Proto.ICMPV6;
  out[7] = 64;
  out.set(pkt.subarray(24, 40), 8);
  out.set(pkt.subarray(8, 24), 24);
  out[40] = 2; // Packet Too Big
  out[44] = (mtu >>> 24) & 0xff;
  out[45] = (mtu >>> 16) & 0xff;
  out[46] = (mtu >>> 8) & 0xff;
  out[47] = mtu & 0xff;
  out.set(pkt.subarray(0, quote), 48);
  let acc = sum16(out, 8, 32) + Proto.ICMPV6 + plen;
  acc = sum16(out, 40, plen, acc);
  const c = finishChecksum(acc);
  out[42] = c >> 8;
  out[43] = c & 0xff;
  return out;
}

function isUnspecified(b: Uint8Array, off: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (b[off + i] !== 0) return false;
  return true;
}

/** Compare `len` bytes of a at aOff with b (big-endian unsigned): <0, 0, >0. */
export function compareAddr(a: Uint8Array, aOff: number, b: Uint8Array, len: number): number {
  for (let i = 0; i < len; i++) {
    const d = a[aOff + i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Parse an IPv4/IPv6 literal into 4 or 16 bytes; throws TypeError on anything else. */
export function parseAddr(s: string): Uint8Array {
  if (s.includes(':')) {
    const halves = s.split('::');
    if (halves.length > 2) throw new TypeError(`bad IPv6 address ${s}`);
    const words = (part: string): number[] => {
      if (part === '') return [];
      const out: number[] = [];
      const groups = part.split(':');
      groups.forEach((g, i) => {
        if (i === groups.length - 1 && g.includes('.')) {
          const v4 = parseAddr(g);
          out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        } else {
          if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new TypeError(`bad IPv6 address ${s}`);
          out.push(parseInt(g, 16));
        }
      });
      return out;
    };
    const head = words(halves[0]!);
    const tail = halves.length === 2 ? words(halves[1]!) : [];
    const fill = 8 - head.length - tail.length;
    if ((halves.length === 1 && fill !== 0) || fill < 0 || (halves.length === 2 && fill < 1)) throw new TypeError(`bad IPv6 address ${s}`);
    const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
    const out = new Uint8Array(16);
    all.forEach((w, i) => {
      out[2 * i] = w >> 8;
      out[2 * i + 1] = w & 0xff;
    });
    return out;
  }
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new TypeError(`bad IPv4 address ${s}`);
  return new Uint8Array(parts.map(Number));
}

export function formatAddr(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // Compress the longest run of zero words (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return w.join(':');
  return `${w.slice(0, best).join(':')}::${w.slice(best + bestLen).join(':')}`;
}

function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function fromBig(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The fewest CIDR blocks covering exactly [start, end] (for routes from traffic selector ranges). */
export function rangeToCidrs(start: Uint8Array, end: Uint8Array, max = 256): string[] {
  if (start.length !== end.length || (start.length !== 4 && start.length !== 16)) throw new TypeError('rangeToCidrs: mismatched address families');
  const bits = BigInt(start.length * 8);
  let s = toBig(start);
  const e = toBig(end);
  const out: string[] = [];
  while (s <= e) {
    let size = 0n;
    while (size < bits && ((s >> size) & 1n) === 0n) size++;
    while (size > 0n && s + (1n << size) - 1n > e) size--;
    out.push(`${formatAddr(fromBig(s, start.length))}/${bits - size}`);
    if (out.length > max) throw new RangeError(`rangeToCidrs: more than ${max} blocks`);
    s += 1n << size;
  }
  return out;
}
