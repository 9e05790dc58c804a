/**
 * Userspace ESP data plane: ESP-in-UDP (RFC 3948) on the IKE NAT-T socket,
 * inner packets through TUN devices. strongSwan's kernel-libipsec plays the
 * same role on kernels without ESP.
 *
 * Pipeline (RFC 4301 §5.1 outbound, §5.2 inbound):
 *
 *   TUN read batch ─► parse flow ─► SA choice ─► MSS clamp ─► PMTU check ─► ESP encap ─► sendUdp
 *     route-based (ifId > 0): one TUN per tunnel; what it emits goes into the
 *       tunnel's newest live outbound SA if it matches one of the interface's
 *       outbound policies (else dropped, counted as noPolicy).
 *     policy-based (ifId = 0): one shared TUN; SPD lookup on (src, dst, proto,
 *       ports); routes for the remote selectors point at the TUN.
 *     packets that would not fit the path MTU after ESP overhead: ICMP
 *       "fragmentation needed" / "packet too big" back to the sender
 *       (RFC 4301 §8.2 / RFC 1191 / RFC 4443) when DF is set (always for IPv6).
 *
 *   receiveEsp(datagram) ─► SA by SPI ─► replay check, ICV, window update,
 *     decrypt, padding (esp/sa.ts) ─► inner packet must match the SA's inbound
 *     policy (RFC 4301 §5.2) ─► MSS clamp ─► queued, written to the TUN in a
 *     batch at the end of the event-loop turn.
 *
 * Make-before-break: any number of inbound SAs per Child SA may be live at
 * once (old and new during a rekey); outbound traffic switches to a new SA
 * the moment addSa installs it, and falls back to the previous one only if
 * the new one dies first.
 *
 * Malformed input is dropped and counted, never thrown out of the pipeline.
 */
import type { DataPlane, DataPlaneEvent, Endpoint, PolicySpec, SaCounters, SaSpec } from './types.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { PqError } from '../util/errors.js';
import { DecapStatus, EspSa } from './esp/sa.js';
import { clampMss, icmpTooBig, newFlow, parseFlow, rangeToCidrs, type Flow } from './ip.js';
import type { LinkConfig, Links } from './links.js';
import { Spd } from './spd.js';
import type { TunDevice } from './tun/device.js';
import type { ProbeCounters } from '../health/monitor.js';
import { MAX_TUN_MTU } from './tun/tun.js';

export interface UserspaceDataPlaneOptions {
  /** Send one ESP-in-UDP datagram; the data plane hands over ownership of `data`. */
  sendUdp(from: Endpoint, to: Endpoint, data: Uint8Array): void;
  /** Called after each TUN read batch: a batching sendUdp sends what it queued (udp-batch.ts). */
  flushUdp?(): void;
  links: Links;
  clock?: Clock;
  /** Outer path MTU used for DF decisions (default 1500). */
  pathMtu?: number;
  /** MTU of the TUN devices (default 1400, as strongSwan's kernel-libipsec). */
  tunMtu?: number;
  /** txqueuelen of the TUN devices (unset: the kernel's 500); see LinkConfig.txQueueLen. */
  txQueueLen?: number;
  /** TCP MSS clamp for every tunnel, 0 = off (default); setTunnelOptions overrides per tunnel. */
  mss?: number;
  /** Shared TUN device for policy-based tunnels (default "pqpol0"). */
  policyDevice?: string;
  /** Minimum gap between two acquire events for one reqid (default 5000 ms). */
  acquireHoldMs?: number;
  /** Failures that have no caller to go to (async link setup, send errors). */
  onError?: (e: Error) => void;
}

export interface TunnelOptions {
  /** Inside address of a route-based tunnel's interface, e.g. "10.100.0.9/31". */
  insideAddr?: string;
  /** TCP MSS clamp (0 = off). */
  mss?: number;
  /** Interface MTU. */
  mtu?: number;
  /** Outer path MTU towards the peer. */
  pathMtu?: number;
  /** Interface name (default "pq" + tunnel name when it fits 15 characters, else "pqif<ifId>"). */
  ifName?: string;
}

export interface DataPlaneStats {
  rxEsp: number;
  txEsp: number;
  unknownSpi: number;
  malformedIn: number;
  malformedOut: number;
  noPolicy: number;
  noSa: number;
  policyDrops: number;
  dummyPackets: number;
  expiredDrops: number;
  tooBig: number;
  mssClamped: number;
  sendErrors: number;
  internalErrors: number;
}

