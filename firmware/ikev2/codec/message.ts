/**
 * Whole IKE messages: plain (IKE_SA_INIT, §1.5 notifications) and protected
 * by SK (RFC 7296 §3.14) or, when too large, by RFC 7383 SKF fragments.
 *
 * SK payload (§3.14):  generic header | IV | E(inner payloads | Padding | Pad Length) | ICV
 *   Padding makes (inner | Padding | Pad Length) a multiple of the cipher's
 *   block size (1 for the AEAD stream modes); we send zero octets and accept
 *   any value. AAD / integrity input = IKE header .. end of the SK (or SKF)
 *   header, with the final on-wire lengths (RFC 5282 §5; RFC 7383 §2.5 adds
 *   Fragment Number and Total Fragments). The SkCipher appends IV and
 *   ciphertext to that prefix for the encrypt-then-MAC suites.
 * SKF payload (RFC 7383 §2.5): generic header | Fragment Number(2) |
 *   Total Fragments(2) | IV | E(chunk | Padding | Pad Length) | ICV. Every
 *   fragment is a full IKE message with the same Message ID, protected on
 *   its own; only fragment 1 names the first inner payload (others send 0).
 * RFC 9242 §3.3.2 IntAuth: A = header .. SK generic header with Length =
 *   |A|+|P| and SK Payload Length = 4+|P|; P = inner payloads. For a
 *   fragmented message both are computed as if it had not been fragmented.
 */
import { concat } from '../../util/bytes.js';
import { AuthTagError, ParseError } from '../../util/errors.js';
import type { SkCipher } from '../../crypto/types.js';
import { IKE_HEADER_LEN, NON_ESP_MARKER_LEN, PayloadType } from '../constants.js';
import { MessageRuleError, markAuthenticated } from './errors.js';
import { GENERIC_HEADER_LEN, decodeHeader, writeHeader } from './header.js';
import { decodeChain, encodeChain, scratchWriter } from './payloads.js';
import { checkUnprotected, exchangeIsEncrypted, validateMessage } from './rules.js';
import type { DecodedMessage, IkeHeader, Message, Payload } from './types.js';

const SKF_EXTRA = 4; // Fragment Number + Total Fragments
const UDP_HEADER_LEN = 8;
const MAX_FRAGMENTS_WIRE = 0xffff;

export interface ProtectOptions {
  /** Largest IP datagram to send (e.g. 1280); enables RFC 7383 fragmentation when exceeded. */
  fragmentSize?: number;
  /** IP header size: 20 (IPv4, default) or 40 (IPv6). */
  ipOverhead?: number;
  /** The 4-octet non-ESP marker is sent (port 4500) and counts toward the size. */
  marker?: boolean;
}

export interface ProtectedMessage {
  datagrams: Uint8Array[];
  intAuthA: Uint8Array;
  intAuthP: Uint8Array;
}

export interface DecodeOptions {
  /** Apply the per-exchange rules of rules.ts (default true). */
  rules?: boolean;
  /**
   * The header decodeHeaderOnly() already returned for these very octets
   * (the engine decodes it to demultiplex): not parsed a second time.
   */
  header?: IkeHeader;
}

/** One verified and decrypted SKF fragment, for the Reassembler (fragment.ts). */
export interface FragmentInfo {
  kind: 'fragment';
  header: IkeHeader;
  number: number;
  total: number;
  /** SKF Next Payload: the first inner payload type in fragment 1, 0 in the others. */
  firstPayload: number;
  /** This fragment's share of the inner payload octets (padding removed). */
  plaintext: Uint8Array;
  /** Unprotected payloads before SKF (none are allowed by the rules; kept for rules=false). */
  unprotected: Payload[];
  /** IKE header .. last unprotected payload, the pointer to SKF rewritten to SK (RFC 9242 IntAuth_A). */
  intAuthPrefix: Uint8Array;
  /** Second octet of the SKF generic header (C bit + RESERVED), copied into IntAuth_A. */
  skfFlags: number;
}

export function isFragment(r: DecodedMessage | FragmentInfo): r is FragmentInfo {
  return (r as FragmentInfo).kind === 'fragment';
}


// ------------------------------------------------------------------ encode

