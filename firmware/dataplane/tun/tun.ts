/**
 * The kernel TUN device through the pqtun N-API addon (native/pqtun.c).
 *
 * Read path: the addon's libuv poll handle reports readability once per
 * event-loop wakeup; we drain the non-blocking fd with readBatch (up to
 * `batch` packets per syscall round, no thread-pool hop) and hand the batch
 * to the data plane. The poll is level-triggered, so stopping after a few
 * rounds to let other I/O run loses nothing.
 *
 * Write path: with IFF_VNET_HDR (default when the addon has it), runs of TCP
 * segments of one flow are merged into one GSO packet first (gro.ts), so the
 * host's TCP stack sees 64 KiB segments; other packets get a zero header.
 *
 * The addon is loaded lazily from native/build/Release/pqtun.node (built by
 * `npm run build:native`) through util/native-addon.ts, the loader the IKE
 * crypto fast path (crypto/native.ts) shares; PQGATE_TUN_ADDON overrides the path.
 */
import { getSystemErrorName } from 'node:util';
import { PqError } from '../../util/errors.js';
import { findNativeAddon, loadNativeAddon } from '../../util/native-addon.js';
import type { TunDevice } from './device.js';
import { TcpGro, VNET_HDR_LEN } from './gro.js';

export interface PqTunAddon {
  /** vnetHdr: IFF_VNET_HDR (builds that have `vnetHdr: true` only). */
  open(name?: string, vnetHdr?: boolean): { fd: number; name: string; vnetHdr?: boolean };
  readBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array, vnetHdr?: boolean): number;
  /** vnetHdrs: count * 10 bytes of virtio_net_hdr, one per packet (IFF_VNET_HDR devices). */
  writeBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array, count: number, vnetHdrs?: Uint8Array): number;
  /** The build supports IFF_VNET_HDR devices. */
  readonly vnetHdr?: boolean;
  close(fd: number): void;
  setUdpEncap(socketFd: number, type: number): void;
  watch(fd: number, callback: (status: number) => void): unknown;
  unwatch(handle: unknown): void;
  /**
   * sendmmsg() of buffers[0..count) to addr (4 or 16 bytes) : port, runs of equal-sized datagrams as
   * one UDP GSO message when `gso`; returns how many left (EAGAIN stops early).
   */
  sendBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array, count: number, addr: Uint8Array, port: number, gso?: boolean): number;
  /** SO_RCVBUFFORCE / SO_SNDBUFFORCE (root), else SO_RCVBUF / SO_SNDBUF; 0 = leave alone. */
  setSocketBuffers(fd: number, rcvbuf: number, sndbuf: number): void;
  /** recvmmsg() into arena slots; meta gets 8 int32 per datagram (length, GRO size, family, port, address words). */
  recvBatch(fd: number, arena: Uint8Array, slotSize: number, slots: number, meta: Int32Array): number;
  setUdpGro(fd: number, on: boolean): void;
  dup(fd: number): number;
  /** One OpenSSL AEAD context (key schedule kept) for ESP; see esp/native-aead.ts. */
  aeadNew(alg: string, key: Uint8Array, salt: Uint8Array, icvLen: number, encrypt: boolean): unknown;
  aeadSeal(handle: unknown, pkt: Uint8Array, plainLen: number, seqHi: number): void;
  aeadOpen(handle: unknown, pkt: Uint8Array, len: number, seqHi: number, out: Uint8Array): boolean;
  aeadFree(handle: unknown): void;
}

/** Largest interface MTU the default read buffers hold. */
export const MAX_TUN_MTU = 16384;

/** setsockopt UDP_ENCAP value for ESP-in-UDP (RFC 3948), linux/udp.h. */
export const UDP_ENCAP_ESPINUDP = 2;

export class TunAddonError extends PqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TUN_ADDON', message, options);
  }
}

/** Where the addon would be loaded from (undefined if not built); one loader for the data plane and crypto/native.ts. */
export const findTunAddon = findNativeAddon;

export function loadTunAddon(): PqTunAddon {
  try {
    return loadNativeAddon() as PqTunAddon;
  } catch (e) {
    throw new TunAddonError((e as Error).message, { cause: e });
  }
}

/** Mark a UDP socket (fd from a node dgram socket's handle) for kernel ESP-in-UDP decapsulation. Kernel backend only. */
export function setUdpEncap(socketFd: number, type: number = UDP_ENCAP_ESPINUDP): void {
  loadTunAddon().setUdpEncap(socketFd, type);
}

export interface TunOptions {
  /** Packets per readBatch call (default 32). */
  batch?: number;
  /**
   * Bytes per read buffer; must be >= the interface MTU (a longer packet is
   * truncated by the kernel and then dropped as malformed). Default
   * MAX_TUN_MTU: 32 x 16 KiB = 512 KiB of buffers per device.
   */
  bufferSize?: number;
  /** readBatch rounds per wakeup before yielding to the event loop (default 16). */
  maxRounds?: number;
  /**
   * Coalesce TCP segments on write (userspace GRO over IFF_VNET_HDR, gro.ts).
   * Default: on when the addon supports it, unless PQGATE_TUN_GRO=0.
   */
  gro?: boolean;
}

