/**
 * Responder admission control for IKE_SA_INIT requests (RFC 7296 §2.6,
 * RFC 8019 "Protecting IKEv2 Implementations from Distributed Denial-of-
 * Service Attacks"): decides, before any key exchange computation or any
 * per-SA state, whether a new IKE_SA_INIT request is answered, answered
 * with a COOKIE, or dropped.
 *
 * Order of the checks (strongSwan receiver.c drop_ike_sa_init is the model):
 *   1. cookie required? — half-open SAs in total >= cookie_threshold, or
 *      from this source prefix >= cookie_threshold_ip. Without a valid
 *      cookie the request gets a stateless COOKIE reply and nothing else:
 *      no DH/ML-KEM work, no IkeSa, no table entry (RFC 7296 §2.6).
 *   2. block_threshold — half-open SAs from this source prefix; beyond it
 *      the request is dropped silently (RFC 8019 §4.1: per-source limits
 *      once the source proved it is reachable with the cookie).
 *   3. init_limit_half_open — the global cap on half-open SAs; beyond it
 *      the request is dropped (bounded state whatever the sources do).
 *
 * Sources are aggregated by prefix (IPv4 /32, IPv6 /64: RFC 8019 §5 notes
 * an IPv6 host typically controls a whole /64, so one attacker host must
 * not get a fresh quota per address).
 *
 * Cookie (RFC 7296 §2.6): <generation (1 octet)> | SHA-256(Ni | IPi | SPIi |
 * secret). The secret is replaced every cookie_secret_lifetime; cookies of
 * the previous generation are accepted for cookie_grace after the switch so
 * an initiator that got a cookie just before it is not bounced twice.
 */
import { createHash } from 'node:crypto';
import { concat, ctEqual } from '../util/bytes.js';
import { ipToBytes } from '../util/ip.js';
import type { Rng } from '../util/clock.js';

export interface AdmissionOptions {
  /** Half-open IKE SAs (all sources) from which a COOKIE is demanded (strongSwan cookie_threshold). 0 = always. */
  cookieThreshold: number;
  /** Half-open IKE SAs from one source prefix from which that source must send a COOKIE (cookie_threshold_ip). 0 = always. */
  cookieThresholdIp: number;
  /** Most half-open IKE SAs one source prefix may hold (block_threshold). */
  blockThreshold: number;
  /** Most half-open IKE SAs in total (init_limit_half_open). 0 = no cap. */
  initLimitHalfOpen: number;
  /** Cookie secret lifetime, ms. */
  cookieSecretLifetime: number;
  /** How long the previous secret's cookies stay valid after a switch, ms. */
  cookieGrace: number;
}

/**
 * Defaults: strongSwan 6's cookie_threshold 30, cookie_threshold_ip 3 and
 * block_threshold 5. strongSwan's init_limit_half_open is 0 (no cap); ours
 * is bounded so the pre-authentication state has a ceiling (docs/config.md
 * gives the memory it stands for).
 */
export const ADMISSION_DEFAULTS: AdmissionOptions = {
  cookieThreshold: 30,
  cookieThresholdIp: 3,
  blockThreshold: 5,
  initLimitHalfOpen: 4096,
  cookieSecretLifetime: 120_000,
  cookieGrace: 10_000,
};

export type AdmissionVerdict =
  | { readonly kind: 'admit' }
  /** Answer statelessly with this COOKIE notify. */
  | { readonly kind: 'cookie'; readonly cookie: Uint8Array }
  | { readonly kind: 'drop'; readonly reason: 'blocked' | 'limit' };

export interface AdmissionCounters {
  /** COOKIE replies sent. */
  cookiesSent: number;
  /** Requests without a COOKIE while one was required (answered with a COOKIE). */
  cookieless: number;
  /** Requests with a wrong, stale or malformed COOKIE (answered with a fresh one). */
  invalidCookies: number;
  /** Requests dropped because their source prefix already held block_threshold half-open SAs. */
  blocked: number;
  /** Requests dropped at the global init_limit_half_open cap. */
  limitDrops: number;
  /** Requests admitted to key exchange (an IKE SA was created for them). */
  admitted: number;
  /** Cookie secret switches. */
  secretRotations: number;
}

/** What status/metrics show (control method `status.admission`, Prometheus pqgate_ike_*). */
export interface AdmissionStatus extends AdmissionCounters {
  /** Half-open (not yet authenticated) responder IKE SAs now. */
  halfOpen: number;
  /** Distinct source prefixes holding half-open SAs now. */
  halfOpenSources: number;
  /** The largest half-open count of any one source prefix now. */
  halfOpenMaxPerSource: number;
  /** Whether a new request from a fresh source would have to carry a COOKIE now. */
  cookiesRequired: boolean;
  limits: AdmissionOptions;
}

