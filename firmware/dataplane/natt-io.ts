/**
 * The userspace data plane's fast I/O on the daemon's NAT-T sockets
 * (RFC 3948 ESP in UDP): sendmmsg + UDP GSO out (udp-batch.ts), recvmmsg +
 * UDP GRO in (udp-recv.ts), bigger socket buffers. The daemon's UdpTransport
 * still owns the sockets (binding, IKE sends, close); this borrows their
 * descriptors.
 *
 * UdpTransport keeps its sockets private, so they are found by shape (its
 * `bound` list of { socket, role, local }); if that ever fails, nothing is
 * taken over and the daemon keeps using node:dgram through the transport.
 * A public UdpTransport accessor for the NAT-T sockets would replace this.
 */
import type { Endpoint } from './types.js';
import type { PqTunAddon } from './tun/tun.js';
import { nativeAead } from './esp/native-aead.js';
import { UdpBatchSender, dgramSocketFd } from './udp-batch.js';
import { UdpBatchReceiver, dgramHandle } from './udp-recv.js';
import type { Logger } from '../log.js';

interface BoundSocket {
  socket: object;
  role: string;
  local: Endpoint;
}

export interface NattIoOptions {
  /** The transport whose NAT-T sockets are used (a UdpTransport; anything else: no fast I/O). */
  transport: object;
  log: Logger;
  /** Send one datagram the ordinary way (transport.sendRaw). */
  fallback(from: Endpoint, to: Endpoint, data: Uint8Array): void;
}

export interface NattIoHandlers {
  /** ESP (non-zero SPI); `data` is a view of a reused buffer: consume synchronously. */
  onEsp(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  /** Everything else on the NAT-T port (non-ESP marker + IKE, keepalives), a copy. */
  onOther(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  onBatchEnd(): void;
}

/** Socket buffers for ESP bursts (a peer's TUN batch or UDP GSO message), beyond the usual 208 KiB rmem_max. */
const RCVBUF = 8 << 20;
const SNDBUF = 4 << 20;

export class NattIo {
  readonly sender: UdpBatchSender;
  private readonly receivers = new Map<object, UdpBatchReceiver>();
  private readonly tuned = new Set<number>();
  private handlers: NattIoHandlers | undefined;

  private constructor(
    private readonly lib: PqTunAddon,
    private readonly opts: NattIoOptions,
  ) {
    this.sender = new UdpBatchSender({
      lib,
      fdFor: (from) => {
        const b = this.bound().find((x) => x.role === 'natt' && x.local.address === from.address && x.local.port === from.port);
        return this.tune(b ? dgramSocketFd(b.socket) : undefined);
      },
      fallback: opts.fallback,
      onError: (e) => opts.log.debug('ESP send failed', { error: e }),
    });
    for (const b of this.bound()) if (b.role === 'natt') this.tune(dgramSocketFd(b.socket));
  }

  /** Fast I/O for `transport`, or undefined (addon not built / switched off, or not a socket transport). */
  static create(opts: NattIoOptions): NattIo | undefined {
    const lib = nativeAead();
    if (!lib || typeof lib.sendBatch !== 'function' || typeof lib.recvBatch !== 'function') return undefined;
    const bound = (opts.transport as { bound?: unknown }).bound;
    if (!Array.isArray(bound)) return undefined;
    return new NattIo(lib, opts);
  }

  private bound(): BoundSocket[] {
    const b = (this.opts.transport as { bound?: unknown }).bound;
    return Array.isArray(b) ? (b as BoundSocket[]).filter((x) => x && typeof x.socket === 'object' && x.local) : [];
  }

  private tune(fd: number | undefined): number | undefined {
    if (fd === undefined || this.tuned.has(fd)) return fd;
    this.tuned.add(fd);
    try {
      this.lib.setSocketBuffers(fd, RCVBUF, SNDBUF); // SO_*BUFFORCE needs root, which a gateway has
    } catch (e) {
      this.opts.log.warn('cannot enlarge the NAT-T socket buffers', { error: e });
    }
    return fd;
  }

  /** Start reading the NAT-T sockets with recvmmsg (ESP to `h.onEsp`, the rest to `h.onOther`). */
  receive(h: NattIoHandlers): void {
    this.handlers = h;
    this.sync();
  }

  /**
   * Match the readers to the transport's current NAT-T sockets (after a
   * reload re-bound addresses): new sockets are taken over, readers of
   * sockets that went away are released (their duplicate descriptors would
   * otherwise keep the sockets open).
   */
  sync(): void {
    this.sender.reset();
    const h = this.handlers;
    const live = new Set<object>();
    for (const b of this.bound()) {
      if (b.role !== 'natt') continue;
      live.add(b.socket);
      if (!h || this.receivers.has(b.socket)) continue;
      const handle = dgramHandle(b.socket);
      if (!handle) continue;
      this.tune(handle.fd);
      const local = { ...b.local };
      const r = new UdpBatchReceiver({
        lib: this.lib,
        handle,
        local,
        onEsp: h.onEsp,
        onOther: h.onOther,
        onBatchEnd: h.onBatchEnd,
        onError: (e) => this.opts.log.debug('NAT-T receive error', { error: e }),
      });
      try {
        r.start();
        this.receivers.set(b.socket, r);
      } catch (e) {
        this.opts.log.warn('batched receive unavailable; node:dgram reads the NAT-T socket', { local: `${local.address}:${local.port}`, error: e });
      }
    }
    for (const [sock, r] of this.receivers) {
      if (live.has(sock)) continue;
      r.stop();
      this.receivers.delete(sock);
    }
  }

  /** Flush, and give the sockets back to node:dgram. Call before the transport closes them. */
  close(): void {
    this.sender.close();
    for (const r of this.receivers.values()) r.stop();
    this.receivers.clear();
  }
}
