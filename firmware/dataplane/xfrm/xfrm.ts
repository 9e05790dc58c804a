/**
 * Kernel data plane: ESP done by the Linux kernel's XFRM framework
 * (strongSwan's kernel_netlink plugin plays this role), driven through
 * iproute2. RFC 4301 §4.4 (SPD/SAD), RFC 4303 (ESP, ESN, anti-replay),
 * RFC 3948 (UDP encapsulation), RFC 7296 §2.9 (traffic selectors).
 *
 *   addSa        xfrm state add (keys via `ip -batch -` stdin), UDP_ENCAP on
 *                our own NAT-T socket the first time an SA is encapsulated
 *   addPolicy    xfrm policy update out | in + fwd, reference-counted per
 *                selector (a rekeyed Child SA keeps its reqid and policies)
 *   route-based  (ifId > 0) an xfrm interface with that if_id, its inside
 *                address and MTU, routes for the remote selectors into it;
 *                states and policies carry the if_id
 *   querySa      ip -s xfrm state get → bytes, packets, replay, ICV failures
 *   events       ip xfrm monitor: soft/hard expiry (volume limits) and acquire
 *
 * Make-before-break on rekey comes from the kernel: with two outbound states
 * of one reqid, the newest is used.
 */
import type { DataPlane, DataPlaneEvent, Endpoint, PolicySpec, SaCounters, SaSpec } from '../types.js';
import type { TunnelOptions } from '../userspace.js';
import { compareAddr, parseAddr } from '../ip.js';
import { XfrmError } from './algorithms.js';
import { cidrContains, linkAddLine, policyLines, remoteCidrs, stateAddLine, stateDeleteLine, stateGetArgs } from './commands.js';
import { parseStateCounters, type MonitorEvent } from './parse.js';
import type { XfrmMonitor, XfrmSystem } from './system.js';

export interface XfrmDataPlaneOptions {
  system: XfrmSystem;
  /** MTU of xfrm interfaces (default 1400, as the userspace data plane's TUN). */
  mtu?: number;
  /** Underlying device for xfrm interfaces (`dev`); default none (Linux ≥ 5.x needs none). */
  underlay?: string;
  /** Remove all XFRM states and policies at start (a crashed predecessor's leftovers). Default true. */
  flushOnStart?: boolean;
  /** Failures with no caller (monitor, background route work). */
  onError?: (e: Error) => void;
  /**
   * Awaited once, before the first SA is installed (firmware image: load the
   * CPU's accelerated crypto drivers, firmware/appliance/cpu-crypto.ts). The
   * kernel binds a state to the best implementation of its algorithm that is
   * registered when the state is created and keeps it until the state goes,
   * so drivers that arrive later help only from the next rekey on. A failure
   * is reported through onError and the SA is installed anyway.
   */
  beforeFirstSa?: () => Promise<void>;
}

interface Iface {
  name: string;
  ifId: number;
  tunnel: string;
  ready: Promise<void>;
  /** CIDR → reference count. */
  routes: Map<string, number>;
}

const saKey = (spi: number, dir: 'in' | 'out'): string => `${dir}:${spi >>> 0}`;