export class DataPlaneError extends PqError {}

interface SaState {
  spec: SaSpec;
  esp: EspSa;
  counters: SaCounters;
  /** Malformed packets (bad padding, truncated, ...), not part of SaCounters. */
  malformed: number;
  softSent: boolean;
  hardSent: boolean;
  dead: boolean;
}

interface Device {
  ifId: number;
  name: string;
  /** The tunnel that created it (route-based: its only tunnel). */
  tunnel: string;
  tun: TunDevice;
  ready: Promise<void>;
  /** Decrypted packets waiting for the batched write. */
  pending: Uint8Array[];
  /** Routes pointing at the device, with reference counts per CIDR. */
  routes: Map<string, number>;
}

const WRITE_BATCH = 64;
/** The keys of a recorded SaSpec once the EspSa holds its own: one shared empty array. */
const NO_KEY = new Uint8Array(0);

function isV6(addr: string): boolean {
  return addr.includes(':');
}

export class UserspaceDataPlane implements DataPlane {
  readonly name = 'userspace-esp';
  readonly stats: DataPlaneStats = {
    rxEsp: 0, txEsp: 0, unknownSpi: 0, malformedIn: 0, malformedOut: 0, noPolicy: 0, noSa: 0,
    policyDrops: 0, dummyPackets: 0, expiredDrops: 0, tooBig: 0, mssClamped: 0, sendErrors: 0, internalErrors: 0,
  };
  private readonly opts: UserspaceDataPlaneOptions;
  private readonly clock: Clock;
  private readonly sadIn = new Map<number, SaState>();
  private readonly sadOut = new Map<number, SaState>();
  /** Outbound SAs per reqid / per interface, in installation order (newest last). */
  private readonly outByReqid = new Map<number, SaState[]>();
  private readonly outByIf = new Map<number, SaState[]>();
  private readonly spd = new Spd();
  private readonly devices = new Map<number, Device>();
  private readonly tunnelOpts = new Map<string, TunnelOptions>();
  private readonly lastAcquire = new Map<number, number>();
  /** The peer's health probes per tunnel (docs/dataplane.md "Health probes"). */
  private readonly probes = new Map<string, ProbeCounters>();
  private readonly listeners: ((e: DataPlaneEvent) => void)[] = [];
  private readonly flowOut: Flow = newFlow();
  private readonly flowIn: Flow = newFlow();
  private flushScheduled = false;
  private closed = false;

  constructor(opts: UserspaceDataPlaneOptions) {
    if (opts.tunMtu !== undefined && (opts.tunMtu < 576 || opts.tunMtu > MAX_TUN_MTU)) throw new DataPlaneError('ERR_CONFIG', `tunMtu: expected 576..${MAX_TUN_MTU}, got ${opts.tunMtu}`);
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
  }

  // ---- configuration -------------------------------------------------------

  /** Per-tunnel interface settings (from TunnelConfig); applied to an existing interface too. */
  async setTunnelOptions(tunnel: string, o: TunnelOptions): Promise<void> {
    if (o.mtu !== undefined && (o.mtu < 576 || o.mtu > MAX_TUN_MTU)) throw new DataPlaneError('ERR_CONFIG', `mtu: expected 576..${MAX_TUN_MTU}, got ${o.mtu}`);
    this.tunnelOpts.set(tunnel, { ...this.tunnelOpts.get(tunnel), ...o });
    for (const d of this.devices.values()) if (d.ifId !== 0 && this.tunnelOf(d.ifId) === tunnel) await this.opts.links.configure(d.name, this.linkConfig(d.ifId, tunnel));
  }

  private tunnelOf(ifId: number): string | undefined {
    for (const s of this.outByIf.get(ifId) ?? []) return s.spec.tunnel;
    for (const s of this.sadIn.values()) if (s.spec.ifId === ifId) return s.spec.tunnel;
    for (const e of this.spd.outPolicies(ifId)) return e.spec.tunnel;
    return undefined;
  }

  private linkConfig(ifId: number, tunnel: string): LinkConfig {
    const t = this.tunnelOpts.get(tunnel) ?? {};
    const c: LinkConfig = {
      mtu: t.mtu ?? this.opts.tunMtu ?? 1400,
      addresses: ifId !== 0 && t.insideAddr ? [t.insideAddr] : [],
    };
    if (this.opts.txQueueLen) c.txQueueLen = this.opts.txQueueLen;
    return c;
  }

