/**
 * Signature-based IKE_AUTH authentication data.
 *
 *  - RFC 7427 §3 "Digital Signature" (AUTH method 14). Authentication Data =
 *        ASN.1 Length (1 octet) | AlgorithmIdentifier (DER) | Signature Value
 *    Signed data = InitiatorSignedOctets / ResponderSignedOctets (RFC 7296
 *    §2.15, plus IntAuth per RFC 9242 §3.3.2; the engine builds them with
 *    firmware/ikev2/sa/keymat.ts `signedOctets` and hands them over).
 *    ECDSA signatures are DER SEQUENCE{r,s} here (RFC 7427 §3 via RFC 5480);
 *    RSASSA-PSS uses MGF1 with the same hash and salt = hash length; Ed25519
 *    signs the raw octets (RFC 8420 §2).
 *  - RFC 7427 §4 SIGNATURE_HASH_ALGORITHMS notify (16431): a list of 2-octet
 *    IKEv2 Hash Algorithm IDs (IANA): SHA1 1, SHA2-256 2, SHA2-384 3,
 *    SHA2-512 4, Identity 5 (RFC 8420 §2).
 *  - RFC 4754 §7/§8 legacy ECDSA methods 9/10/11 (P-256/SHA-256, P-384/SHA-384,
 *    P-521/SHA-512): Authentication Data is the fixed-length r || s.
 *
 * EXPERIMENTAL: ML-DSA-65 per draft-ietf-ipsecme-ikev2-pqc-auth (text read from
 * the authors' repository tireddy2/ikev2-pqc-auth, draft-ietf-ipsecme-ikev2-
 * pqc-auth.md; IETF -04 is the latest numbered revision seen):
 *   * carried in method 14 like any RFC 7427 algorithm ("General Framework");
 *     the AlgorithmIdentifier is id-ml-dsa-65 (2.16.840.1.101.3.4.3.18) with
 *     parameters absent: 30 0b 06 09 60 86 48 01 65 03 04 03 12 (appendix
 *     "ASN.1 Objects", non-normative; RFC 9881 §2 is normative and agrees);
 *   * the SignedOctets go through the "Identity" hash unchanged into *pure*
 *     ML-DSA with an empty context string (§"Handling PQC Signatures");
 *   * a peer must have announced Identity (5) in SIGNATURE_HASH_ALGORITHMS
 *     before we sign with ML-DSA ("MUST NOT be used with a peer that has not
 *     indicated support"): chooseScheme enforces that;
 *   * hedged signing is preferred; verification is identical for both modes.
 *   Left open by the draft, and what we chose:
 *   * it does not say whether a verifier must refuse ML-DSA when *it* did not
 *     announce Identity: we verify whatever the peer sent if our key policy
 *     allows the algorithm (the peer key's type already pins the scheme);
 *   * "MUST send SIGNATURE_HASH_ALGORITHMS ... in IKE_SA_INIT" says nothing of
 *     RFC 9593 SUPPORTED_AUTH_METHODS: not implemented here (engine concern);
 *   * it does not constrain AlgorithmIdentifier leniency: we require the
 *     parameters to be absent (RFC 9881 "MUST be absent"), a NULL is refused;
 *   * the External-mu variant (appendix A) produces identical signatures, so
 *     nothing to negotiate.
 */
import { ParseError } from '../util/errors.js';
import { concat, u16be } from '../util/bytes.js';
import { AuthMethod } from '../ikev2/constants.js';
import { DerReader, Tag, seq } from './der.js';
import { encodeSigAlg, keyFitsAlg, parseSigAlg, signData, sigAlgName, verifyData, HASH_LEN, UnsupportedAlgorithm, type SigAlg, type Sha } from './algorithms.js';
import type { KeyType, PrivateKey, PublicKey } from './keys.js';
import { sign as nodeSign } from 'node:crypto';

type Curve = 'p256' | 'p384' | 'p521';

/**
 * RFC 7427 schemes. The eight names of the assignment are here; the other
 * ECDSA curve/hash pairings and RSA PKCS#1 v1.5 exist because peers use them
 * (strongSwan signs RSA with PKCS#1 v1.5 unless rsa_pss=yes, and picks a
 * stronger hash for ECDSA when the peer lacks the matching one).
 */
export type SignatureScheme = `ecdsa-${Curve}-${Sha}` | `rsa-pss-${Sha}` | `rsa-pkcs1-${Sha}` | 'ed25519' | 'ml-dsa-65';

