/**
 * Traffic selectors: config syntax, wire conversion and narrowing.
 *
 *  - RFC 7296 §3.13.1: TS_IPV4_ADDR_RANGE (7) / TS_IPV6_ADDR_RANGE (8), each an
 *    inclusive address range, an IP protocol (0 = any) and an inclusive port
 *    range. Start Port 65535 with End Port 0 means OPAQUE ports (the ports are
 *    not available, e.g. fragments). For ICMP the 16-bit "port" carries
 *    type (high octet) and code (low octet) (RFC 4301 §4.4.1.1).
 *  - RFC 7296 §2.9: the responder narrows the proposed selectors to a subset
 *    it accepts; an empty result is answered with TS_UNACCEPTABLE. The first
 *    selector of a TSi/TSr may describe the packet that triggered the SA; we
 *    keep the initiator's order, so a narrowed "specific" selector stays
 *    first.
 *
 * Config syntax follows strongSwan's local_ts/remote_ts (swanctl.conf):
 *   10.0.0.0/24   0.0.0.0/0   ::/0   192.0.2.1   10.0.0.1-10.0.0.9
 *   10.1.0.0/16[tcp/443]   [udp]   ::/0[ipv6-icmp/128]   dynamic   dynamic[udp/53]
 * `dynamic` (the IKE address of the end, strongSwan's default) is returned as
 * a DynamicTs marker; the caller resolves it with `resolveDynamicTs`.
 */
import type { TrafficSelector } from '../codec/types.js';
import type { TsConfig } from '../../config/types.js';
import { TsType } from '../constants.js';
import { ConfigError } from '../../util/errors.js';
import { bytesToIp, ipToBytes } from '../../util/ip.js';

/** Placeholder for strongSwan's `dynamic`: replaced by the IKE SA's own/peer address. */
export interface DynamicTs {
  dynamic: true;
  ipProtocol: number;
  startPort: number;
  endPort: number;
  text: string;
}

/** Ports 65535..0 = OPAQUE (RFC 7296 §3.13.1). */
export const OPAQUE_START = 0xffff;
export const OPAQUE_END = 0;

const PROTO_BY_NAME: Record<string, number> = {
  icmp: 1,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  icmpv6: 58,
  sctp: 132,
};
const PROTO_NAME: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 47: 'gre', 50: 'esp', 51: 'ah', 58: 'ipv6-icmp', 132: 'sctp' };
/** A few service names, as strongSwan accepts getservbyname() names. */
const PORT_BY_NAME: Record<string, number> = { http: 80, https: 443, domain: 53, dns: 53, ssh: 22, isakmp: 500, 'ipsec-nat-t': 4500, ntp: 123, bgp: 179, snmp: 161 };

export function isDynamicTs(t: TsConfig | DynamicTs): t is DynamicTs {
  return (t as DynamicTs).dynamic === true;
}

/**
 * Parse one selector in strongSwan notation. Throws ConfigError (with `path`)
 * on anything malformed: bad address, prefix out of range, reversed range,
 * mixed families, unknown protocol, port out of range.
 */
