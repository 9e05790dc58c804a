/**
 * Minimal client for strongSwan's VICI protocol (src/libcharon/plugins/vici/
 * README.md in strongswan/strongswan), used where spawning swanctl per
 * operation would dominate the measurement (handshake benchmarks).
 *
 * Transport: each packet is prefixed with a 32-bit big-endian length.
 * Packet: 1-octet type; named types (CMD_REQUEST, EVENT_REGISTER,
 * EVENT_UNREGISTER, EVENT) carry a 1-octet name length + name; requests,
 * responses and events then carry a message, a sequence of elements:
 *   SECTION_START(1) name | SECTION_END(2) | KEY_VALUE(3) name, u16 len, value |
 *   LIST_START(4) name | LIST_ITEM(5) u16 len, value | LIST_END(6)
 * One connection handles one command at a time; use several connections for
 * concurrency (charon serves each on its own thread).
 */
import { connect, type Socket } from 'node:net';

export type ViciMsg = { [key: string]: string | string[] | ViciMsg };

const T = {
  CMD_REQUEST: 0,
  CMD_RESPONSE: 1,
  CMD_UNKNOWN: 2,
  EVENT_REGISTER: 3,
  EVENT_UNREGISTER: 4,
  EVENT_CONFIRM: 5,
  EVENT_UNKNOWN: 6,
  EVENT: 7,
} as const;

const E = { SECTION_START: 1, SECTION_END: 2, KEY_VALUE: 3, LIST_START: 4, LIST_ITEM: 5, LIST_END: 6 } as const;

export function encodeMessage(msg: ViciMsg): Buffer {
  const parts: Buffer[] = [];
  const name = (n: string): void => {
    const b = Buffer.from(n);
    if (b.length > 255) throw new Error(`vici name too long: ${n}`);
    parts.push(Buffer.from([b.length]), b);
  };
  const value = (v: string): void => {
    const b = Buffer.from(v);
    if (b.length > 0xffff) throw new Error('vici value too long');
    const l = Buffer.alloc(2);
    l.writeUInt16BE(b.length);
    parts.push(l, b);
  };
  const walk = (m: ViciMsg): void => {
    for (const [k, v] of Object.entries(m)) {
      if (typeof v === 'string') {
        parts.push(Buffer.from([E.KEY_VALUE]));
        name(k);
        value(v);
      } else if (Array.isArray(v)) {
        parts.push(Buffer.from([E.LIST_START]));
        name(k);
        for (const item of v) {
          parts.push(Buffer.from([E.LIST_ITEM]));
          value(item);
        }
        parts.push(Buffer.from([E.LIST_END]));
      } else {
        parts.push(Buffer.from([E.SECTION_START]));
        name(k);
        walk(v);
        parts.push(Buffer.from([E.SECTION_END]));
      }
    }
  };
  walk(msg);
  return Buffer.concat(parts);
}

export function decodeMessage(buf: Buffer): ViciMsg {
  const root: ViciMsg = {};
  const stack: ViciMsg[] = [root];
  let list: string[] | undefined;
  let i = 0;
  const need = (n: number): void => {
    if (i + n > buf.length) throw new Error(`vici message truncated at ${i}`);
  };
  const name = (): string => {
    need(1);
    const l = buf[i++]!;
    need(l);
    const s = buf.toString('utf8', i, i + l);
    i += l;
    return s;
  };
  const value = (): string => {
    need(2);
    const l = buf.readUInt16BE(i);
    i += 2;
    need(l);
    const s = buf.toString('utf8', i, i + l);
    i += l;
    return s;
  };
  while (i < buf.length) {
    const t = buf[i++];
    const top = stack[stack.length - 1]!;
    switch (t) {
      case E.SECTION_START: {
        const s: ViciMsg = {};
        top[name()] = s;
        stack.push(s);
        break;
      }
      case E.SECTION_END:
        if (stack.length < 2) throw new Error('vici: unbalanced section end');
        stack.pop();
        break;
      case E.KEY_VALUE: {
        const k = name();
        top[k] = value();
        break;
      }
      case E.LIST_START:
        list = [];
        top[name()] = list;
        break;
      case E.LIST_ITEM:
        if (!list) throw new Error('vici: list item outside list');
        list.push(value());
        break;
      case E.LIST_END:
        list = undefined;
        break;
      default:
        throw new Error(`vici: unknown element type ${t} at ${i - 1}`);
    }
  }
  return root;
}

interface Pending {
  resolve: (m: ViciMsg) => void;
  reject: (e: Error) => void;
}