/** An unencrypted message (IKE_SA_INIT, or a §1.5 notification outside an SA). */
export function encodePlain(msg: Message): Uint8Array {
  if (msg.encrypted) throw new TypeError('encodePlain: message is marked encrypted; use encodeProtected');
  const w = scratchWriter();
  w.zeros(IKE_HEADER_LEN);
  encodeChain(w, msg.payloads);
  const out = w.finish();
  writeHeader(out, msg.spiI, msg.spiR, msg.payloads[0]?.type ?? PayloadType.NONE, msg.exchange, msg.response, msg.initiator, msg.messageId, out.length);
  return out;
}

function padLength(n: number, blockSize: number): number {
  // (n + Padding + 1) must be a multiple of blockSize (§3.14).
  return (blockSize - ((n + 1) % blockSize)) % blockSize;
}

/** `chunk | Padding | Pad Length` (§3.14) in a fresh buffer; the padding octets stay zero. */
function padded(chunk: Uint8Array, blockSize: number): Uint8Array {
  const pad = padLength(chunk.length, blockSize);
  const plain = new Uint8Array(chunk.length + pad + 1);
  plain.set(chunk, 0);
  plain[plain.length - 1] = pad;
  return plain;
}

/** Builds one SK or SKF protected datagram around `plain` (inner payloads already padded, see padded()). */
function seal(msg: Message, cipher: SkCipher, ivFn: (n: number) => Uint8Array, plain: Uint8Array, innerNext: number, frag?: { number: number; total: number }): Uint8Array {
  const plainLen = plain.length;
  const extra = frag ? SKF_EXTRA : 0;
  const payloadLen = GENERIC_HEADER_LEN + extra + cipher.ivSize + plainLen + cipher.icvSize;
  if (payloadLen > 0xffff) throw new RangeError(`protected payload of ${payloadLen} octets exceeds 65535; enable fragmentation`);
  const total = IKE_HEADER_LEN + payloadLen;
  const aadLen = IKE_HEADER_LEN + GENERIC_HEADER_LEN + extra;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  writeHeader(out, msg.spiI, msg.spiR, frag ? PayloadType.SKF : PayloadType.SK, msg.exchange, msg.response, msg.initiator, msg.messageId, total);
  out[IKE_HEADER_LEN] = innerNext;
  out[IKE_HEADER_LEN + 1] = 0;
  v.setUint16(IKE_HEADER_LEN + 2, payloadLen);
  if (frag) {
    v.setUint16(IKE_HEADER_LEN + 4, frag.number);
    v.setUint16(IKE_HEADER_LEN + 6, frag.total);
  }
  const iv = ivFn(cipher.ivSize);
  if (!(iv instanceof Uint8Array) || iv.length !== cipher.ivSize) throw new TypeError(`iv(): expected ${cipher.ivSize} bytes`);
  const ct = cipher.seal(out.subarray(0, aadLen), iv, plain);
  if (ct.length !== plainLen + cipher.icvSize) throw new Error(`SkCipher.seal returned ${ct.length} octets, expected ${plainLen + cipher.icvSize}`);
  out.set(iv, aadLen);
  out.set(ct, aadLen + cipher.ivSize);
  return out;
}

/** RFC 9242 IntAuth_A of an unfragmented SK message with no unprotected payloads. */
function intAuthAFor(msg: Message, firstInner: number, pLen: number): Uint8Array {
  const aLen = IKE_HEADER_LEN + GENERIC_HEADER_LEN;
  const a = new Uint8Array(aLen);
  writeHeader(a, msg.spiI, msg.spiR, PayloadType.SK, msg.exchange, msg.response, msg.initiator, msg.messageId, aLen + pLen);
  a[IKE_HEADER_LEN] = firstInner;
  const skLen = GENERIC_HEADER_LEN + pLen;
  a[IKE_HEADER_LEN + 2] = skLen >>> 8;
  a[IKE_HEADER_LEN + 3] = skLen & 0xff;
  return a;
}

/**
 * Protects `msg.payloads` in SK, or in SKF fragments (RFC 7383 §2.5) when
 * the datagram including IP, UDP and marker overhead would exceed
 * `opts.fragmentSize`. `iv(n)` supplies a fresh IV per datagram.
 */