  private deviceName(ifId: number, tunnel: string): string {
    if (ifId === 0) return this.opts.policyDevice ?? 'pqpol0';
    const explicit = this.tunnelOpts.get(tunnel)?.ifName;
    if (explicit) return explicit;
    const candidate = `pq${tunnel}`;
    const taken = [...this.devices.values()].some((d) => d.name === candidate);
    return /^[A-Za-z0-9_.-]{1,15}$/.test(candidate) && !taken ? candidate : `pqif${ifId}`;
  }

  private async ensureDevice(ifId: number, tunnel: string): Promise<Device> {
    let d = this.devices.get(ifId);
    if (!d) {
      const name = this.deviceName(ifId, tunnel);
      const tun = this.opts.links.openTun(name);
      const dev: Device = { ifId, name: tun.name, tunnel, tun, ready: Promise.resolve(), pending: [], routes: new Map() };
      this.devices.set(ifId, dev);
      tun.start((pkts, n) => this.onTunPackets(dev, pkts, n));
      dev.ready = this.opts.links.configure(dev.name, this.linkConfig(ifId, tunnel)).catch((e: unknown) => {
        // Leave nothing half-made behind: the next addSa/addPolicy tries again.
        if (this.devices.get(ifId) === dev) this.devices.delete(ifId);
        tun.close();
        throw e;
      });
      d = dev;
    }
    await d.ready;
    return d;
  }

  /** Remove the interface of route-based tunnel `tunnel` (tunnel removed from the configuration). */
  async removeTunnel(tunnel: string): Promise<void> {
    for (const d of [...this.devices.values()]) if (d.ifId !== 0 && d.tunnel === tunnel) await this.removeInterface(d.ifId);
    this.tunnelOpts.delete(tunnel);
  }

  /** Remove a route-based tunnel's interface (its routes go with it). */
  async removeInterface(ifId: number): Promise<void> {
    const d = this.devices.get(ifId);
    if (!d) return;
    this.flush();
    this.devices.delete(ifId);
    d.tun.close();
  }

  // ---- DataPlane -------------------------------------------------------------

  async addSa(sa: SaSpec): Promise<void> {
    if (this.closed) throw new DataPlaneError('ERR_CLOSED', 'data plane closed');
    // Raw ESP (IP protocol 50) would need a raw socket; like kernel-libipsec, UDP encapsulation only.
    if (!sa.encap) throw new DataPlaneError('ERR_UNSUPPORTED', `SA ${sa.spi.toString(16)}: the userspace data plane needs UDP encapsulation (encap=yes)`);
    const sad = sa.direction === 'in' ? this.sadIn : this.sadOut;
    if (sad.has(sa.spi)) throw new DataPlaneError('ERR_SA_EXISTS', `SA ${sa.direction} ${sa.spi.toString(16)} exists`);
    const esp = new EspSa(sa);
    const state: SaState = {
      spec: { ...sa, encrKey: NO_KEY, integKey: NO_KEY, src: { ...sa.src }, dst: { ...sa.dst } },
      esp,
      counters: { bytes: 0, packets: 0, replayDrops: 0, authFailures: 0, lastUsed: 0 },
      malformed: 0,
      softSent: false,
      hardSent: false,
      dead: false,
    };
    try {
      await this.ensureDevice(sa.ifId, sa.tunnel);
    } catch (e) {
      esp.destroy();
      throw e;
    }
    if (sad.has(sa.spi)) {
      esp.destroy();
      throw new DataPlaneError('ERR_SA_EXISTS', `SA ${sa.direction} ${sa.spi.toString(16)} exists`);
    }
    sad.set(sa.spi, state);
    if (sa.direction === 'out') {
      push(this.outByReqid, sa.reqid, state);
      if (sa.ifId !== 0) push(this.outByIf, sa.ifId, state);
      this.lastAcquire.delete(sa.reqid);
    }
  }

  async updateSa(spi: number, direction: 'in' | 'out', src: Endpoint, dst: Endpoint): Promise<void> {
    const s = (direction === 'in' ? this.sadIn : this.sadOut).get(spi);
    if (!s) throw new DataPlaneError('ERR_NO_SA', `no ${direction} SA ${spi.toString(16)}`);
    s.spec.src = { ...src };
    s.spec.dst = { ...dst };
  }

  async deleteSa(spi: number, direction: 'in' | 'out'): Promise<void> {
    const sad = direction === 'in' ? this.sadIn : this.sadOut;
    const s = sad.get(spi);
    if (!s) return;
    sad.delete(spi);
    if (direction === 'out') {
      pull(this.outByReqid, s.spec.reqid, s);
      pull(this.outByIf, s.spec.ifId, s);
    }
    s.dead = true;
    s.esp.destroy();
  }

