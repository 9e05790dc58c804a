/**
 * Certificate trust and identity for IKEv2 certificate authentication.
 *
 *  - Path validation, a pragmatic subset of RFC 5280 §6.1: signature of every
 *    link, validity period of every certificate (trust anchor included, as
 *    strongSwan does), basicConstraints cA on every issuer (§4.2.1.9), the
 *    pathLenConstraint counting non-self-issued intermediates (§4.2.1.9,
 *    §6.1.4 (l)-(m)), keyUsage keyCertSign on issuers and digitalSignature on
 *    the end entity when the extension is present (§4.2.1.3), rejection of
 *    unrecognised critical extensions (§4.2), a bounded depth, no repeated
 *    certificate. Names chain by exact DER byte equality (stricter than §7.1's
 *    normalised comparison; every CA we generate or know of is consistent).
 *    Not implemented: name constraints, policies (their critical extensions
 *    cause rejection), revocation (CRL/OCSP).
 *  - IKE identity vs certificate (RFC 7296 §3.5, RFC 4945 §3.1): FQDN,
 *    RFC822_ADDR and IPV4/IPV6_ADDR against subjectAltName entries,
 *    DER_ASN1_DN against the subject (and SAN directoryName) by DER bytes,
 *    DER_ASN1_GN against a SAN GeneralName by DER bytes; KEY_ID never matches.
 *  - CERT payload (RFC 7296 §3.6) encoding 4 "X.509 Certificate - Signature":
 *    the data is the DER certificate. CERTREQ (§3.7) for encoding 4: the
 *    concatenated SHA-1 hashes of the trusted CAs' SubjectPublicKeyInfo.
 */
import { createHash } from 'node:crypto';
import { ParseError, PqError } from '../util/errors.js';
import { concat, equal } from '../util/bytes.js';
import { CertEncoding, IdType } from '../ikev2/constants.js';
import { isPem, parsePem } from './keys.js';
import { KeyUsage } from './oids.js';
import { isSelfIssued, parseCertificate, verifyCertificateSignature, type Certificate } from './x509.js';

export type { Certificate } from './x509.js';

// ---- loading ----------------------------------------------------------------

/**
 * All certificates in a PEM bundle ("CERTIFICATE" / "X509 CERTIFICATE" blocks)
 * or one DER certificate. Throws ParseError on malformed certificates.
 */
export function loadCertificates(data: Uint8Array | string): Certificate[] {
  if (isPem(data)) {
    const text = typeof data === 'string' ? data : Buffer.from(data).toString('latin1');
    const certs = parsePem(text)
      .filter((b) => b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE')
      .map((b) => parseCertificate(b.der));
    if (certs.length === 0) throw new PqError('ERR_CERT', 'no CERTIFICATE PEM block found');
    return certs;
  }
  const der = typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'latin1')) : data;
  return [parseCertificate(der)];
}

export function loadCertificate(data: Uint8Array | string): Certificate {
  const certs = loadCertificates(data);
  if (certs.length !== 1) throw new PqError('ERR_CERT', `expected one certificate, found ${certs.length}`);
  return certs[0]!;
}

// ---- CERT / CERTREQ payloads --------------------------------------------------

/** CERT payload data for encoding 4 (RFC 7296 §3.6): the DER certificate. */
export function certPayloadData(cert: Certificate): Uint8Array {
  return cert.der;
}

/** Certificate from a received CERT payload. Only encoding 4 is supported. Throws ParseError. */
export function certFromPayload(encoding: number, data: Uint8Array): Certificate {
  if (encoding !== CertEncoding.X509_SIGNATURE) throw new ParseError(`unsupported certificate encoding ${encoding}`, 0);
  return parseCertificate(data);
}

/** SHA-1 of the certificate's DER SubjectPublicKeyInfo (RFC 7296 §3.7). */
export function spkiSha1(cert: Certificate): Uint8Array {
  return new Uint8Array(createHash('sha1').update(cert.spki).digest());
}

/** CERTREQ Certification Authority data for encoding 4: concatenated SPKI SHA-1s. */
export function certReqHashes(cas: readonly Certificate[]): Uint8Array {
  return concat(...cas.map(spkiSha1));
}

/** Split CERTREQ data into 20-octet hashes. A trailing partial hash is a ParseError. */
export function parseCertReq(data: Uint8Array): Uint8Array[] {
  if (data.length % 20 !== 0) throw new ParseError(`CERTREQ data length ${data.length} is not a multiple of 20`, data.length);
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += 20) out.push(data.slice(i, i + 20));
  return out;
}

/** Does a received CERTREQ name this CA? Never throws (malformed data → false). */
export function caMatchesCertReq(ca: Certificate, data: Uint8Array): boolean {
  if (data.length % 20 !== 0) return false;
  const h = spkiSha1(ca);
  for (let i = 0; i < data.length; i += 20) if (equal(h, data.subarray(i, i + 20))) return true;
  return false;
}

