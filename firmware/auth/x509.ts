/**
 * X.509 v3 certificate parsing (RFC 5280 §4.1, §4.2.1) and certificate
 * signature verification.
 *
 * We parse with our own strict DER reader because node's X509Certificate does
 * not expose what IKE needs: the DER subject/issuer Names (byte comparison for
 * DER_ASN1_DN identities and chaining), raw SubjectAltName entries, keyUsage
 * bits (node's `keyUsage` is actually the *extended* key usage list), pathLen,
 * the SPKI for CERTREQ hashes, and anything at all about ML-DSA keys.
 * node:crypto is still used where it is enough: X509Certificate.verify() checks
 * classical certificate signatures (ECDSA, RSA PKCS#1/PSS, Ed25519); ML-DSA-65
 * signatures are checked over the TBSCertificate with @noble/post-quantum
 * (RFC 9881 §3: pure ML-DSA, empty context).
 */
import { X509Certificate } from 'node:crypto';
import { ParseError } from '../util/errors.js';
import { equal } from '../util/bytes.js';
import { DerReader, Tag, bitsToMask, ctxCons, ctxPrim } from './der.js';
import { OID } from './oids.js';
import { parseSigAlg, sigAlgName, verifyData, UnsupportedAlgorithm, type SigAlg } from './algorithms.js';
import { publicKeyFromSpki, type PublicKey } from './keys.js';

export type GeneralName =
  | { type: 'dns'; value: string; raw: Uint8Array }
  | { type: 'email'; value: string; raw: Uint8Array }
  | { type: 'uri'; value: string; raw: Uint8Array }
  | { type: 'ip'; bytes: Uint8Array; raw: Uint8Array }
  | { type: 'dn'; der: Uint8Array; raw: Uint8Array }
  | { type: 'other'; tag: number; raw: Uint8Array };

export interface Extension {
  oid: string;
  critical: boolean;
  value: Uint8Array;
}

export interface Certificate {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  /** 1, 2 or 3 (X.509 version, not the encoded INTEGER). */
  readonly version: number;
  readonly serial: Uint8Array;
  /** null when the algorithm is not supported (the certificate can then never verify). */
  readonly sigAlg: SigAlg | null;
  /** Algorithm name for messages, or the dotted OID when unsupported. */
  readonly sigAlgName: string;
  readonly signature: Uint8Array;
  /** DER Name of the issuer / subject. */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Uint8Array;
  /** null when the key algorithm is not supported. */
  readonly publicKey: PublicKey | null;
  readonly extensions: readonly Extension[];
  readonly basicConstraints?: { ca: boolean; pathLen?: number };
  /** keyUsage mask (see KeyUsage in oids.ts); undefined = extension absent. */
  readonly keyUsage?: number;
  readonly subjectAltNames: readonly GeneralName[];
  readonly subjectKeyId?: Uint8Array;
  readonly authorityKeyId?: Uint8Array;
  readonly extKeyUsage?: readonly string[];
  /** Critical extensions we do not process (RFC 5280 §4.2: such a certificate must be rejected). */
  readonly unknownCritical: readonly string[];
}

const UNDERSTOOD = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.extKeyUsage,
]);

function ascii(b: Uint8Array, what: string, at: number): string {
  for (const c of b) if (c > 0x7e || c < 0x20) throw new ParseError(`${what}: non-printable IA5 character`, at);
  return Buffer.from(b).toString('latin1');
}

/** GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName (RFC 5280 §4.2.1.6). */
export function parseGeneralNames(der: Uint8Array): GeneralName[] {
  const top = new DerReader(der);
  const r = top.enter(Tag.SEQUENCE, 'GeneralNames');
  top.finish('GeneralNames');
  const out: GeneralName[] = [];
  while (!r.done) {
    const t = r.next('GeneralName');
    const raw = r.raw(t);
    const v = r.value(t);
    switch (t.tag) {
      case ctxPrim(1):
        out.push({ type: 'email', value: ascii(v, 'rfc822Name', t.start), raw });
        break;
      case ctxPrim(2):
        out.push({ type: 'dns', value: ascii(v, 'dNSName', t.start), raw });
        break;
      case ctxPrim(6):
        out.push({ type: 'uri', value: ascii(v, 'URI', t.start), raw });
        break;
      case ctxPrim(7):
        if (v.length !== 4 && v.length !== 16) r.fail(`iPAddress of ${v.length} octets`, t.start);
        out.push({ type: 'ip', bytes: v, raw });
        break;
      case ctxCons(4): {
        // directoryName [4] EXPLICIT Name
        const inner = r.inner(t);
        const n = inner.expect(Tag.SEQUENCE, 'directoryName');
        inner.finish('directoryName');
        out.push({ type: 'dn', der: inner.raw(n), raw });
        break;
      }
      default:
        out.push({ type: 'other', tag: t.tag, raw });
    }
  }
  if (out.length === 0) throw new ParseError('empty GeneralNames', 0);
  return out;
}

function parseExtension(c: Mutable, e: Extension): void {
  const r0 = new DerReader(e.value);
  switch (e.oid) {
    case OID.basicConstraints: {
      const r = r0.enter(Tag.SEQUENCE, 'BasicConstraints');
      r0.finish('basicConstraints');
      const ca = r.peekTag() === Tag.BOOLEAN ? r.boolean('cA') : false;
      const pathLen = r.peekTag() === Tag.INTEGER ? r.smallInt('pathLenConstraint', 255) : undefined;
      r.finish('BasicConstraints');
      c.basicConstraints = pathLen === undefined ? { ca } : { ca, pathLen };
      break;
    }
    case OID.keyUsage: {
      const { bytes, unused } = r0.bitString('KeyUsage');
      r0.finish('keyUsage');
      c.keyUsage = bitsToMask(bytes, unused);
      break;
    }
    case OID.subjectAltName:
      c.subjectAltNames = parseGeneralNames(e.value);
      break;
    case OID.subjectKeyIdentifier:
      c.subjectKeyId = r0.octetString('SubjectKeyIdentifier');
      r0.finish('subjectKeyIdentifier');
      break;
    case OID.authorityKeyIdentifier: {
      const r = r0.enter(Tag.SEQUENCE, 'AuthorityKeyIdentifier');
      r0.finish('authorityKeyIdentifier');
      const k = r.optional(ctxPrim(0), 'keyIdentifier');
      if (k) c.authorityKeyId = r.value(k);
      r.optional(ctxCons(1), 'authorityCertIssuer');
      r.optional(ctxPrim(2), 'authorityCertSerialNumber');
      r.finish('AuthorityKeyIdentifier');
      break;
    }
    case OID.extKeyUsage: {
      const r = r0.enter(Tag.SEQUENCE, 'ExtKeyUsageSyntax');
      r0.finish('extKeyUsage');
      const list: string[] = [];
      while (!r.done) list.push(r.oid('KeyPurposeId'));
      c.extKeyUsage = list;
      break;
    }
  }
}

type Mutable = { -readonly [K in keyof Certificate]: Certificate[K] };

