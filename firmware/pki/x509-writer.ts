/**
 * Minimal X.509 v3 certificate writer (RFC 5280 §4.1) for the gateway's own
 * small CA tooling: node:crypto can sign but cannot create certificates.
 *
 * TBSCertificate: version v3, a positive random 16-octet serial (§4.1.2.2:
 * at most 20 octets), signature algorithm (= the outer one, §4.1.1.2), issuer
 * and subject Names (DER, auth/dn.ts), validity in UTCTime until 2049 and
 * GeneralizedTime after (§4.1.2.5), the subject's SubjectPublicKeyInfo, and
 * extensions:
 *   basicConstraints (critical; CA certificates only, with optional pathLen),
 *   keyUsage (critical; CA: keyCertSign|cRLSign, EE: digitalSignature),
 *   subjectAltName (dNSName / rfc822Name / iPAddress; critical when the subject
 *   is empty, §4.2.1.6), subjectKeyIdentifier (SHA-1 of the subjectPublicKey
 *   BIT STRING value, §4.2.1.2 method 1), authorityKeyIdentifier (the issuer's
 *   SKI; omitted on self-signed certificates), extendedKeyUsage (optional).
 * Signed with ECDSA / RSA PKCS#1 v1.5 / RSASSA-PSS / Ed25519 via node:crypto,
 * or ML-DSA-65 (experimental; pure, empty context, RFC 9881 §3) via noble.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ipToBytes, isIPv4, isIPv6 } from '../util/ip.js';
import { DerReader, Tag, bitString, ctxPrim, derBool, derTime, encodeOid, explicit, namedBits, octetString, seq, tlv, uint, uintBytes } from '../auth/der.js';
import { OID, KeyUsage } from '../auth/oids.js';
import { defaultSigAlg, encodeSigAlg, signData, type SigAlg, type Sha } from '../auth/algorithms.js';
import type { PrivateKey, PublicKey } from '../auth/keys.js';

export type SanEntry = { type: 'dns'; value: string } | { type: 'email'; value: string } | { type: 'ip'; value: string };

export interface CertificateTemplate {
  /** DER Name of the subject (auth/dn.ts encodeDn). */
  subject: Uint8Array;
  subjectKey: PublicKey;
  /** DER Name of the issuer; for self-signed certificates equal to `subject`. */
  issuer: Uint8Array;
  issuerKey: PrivateKey;
  /** The issuer's subjectKeyIdentifier, for authorityKeyIdentifier; omitted when undefined. */
  issuerKeyId?: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Serial magnitude (big-endian); default 16 random octets. */
  serial?: Uint8Array;
  ca?: boolean;
  pathLen?: number;
  /** keyUsage mask override (oids.ts KeyUsage); default by `ca`. */
  keyUsage?: number;
  san?: readonly SanEntry[];
  /** extendedKeyUsage OIDs. */
  eku?: readonly string[];
  /** Signature algorithm override (hash / PSS); default from the issuer key type. */
  sigAlg?: SigAlg;
  /** Additional pre-encoded extensions (extnValue contents), appended last. */
  extraExtensions?: readonly { oid: string; critical: boolean; value: Uint8Array }[];
}

/** `--san` value → entry: IP literal → iPAddress, contains '@' → rfc822Name, else dNSName. Prefixes dns:/email:/ip: force a type. */
export function parseSan(s: string): SanEntry {
  const m = /^(dns|fqdn|email|rfc822|ip):(.*)$/i.exec(s);
  if (m) {
    const kind = m[1]!.toLowerCase();
    const v = m[2]!;
    if (kind === 'ip') {
      if (!isIPv4(v) && !isIPv6(v)) throw new TypeError(`--san ip: '${v}' is not an IP address`);
      return { type: 'ip', value: v };
    }
    return kind === 'email' || kind === 'rfc822' ? { type: 'email', value: v } : { type: 'dns', value: v };
  }
  if (isIPv4(s) || isIPv6(s)) return { type: 'ip', value: s };
  if (s.includes('@')) return { type: 'email', value: s };
  return { type: 'dns', value: s };
}

function ia5(s: string, what: string): Uint8Array {
  if (s.length === 0 || !/^[\x21-\x7e]+$/.test(s)) throw new TypeError(`${what}: '${s}' is not a printable ASCII name`);
  return new TextEncoder().encode(s);
}

