import { isIPv4, isIPv6 } from 'node:net';

const cache = new Map<string, Uint8Array>();

/**
 * IPv4/IPv6 literal → network-order bytes (4 or 16). Throws TypeError on bad
 * input. Memoised (bounded): the same few addresses are converted for every
 * NAT-D hash and cookie.
 */
export function ipToBytes(addr: string): Uint8Array {
  const hit = cache.get(addr);
  if (hit) return hit.slice();
  const v = parseIp(addr);
  if (cache.size >= 4096) cache.clear();
  cache.set(addr, v);
  return v.slice();
}

function parseIp(addr: string): Uint8Array {
  if (isIPv4(addr)) return new Uint8Array(addr.split('.').map((x) => Number(x)));
  if (isIPv6(addr)) {
    let s = addr;
    const zone = s.indexOf('%');
    if (zone >= 0) s = s.slice(0, zone);
    // Embedded IPv4 tail (::ffff:192.0.2.1)
    let tail: number[] = [];
    const lastColon = s.lastIndexOf(':');
    if (s.includes('.', lastColon)) {
      tail = s.slice(lastColon + 1).split('.').map(Number);
      s = s.slice(0, lastColon + 1) + '0:0';
    }
    const [head, rest] = s.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const r = rest !== undefined ? (rest ? rest.split(':') : []) : [];
    const fill = rest !== undefined ? 8 - h.length - r.length : 0;
    const groups = [...h, ...Array(fill).fill('0'), ...r].map((g) => parseInt(g, 16));
    const out = new Uint8Array(16);
    groups.forEach((g, i) => {
      out[2 * i] = g >> 8;
      out[2 * i + 1] = g & 0xff;
    });
    if (tail.length === 4) out.set(tail, 12);
    return out;
  }
  throw new TypeError(`not an IP address: ${JSON.stringify(addr)}`);
}

/** Bytes (4 or 16) → canonical textual form (RFC 5952 for IPv6). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new TypeError(`bytesToIp: expected 4 or 16 bytes, got ${b.length}`);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  // longest run of zero groups (length >= 2) becomes '::'
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = g.map((x) => x.toString(16));
  if (best < 0) return hexes.join(':');
  return `${hexes.slice(0, best).join(':')}::${hexes.slice(best + bestLen).join(':')}`;
}

export function ipFamily(addr: string): 4 | 6 | 0 {
  return isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
}