/** Parse one DER certificate. Throws ParseError on malformed input. */
export function parseCertificate(der: Uint8Array): Certificate {
  const top = new DerReader(der);
  const cert = top.enter(Tag.SEQUENCE, 'Certificate');
  top.finish('Certificate');
  const tbsTlv = cert.expect(Tag.SEQUENCE, 'TBSCertificate');
  const outerAlg = cert.expect(Tag.SEQUENCE, 'signatureAlgorithm');
  const signature = cert.bitStringBytes('signatureValue');
  cert.finish('Certificate');

  const r = cert.inner(tbsTlv);
  let version = 1;
  if (r.peekTag() === ctxCons(0)) {
    const v = r.enter(ctxCons(0), 'version');
    version = v.smallInt('version', 2) + 1;
    v.finish('version');
  }
  const serial = r.integerBytes('serialNumber');
  const innerAlg = r.expect(Tag.SEQUENCE, 'signature');
  // RFC 5280 §4.1.1.2: signatureAlgorithm MUST equal TBSCertificate.signature.
  if (!equal(r.raw(innerAlg), cert.raw(outerAlg))) r.fail('signatureAlgorithm differs from TBSCertificate.signature', innerAlg.start);
  const issuer = r.raw(r.expect(Tag.SEQUENCE, 'issuer'));
  const validity = r.enter(Tag.SEQUENCE, 'validity');
  const notBefore = validity.time('notBefore');
  const notAfter = validity.time('notAfter');
  validity.finish('validity');
  const subject = r.raw(r.expect(Tag.SEQUENCE, 'subject'));
  const spkiTlv = r.expect(Tag.SEQUENCE, 'subjectPublicKeyInfo');
  const spki = r.raw(spkiTlv);
  r.optional(ctxPrim(1), 'issuerUniqueID');
  r.optional(ctxPrim(2), 'subjectUniqueID');
  const extensions: Extension[] = [];
  if (r.peekTag() === ctxCons(3)) {
    if (version !== 3) r.fail('extensions in a non-v3 certificate');
    const wrap = r.enter(ctxCons(3), 'extensions');
    const exts = wrap.enter(Tag.SEQUENCE, 'Extensions');
    wrap.finish('extensions');
    if (exts.done) exts.fail('empty Extensions');
    while (!exts.done) {
      const e = exts.enter(Tag.SEQUENCE, 'Extension');
      const oid = e.oid('extnID');
      const critical = e.peekTag() === Tag.BOOLEAN ? e.boolean('critical') : false;
      const value = e.octetString('extnValue');
      e.finish('Extension');
      if (extensions.some((x) => x.oid === oid)) exts.fail(`duplicate extension ${oid}`);
      extensions.push({ oid, critical, value });
    }
  }
  r.finish('TBSCertificate');

  const algDer = cert.raw(outerAlg);
  let sigAlg: SigAlg | null = null;
  let algName: string;
  try {
    sigAlg = parseSigAlg(algDer);
    algName = sigAlgName(sigAlg);
  } catch (e) {
    if (!(e instanceof UnsupportedAlgorithm)) throw e;
    algName = e.oid;
  }
  let publicKey: PublicKey | null = null;
  try {
    publicKey = publicKeyFromSpki(spki);
  } catch (e) {
    if (e instanceof ParseError) throw e;
    publicKey = null; // unsupported key algorithm: usable as nothing
  }

  const c: Mutable = {
    der: Uint8Array.from(der),
    tbs: cert.raw(tbsTlv),
    version,
    serial,
    sigAlg,
    sigAlgName: algName,
    signature,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki,
    publicKey,
    extensions,
    subjectAltNames: [],
    unknownCritical: extensions.filter((e) => e.critical && !UNDERSTOOD.has(e.oid)).map((e) => e.oid),
  };
  for (const e of extensions) {
    try {
      parseExtension(c, e);
    } catch (err) {
      throw new ParseError(`extension ${e.oid}: ${(err as Error).message}`, 0);
    }
  }
  return c;
}

const nodeCache = new WeakMap<Certificate, X509Certificate | null>();

/** node's view of the certificate (null if OpenSSL cannot parse it). */
export function nodeX509(cert: Certificate): X509Certificate | null {
  let x = nodeCache.get(cert);
  if (x === undefined) {
    try {
      x = new X509Certificate(Buffer.from(cert.der));
    } catch {
      x = null;
    }
    nodeCache.set(cert, x);
  }
  return x;
}

/**
 * Is `cert` signed by `issuerKey`? Never throws.
 * Classical issuer keys: node's X509Certificate.verify (OpenSSL), which also
 * re-checks the algorithm/key pairing. ML-DSA-65 issuer keys: pure ML-DSA over
 * the TBSCertificate octets.
 */
export function verifyCertificateSignature(cert: Certificate, issuerKey: PublicKey): boolean {
  if (!cert.sigAlg) return false;
  if (issuerKey.type === 'ml-dsa-65' || cert.sigAlg.kind === 'ml-dsa-65') {
    return verifyData(cert.sigAlg, issuerKey, cert.tbs, cert.signature);
  }
  const x = nodeX509(cert);
  if (!x || !issuerKey.node) return false;
  try {
    return x.verify(issuerKey.node);
  } catch {
    return false;
  }
}

export function isSelfIssued(cert: Certificate): boolean {
  return equal(cert.issuer, cert.subject);
}
