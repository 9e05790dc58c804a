/**
 * Signature algorithms shared by RFC 7427 AUTH payloads and X.509 certificates:
 * the AlgorithmIdentifier encoding (RFC 5280 §4.1.1.2) and the sign / verify
 * primitives.
 *
 *  - ECDSA: ecdsa-with-SHA256/384/512, parameters absent (RFC 5758 §3.2);
 *    signature = DER SEQUENCE { r, s } (RFC 7427 §3, RFC 5480 §2.2 / 3279).
 *  - RSA PKCS#1 v1.5: sha{256,384,512}WithRSAEncryption, parameters NULL
 *    (RFC 4055 §5: "MUST accept the parameters being absent as well as present").
 *  - RSASSA-PSS: id-RSASSA-PSS with RSASSA-PSS-params (RFC 4055 §3.1); we emit
 *    MGF1 with the same hash and salt length = hash length, hash
 *    AlgorithmIdentifiers with NULL parameters: exactly the RFC 7427 / libreswan
 *    blobs (digest §5.6). On input any salt length is accepted, MGF1 must use
 *    the signature hash, trailerField must be 1, SHA-1 is refused.
 *  - Ed25519: id-Ed25519, parameters absent, PureEdDSA over the raw data
 *    (RFC 8410 §3, RFC 8420 §2).
 *  - ML-DSA-65 (experimental): id-ml-dsa-65, parameters absent, pure ML-DSA
 *    with an empty context string (RFC 9881 §2-3, FIPS 204 Algorithm 2/3).
 *
 * Classical operations go through node:crypto, ML-DSA through @noble/post-quantum.
 */
import { sign as nodeSign, verify as nodeVerify, constants as cc } from 'node:crypto';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { DerReader, Tag, ctxCons, derNull, encodeOid, explicit, seq, uint } from './der.js';
import { OID } from './oids.js';
import type { KeyType, PrivateKey, PublicKey } from './keys.js';

export type Sha = 'sha256' | 'sha384' | 'sha512';

export type SigAlg =
  | { kind: 'ecdsa'; hash: Sha }
  | { kind: 'rsa-pkcs1'; hash: Sha }
  | { kind: 'rsa-pss'; hash: Sha; saltLength: number }
  | { kind: 'ed25519' }
  | { kind: 'ml-dsa-65' };

export const HASH_LEN: Record<Sha, number> = { sha256: 32, sha384: 48, sha512: 64 };

const HASH_OID: Record<Sha, string> = { sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 };
const ECDSA_OID: Record<Sha, string> = { sha256: OID.ecdsaWithSha256, sha384: OID.ecdsaWithSha384, sha512: OID.ecdsaWithSha512 };
const PKCS1_OID: Record<Sha, string> = {
  sha256: OID.sha256WithRSAEncryption,
  sha384: OID.sha384WithRSAEncryption,
  sha512: OID.sha512WithRSAEncryption,
};
const BY_OID = new Map<string, SigAlg>([
  ...(Object.entries(ECDSA_OID) as [Sha, string][]).map(([h, o]) => [o, { kind: 'ecdsa', hash: h }] as [string, SigAlg]),
  ...(Object.entries(PKCS1_OID) as [Sha, string][]).map(([h, o]) => [o, { kind: 'rsa-pkcs1', hash: h }] as [string, SigAlg]),
  [OID.ed25519, { kind: 'ed25519' }],
  [OID.mlDsa65, { kind: 'ml-dsa-65' }],
]);
const SHA_BY_OID = new Map<string, Sha>((Object.entries(HASH_OID) as [Sha, string][]).map(([h, o]) => [o, h]));

export function sigAlgName(a: SigAlg): string {
  switch (a.kind) {
    case 'ecdsa':
      return `ecdsa-with-${a.hash.toUpperCase()}`;
    case 'rsa-pkcs1':
      return `${a.hash}WithRSAEncryption`;
    case 'rsa-pss':
      return `RSASSA-PSS(${a.hash}, salt ${a.saltLength})`;
    case 'ed25519':
      return 'Ed25519';
    case 'ml-dsa-65':
      return 'ML-DSA-65';
  }
}

function hashAlgId(h: Sha): Uint8Array {
  return seq(encodeOid(HASH_OID[h]), derNull());
}