const COOKIE_LEN = 1 + 32;

interface Secret {
  gen: number;
  key: Uint8Array;
}

/**
 * The source key half-open SAs are counted under: the IPv4 address (/32) or
 * the IPv6 /64 (IPv4-mapped IPv6 counts as IPv4).
 */
export function sourcePrefix(addr: string): string {
  let b: Uint8Array;
  try {
    b = ipToBytes(addr);
  } catch {
    return addr; // not an address literal (cannot happen from a socket): count it as itself
  }
  if (b.length === 4) return addr;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let s = '';
  for (let i = 0; i < 8; i += 2) s += `${((b[i]! << 8) | b[i + 1]!).toString(16)}:`;
  return `${s}:/64`;
}

export class Admission {
  readonly opts: AdmissionOptions;
  readonly stats: AdmissionCounters = { cookiesSent: 0, cookieless: 0, invalidCookies: 0, blocked: 0, limitDrops: 0, admitted: 0, secretRotations: 0 };
  private total = 0;
  private readonly bySource = new Map<string, number>();
  private cur: Secret;
  private prev: Secret | undefined;
  private rotatedAt: number;

  constructor(
    private readonly rng: Rng,
    now: number,
    opts: Partial<AdmissionOptions> = {},
  ) {
    this.opts = { ...ADMISSION_DEFAULTS, ...stripUndefined(opts) };
    this.cur = { gen: 0, key: rng.bytes(32) };
    this.rotatedAt = now;
  }

  /** Half-open SAs now (all sources). */
  get halfOpen(): number {
    return this.total;
  }

  halfOpenFrom(addr: string): number {
    return this.bySource.get(sourcePrefix(addr)) ?? 0;
  }

  /** Would a request from `addr` need a COOKIE now? */
  cookieRequired(addr: string): boolean {
    const o = this.opts;
    return this.total >= o.cookieThreshold || (this.bySource.get(sourcePrefix(addr)) ?? 0) >= o.cookieThresholdIp;
  }

  /**
   * Decide on a new IKE_SA_INIT request (not a retransmission of one
   * already answered). `cookie` is the COOKIE notify's data, if any.
   * Cheap by construction: one or two SHA-256 over < 300 octets.
   */
  check(now: number, ni: Uint8Array, addr: string, spiI: Uint8Array, cookie: Uint8Array | undefined): AdmissionVerdict {
    this.rotate(now);
    const o = this.opts;
    const src = sourcePrefix(addr);
    const fromSrc = this.bySource.get(src) ?? 0;
    if (this.total >= o.cookieThreshold || fromSrc >= o.cookieThresholdIp) {
      if (cookie === undefined) this.stats.cookieless++;
      else if (!this.validCookie(now, cookie, ni, addr, spiI)) this.stats.invalidCookies++;
      else return this.limits(fromSrc);
      this.stats.cookiesSent++;
      return { kind: 'cookie', cookie: this.cookieFor(this.cur, ni, addr, spiI) };
    }
    return this.limits(fromSrc);
  }

  private limits(fromSrc: number): AdmissionVerdict {
    const o = this.opts;
    if (fromSrc >= o.blockThreshold) {
      this.stats.blocked++;
      return { kind: 'drop', reason: 'blocked' };
    }
    if (o.initLimitHalfOpen > 0 && this.total >= o.initLimitHalfOpen) {
      this.stats.limitDrops++;
      return { kind: 'drop', reason: 'limit' };
    }
    return { kind: 'admit' };
  }

  /** An IKE SA was created for an admitted request from `addr`. */
  opened(addr: string): void {
    const src = sourcePrefix(addr);
    this.bySource.set(src, (this.bySource.get(src) ?? 0) + 1);
    this.total++;
    this.stats.admitted++;
  }

  /** A half-open SA from `addr` got established or died. */
  closed(addr: string): void {
    const src = sourcePrefix(addr);
    const n = this.bySource.get(src);
    if (n === undefined) return;
    if (n <= 1) this.bySource.delete(src);
    else this.bySource.set(src, n - 1);
    this.total--;
  }

  /** The cookie the current secret gives (tests, and the initiator-side view). */
  currentCookie(ni: Uint8Array, addr: string, spiI: Uint8Array): Uint8Array {
    return this.cookieFor(this.cur, ni, addr, spiI);
  }

  status(): AdmissionStatus {
    let max = 0;
    for (const n of this.bySource.values()) if (n > max) max = n;
    return {
      ...this.stats,
      halfOpen: this.total,
      halfOpenSources: this.bySource.size,
      halfOpenMaxPerSource: max,
      cookiesRequired: this.total >= this.opts.cookieThreshold || this.opts.cookieThresholdIp === 0,
      limits: { ...this.opts },
    };
  }