/** IKEv2 Hash Algorithm Identifiers (IANA registry, RFC 7427 §7, RFC 8420 §2). */
export const HashAlgorithm = {
  SHA1: 1,
  SHA2_256: 2,
  SHA2_384: 3,
  SHA2_512: 4,
  IDENTITY: 5,
} as const;

const HASH_ID: Record<Sha, number> = { sha256: HashAlgorithm.SHA2_256, sha384: HashAlgorithm.SHA2_384, sha512: HashAlgorithm.SHA2_512 };
const CURVE_OF: Partial<Record<KeyType, Curve>> = { 'ecdsa-p256': 'p256', 'ecdsa-p384': 'p384', 'ecdsa-p521': 'p521' };

/** What we announce in SIGNATURE_HASH_ALGORITHMS: no SHA-1. */
export const SUPPORTED_HASHES: readonly number[] = [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.IDENTITY];

export function schemeToSigAlg(s: SignatureScheme): SigAlg {
  if (s === 'ed25519') return { kind: 'ed25519' };
  if (s === 'ml-dsa-65') return { kind: 'ml-dsa-65' };
  const hash = s.slice(s.lastIndexOf('-') + 1) as Sha;
  if (s.startsWith('ecdsa-')) return { kind: 'ecdsa', hash };
  if (s.startsWith('rsa-pss-')) return { kind: 'rsa-pss', hash, saltLength: HASH_LEN[hash] };
  return { kind: 'rsa-pkcs1', hash };
}

/** The key type a scheme needs (ECDSA schemes pin the curve). */
export function schemeKeyType(s: SignatureScheme): KeyType {
  if (s.startsWith('ecdsa-')) return `ecdsa-${s.split('-')[1]}` as KeyType;
  if (s.startsWith('rsa-')) return 'rsa';
  return s as KeyType;
}

/** The IKEv2 hash algorithm a scheme signs with (RFC 7427 §4). */
export function schemeHash(s: SignatureScheme): number {
  if (s === 'ed25519' || s === 'ml-dsa-65') return HashAlgorithm.IDENTITY;
  return HASH_ID[s.slice(s.lastIndexOf('-') + 1) as Sha];
}

/** The AlgorithmIdentifier DER our signer puts into the AUTH payload for `scheme`. */
export function algorithmIdentifier(scheme: SignatureScheme): Uint8Array {
  return encodeSigAlg(schemeToSigAlg(scheme));
}

/** Authentication Data for AUTH method 14 (RFC 7427 §3). Throws TypeError if key and scheme do not fit. */
export function buildAuthData(scheme: SignatureScheme, privateKey: PrivateKey, octets: Uint8Array): Uint8Array {
  if (schemeKeyType(scheme) !== privateKey.type) throw new TypeError(`scheme ${scheme} needs a ${schemeKeyType(scheme)} key, got ${privateKey.type}`);
  const alg = schemeToSigAlg(scheme);
  const algId = encodeSigAlg(alg);
  if (algId.length > 255) throw new TypeError('AlgorithmIdentifier longer than 255 octets');
  const sig = signData(alg, privateKey, octets);
  return concat(Uint8Array.of(algId.length), algId, sig);
}

export type VerifyFailure = 'malformed' | 'unknown-algorithm' | 'key-mismatch' | 'weak-key' | 'bad-signature' | 'unsupported-method';

export type VerifyResult =
  | { ok: true; scheme: SignatureScheme; hash: number }
  | { ok: false; reason: VerifyFailure; detail: string };

/** Minimum RSA modulus accepted for authentication (NIST SP 800-131A: 2048). */
export const MIN_RSA_BITS = 2048;

function fail(reason: VerifyFailure, detail: string): VerifyResult {
  return { ok: false, reason, detail };
}

function schemeFor(alg: SigAlg, key: PublicKey): SignatureScheme {
  switch (alg.kind) {
    case 'ecdsa':
      return `ecdsa-${CURVE_OF[key.type]!}-${alg.hash}`;
    case 'rsa-pss':
      return `rsa-pss-${alg.hash}`;
    case 'rsa-pkcs1':
      return `rsa-pkcs1-${alg.hash}`;
    default:
      return alg.kind;
  }
}

/**
 * Split Authentication Data of method 14 into AlgorithmIdentifier and
 * signature, strictly: the length octet must cover exactly one DER element,
 * a non-empty signature must follow. Throws ParseError / UnsupportedAlgorithm.
 */