export function encodeProtected(msg: Message, cipher: SkCipher, iv: (n: number) => Uint8Array, opts: ProtectOptions = {}): ProtectedMessage {
  if (!msg.encrypted) throw new TypeError('encodeProtected: message is not marked encrypted; use encodePlain');
  const w = scratchWriter();
  encodeChain(w, msg.payloads);
  const pLen = w.len;
  const first = msg.payloads[0]?.type ?? PayloadType.NONE;
  const intAuthA = intAuthAFor(msg, first, pLen);
  const overhead = (opts.ipOverhead ?? 20) + UDP_HEADER_LEN + (opts.marker ? NON_ESP_MARKER_LEN : 0);
  const pad = padLength(pLen, cipher.blockSize);
  const whole = IKE_HEADER_LEN + GENERIC_HEADER_LEN + cipher.ivSize + pLen + pad + 1 + cipher.icvSize;
  if (opts.fragmentSize === undefined || overhead + whole <= opts.fragmentSize) {
    // Padding and Pad Length written behind the payloads: one copy out of the
    // scratch Writer is both the plaintext to seal and (a view) IntAuth_P.
    w.zeros(pad).u8(pad);
    const plain = w.finish();
    return { datagrams: [seal(msg, cipher, iv, plain, first)], intAuthA, intAuthP: plain.subarray(0, pLen) };
  }
  const p = w.finish();
  // Largest chunk such that chunk | Padding | Pad Length fits the budget and stays block aligned.
  const budget = opts.fragmentSize - overhead - (IKE_HEADER_LEN + GENERIC_HEADER_LEN + SKF_EXTRA + cipher.ivSize + cipher.icvSize);
  const chunkMax = Math.floor(budget / cipher.blockSize) * cipher.blockSize - 1;
  if (chunkMax < 1) throw new RangeError(`fragmentSize ${opts.fragmentSize} leaves no room for fragment data`);
  const total = Math.ceil(p.length / chunkMax);
  if (total > MAX_FRAGMENTS_WIRE) throw new RangeError(`message needs ${total} fragments`);
  const datagrams: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    const chunk = p.subarray(i * chunkMax, Math.min(p.length, (i + 1) * chunkMax));
    datagrams.push(seal(msg, cipher, iv, padded(chunk, cipher.blockSize), i === 0 ? first : PayloadType.NONE, { number: i + 1, total }));
  }
  return { datagrams, intAuthA, intAuthP: p };
}

// ------------------------------------------------------------------ decode

const NO_OPTS: DecodeOptions = {};

/** Header only, for demultiplexing (SPIs, exchange, Message ID, flags). */
export function decodeHeaderOnly(data: Uint8Array): IkeHeader {
  return decodeHeader(data);
}

/** Every DecodedMessage has the same fields in the same order (one object shape for the engine's hot paths). */
export function decoded(h: IkeHeader, encrypted: boolean, payloads: Payload[], intAuthA: Uint8Array | undefined, intAuthP: Uint8Array | undefined, raw: Uint8Array | undefined, fragments: number): DecodedMessage {
  return { spiI: h.spiI, spiR: h.spiR, exchange: h.exchange, response: h.response, initiator: h.initiator, messageId: h.messageId, encrypted, payloads, intAuthA, intAuthP, raw, fragments };
}

/** An unencrypted message; `raw` keeps the octets (RealMessage for AUTH, RFC 7296 §2.15). */
export function decodePlain(data: Uint8Array, opts: DecodeOptions = NO_OPTS): DecodedMessage {
  const h = opts.header ?? decodeHeader(data);
  const chain = decodeChain(data, IKE_HEADER_LEN, data.length, h.nextPayload, 0, false, 16);
  const payloads = opts.rules === false ? chain.payloads : validateMessage({ exchange: h.exchange, response: h.response, encrypted: false, payloads: chain.payloads });
  return decoded(h, false, payloads, undefined, undefined, data.slice(), 0);
}

/**
 * Verifies and decrypts an SK message, or one SKF fragment (returned as
 * FragmentInfo for the Reassembler). ICV/tag failures are AuthTagError;
 * structure problems ParseError; rule violations the typed errors of errors.ts.
 */