/** DER AlgorithmIdentifier for a signature algorithm. */
export function encodeSigAlg(a: SigAlg): Uint8Array {
  switch (a.kind) {
    case 'ecdsa':
      return seq(encodeOid(ECDSA_OID[a.hash]));
    case 'rsa-pkcs1':
      return seq(encodeOid(PKCS1_OID[a.hash]), derNull());
    case 'rsa-pss':
      // RSASSA-PSS-params (RFC 4055 §3.1): all fields explicit; trailerField left at its DEFAULT.
      return seq(
        encodeOid(OID.rsassaPss),
        seq(explicit(0, hashAlgId(a.hash)), explicit(1, seq(encodeOid(OID.mgf1), hashAlgId(a.hash))), explicit(2, uint(a.saltLength))),
      );
    case 'ed25519':
      return seq(encodeOid(OID.ed25519));
    case 'ml-dsa-65':
      return seq(encodeOid(OID.mlDsa65));
  }
}

/** Hash AlgorithmIdentifier inside PSS params: NULL or absent parameters (RFC 4055 §2.1). */
function parseHashAlgId(r: DerReader, what: string): Sha {
  const h = r.enter(Tag.SEQUENCE, what);
  const oid = h.oid(`${what} algorithm`);
  if (!h.done) h.null(`${what} parameters`);
  h.finish(what);
  const sha = SHA_BY_OID.get(oid);
  if (!sha) return h.fail(`unsupported hash ${oid} in ${what}`);
  return sha;
}

export class UnsupportedAlgorithm extends Error {
  constructor(readonly oid: string) {
    super(`unsupported signature algorithm ${oid}`);
  }
}

/**
 * Parse a DER AlgorithmIdentifier (exactly one element spanning `der`).
 * Throws ParseError on malformed DER / parameters, UnsupportedAlgorithm on an unknown OID.
 */
export function parseSigAlg(der: Uint8Array): SigAlg {
  const top = new DerReader(der);
  const r = top.enter(Tag.SEQUENCE, 'AlgorithmIdentifier');
  top.finish('AlgorithmIdentifier');
  const oid = r.oid('algorithm');
  if (oid === OID.rsassaPss) {
    const p = r.enter(Tag.SEQUENCE, 'RSASSA-PSS-params');
    r.finish('AlgorithmIdentifier');
    // DEFAULT sha1 / mgf1SHA1 / 20 / 1 (RFC 4055 §3.1); SHA-1 is refused below.
    let hash: Sha | undefined;
    let saltLength = 20;
    if (p.peekTag() === ctxCons(0)) hash = parseHashAlgId(p.enter(ctxCons(0), '[0]'), 'hashAlgorithm');
    if (!hash) return p.fail('RSASSA-PSS with SHA-1 (default hashAlgorithm) is not supported');
    if (p.peekTag() !== ctxCons(1)) p.fail('RSASSA-PSS maskGenAlgorithm must be MGF1 with the signature hash');
    const mgfOuter = p.enter(ctxCons(1), '[1]');
    const mgf = mgfOuter.enter(Tag.SEQUENCE, 'maskGenAlgorithm');
    mgfOuter.finish('[1]');
    if (mgf.oid('MGF algorithm') !== OID.mgf1) mgf.fail('maskGenAlgorithm is not MGF1');
    const mgfHash = parseHashAlgId(mgf, 'MGF1 hash');
    mgf.finish('maskGenAlgorithm');
    if (mgfHash !== hash) p.fail(`MGF1 hash ${mgfHash} differs from signature hash ${hash}`);
    if (p.peekTag() === ctxCons(2)) {
      const s = p.enter(ctxCons(2), '[2]');
      saltLength = s.smallInt('saltLength', 1024);
      s.finish('[2]');
    }
    if (p.peekTag() === ctxCons(3)) {
      const t = p.enter(ctxCons(3), '[3]');
      if (t.smallInt('trailerField', 255) !== 1) t.fail('trailerField must be 1');
      t.finish('[3]');
    }
    p.finish('RSASSA-PSS-params');
    return { kind: 'rsa-pss', hash, saltLength };
  }
  const a = BY_OID.get(oid);
  if (!a) throw new UnsupportedAlgorithm(oid);
  if (a.kind === 'rsa-pkcs1') {
    if (!r.done) r.null('parameters');
  } else if (!r.done) {
    // ECDSA (RFC 5758 §3.2), Ed25519 (RFC 8410 §3), ML-DSA (RFC 9881 §2): parameters MUST be absent.
    r.fail(`${sigAlgName(a)} parameters must be absent`);
  }
  r.finish('AlgorithmIdentifier');
  return a;
}

