/**
 * API tokens for the REST API (`Authorization: Bearer pqg_…`), created on
 * the Account page. A token is 32 random bytes; only its SHA-256 is stored
 * (a salted slow hash buys nothing for 256-bit random secrets), in
 * <data>/api-tokens.json, mode 0600, written atomically (temp file +
 * rename). Lookups go by hash, so comparing never touches the token itself.
 * The token text is shown once, in the response that creates it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync, existsSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const TOKEN_PREFIX = 'pqg_';
const MAX_TOKENS = 100;

export interface ApiTokenInfo {
  id: string;
  name: string;
  user: string;
  createdAt: number;
  lastUsedAt: number | null;
}

interface Stored extends ApiTokenInfo {
  hash: string;
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');
const publicInfo = ({ hash: _h, ...rest }: Stored): ApiTokenInfo => rest;

export class ApiTokenStore {
  private readonly file: string | undefined;
  private tokens: Stored[] = [];
  private readonly now: () => number;

  /** `dataDir` undefined keeps tokens in memory only (tests). */
  constructor(dataDir: string | undefined, opts: { now?: () => number } = {}) {
    this.file = dataDir ? join(dataDir, 'api-tokens.json') : undefined;
    this.now = opts.now ?? Date.now;
    if (this.file && existsSync(this.file)) {
      const raw = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      if (Array.isArray(raw))
        this.tokens = raw.filter(
          (t): t is Stored => !!t && typeof t.id === 'string' && typeof t.hash === 'string' && /^[0-9a-f]{64}$/.test(t.hash) && typeof t.user === 'string',
        );
    }
  }

  private save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    // Exclusive create: a symlink planted at the temporary name is never written through (tls.ts writeAtomic).
    rmSync(tmp, { force: true });
    writeFileSync(tmp, JSON.stringify(this.tokens, null, 1), { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
  }

  create(user: string, name: string): { token: string; info: ApiTokenInfo } {
    const label = String(name).trim();
    if (!/^[\p{L}\p{N} _.-]{1,64}$/u.test(label)) throw new TypeError('token name: 1-64 letters, digits, spaces, _ . -');
    if (this.tokens.length >= MAX_TOKENS) throw new TypeError(`at most ${MAX_TOKENS} API tokens`);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const stored: Stored = { id: randomBytes(8).toString('hex'), name: label, user, createdAt: this.now(), lastUsedAt: null, hash: hashOf(token) };
    this.tokens.push(stored);
    this.save();
    return { token, info: publicInfo(stored) };
  }

  /** The token's owner and info, or undefined. */
  verify(token: string): ApiTokenInfo | undefined {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 100) return undefined;
    const h = hashOf(token);
    const t = this.tokens.find((x) => x.hash === h);
    if (!t) return undefined;
    t.lastUsedAt = this.now();
    return publicInfo(t);
  }

  list(user: string): ApiTokenInfo[] {
    return this.tokens.filter((t) => t.user === user).map(publicInfo);
  }

  revoke(id: string, user: string): boolean {
    const n = this.tokens.length;
    this.tokens = this.tokens.filter((t) => !(t.id === id && t.user === user));
    if (this.tokens.length === n) return false;
    this.save();
    return true;
  }

  revokeUser(user: string): void {
    this.tokens = this.tokens.filter((t) => t.user !== user);
    this.save();
  }

  clear(): void {
    this.tokens = [];
    this.save();
  }
}