export class XfrmDataPlane implements DataPlane {
  /** SaCounters.lastUsed is `ip xfrm state`'s `use` time: wall clock, 1 s resolution. */
  readonly lastUsedClock = 'wall' as const;
  readonly name = 'kernel-xfrm';
  private readonly sys: XfrmSystem;
  private readonly sas = new Map<string, SaSpec>();
  /** Kernel policy key → { reference count, delete line }. */
  private readonly policies = new Map<string, { refs: number; del: string }>();
  private readonly ifaces = new Map<number, Iface>();
  private readonly tunnelOpts = new Map<string, TunnelOptions>();
  private readonly pinnedPeers = new Set<string>();
  private readonly listeners: ((e: DataPlaneEvent) => void)[] = [];
  private monitor: XfrmMonitor | undefined;
  private started: Promise<void> | undefined;
  private firstSa: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: XfrmDataPlaneOptions) {
    this.sys = opts.system;
  }

  /** Flush leftovers and start the event monitor; runs once, before the first operation. */
  start(): Promise<void> {
    this.started ??= (async () => {
      if (this.opts.flushOnStart ?? true) await this.sys.ip.batch(['xfrm state flush', 'xfrm policy flush']);
      this.monitor = this.sys.monitor(
        (e) => this.onMonitor(e),
        (e) => this.error(e),
      );
    })();
    return this.started;
  }

  private error(e: Error): void {
    this.opts.onError?.(e);
  }

  private assertOpen(): void {
    if (this.closed) throw new XfrmError('ERR_CLOSED', 'data plane closed');
  }

  // ---- configuration (same shape as the userspace data plane) ---------------

  async setTunnelOptions(tunnel: string, o: TunnelOptions): Promise<void> {
    this.tunnelOpts.set(tunnel, { ...this.tunnelOpts.get(tunnel), ...o });
    for (const i of this.ifaces.values()) if (i.tunnel === tunnel) await this.configureIface(i);
  }

  /** Remove a route-based tunnel's interface (its routes go with it). */
  async removeTunnel(tunnel: string): Promise<void> {
    for (const i of [...this.ifaces.values()]) if (i.tunnel === tunnel) await this.removeIface(i);
    this.tunnelOpts.delete(tunnel);
  }

  private ifaceName(ifId: number, tunnel: string): string {
    const explicit = this.tunnelOpts.get(tunnel)?.ifName;
    if (explicit) return explicit;
    const candidate = `pq${tunnel}`;
    const taken = [...this.ifaces.values()].some((i) => i.name === candidate);
    return /^[A-Za-z0-9_.-]{1,15}$/.test(candidate) && !taken ? candidate : `pqif${ifId}`;
  }

  private async ensureIface(ifId: number, tunnel: string): Promise<Iface> {
    let i = this.ifaces.get(ifId);
    if (!i) {
      const iface: Iface = { name: this.ifaceName(ifId, tunnel), ifId, tunnel, ready: Promise.resolve(), routes: new Map() };
      this.ifaces.set(ifId, iface);
      iface.ready = (async () => {
        // One `ip` run for create + configure (each run costs a process start).
        const lines = [linkAddLine(iface.name, ifId, this.opts.underlay), ...this.ifaceConfigLines(iface)];
        try {
          await this.sys.ip.batch(lines);
        } catch (e) {
          if (!/File exists/.test((e as Error).message)) throw e;
          // A leftover interface of that name (a crashed predecessor): replace it.
          await this.sys.ip.batch([`link del ${iface.name}`, ...lines]);
        }
      })().catch((e: unknown) => {
        if (this.ifaces.get(ifId) === iface) this.ifaces.delete(ifId);
        throw e;
      });
      i = iface;
    }
    await i.ready;
    return i;
  }

  private ifaceConfigLines(i: Iface): string[] {
    const t = this.tunnelOpts.get(i.tunnel) ?? {};
    const lines = [`link set dev ${i.name} mtu ${t.mtu ?? this.opts.mtu ?? 1400}`];
    if (t.insideAddr) lines.push(`addr replace ${t.insideAddr} dev ${i.name}`);
    lines.push(`link set dev ${i.name} up`);
    return lines;
  }

  private async configureIface(i: Iface): Promise<void> {
    await this.sys.ip.batch(this.ifaceConfigLines(i));
  }

  private async removeIface(i: Iface): Promise<void> {
    this.ifaces.delete(i.ifId);
    await this.sys.ip.batch([`link del ${i.name}`]).catch((e: Error) => this.error(e));
  }

  // ---- DataPlane --------------------------------------------------------------

  async addSa(sa: SaSpec): Promise<void> {
    this.assertOpen();
    await this.start();
    const k = saKey(sa.spi, sa.direction);
    if (this.sas.has(k)) throw new XfrmError('ERR_SA_EXISTS', `SA ${sa.direction} ${(sa.spi >>> 0).toString(16)} exists`);
    const line = stateAddLine(sa); // validates before anything changes
    const before = this.opts.beforeFirstSa;
    if (before) await (this.firstSa ??= before().catch((e: unknown) => this.error(e instanceof Error ? e : new Error(String(e)))));
    if (sa.ifId) await this.ensureIface(sa.ifId, sa.tunnel);
    // Inbound ESP-in-UDP reaches the kernel only through a socket marked UDP_ENCAP
    // (RFC 3948 §2.2). Checked on every such SA: a reload may have bound new sockets;
    // already-marked ones are skipped.
    if (sa.encap && sa.direction === 'in') this.sys.enableUdpEncap(sa.dst.port);
    await this.sys.ip.batch([line]);
    // Keep what a re-install (updateSa) needs; keys stay with us, never logged.
    this.sas.set(k, { ...sa, src: { ...sa.src }, dst: { ...sa.dst }, encrKey: sa.encrKey.slice(), integKey: sa.integKey.slice() });
  }

  /**
   * New outer endpoints (NAT rebinding, MOBIKE): the addresses are part of a
   * state's identity, so the state is replaced with the same keys. Policy
   * templates name the outer addresses too: after an address change (not a
   * mere NAT port change) the caller re-adds the policies (addPolicy
   * replaces them in place).
   */
  async updateSa(spi: number, direction: 'in' | 'out', src: Endpoint, dst: Endpoint): Promise<void> {
    this.assertOpen();
    const k = saKey(spi, direction);
    const old = this.sas.get(k);
    if (!old) throw new XfrmError('ERR_NO_SA', `no ${direction} SA ${(spi >>> 0).toString(16)}`);
    const next: SaSpec = { ...old, src: { ...src }, dst: { ...dst } };
    await this.sys.ip.batch([stateDeleteLine(old), stateAddLine(next)]);
    this.sas.set(k, next);
  }

  async deleteSa(spi: number, direction: 'in' | 'out'): Promise<void> {
    const k = saKey(spi, direction);
    const sa = this.sas.get(k);
    if (!sa) return;
    this.sas.delete(k);
    sa.encrKey.fill(0);
    sa.integKey.fill(0);
    if (this.closed) return;
    // Already gone (hard expiry) is fine.
    await this.sys.ip.batch([stateDeleteLine(sa)]).catch((e: XfrmError) => {
      if (!/No such process|ESRCH/.test(e.message)) throw e;
    });
  }

  async addPolicy(p: PolicySpec): Promise<void> {
    this.assertOpen();
    await this.start();
    const lines = policyLines(p); // validates selectors first
    if (p.ifId) await this.ensureIface(p.ifId, p.tunnel);
    const todo: string[] = [];
    for (const l of lines) {
      const cur = this.policies.get(l.key);
      // `update` also replaces a policy of the same selector whose template changed (new endpoints).
      todo.push(l.update);
      this.policies.set(l.key, { refs: (cur?.refs ?? 0) + 1, del: l.delete });
    }
    try {
      await this.sys.ip.batch(todo);
    } catch (e) {
      // `ip -batch` applied the lines before the failing one: take back what nobody else holds.
      for (const l of lines) {
        const d = this.unref(l.key);
        if (d) await this.sys.ip.batch([d]).catch(() => undefined);
      }
      throw e;
    }
    if (p.ifId && p.direction === 'out') await this.addRoutes(p);
  }

  private unref(key: string): string | undefined {
    const cur = this.policies.get(key);
    if (!cur) return undefined;
    if (--cur.refs > 0) return undefined;
    this.policies.delete(key);
    return cur.del;
  }

  async deletePolicy(p: PolicySpec): Promise<void> {
    const dels: string[] = [];
    for (const l of policyLines(p)) {
      const d = this.unref(l.key);
      if (d) dels.push(d);
    }
    if (p.ifId && p.direction === 'out') await this.delRoutes(p);
    if (this.closed || dels.length === 0) return;
    // One by one: a policy the kernel already dropped must not stop the others.
    for (const d of dels)
      await this.sys.ip.batch([d]).catch((e: XfrmError) => {
        if (!/No such file|ENOENT/.test(e.message)) this.error(e);
      });
  }

  private async addRoutes(p: PolicySpec): Promise<void> {
    const i = await this.ensureIface(p.ifId, p.tunnel);
    const lines: string[] = [];
    let src: Map<4 | 6, string> | undefined;
    for (const c of remoteCidrs(p)) {
      const n = i.routes.get(c) ?? 0;
      i.routes.set(c, n + 1);
      if (n > 0) continue;
      // A remote selector that covers the peer's own outer address (0.0.0.0/0)
      // would route the ESP packets into the tunnel itself: pin the peer first.
      if (cidrContains(c, parseAddr(p.dst.address))) await this.pinPeer(p.dst.address);
      // Traffic this host originates must leave from an address inside the local
      // selectors or no policy matches it (strongSwan installs its routes with
      // such a `src` as well); forwarded traffic keeps its own source.
      src ??= await this.localSources(p);
      const fam = c.includes(':') ? 6 : 4;
      const s = src.get(fam);
      // (`ip -batch` takes no per-line -4/-6: the prefix tells the family.)
      lines.push(`route replace ${c} dev ${i.name}${s ? ` src ${s}` : ''}`);
    }
    await this.sys.ip.batch(lines);
  }

  /** Per family, the first address of this host inside the policy's local selectors. */
  private async localSources(p: PolicySpec): Promise<Map<4 | 6, string>> {
    const out = new Map<4 | 6, string>();
    const text = await this.sys.ip.run(['-o', 'addr', 'show']).catch(() => '');
    for (const m of text.matchAll(/\binet6?\s+([0-9a-fA-F:.]+)\/\d+/g)) {
      const addr = m[1]!;
      let bytes: Uint8Array;
      try {
        bytes = parseAddr(addr);
      } catch {
        continue;
      }
      const fam = bytes.length === 4 ? 4 : 6;
      if (out.has(fam)) continue;
      if (p.local.some((sel) => sel.startAddr.length === bytes.length && compareAddr(bytes, 0, sel.startAddr, bytes.length) >= 0 && compareAddr(bytes, 0, sel.endAddr, bytes.length) <= 0)) out.set(fam, addr);
    }
    return out;
  }

  private async delRoutes(p: PolicySpec): Promise<void> {
    const i = this.ifaces.get(p.ifId);
    if (!i) return;
    for (const c of remoteCidrs(p)) {
      const n = i.routes.get(c) ?? 0;
      if (n > 1) {
        i.routes.set(c, n - 1);
        continue;
      }
      i.routes.delete(c);
      if (!this.closed) await this.sys.ip.batch([`route del ${c} dev ${i.name}`]).catch(() => undefined);
    }
  }

  /** Host route to the peer through whatever reaches it now (`ip route get`). */
  private async pinPeer(peer: string): Promise<void> {
    if (this.pinnedPeers.has(peer)) return;
    const out = await this.sys.ip.run(['route', 'get', peer]);
    const via = /\bvia\s+(\S+)/.exec(out)?.[1];
    const dev = /\bdev\s+(\S+)/.exec(out)?.[1];
    if (!dev) throw new XfrmError('ERR_XFRM_ROUTE', `no route to peer ${peer}`);
    const host = peer.includes(':') ? `${peer}/128` : `${peer}/32`;
    await this.sys.ip.batch([`route replace ${host}${via ? ` via ${via}` : ''} dev ${dev}`]);
    this.pinnedPeers.add(peer);
  }

  async querySa(spi: number, direction: 'in' | 'out'): Promise<SaCounters | undefined> {
    const sa = this.sas.get(saKey(spi, direction));
    if (!sa || this.closed) return undefined;
    try {
      return parseStateCounters(await this.sys.ip.run(stateGetArgs(sa)));
    } catch (e) {
      if (/No such process|ESRCH/.test((e as Error).message)) return undefined;
      throw e;
    }
  }

  onEvent(cb: (e: DataPlaneEvent) => void): void {
    this.listeners.push(cb);
  }

  private emit(e: DataPlaneEvent): void {
    for (const l of this.listeners) l(e);
  }

  private onMonitor(e: MonitorEvent): void {
    if (this.closed) return;
    if (e.kind === 'acquire') {
      this.emit({ kind: 'acquire', reqid: e.reqid });
      return;
    }
    // The SPI alone is ambiguous between directions; the addresses settle it.
    for (const dir of ['in', 'out'] as const) {
      const sa = this.sas.get(saKey(e.spi, dir));
      if (sa && sa.src.address === e.src && sa.dst.address === e.dst) {
        if (e.hard) {
          // The kernel removed it.
          this.sas.delete(saKey(e.spi, dir));
          sa.encrKey.fill(0);
          sa.integKey.fill(0);
        }
        this.emit({ kind: 'expire', spi: e.spi, direction: dir, hard: e.hard });
        return;
      }
    }
  }

  /** Remove everything this data plane installed (states, policies, interfaces, pinned routes). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.monitor?.close();
    const lines: string[] = [];
    for (const p of this.policies.values()) lines.push(p.del);
    for (const sa of this.sas.values()) {
      lines.push(stateDeleteLine(sa));
      sa.encrKey.fill(0);
      sa.integKey.fill(0);
    }
    for (const i of this.ifaces.values()) lines.push(`link del ${i.name}`);
    for (const peer of this.pinnedPeers) lines.push(`route del ${peer.includes(':') ? `${peer}/128` : `${peer}/32`}`);
    this.closed = true;
    this.policies.clear();
    this.sas.clear();
    this.ifaces.clear();
    this.pinnedPeers.clear();
    // -force semantics by hand: one line at a time so one failure leaves the rest to run.
    for (const l of lines) await this.sys.ip.batch([l]).catch(() => undefined);
  }
}
