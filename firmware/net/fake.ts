/**
 * In-memory network for tests (wireguard-go's bindtest idea): a hub that
 * carries UDP payloads between attached endpoints under a fake clock, with
 * seeded, reproducible loss, duplication, reordering, delay/jitter, an MTU
 * limit and a simple NAPT, so two engines (or two daemons) can talk inside a
 * unit test.
 *
 * Two ways to use it:
 *   - engine level: `net.attach(ep, (data, from, to) => engine.receive(...))`
 *     and `net.send(from, to, data)` for each SendAction — IKE messages as
 *     they are, no non-ESP marker;
 *   - transport level: `new FakeTransport(net, { addresses })` implements
 *     IkeTransport exactly like UdpTransport, including the RFC 3948 marker
 *     on the NAT-T port, for daemon-level tests.
 *
 * Determinism: every send() draws the same number of values from the PRNG
 * whatever the rates are, so a given seed and sequence of sends always gives
 * the same fates, and changing one rate does not reshuffle the others.
 */
import type { Endpoint } from '../dataplane/types.js';
import type { DatagramHandler, IkeTransport } from './types.js';
import { endpointKey } from './types.js';
import { addNonEspMarker, classifyNattDatagram } from './natt.js';
import { FakeClock } from '../util/clock.js';

export interface ManualClock {
  now(): number;
  advance(ms: number): void;
}

export interface FakeNetworkOptions {
  clock?: ManualClock;
  /** PRNG seed (number or string). Default 1. */
  seed?: number | string;
  lossRate?: number;
  duplicateRate?: number;
  reorderRate?: number;
  /** Base one-way delay in ms. */
  delayMs?: number;
  /** Uniform extra delay in [0, jitterMs). */
  jitterMs?: number;
  /** How long a "reordered" datagram is held back, ms. */
  reorderDelayMs?: number;
  /** Drop datagrams whose IP packet (payload + 28 for IPv4 / 48 for IPv6) exceeds this. 0 = no limit. */
  mtu?: number;
}

export type TraceEvent = 'sent' | 'lost' | 'filtered' | 'too-big' | 'duplicated' | 'delivered' | 'undeliverable';

export interface TraceEntry {
  seq: number;
  time: number;
  event: TraceEvent;
  from: Endpoint;
  to: Endpoint;
  size: number;
}

export interface Datagram {
  seq: number;
  from: Endpoint;
  to: Endpoint;
  data: Uint8Array;
  sentAt: number;
  deliverAt: number;
}

/** mulberry32: a tiny, well-mixed 32-bit PRNG; plenty for test fates. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedOf(s: number | string): number {
  if (typeof s === 'number') return s >>> 0;
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Endpoint-independent NAPT (RFC 4787 "EIM"): inside:port <-> outside:mappedPort. */
export class FakeNat {
  private readonly out = new Map<string, number>(); // inside ep key -> public port
  private readonly back = new Map<number, Endpoint>(); // public port -> inside ep
  private nextPort: number;
  constructor(
    readonly inside: string,
    readonly outside: string,
    portBase: number,
  ) {
    this.nextPort = portBase;
  }
  /** Source translation for a datagram leaving the inside host. */
  translateOut(from: Endpoint): Endpoint {
    const k = endpointKey(from);
    let p = this.out.get(k);
    if (p === undefined) {
      p = this.nextPort++;
      this.out.set(k, p);
      this.back.set(p, { ...from });
    }
    return { address: this.outside, port: p };
  }
  /** Destination translation for a datagram sent to the public address; undefined = no mapping (dropped). */
  translateIn(to: Endpoint): Endpoint | undefined {
    const ep = this.back.get(to.port);
    return ep ? { ...ep } : undefined;
  }
  /** Forget every mapping (NAT reboot / timeout): the next outbound datagram gets a new public port. */
  rebind(): void {
    this.out.clear();
    this.back.clear();
  }
  mappings(): { inside: Endpoint; outside: Endpoint }[] {
    return [...this.back.entries()].map(([p, ep]) => ({ inside: { ...ep }, outside: { address: this.outside, port: p } }));
  }
}

export class FakeNetwork {
  readonly clock: ManualClock;
  lossRate: number;
  duplicateRate: number;
  reorderRate: number;
  delayMs: number;
  jitterMs: number;
  reorderDelayMs: number;
  mtu: number;
  /** Targeted loss: return true to drop this datagram (checked before the random fates). */
  dropFilter: ((d: Datagram) => boolean) | undefined;
  readonly stats = { sent: 0, delivered: 0, lost: 0, filtered: 0, tooBig: 0, duplicated: 0, undeliverable: 0 };
  readonly trace: TraceEntry[] = [];
  /** Cap on the trace length (oldest entries are dropped). */
  traceLimit = 100_000;

