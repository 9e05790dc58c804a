/**
 * Signed key list: the signing keys a root pair currently authorises, with
 * validity windows and revocations. Roots (in the read-only rootfs) sign
 * only key lists; bundles are signed by signing keys named in the newest
 * key list the device has seen, so a signing key can be rotated or revoked
 * without a new root.
 *
 * File: "PQGKLST1" | u32 bodyLen | body (canonical JSON, below) | u32 sigLen | hybrid signature (keys.ts).
 * Body: {"format":1,"version":N,"issued":ISO,"keys":[{"id","ed25519","mldsa65","notBefore","notAfter"}],"revoked":[id...]}
 *
 * Anti-replay (the TUF "rollback attack" on metadata): `version` is
 * monotonic; the device keeps the newest list it accepted on the data
 * partition and never goes back to a lower version, so replaying an old
 * list (from before a revocation) changes nothing.
 */
import type { HybridPublicKey } from './types.js';
import { UpgradeError } from './types.js';
import { ED25519_PK, MLDSA65_PK, decodeSignature, encodeSignature, keyId, signHybrid, verifyHybrid, type HybridSecretKey, type HybridSignature } from './keys.js';

export const KEYLIST_MAGIC = 'PQGKLST1';
export const MAX_KEYLIST_BODY = 256 * 1024;
const MAX_KEYS = 64;
const MAX_REVOKED = 1024;
export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$/;

export interface KeyListEntry extends HybridPublicKey {
  notBefore: string;
  notAfter: string;
}

export interface KeyList {
  format: 1;
  version: number;
  issued: string;
  keys: KeyListEntry[];
  revoked: string[];
}

export interface SignedKeyList {
  list: KeyList;
  bytes: Uint8Array;
  signedBy: string;
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

/** Canonical body: fixed key order, no whitespace. Parsing re-serialises and compares, so there is one encoding per list. */
export function keyListBody(l: KeyList): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      format: 1,
      version: l.version,
      issued: l.issued,
      keys: l.keys.map((k) => ({ id: k.id, ed25519: b64(k.ed25519), mldsa65: b64(k.mldsa65), notBefore: k.notBefore, notAfter: k.notAfter })),
      revoked: l.revoked,
    }),
  );
}

export function signKeyList(l: KeyList, root: HybridSecretKey): Uint8Array {
  if (root.role !== 'root') throw new UpgradeError('BAD_TRUST', `key ${root.id} is a ${root.role} key: key lists are signed by a root key`);
  const body = keyListBody(l);
  const sig = encodeSignature(signHybrid(root, 'pqgate-keylist-v1', body));
  const out = new Uint8Array(8 + 4 + body.length + 4 + sig.length);
  const dv = new DataView(out.buffer);
  out.set(new TextEncoder().encode(KEYLIST_MAGIC), 0);
  dv.setUint32(8, body.length);
  out.set(body, 12);
  dv.setUint32(12 + body.length, sig.length);
  out.set(sig, 16 + body.length);
  return out;
}

function fail(code: 'BAD_FORMAT' | 'TRUNCATED', what: string, m: string): never {
  throw new UpgradeError(code, `${what}: ${m}`);
}

