/**
 * Batched ESP-in-UDP input (RFC 3948) for the userspace data plane: reads
 * the NAT-T socket with recvmmsg() (native/pqtun.c recvBatch) instead of
 * node:dgram's one 'message' event (a Buffer, an rinfo object and a JS
 * callback) per datagram, and with UDP_GRO, so a peer's UDP GSO burst
 * arrives as one buffer of equal-sized datagrams that we split here.
 *
 * How: node's libuv handle for the socket stops reading (recvStop); a
 * duplicate descriptor of the same socket is polled by the addon's watcher,
 * and every wakeup drains it in batches. Datagrams whose first four bytes
 * are a non-zero SPI are ESP (RFC 3948 §2.2) and go to `onEsp` as views of a
 * reused arena (consume synchronously); everything else (IKE behind the
 * non-ESP marker, NAT keepalives) goes to `onOther` as copies. stop() gives
 * the socket back to node.
 */
import type { Endpoint } from './types.js';
import type { PqTunAddon } from './tun/tun.js';
import { bytesToIp } from '../util/ip.js';

export interface UdpBatchReceiverOptions {
  lib: PqTunAddon;
  /** The node:dgram socket's libuv handle (fd, recvStop, recvStart). */
  handle: { fd: number; recvStop(): number; recvStart(): number };
  local: Endpoint;
  onEsp(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  onOther(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  /** After each drained wakeup (the data plane flushes its TUN writes). */
  onBatchEnd?(): void;
  onError?(e: Error): void;
  /** UDP GRO (default true). */
  gro?: boolean;
}

const SLOTS = 32;
/** A GRO run is at most 64 KiB; without GRO one datagram (< 64 KiB too). */
const SLOT_SIZE = 65536;
/** recvBatch rounds per wakeup before yielding to the event loop (the poll is level-triggered). */
const MAX_ROUNDS = 8;

export class UdpBatchReceiver {
  readonly stats = { datagrams: 0, batches: 0, groRuns: 0, truncated: 0, errors: 0 };
  private readonly arena = Buffer.allocUnsafe(SLOTS * SLOT_SIZE);
  private readonly meta = new Int32Array(SLOTS * 8);
  private fd = -1;
  private watcher: unknown;
  private last: { fam: number; port: number; w0: number; w1: number; w2: number; w3: number; ep: Endpoint } | undefined;

  constructor(private readonly opts: UdpBatchReceiverOptions) {}

  /** Take the socket's input over. Throws (and changes nothing) if the addon cannot. */
  start(): void {
    const { lib, handle } = this.opts;
    const fd = lib.dup(handle.fd);
    try {
      if (this.opts.gro ?? true) {
        try {
          lib.setUdpGro(fd, true);
        } catch {
          // old kernel: one datagram per slot
        }
      }
      this.watcher = lib.watch(fd, (status) => {
        if (status < 0) {
          this.stats.errors++;
          this.opts.onError?.(new Error(`poll on the NAT-T socket: ${status}`));
          return;
        }
        this.drain();
      });
    } catch (e) {
      lib.close(fd);
      throw e;
    }
    this.fd = fd;
    handle.recvStop(); // node stops reading; datagrams queued so far are read by us
  }

  private from(m: Int32Array, o: number): Endpoint {
    const fam = m[o + 2]!;
    const port = m[o + 3]!;
    const w0 = m[o + 4]!;
    const w1 = m[o + 5]!;
    const w2 = m[o + 6]!;
    const w3 = m[o + 7]!;
    const l = this.last;
    if (l && l.fam === fam && l.port === port && l.w0 === w0 && l.w1 === w1 && l.w2 === w2 && l.w3 === w3) return l.ep;
    let address: string;
    if (fam === 4) address = `${(w0 >>> 24) & 0xff}.${(w0 >>> 16) & 0xff}.${(w0 >>> 8) & 0xff}.${w0 & 0xff}`;
    else {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      [w0, w1, w2, w3].forEach((w, i) => v.setUint32(i * 4, w >>> 0));
      address = bytesToIp(b); // RFC 5952, the form UdpTransport and the engine use
    }
    const ep = { address, port };
    this.last = { fam, port, w0, w1, w2, w3, ep };
    return ep;
  }

  private drain(): void {
    const { lib, local } = this.opts;
    const arena = this.arena;
    const meta = this.meta;
    for (let round = 0; round < MAX_ROUNDS && this.fd >= 0; round++) {
      let n: number;
      try {
        n = lib.recvBatch(this.fd, arena, SLOT_SIZE, SLOTS, meta);
      } catch (e) {
        this.stats.errors++;
        this.opts.onError?.(e as Error);
        break;
      }
      if (n === 0) break;
      this.stats.batches++;
      for (let i = 0; i < n; i++) {
        const o = i * 8;
        const len = meta[o]!;
        if (len < 0) {
          this.stats.truncated++;
          continue;
        }
        const from = this.from(meta, o);
        const base = i * SLOT_SIZE;
        const gso = meta[o + 1]!;
        const step = gso > 0 ? gso : len;
        if (gso > 0) this.stats.groRuns++;
        for (let off = 0; off < len; off += step) {
          const end = Math.min(off + step, len);
          this.dispatch(arena.subarray(base + off, base + end), from, local);
        }
      }
      if (n < SLOTS) break;
    }
    this.opts.onBatchEnd?.();
  }

  private dispatch(d: Uint8Array, from: Endpoint, to: Endpoint): void {
    this.stats.datagrams++;
    try {
      // RFC 3948 §2.2: a non-zero first word is an ESP SPI; zero = IKE behind the marker; one 0xff byte = keepalive.
      if (d.length >= 8 && (d[0]! | d[1]! | d[2]! | d[3]!) !== 0) this.opts.onEsp(d, from, to);
      else this.opts.onOther(new Uint8Array(d), from, to);
    } catch (e) {
      this.stats.errors++;
      this.opts.onError?.(e as Error);
    }
  }

  /** Give the socket back to node (if it is still open). Idempotent. */
  stop(): void {
    if (this.fd < 0) return;
    const { lib, handle } = this.opts;
    if (this.watcher) lib.unwatch(this.watcher);
    this.watcher = undefined;
    try {
      lib.setUdpGro(this.fd, false); // node's reader cannot split GRO runs
    } catch {
      // socket already closed
    }
    lib.close(this.fd);
    this.fd = -1;
    try {
      handle.recvStart();
    } catch {
      // the socket was closed
    }
  }
}

/** The libuv handle of a node:dgram socket (see udp-batch.ts dgramSocketFd). */
export function dgramHandle(socket: object): UdpBatchReceiverOptions['handle'] | undefined {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const h = sym ? (socket as Record<symbol, { handle?: unknown } | undefined>)[sym]?.handle : undefined;
  const hh = h as { fd?: unknown; recvStop?: unknown; recvStart?: unknown } | undefined;
  if (!hh || typeof hh.fd !== 'number' || hh.fd < 0 || typeof hh.recvStop !== 'function' || typeof hh.recvStart !== 'function') return undefined;
  return hh as UdpBatchReceiverOptions['handle'];
}