// ---- path validation --------------------------------------------------------

export type ChainFailure =
  | 'expired'
  | 'not-yet-valid'
  | 'no-issuer'
  | 'untrusted-root'
  | 'issuer-not-ca'
  | 'path-length-exceeded'
  | 'bad-signature'
  | 'loop'
  | 'chain-too-long'
  | 'key-usage'
  | 'unknown-critical-extension'
  | 'unsupported-algorithm'
  | 'too-complex';

export type ChainResult =
  | { ok: true; chain: Certificate[] }
  | { ok: false; reason: ChainFailure; detail: string };

export interface ChainOptions {
  /** Maximum number of certificates in a path, leaf and anchor included (default 8). */
  maxLength?: number;
  /**
   * Budget of certificate signature checks for one validation (default 64).
   * The intermediates come from the peer's CERT payloads; without a budget a
   * peer could send many same-named, same-key CA certificates and make the
   * path search explode combinatorially.
   */
  maxSignatureChecks?: number;
}

/** Keep the most informative failure: the one found deepest in the path. */
type Failure = { reason: ChainFailure; detail: string; depth: number };

function checkTime(c: Certificate, now: Date, role: string): Failure | undefined {
  const t = now.getTime();
  if (t < c.notBefore.getTime()) return { reason: 'not-yet-valid', detail: `${role} not valid before ${c.notBefore.toISOString()}`, depth: 0 };
  if (t > c.notAfter.getTime()) return { reason: 'expired', detail: `${role} expired ${c.notAfter.toISOString()}`, depth: 0 };
  return undefined;
}

function sameCert(a: Certificate, b: Certificate): boolean {
  return equal(a.der, b.der);
}

/** Could `cand` have issued `c` (names, and key identifiers when both are present)? */
function namesIssuer(cand: Certificate, c: Certificate): boolean {
  if (!equal(cand.subject, c.issuer)) return false;
  if (c.authorityKeyId && cand.subjectKeyId && !equal(c.authorityKeyId, cand.subjectKeyId)) return false;
  return true;
}

/**
 * Validate `leaf` up to one of `trustAnchors`, using `intermediates` as an
 * unordered pool. Returns the path leaf-first, anchor last. Never throws.
 * A leaf that is itself one of the anchors (byte-identical) is accepted alone.
 */
export function validateChain(
  leaf: Certificate,
  intermediates: readonly Certificate[],
  trustAnchors: readonly Certificate[],
  now: Date,
  opts: ChainOptions = {},
): ChainResult {
  const ctx: Ctx = { now, maxLength: opts.maxLength ?? 8, budget: opts.maxSignatureChecks ?? 64 };
  try {
    const lf = checkLeaf(leaf, now);
    if (lf) return { ok: false, reason: lf.reason, detail: lf.detail };
    if (trustAnchors.some((a) => sameCert(a, leaf))) return { ok: true, chain: [leaf] };
    // Drop byte-identical duplicates (peers repeat certificates) and the leaf itself.
    const pool: Certificate[] = [];
    for (const c of intermediates) if (!sameCert(c, leaf) && !pool.some((p) => sameCert(p, c))) pool.push(c);
    const res = extend([leaf], pool, trustAnchors, ctx);
    if (Array.isArray(res)) return { ok: true, chain: res };
    return { ok: false, reason: res.reason, detail: res.detail };
  } catch (e) {
    return { ok: false, reason: 'bad-signature', detail: `internal error: ${(e as Error).message}` };
  }
}

function checkLeaf(leaf: Certificate, now: Date): Failure | undefined {
  const tf = checkTime(leaf, now, 'end-entity certificate');
  if (tf) return tf;
  if (leaf.unknownCritical.length) return { reason: 'unknown-critical-extension', detail: `end-entity has critical ${leaf.unknownCritical.join(', ')}`, depth: 0 };
  if (!leaf.publicKey) return { reason: 'unsupported-algorithm', detail: 'end-entity public key algorithm not supported', depth: 0 };
  if (leaf.keyUsage !== undefined && !(leaf.keyUsage & KeyUsage.digitalSignature)) {
    return { reason: 'key-usage', detail: 'end-entity keyUsage lacks digitalSignature', depth: 0 };
  }
  return undefined;
}

interface Ctx {
  now: Date;
  maxLength: number;
  /** Remaining signature checks. */
  budget: number;
}

