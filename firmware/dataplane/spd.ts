/**
 * Security Policy Database for the userspace data plane.
 *
 *   RFC 4301 §4.4.1   SPD entries with selectors: local/remote address ranges,
 *                     next-layer protocol and ports; the first matching entry
 *                     in the ordered database wins. We order by specificity
 *                     (narrower remote, then local ranges, specific protocol,
 *                     narrower ports first), which is how strongSwan derives
 *                     XFRM policy priorities, so overlapping tunnels behave
 *                     the same on both backends.
 *   RFC 4301 §5.2     inbound: after decryption, the packet must match the
 *                     selectors of the SA it arrived on (the SA's policies),
 *                     otherwise it is dropped.
 *   RFC 4301 §7       non-initial fragments (no ports) match only selectors
 *                     whose port range is ANY.
 */
import type { PolicySpec, Selector } from './types.js';
import { compareAddr, type Flow } from './ip.js';
import { hex } from '../util/bytes.js';

interface CompiledSelector {
  family: 4 | 6;
  start: Uint8Array;
  end: Uint8Array;
  proto: number;
  startPort: number;
  endPort: number;
  anyPort: boolean;
}

export interface SpdEntry {
  key: string;
  spec: PolicySpec;
  local: CompiledSelector[];
  remote: CompiledSelector[];
  /** Sort key: smaller = more specific. */
  rank: number[];
}

/**
 * The selector's address as the SPD keeps it. A plain Uint8Array that owns
 * its whole buffer (what the engine hands over: nobody writes to it later)
 * is kept as is; a view into something larger (a Buffer from a pool, a
 * packet) is copied, so it neither aliases nor pins that memory. A hub keeps
 * four addresses per Child SA for its lifetime.
 */
function own(a: Uint8Array): Uint8Array {
  return a.constructor === Uint8Array && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : new Uint8Array(a);
}

function compile(s: Selector): CompiledSelector {
  const len = s.family === 4 ? 4 : 16;
  if (s.startAddr.length !== len || s.endAddr.length !== len) throw new TypeError(`selector: IPv${s.family} addresses must be ${len} bytes`);
  return {
    family: s.family,
    start: own(s.startAddr),
    end: own(s.endAddr),
    proto: s.ipProtocol,
    startPort: s.startPort,
    endPort: s.endPort,
    anyPort: s.startPort === 0 && s.endPort === 0xffff,
  };
}

/** log2 of the number of addresses in a range (approximate, for ordering only). */
function rangeBits(s: CompiledSelector): number {
  let i = 0;
  while (i < s.start.length && s.start[i] === s.end[i]) i++;
  if (i === s.start.length) return 0;
  const diff = s.end[i]! - s.start[i]! + 1;
  return (s.start.length - i - 1) * 8 + Math.log2(diff);
}

function rank(local: CompiledSelector[], remote: CompiledSelector[]): number[] {
  const widest = (sels: CompiledSelector[], f: (s: CompiledSelector) => number): number => sels.reduce((m, s) => Math.max(m, f(s)), 0);
  return [
    widest(remote, rangeBits),
    widest(local, rangeBits),
    widest([...local, ...remote], (s) => (s.proto === 0 ? 1 : 0)),
    widest([...local, ...remote], (s) => s.endPort - s.startPort),
  ];
}