/** Can `key` produce / check signatures of algorithm `a`? */
export function keyFitsAlg(a: SigAlg, type: KeyType, pssOnly = false): boolean {
  switch (a.kind) {
    case 'ecdsa':
      return type === 'ecdsa-p256' || type === 'ecdsa-p384' || type === 'ecdsa-p521';
    case 'rsa-pkcs1':
      return type === 'rsa' && !pssOnly;
    case 'rsa-pss':
      return type === 'rsa';
    case 'ed25519':
      return type === 'ed25519';
    case 'ml-dsa-65':
      return type === 'ml-dsa-65';
  }
}

/**
 * Sign `data`. Throws TypeError if the key does not fit the algorithm.
 * ML-DSA signing is hedged (fresh randomness), the mode the PQC-auth draft
 * prefers (draft-ietf-ipsecme-ikev2-pqc-auth §"Use of ML-DSA and SLH-DSA").
 */
export function signData(a: SigAlg, key: PrivateKey, data: Uint8Array): Uint8Array {
  if (!keyFitsAlg(a, key.type, key.publicKey.pssOnly)) throw new TypeError(`key type ${key.type} cannot sign ${sigAlgName(a)}`);
  switch (a.kind) {
    case 'ecdsa':
      return new Uint8Array(nodeSign(a.hash, data, { key: key.node!, dsaEncoding: 'der' }));
    case 'rsa-pkcs1':
      return new Uint8Array(nodeSign(a.hash, data, { key: key.node!, padding: cc.RSA_PKCS1_PADDING }));
    case 'rsa-pss':
      return new Uint8Array(nodeSign(a.hash, data, { key: key.node!, padding: cc.RSA_PKCS1_PSS_PADDING, saltLength: a.saltLength }));
    case 'ed25519':
      return new Uint8Array(nodeSign(null, data, key.node!));
    case 'ml-dsa-65':
      // Pure ML-DSA, empty context (noble's default ctx is the empty string).
      return ml_dsa65.sign(data, key.mlDsa!.secretKey);
  }
}

/** Verify a signature. Never throws: malformed signatures and keys are just `false`. */
export function verifyData(a: SigAlg, key: PublicKey, data: Uint8Array, sig: Uint8Array): boolean {
  if (!keyFitsAlg(a, key.type, key.pssOnly)) return false;
  try {
    switch (a.kind) {
      case 'ecdsa':
        return nodeVerify(a.hash, data, { key: key.node!, dsaEncoding: 'der' }, sig);
      case 'rsa-pkcs1':
        return nodeVerify(a.hash, data, { key: key.node!, padding: cc.RSA_PKCS1_PADDING }, sig);
      case 'rsa-pss':
        return nodeVerify(a.hash, data, { key: key.node!, padding: cc.RSA_PKCS1_PSS_PADDING, saltLength: a.saltLength }, sig);
      case 'ed25519':
        return nodeVerify(null, data, key.node!, sig);
      case 'ml-dsa-65':
        if (sig.length !== ml_dsa65.lengths.signature || !key.raw) return false;
        return ml_dsa65.verify(sig, data, key.raw);
    }
  } catch {
    return false;
  }
}

/** Default certificate signature algorithm for an issuer key (what strongSwan's pki picks). */
export function defaultSigAlg(type: KeyType, opts: { hash?: Sha; rsaPss?: boolean } = {}): SigAlg {
  switch (type) {
    case 'ecdsa-p256':
      return { kind: 'ecdsa', hash: opts.hash ?? 'sha256' };
    case 'ecdsa-p384':
      return { kind: 'ecdsa', hash: opts.hash ?? 'sha384' };
    case 'ecdsa-p521':
      return { kind: 'ecdsa', hash: opts.hash ?? 'sha512' };
    case 'rsa': {
      const hash = opts.hash ?? 'sha256';
      return opts.rsaPss ? { kind: 'rsa-pss', hash, saltLength: HASH_LEN[hash] } : { kind: 'rsa-pkcs1', hash };
    }
    case 'ed25519':
      return { kind: 'ed25519' };
    case 'ml-dsa-65':
      return { kind: 'ml-dsa-65' };
  }
}
