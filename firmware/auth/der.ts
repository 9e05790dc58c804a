/**
 * Minimal, strict DER (ITU-T X.690 §8, §10) reader and writer for the handful
 * of X.509 / PKCS#8 / RFC 7427 structures this firmware handles.
 *
 * Reader rules (DER, X.690 §10.1): definite lengths only, minimal length
 * encoding (no 0x81 for values < 128, no leading zero length octets), single
 * octet tags (high tag numbers are rejected: nothing we parse uses them), every
 * element must lie entirely inside its parent. Every violation is a ParseError
 * with the absolute offset, never an exception of another type.
 *
 * node:crypto parses certificates and classical keys itself; this module exists
 * for what node cannot do: ML-DSA SubjectPublicKeyInfo / PKCS#8 (RFC 9881), the
 * RFC 7427 AlgorithmIdentifier blob in the AUTH payload, DN and SAN byte access
 * for identity matching, and writing certificates (firmware/pki).
 */
import { ParseError } from '../util/errors.js';
import { concat } from '../util/bytes.js';

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag numbers: [n] IMPLICIT primitive / [n] constructed. */
export const ctxPrim = (n: number): number => 0x80 | n;
export const ctxCons = (n: number): number => 0xa0 | n;

/** One decoded TLV. `start`/`end` bound the whole element (header included), absolute offsets. */
export interface Tlv {
  tag: number;
  /** Absolute offset of the tag octet. */
  start: number;
  /** Absolute offset of the first content octet. */
  valueStart: number;
  /** Absolute offset just past the element. */
  end: number;
}

/** Nesting bound: no structure we parse is deeper than ~10; this stops stack abuse. */
const MAX_DEPTH = 32;

export class DerReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  private readonly depth: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length, depth = 0) {
    if (start < 0 || end > buf.length || start > end) throw new ParseError('DER range out of bounds', start);
    if (depth > MAX_DEPTH) throw new ParseError('DER nesting too deep', start);
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.depth = depth;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(msg: string, at = this.pos): never {
    throw new ParseError(`DER: ${msg}`, at);
  }

  /** Tag of the next element, or -1 at the end. Does not consume. */
  peekTag(): number {
    return this.pos < this.end ? this.buf[this.pos]! : -1;
  }

  /** Read one TLV header and skip over its content. */
  next(what = 'element'): Tlv {
    const start = this.pos;
    if (this.end - this.pos < 2) this.fail(`truncated ${what}`);
    const tag = this.buf[this.pos++]!;
    if ((tag & 0x1f) === 0x1f) this.fail(`high tag number form not supported in ${what}`, start);
    const first = this.buf[this.pos++]!;
    let len: number;
    if (first < 0x80) {
      len = first;
    } else {
      const n = first & 0x7f;
      if (n === 0) this.fail(`indefinite length in ${what}`, start);
      if (n > 4) this.fail(`length of ${what} too large`, start);
      if (this.end - this.pos < n) this.fail(`truncated length of ${what}`, start);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + this.buf[this.pos++]!;
      // DER: minimal length encoding (X.690 §10.1).
      if (len < 0x80 || this.buf[this.pos - n] === 0) this.fail(`non-minimal length in ${what}`, start);
    }
    const valueStart = this.pos;
    if (len > this.end - valueStart) this.fail(`${what} overruns its container (${len} > ${this.end - valueStart})`, start);
    this.pos = valueStart + len;
    return { tag, start, valueStart, end: this.pos };
  }

  /** Next element, which must carry `tag`. */
  expect(tag: number, what: string): Tlv {
    const t = this.peekTag();
    if (t !== tag) this.fail(`expected ${what} (tag 0x${tag.toString(16)}), got ${t < 0 ? 'end of data' : `0x${t.toString(16)}`}`);
    return this.next(what);
  }

  /** If the next element carries `tag`, read it; otherwise return undefined. */
  optional(tag: number, what: string): Tlv | undefined {
    return this.peekTag() === tag ? this.next(what) : undefined;
  }

  /** A reader over the contents of a constructed element. */
  inner(t: Tlv): DerReader {
    if ((t.tag & 0x20) === 0) this.fail('primitive element used as constructed', t.start);
    return new DerReader(this.buf, t.valueStart, t.end, this.depth + 1);
  }

  /** Enter a constructed element with the given tag. */
  enter(tag: number, what: string): DerReader {
    return this.inner(this.expect(tag, what));
  }

  value(t: Tlv): Uint8Array {
    return this.buf.slice(t.valueStart, t.end);
  }

