import { describe, expect, it, afterAll } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import {
  exportPrivateKeyDer,
  exportPrivateKeyPem,
  exportPublicKeyPem,
  generateKey,
  KEY_TYPES,
  KeyError,
  loadPrivateKey,
  loadPublicKey,
  parsePem,
  publicKeyFromSpki,
  toPem,
} from '../../firmware/auth/keys.js';
import { buildAuthData, verifyAuthData, type SignatureScheme } from '../../firmware/auth/signature.js';
import { parseCertificate, verifyCertificateSignature } from '../../firmware/auth/x509.js';
import { loadCertificate, validateChain } from '../../firmware/auth/certs.js';
import { DerReader, Tag, ctxPrim, encodeOid, octetString, seq, tlv, uint } from '../../firmware/auth/der.js';
import { ParseError } from '../../firmware/util/errors.js';
import { bytes, hexOf, readVector, run, tempDir } from './helpers.js';

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i);
const ML_OID = encodeOid('2.16.840.1.101.3.4.3.18');

/**
 * The seed and expandedKey of the LAMPS example, extracted by hand (not with our
 * loader) from its pre-RFC draft encoding:
 * PKCS#8 { 0, { id-ml-dsa-65 }, OCTET STRING { SEQUENCE { [0] seed, 0x24 { OCTET STRING expandedKey } } } }.
 */
function lampsBoth(): { seed: Uint8Array; expanded: Uint8Array; pem: string } {
  const pem = readVector('lamps-ML-DSA-65-both-draft.priv');
  const r = new DerReader(parsePem(pem)[0]!.der).enter(Tag.SEQUENCE, 'pki');
  r.smallInt();
  r.expect(Tag.SEQUENCE, 'alg');
  const both = new DerReader(r.octetString()).enter(Tag.SEQUENCE, 'both');
  const seed = both.value(both.expect(ctxPrim(0), 'seed'));
  const wrapped = both.inner(both.expect(0x24, 'constructed expandedKey'));
  return { seed, expanded: wrapped.octetString(), pem };
}