export function parseAuthData(authData: Uint8Array): { alg: SigAlg; algId: Uint8Array; signature: Uint8Array } {
  if (authData.length < 1) throw new ParseError('AUTH data empty', 0);
  const len = authData[0]!;
  if (len < 2 || 1 + len > authData.length) throw new ParseError(`AlgorithmIdentifier length ${len} out of range`, 0);
  const algId = authData.slice(1, 1 + len);
  // The ASN.1 object must be exactly one SEQUENCE spanning `len` octets.
  const r = new DerReader(algId);
  r.expect(Tag.SEQUENCE, 'AlgorithmIdentifier');
  r.finish('AlgorithmIdentifier');
  const alg = parseSigAlg(algId);
  const signature = authData.slice(1 + len);
  if (signature.length === 0) throw new ParseError('AUTH data has no signature value', 1 + len);
  return { alg, algId, signature };
}

/**
 * Verify Authentication Data of AUTH method 14. Never throws; any failure is
 * reported as `{ ok: false, reason, detail }`.
 */
export function verifyAuthData(publicKey: PublicKey, octets: Uint8Array, authData: Uint8Array): VerifyResult {
  let parsed: ReturnType<typeof parseAuthData>;
  try {
    parsed = parseAuthData(authData);
  } catch (e) {
    if (e instanceof UnsupportedAlgorithm) return fail('unknown-algorithm', e.message);
    return fail('malformed', (e as Error).message);
  }
  const { alg, signature } = parsed;
  if (!keyFitsAlg(alg, publicKey.type, publicKey.pssOnly)) return fail('key-mismatch', `${sigAlgName(alg)} with a ${publicKey.type}${publicKey.pssOnly ? ' (PSS-only)' : ''} key`);
  if (publicKey.type === 'rsa' && publicKey.bits < MIN_RSA_BITS) return fail('weak-key', `RSA key of ${publicKey.bits} bits`);
  if (!verifyData(alg, publicKey, octets, signature)) return fail('bad-signature', `${sigAlgName(alg)} signature does not verify`);
  const scheme = schemeFor(alg, publicKey);
  return { ok: true, scheme, hash: schemeHash(scheme) };
}

// ---- RFC 7427 §4 SIGNATURE_HASH_ALGORITHMS ---------------------------------

export function encodeHashAlgorithms(list: readonly number[]): Uint8Array {
  for (const h of list) if (!Number.isInteger(h) || h < 0 || h > 0xffff) throw new TypeError(`hash algorithm id ${h} out of range`);
  return concat(...list.map((h) => u16be(h)));
}

/** Decode the notify data. Unknown IDs are kept (the chooser ignores them). Odd length → ParseError. */
export function decodeHashAlgorithms(data: Uint8Array): number[] {
  if (data.length % 2 !== 0) throw new ParseError(`SIGNATURE_HASH_ALGORITHMS length ${data.length} is odd`, data.length - 1);
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push((data[i]! << 8) | data[i + 1]!);
  return out;
}

export interface ChooseOptions {
  /** RSA: prefer RSASSA-PSS (default true); false = PKCS#1 v1.5 first. */
  rsaPss?: boolean;
  /** RSA key whose SPKI is id-RSASSA-PSS: PSS only. */
  pssOnly?: boolean;
}

/**
 * Pick the RFC 7427 scheme to sign with, given our key type and the hash IDs
 * the peer announced. Returns null when nothing fits, including when the peer
 * sent no SIGNATURE_HASH_ALGORITHMS at all (then RFC 7427 §4 says method 14
 * must not be used; the engine may fall back to RFC 4754 methods 9/10/11).
 * ECDSA: the hash matching the curve first, then stronger ones (as strongSwan's
 * signature_schemes_for_key orders them). Ed25519 / ML-DSA need Identity (5).
 */