  async addPolicy(p: PolicySpec): Promise<void> {
    if (this.closed) throw new DataPlaneError('ERR_CLOSED', 'data plane closed');
    const known = this.spd.has(p);
    const e = this.spd.add(p);
    // A rekey successor installs the identical policy again (same reqid): nothing new to route.
    if (p.direction !== 'out' || known) return;
    const d = await this.ensureDevice(p.ifId, p.tunnel);
    for (const cidr of this.routesFor(e.spec)) {
      const n = d.routes.get(cidr) ?? 0;
      d.routes.set(cidr, n + 1);
      if (n === 0) await this.opts.links.addRoute(d.name, cidr);
    }
  }

  async deletePolicy(p: PolicySpec): Promise<void> {
    const e = this.spd.remove(p);
    if (!e || p.direction !== 'out') return;
    const d = this.devices.get(p.ifId);
    // Route-based interfaces keep their routes while they exist, so traffic
    // for the remote side is dropped (not sent in clear) between two Child SAs.
    if (!d || p.ifId !== 0) return;
    for (const cidr of this.routesFor(e.spec)) {
      const n = d.routes.get(cidr) ?? 0;
      if (n <= 1) {
        d.routes.delete(cidr);
        if (n === 1) await this.opts.links.delRoute(d.name, cidr);
      } else d.routes.set(cidr, n - 1);
    }
  }

  /**
   * Routes for a policy's remote selectors. A selector covering the whole
   * address family is skipped: routing everything (the peer's own outer
   * address included) into the TUN would cut the tunnel off; such setups
   * need the operator's routing (see docs, peers-and-machine.md).
   */
  private routesFor(p: PolicySpec): string[] {
    const out: string[] = [];
    for (const s of p.remote) for (const c of rangeToCidrs(s.startAddr, s.endAddr)) if (!c.endsWith('/0')) out.push(c);
    return out;
  }

  async querySa(spi: number, direction: 'in' | 'out'): Promise<SaCounters | undefined> {
    const s = (direction === 'in' ? this.sadIn : this.sadOut).get(spi);
    return s ? { ...s.counters, ...(direction === 'in' ? { malformedDrops: s.malformed } : {}) } : undefined;
  }

  onEvent(cb: (e: DataPlaneEvent) => void): void {
    this.listeners.push(cb);
  }

  probeCounters(tunnel: string): ProbeCounters | undefined {
    const c = this.probes.get(tunnel);
    return c ? { ...c } : undefined;
  }

  /**
   * Cloudflare-style health probes are ICMP echoes inside the tunnel: an
   * echo request (answered by the kernel) or an echo reply that is routed
   * back (Cloudflare's default "reply" type). Counted per tunnel; the ICMP
   * type is in Flow.sport (type << 8 | code).
   */
  private probe(tunnel: string, f: Flow, dir: 'in' | 'out'): void {
    const type = f.sport >> 8;
    const echo = f.proto === 1 ? type === 8 || type === 0 : type === 128 || type === 129;
    if (!echo) return;
    let c = this.probes.get(tunnel);
    if (!c) this.probes.set(tunnel, (c = { probesSeen: 0, probesAnswered: 0, lastProbeAt: 0 }));
    if (dir === 'in') {
      c.probesSeen++;
      c.lastProbeAt = this.clock.now();
    } else if (type === 0 || type === 129) c.probesAnswered++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    for (const d of this.devices.values()) d.tun.close();
    this.devices.clear();
    for (const s of [...this.sadIn.values(), ...this.sadOut.values()]) s.esp.destroy();
    this.sadIn.clear();
    this.sadOut.clear();
    this.outByReqid.clear();
    this.outByIf.clear();
    this.spd.clear();
  }

  /** Malformed-packet count of an SA (not part of the SaCounters interface). */
  malformedCount(spi: number, direction: 'in' | 'out'): number | undefined {
    return (direction === 'in' ? this.sadIn : this.sadOut).get(spi)?.malformed;
  }

  // ---- events ------------------------------------------------------------------

  private emit(e: DataPlaneEvent): void {
    // Deferred: a listener may call deleteSa, which must not run in the middle of a batch.
    queueMicrotask(() => {
      for (const l of this.listeners) l(e);
    });
  }