  private readonly rand: () => number;
  private readonly handlers = new Map<string, DatagramHandler>();
  private readonly nats: FakeNat[] = [];
  private queue: Datagram[] = [];
  private seq = 0;

  constructor(opts: FakeNetworkOptions = {}) {
    this.clock = opts.clock ?? new FakeClock(0);
    this.rand = mulberry32(seedOf(opts.seed ?? 1));
    this.lossRate = opts.lossRate ?? 0;
    this.duplicateRate = opts.duplicateRate ?? 0;
    this.reorderRate = opts.reorderRate ?? 0;
    this.delayMs = opts.delayMs ?? 0;
    this.jitterMs = opts.jitterMs ?? 0;
    this.reorderDelayMs = opts.reorderDelayMs ?? 5;
    this.mtu = opts.mtu ?? 0;
  }

  /** Register a receiver; returns a function that detaches it. */
  attach(endpoint: Endpoint, handler: DatagramHandler): () => void {
    const k = endpointKey(endpoint);
    if (this.handlers.has(k)) throw new Error(`FakeNetwork: ${k} already attached`);
    this.handlers.set(k, handler);
    return () => this.detach(endpoint);
  }

  detach(endpoint: Endpoint): void {
    this.handlers.delete(endpointKey(endpoint));
  }

  isAttached(endpoint: Endpoint): boolean {
    return this.handlers.has(endpointKey(endpoint));
  }

  /** Put `inside` behind a NAPT with public address `outside`; public ports start at portBase. */
  addNat(inside: string, outside: string, portBase = 40000): FakeNat {
    const n = new FakeNat(inside, outside, portBase);
    this.nats.push(n);
    return n;
  }

  private record(d: { seq: number; from: Endpoint; to: Endpoint; data: Uint8Array }, event: TraceEvent): void {
    if (this.trace.length >= this.traceLimit) this.trace.shift();
    this.trace.push({ seq: d.seq, time: this.clock.now(), event, from: { ...d.from }, to: { ...d.to }, size: d.data.length });
  }

