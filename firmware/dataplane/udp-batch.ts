/**
 * Batched ESP-in-UDP output (RFC 3948 §2.1) for the userspace data plane:
 * the ESP packets one TUN read batch produced leave in sendmmsg() calls on
 * the NAT-T socket's file descriptor (native/pqtun.c sendBatch) instead of
 * one node:dgram send each (a libuv request, a syscall and a callback per
 * packet: the largest single cost of the pipeline before, see
 * docs/dataplane.md). Same socket, so the same source address and port as
 * the IKE traffic (NAT mappings stay shared).
 *
 * A datagram whose socket has no usable descriptor goes through the
 * fallback (the transport's sendRaw). Queued datagrams leave at flush(),
 * which the data plane calls at the end of every TUN batch; a setImmediate
 * flush catches anything queued outside a batch.
 */
import type { Endpoint } from './types.js';
import type { PqTunAddon } from './tun/tun.js';
import { parseAddr } from './ip.js';

export interface UdpBatchSenderOptions {
  lib: PqTunAddon;
  /** File descriptor of the UDP socket bound to `from` (the NAT-T socket), or undefined. */
  fdFor(from: Endpoint): number | undefined;
  /** Send one datagram some other way (no descriptor). */
  fallback(from: Endpoint, to: Endpoint, data: Uint8Array): void;
  onError?(e: Error): void;
  /** Use UDP GSO (default true). */
  gso?: boolean;
}

interface Group {
  fd: number;
  addr: Uint8Array;
  port: number;
  bufs: Uint8Array[];
  n: number;
}

/** Flush a group at this many datagrams (the addon sends up to 64 per sendmmsg). */
const MAX_GROUP = 256;

export class UdpBatchSender {
  readonly stats = { datagrams: 0, batches: 0, dropped: 0, errors: 0, fallback: 0 };
  /** UDP GSO (UDP_SEGMENT) for runs of equal-sized datagrams; switched off for good if the kernel refuses it. */
  gso: boolean;
  private readonly groups = new Map<string, Group>();
  private readonly fds = new Map<string, number | undefined>();
  private lens = new Int32Array(MAX_GROUP);
  private scheduled = false;
  private closed = false;

  constructor(private readonly opts: UdpBatchSenderOptions) {
    this.gso = opts.gso ?? true;
  }

  send(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    if (this.closed) return;
    const fk = `${from.address}|${from.port}`;
    let fd = this.fds.get(fk);
    if (fd === undefined && !this.fds.has(fk)) {
      fd = this.opts.fdFor(from);
      this.fds.set(fk, fd);
    }
    if (fd === undefined) {
      this.stats.fallback++;
      this.opts.fallback(from, to, data);
      return;
    }
    const key = `${fd}|${to.address}|${to.port}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { fd, addr: parseAddr(to.address), port: to.port, bufs: [], n: 0 };
      this.groups.set(key, g);
    }
    g.bufs[g.n++] = data;
    if (g.n >= MAX_GROUP) this.flushGroup(g);
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Send everything queued. */
  flush(): void {
    this.scheduled = false;
    for (const g of this.groups.values()) if (g.n > 0) this.flushGroup(g);
  }

  private flushGroup(g: Group): void {
    const n = g.n;
    g.n = 0;
    for (let i = 0; i < n; i++) this.lens[i] = g.bufs[i]!.length;
    let off = 0;
    while (off < n) {
      const bufs = off === 0 ? g.bufs : g.bufs.slice(off, n);
      try {
        const sent = this.opts.lib.sendBatch(g.fd, bufs, off === 0 ? this.lens : this.lens.subarray(off), n - off, g.addr, g.port, this.gso);
        this.stats.datagrams += sent;
        this.stats.batches++;
        this.stats.dropped += n - off - sent; // socket buffer full: dropped like a full NIC queue
        break;
      } catch (e) {
        // One failing datagram (EMSGSIZE, a route gone...) must not take the rest with it.
        this.stats.errors++;
        this.opts.onError?.(e as Error);
        const idx = (e as { index?: unknown }).index;
        if (typeof idx !== 'number') break;
        const code = (e as { code?: unknown }).code;
        if (this.gso && (code === 'EIO' || code === 'EINVAL' || code === 'ENOPROTOOPT' || code === 'EOPNOTSUPP')) {
          // No UDP GSO on this path (old kernel, no checksum offload): plain sendmmsg from now on.
          this.gso = false;
          this.stats.datagrams += idx;
          off += idx;
          continue;
        }
        this.stats.datagrams += idx;
        off += idx + 1;
      }
    }
    g.bufs.fill(undefined as unknown as Uint8Array, 0, n); // do not keep sent packets alive
  }

  /** Forget cached descriptors (sockets were re-bound). */
  reset(): void {
    this.flush();
    this.fds.clear();
    this.groups.clear();
  }

  close(): void {
    this.flush();
    this.closed = true;
    this.fds.clear();
    this.groups.clear();
  }
}

/**
 * The file descriptor of a node:dgram socket (Linux): its libuv handle's
 * `fd`. Node keeps the handle under an internal symbol; `_handle` is the
 * deprecated public alias (DEP0112) we avoid because it warns.
 */
export function dgramSocketFd(socket: object): number | undefined {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = sym ? (socket as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[sym]?.handle : undefined;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
