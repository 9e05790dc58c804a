import { describe, expect, it, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  caMatchesCertReq,
  certFromPayload,
  certPayloadData,
  certReqHashes,
  identityMatchesCert,
  loadCertificate,
  loadCertificates,
  parseCertReq,
} from '../../firmware/auth/certs.js';
import { encodeDn, formatDn } from '../../firmware/auth/dn.js';
import { toPem } from '../../firmware/auth/keys.js';
import { CertEncoding, IdType } from '../../firmware/ikev2/constants.js';
import { ParseError } from '../../firmware/util/errors.js';
import { tlv, ctxPrim } from '../../firmware/auth/der.js';
import { bytes, hexOf, key, makeCert, readVector, run, runBuf, tempDir } from './helpers.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const ca = makeCert({ dn: 'C=CH, O=pqgate, CN=Root CA', key: key('ecdsa-p256', 0), ca: true });
const gw = makeCert({
  dn: 'C=CH, O=pqgate, CN=gw1.example',
  key: key('ecdsa-p256', 1),
  issuer: { cert: ca, key: key('ecdsa-p256', 0) },
  san: [
    { type: 'dns', value: 'gw1.example' },
    { type: 'dns', value: 'VPN.Example.NET' },
    { type: 'email', value: 'ops@example.net' },
    { type: 'ip', value: '192.0.2.1' },
    { type: 'ip', value: '2001:db8::1' },
  ],
});

describe('identityMatchesCert', () => {
  const table: [string, number, Uint8Array, boolean][] = [
    ['FQDN in SAN', IdType.FQDN, enc('gw1.example'), true],
    ['FQDN case-insensitive', IdType.FQDN, enc('vpn.example.net'), true],
    ['FQDN not in SAN', IdType.FQDN, enc('gw2.example'), false],
    ['FQDN only in the CN does not count', IdType.FQDN, enc('gw1.example.'), false],
    ['FQDN prefix', IdType.FQDN, enc('gw1.exampl'), false],
    ['RFC822 in SAN', IdType.RFC822_ADDR, enc('OPS@example.net'), true],
    ['RFC822 vs dNSName', IdType.RFC822_ADDR, enc('gw1.example'), false],
    ['FQDN vs rfc822Name', IdType.FQDN, enc('ops@example.net'), false],
    ['IPv4 in SAN', IdType.IPV4_ADDR, bytes('c0000201'), true],
    ['IPv4 not in SAN', IdType.IPV4_ADDR, bytes('c0000202'), false],
    ['IPv6 in SAN', IdType.IPV6_ADDR, bytes('20010db8000000000000000000000001'), true],
    ['IPv6 type with IPv4 length', IdType.IPV6_ADDR, bytes('c0000201'), false],
    ['DN equal to the subject (DER bytes)', IdType.DER_ASN1_DN, encodeDn('C=CH, O=pqgate, CN=gw1.example'), true],
    ['DN in another RDN order', IdType.DER_ASN1_DN, encodeDn('CN=gw1.example, O=pqgate, C=CH'), false],
    ['DN of the issuer', IdType.DER_ASN1_DN, encodeDn('C=CH, O=pqgate, CN=Root CA'), false],
    ['DN with UTF8String instead of PrintableString', IdType.DER_ASN1_DN, utf8Variant(), false],
    ['DER_ASN1_GN equal to a SAN entry', IdType.DER_ASN1_GN, tlv(ctxPrim(2), enc('gw1.example')), true],
    ['DER_ASN1_GN of another name', IdType.DER_ASN1_GN, tlv(ctxPrim(2), enc('gw9.example')), false],
    ['KEY_ID never matches', IdType.KEY_ID, enc('gw1.example'), false],
    ['empty FQDN', IdType.FQDN, new Uint8Array(0), false],
  ];
  for (const [name, t, data, want] of table) it(`${name} → ${want}`, () => expect(identityMatchesCert(t, data, gw)).toBe(want));

  function utf8Variant(): Uint8Array {
    // same DN with the CN value re-tagged as UTF8String (0x0c): a byte comparison must not match
    const d = Uint8Array.from(encodeDn('C=CH, O=pqgate, CN=gw1.example'));
    const i = Buffer.from(d).lastIndexOf(Buffer.from([0x13, 11]));
    d[i] = 0x0c;
    return d;
  }
});

