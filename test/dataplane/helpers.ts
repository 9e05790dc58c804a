/**
 * Test helpers for the data plane: packet builders with correct checksums,
 * an in-memory UDP "internet" with loss and reordering, and a two-gateway
 * fixture built on the in-memory TUN/links fakes.
 */
import { UserspaceDataPlane, type UserspaceDataPlaneOptions } from '../../firmware/dataplane/userspace.js';
import { MemoryLinks, type MemoryTun } from '../../firmware/dataplane/tun/memory.js';
import type { Endpoint, PolicySpec, SaSpec, Selector } from '../../firmware/dataplane/types.js';
import { internetChecksum, parseAddr, sum16, finishChecksum } from '../../firmware/dataplane/ip.js';
import { Encr } from '../../firmware/ikev2/constants.js';
import { FakeClock } from '../../firmware/util/clock.js';

// ---- packets -----------------------------------------------------------------

export function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, o: { df?: boolean; ttl?: number; id?: number } = {}): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[4] = ((o.id ?? 0x1234) >> 8) & 0xff;
  p[5] = (o.id ?? 0x1234) & 0xff;
  if (o.df) p[6] = 0x40;
  p[8] = o.ttl ?? 64;
  p[9] = proto;
  p.set(parseAddr(src), 12);
  p.set(parseAddr(dst), 16);
  const c = internetChecksum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(payload, 20);
  return p;
}

export function ipv6(src: string, dst: string, nh: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + payload.length);
  p[0] = 0x60;
  p[4] = payload.length >> 8;
  p[5] = payload.length & 0xff;
  p[6] = nh;
  p[7] = 64;
  p.set(parseAddr(src), 8);
  p.set(parseAddr(dst), 24);
  p.set(payload, 40);
  return p;
}

/** Recompute the transport checksum (TCP 16, UDP 6, ICMPv6 2 bytes into the L4 header) from scratch. */
export function l4Checksum(pkt: Uint8Array, fixOffset?: number): number {
  const v4 = pkt[0]! >> 4 === 4;
  const l4 = v4 ? (pkt[0]! & 0x0f) * 4 : 40;
  const proto = v4 ? pkt[9]! : pkt[6]!;
  const len = (v4 ? (pkt[2]! << 8) | pkt[3]! : 40 + ((pkt[4]! << 8) | pkt[5]!)) - l4;
  const csumAt = l4 + (fixOffset ?? (proto === 6 ? 16 : proto === 17 ? 6 : 2));
  const copy = new Uint8Array(pkt);
  copy[csumAt] = 0;
  copy[csumAt + 1] = 0;
  let acc = v4 && proto === 1 ? 0 : sum16(copy, v4 ? 12 : 8, v4 ? 8 : 32) + proto + len;
  acc = sum16(copy, l4, len, acc);
  return finishChecksum(acc);
}

function withChecksum(pkt: Uint8Array): Uint8Array {
  const v4 = pkt[0]! >> 4 === 4;
  const l4 = v4 ? (pkt[0]! & 0x0f) * 4 : 40;
  const proto = v4 ? pkt[9]! : pkt[6]!;
  const at = l4 + (proto === 6 ? 16 : proto === 17 ? 6 : 2);
  const c = l4Checksum(pkt);
  pkt[at] = c >> 8;
  pkt[at + 1] = c & 0xff;
  return pkt;
}

export function udp(src: string, dst: string, sport: number, dport: number, data: Uint8Array, o: { df?: boolean } = {}): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u[0] = sport >> 8;
  u[1] = sport & 0xff;
  u[2] = dport >> 8;
  u[3] = dport & 0xff;
  u[4] = u.length >> 8;
  u[5] = u.length & 0xff;
  u.set(data, 8);
  return withChecksum(src.includes(':') ? ipv6(src, dst, 17, u) : ipv4(src, dst, 17, u, o));
}

