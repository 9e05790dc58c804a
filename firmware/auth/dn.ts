/**
 * X.501 Distinguished Names (RFC 5280 §4.1.2.4) from and to a strongSwan-like
 * string form "C=CH, O=pqgate, CN=gw1".
 *
 * Encoding follows strongSwan's identification.c (atodn): one
 * AttributeTypeAndValue per RDN, RDNs in the order written; attributes whose
 * natural type is PrintableString use it when every character is in the
 * PrintableString set (X.680 §41.4) and UTF8String otherwise; E/email and DC
 * are IA5String. Producing the same octets as strongSwan matters because IKE
 * DER_ASN1_DN identities and issuer/subject chaining are compared as bytes.
 */
import { ParseError } from '../util/errors.js';
import { DerReader, Tag, encodeOid, seq, setOf, tlv } from './der.js';

interface Attr {
  names: string[];
  oid: string;
  type: number; // natural string type
}

const ATTRS: Attr[] = [
  { names: ['CN', 'commonName'], oid: '2.5.4.3', type: Tag.PRINTABLE_STRING },
  { names: ['SN', 'surname'], oid: '2.5.4.4', type: Tag.PRINTABLE_STRING },
  { names: ['serialNumber'], oid: '2.5.4.5', type: Tag.PRINTABLE_STRING },
  { names: ['C', 'countryName'], oid: '2.5.4.6', type: Tag.PRINTABLE_STRING },
  { names: ['L', 'localityName'], oid: '2.5.4.7', type: Tag.PRINTABLE_STRING },
  { names: ['ST', 'S', 'stateOrProvinceName'], oid: '2.5.4.8', type: Tag.PRINTABLE_STRING },
  { names: ['street'], oid: '2.5.4.9', type: Tag.PRINTABLE_STRING },
  { names: ['O', 'organizationName'], oid: '2.5.4.10', type: Tag.PRINTABLE_STRING },
  { names: ['OU', 'organizationalUnitName'], oid: '2.5.4.11', type: Tag.PRINTABLE_STRING },
  { names: ['T', 'title'], oid: '2.5.4.12', type: Tag.PRINTABLE_STRING },
  { names: ['D', 'description'], oid: '2.5.4.13', type: Tag.PRINTABLE_STRING },
  { names: ['N', 'name'], oid: '2.5.4.41', type: Tag.PRINTABLE_STRING },
  { names: ['G', 'givenName'], oid: '2.5.4.42', type: Tag.PRINTABLE_STRING },
  { names: ['I', 'initials'], oid: '2.5.4.43', type: Tag.PRINTABLE_STRING },
  { names: ['dnQualifier'], oid: '2.5.4.46', type: Tag.PRINTABLE_STRING },
  { names: ['pseudonym'], oid: '2.5.4.65', type: Tag.UTF8_STRING },
  { names: ['UID', 'userId'], oid: '0.9.2342.19200300.100.1.1', type: Tag.UTF8_STRING },
  { names: ['DC', 'domainComponent'], oid: '0.9.2342.19200300.100.1.25', type: Tag.IA5_STRING },
  { names: ['E', 'Email', 'emailAddress'], oid: '1.2.840.113549.1.9.1', type: Tag.IA5_STRING },
];

const BY_NAME = new Map<string, Attr>();
for (const a of ATTRS) for (const n of a.names) BY_NAME.set(n.toLowerCase(), a);
const BY_OID = new Map<string, Attr>(ATTRS.map((a) => [a.oid, a]));

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Split "K=V, K=V" honouring backslash escapes ("\," "\\" "\="). */
function splitRdns(s: string): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  let cur = '';
  let key: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
    } else if (c === '=' && key === undefined) {
      key = cur.trim();
      cur = '';
    } else if (c === ',') {
      if (key === undefined) throw new ParseError(`DN: RDN without '=' near '${cur.trim()}'`, i);
      out.push({ key, value: cur.trim() });
      key = undefined;
      cur = '';
    } else {
      cur += c;
    }
  }
  if (key === undefined) {
    if (cur.trim() !== '' || out.length === 0) throw new ParseError(`DN: RDN without '=' near '${cur.trim()}'`, s.length);
  } else {
    out.push({ key, value: cur.trim() });
  }
  return out;
}

/** DER Name from "C=CH, O=pqgate, CN=gw1". Unknown keys may be dotted OIDs. Throws ParseError. */
export function encodeDn(s: string): Uint8Array {
  const rdns = splitRdns(s).map(({ key, value }, i) => {
    let attr = BY_NAME.get(key.toLowerCase());
    if (!attr && /^\d+(\.\d+)+$/.test(key)) attr = { names: [key], oid: key, type: Tag.UTF8_STRING };
    if (!attr) throw new ParseError(`DN: unknown attribute '${key}'`, i);
    if (value === '') throw new ParseError(`DN: empty value for '${key}'`, i);
    const bytes = new TextEncoder().encode(value);
    let type = attr.type;
    if (type === Tag.PRINTABLE_STRING && !PRINTABLE.test(value)) type = Tag.UTF8_STRING;
    if (type === Tag.IA5_STRING && bytes.some((b) => b > 0x7f)) throw new ParseError(`DN: non-ASCII value for ${key}`, i);
    if (attr.oid === '2.5.4.6' && value.length !== 2) throw new ParseError('DN: C must be a two-letter country code', i);
    return setOf(seq(encodeOid(attr.oid), tlv(type, bytes)));
  });
  return seq(...rdns);
}

function escapeValue(v: string): string {
  return v.replace(/[\\,=]/g, (c) => `\\${c}`);
}

function decodeString(tag: number, v: Uint8Array): string {
  switch (tag) {
    case Tag.UTF8_STRING:
      return new TextDecoder('utf-8', { fatal: false }).decode(v);
    case Tag.BMP_STRING: {
      let s = '';
      for (let i = 0; i + 1 < v.length; i += 2) s += String.fromCharCode((v[i]! << 8) | v[i + 1]!);
      return s;
    }
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.T61_STRING:
    case Tag.VISIBLE_STRING: {
      let s = '';
      for (const c of v) s += String.fromCharCode(c);
      return s;
    }
    default:
      return `#${Buffer.from(v).toString('hex')}`;
  }
}

/** Human-readable form of a DER Name, for logs and `pki print`. Throws ParseError on malformed DER. */
export function formatDn(der: Uint8Array): string {
  const top = new DerReader(der);
  const name = top.enter(Tag.SEQUENCE, 'Name');
  top.finish('Name');
  const parts: string[] = [];
  while (!name.done) {
    const set = name.enter(Tag.SET, 'RDN');
    while (!set.done) {
      const atv = set.enter(Tag.SEQUENCE, 'AttributeTypeAndValue');
      const oid = atv.oid('type');
      const t = atv.next('value');
      atv.finish('AttributeTypeAndValue');
      const key = BY_OID.get(oid)?.names[0] ?? oid;
      parts.push(`${key}=${escapeValue(decodeString(t.tag, atv.value(t)))}`);
    }
  }
  return parts.join(', ');
}

/** Well-formedness check of a DER Name (RDNSequence). */
export function isValidDn(der: Uint8Array): boolean {
  try {
    formatDn(der);
    return true;
  } catch {
    return false;
  }
}
