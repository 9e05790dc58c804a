/**
 * IKE identities (RFC 7296 §3.5) in strongSwan notation.
 *
 * The ID payload body is ID Type (1) | RESERVED (3) | Identification Data;
 * the data is the raw address (IPV4_ADDR 4 octets, IPV6_ADDR 16), an ASCII
 * string (FQDN, RFC822_ADDR: "no terminators", §3.5), or opaque octets
 * (KEY_ID, DER_ASN1_DN).
 *
 * Parsing mirrors strongSwan's identification_create_from_string()
 * (src/libstrongswan/utils/identification.c):
 *   %any, *, 0.0.0.0, ::, ""      → undefined (any identity)
 *   ipv4:/ipv6:/fqdn:/dns:/rfc822:/email:/userfqdn:/keyid:/asn1dn:/asn1gn:
 *                                 → that type; "prefix:#hex" gives raw octets
 *   {N}:value / {N}:#hex          → numeric type N
 *   IPv4/IPv6 literal             → IPV4_ADDR / IPV6_ADDR
 *   @name                         → FQDN (no further interpretation)
 *   @@user@host                   → RFC822_ADDR
 *   @#hex                         → KEY_ID
 *   user@host                     → RFC822_ADDR
 *   contains '='                  → DER_ASN1_DN: rejected, we cannot encode DNs (PSK-only build)
 *   other text with ':'           → KEY_ID (strongSwan's fallback)
 *   other text                    → FQDN
 *
 * Matching follows strongSwan's matches_string(): FQDN and RFC822 compare
 * case-insensitively, and a configured value starting with '*' matches any
 * received value with the same suffix ("*.example.net", "*@example.net").
 */
import type { Identity } from '../../config/types.js';
import { IdType } from '../constants.js';
import { ConfigError } from '../../util/errors.js';
import { bytesToIp, ipToBytes, isIPv4, isIPv6 } from '../../util/ip.js';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

const PREFIXES: [string, number][] = [
  ['ipv4:', IdType.IPV4_ADDR],
  ['ipv6:', IdType.IPV6_ADDR],
  ['rfc822:', IdType.RFC822_ADDR],
  ['email:', IdType.RFC822_ADDR],
  ['userfqdn:', IdType.RFC822_ADDR],
  ['fqdn:', IdType.FQDN],
  ['dns:', IdType.FQDN],
  ['asn1dn:', IdType.DER_ASN1_DN],
  ['asn1gn:', IdType.DER_ASN1_GN],
  ['keyid:', IdType.KEY_ID],
];

const ANY = new Set(['', '%any', '%any6', '*', '0.0.0.0', '::', '0::0']);

function hexBytes(hex: string, fail: (m: string) => never): Uint8Array {
  const h = hex.replace(/[\s:]/g, '');
  if (h.length === 0 || h.length % 2 !== 0 || /[^0-9a-fA-F]/.test(h)) return fail(`invalid hex '${hex}'`);
  return new Uint8Array(Buffer.from(h, 'hex'));
}

function make(idType: number, data: Uint8Array): Identity {
  return { idType, data, text: formatIdentity(idType, data) };
}

/**
 * Parse an identity. Returns undefined for "%any" (accept any peer
 * identity). Throws ConfigError for DNs in text form, bad hex, or an
 * address prefix with a non-address value.
 */
export function parseIdentity(text: string, path = 'id'): Identity | undefined {
  const s = text.trim();
  const fail = (msg: string): never => {
    throw new ConfigError(path, `${msg} in identity '${text}'`);
  };
  const lower = s.toLowerCase();
  for (const [prefix, type] of PREFIXES) {
    if (!lower.startsWith(prefix)) continue;
    const v = s.slice(prefix.length);
    if (v.startsWith('#')) return checked(type, hexBytes(v.slice(1), fail), fail);
    if (type === IdType.IPV4_ADDR || type === IdType.IPV6_ADDR) {
      if (!(type === IdType.IPV4_ADDR ? isIPv4(v) : isIPv6(v))) fail(`'${v}' is not an ${type === IdType.IPV4_ADDR ? 'IPv4' : 'IPv6'} address`);
      return make(type, ipToBytes(v));
    }
    if (type === IdType.DER_ASN1_DN || type === IdType.DER_ASN1_GN) fail('ASN.1 identities are only accepted as hex (asn1dn:#...)');
    if (v === '') fail('empty value');
    return make(type, enc.encode(v));
  }
  const num = /^\{(\d+)\}:(.*)$/.exec(s);
  if (num) {
    const type = Number(num[1]);
    if (type < 1 || type > 255) fail(`ID type ${type} out of range`);
    const v = num[2]!;
    return checked(type, v.startsWith('#') ? hexBytes(v.slice(1), fail) : enc.encode(v), fail);
  }
  if (s.includes('=')) {
    return fail('distinguished names (DER_ASN1_DN) cannot be encoded by this build; use asn1dn:#<hex> or another ID type');
  }
  if (!s.includes('@')) {
    if (ANY.has(s)) return undefined;
    if (isIPv4(s)) return make(IdType.IPV4_ADDR, ipToBytes(s));
    if (isIPv6(s)) return make(IdType.IPV6_ADDR, ipToBytes(s));
    if (s.includes(':')) return make(IdType.KEY_ID, enc.encode(s));
    return make(IdType.FQDN, enc.encode(s));
  }
  if (s.startsWith('@#')) return make(IdType.KEY_ID, hexBytes(s.slice(2), fail));
  if (s.startsWith('@@')) {
    if (s.length === 2) fail('empty value');
    return make(IdType.RFC822_ADDR, enc.encode(s.slice(2)));
  }
  if (s.startsWith('@')) {
    if (s.length === 1) fail('empty value');
    return make(IdType.FQDN, enc.encode(s.slice(1)));
  }
  return make(IdType.RFC822_ADDR, enc.encode(s));
}

