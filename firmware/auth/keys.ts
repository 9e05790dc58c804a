/**
 * Public and private keys for certificate / RFC 7427 authentication.
 *
 * Classical keys (ECDSA P-256/384/521, RSA, Ed25519) live in node:crypto
 * KeyObjects. ML-DSA-65 keys (FIPS 204, experimental here) are held as raw
 * octets and used through @noble/post-quantum, since Node 20 / OpenSSL 3.0
 * know nothing about them.
 *
 * Formats:
 *  - SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). For ML-DSA the algorithm is
 *    id-ml-dsa-65 with absent parameters and the BIT STRING holds the raw
 *    1952-octet public key (RFC 9881 §2, §4).
 *  - Private keys: PEM "PRIVATE KEY" (PKCS#8, RFC 5208/5958), "EC PRIVATE KEY"
 *    (SEC1, RFC 5915), "RSA PRIVATE KEY" (PKCS#1, RFC 8017), or the same as DER.
 *    ML-DSA-65 private keys are PKCS#8 with id-ml-dsa-65 and the RFC 9881 §6
 *    ML-DSA-PrivateKey CHOICE inside the privateKey OCTET STRING:
 *        seed [0] IMPLICIT OCTET STRING (32)          -- what we WRITE
 *        expandedKey OCTET STRING (4032)              -- accepted on load
 *        both SEQUENCE { seed, expandedKey }          -- accepted, cross-checked
 *    We write the seed-only form because it is the smallest, it is what RFC 9881
 *    recommends, and it is what strongSwan's ml plugin emits
 *    (ml_dsa_private_key.c get_encoding: PKCS#8 with ASN1_CONTEXT_S_0 seed).
 *    Encrypted PKCS#8 is supported for classical keys only (node's passphrase).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { PqError, ParseError } from '../util/errors.js';
import { equal } from '../util/bytes.js';
import { DerReader, Tag, bitString, ctxPrim, encodeOid, octetString, seq, tlv, uint } from './der.js';
import { OID } from './oids.js';

export type KeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'rsa' | 'ed25519' | 'ml-dsa-65';

export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa', 'ed25519', 'ml-dsa-65'];

export interface PublicKey {
  readonly type: KeyType;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Uint8Array;
  /** RSA modulus bits / curve bits / 256 (Ed25519) / 1952*8 (ML-DSA-65 encoded key). */
  readonly bits: number;
  /** Classical keys. */
  readonly node?: KeyObject;
  /** ML-DSA-65: the 1952-octet encoded public key (FIPS 204 pkEncode). */
  readonly raw?: Uint8Array;
  /** RSA key whose SPKI is id-RSASSA-PSS: PSS signatures only (RFC 4055 §1.2). */
  readonly pssOnly?: boolean;
}

export interface PrivateKey {
  readonly type: KeyType;
  readonly publicKey: PublicKey;
  readonly node?: KeyObject;
  /** ML-DSA-65 secret material. `seed` is absent when loaded from an expandedKey-only file. */
  readonly mlDsa?: { readonly seed?: Uint8Array; readonly secretKey: Uint8Array };
}

export class KeyError extends PqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEY', message, options);
  }
}

const ML_DSA_65_PK = 1952;
const ML_DSA_65_SK = 4032;

// ---- PEM ------------------------------------------------------------------

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

/** All PEM blocks in a text (RFC 7468). Text outside the blocks is ignored. */
export function parsePem(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 #-]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const body = m[2]!;
    if (/^[A-Za-z-]+:/m.test(body)) throw new KeyError(`PEM '${m[1]}' has RFC 1421 headers (legacy encrypted PEM is not supported)`);
    const b64 = body.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new KeyError(`PEM '${m[1]}': invalid base64`);
    out.push({ label: m[1]!, der: new Uint8Array(Buffer.from(b64, 'base64')) });
  }
  return out;
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Bytes of a file that is either PEM text or raw DER. */
export function isPem(data: Uint8Array | string): boolean {
  const s = typeof data === 'string' ? data : Buffer.from(data.subarray(0, Math.min(data.length, 4096))).toString('latin1');
  return s.includes('-----BEGIN ');
}