describe('DN strings', () => {
  it('encodes like strongSwan: PrintableString when possible, else UTF8String; E as IA5String', () => {
    // X.690 by hand: SEQ { SET { SEQ { OID 2.5.4.6, PrintableString "CH" } }, SET { SEQ { OID 2.5.4.3, PrintableString "gw1" } } }
    expect(hexOf(encodeDn('C=CH, CN=gw1'))).toBe('301b310b3009060355040613024348310c300a06035504031303677731');
    const d = encodeDn('C=CH, O=Zürich AG, CN=a_b, E=ops@example.net');
    const text = run('openssl', ['asn1parse', '-inform', 'DER'], d);
    expect(text).toMatch(/PRINTABLESTRING\s+:CH/);
    expect(text).toMatch(/UTF8STRING\s+:Z/); // 'ü' is not printable
    expect(text).toMatch(/UTF8STRING\s+:a_b/); // '_' is not in PrintableString
    expect(text).toMatch(/IA5STRING\s+:ops@example.net/);
    expect(formatDn(d)).toBe('C=CH, O=Zürich AG, CN=a_b, E=ops@example.net');
  });
  it('round-trips escapes and dotted OIDs', () => {
    expect(formatDn(encodeDn('CN=a\\, b, 2.5.4.5=123'))).toBe('CN=a\\, b, serialNumber=123');
  });
  it('rejects malformed DN strings', () => {
    for (const s of ['', 'CN', 'XX=1', 'CN=', 'C=CHE', 'CN=a,,O=b']) expect(() => encodeDn(s), s).toThrow(ParseError);
  });
  it('matches the byte layout openssl shows for the LAMPS certificate subject', () => {
    const lamps = loadCertificate(readVector('lamps-ML-DSA-65.crt'));
    expect(hexOf(encodeDn('O=IETF, CN=LAMPS WG'))).toBe(hexOf(lamps.subject));
    expect(formatDn(lamps.subject)).toBe('O=IETF, CN=LAMPS WG');
  });
});

describe('CERT and CERTREQ payload data', () => {
  const t = tempDir('pqg-certreq-');
  afterAll(() => t.cleanup());

  it('CERTREQ hash = SHA-1 of the SPKI, as openssl computes it', () => {
    const lamps = loadCertificate(readVector('lamps-ML-DSA-65.crt'));
    for (const c of [ca, gw]) {
      const f = join(t.dir, 'c.pem');
      writeFileSync(f, toPem('CERTIFICATE', c.der));
      const pub = runBuf('openssl', ['x509', '-in', f, '-pubkey', '-noout']);
      const spkiDer = runBuf('openssl', ['pkey', '-pubin', '-outform', 'DER'], pub);
      const sha1 = run('sha1sum', [], spkiDer).split(' ')[0];
      expect(hexOf(certReqHashes([c]))).toBe(sha1);
    }
    // openssl 3.0 cannot decode an ML-DSA key; hash the SPKI element it prints with asn1parse instead
    const f = join(t.dir, 'l.pem');
    writeFileSync(f, toPem('CERTIFICATE', lamps.der));
    const spki = runBuf('openssl', ['asn1parse', '-in', f, '-strparse', '4', '-noout', '-out', '-'])
      .subarray(148, 148 + 4 + 1970);
    expect(hexOf(certReqHashes([lamps]))).toBe(createHash('sha1').update(spki).digest('hex'));
  });

  it('concatenates the hashes of several CAs and matches each', () => {
    const other = makeCert({ dn: 'CN=Other', key: key('ed25519'), ca: true });
    const data = certReqHashes([ca, other]);
    expect(data.length).toBe(40);
    expect(parseCertReq(data).map(hexOf)).toEqual([hexOf(certReqHashes([ca])), hexOf(certReqHashes([other]))]);
    expect(caMatchesCertReq(ca, data)).toBe(true);
    expect(caMatchesCertReq(other, data)).toBe(true);
    expect(caMatchesCertReq(gw, data)).toBe(false);
    expect(caMatchesCertReq(ca, data.subarray(1))).toBe(false);
    expect(() => parseCertReq(data.subarray(1))).toThrow(ParseError);
    expect(certReqHashes([]).length).toBe(0);
  });

  it('CERT encoding 4 carries the DER certificate', () => {
    expect(hexOf(certPayloadData(gw))).toBe(hexOf(gw.der));
    expect(hexOf(certFromPayload(CertEncoding.X509_SIGNATURE, gw.der).subject)).toBe(hexOf(gw.subject));
    expect(() => certFromPayload(CertEncoding.CRL, gw.der)).toThrow(ParseError);
    expect(() => certFromPayload(CertEncoding.X509_SIGNATURE, gw.der.subarray(0, 100))).toThrow(ParseError);
  });

  it('loads PEM bundles and DER', () => {
    const bundle = toPem('CERTIFICATE', ca.der) + 'junk\n' + toPem('CERTIFICATE', gw.der);
    expect(loadCertificates(bundle).length).toBe(2);
    expect(loadCertificates(gw.der).length).toBe(1);
    expect(() => loadCertificate(bundle)).toThrow(/expected one/);
    expect(() => loadCertificates('nothing')).toThrow(ParseError);
  });
});