/** Hex/numeric forms can produce any octets: make sure address types have address lengths. */
function checked(type: number, data: Uint8Array, fail: (m: string) => never): Identity {
  if (type === IdType.IPV4_ADDR && data.length !== 4) fail('IPV4_ADDR needs 4 octets');
  if (type === IdType.IPV6_ADDR && data.length !== 16) fail('IPV6_ADDR needs 16 octets');
  return make(type, data);
}

function printable(data: Uint8Array): string | undefined {
  let s: string;
  try {
    s = dec.decode(data);
  } catch {
    return undefined;
  }
  // No control characters, no leading/trailing space (they would not survive trim()).
  if (s.length === 0 || /[\x00-\x1f\x7f]/.test(s) || s.trim() !== s) return undefined;
  return s;
}

function hex(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

/**
 * Human-readable, re-parseable text for an identity: parseIdentity(formatIdentity(t, d))
 * yields the same type and data. Plain forms are used where unambiguous.
 */
export function formatIdentity(idType: number, data: Uint8Array): string {
  if (data.length === 0) return `{${idType}}:`;
  const s = printable(data);
  switch (idType) {
    case IdType.IPV4_ADDR:
      if (data.length === 4) return bytesToIp(data);
      break;
    case IdType.IPV6_ADDR:
      if (data.length === 16) return bytesToIp(data);
      break;
    case IdType.FQDN:
      if (s !== undefined) {
        // Plain only if it parses back as an FQDN.
        const plain = !s.includes('@') && !s.includes('=') && !s.includes(':') && !ANY.has(s) && !isIPv4(s) && !hasPrefix(s) && !s.startsWith('{');
        if (plain) return s;
        if (!s.startsWith('#')) return `fqdn:${s}`;
      }
      return `fqdn:#${hex(data)}`;
    case IdType.RFC822_ADDR:
      if (s !== undefined) {
        const plain = s.includes('@') && !s.startsWith('@') && !s.includes('=') && !hasPrefix(s) && !s.startsWith('{');
        if (plain) return s;
        if (!s.startsWith('#')) return `email:${s}`;
      }
      return `email:#${hex(data)}`;
    case IdType.KEY_ID:
      return s !== undefined && !s.startsWith('#') ? `keyid:${s}` : `keyid:#${hex(data)}`;
    case IdType.DER_ASN1_DN:
      return `asn1dn:#${hex(data)}`;
    case IdType.DER_ASN1_GN:
      return `asn1gn:#${hex(data)}`;
  }
  return `{${idType}}:#${hex(data)}`;
}

function hasPrefix(s: string): boolean {
  const l = s.toLowerCase();
  return PREFIXES.some(([p]) => l.startsWith(p));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Does a received ID (type + data from IDi/IDr) satisfy the configured one?
 * undefined (%any) accepts everything. Types must be equal; FQDN/RFC822
 * compare case-insensitively with leading-'*' suffix wildcards; everything
 * else compares octet for octet.
 */
export function identityMatches(configured: Identity | undefined, received: { idType: number; data: Uint8Array }): boolean {
  if (configured === undefined) return true;
  if (configured.idType !== received.idType) return false;
  if (configured.idType === IdType.FQDN || configured.idType === IdType.RFC822_ADDR) {
    const want = printable(configured.data);
    const got = printable(received.data);
    if (want !== undefined && got !== undefined) {
      const w = want.toLowerCase();
      const g = got.toLowerCase();
      if (w.startsWith('*')) return g.endsWith(w.slice(1));
      return w === g;
    }
  }
  return equalBytes(configured.data, received.data);
}