// ---- public keys ----------------------------------------------------------

function classify(node: KeyObject): { type: KeyType; bits: number; pssOnly?: boolean } {
  const t = node.asymmetricKeyType;
  const d = node.asymmetricKeyDetails ?? {};
  if (t === 'ec') {
    switch (d.namedCurve) {
      case 'prime256v1':
        return { type: 'ecdsa-p256', bits: 256 };
      case 'secp384r1':
        return { type: 'ecdsa-p384', bits: 384 };
      case 'secp521r1':
        return { type: 'ecdsa-p521', bits: 521 };
    }
    throw new KeyError(`unsupported EC curve ${d.namedCurve ?? '?'}`);
  }
  if (t === 'rsa' || t === 'rsa-pss') {
    return t === 'rsa-pss' ? { type: 'rsa', bits: d.modulusLength ?? 0, pssOnly: true } : { type: 'rsa', bits: d.modulusLength ?? 0 };
  }
  if (t === 'ed25519') return { type: 'ed25519', bits: 256 };
  throw new KeyError(`unsupported key type ${t ?? '?'}`);
}

export function publicKeyFromNode(node: KeyObject): PublicKey {
  const pub = node.type === 'private' ? createPublicKey(node) : node;
  const c = classify(pub);
  const spki = new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
  return { ...c, spki, node: pub };
}

export function mlDsaSpki(raw: Uint8Array): Uint8Array {
  return seq(seq(encodeOid(OID.mlDsa65)), bitString(raw));
}

function mlDsaPublic(raw: Uint8Array): PublicKey {
  return { type: 'ml-dsa-65', spki: mlDsaSpki(raw), bits: ML_DSA_65_PK * 8, raw };
}

/** Parse a DER SubjectPublicKeyInfo. Throws ParseError / KeyError. */
export function publicKeyFromSpki(spki: Uint8Array): PublicKey {
  const top = new DerReader(spki);
  const r = top.enter(Tag.SEQUENCE, 'SubjectPublicKeyInfo');
  top.finish('SubjectPublicKeyInfo');
  const alg = r.enter(Tag.SEQUENCE, 'AlgorithmIdentifier');
  const oid = alg.oid('algorithm');
  if (oid === OID.mlDsa65) {
    // RFC 9881 §2: parameters MUST be absent.
    if (!alg.done) alg.fail('id-ml-dsa-65 parameters must be absent');
    const raw = r.bitStringBytes('subjectPublicKey');
    r.finish('SubjectPublicKeyInfo');
    if (raw.length !== ML_DSA_65_PK) throw new KeyError(`ML-DSA-65 public key must be ${ML_DSA_65_PK} octets, got ${raw.length}`);
    return mlDsaPublic(raw);
  }
  let node: KeyObject;
  try {
    node = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (e) {
    throw new KeyError(`cannot import public key (${oid}): ${(e as Error).message}`, { cause: e });
  }
  return publicKeyFromNode(node);
}

export function loadPublicKey(data: Uint8Array | string): PublicKey {
  if (isPem(data)) {
    const blocks = parsePem(typeof data === 'string' ? data : Buffer.from(data).toString('latin1'));
    const b = blocks.find((x) => x.label === 'PUBLIC KEY');
    if (!b) throw new KeyError('no PUBLIC KEY PEM block');
    return publicKeyFromSpki(b.der);
  }
  return publicKeyFromSpki(typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'latin1')) : data);
}

export function publicKeysEqual(a: PublicKey, b: PublicKey): boolean {
  return equal(a.spki, b.spki);
}

// ---- private keys ---------------------------------------------------------

function mlDsaFromSeed(seed: Uint8Array): PrivateKey {
  const { publicKey, secretKey } = ml_dsa65.keygen(seed);
  return { type: 'ml-dsa-65', publicKey: mlDsaPublic(publicKey), mlDsa: { seed: Uint8Array.from(seed), secretKey } };
}