/** TCP SYN (or SYN-ACK) with options NOP, MSS, NOP, NOP, SACK-permitted... so MSS sits at an odd offset when `oddMss`. */
export function tcpSyn(src: string, dst: string, sport: number, dport: number, mss: number, o: { ack?: boolean; oddMss?: boolean } = {}): Uint8Array {
  const opts = o.oddMss ? [1, 2, 4, mss >> 8, mss & 0xff, 1, 1, 1] : [2, 4, mss >> 8, mss & 0xff, 4, 2, 1, 1];
  const t = new Uint8Array(20 + opts.length);
  t[0] = sport >> 8;
  t[1] = sport & 0xff;
  t[2] = dport >> 8;
  t[3] = dport & 0xff;
  t.set([0x11, 0x22, 0x33, 0x44], 4);
  if (o.ack) t.set([0, 0, 0, 1], 8);
  t[12] = ((20 + opts.length) / 4) << 4;
  t[13] = o.ack ? 0x12 : 0x02;
  t[14] = 0xfa;
  t[15] = 0xf0;
  t.set(opts, 20);
  return withChecksum(src.includes(':') ? ipv6(src, dst, 6, t) : ipv4(src, dst, 6, t, { df: true }));
}

export function icmpEcho(src: string, dst: string, id: number, seq: number, size = 56): Uint8Array {
  const e = new Uint8Array(8 + size);
  e[0] = 8;
  e[4] = id >> 8;
  e[5] = id & 0xff;
  e[6] = seq >> 8;
  e[7] = seq & 0xff;
  for (let i = 0; i < size; i++) e[8 + i] = i & 0xff;
  const c = internetChecksum(e, 0, e.length);
  e[2] = c >> 8;
  e[3] = c & 0xff;
  return ipv4(src, dst, 1, e);
}

export function hexOf(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

// ---- in-memory UDP network -------------------------------------------------------

/** Small deterministic PRNG (mulberry32) so lossy runs are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Receiver = (data: Uint8Array, from: Endpoint, to: Endpoint) => void;

/**
 * Datagrams between in-process endpoints. Delivery happens in setImmediate
 * turns; `loss` drops a fraction, `reorder` shuffles each turn's datagrams
 * within that many positions.
 */
export class MemoryNet {
  readonly endpoints = new Map<string, Receiver>();
  sent = 0;
  dropped = 0;
  delivered = 0;
  private queue: { data: Uint8Array; from: Endpoint; to: Endpoint }[] = [];
  private scheduled = false;
  private readonly rand: () => number;

  constructor(private readonly o: { loss?: number; reorder?: number; seed?: number } = {}) {
    this.rand = prng(o.seed ?? 1);
  }

  attach(ep: Endpoint, r: Receiver): void {
    this.endpoints.set(`${ep.address}:${ep.port}`, r);
  }

  /** Sees every datagram sent (before loss). */
  tap: ((data: Uint8Array, from: Endpoint, to: Endpoint) => void) | undefined;

  send = (from: Endpoint, to: Endpoint, data: Uint8Array): void => {
    this.sent++;
    this.tap?.(new Uint8Array(data), from, to);
    if (this.o.loss && this.rand() < this.o.loss) {
      this.dropped++;
      return;
    }
    this.queue.push({ data: new Uint8Array(data), from: { ...from }, to: { ...to } });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.deliver());
    }
  };

  private deliver(): void {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    const depth = this.o.reorder ?? 0;
    if (depth > 0) {
      for (let i = 0; i < q.length; i++) {
        const j = Math.min(q.length - 1, i + Math.floor(this.rand() * (depth + 1)));
        [q[i], q[j]] = [q[j]!, q[i]!];
      }
    }
    for (const d of q) {
      const r = this.endpoints.get(`${d.to.address}:${d.to.port}`);
      if (r) {
        this.delivered++;
        r(d.data, d.from, d.to);
      }
    }
  }
}

/** Resolve when `cond` holds, polling once per event-loop turn (fails after `turns`). */
export async function until(cond: () => boolean, turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('until: condition not met');
}

// ---- two gateways ---------------------------------------------------------------------

export function sel(cidr: string, proto = 0, ports: [number, number] = [0, 0xffff]): Selector {
  const [addr, lenStr] = cidr.split('/');
  const a = parseAddr(addr!);
  const bits = Number(lenStr ?? a.length * 8);
  const start = a.slice();
  const end = a.slice();
  for (let i = 0; i < a.length * 8; i++) {
    if (i < bits) continue;
    const byte = i >> 3;
    const bit = 7 - (i & 7);
    start[byte]! &= ~(1 << bit);
    end[byte]! |= 1 << bit;
  }
  return { family: a.length === 4 ? 4 : 6, startAddr: start, endAddr: end, ipProtocol: proto, startPort: ports[0], endPort: ports[1] };
}