export function decodeProtected(data: Uint8Array, cipher: SkCipher, opts: DecodeOptions = NO_OPTS): DecodedMessage | FragmentInfo {
  const rules = opts.rules !== false;
  const h = opts.header ?? decodeHeader(data);
  if (rules) {
    // Cheap checks before any crypto.
    const enc = exchangeIsEncrypted(h.exchange);
    if (enc === undefined) throw new MessageRuleError('unknown-exchange', h.exchange, undefined, `no rules for exchange type ${h.exchange}`);
    if (!enc) throw new MessageRuleError('must-not-be-encrypted', h.exchange, undefined, `exchange ${h.exchange} is never encrypted`);
  }
  const chain = decodeChain(data, IKE_HEADER_LEN, data.length, h.nextPayload, 0, true, 16);
  const sk = chain.encrypted;
  if (!sk) throw new ParseError('protected message without SK/SKF payload', IKE_HEADER_LEN);
  const isSkf = sk.type === PayloadType.SKF;
  let bodyStart = sk.start + GENERIC_HEADER_LEN;
  let number = 0;
  let total = 0;
  if (isSkf) {
    if (sk.length < GENERIC_HEADER_LEN + SKF_EXTRA) throw new ParseError(`SKF payload length ${sk.length} < 8`, sk.start + 2, sk.type);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    number = v.getUint16(bodyStart);
    total = v.getUint16(bodyStart + 2);
    // RFC 7383 §2.5: Fragment Number starts at 1 and is <= Total Fragments; Total is never 0.
    if (total === 0) throw new ParseError('SKF Total Fragments is 0', bodyStart + 2, sk.type);
    if (number === 0 || number > total) throw new ParseError(`SKF Fragment Number ${number} outside 1..${total}`, bodyStart, sk.type);
    bodyStart += SKF_EXTRA;
  }
  const end = data.length;
  const ctStart = bodyStart + cipher.ivSize;
  const ctLen = end - ctStart - cipher.icvSize;
  if (ctLen < 1) throw new ParseError(`encrypted payload too short for IV, pad length and ICV (${end - bodyStart} octets)`, bodyStart, sk.type);
  if (ctLen % cipher.blockSize !== 0) throw new ParseError(`ciphertext of ${ctLen} octets is not a multiple of the block size ${cipher.blockSize}`, ctStart, sk.type);
  let plain: Uint8Array;
  try {
    plain = cipher.open(data.subarray(0, bodyStart), data.subarray(bodyStart, ctStart), data.subarray(ctStart, end));
  } catch (e) {
    if (e instanceof AuthTagError) throw e;
    throw new AuthTagError(`SK decryption failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  return markAuthenticated(() => afterDecrypt(data, h, chain, sk, isSkf, number, total, ctStart, plain, rules));
}

/** Everything after a successful integrity check: errors here concern an authenticated message. */
function afterDecrypt(
  data: Uint8Array,
  h: IkeHeader,
  chain: ReturnType<typeof decodeChain>,
  sk: NonNullable<ReturnType<typeof decodeChain>['encrypted']>,
  isSkf: boolean,
  number: number,
  total: number,
  ctStart: number,
  plain: Uint8Array,
  rules: boolean,
): DecodedMessage | FragmentInfo {
  if (plain.length < 1) throw new ParseError('empty SK plaintext', ctStart, sk.type);
  const padLen = plain[plain.length - 1]!;
  if (padLen + 1 > plain.length) throw new ParseError(`pad length ${padLen} exceeds the ${plain.length - 1} plaintext octets`, ctStart + plain.length - 1, sk.type);
  const inner = plain.slice(0, plain.length - 1 - padLen);

  if (isSkf) {
    if (rules) checkUnprotected(h.exchange, chain.payloads);
    const prefix = data.slice(0, sk.start);
    prefix[sk.pointerOffset] = PayloadType.SK; // RFC 9242 §3.3.2: SKF -> SK
    return { kind: 'fragment', header: h, number, total, firstPayload: sk.nextPayload, plaintext: inner, unprotected: chain.payloads, intAuthPrefix: prefix, skfFlags: sk.flags };
  }
  const innerChain = decodeChain(inner, 0, inner.length, sk.nextPayload, ctStart, false);
  const payloads = rules
    ? validateMessage({ exchange: h.exchange, response: h.response, encrypted: true, payloads: innerChain.payloads, unprotected: chain.payloads })
    : [...chain.payloads, ...innerChain.payloads];
  const a = data.slice(0, sk.start + GENERIC_HEADER_LEN);
  const av = new DataView(a.buffer);
  av.setUint32(24, a.length + inner.length);
  av.setUint16(sk.start + 2, GENERIC_HEADER_LEN + inner.length);
  return decoded(h, true, payloads, a, inner, data.slice(), 0);
}

/** Joins a reassembled inner payload stream with fragment 1's prefix into IntAuth_A (RFC 9242 §3.3.2). */
export function reassembledIntAuthA(first: FragmentInfo, pLen: number): Uint8Array {
  const a = concat(first.intAuthPrefix, new Uint8Array([first.firstPayload, first.skfFlags, 0, 0]));
  const v = new DataView(a.buffer);
  v.setUint16(a.length - 2, GENERIC_HEADER_LEN + pLen);
  v.setUint32(24, a.length + pLen);
  return a;
}
