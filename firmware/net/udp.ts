/**
 * IKE over UDP with node:dgram: port 500 and the NAT-T port 4500
 * (RFC 7296 §2.23, RFC 3948 §2.2 non-ESP marker demultiplexing in natt.ts).
 *
 * Local address of a received datagram: Node's dgram has no IP_PKTINFO, so
 * a socket bound to 0.0.0.0 cannot tell which local address a datagram was
 * sent to, yet IKE needs it (NAT-D hashes, the reply's source address, the
 * SA's outer endpoints). We therefore bind one socket pair (IKE + NAT-T) per
 * concrete local address: a wildcard entry in `listen` ("0.0.0.0" or "::")
 * expands to every address of that family found by os.networkInterfaces()
 * at start (IPv6 link-local addresses are skipped: they need a zone id).
 * Addresses added later are picked up by refresh() (the daemon calls it on
 * `reload`); until then they are not served.
 */
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { isIP, isIPv6 } from '../util/ip.js';
import type { LookupOneOptions } from 'node:dns';
import type { Endpoint } from '../dataplane/types.js';
import type { DatagramHandler, IkeTransport } from './types.js';
import { endpointKey } from './types.js';
import { classifyNattDatagram } from './natt.js';
import { NON_ESP_MARKER_LEN } from '../ikev2/constants.js';
import { canonicalIp, isWildcard, isLoopback, isLinkLocalV6 } from './address.js';
import { nullLogger, type Logger } from '../log.js';
import { PqError } from '../util/errors.js';

const NON_ESP_MARKER = new Uint8Array(NON_ESP_MARKER_LEN);

/**
 * dgram resolves the address of every send() with dns.lookup(), which for
 * an IP literal (all the engine ever sends to) still validates its options
 * and defers the send to the next tick. Literals are answered at once here;
 * anything else goes to dns.lookup() as before. node:dns is loaded only
 * then (process.getBuiltinModule): with a lookup function of its own, dgram
 * never loads it, and compiling it (with its default resolver) cost ~40 ms of
 * the daemon's start under QEMU TCG (docs/image.md "Node start-up").
 */
function literalLookup(hostname: string, options: LookupOneOptions, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = isIP(hostname);
  if (family !== 0) cb(null, hostname, family);
  else process.getBuiltinModule('node:dns').lookup(hostname, options, cb);
}

/**
 * canonicalIp() of the addresses seen per datagram (peer and local source),
 * remembered: parsing the same few strings with regular expressions on every
 * datagram showed up in the handshake profile. Bounded: cleared when full.
 */
const canonCache = new Map<string, string>();
function canonical(addr: string): string {
  let c = canonCache.get(addr);
  if (c === undefined) {
    c = canonicalIp(addr) ?? addr;
    if (canonCache.size >= 1024) canonCache.clear();
    canonCache.set(addr, c);
  }
  return c;
}

export interface UdpTransportOptions {
  /** IP literals to bind; "0.0.0.0" / "::" expand to every local address of that family. */
  listen: string[];
  /** IKE port (500). 0 = ephemeral (tests). */
  ikePort: number;
  /** NAT-T port (4500). 0 = ephemeral (tests). */
  nattPort: number;
  logger?: Logger;
  /** Interface address enumeration; default os.networkInterfaces(). */
  interfaceAddresses?: () => string[];
  /** SO_RCVBUF for the IKE and NAT-T sockets (ESP-in-UDP bursts, IKE_SA_INIT floods); best effort. */
  recvBufferSize?: number;
}

export class NetError extends PqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NET', message, options);
  }
}

type Role = 'ike' | 'natt';

interface Bound {
  socket: Socket;
  role: Role;
  local: Endpoint;
}

export function systemInterfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.address);
  }
  return out;
}

/** Expand the listen list into the concrete addresses to bind (canonical, de-duplicated). */
export function expandListen(listen: string[], ifaceAddrs: string[]): string[] {
  const out: string[] = [];
  const add = (a: string | undefined) => {
    if (a !== undefined && !out.includes(a)) out.push(a);
  };
  for (const l of listen) {
    const c = canonicalIp(l);
    if (c === undefined) throw new NetError(`listen: not an IP address: ${JSON.stringify(l)}`);
    if (!isWildcard(c)) {
      add(c);
      continue;
    }
    const v6 = c === '::';
    for (const a of ifaceAddrs) {
      const ca = canonicalIp(a);
      if (ca === undefined || isIPv6(ca) !== v6 || isLinkLocalV6(ca)) continue;
      add(ca);
    }
  }
  return out;
}