describe('ML-DSA-65 keys (RFC 9881, LAMPS examples)', () => {
  const { seed, expanded, pem } = lampsBoth();
  const both = (sd: Uint8Array, e: Uint8Array): Uint8Array => seq(uint(0), seq(ML_OID), octetString(seq(octetString(sd), octetString(e))));
  const cert = loadCertificate(readVector('lamps-ML-DSA-65.crt'));

  it('the "both" example holds seed 00..1f and an expandedKey that noble re-derives', () => {
    expect(hexOf(seed)).toBe(hexOf(SEED));
    expect(hexOf(ml_dsa65.keygen(seed).secretKey)).toBe(hexOf(expanded));
  });

  it('loads the RFC 9881 "both" form; its public key is the one in the LAMPS certificate', () => {
    const k = loadPrivateKey(toPem('PRIVATE KEY', both(seed, expanded)));
    expect(k.type).toBe('ml-dsa-65');
    expect(hexOf(k.publicKey.spki)).toBe(hexOf(cert.spki));
    expect(hexOf(k.mlDsa!.seed!)).toBe(hexOf(SEED));
  });

  it('rejects the obsolete draft "both" encoding', () => {
    expect(() => loadPrivateKey(pem)).toThrow(ParseError);
  });

  it('our seed-only PKCS#8 is byte-identical to the LAMPS ML-DSA-65-seed.priv structure and loads back', () => {
    // examples/ML-DSA-65-seed.priv.txt: SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING { [0 PRIMITIVE] seed } }
    const want = seq(uint(0), seq(ML_OID), octetString(tlv(ctxPrim(0), SEED)));
    const k = generateKey('ml-dsa-65', { seed: SEED });
    expect(hexOf(exportPrivateKeyDer(k))).toBe(hexOf(want));
    expect(hexOf(want.subarray(0, 22))).toBe('3034020100300b060960864801650304031204228020');
    const back = loadPrivateKey(toPem('PRIVATE KEY', want));
    expect(hexOf(back.publicKey.spki)).toBe(hexOf(cert.spki));
    expect(hexOf(loadPrivateKey(want).publicKey.spki)).toBe(hexOf(cert.spki)); // DER input
  });

  it('loads the expandedKey-only form (no seed; cannot be re-exported in seed form)', () => {
    const k = loadPrivateKey(seq(uint(0), seq(ML_OID), octetString(octetString(expanded))));
    expect(hexOf(k.publicKey.spki)).toBe(hexOf(cert.spki));
    expect(k.mlDsa!.seed).toBeUndefined();
    expect(() => exportPrivateKeyDer(k)).toThrow(KeyError);
    const auth = buildAuthData('ml-dsa-65', k, Uint8Array.of(1, 2, 3));
    expect(verifyAuthData(cert.publicKey!, Uint8Array.of(1, 2, 3), auth).ok).toBe(true);
  });

  it('rejects inconsistent and malformed ML-DSA private keys', () => {
    const badExpanded = Uint8Array.from(expanded);
    badExpanded[100]! ^= 1;
    expect(() => loadPrivateKey(toPem('PRIVATE KEY', both(seed, badExpanded)))).toThrow(/disagree/);
    expect(() => loadPrivateKey(toPem('PRIVATE KEY', seq(uint(0), seq(ML_OID), octetString(tlv(ctxPrim(0), SEED.subarray(1))))))).toThrow(ParseError);
    expect(() => loadPrivateKey(toPem('PRIVATE KEY', seq(uint(0), seq(ML_OID, Uint8Array.of(5, 0)), octetString(tlv(ctxPrim(0), SEED)))))).toThrow(/absent/);
    expect(() => loadPrivateKey(toPem('PRIVATE KEY', seq(uint(0), seq(ML_OID), octetString(octetString(expanded.subarray(1))))))).toThrow(ParseError);
  });

  it('the LAMPS certificate (signed by an independent ML-DSA implementation) verifies with its own key', () => {
    expect(cert.sigAlg).toEqual({ kind: 'ml-dsa-65' });
    expect(verifyCertificateSignature(cert, cert.publicKey!)).toBe(true);
    const der = Uint8Array.from(cert.der);
    der[der.length - 100]! ^= 1;
    expect(verifyCertificateSignature(parseCertificate(der), cert.publicKey!)).toBe(false);
    // it is a CA without digitalSignature, so it cannot be an end-entity
    expect(cert.basicConstraints).toEqual({ ca: true });
    expect(validateChain(cert, [], [cert], new Date('2030-01-01Z'))).toMatchObject({ ok: false, reason: 'key-usage' });
  });

  it('SPKI: ML-DSA parameters must be absent and the key 1952 octets', () => {
    expect(() => publicKeyFromSpki(seq(seq(ML_OID, Uint8Array.of(5, 0)), tlv(Tag.BIT_STRING, new Uint8Array(1953))))).toThrow(ParseError);
    expect(() => publicKeyFromSpki(seq(seq(ML_OID), tlv(Tag.BIT_STRING, new Uint8Array(100))))).toThrow(KeyError);
  });
});