  raw(t: Tlv): Uint8Array {
    return this.buf.slice(t.start, t.end);
  }

  /** The reader must be exhausted (no trailing data inside a structure). */
  finish(what: string): void {
    if (this.pos !== this.end) this.fail(`trailing data after ${what}`);
  }

  // ---- typed helpers ------------------------------------------------------

  oid(what = 'OID'): string {
    const t = this.expect(Tag.OID, what);
    return decodeOid(this.buf.subarray(t.valueStart, t.end), t.start);
  }

  /** INTEGER content octets (two's complement, minimal per X.690 §8.3.2). */
  integerBytes(what = 'INTEGER'): Uint8Array {
    const t = this.expect(Tag.INTEGER, what);
    const v = this.value(t);
    if (v.length === 0) this.fail(`empty ${what}`, t.start);
    if (v.length > 1 && ((v[0] === 0 && (v[1]! & 0x80) === 0) || (v[0] === 0xff && (v[1]! & 0x80) !== 0))) this.fail(`non-minimal ${what}`, t.start);
    return v;
  }

  /** Small non-negative INTEGER (versions, pathLen, salt length). */
  smallInt(what = 'INTEGER', max = 0x7fffffff): number {
    const start = this.pos;
    const v = this.integerBytes(what);
    if (v[0]! & 0x80) this.fail(`negative ${what}`, start);
    if (v.length > 5) this.fail(`${what} too large`, start);
    let n = 0;
    for (const b of v) n = n * 256 + b;
    if (n > max) this.fail(`${what} too large (${n})`, start);
    return n;
  }

  boolean(what = 'BOOLEAN'): boolean {
    const t = this.expect(Tag.BOOLEAN, what);
    if (t.end - t.valueStart !== 1) this.fail(`bad ${what} length`, t.start);
    const b = this.buf[t.valueStart]!;
    // DER: TRUE is 0xff (X.690 §11.1).
    if (b !== 0 && b !== 0xff) this.fail(`non-DER ${what} value`, t.start);
    return b === 0xff;
  }

  null(what = 'NULL'): void {
    const t = this.expect(Tag.NULL, what);
    if (t.end !== t.valueStart) this.fail(`non-empty ${what}`, t.start);
  }

  octetString(what = 'OCTET STRING'): Uint8Array {
    return this.value(this.expect(Tag.OCTET_STRING, what));
  }

  /** BIT STRING with zero unused bits (keys, signatures). */
  bitStringBytes(what = 'BIT STRING'): Uint8Array {
    const { unused, bytes, start } = this.bitString(what);
    if (unused !== 0) this.fail(`${what} has ${unused} unused bits`, start);
    return bytes;
  }

  bitString(what = 'BIT STRING'): { unused: number; bytes: Uint8Array; start: number } {
    const t = this.expect(Tag.BIT_STRING, what);
    if (t.end === t.valueStart) this.fail(`empty ${what}`, t.start);
    const unused = this.buf[t.valueStart]!;
    if (unused > 7 || (unused > 0 && t.end - t.valueStart === 1)) this.fail(`bad unused-bits count in ${what}`, t.start);
    const bytes = this.buf.slice(t.valueStart + 1, t.end);
    // DER: the unused bits are zero (X.690 §11.2.1).
    if (unused > 0 && (bytes[bytes.length - 1]! & ((1 << unused) - 1)) !== 0) this.fail(`non-zero padding bits in ${what}`, t.start);
    return { unused, bytes, start: t.start };
  }

  /** UTCTime / GeneralizedTime as used by RFC 5280 §4.1.2.5 (Z form, seconds present). */
  time(what = 'Time'): Date {
    const t = this.next(what);
    const s = latin1(this.buf.subarray(t.valueStart, t.end));
    let m: RegExpExecArray | null;
    let year: number;
    if (t.tag === Tag.UTC_TIME) {
      m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
      if (!m) this.fail(`bad UTCTime '${s}'`, t.start);
      const yy = Number(m[1]);
      year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
    } else if (t.tag === Tag.GENERALIZED_TIME) {
      m = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
      if (!m) this.fail(`bad GeneralizedTime '${s}'`, t.start);
      year = Number(m[1]);
    } else {
      this.fail(`expected ${what}`, t.start);
    }
    const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
    const ms = Date.UTC(year, mo - 1, d, h, mi, se);
    const back = new Date(ms);
    if (mo < 1 || mo > 12 || back.getUTCDate() !== d || back.getUTCHours() !== h || h > 23 || mi > 59 || se > 59) this.fail(`invalid date '${s}'`, t.start);
    return back;
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

export function decodeOid(v: Uint8Array, at = 0): string {
  if (v.length === 0) throw new ParseError('DER: empty OID', at);
  const arcs: number[] = [];
  let acc = 0;
  let started = false;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (!started && b === 0x80) throw new ParseError('DER: non-minimal OID arc', at);
    started = true;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 256) throw new ParseError('DER: OID arc too large', at);
    if ((b & 0x80) === 0) {
      arcs.push(acc);
      acc = 0;
      started = false;
    }
  }
  if (started) throw new ParseError('DER: truncated OID', at);
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

// ---- writer ---------------------------------------------------------------

function encodeLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Uint8Array.from([0x80 | out.length, ...out]);
}