  private rotate(now: number): void {
    if (now - this.rotatedAt < this.opts.cookieSecretLifetime) return;
    this.prev = this.cur;
    this.cur = { gen: (this.cur.gen + 1) & 0xff, key: this.rng.bytes(32) };
    this.rotatedAt = now;
    this.stats.secretRotations++;
  }

  private validCookie(now: number, cookie: Uint8Array, ni: Uint8Array, addr: string, spiI: Uint8Array): boolean {
    if (cookie.length !== COOKIE_LEN) return false;
    const gen = cookie[0]!;
    let s: Secret | undefined;
    if (gen === this.cur.gen) s = this.cur;
    else if (this.prev && gen === this.prev.gen && now - this.rotatedAt < this.opts.cookieGrace) s = this.prev;
    if (!s) return false;
    return ctEqual(cookie, this.cookieFor(s, ni, addr, spiI));
  }

  private cookieFor(s: Secret, ni: Uint8Array, addr: string, spiI: Uint8Array): Uint8Array {
    // RFC 7296 §2.6: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
    const h = createHash('sha256').update(concat(ni, ipToBytes(addr), spiI, s.key)).digest();
    return concat(new Uint8Array([s.gen]), new Uint8Array(h.buffer, h.byteOffset, h.byteLength));
  }
}

function stripUndefined<T extends object>(o: Partial<T>): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** What admission needs from an IKE_SA_INIT request: the first Nonce and the first COOKIE notify. */
export interface InitScan {
  nonce: Uint8Array;
  cookie: Uint8Array | undefined;
}

const PT_NONCE = 40;
const PT_NOTIFY = 41;
const PT_SK = 46;
const NOTIFY_COOKIE = 16390;
const MAX_SCAN_PAYLOADS = 64;

/**
 * A bounds-checked walk over the generic payload headers of an unencrypted
 * IKE_SA_INIT request (RFC 7296 §3.2) that extracts only the Nonce and the
 * COOKIE, so a flood is answered without decoding every proposal (RFC 8019
 * §4.2: do the cheap stateless check before anything else). Returns
 * undefined for anything odd; the caller then falls back to the full,
 * strict decoder, which gives the proper error.
 */
export function scanInitRequest(data: Uint8Array): InitScan | undefined {
  if (data.length < 28) return undefined;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const end = dv.getUint32(24);
  if (end !== data.length) return undefined;
  let np = data[16]!;
  let off = 28;
  let nonce: Uint8Array | undefined;
  let cookie: Uint8Array | undefined;
  for (let n = 0; np !== 0; n++) {
    if (n >= MAX_SCAN_PAYLOADS || np === PT_SK || off + 4 > end) return undefined;
    const len = dv.getUint16(off + 2);
    if (len < 4 || off + len > end) return undefined;
    if (np === PT_NONCE && !nonce) {
      // RFC 7296 §3.9: 16..256 octets.
      if (len - 4 < 16 || len - 4 > 256) return undefined;
      nonce = data.subarray(off + 4, off + len);
    } else if (np === PT_NOTIFY && !cookie) {
      if (len < 8) return undefined;
      const spiSize = data[off + 5]!;
      if (off + 8 + spiSize > off + len) return undefined;
      if (dv.getUint16(off + 6) === NOTIFY_COOKIE) cookie = data.subarray(off + 8 + spiSize, off + len);
    }
    np = data[off]!;
    off += len;
  }
  if (off !== end || !nonce) return undefined;
  return { nonce, cookie };
}

/**
 * The stateless IKE_SA_INIT response carrying only a COOKIE notify (RFC 7296
 * §2.6, §3.10), written directly: the same octets encodePlain() produces for
 * it, without building a message object per flood datagram.
 */
export function encodeCookieReply(spiI: Uint8Array, cookie: Uint8Array): Uint8Array {
  const len = 28 + 8 + cookie.length;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  out.set(spiI.subarray(0, 8), 0);
  out[16] = PT_NOTIFY;
  out[17] = 0x20; // IKEv2.0
  out[18] = 34; // IKE_SA_INIT
  out[19] = 0x20; // Response, not Initiator
  dv.setUint32(20, 0);
  dv.setUint32(24, len);
  out[28] = 0;
  out[29] = 0;
  dv.setUint16(30, 8 + cookie.length);
  out[32] = 0; // protocol: none
  out[33] = 0; // SPI size
  dv.setUint16(34, NOTIFY_COOKIE);
  out.set(cookie, 36);
  return out;
}