/** RFC 9881 §6 ML-DSA-65-PrivateKey CHOICE, from the PKCS#8 privateKey OCTET STRING contents. */
function parseMlDsaPrivate(inner: Uint8Array, pkcs8PublicKey?: Uint8Array): PrivateKey {
  const r = new DerReader(inner);
  const tag = r.peekTag();
  let key: PrivateKey;
  if (tag === ctxPrim(0)) {
    const t = r.next('seed');
    const seed = r.value(t);
    if (seed.length !== 32) r.fail(`ML-DSA seed must be 32 octets, got ${seed.length}`, t.start);
    key = mlDsaFromSeed(seed);
  } else if (tag === Tag.OCTET_STRING) {
    const sk = r.octetString('expandedKey');
    if (sk.length !== ML_DSA_65_SK) r.fail(`ML-DSA-65 expandedKey must be ${ML_DSA_65_SK} octets, got ${sk.length}`);
    let pk: Uint8Array;
    try {
      pk = ml_dsa65.getPublicKey(sk);
    } catch (e) {
      throw new KeyError(`invalid ML-DSA-65 expandedKey: ${(e as Error).message}`, { cause: e });
    }
    key = { type: 'ml-dsa-65', publicKey: mlDsaPublic(pk), mlDsa: { secretKey: sk } };
  } else if (tag === Tag.SEQUENCE) {
    const b = r.enter(Tag.SEQUENCE, 'both');
    const seed = b.octetString('seed');
    const sk = b.octetString('expandedKey');
    b.finish('both');
    if (seed.length !== 32) b.fail('ML-DSA seed must be 32 octets');
    key = mlDsaFromSeed(seed);
    // RFC 9881 §6: a consumer of "both" should check that they agree.
    if (!equal(key.mlDsa!.secretKey, sk)) throw new KeyError('ML-DSA-65 private key: seed and expandedKey disagree');
  } else {
    return r.fail('unknown ML-DSA-PrivateKey form');
  }
  r.finish('ML-DSA-PrivateKey');
  if (pkcs8PublicKey && !equal(pkcs8PublicKey, key.publicKey.raw!)) throw new KeyError('ML-DSA-65 private key: embedded public key does not match');
  return key;
}

/** Inspect a PKCS#8 PrivateKeyInfo / OneAsymmetricKey: returns the ML-DSA key, or undefined for other algorithms. */
function tryMlDsaPkcs8(der: Uint8Array): PrivateKey | undefined {
  const top = new DerReader(der);
  const r = top.enter(Tag.SEQUENCE, 'PrivateKeyInfo');
  top.finish('PrivateKeyInfo');
  const version = r.smallInt('version', 1);
  const alg = r.enter(Tag.SEQUENCE, 'privateKeyAlgorithm');
  const oid = alg.oid('algorithm');
  if (oid !== OID.mlDsa65) return undefined;
  if (!alg.done) alg.fail('id-ml-dsa-65 parameters must be absent');
  const inner = r.octetString('privateKey');
  if (r.peekTag() === (0xa0 | 0)) r.next('attributes');
  let pub: Uint8Array | undefined;
  if (version === 1 && r.peekTag() === ctxPrim(1)) {
    // OneAsymmetricKey publicKey [1] IMPLICIT BIT STRING (RFC 5958 §2)
    const t = r.next('publicKey');
    const v = r.value(t);
    if (v.length < 1 || v[0] !== 0) r.fail('bad publicKey BIT STRING', t.start);
    pub = v.subarray(1);
  }
  r.finish('PrivateKeyInfo');
  return parseMlDsaPrivate(inner, pub);
}

function fromNodePrivate(node: KeyObject): PrivateKey {
  const publicKey = publicKeyFromNode(node);
  return { type: publicKey.type, publicKey, node };
}

