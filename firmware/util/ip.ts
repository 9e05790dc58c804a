/**
 * IP literal syntax checks with exactly the acceptance of node:net's isIPv4 /
 * isIPv6 / isIP (test/util/ip-literal.test.ts compares them on generated
 * strings), without their regular expressions: node's IPv6 expression is a
 * large alternation that V8 compiles on its first use, ~12 M instructions
 * (14 % of a whole `node -e 0`), which under QEMU TCG cost the daemon ~0.1 s
 * of its start (docs/image.md "Node start-up"). IPv6 text form: RFC 4291
 * section 2.2 (with the RFC 4007 section 11 zone suffix node accepts).
 */

/** Dotted-quad IPv4: four decimal 0-255, no leading zeros (as node's isIPv4). */
export function isIPv4(s: string): boolean {
  return v4End(s, 0) === s.length;
}

/**
 * Index after a dotted quad starting at `i` that ends exactly at s.length or
 * before a non-digit, non-dot character; -1 if there is none.
 */
function v4End(s: string, i: number): number {
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (s.charCodeAt(i) !== 0x2e) return -1;
      i++;
    }
    const start = i;
    let v = 0;
    while (i < s.length && i - start < 4) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      i++;
    }
    const n = i - start;
    if (n === 0 || n > 3 || v > 255 || (n > 1 && s.charCodeAt(start) === 0x30)) return -1;
  }
  return i;
}

function isHexGroup(s: string, from: number, to: number): boolean {
  const n = to - from;
  if (n < 1 || n > 4) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) return false;
  }
  return true;
}

/** Zone suffix characters node accepts after '%': [0-9a-zA-Z.:-], at least one. */
function isZone(s: string, from: number): boolean {
  if (from >= s.length) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x3a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x2e)) return false;
  }
  return true;
}

/**
 * IPv6 text form: 8 groups of 1-4 hex digits, or fewer with one '::' standing
 * for at least one zero group; the last 32 bits may be a dotted quad (two
 * groups); an optional %zone. As node's isIPv6.
 */
export function isIPv6(s: string): boolean {
  const pct = s.indexOf('%');
  if (pct >= 0 && !isZone(s, pct + 1)) return false;
  const end = pct >= 0 ? pct : s.length;
  const dc = s.indexOf('::');
  const compressed = dc >= 0 && dc < end;
  if (compressed && s.indexOf('::', dc + 1) >= 0 && s.indexOf('::', dc + 1) < end) return false;
  let groups = 0;
  // Walk the groups before and after the '::' (if any).
  const spans: Array<[number, number]> = compressed ? [[0, dc], [dc + 2, end]] : [[0, end]];
  for (let k = 0; k < spans.length; k++) {
    const [from, to] = spans[k]!;
    if (from === to) continue; // empty side of '::'
    const last = k === spans.length - 1;
    let i = from;
    for (;;) {
      let j = i;
      while (j < to && s.charCodeAt(j) !== 0x3a) j++;
      if (j === to && last && s.lastIndexOf('.', to - 1) >= i) {
        // The final group is a dotted quad: 32 bits, two groups.
        if (v4End(s, i) !== to) return false;
        groups += 2;
        break;
      }
      if (!isHexGroup(s, i, j)) return false;
      groups++;
      if (j === to) break;
      i = j + 1;
    }
    if (groups > 8) return false;
  }
  return compressed ? groups <= 7 : groups === 8;
}

/** 4, 6 or 0, as node's isIP. */
export function isIP(s: string): 0 | 4 | 6 {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0;
}

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

/** The address family of an IP literal (4, 6, or 0 for none): isIP under the name the codebase uses. */
export const ipFamily = isIP;
