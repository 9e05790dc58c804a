/**
 * Hybrid signing keys for update bundles and key lists: one key id names an
 * Ed25519 pair AND an ML-DSA-65 pair (FIPS 204), and a signature is valid
 * only if both component signatures verify over the same domain-separated
 * message. Either algorithm alone being broken (a quantum adversary against
 * Ed25519, a cryptanalytic surprise in ML-DSA) does not let anyone sign.
 *
 * Key id = first 8 bytes (hex) of SHA-256("pqgate-key-id\0" || ed25519 pk ||
 * ML-DSA pk), so a public key file or key list entry whose id does not
 * match its keys is refused. Secret key files keep the 32-byte seeds of
 * both algorithms (FIPS 204 §6.1 ML-DSA.KeyGen from a seed).
 */
import { createHash, randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import type { HybridPublicKey } from './types.js';
import { UpgradeError } from './types.js';

export const ED25519_PK = 32;
export const ED25519_SIG = 64;
export const MLDSA65_PK = ml_dsa65.lengths.publicKey!; // 1952
export const MLDSA65_SIG = ml_dsa65.lengths.signature!; // 3309

export type KeyRole = 'root' | 'signing';

export interface HybridSecretKey {
  id: string;
  role: KeyRole;
  ed25519Seed: Uint8Array;
  mldsa65Seed: Uint8Array;
}

export interface HybridSignature {
  keyId: string;
  ed25519: Uint8Array;
  mldsa65: Uint8Array;
}

const enc = new TextEncoder();

export function keyId(ed: Uint8Array, ml: Uint8Array): string {
  return createHash('sha256').update(enc.encode('pqgate-key-id\0')).update(ed).update(ml).digest('hex').slice(0, 16);
}

export function generateKey(role: KeyRole): { secret: HybridSecretKey; public: HybridPublicKey } {
  const ed25519Seed = new Uint8Array(randomBytes(32));
  const mldsa65Seed = new Uint8Array(randomBytes(32));
  const pub = publicOf({ id: '', role, ed25519Seed, mldsa65Seed });
  return { secret: { id: pub.id, role, ed25519Seed, mldsa65Seed }, public: pub };
}

export function publicOf(sk: HybridSecretKey): HybridPublicKey {
  const ed = ed25519.getPublicKey(sk.ed25519Seed);
  const ml = ml_dsa65.keygen(sk.mldsa65Seed).publicKey;
  return { id: keyId(ed, ml), ed25519: ed, mldsa65: ml };
}

/** Domain separation: a bundle header signature can never be replayed as a key list signature or vice versa. */
export type SigDomain = 'pqgate-bundle-v1' | 'pqgate-keylist-v1';

function message(domain: SigDomain, data: Uint8Array): Uint8Array {
  const d = enc.encode(domain + '\0');
  const m = new Uint8Array(d.length + data.length);
  m.set(d, 0);
  m.set(data, d.length);
  return m;
}

export function signHybrid(sk: HybridSecretKey, domain: SigDomain, data: Uint8Array): HybridSignature {
  const m = message(domain, data);
  const { secretKey } = ml_dsa65.keygen(sk.mldsa65Seed);
  return { keyId: sk.id, ed25519: ed25519.sign(m, sk.ed25519Seed), mldsa65: ml_dsa65.sign(m, secretKey) };
}

/** Both signatures must verify; otherwise BAD_SIGNATURE naming the failing algorithm(s). */
export function verifyHybrid(pk: HybridPublicKey, domain: SigDomain, data: Uint8Array, sig: HybridSignature, what: string): void {
  const m = message(domain, data);
  let edOk = false;
  let mlOk = false;
  try {
    edOk = sig.ed25519.length === ED25519_SIG && ed25519.verify(sig.ed25519, m, pk.ed25519);
  } catch {
    edOk = false;
  }
  try {
    mlOk = sig.mldsa65.length === MLDSA65_SIG && ml_dsa65.verify(sig.mldsa65, m, pk.mldsa65);
  } catch {
    mlOk = false;
  }
  if (!edOk || !mlOk) {
    const failed = [!edOk ? 'Ed25519' : '', !mlOk ? 'ML-DSA-65' : ''].filter(Boolean).join(' and ');
    throw new UpgradeError('BAD_SIGNATURE', `${what}: the ${failed} signature of key ${pk.id} does not verify (both must)`);
  }
}

// ---- key files (JSON) ------------------------------------------------------------

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

function unb64(v: unknown, len: number, what: string): Uint8Array {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new UpgradeError('BAD_TRUST', `${what}: not base64`);
  const out = new Uint8Array(Buffer.from(v, 'base64'));
  if (out.length !== len) throw new UpgradeError('BAD_TRUST', `${what}: expected ${len} bytes, got ${out.length}`);
  return out;
}

function exactKeys(o: unknown, keys: string[], what: string): Record<string, unknown> {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new UpgradeError('BAD_TRUST', `${what}: not a JSON object`);
  const r = o as Record<string, unknown>;
  const extra = Object.keys(r).filter((k) => !keys.includes(k));
  const missing = keys.filter((k) => !(k in r));
  if (extra.length || missing.length) throw new UpgradeError('BAD_TRUST', `${what}: ${missing.length ? `missing ${missing.join(', ')}` : ''}${extra.length ? ` unknown ${extra.join(', ')}` : ''}`.trim());
  return r;
}

export function encodePublicKey(pk: HybridPublicKey, role: KeyRole): string {
  return JSON.stringify({ type: 'pqgate-public-key', role, id: pk.id, ed25519: b64(pk.ed25519), mldsa65: b64(pk.mldsa65) }, null, 2) + '\n';
}

export function decodePublicKey(text: string, what: string): { key: HybridPublicKey; role: KeyRole } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new UpgradeError('BAD_TRUST', `${what}: not JSON`);
  }
  const r = exactKeys(j, ['type', 'role', 'id', 'ed25519', 'mldsa65'], what);
  if (r.type !== 'pqgate-public-key' || (r.role !== 'root' && r.role !== 'signing')) throw new UpgradeError('BAD_TRUST', `${what}: not a pqgate public key`);
  const key = { id: String(r.id), ed25519: unb64(r.ed25519, ED25519_PK, `${what} ed25519`), mldsa65: unb64(r.mldsa65, MLDSA65_PK, `${what} mldsa65`) };
  if (keyId(key.ed25519, key.mldsa65) !== key.id) throw new UpgradeError('BAD_TRUST', `${what}: key id ${key.id} does not match its keys`);
  return { key, role: r.role };
}