export function parseTs(text: string, path = 'ts'): TsConfig | DynamicTs {
  const raw = text.trim();
  const fail = (msg: string): never => {
    throw new ConfigError(path, `${msg} in traffic selector '${text}'`);
  };
  let addrPart = raw;
  let protoPart: string | undefined;
  const br = raw.indexOf('[');
  if (br >= 0) {
    if (!raw.endsWith(']')) fail('missing closing ]');
    addrPart = raw.slice(0, br).trim();
    protoPart = raw.slice(br + 1, -1).trim();
  }
  const { ipProtocol, startPort, endPort } = parseProtoPort(protoPart, fail);

  if (addrPart === 'dynamic') {
    const d: DynamicTs = { dynamic: true, ipProtocol, startPort, endPort, text: '' };
    d.text = `dynamic${formatProtoPort(ipProtocol, startPort, endPort)}`;
    return d;
  }
  let startAddr: Uint8Array;
  let endAddr: Uint8Array;
  if (addrPart === '' || addrPart === '%any' || addrPart === '%any4') {
    // "[udp]" alone or %any: every IPv4 address (strongSwan's %any4).
    startAddr = new Uint8Array(4);
    endAddr = new Uint8Array(4).fill(0xff);
  } else if (addrPart === '%any6') {
    startAddr = new Uint8Array(16);
    endAddr = new Uint8Array(16).fill(0xff);
  } else if (addrPart.includes('/')) {
    const [a, p] = addrPart.split('/') as [string, string];
    const base = addr(a, fail);
    const bits = base.length * 8;
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) fail(`invalid prefix length '/${p}'`);
    [startAddr, endAddr] = prefixRange(base, Number(p));
  } else if (addrPart.includes('-')) {
    const [a, b, ...more] = addrPart.split('-');
    if (more.length) fail('invalid address range');
    startAddr = addr(a!.trim(), fail);
    endAddr = addr(b!.trim(), fail);
    if (startAddr.length !== endAddr.length) fail('address range mixes IPv4 and IPv6');
    if (compare(startAddr, endAddr) > 0) fail('address range start is above its end');
  } else {
    startAddr = addr(addrPart, fail);
    endAddr = startAddr.slice();
  }
  const ts: TsConfig = {
    family: startAddr.length === 4 ? 4 : 6,
    startAddr,
    endAddr,
    ipProtocol,
    startPort,
    endPort,
    text: '',
  };
  ts.text = formatTs(ts);
  return ts;
}

/** Replace a DynamicTs by the host address of the IKE SA (`/32` or `/128`). */
export function resolveDynamicTs(d: DynamicTs, address: string | Uint8Array): TsConfig {
  const a = typeof address === 'string' ? ipToBytes(address) : address.slice();
  const ts: TsConfig = {
    family: a.length === 4 ? 4 : 6,
    startAddr: a,
    endAddr: a.slice(),
    ipProtocol: d.ipProtocol,
    startPort: d.startPort,
    endPort: d.endPort,
    text: '',
  };
  ts.text = formatTs(ts);
  return ts;
}

function addr(s: string, fail: (m: string) => never): Uint8Array {
  try {
    return ipToBytes(s);
  } catch {
    return fail(`invalid address '${s}'`);
  }
}

function parseProtoPort(spec: string | undefined, fail: (m: string) => never): { ipProtocol: number; startPort: number; endPort: number } {
  if (spec === undefined || spec === '') return { ipProtocol: 0, startPort: 0, endPort: 0xffff };
  const slash = spec.indexOf('/');
  const protoStr = (slash >= 0 ? spec.slice(0, slash) : spec).trim().toLowerCase();
  const portStr = slash >= 0 ? spec.slice(slash + 1).trim().toLowerCase() : undefined;
  let ipProtocol: number;
  if (protoStr === '' || protoStr === '%any' || protoStr === 'any') ipProtocol = 0;
  else if (/^\d+$/.test(protoStr)) {
    ipProtocol = Number(protoStr);
    if (ipProtocol > 255) fail(`IP protocol ${protoStr} out of range`);
  } else if (PROTO_BY_NAME[protoStr] !== undefined) ipProtocol = PROTO_BY_NAME[protoStr]!;
  else return fail(`unknown IP protocol '${protoStr}'`);

  if (portStr === undefined || portStr === '' || portStr === '%any') return { ipProtocol, startPort: 0, endPort: 0xffff };
  if (portStr === 'opaque') return { ipProtocol, startPort: OPAQUE_START, endPort: OPAQUE_END };
  const isIcmp = ipProtocol === 1 || ipProtocol === 58;
  const one = (p: string): number => {
    const v = /^\d+$/.test(p) ? Number(p) : PORT_BY_NAME[p];
    if (v === undefined) return fail(`unknown port '${p}'`);
    if (v > (isIcmp ? 0xff : 0xffff)) return fail(`${isIcmp ? 'ICMP type' : 'port'} ${p} out of range`);
    return v;
  };
  const dash = portStr.indexOf('-');
  if (dash >= 0) {
    const lo = one(portStr.slice(0, dash).trim());
    const hi = one(portStr.slice(dash + 1).trim());
    if (lo > hi) fail(`port range ${portStr} is reversed`);
    // ICMP: a range of types, every code (RFC 4301 §4.4.1.1 type/code packing).
    return isIcmp ? { ipProtocol, startPort: lo << 8, endPort: (hi << 8) | 0xff } : { ipProtocol, startPort: lo, endPort: hi };
  }
  const p = one(portStr);
  return isIcmp ? { ipProtocol, startPort: p << 8, endPort: (p << 8) | 0xff } : { ipProtocol, startPort: p, endPort: p };
}

