/**
 * Server-side sessions and login throttling for the web admin.
 *
 * Sessions: the cookie carries 32 random bytes (base64url); the store keys
 * sessions by SHA-256 of that value, so the table itself holds nothing a
 * cookie can be made from. A session has an idle and an absolute lifetime.
 * Every session, logged in or not, has its own CSRF token (synchronizer
 * token pattern, OWASP CSRF cheat sheet): the login and setup forms need one
 * before any user exists. Logging in never upgrades the session the browser
 * arrived with: the pre-login session is destroyed and a new id issued
 * (OWASP session management: renew the id on privilege change), so a
 * planted id (session fixation) is worthless.
 *
 * Login throttling: per source address, at most `ipMaxAttempts` attempts
 * per window (HTTP 429); per user name, `maxFailures` consecutive failures
 * lock the name for `lockoutMs` — even the right password is refused while
 * locked, and the lock applies to names that do not exist too, so a lockout
 * says nothing about which names are real.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  /** Public handle (shown on the Account page, used to revoke): a prefix of the key hash. */
  handle: string;
  user: string | null;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  ip: string;
  userAgent: string;
  /** One-shot messages for the next page (post/redirect/get). */
  flash: { kind: 'ok' | 'error'; text: string }[];
}

export interface SessionOptions {
  idleMs?: number;
  absoluteMs?: number;
  /** Upper bound on sessions kept (anonymous ones are evicted first). */
  maxSessions?: number;
  now?: () => number;
}

const b64url = (b: Buffer) => b.toString('base64url');
const keyOf = (cookie: string) => createHash('sha256').update(cookie).digest('hex');

export function randomToken(bytes = 32): string {
  return b64url(randomBytes(bytes));
}

/** Constant-time comparison of two strings (different lengths compare unequal). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore {
  private readonly byKey = new Map<string, Session>();
  readonly idleMs: number;
  readonly absoluteMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(opts: SessionOptions = {}) {
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.absoluteMs = opts.absoluteMs ?? 12 * 3600_000;
    this.maxSessions = opts.maxSessions ?? 5000;
    this.now = opts.now ?? Date.now;
  }

  create(user: string | null, meta: { ip: string; userAgent: string }): { cookie: string; session: Session } {
    this.prune();
    const cookie = randomToken(32);
    const key = keyOf(cookie);
    const now = this.now();
    const session: Session = {
      handle: key.slice(0, 16),
      user,
      csrf: randomToken(32),
      createdAt: now,
      lastSeenAt: now,
      ip: meta.ip,
      userAgent: meta.userAgent.slice(0, 200),
      flash: [],
    };
    this.byKey.set(key, session);
    return { cookie, session };
  }

  private expired(s: Session, now: number): boolean {
    return now - s.lastSeenAt > this.idleMs || now - s.createdAt > this.absoluteMs;
  }

  /** The live session for a cookie value (touching it), or undefined. */
  get(cookie: string | undefined): Session | undefined {
    if (!cookie || cookie.length > 100) return undefined;
    const key = keyOf(cookie);
    const s = this.byKey.get(key);
    if (!s) return undefined;
    const now = this.now();
    if (this.expired(s, now)) {
      this.byKey.delete(key);
      return undefined;
    }
    s.lastSeenAt = now;
    return s;
  }

  destroy(cookie: string | undefined): void {
    if (cookie) this.byKey.delete(keyOf(cookie));
  }

  destroyHandle(handle: string, user: string): boolean {
    for (const [k, s] of this.byKey)
      if (s.handle === handle && s.user === user) {
        this.byKey.delete(k);
        return true;
      }
    return false;
  }

  /** Log a user out everywhere (password change, user deletion), except the session `keep`. */
  destroyUser(user: string, keep?: Session): number {
    let n = 0;
    for (const [k, s] of this.byKey)
      if (s.user === user && s !== keep) {
        this.byKey.delete(k);
        n++;
      }
    return n;
  }

  list(user: string): Session[] {
    const now = this.now();
    return [...this.byKey.values()].filter((s) => s.user === user && !this.expired(s, now)).sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  clear(): void {
    this.byKey.clear();
  }

  get size(): number {
    return this.byKey.size;
  }

  private prune(): void {
    if (this.byKey.size < this.maxSessions) return;
    const now = this.now();
    for (const [k, s] of this.byKey) if (this.expired(s, now)) this.byKey.delete(k);
    // Still full: drop the oldest anonymous sessions (a login-page flood must not evict admins).
    if (this.byKey.size >= this.maxSessions) {
      const anon = [...this.byKey.entries()].filter(([, s]) => s.user === null).sort((a, b) => a[1].lastSeenAt - b[1].lastSeenAt);
      for (const [k] of anon.slice(0, Math.max(1, anon.length - Math.floor(this.maxSessions / 2)))) this.byKey.delete(k);
    }
    if (this.byKey.size >= this.maxSessions) {
      const oldest = [...this.byKey.entries()].sort((a, b) => a[1].lastSeenAt - b[1].lastSeenAt)[0];
      if (oldest) this.byKey.delete(oldest[0]);
    }
  }
}