export function chooseScheme(keyType: KeyType, peerHashes: readonly number[] | undefined, opts: ChooseOptions = {}): SignatureScheme | null {
  if (!peerHashes || peerHashes.length === 0) return null;
  const has = (h: number): boolean => peerHashes.includes(h);
  const curve = CURVE_OF[keyType];
  if (curve) {
    const order: Sha[] = curve === 'p256' ? ['sha256', 'sha384', 'sha512'] : curve === 'p384' ? ['sha384', 'sha512'] : ['sha512'];
    const h = order.find((x) => has(HASH_ID[x]));
    return h ? `ecdsa-${curve}-${h}` : null;
  }
  if (keyType === 'rsa') {
    const h = (['sha256', 'sha384', 'sha512'] as Sha[]).find((x) => has(HASH_ID[x]));
    if (!h) return null;
    return opts.rsaPss === false && !opts.pssOnly ? `rsa-pkcs1-${h}` : `rsa-pss-${h}`;
  }
  // Ed25519 (RFC 8420 §2) and ML-DSA (draft-ietf-ipsecme-ikev2-pqc-auth): Identity only.
  return has(HashAlgorithm.IDENTITY) ? (keyType as 'ed25519' | 'ml-dsa-65') : null;
}

// ---- RFC 4754 ECDSA methods 9/10/11 (legacy) -------------------------------

const LEGACY: Record<number, { type: KeyType; hash: Sha; len: number }> = {
  [AuthMethod.ECDSA_256]: { type: 'ecdsa-p256', hash: 'sha256', len: 32 },
  [AuthMethod.ECDSA_384]: { type: 'ecdsa-p384', hash: 'sha384', len: 48 },
  [AuthMethod.ECDSA_521]: { type: 'ecdsa-p521', hash: 'sha512', len: 66 },
};

/** The RFC 4754 method for an ECDSA key, or undefined. */
export function legacyEcdsaMethod(keyType: KeyType): number | undefined {
  for (const [m, v] of Object.entries(LEGACY)) if (v.type === keyType) return Number(m);
  return undefined;
}

/** RFC 4754 §7: Authentication Data = r || s, each the curve's field size. */
export function buildLegacyEcdsaAuth(privateKey: PrivateKey, octets: Uint8Array): { method: number; data: Uint8Array } {
  const method = legacyEcdsaMethod(privateKey.type);
  if (method === undefined) throw new TypeError(`RFC 4754 needs an ECDSA key, got ${privateKey.type}`);
  const data = new Uint8Array(nodeSign(LEGACY[method]!.hash, octets, { key: privateKey.node!, dsaEncoding: 'ieee-p1363' }));
  return { method, data };
}

/** DER SEQUENCE{r, s} from fixed-length r || s (for node's DER verifier). */
function rsToDer(rs: Uint8Array, len: number): Uint8Array {
  const int = (b: Uint8Array): Uint8Array => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = concat(Uint8Array.of(0), v);
    return concat(Uint8Array.of(Tag.INTEGER, v.length), v);
  };
  return seq(int(rs.subarray(0, len)), int(rs.subarray(len)));
}

/** Verify RFC 4754 Authentication Data. Never throws. */
export function verifyLegacyEcdsaAuth(method: number, publicKey: PublicKey, octets: Uint8Array, data: Uint8Array): VerifyResult {
  const p = LEGACY[method];
  if (!p) return fail('unsupported-method', `AUTH method ${method} is not an RFC 4754 method`);
  if (publicKey.type !== p.type) return fail('key-mismatch', `method ${method} needs a ${p.type} key, got ${publicKey.type}`);
  if (data.length !== 2 * p.len) return fail('malformed', `method ${method} signature must be ${2 * p.len} octets, got ${data.length}`);
  if (!verifyData({ kind: 'ecdsa', hash: p.hash }, publicKey, octets, rsToDer(data, p.len))) return fail('bad-signature', `RFC 4754 method ${method} signature does not verify`);
  const scheme: SignatureScheme = `ecdsa-${CURVE_OF[p.type]!}-${p.hash}`;
  return { ok: true, scheme, hash: HASH_ID[p.hash] };
}

/**
 * One entry point for the engine: verify an AUTH payload of a signature method.
 * Methods: 14 (RFC 7427) and 9/10/11 (RFC 4754). Method 1 (RSA with SHA-1,
 * RFC 7296 §2.15) is refused as 'unsupported-method'. Never throws.
 */
export function verifyAuth(method: number, publicKey: PublicKey, octets: Uint8Array, authData: Uint8Array): VerifyResult {
  if (method === AuthMethod.DIGITAL_SIGNATURE) return verifyAuthData(publicKey, octets, authData);
  if (method in LEGACY) return verifyLegacyEcdsaAuth(method, publicKey, octets, authData);
  return fail('unsupported-method', `AUTH method ${method} is not a supported signature method`);
}
