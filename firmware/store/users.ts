/**
 * Administrator accounts for the web UI / control API. Only a password hash
 * is stored: scrypt (RFC 7914) with N = 2^15, r = 8, p = 1 and a random
 * 16-byte salt per user, in a self-describing string
 * `scrypt$15$8$1$<salt b64>$<hash b64>` so parameters can be raised later
 * without breaking old hashes. Verification compares in constant time and
 * spends the same scrypt work for an unknown user, so timing does not reveal
 * which names exist. There is no default user: a fresh store has none, and
 * the first one is created during setup.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.js';
import { StoreError, StoreErrorCode } from './errors.js';

export const SCRYPT_LOG_N = 15;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_LEN = 32;
const SALT_LEN = 16;
/** 128 · N · r = 32 MiB for N = 2^15, r = 8: above Node's default maxmem boundary, so give headroom. */
const MAXMEM = 64 * 1024 * 1024;

export const MIN_PASSWORD_CHARS = 10;
const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/;

export interface AdminUser {
  name: string;
  createdAt: number;
  updatedAt: number;
}

export function hashPassword(password: string, logN = SCRYPT_LOG_N): string {
  const salt = randomBytes(SALT_LEN);
  const key = scryptSync(password.normalize('NFC'), salt, KEY_LEN, { N: 2 ** logN, r: SCRYPT_R, p: SCRYPT_P, maxmem: MAXMEM });
  return `scrypt$${logN}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Constant-time check of a password against a stored hash string. */
export function verifyPasswordHash(password: string, stored: string): boolean {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (logN < 10 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const got = scryptSync(password.normalize('NFC'), Buffer.from(m[4]!, 'base64'), expected.length, { N: 2 ** logN, r, p, maxmem: 256 * 1024 * 1024 });
  return expected.length === got.length && timingSafeEqual(expected, got);
}

/** A hash of a random password, computed once: what unknown users are "verified" against. */
let dummyHash: string | undefined;

function checkName(name: string): void {
  if (typeof name !== 'string' || !USER_NAME.test(name))
    throw new StoreError(StoreErrorCode.ARGUMENT, 'user name must be 1-32 of a-z 0-9 _ . - starting with a letter or _');
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || [...password].length < MIN_PASSWORD_CHARS)
    throw new StoreError(StoreErrorCode.ARGUMENT, `password must have at least ${MIN_PASSWORD_CHARS} characters`);
  if ([...password].length > 1024) throw new StoreError(StoreErrorCode.ARGUMENT, 'password longer than 1024 characters');
}

export function createUser(db: Db, name: string, password: string, now: number): AdminUser {
  checkName(name);
  checkPassword(password);
  const hash = hashPassword(password);
  const r = db.prepare('INSERT OR IGNORE INTO admin_users (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)').run(name, hash, now, now);
  if (r.changes === 0) throw new StoreError(StoreErrorCode.EXISTS, `user '${name}' already exists`);
  return { name, createdAt: now, updatedAt: now };
}

export function verifyUser(db: Db, name: string, password: string): boolean {
  const row = typeof name === 'string' ? (db.prepare('SELECT password_hash FROM admin_users WHERE name = ?').get(name) as { password_hash: string } | undefined) : undefined;
  if (typeof password !== 'string') return false;
  if (!row) {
    dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
    verifyPasswordHash(password, dummyHash);
    return false;
  }
  return verifyPasswordHash(password, row.password_hash);
}

export function changePassword(db: Db, name: string, newPassword: string, now: number, currentPassword?: string): void {
  checkPassword(newPassword);
  if (currentPassword !== undefined && !verifyUser(db, name, currentPassword)) throw new StoreError(StoreErrorCode.AUTH, 'current password is wrong');
  const r = db.prepare('UPDATE admin_users SET password_hash = ?, updated_at = ? WHERE name = ?').run(hashPassword(newPassword), now, name);
  if (r.changes === 0) throw new StoreError(StoreErrorCode.NOT_FOUND, `no user '${String(name).slice(0, 64)}'`);
}

export function deleteUser(db: Db, name: string): void {
  const r = db.prepare('DELETE FROM admin_users WHERE name = ?').run(name);
  if (r.changes === 0) throw new StoreError(StoreErrorCode.NOT_FOUND, `no user '${String(name).slice(0, 64)}'`);
}

export function listUsers(db: Db): AdminUser[] {
  return (db.prepare('SELECT name, created_at, updated_at FROM admin_users ORDER BY name').all() as { name: string; created_at: number; updated_at: number }[]).map((r) => ({
    name: r.name,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}