function extend(path: Certificate[], pool: readonly Certificate[], anchors: readonly Certificate[], ctx: Ctx): Certificate[] | Failure {
  const cur = path[path.length - 1]!;
  const depth = path.length;
  const candidates = [...anchors.map((c) => ({ c, anchor: true })), ...pool.map((c) => ({ c, anchor: false }))].filter(({ c }) => namesIssuer(c, cur));
  let best: Failure | undefined;
  const note = (f: Failure): void => {
    if (!best || f.depth >= best.depth) best = f;
  };
  if (candidates.length === 0) {
    if (isSelfIssued(cur)) return { reason: 'untrusted-root', detail: `certificate #${depth - 1} is self-issued and not a trust anchor`, depth };
    return { reason: 'no-issuer', detail: `no known issuer for certificate #${depth - 1}`, depth };
  }
  for (const { c: cand, anchor } of candidates) {
    if (sameCert(cand, cur)) {
      note({ reason: 'untrusted-root', detail: `path ends in a self-signed certificate that is not a trust anchor`, depth });
      continue;
    }
    if (path.some((p) => sameCert(p, cand))) {
      note({ reason: 'loop', detail: `certificate #${depth - 1}'s issuer is already in the path`, depth });
      continue;
    }
    if (depth + 1 > ctx.maxLength) {
      note({ reason: 'chain-too-long', detail: `path longer than ${ctx.maxLength} certificates`, depth });
      continue;
    }
    const role = anchor ? 'trust anchor' : `intermediate #${depth}`;
    if (!cand.publicKey || !cur.sigAlg) {
      note({ reason: 'unsupported-algorithm', detail: `cannot verify ${cur.sigAlgName} with ${role}'s key`, depth });
      continue;
    }
    if (ctx.budget <= 0) return { reason: 'too-complex', detail: 'signature check budget exhausted while building the path', depth: Infinity };
    ctx.budget--;
    if (!verifyCertificateSignature(cur, cand.publicKey)) {
      note({ reason: 'bad-signature', detail: `certificate #${depth - 1} signature (${cur.sigAlgName}) does not verify with ${role}'s key`, depth });
      continue;
    }
    if (!cand.basicConstraints?.ca) {
      note({ reason: 'issuer-not-ca', detail: `${role} is not a CA (basicConstraints cA absent/false)`, depth });
      continue;
    }
    if (cand.keyUsage !== undefined && !(cand.keyUsage & KeyUsage.keyCertSign)) {
      note({ reason: 'key-usage', detail: `${role} keyUsage lacks keyCertSign`, depth });
      continue;
    }
    // Non-self-issued intermediates below cand (the leaf does not count): RFC 5280 §4.2.1.9.
    const below = path.slice(1).filter((p) => !isSelfIssued(p)).length;
    if (cand.basicConstraints.pathLen !== undefined && below > cand.basicConstraints.pathLen) {
      note({ reason: 'path-length-exceeded', detail: `${role} allows ${cand.basicConstraints.pathLen} intermediate(s) below it, path has ${below}`, depth });
      continue;
    }
    const tf = checkTime(cand, ctx.now, role);
    if (tf) {
      note({ ...tf, depth });
      continue;
    }
    if (anchor) return [...path, cand];
    if (cand.unknownCritical.length) {
      note({ reason: 'unknown-critical-extension', detail: `${role} has critical ${cand.unknownCritical.join(', ')}`, depth });
      continue;
    }
    const res = extend([...path, cand], pool, anchors, ctx);
    if (Array.isArray(res)) return res;
    if (res.reason === 'too-complex') return res;
    note(res);
  }
  return best!;
}

// ---- identity ---------------------------------------------------------------

const lower = (s: string): string => s.toLowerCase();

/**
 * Does the IKE identity (ID payload type and data) name this certificate's
 * subject? FQDN / RFC822 compare ASCII case-insensitively and exactly (no
 * wildcards); IP addresses by octets; DNs by DER bytes. Never throws.
 */
export function identityMatchesCert(idType: number, idData: Uint8Array, cert: Certificate): boolean {
  if (idData.length === 0) return false;
  const text = (): string => Buffer.from(idData).toString('latin1');
  switch (idType) {
    case IdType.FQDN: {
      const id = lower(text());
      return cert.subjectAltNames.some((n) => n.type === 'dns' && lower(n.value) === id);
    }
    case IdType.RFC822_ADDR: {
      const id = lower(text());
      return cert.subjectAltNames.some((n) => n.type === 'email' && lower(n.value) === id);
    }
    case IdType.IPV4_ADDR:
    case IdType.IPV6_ADDR: {
      if (idData.length !== (idType === IdType.IPV4_ADDR ? 4 : 16)) return false;
      return cert.subjectAltNames.some((n) => n.type === 'ip' && equal(n.bytes, idData));
    }
    case IdType.DER_ASN1_DN:
      return equal(cert.subject, idData) || cert.subjectAltNames.some((n) => n.type === 'dn' && equal(n.der, idData));
    case IdType.DER_ASN1_GN:
      return cert.subjectAltNames.some((n) => equal(n.raw, idData));
    default:
      // KEY_ID is opaque (RFC 7296 §3.5) and never names a certificate.
      return false;
  }
}