export interface LoginGuardOptions {
  /** Consecutive failures that lock a user name (default 5). */
  maxFailures?: number;
  /** How long a locked name stays locked (default 15 min). */
  lockoutMs?: number;
  /** Attempts per source address per window (default 20 per minute). */
  ipMaxAttempts?: number;
  ipWindowMs?: number;
  now?: () => number;
}

export type GuardVerdict = { ok: true } | { ok: false; reason: 'locked' | 'rate'; retryAfterSec: number };

export class LoginGuard {
  readonly maxFailures: number;
  readonly lockoutMs: number;
  private readonly ipMax: number;
  private readonly ipWindowMs: number;
  private readonly now: () => number;
  private readonly users = new Map<string, { failures: number; lockedUntil: number }>();
  private readonly ips = new Map<string, number[]>();

  constructor(opts: LoginGuardOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 5;
    this.lockoutMs = opts.lockoutMs ?? 15 * 60_000;
    this.ipMax = opts.ipMaxAttempts ?? 20;
    this.ipWindowMs = opts.ipWindowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  private norm(user: string): string {
    return String(user).trim().toLowerCase().slice(0, 64);
  }

  /** Called before verifying a password; counts the attempt against the address (an IPv6 client's /64). */
  attempt(user: string, address: string): GuardVerdict {
    const ip = addressGroup(address);
    const now = this.now();
    const u = this.users.get(this.norm(user));
    if (u && u.lockedUntil > now) return { ok: false, reason: 'locked', retryAfterSec: Math.ceil((u.lockedUntil - now) / 1000) };
    const recent = (this.ips.get(ip) ?? []).filter((t) => now - t < this.ipWindowMs);
    if (recent.length >= this.ipMax) {
      this.ips.set(ip, recent);
      return { ok: false, reason: 'rate', retryAfterSec: Math.ceil((recent[0]! + this.ipWindowMs - now) / 1000) };
    }
    recent.push(now);
    this.ips.set(ip, recent);
    if (this.ips.size > 10_000) this.sweep(now);
    return { ok: true };
  }

  failure(user: string): void {
    const k = this.norm(user);
    const u = this.users.get(k) ?? { failures: 0, lockedUntil: 0 };
    u.failures++;
    if (u.failures >= this.maxFailures) {
      u.lockedUntil = this.now() + this.lockoutMs;
      u.failures = 0;
    }
    this.users.set(k, u);
    if (this.users.size > 10_000) this.sweep(this.now());
  }

  success(user: string): void {
    this.users.delete(this.norm(user));
  }

  isLocked(user: string): boolean {
    const u = this.users.get(this.norm(user));
    return !!u && u.lockedUntil > this.now();
  }

  clear(): void {
    this.users.clear();
    this.ips.clear();
  }

  private sweep(now: number): void {
    for (const [k, u] of this.users) if (u.lockedUntil <= now && u.failures === 0) this.users.delete(k);
    // Under a flood of distinct names, partial failure counts go before active locks do.
    if (this.users.size > 10_000) for (const [k, u] of this.users) if (u.lockedUntil <= now) this.users.delete(k);
    for (const [k, ts] of this.ips) if (!ts.some((t) => now - t < this.ipWindowMs)) this.ips.delete(k);
  }
}

/**
 * The unit per-address limits count in: an IPv4 address (also when written
 * IPv4-mapped), or the /64 of an IPv6 address, since one IPv6 client
 * usually holds a whole /64 (RFC 7421) and could otherwise step through it.
 */
export function addressGroup(address: string): string {
  const a = address.trim().toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(':')) return a;
  const [head = '', tail = ''] = a.split('%')[0]!.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}