function cmpRank(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function selKey(s: Selector): string {
  return `${s.family}:${hex(s.startAddr)}-${hex(s.endAddr)}:${s.ipProtocol}:${s.startPort}-${s.endPort}`;
}

export function policyKey(p: PolicySpec): string {
  return `${p.direction}|${p.reqid}|${p.ifId}|${p.tunnel}|${p.local.map(selKey).join(',')}|${p.remote.map(selKey).join(',')}`;
}

/**
 * A copy of `s` in one piece. A string built by concatenation is a tree of
 * its pieces in V8 (about a dozen objects for a policy key); the SPD keeps
 * one key per policy for the policy's lifetime, thousands on a hub.
 */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** Does the address at pkt[off] with protocol/port fall inside selector `s`? */
function matches(s: CompiledSelector, pkt: Uint8Array, f: Flow, addrOff: number, port: number): boolean {
  if (s.family !== f.family) return false;
  const len = s.start.length;
  if (compareAddr(pkt, addrOff, s.start, len) < 0 || compareAddr(pkt, addrOff, s.end, len) > 0) return false;
  if (s.proto !== 0 && s.proto !== f.proto) return false;
  if (s.anyPort) return true;
  if (port < 0) return false;
  return port >= s.startPort && port <= s.endPort;
}

function anyMatch(sels: CompiledSelector[], pkt: Uint8Array, f: Flow, addrOff: number, port: number): boolean {
  for (const s of sels) if (matches(s, pkt, f, addrOff, port)) return true;
  return false;
}

/** Stable insert by rank: equal ranks keep installation order. */
function insertByRank(list: SpdEntry[], e: SpdEntry): void {
  let i = list.length;
  while (i > 0 && cmpRank(list[i - 1]!.rank, e.rank) > 0) i--;
  list.splice(i, 0, e);
}

export class Spd {
  private readonly outbound: SpdEntry[] = [];
  /** The outbound entries again, per interface id (same order): a route-based TUN checks only its own. */
  private readonly outboundByIf = new Map<number, SpdEntry[]>();
  private readonly inbound = new Map<number, SpdEntry[]>();
  private readonly keys = new Map<string, SpdEntry>();

  /** Whether an identical policy is installed. */
  has(p: PolicySpec): boolean {
    return this.keys.has(policyKey(p));
  }

  /** Add (or replace an identical) policy. */
  add(p: PolicySpec): SpdEntry {
    const key = flat(policyKey(p));
    const existing = this.keys.get(key);
    if (existing) return existing;
    const local = p.local.map(compile);
    const remote = p.remote.map(compile);
    const e: SpdEntry = { key, spec: p, local, remote, rank: rank(local, remote) };
    this.keys.set(key, e);
    if (p.direction === 'out') {
      insertByRank(this.outbound, e);
      const perIf = this.outboundByIf.get(p.ifId) ?? [];
      insertByRank(perIf, e);
      this.outboundByIf.set(p.ifId, perIf);
    } else {
      const list = this.inbound.get(p.reqid) ?? [];
      list.push(e);
      this.inbound.set(p.reqid, list);
    }
    return e;
  }

  remove(p: PolicySpec): SpdEntry | undefined {
    const key = policyKey(p);
    const e = this.keys.get(key);
    if (!e) return undefined;
    this.keys.delete(key);
    if (p.direction === 'out') {
      this.outbound.splice(this.outbound.indexOf(e), 1);
      const perIf = this.outboundByIf.get(p.ifId)!;
      perIf.splice(perIf.indexOf(e), 1);
      if (perIf.length === 0) this.outboundByIf.delete(p.ifId);
    }
    else {
      const list = this.inbound.get(p.reqid)!;
      list.splice(list.indexOf(e), 1);
      if (list.length === 0) this.inbound.delete(p.reqid);
    }
    return e;
  }

  /** First outbound policy (by specificity) on interface `ifId` matching a packet leaving for the tunnel. */
  lookupOut(pkt: Uint8Array, f: Flow, ifId: number): SpdEntry | undefined {
    const list = this.outboundByIf.get(ifId);
    if (!list) return undefined;
    for (const e of list) {
      if (anyMatch(e.local, pkt, f, f.srcOff, f.sport) && anyMatch(e.remote, pkt, f, f.dstOff, f.dport)) return e;
    }
    return undefined;
  }

  /** RFC 4301 §5.2 inbound check: does a decrypted packet match an inbound policy of its SA's Child SA? */
  allowsIn(reqid: number, pkt: Uint8Array, f: Flow): boolean {
    const list = this.inbound.get(reqid);
    if (!list) return false;
    for (const e of list) if (anyMatch(e.remote, pkt, f, f.srcOff, f.sport) && anyMatch(e.local, pkt, f, f.dstOff, f.dport)) return true;
    return false;
  }

  /** Outbound policies on an interface (for routes). */
  outPolicies(ifId?: number): SpdEntry[] {
    return ifId === undefined ? [...this.outbound] : this.outbound.filter((e) => e.spec.ifId === ifId);
  }

  hasAnyFor(ifId: number): boolean {
    for (const e of this.keys.values()) if (e.spec.ifId === ifId) return true;
    return false;
  }

  clear(): void {
    this.outbound.length = 0;
    this.outboundByIf.clear();
    this.inbound.clear();
    this.keys.clear();
  }
}