export class UdpTransport implements IkeTransport {
  private readonly opts: UdpTransportOptions;
  private readonly log: Logger;
  private bound: Bound[] = [];
  private ikeHandler: DatagramHandler = () => {};
  private espHandler: DatagramHandler = () => {};
  private closed = false;
  private inflight = 0;
  private flushWaiters: (() => void)[] = [];
  /** Counters for status/diagnostics. */
  readonly stats = { ikeIn: 0, espIn: 0, keepalivesIn: 0, invalidIn: 0, sent: 0, sendErrors: 0 };

  private constructor(opts: UdpTransportOptions) {
    this.opts = opts;
    this.log = opts.logger ?? nullLogger;
  }

  /** Bind every socket; rejects (closing what was bound) if any bind fails. */
  static async open(opts: UdpTransportOptions): Promise<UdpTransport> {
    const t = new UdpTransport(opts);
    const addrs = expandListen(opts.listen, (opts.interfaceAddresses ?? systemInterfaceAddresses)());
    if (addrs.length === 0) throw new NetError(`listen ${JSON.stringify(opts.listen)}: no local address to bind`);
    try {
      for (const a of addrs) await t.bindPair(a);
    } catch (e) {
      await t.close();
      throw e;
    }
    return t;
  }

  private async bindPair(address: string): Promise<void> {
    // Both or neither: a lone IKE socket without NAT-T would half-work.
    const ike = await this.bindOne(address, this.opts.ikePort, 'ike');
    try {
      await this.bindOne(address, this.opts.nattPort, 'natt');
    } catch (e) {
      this.bound = this.bound.filter((b) => b !== ike);
      await closeSocket(ike.socket);
      throw e;
    }
  }