export function encodeSecretKey(sk: HybridSecretKey): string {
  return JSON.stringify({ type: 'pqgate-secret-key', role: sk.role, id: sk.id, ed25519Seed: b64(sk.ed25519Seed), mldsa65Seed: b64(sk.mldsa65Seed) }, null, 2) + '\n';
}

export function decodeSecretKey(text: string, what: string): HybridSecretKey {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new UpgradeError('BAD_TRUST', `${what}: not JSON`);
  }
  const r = exactKeys(j, ['type', 'role', 'id', 'ed25519Seed', 'mldsa65Seed'], what);
  if (r.type !== 'pqgate-secret-key' || (r.role !== 'root' && r.role !== 'signing')) throw new UpgradeError('BAD_TRUST', `${what}: not a pqgate secret key`);
  const sk: HybridSecretKey = { id: String(r.id), role: r.role, ed25519Seed: unb64(r.ed25519Seed, 32, `${what} ed25519Seed`), mldsa65Seed: unb64(r.mldsa65Seed, 32, `${what} mldsa65Seed`) };
  if (publicOf(sk).id !== sk.id) throw new UpgradeError('BAD_TRUST', `${what}: key id ${sk.id} does not match its keys`);
  return sk;
}

// ---- signature encoding: u8 idLen | id | u16 len | ed25519 | u16 len | ML-DSA-65 ----

export function encodeSignature(s: HybridSignature): Uint8Array {
  const id = enc.encode(s.keyId);
  const out = new Uint8Array(1 + id.length + 2 + s.ed25519.length + 2 + s.mldsa65.length);
  const dv = new DataView(out.buffer);
  let o = 0;
  out[o++] = id.length;
  out.set(id, o);
  o += id.length;
  dv.setUint16(o, s.ed25519.length);
  out.set(s.ed25519, o + 2);
  o += 2 + s.ed25519.length;
  dv.setUint16(o, s.mldsa65.length);
  out.set(s.mldsa65, o + 2);
  return out;
}

/** Strict: exact lengths, id of 16 hex digits, nothing left over. */
export function decodeSignature(b: Uint8Array, what: string): HybridSignature {
  const bad = (m: string) => new UpgradeError('BAD_FORMAT', `${what}: ${m}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 1) throw bad('empty signature');
  const idLen = b[0]!;
  if (idLen !== 16 || b.length < 1 + idLen + 2) throw bad('bad key id length');
  const keyIdStr = new TextDecoder().decode(b.subarray(1, 1 + idLen));
  if (!/^[0-9a-f]{16}$/.test(keyIdStr)) throw bad('key id is not 16 hex digits');
  let o = 1 + idLen;
  const edLen = dv.getUint16(o);
  if (edLen !== ED25519_SIG || b.length < o + 2 + edLen + 2) throw bad('bad Ed25519 signature length');
  const ed = b.slice(o + 2, o + 2 + edLen);
  o += 2 + edLen;
  const mlLen = dv.getUint16(o);
  if (mlLen !== MLDSA65_SIG || b.length !== o + 2 + mlLen) throw bad('bad ML-DSA-65 signature length');
  return { keyId: keyIdStr, ed25519: ed, mldsa65: b.slice(o + 2) };
}