export const A_OUTER: Endpoint = { address: '192.0.2.1', port: 4500 };
export const B_OUTER: Endpoint = { address: '192.0.2.2', port: 4500 };

export interface Gateway {
  dp: UserspaceDataPlane;
  links: MemoryLinks;
  clock: FakeClock;
  outer: Endpoint;
  events: unknown[];
}

export function gateway(net: MemoryNet, outer: Endpoint, extra: Partial<UserspaceDataPlaneOptions> = {}): Gateway {
  const links = new MemoryLinks();
  const clock = new FakeClock(1000);
  const dp = new UserspaceDataPlane({ sendUdp: net.send, links, clock, ...extra });
  net.attach(outer, (d, f, t) => dp.receiveEsp(d, f, t));
  const events: unknown[] = [];
  dp.onEvent((e) => events.push(e));
  return { dp, links, clock, outer, events };
}

export interface ChildParams {
  reqid: number;
  ifId: number;
  tunnel: string;
  /** SPI of the a->b SA and the b->a SA. */
  spiAB: number;
  spiBA: number;
  aNet: string[];
  bNet: string[];
  encrId?: number;
  keyBits?: number;
  esn?: boolean;
  replayWindow?: number;
  limits?: Partial<Pick<SaSpec, 'softBytes' | 'hardBytes' | 'softPackets' | 'hardPackets'>>;
}

function keyFor(spi: number, len: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (spi * 31 + i * 7) & 0xff);
}

/** Install one Child SA (both directions, both gateways), as the engine's install-child would. */
export async function installChild(a: Gateway, b: Gateway, c: ChildParams, which: 'sas' | 'policies' | 'both' = 'both'): Promise<void> {
  const encrId = c.encrId ?? Encr.AES_GCM_16;
  const keyBits = c.keyBits ?? 128;
  const sa = (spi: number, direction: 'in' | 'out', src: Endpoint, dst: Endpoint): SaSpec => ({
    spi, direction, src, dst, encap: true, encrId, encrKeyBits: keyBits,
    encrKey: keyFor(spi, keyBits / 8 + 4), integId: 0, integKey: new Uint8Array(0),
    esn: c.esn ?? false, replayWindow: c.replayWindow ?? 128, reqid: c.reqid, ifId: c.ifId, tunnel: c.tunnel,
    ...(direction === 'out' ? c.limits : {}),
  });
  const pol = (direction: 'in' | 'out', local: string[], remote: string[], src: Endpoint, dst: Endpoint): PolicySpec => ({
    reqid: c.reqid, direction, local: local.map((x) => sel(x)), remote: remote.map((x) => sel(x)), ifId: c.ifId, tunnel: c.tunnel, src, dst,
  });
  if (which !== 'policies') {
    await a.dp.addSa(sa(c.spiBA, 'in', b.outer, a.outer));
    await b.dp.addSa(sa(c.spiAB, 'in', a.outer, b.outer));
    await a.dp.addSa(sa(c.spiAB, 'out', a.outer, b.outer));
    await b.dp.addSa(sa(c.spiBA, 'out', b.outer, a.outer));
  }
  if (which !== 'sas') {
    await a.dp.addPolicy(pol('out', c.aNet, c.bNet, a.outer, b.outer));
    await a.dp.addPolicy(pol('in', c.aNet, c.bNet, b.outer, a.outer));
    await b.dp.addPolicy(pol('out', c.bNet, c.aNet, b.outer, a.outer));
    await b.dp.addPolicy(pol('in', c.bNet, c.aNet, a.outer, b.outer));
  }
}

export function policySpec(c: ChildParams, side: 'a' | 'b', direction: 'in' | 'out'): PolicySpec {
  const [local, remote] = side === 'a' ? [c.aNet, c.bNet] : [c.bNet, c.aNet];
  const [src, dst] = (side === 'a') === (direction === 'out') ? [A_OUTER, B_OUTER] : [B_OUTER, A_OUTER];
  return { reqid: c.reqid, direction, local: local.map((x) => sel(x)), remote: remote.map((x) => sel(x)), ifId: c.ifId, tunnel: c.tunnel, src, dst };
}

export function tunOf(g: Gateway, name: string): MemoryTun {
  return g.links.device(name);
}