function nodePrivate(der: Uint8Array, type: 'pkcs8' | 'sec1' | 'pkcs1', passphrase?: string): PrivateKey {
  try {
    const opts = { key: Buffer.from(der), format: 'der' as const, type, ...(passphrase !== undefined ? { passphrase } : {}) };
    return fromNodePrivate(createPrivateKey(opts));
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw new KeyError(`cannot import ${type} private key: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Load a private key from PEM text or DER bytes. Throws KeyError / ParseError.
 * `passphrase` decrypts "ENCRYPTED PRIVATE KEY" (classical keys).
 */
export function loadPrivateKey(data: Uint8Array | string, passphrase?: string): PrivateKey {
  if (isPem(data)) {
    const text = typeof data === 'string' ? data : Buffer.from(data).toString('latin1');
    for (const b of parsePem(text)) {
      switch (b.label) {
        case 'PRIVATE KEY':
          return tryMlDsaPkcs8(b.der) ?? nodePrivate(b.der, 'pkcs8');
        case 'EC PRIVATE KEY':
          return nodePrivate(b.der, 'sec1');
        case 'RSA PRIVATE KEY':
          return nodePrivate(b.der, 'pkcs1');
        case 'ENCRYPTED PRIVATE KEY':
          if (passphrase === undefined) throw new KeyError('encrypted private key needs a passphrase');
          return nodePrivate(b.der, 'pkcs8', passphrase);
      }
    }
    throw new KeyError('no private key PEM block found');
  }
  const der = typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'latin1')) : data;
  // DER: PKCS#8 first (covers ML-DSA), then SEC1, then PKCS#1.
  let first: unknown;
  try {
    const ml = tryMlDsaPkcs8(der);
    if (ml) return ml;
    return nodePrivate(der, 'pkcs8', passphrase);
  } catch (e) {
    if (e instanceof KeyError && /ML-DSA/.test(e.message)) throw e;
    first = e;
  }
  for (const t of ['sec1', 'pkcs1'] as const) {
    try {
      return nodePrivate(der, t);
    } catch {
      /* try the next format */
    }
  }
  if (first instanceof ParseError || first instanceof KeyError) throw first;
  throw new KeyError('unrecognised private key encoding', { cause: first });
}

/** PKCS#8 DER; ML-DSA-65 in the RFC 9881 seed-only form (needs the seed). */
export function exportPrivateKeyDer(key: PrivateKey): Uint8Array {
  if (key.type === 'ml-dsa-65') {
    const seed = key.mlDsa?.seed;
    if (!seed) throw new KeyError('ML-DSA-65 key has no seed (loaded from expandedKey); cannot write the seed form');
    return seq(uint(0), seq(encodeOid(OID.mlDsa65)), octetString(tlv(ctxPrim(0), seed)));
  }
  return new Uint8Array(key.node!.export({ type: 'pkcs8', format: 'der' }));
}

export function exportPrivateKeyPem(key: PrivateKey): string {
  return toPem('PRIVATE KEY', exportPrivateKeyDer(key));
}

export function exportPublicKeyPem(key: PublicKey): string {
  return toPem('PUBLIC KEY', key.spki);
}

export interface GenerateOptions {
  /** RSA modulus bits (default 3072). */
  rsaBits?: number;
  /** ML-DSA-65 only: deterministic 32-octet seed (tests). */
  seed?: Uint8Array;
}

export function generateKey(type: KeyType, opts: GenerateOptions = {}): PrivateKey {
  switch (type) {
    case 'ecdsa-p256':
    case 'ecdsa-p384':
    case 'ecdsa-p521': {
      const namedCurve = { 'ecdsa-p256': 'P-256', 'ecdsa-p384': 'P-384', 'ecdsa-p521': 'P-521' }[type];
      return fromNodePrivate(generateKeyPairSync('ec', { namedCurve }).privateKey);
    }
    case 'rsa':
      return fromNodePrivate(generateKeyPairSync('rsa', { modulusLength: opts.rsaBits ?? 3072 }).privateKey);
    case 'ed25519':
      return fromNodePrivate(generateKeyPairSync('ed25519').privateKey);
    case 'ml-dsa-65': {
      const seed = opts.seed ?? new Uint8Array(randomBytes(32));
      if (seed.length !== 32) throw new KeyError('ML-DSA seed must be 32 octets');
      return mlDsaFromSeed(seed);
    }
  }
}