  private bindOne(address: string, port: number, role: Role): Promise<Bound> {
    const socket = createSocket(isIPv6(address) ? { type: 'udp6', ipv6Only: true, lookup: literalLookup } : { type: 'udp4', lookup: literalLookup });
    return new Promise<Bound>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        socket.close();
        const hint =
          err.code === 'EACCES'
            ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
            : err.code === 'EADDRINUSE'
              ? ' (another IKE daemon, e.g. charon, may be running)'
              : err.code === 'EADDRNOTAVAIL'
                ? ' (the address is not configured on any interface)'
                : '';
        reject(new NetError(`cannot bind UDP ${endpointKey({ address, port })}: ${err.code ?? err.message}${hint}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        const local: Endpoint = { address, port: socket.address().port };
        const b: Bound = { socket, role, local };
        socket.on('error', (err) => this.log.warn('UDP socket error', { local: endpointKey(local), error: err }));
        socket.on('message', (msg, rinfo) => this.onMessage(b, msg, rinfo.address, rinfo.port));
        // Port 500 too: under an IKE_SA_INIT flood a descheduled daemon must not lose the legitimate
        // initiator's request to a full default-sized buffer (RFC 8019 §4; docs/dos.md).
        if (this.opts.recvBufferSize) {
          try {
            socket.setRecvBufferSize(this.opts.recvBufferSize);
          } catch {
            // above net.core.rmem_max: keep the default
          }
        }
        this.bound.push(b);
        this.log.debug('listening', { local: endpointKey(local), role });
        resolve(b);
      });
    });
  }

  private onMessage(b: Bound, msg: Buffer, address: string, port: number): void {
    if (this.closed) return;
    const from: Endpoint = { address: canonical(address), port };
    // dgram hands every datagram its own Buffer; a view avoids a copy.
    const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    if (b.role === 'ike') {
      this.stats.ikeIn++;
      this.dispatch(this.ikeHandler, data, from, b.local);
      return;
    }
    const c = classifyNattDatagram(data);
    switch (c.kind) {
      case 'ike':
        this.stats.ikeIn++;
        this.dispatch(this.ikeHandler, c.data, from, b.local);
        break;
      case 'esp':
        this.stats.espIn++;
        this.dispatch(this.espHandler, c.data, from, b.local);
        break;
      case 'keepalive':
        this.stats.keepalivesIn++;
        break;
      case 'invalid':
        this.stats.invalidIn++;
        if (this.log.enabled('trace')) this.log.trace('dropped datagram', { from: endpointKey(from), reason: c.reason });
        break;
    }
  }

  private dispatch(h: DatagramHandler, data: Uint8Array, from: Endpoint, to: Endpoint): void {
    try {
      h(data, from, to);
    } catch (e) {
      // A handler bug must not kill the socket's event loop.
      this.log.error('datagram handler threw', { error: e });
    }
  }

  onIke(handler: DatagramHandler): void {
    this.ikeHandler = handler;
  }
  onEsp(handler: DatagramHandler): void {
    this.espHandler = handler;
  }

  localEndpoints(): Endpoint[] {
    return this.bound.map((b) => ({ ...b.local }));
  }

  boundPorts(): { ike: number; natt: number } {
    return {
      ike: this.bound.find((b) => b.role === 'ike')?.local.port ?? this.opts.ikePort,
      natt: this.bound.find((b) => b.role === 'natt')?.local.port ?? this.opts.nattPort,
    };
  }

  /** The local endpoints of one role ("ike" = port 500 sockets, "natt" = 4500). */
  endpoints(role: Role): Endpoint[] {
    return this.bound.filter((b) => b.role === role).map((b) => ({ ...b.local }));
  }

  /**
   * The socket to send from. Exact (address, port) match first; otherwise
   * (wildcard or unknown source address) a socket of the role implied by the
   * port, in the destination's family, preferring loopback only for loopback
   * destinations.
   */
  private pick(from: Endpoint, to: Endpoint): Bound | undefined {
    const addr = canonical(from.address);
    const exact = this.bound.find((b) => b.local.address === addr && b.local.port === from.port);
    if (exact) return exact;
    const role: Role = this.bound.some((b) => b.role === 'natt' && b.local.port === from.port) || from.port === this.opts.nattPort ? 'natt' : 'ike';
    const v6 = isIPv6(to.address);
    const cands = this.bound.filter((b) => b.role === role && isIPv6(b.local.address) === v6);
    const sameAddr = cands.find((b) => b.local.address === addr);
    if (sameAddr) return sameAddr;
    const loop = isLoopback(to.address);
    return cands.find((b) => isLoopback(b.local.address) === loop) ?? cands[0];
  }

  private transmit(from: Endpoint, to: Endpoint, data: Uint8Array, marker: boolean): void {
    if (this.closed) return;
    const b = this.pick(from, to);
    if (!b) {
      this.stats.sendErrors++;
      this.log.warn('no socket to send from', { from: endpointKey(from), to: endpointKey(to) });
      return;
    }
    if (b.local.address !== canonical(from.address) && this.log.enabled('debug'))
      this.log.debug('sending from a different local address than requested', { requested: endpointKey(from), used: endpointKey(b.local) });
    // RFC 3948 §2.2 non-ESP marker as a separate iovec (sendmsg gathers it): no copy of the message.
    const payload = marker && b.role === 'natt' ? [NON_ESP_MARKER, data] : data;
    this.stats.sent++;
    this.inflight++;
    b.socket.send(payload, to.port, to.address, (err) => {
      this.inflight--;
      if (this.inflight === 0) for (const w of this.flushWaiters.splice(0)) w();
      if (err) {
        this.stats.sendErrors++;
        this.log.debug('send failed', { from: endpointKey(b.local), to: endpointKey(to), error: err });
      }
    });
  }

  send(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    this.transmit(from, to, data, true);
  }

  sendRaw(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    this.transmit(from, to, data, false);
  }

  /**
   * Re-enumerate interface addresses for wildcard listen entries: bind new
   * addresses, close sockets of addresses that disappeared. Bind failures of
   * individual new addresses are logged, not thrown.
   */
  async refresh(): Promise<{ added: string[]; removed: string[] }> {
    if (this.closed) return { added: [], removed: [] };
    const want = expandListen(this.opts.listen, (this.opts.interfaceAddresses ?? systemInterfaceAddresses)());
    const have = [...new Set(this.bound.map((b) => b.local.address))];
    const added: string[] = [];
    const removed: string[] = [];
    for (const a of want) {
      if (have.includes(a)) continue;
      try {
        await this.bindPair(a);
        added.push(a);
      } catch (e) {
        this.log.warn('cannot listen on new address', { address: a, error: e });
      }
    }
    for (const a of have) {
      if (want.includes(a)) continue;
      const gone = this.bound.filter((b) => b.local.address === a);
      this.bound = this.bound.filter((b) => b.local.address !== a);
      await Promise.all(gone.map((b) => closeSocket(b.socket)));
      removed.push(a);
    }
    return { added, removed };
  }

  /** Resolves when every datagram handed to send() has left the socket (or after timeoutMs). */
  flush(timeoutMs = 1000): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.flushWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Waits for in-flight sends (so a final DELETE is not cancelled), then closes every socket. */
  async close(): Promise<void> {
    if (!this.closed) await this.flush();
    this.closed = true;
    const all = this.bound;
    this.bound = [];
    await Promise.all(all.map((b) => closeSocket(b.socket)));
  }
}

/**
 * The local address the kernel would use to reach `remote` (route lookup via
 * connect() on an unbound UDP socket: nothing is sent). undefined if there is
 * no route.
 */
export function probeSourceAddress(remote: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(isIPv6(remote) ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
    const done = (v: string | undefined) => {
      try {
        s.close();
      } catch {
        // not open
      }
      resolve(v);
    };
    s.once('error', () => done(undefined));
    // Port 9 (discard): connect() on UDP only selects the route and source address.
    s.connect(9, remote, () => {
      try {
        const a = s.address().address;
        done(canonicalIp(a) ?? a);
      } catch {
        done(undefined);
      }
    });
  });
}

function closeSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
