import { timingSafeEqual } from 'node:crypto';
import { ParseError } from './errors.js';

/** A shared zero-length array (nothing can be written into it). */
const EMPTY = new Uint8Array(0);

/** Bounds-checked big-endian reader over a Uint8Array. Every overrun is a ParseError. */
export class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  /** Absolute offset of buf[0] in the enclosing message, for error reporting. */
  readonly base: number;
  payloadType: number | undefined;

  constructor(buf: Uint8Array, start = 0, end = buf.length, base = 0, payloadType?: number) {
    if (start < 0 || end > buf.length || start > end) throw new ParseError('reader range out of bounds', base + start, payloadType);
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.base = base;
    this.payloadType = payloadType;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) throw new ParseError(`truncated ${what}: need ${n}, have ${this.end - this.pos}`, this.base + this.pos, this.payloadType);
  }
  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what = 'u16'): number {
    this.need(2, what);
    // Octet arithmetic, not a DataView: a Reader is created per payload (sub()), and a DataView each was measurable garbage.
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }
  u32(what = 'u32'): number {
    this.need(4, what);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }
  /** Returns a copy, so parsed values never alias a reusable receive buffer. */
  bytes(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    if (n === 0) return EMPTY; // zero octets: nothing to alias or to write
    const v = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  rest(what = 'rest'): Uint8Array {
    return this.bytes(this.remaining, what);
  }
  skip(n: number, what = 'skip'): void {
    this.need(n, what);
    this.pos += n;
  }
  /** A sub-reader over the next n bytes; advances this reader past them. */
  sub(n: number, what: string, payloadType?: number): Reader {
    this.need(n, what);
    const r = new Reader(this.buf, this.pos, this.pos + n, this.base, payloadType ?? this.payloadType);
    this.pos += n;
    return r;
  }
  fail(message: string): never {
    throw new ParseError(message, this.base + this.pos, this.payloadType);
  }
}

/** Growable big-endian writer. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  len = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.len++, v);
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.len, v >>> 0);
    this.len += 4;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
    return this;
  }
  /** Patch a u16 at an absolute position (length fields written after the body). */
  setU16(pos: number, v: number): void {
    this.view.setUint16(pos, v);
  }
  setU32(pos: number, v: number): void {
    this.view.setUint32(pos, v >>> 0);
  }
  setU8(pos: number, v: number): void {
    this.view.setUint8(pos, v);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
  /** Start over, keeping the buffer: lets a hot encoder reuse one scratch Writer instead of growing a new one per message. */
  reset(): this {
    this.len = 0;
    return this;
  }
  /** Capacity of the buffer (a reused scratch Writer drops an oversized one). */
  get capacity(): number {
    return this.buf.length;
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Constant-time comparison for MACs and AUTH values. */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new TypeError(`fromHex: invalid hex string`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

export function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

export function u16be(v: number): Uint8Array {
  return new Uint8Array([(v >>> 8) & 0xff, v & 0xff]);
}

/** Overwrite secret material in place (best effort in a GC'd runtime). */
export function wipe(...bufs: (Uint8Array | undefined | null)[]): void {
  for (const b of bufs) if (b) b.fill(0);
}