/** [start, end] of a prefix; host bits in `base` are masked off (as strongSwan does). */
function prefixRange(base: Uint8Array, bits: number): [Uint8Array, Uint8Array] {
  const start = base.slice();
  const end = base.slice();
  for (let i = 0; i < base.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    start[i] = base[i]! & mask;
    end[i] = start[i]! | (~mask & 0xff);
  }
  return [start, end];
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** Prefix length if [start, end] is exactly one CIDR block, else -1. */
function prefixLength(start: Uint8Array, end: Uint8Array): number {
  let bits = 0;
  let i = 0;
  for (; i < start.length && start[i] === end[i]; i++) bits += 8;
  if (i < start.length) {
    const x = start[i]! ^ end[i]!;
    // x must look like 0b0..01..1, with start having zeros there and end ones.
    if (((x + 1) & x) !== 0 || (start[i]! & x) !== 0 || (end[i]! & x) !== x) return -1;
    bits += 8 - Math.log2(x + 1);
    for (i++; i < start.length; i++) if (start[i] !== 0 || end[i] !== 0xff) return -1;
  }
  return bits;
}

function formatProtoPort(proto: number, startPort: number, endPort: number): string {
  const anyPort = startPort === 0 && endPort === 0xffff;
  if (proto === 0 && anyPort) return '';
  const p = PROTO_NAME[proto] ?? String(proto);
  if (anyPort) return `[${p}]`;
  if (startPort === OPAQUE_START && endPort === OPAQUE_END) return `[${p}/opaque]`;
  if (proto === 1 || proto === 58) {
    const t0 = startPort >> 8;
    const t1 = endPort >> 8;
    if ((startPort & 0xff) === 0 && (endPort & 0xff) === 0xff) return t0 === t1 ? `[${p}/${t0}]` : `[${p}/${t0}-${t1}]`;
  }
  return startPort === endPort ? `[${p}/${startPort}]` : `[${p}/${startPort}-${endPort}]`;
}

/** Canonical, re-parseable text: CIDR when the range is one prefix, else "a-b". */
export function formatTs(ts: TsConfig | TrafficSelector): string {
  const bits = prefixLength(ts.startAddr, ts.endAddr);
  const a = bytesToIp(ts.startAddr);
  const range = bits >= 0 ? `${a}/${bits}` : `${a}-${bytesToIp(ts.endAddr)}`;
  return range + formatProtoPort(ts.ipProtocol, ts.startPort, ts.endPort);
}

/** Config selectors → TS payload substructures (RFC 7296 §3.13.1). */
export function tsToPayload(ts: readonly TsConfig[]): TrafficSelector[] {
  return ts.map((t) => ({
    tsType: t.family === 4 ? TsType.IPV4_ADDR_RANGE : TsType.IPV6_ADDR_RANGE,
    ipProtocol: t.ipProtocol,
    startPort: t.startPort,
    endPort: t.endPort,
    startAddr: t.startAddr.slice(),
    endAddr: t.endAddr.slice(),
  }));
}

/** One TS substructure → TsConfig; undefined for types other than 7/8 or inconsistent lengths. */
export function tsFromPayload(sel: TrafficSelector): TsConfig | undefined {
  const len = sel.tsType === TsType.IPV4_ADDR_RANGE ? 4 : sel.tsType === TsType.IPV6_ADDR_RANGE ? 16 : 0;
  if (len === 0 || sel.startAddr.length !== len || sel.endAddr.length !== len) return undefined;
  const t: TsConfig = {
    family: len === 4 ? 4 : 6,
    startAddr: sel.startAddr.slice(),
    endAddr: sel.endAddr.slice(),
    ipProtocol: sel.ipProtocol,
    startPort: sel.startPort,
    endPort: sel.endPort,
    text: '',
  };
  t.text = formatTs(t);
  return t;
}

export function payloadToTs(sels: readonly TrafficSelector[]): TsConfig[] {
  const out: TsConfig[] = [];
  for (const s of sels) {
    const t = tsFromPayload(s);
    if (t) out.push(t);
  }
  return out;
}

interface PortRange {
  start: number;
  end: number;
}

function isOpaque(p: PortRange): boolean {
  return p.start === OPAQUE_START && p.end === OPAQUE_END;
}

/**
 * Port intersection. OPAQUE only intersects with OPAQUE or with the full
 * 0..65535 range ("any" includes "not available"); an empty range
 * (start > end, other than OPAQUE) matches nothing.
 */
function intersectPorts(a: PortRange, b: PortRange): PortRange | undefined {
  const full = (p: PortRange): boolean => p.start === 0 && p.end === 0xffff;
  if (isOpaque(a) || isOpaque(b)) {
    if ((isOpaque(a) || full(a)) && (isOpaque(b) || full(b))) return { start: OPAQUE_START, end: OPAQUE_END };
    return undefined;
  }
  const start = Math.max(a.start, b.start);
  const end = Math.min(a.end, b.end);
  return start <= end ? { start, end } : undefined;
}

/** Intersection of one offered selector with one configured selector, or undefined. */
export function intersectTs(offered: TrafficSelector, configured: TsConfig): TrafficSelector | undefined {
  const o = tsFromPayload(offered);
  if (!o || o.family !== configured.family) return undefined;
  if (compare(o.startAddr, o.endAddr) > 0) return undefined;
  let proto: number;
  if (o.ipProtocol === 0) proto = configured.ipProtocol;
  else if (configured.ipProtocol === 0 || configured.ipProtocol === o.ipProtocol) proto = o.ipProtocol;
  else return undefined;
  const start = compare(o.startAddr, configured.startAddr) >= 0 ? o.startAddr : configured.startAddr;
  const end = compare(o.endAddr, configured.endAddr) <= 0 ? o.endAddr : configured.endAddr;
  if (compare(start, end) > 0) return undefined;
  const ports = intersectPorts({ start: o.startPort, end: o.endPort }, { start: configured.startPort, end: configured.endPort });
  if (!ports) return undefined;
  return {
    tsType: offered.tsType,
    ipProtocol: proto,
    startPort: ports.start,
    endPort: ports.end,
    startAddr: start.slice(),
    endAddr: end.slice(),
  };
}

function sameTs(a: TrafficSelector, b: TrafficSelector): boolean {
  return (
    a.tsType === b.tsType &&
    a.ipProtocol === b.ipProtocol &&
    a.startPort === b.startPort &&
    a.endPort === b.endPort &&
    compare(a.startAddr, b.startAddr) === 0 &&
    compare(a.endAddr, b.endAddr) === 0
  );
}

/**
 * RFC 7296 §2.9 narrowing: every non-empty intersection of an offered
 * selector with a configured one, in the peer's order (then ours), exact
 * duplicates removed. Unknown TS types are ignored. An empty result means
 * the caller answers TS_UNACCEPTABLE.
 */
export function narrow(offered: readonly TrafficSelector[], configured: readonly TsConfig[]): TrafficSelector[] {
  const out: TrafficSelector[] = [];
  for (const o of offered) {
    for (const c of configured) {
      const r = intersectTs(o, c);
      if (r && !out.some((x) => sameTs(x, r))) out.push(r);
    }
  }
  return out;
}