function parseBody(body: Uint8Array, what: string): KeyList {
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    fail('BAD_FORMAT', what, 'body is not UTF-8 JSON');
  }
  const o = j as Record<string, unknown>;
  if (!o || typeof o !== 'object' || Array.isArray(o) || o.format !== 1) fail('BAD_FORMAT', what, 'not a format 1 key list');
  if (typeof o.version !== 'number' || !Number.isSafeInteger(o.version) || o.version < 1) fail('BAD_FORMAT', what, 'version must be a positive integer');
  if (typeof o.issued !== 'string' || !ISO_RE.test(o.issued)) fail('BAD_FORMAT', what, 'issued must be an ISO 8601 UTC time');
  if (!Array.isArray(o.keys) || o.keys.length > MAX_KEYS) fail('BAD_FORMAT', what, `keys must be a list of at most ${MAX_KEYS}`);
  if (!Array.isArray(o.revoked) || o.revoked.length > MAX_REVOKED || !o.revoked.every((r) => typeof r === 'string' && /^[0-9a-f]{16}$/.test(r)))
    fail('BAD_FORMAT', what, 'revoked must be a list of key ids');
  const keys: KeyListEntry[] = [];
  for (const [i, k] of (o.keys as unknown[]).entries()) {
    const e = k as Record<string, unknown>;
    if (!e || typeof e !== 'object' || typeof e.id !== 'string' || typeof e.ed25519 !== 'string' || typeof e.mldsa65 !== 'string') fail('BAD_FORMAT', what, `keys[${i}] malformed`);
    if (typeof e.notBefore !== 'string' || !ISO_RE.test(e.notBefore) || typeof e.notAfter !== 'string' || !ISO_RE.test(e.notAfter) || e.notBefore >= e.notAfter)
      fail('BAD_FORMAT', what, `keys[${i}] validity malformed`);
    const ed = new Uint8Array(Buffer.from(e.ed25519, 'base64'));
    const ml = new Uint8Array(Buffer.from(e.mldsa65, 'base64'));
    if (ed.length !== ED25519_PK || ml.length !== MLDSA65_PK) fail('BAD_FORMAT', what, `keys[${i}] key lengths`);
    if (keyId(ed, ml) !== e.id) fail('BAD_FORMAT', what, `keys[${i}] id does not match its keys`);
    keys.push({ id: e.id, ed25519: ed, mldsa65: ml, notBefore: e.notBefore, notAfter: e.notAfter });
  }
  const list: KeyList = { format: 1, version: o.version, issued: o.issued, keys, revoked: o.revoked as string[] };
  if (Buffer.compare(Buffer.from(keyListBody(list)), Buffer.from(body)) !== 0) fail('BAD_FORMAT', what, 'body is not in canonical form');
  return list;
}

/** Strict parse without checking the signature (openKeyList checks it; dev images without anchors use this alone). */
export function parseKeyListFile(bytes: Uint8Array, what = 'key list'): { list: KeyList; body: Uint8Array; sig: HybridSignature } {
  if (bytes.length < 12) fail('TRUNCATED', what, 'shorter than its header');
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== KEYLIST_MAGIC) fail('BAD_FORMAT', what, 'not a pqgate key list');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bodyLen = dv.getUint32(8);
  if (bodyLen > MAX_KEYLIST_BODY) fail('BAD_FORMAT', what, `body larger than ${MAX_KEYLIST_BODY} bytes`);
  if (bytes.length < 12 + bodyLen + 4) fail('TRUNCATED', what, 'ends inside its body');
  const sigLen = dv.getUint32(12 + bodyLen);
  if (bytes.length < 16 + bodyLen + sigLen) fail('TRUNCATED', what, 'ends inside its signature');
  if (bytes.length > 16 + bodyLen + sigLen) fail('BAD_FORMAT', what, 'trailing bytes after the signature');
  const body = bytes.subarray(12, 12 + bodyLen);
  const sig = decodeSignature(bytes.subarray(16 + bodyLen), `${what} signature`);
  return { list: parseBody(body, what), body, sig };
}

/** Parse and verify against the roots. Throws BAD_FORMAT/TRUNCATED, UNKNOWN_KEY (signer not a root), BAD_SIGNATURE. */
export function openKeyList(bytes: Uint8Array, roots: ReadonlyMap<string, HybridPublicKey>, what = 'key list'): SignedKeyList {
  const { list, body, sig } = parseKeyListFile(bytes, what);
  const root = roots.get(sig.keyId);
  if (!root) throw new UpgradeError('UNKNOWN_KEY', `${what} version ${list.version} is signed by ${sig.keyId}, which is not a root key of this device`);
  verifyHybrid(root, 'pqgate-keylist-v1', body, sig, `${what} version ${list.version}`);
  return { list, bytes, signedBy: sig.keyId };
}