  private enqueue(d: Datagram): void {
    // Stable order by (deliverAt, seq): binary search for the insertion point.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const q = this.queue[mid]!;
      if (q.deliverAt < d.deliverAt || (q.deliverAt === d.deliverAt && q.seq < d.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, d);
  }

  /** Hand a datagram to the network. The bytes are copied. */
  send(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    const seq = this.seq++;
    // Fixed number of draws per datagram (see module comment).
    const rLoss = this.rand();
    const rDup = this.rand();
    const rReorder = this.rand();
    const rJitter = this.rand();
    const rJitter2 = this.rand();
    let src = { ...from };
    let dst = { ...to };
    for (const n of this.nats) if (src.address === n.inside && dst.address !== n.inside) src = n.translateOut(src);
    const d: Datagram = { seq, from: src, to: dst, data: data.slice(), sentAt: this.clock.now(), deliverAt: 0 };
    this.stats.sent++;
    this.record(d, 'sent');
    for (const n of this.nats) {
      if (dst.address === n.outside) {
        const inner = n.translateIn(dst);
        if (!inner) {
          this.stats.undeliverable++;
          this.record(d, 'undeliverable');
          return;
        }
        dst = inner;
        d.to = dst;
      }
    }
    if (this.dropFilter?.(d)) {
      this.stats.filtered++;
      this.record(d, 'filtered');
      return;
    }
    const overhead = dst.address.includes(':') ? 48 : 28;
    if (this.mtu > 0 && d.data.length + overhead > this.mtu) {
      this.stats.tooBig++;
      this.record(d, 'too-big');
      return;
    }
    if (rLoss < this.lossRate) {
      this.stats.lost++;
      this.record(d, 'lost');
      return;
    }
    const now = this.clock.now();
    d.deliverAt = now + this.delayMs + Math.floor(rJitter * this.jitterMs) + (rReorder < this.reorderRate ? this.reorderDelayMs : 0);
    this.enqueue(d);
    if (rDup < this.duplicateRate) {
      const copy: Datagram = { ...d, seq: this.seq++, data: d.data.slice(), deliverAt: now + this.delayMs + Math.floor(rJitter2 * this.jitterMs) };
      this.stats.duplicated++;
      this.record(copy, 'duplicated');
      this.enqueue(copy);
    }
  }

  /** Datagrams in flight. */
  pending(): number {
    return this.queue.length;
  }

  /** Clock time of the next delivery, or undefined if nothing is in flight. */
  nextDeliveryTime(): number | undefined {
    return this.queue[0]?.deliverAt;
  }

  /** Deliver the earliest datagram that is due now. Returns false if none is due. Handler exceptions propagate. */
  step(): boolean {
    const d = this.queue[0];
    if (!d || d.deliverAt > this.clock.now()) return false;
    this.queue.shift();
    const h = this.handlers.get(endpointKey(d.to));
    if (!h) {
      this.stats.undeliverable++;
      this.record(d, 'undeliverable');
      return true;
    }
    this.stats.delivered++;
    this.record(d, 'delivered');
    h(d.data, d.from, d.to);
    return true;
  }

  /** Deliver everything due now, including datagrams sent (with zero delay) by the handlers. */
  deliverDue(maxSteps = 100_000): number {
    let n = 0;
    while (this.step()) if (++n >= maxSteps) throw new Error(`FakeNetwork: still delivering after ${maxSteps} datagrams`);
    return n;
  }

  /**
   * Deliver until nothing is in flight. With advanceClock (default), the clock
   * jumps to each next delivery time and onAdvance(now) runs after every jump
   * (the place to tick engine timers that fell due meanwhile).
   */
  runUntilIdle(opts: { maxSteps?: number; advanceClock?: boolean; onAdvance?: (now: number) => void } = {}): number {
    const max = opts.maxSteps ?? 100_000;
    const advance = opts.advanceClock ?? true;
    let n = 0;
    for (;;) {
      n += this.deliverDue(max - n);
      const next = this.nextDeliveryTime();
      if (next === undefined || !advance) return n;
      const now = this.clock.now();
      if (next > now) this.clock.advance(next - now);
      opts.onAdvance?.(this.clock.now());
      if (n >= max) throw new Error(`FakeNetwork: still delivering after ${max} datagrams`);
    }
  }
}

/** IkeTransport over a FakeNetwork, with the same NAT-T marker handling as UdpTransport. */
export class FakeTransport implements IkeTransport {
  readonly ikePort: number;
  readonly nattPort: number;
  private readonly eps: Endpoint[] = [];
  private ikeHandler: DatagramHandler = () => {};
  private espHandler: DatagramHandler = () => {};
  readonly stats = { ikeIn: 0, espIn: 0, keepalivesIn: 0, invalidIn: 0 };

  constructor(
    private readonly net: FakeNetwork,
    opts: { addresses: string[]; ikePort?: number; nattPort?: number },
  ) {
    this.ikePort = opts.ikePort ?? 500;
    this.nattPort = opts.nattPort ?? 4500;
    for (const address of opts.addresses) {
      const ike = { address, port: this.ikePort };
      const natt = { address, port: this.nattPort };
      net.attach(ike, (data, from, to) => {
        this.stats.ikeIn++;
        this.ikeHandler(data, from, to);
      });
      net.attach(natt, (data, from, to) => this.onNatt(data, from, to));
      this.eps.push(ike, natt);
    }
  }

  private onNatt(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    const c = classifyNattDatagram(data);
    if (c.kind === 'ike') {
      this.stats.ikeIn++;
      this.ikeHandler(c.data, from, to);
    } else if (c.kind === 'esp') {
      this.stats.espIn++;
      this.espHandler(c.data, from, to);
    } else if (c.kind === 'keepalive') this.stats.keepalivesIn++;
    else this.stats.invalidIn++;
  }

  send(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    this.net.send(from, to, from.port === this.nattPort ? addNonEspMarker(data) : data);
  }
  sendRaw(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    this.net.send(from, to, data);
  }
  onIke(handler: DatagramHandler): void {
    this.ikeHandler = handler;
  }
  onEsp(handler: DatagramHandler): void {
    this.espHandler = handler;
  }
  localEndpoints(): Endpoint[] {
    return this.eps.map((e) => ({ ...e }));
  }
  boundPorts(): { ike: number; natt: number } {
    return { ike: this.ikePort, natt: this.nattPort };
  }
  async close(): Promise<void> {
    for (const e of this.eps) this.net.detach(e);
  }
}