  private expire(s: SaState, hard: boolean): void {
    if (hard) {
      if (s.hardSent) return;
      s.hardSent = s.softSent = true;
      s.dead = true; // a hard-expired SA processes nothing more (RFC 4301 §4.4.2.1)
    } else {
      if (s.softSent) return;
      s.softSent = true;
    }
    this.emit({ kind: 'expire', spi: s.spec.spi, direction: s.spec.direction, hard });
  }

  private account(s: SaState, bytes: number): void {
    const c = s.counters;
    c.bytes += bytes;
    c.packets++;
    c.lastUsed = this.clock.now();
    const sp = s.spec;
    if ((sp.hardBytes && c.bytes >= sp.hardBytes) || (sp.hardPackets && c.packets >= sp.hardPackets)) this.expire(s, true);
    else if (!s.softSent && ((sp.softBytes && c.bytes >= sp.softBytes) || (sp.softPackets && c.packets >= sp.softPackets) || (sp.direction === 'out' && s.esp.seq >= s.esp.seqSoft))) this.expire(s, false);
  }

  private acquire(reqid: number): void {
    const now = this.clock.now();
    const last = this.lastAcquire.get(reqid);
    if (last !== undefined && now - last < (this.opts.acquireHoldMs ?? 5000)) return;
    this.lastAcquire.set(reqid, now);
    this.emit({ kind: 'acquire', reqid });
  }

  // ---- outbound ------------------------------------------------------------------

  private onTunPackets(dev: Device, pkts: Uint8Array[], count: number): void {
    for (let i = 0; i < count; i++) {
      try {
        this.outbound(dev, pkts[i]!);
      } catch (e) {
        this.stats.internalErrors++;
        this.opts.onError?.(e as Error);
      }
    }
    this.opts.flushUdp?.();
    this.flush(); // ICMP errors generated for this batch
  }

  private outbound(dev: Device, pkt: Uint8Array): void {
    const f = this.flowOut;
    if (!parseFlow(pkt, f)) {
      this.stats.malformedOut++;
      return;
    }
    let s: SaState | undefined;
    if (dev.ifId !== 0) {
      // Only traffic inside the Child SA's selectors may use it (RFC 4301 §5.1, RFC 7296 §2.9),
      // as on a kernel XFRM interface (no matching policy: XfrmOutNoPols). The kernel's own
      // chatter on the TUN (IPv6 router solicitations from its fe80:: address) must not go
      // into an IPv4-only SA: the peer drops it after decryption (RFC 4301 §5.2) and it leaks
      // the device's link-local address (docs/testing.md, traffic test).
      const e = this.spd.lookupOut(pkt, f, dev.ifId);
      if (!e) {
        this.stats.noPolicy++;
        return;
      }
      s = newestLive(this.outByIf.get(dev.ifId));
      if (!s) {
        this.stats.noSa++;
        this.acquire(e.spec.reqid);
        return;
      }
    } else {
      const e = this.spd.lookupOut(pkt, f, 0);
      if (!e) {
        this.stats.noPolicy++;
        return;
      }
      s = newestLive(this.outByReqid.get(e.spec.reqid));
      if (!s) {
        this.stats.noSa++;
        this.acquire(e.spec.reqid);
        return;
      }
    }
    const inner = pkt.length === f.length ? pkt : pkt.subarray(0, f.length);
    const topts = this.tunnelOpts.get(s.spec.tunnel);
    const mss = topts?.mss ?? this.opts.mss ?? 0;
    if (mss > 0 && clampMss(inner, f, mss)) this.stats.mssClamped++;

    // Path MTU (RFC 4301 §8.2): outer IP + UDP + ESP overhead must fit.
    const pathMtu = topts?.pathMtu ?? this.opts.pathMtu ?? 1500;
    const outer = (isV6(s.spec.dst.address) ? 40 : 20) + 8;
    const maxInner = s.esp.maxInner(pathMtu - outer);
    if (inner.length > maxInner && f.df && (f.family === 4 || maxInner >= 1280)) {
      // IPv4 with DF, or IPv6 (never fragmented by routers) when the tunnel can carry the
      // 1280-byte IPv6 minimum; smaller paths fragment the outer packet instead (RFC 8200 §5).
      this.stats.tooBig++;
      const icmp = icmpTooBig(inner, f, maxInner);
      if (icmp) this.queueWrite(dev, icmp);
      return;
    }
    const esp = s.esp.encapsulate(inner, f.family === 4 ? 4 : 41);
    if (!esp) {
      // RFC 4303 §3.3.3: the counter must not cycle; the SA is done.
      this.stats.expiredDrops++;
      this.expire(s, true);
      return;
    }
    this.account(s, inner.length);
    if (f.proto === 1 || f.proto === 58) this.probe(s.spec.tunnel, f, 'out');
    try {
      this.opts.sendUdp(s.spec.src, s.spec.dst, esp);
      this.stats.txEsp++;
    } catch (e) {
      this.stats.sendErrors++;
      this.opts.onError?.(e as Error);
    }
  }