export interface TunStats {
  rxPackets: number;
  rxBatches: number;
  /** Packets handed to the kernel (a GRO-merged packet counts once). */
  txPackets: number;
  /** Packets that went into GRO-merged packets. */
  txMerged: number;
  readErrors: number;
  writeErrors: number;
}

export class KernelTun implements TunDevice {
  readonly name: string;
  readonly fd: number;
  readonly stats: TunStats = { rxPackets: 0, rxBatches: 0, txPackets: 0, txMerged: 0, readErrors: 0, writeErrors: 0 };
  /** Opened with IFF_VNET_HDR: writes are GRO-coalesced. */
  readonly gro: boolean;
  private readonly coalescer: TcpGro | undefined;
  /** Last read/write error, for diagnostics. */
  lastError: Error | undefined;
  private readonly lib: PqTunAddon;
  private readonly bufs: Buffer[];
  private readonly lens: Int32Array;
  private readonly views: Uint8Array[];
  private readonly maxRounds: number;
  private wlens = new Int32Array(64);
  private watcher: unknown;
  private closed = false;

  /** Create (or attach to) TUN device `name` (kernel picks "tunN" when omitted). Throws with .code (EPERM, ENOENT...). */
  static open(name?: string, opts: TunOptions = {}): KernelTun {
    const lib = loadTunAddon();
    const wantGro = (opts.gro ?? process.env.PQGATE_TUN_GRO !== '0') && lib.vnetHdr === true;
    const { fd, name: actual, vnetHdr } = lib.open(name, wantGro);
    return new KernelTun(lib, fd, actual, opts, vnetHdr === true);
  }

  private constructor(lib: PqTunAddon, fd: number, name: string, opts: TunOptions, vnet: boolean) {
    this.lib = lib;
    this.fd = fd;
    this.name = name;
    this.gro = vnet;
    this.coalescer = vnet ? new TcpGro() : undefined;
    const batch = opts.batch ?? 32;
    const size = opts.bufferSize ?? MAX_TUN_MTU;
    this.bufs = Array.from({ length: batch }, () => Buffer.allocUnsafe(size));
    this.lens = new Int32Array(batch);
    this.views = new Array<Uint8Array>(batch);
    this.maxRounds = opts.maxRounds ?? 16;
  }

  start(onPackets: (pkts: Uint8Array[], count: number) => void): void {
    if (this.closed) throw new TunAddonError(`${this.name}: closed`);
    if (this.watcher) throw new TunAddonError(`${this.name}: already started`);
    this.watcher = this.lib.watch(this.fd, (status) => {
      if (status < 0) {
        // libuv reports negated errnos; name them like Node's own errors.
        const code = getSystemErrorName(status);
        this.fail(Object.assign(new TunAddonError(`${this.name}: poll: ${code}`), { code, errno: -status }));
        return;
      }
      this.drain(onPackets);
    });
  }

  /**
   * A read error on a TUN fd means the device is gone (deleted under us):
   * stop polling, or the level-triggered poll would spin on it.
   */
  private fail(e: Error): void {
    this.stats.readErrors++;
    this.lastError = e;
    if (this.watcher) this.lib.unwatch(this.watcher);
    this.watcher = undefined;
  }

  private drain(onPackets: (pkts: Uint8Array[], count: number) => void): void {
    for (let round = 0; round < this.maxRounds && !this.closed; round++) {
      let n: number;
      try {
        n = this.lib.readBatch(this.fd, this.bufs, this.lens, this.gro);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      if (n === 0) return;
      for (let i = 0; i < n; i++) this.views[i] = this.bufs[i]!.subarray(0, this.lens[i]!);
      this.stats.rxPackets += n;
      this.stats.rxBatches++;
      onPackets(this.views, n);
      if (n < this.bufs.length) return; // drained
    }
  }

  write(pkts: Uint8Array[], count: number): void {
    if (this.closed) return;
    let hdrs: Uint8Array | undefined;
    if (this.coalescer) {
      const g = this.coalescer.coalesce(pkts, count);
      pkts = g.pkts;
      count = g.count;
      hdrs = g.hdrs;
      this.stats.txMerged += g.merged;
    }
    if (this.wlens.length < count) this.wlens = new Int32Array(count);
    let off = 0;
    while (off < count) {
      const batch = off === 0 ? pkts : pkts.slice(off, count);
      const todo = count - off;
      for (let i = 0; i < todo; i++) this.wlens[i] = batch[i]!.length;
      try {
        const n = this.lib.writeBatch(this.fd, batch, this.wlens, todo, hdrs && (off === 0 ? hdrs : hdrs.subarray(off * VNET_HDR_LEN)));
        this.stats.txPackets += n;
        if (n < todo) this.stats.writeErrors += todo - n; // EAGAIN: queue full, drop like a NIC would
        return;
      } catch (e) {
        // One bad packet (EINVAL, ...) must not take the batch with it: skip it and go on.
        this.stats.writeErrors++;
        this.lastError = e as Error;
        const idx = (e as { index?: unknown }).index;
        if (typeof idx !== 'number') return;
        this.stats.txPackets += idx;
        off += idx + 1;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watcher) this.lib.unwatch(this.watcher); // before close(fd): never poll a closed fd
    this.watcher = undefined;
    this.lib.close(this.fd);
  }
}
