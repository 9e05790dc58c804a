import { describe, expect, it, afterAll } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { parseCertificate } from '../../firmware/auth/x509.js';
import { loadCertificate, validateChain } from '../../firmware/auth/certs.js';
import { KeyUsage, OID } from '../../firmware/auth/oids.js';
import { DerReader, Tag, derTime, namedBits, bitsToMask, encodeOid, decodeOid } from '../../firmware/auth/der.js';
import { ParseError } from '../../firmware/util/errors.js';
import { NOW, bytes, hexOf, key, makeCert, readVector, run, tempDir } from './helpers.js';

describe('parsing the LAMPS ML-DSA-65 example certificate', () => {
  const c = loadCertificate(readVector('lamps-ML-DSA-65.crt'));
  it('has the fields its pretty-printed form (ML-DSA-65.crt.txt) lists', () => {
    expect(c.version).toBe(3);
    expect(hexOf(c.serial)).toBe('159ffe6f22fd5cc42c524df6fd5e28d0de38f34e');
    expect(c.notBefore.toISOString()).toBe('2020-02-03T04:32:10.000Z');
    expect(c.notAfter.toISOString()).toBe('2040-01-29T04:32:10.000Z');
    expect(c.keyUsage).toBe(KeyUsage.keyCertSign | KeyUsage.cRLSign);
    expect(c.basicConstraints).toEqual({ ca: true });
    expect(hexOf(c.subjectKeyId!)).toBe('1b0563e3cd3346149c8c9ebcf23b0a4e5a900eea');
    expect(c.publicKey!.type).toBe('ml-dsa-65');
    expect(c.signature.length).toBe(3309);
    expect(c.unknownCritical).toEqual([]);
  });
});

describe('parsing OpenSSL-generated certificates', () => {
  const t = tempDir('pqg-x509-');
  afterAll(() => t.cleanup());
  it('SAN kinds, unknown critical extension, EKU; fields agree with node/openssl', () => {
    const crt = join(t.dir, 'c.pem');
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(t.dir, 'k.pem'), '-subj', '/C=CH/O=Test Org/CN=host',
      '-days', '30', '-addext', 'subjectAltName=DNS:a.example,IP:2001:db8::1,email:x@example.org,URI:https://u.example/,RID:1.2.3.4',
      '-addext', 'nameConstraints=critical,permitted;DNS:.example', '-addext', 'extendedKeyUsage=serverAuth,1.3.6.1.5.5.8.2.2', '-out', crt]);
    const c = loadCertificate(readFileSync(crt));
    const x = new X509Certificate(readFileSync(crt));
    expect(c.notBefore.getTime()).toBe(new Date(x.validFrom).getTime());
    expect(c.notAfter.getTime()).toBe(new Date(x.validTo).getTime());
    expect(hexOf(c.serial).toUpperCase().replace(/^0+/, '')).toBe(x.serialNumber.replace(/^0+/, ''));
    expect(c.subjectAltNames.map((n) => n.type)).toEqual(['dns', 'ip', 'email', 'uri', 'other']);
    expect(c.subjectAltNames[1]).toMatchObject({ type: 'ip', bytes: bytes('20010db8000000000000000000000001') });
    expect(c.unknownCritical).toEqual([OID.nameConstraints]);
    expect(c.extKeyUsage).toEqual([OID.ekuServerAuth, OID.ekuIkeIntermediate]);
    expect(c.basicConstraints?.ca).toBe(true); // openssl req -x509 marks it as a CA
    expect(c.sigAlg).toEqual({ kind: 'ecdsa', hash: 'sha256' });
    // self-signed, but the critical nameConstraints make it unusable here
    expect(validateChain(c, [], [c], new Date())).toMatchObject({ ok: false, reason: 'unknown-critical-extension' });
  });
});

describe('DER helpers', () => {
  it('OIDs round-trip, including large arcs', () => {
    for (const o of ['2.16.840.1.101.3.4.3.18', '1.2.840.113549.1.1.10', '2.999.3', '0.9.2342.19200300.100.1.25']) {
      const e = encodeOid(o);
      expect(decodeOid(e.subarray(2))).toBe(o);
    }
    expect(hexOf(encodeOid('2.16.840.1.101.3.4.3.18'))).toBe('0609608648016503040312');
  });
  it('named bit strings drop trailing zero bits (X.690 §11.2.2)', () => {
    expect(hexOf(namedBits(KeyUsage.digitalSignature))).toBe('03020780');
    expect(hexOf(namedBits(KeyUsage.keyCertSign | KeyUsage.cRLSign))).toBe('03020106');
    expect(hexOf(namedBits(KeyUsage.decipherOnly))).toBe('0303070080');
    expect(bitsToMask(bytes('0080'), 7)).toBe(KeyUsage.decipherOnly);
  });
  it('times: UTCTime until 2049, GeneralizedTime from 2050', () => {
    expect(Buffer.from(derTime(new Date('2049-12-31T23:59:59Z'))).toString('latin1').slice(2)).toBe('491231235959Z');
    expect(Buffer.from(derTime(new Date('2050-01-01T00:00:00Z'))).toString('latin1').slice(2)).toBe('20500101000000Z');
    const r = new DerReader(bytes('170d3530303130313030303030305a')); // UTCTime 500101000000Z = 1950
    expect(r.time().toISOString()).toBe('1950-01-01T00:00:00.000Z');
  });
  it('strict DER: non-minimal lengths, indefinite lengths, bad times and booleans are ParseErrors', () => {
    const bad = ['3081020500', '30800000', '0500ff', '0201', '02020001', '170d3530313333303030303030305a', '0101', '010105', '0302077f', '030101'];
    for (const h of bad) {
      expect(() => {
        const r = new DerReader(bytes(h));
        const tag = r.peekTag();
        if (tag === Tag.INTEGER) r.integerBytes();
        else if (tag === Tag.UTC_TIME) r.time();
        else if (tag === Tag.BOOLEAN) r.boolean();
        else if (tag === Tag.BIT_STRING) r.bitString();
        else r.next();
        r.finish('x');
      }, h).toThrow(ParseError);
    }
  });
});

describe('robustness', () => {
  const good = [
    makeCert({ dn: 'CN=a', key: key('ecdsa-p256'), san: [{ type: 'dns', value: 'a.example' }] }).der,
    makeCert({ dn: 'CN=b', key: key('ed25519'), ca: true, pathLen: 2 }).der,
    loadCertificate(readVector('lamps-ML-DSA-65.crt')).der.subarray(0, 2300), // truncated on purpose
  ];
  it('parseCertificate on random / mutated input only ever throws ParseError; validateChain never throws', () => {
    const anchor = makeCert({ dn: 'CN=anchor', key: key('ecdsa-p256', 3), ca: true });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.tuple(fc.nat(good.length - 1), fc.array(fc.tuple(fc.nat(3000), fc.nat(255)), { maxLength: 4 }), fc.nat(3000)).map(([i, muts, cut]) => {
            const b = Uint8Array.from(good[i]!);
            for (const [pos, v] of muts) b[pos % b.length] = v;
            return cut % 5 === 0 ? b.subarray(0, cut % b.length) : b;
          }),
        ),
        (der) => {
          let c;
          try {
            c = parseCertificate(der);
          } catch (e) {
            expect(e).toBeInstanceOf(ParseError);
            return;
          }
          const r = validateChain(c, [], [anchor], NOW);
          expect(typeof r.ok).toBe('boolean');
        },
      ),
      { numRuns: 500 },
    );
  });
});