  // ---- inbound --------------------------------------------------------------------

  /**
   * An ESP-in-UDP datagram (non-ESP marker already demultiplexed: the first
   * four bytes are a non-zero SPI) received on the NAT-T socket.
   */
  receiveEsp(data: Uint8Array, _from: Endpoint, _to: Endpoint): void {
    try {
      this.inbound(data);
    } catch (e) {
      this.stats.internalErrors++;
      this.opts.onError?.(e as Error);
    }
  }

  private inbound(data: Uint8Array): void {
    this.stats.rxEsp++;
    if (data.length < 8) {
      this.stats.malformedIn++;
      return;
    }
    const spi = ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0;
    const s = this.sadIn.get(spi);
    if (!s) {
      this.stats.unknownSpi++;
      return;
    }
    if (s.dead) {
      this.stats.expiredDrops++;
      return;
    }
    const r = s.esp.decapsulate(data);
    switch (r.status) {
      case DecapStatus.REPLAY:
        s.counters.replayDrops++;
        return;
      case DecapStatus.AUTH:
        s.counters.authFailures++;
        return;
      case DecapStatus.MALFORMED:
        s.malformed++;
        return;
    }
    if (r.nextHeader === 59) {
      this.stats.dummyPackets++; // RFC 4303 §2.6: dummy (TFC) packet, discard silently
      return;
    }
    const f = this.flowIn;
    const want = r.nextHeader === 4 ? 4 : r.nextHeader === 41 ? 6 : 0;
    if (want === 0 || !parseFlow(r.payload, f) || f.family !== want) {
      s.malformed++;
      return;
    }
    // Tunnel mode may carry TFC padding after the inner packet (RFC 4303 §2.7): trim to its length.
    const inner = r.payload.length === f.length ? r.payload : r.payload.subarray(0, f.length);
    this.account(s, inner.length);
    if (!this.spd.allowsIn(s.spec.reqid, inner, f)) {
      this.stats.policyDrops++;
      return;
    }
    const mss = this.tunnelOpts.get(s.spec.tunnel)?.mss ?? this.opts.mss ?? 0;
    if (mss > 0 && clampMss(inner, f, mss)) this.stats.mssClamped++;
    if (f.proto === 1 || f.proto === 58) this.probe(s.spec.tunnel, f, 'in');
    const dev = this.devices.get(s.spec.ifId);
    if (!dev) {
      this.stats.internalErrors++;
      return;
    }
    this.queueWrite(dev, inner);
  }

  private queueWrite(dev: Device, pkt: Uint8Array): void {
    dev.pending.push(pkt);
    if (dev.pending.length >= WRITE_BATCH) this.flushDevice(dev);
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the poll phase: every datagram read in this loop turn goes out in one batch.
      setImmediate(() => this.flush());
    }
  }

  private flushDevice(dev: Device): void {
    if (dev.pending.length === 0) return;
    const batch = dev.pending;
    dev.pending = [];
    try {
      dev.tun.write(batch, batch.length);
    } catch (e) {
      this.stats.internalErrors++;
      this.opts.onError?.(e as Error);
    }
  }

  /** Write every queued inbound packet now. */
  flush(): void {
    this.flushScheduled = false;
    for (const d of this.devices.values()) this.flushDevice(d);
  }
}

function push<K>(m: Map<K, SaState[]>, k: K, s: SaState): void {
  const l = m.get(k);
  if (l) l.push(s);
  else m.set(k, [s]);
}

function pull<K>(m: Map<K, SaState[]>, k: K, s: SaState): void {
  const l = m.get(k);
  if (!l) return;
  const i = l.indexOf(s);
  if (i >= 0) l.splice(i, 1);
  if (l.length === 0) m.delete(k);
}

function newestLive(l: SaState[] | undefined): SaState | undefined {
  if (!l) return undefined;
  for (let i = l.length - 1; i >= 0; i--) if (!l[i]!.dead) return l[i];
  return undefined;
}