export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concat(...content);
  return concat(Uint8Array.of(tag), encodeLength(body.length), body);
}

export const seq = (...items: Uint8Array[]): Uint8Array => tlv(Tag.SEQUENCE, ...items);

/** SET OF: DER sorts the encoded elements (X.690 §11.6). */
export function setOf(...items: Uint8Array[]): Uint8Array {
  const sorted = [...items].sort((a, b) => {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  });
  return tlv(Tag.SET, ...sorted);
}

export function encodeOid(oid: string): Uint8Array {
  const arcs = oid.split('.').map((x) => {
    if (!/^\d+$/.test(x)) throw new TypeError(`bad OID '${oid}'`);
    return Number(x);
  });
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! >= 40)) throw new TypeError(`bad OID '${oid}'`);
  const out: number[] = [];
  const push = (v: number): void => {
    const tmp = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) tmp.unshift(0x80 | (v & 0x7f));
    out.push(...tmp);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(Tag.OID, Uint8Array.from(out));
}

/** INTEGER from unsigned big-endian magnitude bytes (adds/strips leading zeros for DER). */
export function uintBytes(mag: Uint8Array): Uint8Array {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  let v = mag.subarray(i);
  if (v.length === 0) v = Uint8Array.of(0);
  if (v[0]! & 0x80) v = concat(Uint8Array.of(0), v);
  return tlv(Tag.INTEGER, v);
}

export function uint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`uint: ${n}`);
  const b: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) b.unshift(v & 0xff);
  return uintBytes(Uint8Array.from(b.length ? b : [0]));
}

export const octetString = (b: Uint8Array): Uint8Array => tlv(Tag.OCTET_STRING, b);
export const bitString = (b: Uint8Array, unused = 0): Uint8Array => tlv(Tag.BIT_STRING, Uint8Array.of(unused), b);
export const derNull = (): Uint8Array => Uint8Array.of(Tag.NULL, 0);
export const derBool = (v: boolean): Uint8Array => Uint8Array.of(Tag.BOOLEAN, 1, v ? 0xff : 0);
export const explicit = (n: number, ...content: Uint8Array[]): Uint8Array => tlv(ctxCons(n), ...content);

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always Z, seconds, no fractions. */
export function derTime(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(Tag.UTC_TIME, new TextEncoder().encode(`${p(y % 100)}${rest}`));
  if (y < 0 || y > 9999) throw new TypeError(`derTime: year ${y} out of range`);
  return tlv(Tag.GENERALIZED_TIME, new TextEncoder().encode(`${p(y, 4)}${rest}`));
}

/**
 * DER named-bit BIT STRING (X.690 §11.2.2: trailing zero bits removed) from a
 * mask where bit i of the mask is ASN.1 bit i (bit 0 = MSB of the first octet).
 */
export function namedBits(mask: number): Uint8Array {
  if (mask === 0) return bitString(new Uint8Array(0));
  let highest = 0;
  for (let i = 0; i < 32; i++) if (mask & (1 << i)) highest = i;
  const nbytes = (highest >> 3) + 1;
  const out = new Uint8Array(nbytes);
  for (let i = 0; i <= highest; i++) if (mask & (1 << i)) out[i >> 3]! |= 0x80 >> (i & 7);
  return bitString(out, nbytes * 8 - (highest + 1));
}

/** Inverse of namedBits for a parsed BIT STRING. */
export function bitsToMask(bytes: Uint8Array, unused: number): number {
  let mask = 0;
  const nbits = bytes.length * 8 - unused;
  for (let i = 0; i < Math.min(nbits, 31); i++) if (bytes[i >> 3]! & (0x80 >> (i & 7))) mask |= 1 << i;
  return mask;
}