describe('classical keys generated by OpenSSL', () => {
  const t = tempDir('pqg-keys-');
  afterAll(() => t.cleanup());
  const p = (n: string): string => join(t.dir, n);
  const msg = new TextEncoder().encode('signed octets');

  const cases: { name: string; gen: string[][]; file: string; type: string; scheme: SignatureScheme; verify: (pub: string, sig: string, data: string) => string[] }[] = [
    {
      name: 'SEC1 "EC PRIVATE KEY" P-256',
      gen: [['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('sec1.pem')]],
      file: 'sec1.pem',
      type: 'ecdsa-p256',
      scheme: 'ecdsa-p256-sha256',
      verify: (pub, sig, data) => ['dgst', '-sha256', '-verify', pub, '-signature', sig, data],
    },
    {
      name: 'PKCS#8 P-384',
      gen: [['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', p('p384.pem')]],
      file: 'p384.pem',
      type: 'ecdsa-p384',
      scheme: 'ecdsa-p384-sha384',
      verify: (pub, sig, data) => ['dgst', '-sha384', '-verify', pub, '-signature', sig, data],
    },
    {
      name: 'PKCS#1 "RSA PRIVATE KEY" 2048 (RSASSA-PSS)',
      gen: [['genrsa', '-traditional', '-out', p('rsa.pem'), '2048']],
      file: 'rsa.pem',
      type: 'rsa',
      scheme: 'rsa-pss-sha256',
      verify: (pub, sig, data) => ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sigopt', 'rsa_mgf1_md:sha256', '-verify', pub, '-signature', sig, data],
    },
    {
      name: 'PKCS#8 Ed25519',
      gen: [['genpkey', '-algorithm', 'ed25519', '-out', p('ed.pem')]],
      file: 'ed.pem',
      type: 'ed25519',
      scheme: 'ed25519',
      verify: (pub, sig, data) => ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', data, '-sigfile', sig],
    },
  ];

  for (const c of cases) {
    it(`${c.name}: loads (PEM and DER), signs AUTH data that openssl verifies`, () => {
      for (const g of c.gen) run('openssl', g);
      const k = loadPrivateKey(readFileSync(p(c.file)));
      expect(k.type).toBe(c.type);
      const derKey = loadPrivateKey(new Uint8Array(readFileSyncDer(p(c.file))));
      expect(hexOf(derKey.publicKey.spki)).toBe(hexOf(k.publicKey.spki));
      const auth = buildAuthData(c.scheme, k, msg);
      const sig = auth.subarray(1 + auth[0]!);
      writeFileSync(p('sig'), sig);
      writeFileSync(p('data'), msg);
      writeFileSync(p('pub.pem'), exportPublicKeyPem(k.publicKey));
      expect(run('openssl', c.verify(p('pub.pem'), p('sig'), p('data')))).toMatch(/Verified OK|Signature Verified Successfully/);
      // public key PEM from openssl loads to the same SPKI
      const osslPub = run('openssl', ['pkey', '-in', p(c.file), '-pubout']);
      expect(hexOf(loadPublicKey(osslPub).spki)).toBe(hexOf(k.publicKey.spki));
    });
  }

  function readFileSyncDer(file: string): Buffer {
    const out = p('key.der');
    run('openssl', ['pkey', '-in', file, '-outform', 'DER', '-out', out]);
    return readFileSync(out);
  }

  it('encrypted PKCS#8 needs the passphrase', () => {
    run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-128-cbc', '-pass', 'pass:s3cret', '-out', p('enc.pem')]);
    expect(() => loadPrivateKey(readFileSync(p('enc.pem')))).toThrow(KeyError);
    expect(() => loadPrivateKey(readFileSync(p('enc.pem')), 'wrong')).toThrow(KeyError);
    expect(loadPrivateKey(readFileSync(p('enc.pem')), 's3cret').type).toBe('ecdsa-p256');
  });
});

describe('key export / import round trip', () => {
  for (const type of KEY_TYPES) {
    it(type, () => {
      const k = generateKey(type, type === 'rsa' ? { rsaBits: 2048 } : {});
      const back = loadPrivateKey(exportPrivateKeyPem(k));
      expect(back.type).toBe(type);
      expect(hexOf(back.publicKey.spki)).toBe(hexOf(k.publicKey.spki));
      expect(hexOf(loadPublicKey(exportPublicKeyPem(k.publicKey)).spki)).toBe(hexOf(k.publicKey.spki));
    });
  }

  it('rejects garbage', () => {
    expect(() => loadPrivateKey('-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n')).toThrow(KeyError);
    expect(() => loadPrivateKey('no pem here')).toThrow();
    expect(() => loadPrivateKey(bytes('3003020100'))).toThrow();
    expect(() => loadPrivateKey('-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n')).toThrow(/no private key/);
    expect(() => loadPublicKey('-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n')).toThrow(/PUBLIC KEY/);
  });
});