function encodeSan(list: readonly SanEntry[]): Uint8Array {
  return seq(
    ...list.map((e) => {
      switch (e.type) {
        case 'dns':
          return tlv(ctxPrim(2), ia5(e.value, 'dNSName'));
        case 'email':
          return tlv(ctxPrim(1), ia5(e.value, 'rfc822Name'));
        case 'ip':
          return tlv(ctxPrim(7), ipToBytes(e.value));
      }
    }),
  );
}

/** RFC 5280 §4.2.1.2 (1): SHA-1 over the subjectPublicKey BIT STRING value (without the unused-bits octet). */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const top = new DerReader(spki);
  const r = top.enter(Tag.SEQUENCE, 'SubjectPublicKeyInfo');
  r.expect(Tag.SEQUENCE, 'algorithm');
  const key = r.bitString('subjectPublicKey').bytes;
  return new Uint8Array(createHash('sha1').update(key).digest());
}

function ext(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(encodeOid(oid), derBool(true), octetString(value)) : seq(encodeOid(oid), octetString(value));
}

function isEmptyName(der: Uint8Array): boolean {
  return der.length === 2 && der[0] === Tag.SEQUENCE && der[1] === 0;
}

export function randomSerial(): Uint8Array {
  const s = new Uint8Array(randomBytes(16));
  s[0] = (s[0]! & 0x7f) | 0x01; // positive and exactly 16 octets in DER
  return s;
}

/** Build and sign a certificate; returns its DER. Throws TypeError on bad input. */
export function buildCertificate(t: CertificateTemplate): Uint8Array {
  if (t.notAfter.getTime() <= t.notBefore.getTime()) throw new TypeError('notAfter must be after notBefore');
  if (t.pathLen !== undefined && (!t.ca || !Number.isInteger(t.pathLen) || t.pathLen < 0 || t.pathLen > 255)) throw new TypeError('pathLen needs a CA and 0..255');
  const serial = t.serial ?? randomSerial();
  if (serial.length === 0 || serial.length > 20) throw new TypeError('serial must be 1..20 octets');
  const alg = t.sigAlg ?? defaultSigAlg(t.issuerKey.type);
  const algId = encodeSigAlg(alg);
  const ski = keyIdentifier(t.subjectKey.spki);
  const san = t.san ?? [];
  const exts: Uint8Array[] = [];
  if (t.ca) exts.push(ext(OID.basicConstraints, true, seq(derBool(true), ...(t.pathLen !== undefined ? [uint(t.pathLen)] : []))));
  const ku = t.keyUsage ?? (t.ca ? KeyUsage.keyCertSign | KeyUsage.cRLSign : KeyUsage.digitalSignature);
  exts.push(ext(OID.keyUsage, true, namedBits(ku)));
  if (san.length) exts.push(ext(OID.subjectAltName, isEmptyName(t.subject), encodeSan(san)));
  else if (isEmptyName(t.subject)) throw new TypeError('a certificate with an empty subject needs a subjectAltName');
  exts.push(ext(OID.subjectKeyIdentifier, false, octetString(ski)));
  if (t.issuerKeyId) exts.push(ext(OID.authorityKeyIdentifier, false, seq(tlv(ctxPrim(0), t.issuerKeyId))));
  if (t.eku?.length) exts.push(ext(OID.extKeyUsage, false, seq(...t.eku.map(encodeOid))));
  for (const e of t.extraExtensions ?? []) exts.push(ext(e.oid, e.critical, e.value));

  const tbs = seq(
    explicit(0, uint(2)), // v3
    uintBytes(serial),
    algId,
    t.issuer,
    seq(derTime(t.notBefore), derTime(t.notAfter)),
    t.subject,
    t.subjectKey.spki,
    explicit(3, seq(...exts)),
  );
  const sig = signData(alg, t.issuerKey, tbs);
  return seq(tbs, algId, bitString(sig));
}

export const EKU_BY_FLAG: Record<string, string> = {
  serverAuth: OID.ekuServerAuth,
  clientAuth: OID.ekuClientAuth,
  ikeIntermediate: OID.ekuIkeIntermediate,
};

export type { Sha };