export class ViciClient {
  private buf: Buffer = Buffer.alloc(0);
  private pending: Pending[] = [];
  private listeners = new Map<string, ((m: ViciMsg) => void)[]>();
  private registered = new Set<string>();
  private closedErr: Error | undefined;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    const fail = (e: Error): void => {
      this.closedErr = e;
      for (const p of this.pending.splice(0)) p.reject(e);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('vici connection closed')));
  }

  /**
   * Connect to a vici socket. charon's listen backlog is small, so a burst of
   * connections can see EAGAIN; retry those for up to `timeoutMs`.
   */
  static async connect(path: string, timeoutMs = 5000): Promise<ViciClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await new Promise<ViciClient>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => {
            s.removeListener('error', reject);
            resolve(new ViciClient(s));
          });
          s.once('error', reject);
        });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'EAGAIN' && code !== 'ECONNREFUSED') || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) break;
      const pkt = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      this.onPacket(pkt);
    }
  }

  private onPacket(pkt: Buffer): void {
    const type = pkt[0];
    if (type === T.EVENT) {
      const nl = pkt[1]!;
      const name = pkt.toString('utf8', 2, 2 + nl);
      const msg = decodeMessage(pkt.subarray(2 + nl));
      for (const l of this.listeners.get(name) ?? []) l(msg);
      return;
    }
    const p = this.pending.shift();
    if (!p) return;
    if (type === T.CMD_RESPONSE) p.resolve(decodeMessage(pkt.subarray(1)));
    else if (type === T.EVENT_CONFIRM) p.resolve({});
    else if (type === T.CMD_UNKNOWN) p.reject(new Error('vici: unknown command'));
    else if (type === T.EVENT_UNKNOWN) p.reject(new Error('vici: unknown event'));
    else p.reject(new Error(`vici: unexpected packet type ${type}`));
  }

  private send(type: number, name: string, msg?: ViciMsg): Promise<ViciMsg> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    const n = Buffer.from(name);
    const body = msg ? encodeMessage(msg) : Buffer.alloc(0);
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(2 + n.length + body.length);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(Buffer.concat([hdr, Buffer.from([type, n.length]), n, body]));
    });
  }

  /** Send a command; resolves with the response message. */
  request(cmd: string, msg: ViciMsg = {}): Promise<ViciMsg> {
    return this.send(T.CMD_REQUEST, cmd, msg);
  }

  /** Register for an event stream (e.g. `control-log`, `ike-updown`). */
  async on(event: string, fn: (m: ViciMsg) => void): Promise<void> {
    const l = this.listeners.get(event) ?? [];
    l.push(fn);
    this.listeners.set(event, l);
    if (!this.registered.has(event)) {
      this.registered.add(event);
      await this.send(T.EVENT_REGISTER, event);
    }
  }

  /** Remove a local listener (the registration with charon stays). */
  off(event: string, fn: (m: ViciMsg) => void): void {
    const l = this.listeners.get(event);
    const i = l ? l.indexOf(fn) : -1;
    if (l && i >= 0) l.splice(i, 1);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A failed vici command (`success = no`). */
export class ViciCommandError extends Error {
  readonly code = 'VICI_COMMAND_FAILED' as const;
  constructor(readonly cmd: string, readonly response: ViciMsg) {
    super(`vici ${cmd} failed: ${String(response['errmsg'] ?? 'no errmsg')}`);
    this.name = 'ViciCommandError';
  }
}

/**
 * Initiate a Child SA over vici and return the IKE SA's unique id (taken from
 * the control-log events that charon streams to the requesting connection).
 * Rejects with ViciCommandError if charon reports failure.
 */
export async function viciInitiate(c: ViciClient, child: string, ike?: string, timeoutMs = 15_000): Promise<number> {
  let uid = 0;
  const handler = (m: ViciMsg): void => {
    const u = Number(m['ikesa-uniqueid'] ?? 0);
    if (u) uid = u;
  };
  await c.on('control-log', handler);
  try {
    const req: ViciMsg = { timeout: String(timeoutMs), loglevel: '0' };
    if (child) req['child'] = child;
    if (ike) req['ike'] = ike;
    const r = await c.request('initiate', req);
    if (r['success'] !== 'yes') throw new ViciCommandError('initiate', r);
    return uid;
  } finally {
    c.off('control-log', handler);
  }
}

/** Terminate one IKE SA by unique id and wait for the delete to complete. */
export async function viciTerminateIke(c: ViciClient, ikeId: number, timeoutMs = 15_000): Promise<void> {
  const r = await c.request('terminate', { 'ike-id': String(ikeId), timeout: String(timeoutMs), loglevel: '-1' });
  if (r['success'] !== 'yes') throw new ViciCommandError('terminate', r);
}
