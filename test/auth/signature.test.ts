import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createPublicKey } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import {
  algorithmIdentifier,
  buildAuthData,
  buildLegacyEcdsaAuth,
  chooseScheme,
  decodeHashAlgorithms,
  encodeHashAlgorithms,
  HashAlgorithm,
  parseAuthData,
  schemeHash,
  schemeKeyType,
  SUPPORTED_HASHES,
  verifyAuth,
  verifyAuthData,
  verifyLegacyEcdsaAuth,
  type SignatureScheme,
} from '../../firmware/auth/signature.js';
import { generateKey, publicKeyFromNode, type KeyType } from '../../firmware/auth/keys.js';
import { ParseError } from '../../firmware/util/errors.js';
import { AuthMethod } from '../../firmware/ikev2/constants.js';
import { bytes, hexOf, key, readVector, run, runBuf, tempDir } from './helpers.js';
import { join } from 'node:path';

const V = JSON.parse(readVector('rfc7427-algorithm-identifiers.json')) as { blobs: Record<string, string>; schemes: Record<string, string> };

const octets = new TextEncoder().encode('RealMessage1 | NonceRData | prf(SK_pi, IDi) | IntAuth');

const ALL: SignatureScheme[] = [
  'ecdsa-p256-sha256',
  'ecdsa-p384-sha384',
  'ecdsa-p521-sha512',
  'rsa-pss-sha256',
  'rsa-pss-sha384',
  'rsa-pss-sha512',
  'ed25519',
  'ml-dsa-65',
  'rsa-pkcs1-sha256',
  'ecdsa-p256-sha512',
];

/** Split AUTH data without our parser: length octet, AlgorithmIdentifier, signature. */
function split(auth: Uint8Array): { algId: Uint8Array; sig: Uint8Array } {
  return { algId: auth.subarray(1, 1 + auth[0]!), sig: auth.subarray(1 + auth[0]!) };
}

describe('RFC 7427 AlgorithmIdentifier blobs', () => {
  for (const [scheme, name] of Object.entries(V.schemes)) {
    it(`${scheme} → ${name} is byte-exact`, () => {
      expect(hexOf(algorithmIdentifier(scheme as SignatureScheme))).toBe(V.blobs[name]);
    });
  }

  it('ML-DSA-65 blob is the 13-octet one of draft-ietf-ipsecme-ikev2-pqc-auth', () => {
    expect(algorithmIdentifier('ml-dsa-65').length).toBe(13);
  });

  it('RSA-PSS blobs equal the AlgorithmIdentifier OpenSSL writes into an RSASSA-PSS certificate', () => {
    const t = tempDir('pqg-pss-');
    try {
      for (const [h, salt] of [
        ['sha256', 32],
        ['sha384', 48],
        ['sha512', 64],
      ] as const) {
        const out = join(t.dir, `${h}.der`);
        run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(t.dir, 'k.pem'), '-subj', '/CN=x', `-${h}`,
          '-sigopt', 'rsa_padding_mode:pss', '-sigopt', `rsa_pss_saltlen:${salt}`, '-sigopt', `rsa_mgf1_md:${h}`, '-days', '1', '-outform', 'DER', '-out', out]);
        // The outer signatureAlgorithm: the element after the TBSCertificate (both have 2-octet long-form lengths here).
        const der = runBuf('cat', [out]);
        const tbsEnd = 8 + ((der[6]! << 8) | der[7]!);
        const algId = der.subarray(tbsEnd, tbsEnd + 2 + der[tbsEnd + 1]!);
        expect(hexOf(algId)).toBe(hexOf(algorithmIdentifier(`rsa-pss-${h}`)));
      }
    } finally {
      t.cleanup();
    }
  });
});

describe('buildAuthData / verifyAuthData round trips', () => {
  for (const scheme of ALL) {
    it(scheme, () => {
      const k = key(schemeKeyType(scheme));
      const auth = buildAuthData(scheme, k, octets);
      const { algId, sig } = split(auth);
      expect(hexOf(algId)).toBe(hexOf(algorithmIdentifier(scheme)));
      expect(sig.length).toBeGreaterThan(0);
      const r = verifyAuthData(k.publicKey, octets, auth);
      expect(r).toEqual({ ok: true, scheme, hash: schemeHash(scheme) });
      expect(verifyAuth(AuthMethod.DIGITAL_SIGNATURE, k.publicKey, octets, auth).ok).toBe(true);
    });
  }

  it('ECDSA signatures are DER SEQUENCE{r,s} (method 14), ML-DSA-65 signatures are 3309 octets', () => {
    const { sig } = split(buildAuthData('ecdsa-p256-sha256', key('ecdsa-p256'), octets));
    expect(sig[0]).toBe(0x30);
    expect(sig[1]).toBe(sig.length - 2);
    expect(split(buildAuthData('ml-dsa-65', key('ml-dsa-65'), octets)).sig.length).toBe(3309);
  });

  it('ML-DSA-65 signing is hedged (two signatures of the same octets differ, both verify)', () => {
    const k = key('ml-dsa-65');
    const a = buildAuthData('ml-dsa-65', k, octets);
    const b = buildAuthData('ml-dsa-65', k, octets);
    expect(hexOf(a)).not.toBe(hexOf(b));
    expect(verifyAuthData(k.publicKey, octets, b).ok).toBe(true);
  });

  it('refuses to build with a key that does not fit the scheme', () => {
    expect(() => buildAuthData('ecdsa-p384-sha384', key('ecdsa-p256'), octets)).toThrow(TypeError);
    expect(() => buildAuthData('ml-dsa-65', key('ed25519'), octets)).toThrow(TypeError);
  });
});

describe('cross-verification with independent implementations', () => {
  const curves = { 'ecdsa-p256': p256, 'ecdsa-p384': p384, 'ecdsa-p521': p521 } as const;
  const rawEcPub = (t: KeyType): Uint8Array => {
    const jwk = key(t).publicKey.node!.export({ format: 'jwk' });
    return new Uint8Array([4, ...Buffer.from(jwk.x!, 'base64url'), ...Buffer.from(jwk.y!, 'base64url')]);
  };
  for (const [t, scheme] of [
    ['ecdsa-p256', 'ecdsa-p256-sha256'],
    ['ecdsa-p384', 'ecdsa-p384-sha384'],
    ['ecdsa-p521', 'ecdsa-p521-sha512'],
  ] as const) {
    it(`${scheme}: ours verifies with @noble/curves, noble's verifies with ours`, () => {
      const curve = curves[t];
      const { sig } = split(buildAuthData(scheme, key(t), octets));
      expect(curve.verify(sig, octets, rawEcPub(t), { format: 'der', lowS: false })).toBe(true);
      // noble signer, our verifier
      const sk = curve.utils.randomSecretKey();
      const nsig = curve.sign(octets, sk, { format: 'der' });
      const pub = publicKeyFromNode(
        createPublicKey({ key: { kty: 'EC', crv: { 'ecdsa-p256': 'P-256', 'ecdsa-p384': 'P-384', 'ecdsa-p521': 'P-521' }[t], ...xy(curve.getPublicKey(sk, false), t) }, format: 'jwk' }),
      );
      const auth = new Uint8Array([...[algorithmIdentifier(scheme).length], ...algorithmIdentifier(scheme), ...nsig]);
      expect(verifyAuthData(pub, octets, auth)).toMatchObject({ ok: true, scheme });
    });
  }
  function xy(p: Uint8Array, t: KeyType): { x: string; y: string } {
    const n = t === 'ecdsa-p256' ? 32 : t === 'ecdsa-p384' ? 48 : 66;
    return { x: Buffer.from(p.subarray(1, 1 + n)).toString('base64url'), y: Buffer.from(p.subarray(1 + n)).toString('base64url') };
  }

  it('ed25519: ours verifies with @noble/curves, noble\'s verifies with ours', () => {
    const k = key('ed25519');
    const { sig } = split(buildAuthData('ed25519', k, octets));
    const raw = Buffer.from(k.publicKey.node!.export({ format: 'jwk' }).x!, 'base64url');
    expect(ed25519.verify(sig, octets, raw)).toBe(true);
    const sk = ed25519.utils.randomSecretKey();
    const pub = publicKeyFromNode(createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(ed25519.getPublicKey(sk)).toString('base64url') }, format: 'jwk' }));
    const alg = algorithmIdentifier('ed25519');
    expect(verifyAuthData(pub, octets, new Uint8Array([alg.length, ...alg, ...ed25519.sign(octets, sk)]))).toMatchObject({ ok: true, scheme: 'ed25519' });
  });

  it('ml-dsa-65: pure ML-DSA with empty context (noble verify with explicit empty context)', () => {
    const k = key('ml-dsa-65');
    const { sig } = split(buildAuthData('ml-dsa-65', k, octets));
    expect(ml_dsa65.verify(sig, octets, k.publicKey.raw!, { context: new Uint8Array(0) })).toBe(true);
    // a non-empty context (or HashML-DSA) would not verify
    expect(ml_dsa65.verify(sig, octets, k.publicKey.raw!, { context: Uint8Array.of(1) })).toBe(false);
  });
});

describe('verifyAuthData failures', () => {
  const k = key('ecdsa-p256');
  const good = buildAuthData('ecdsa-p256-sha256', k, octets);

  it('tampered octets → bad-signature', () => {
    const o = Uint8Array.from(octets);
    o[5]! ^= 1;
    expect(verifyAuthData(k.publicKey, o, good)).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  for (const scheme of ['ecdsa-p384-sha384', 'rsa-pss-sha256', 'ed25519', 'ml-dsa-65'] as SignatureScheme[]) {
    it(`${scheme}: tampered signature → bad-signature / malformed, wrong key → bad-signature`, () => {
      const kk = key(schemeKeyType(scheme));
      const auth = buildAuthData(scheme, kk, octets);
      const bad = Uint8Array.from(auth);
      bad[bad.length - 5]! ^= 0x10;
      expect(verifyAuthData(kk.publicKey, octets, bad).ok).toBe(false);
      expect(verifyAuthData(key(schemeKeyType(scheme), 1).publicKey, octets, auth)).toMatchObject({ ok: false, reason: 'bad-signature' });
    });
  }

  it('scheme does not match the key type → key-mismatch', () => {
    expect(verifyAuthData(key('ed25519').publicKey, octets, good)).toMatchObject({ ok: false, reason: 'key-mismatch' });
    const ml = buildAuthData('ml-dsa-65', key('ml-dsa-65'), octets);
    expect(verifyAuthData(k.publicKey, octets, ml)).toMatchObject({ ok: false, reason: 'key-mismatch' });
    const rsa = buildAuthData('rsa-pss-sha256', key('rsa'), octets);
    expect(verifyAuthData(key('ecdsa-p384').publicKey, octets, rsa)).toMatchObject({ ok: false, reason: 'key-mismatch' });
  });

  it('AlgorithmIdentifier swapped for another hash → bad-signature', () => {
    const { sig } = split(good);
    const alg = algorithmIdentifier('ecdsa-p256-sha384');
    expect(verifyAuthData(k.publicKey, octets, new Uint8Array([alg.length, ...alg, ...sig]))).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('malformed blobs → malformed / unknown-algorithm', () => {
    const cases: [string, string][] = [
      ['', 'malformed'],
      ['00', 'malformed'],
      ['0c300a06082a8648ce3d040302', 'malformed'], // no signature
      ['0d300a06082a8648ce3d04030200', 'malformed'], // length octet covers a trailing byte
      ['0b300a06082a8648ce3d0403', 'malformed'], // length octet too short
      ['ff3000', 'malformed'],
      ['0e300c06082a8648ce3d0403020500' + '3006020101020101', 'malformed'], // ECDSA with NULL params
      ['0f300d0609608648016503040312050030', 'malformed'], // ML-DSA with NULL params (RFC 9881: absent)
      ['0f300d06092a864886f70d0101050500' + '00', 'unknown-algorithm'], // sha1WithRSAEncryption
      ['07300506032b6571' + '00', 'unknown-algorithm'], // Ed448
      ['0e300a06082a8648ce3d040302' + '00', 'malformed'], // length claims 14
    ];
    for (const [h, reason] of cases) expect(verifyAuthData(k.publicKey, octets, bytes(h)), h).toMatchObject({ ok: false, reason });
  });

  it('RSA-PSS AlgorithmIdentifier with SHA-1 default or mismatched MGF1 hash → malformed', () => {
    const pssNoParams = '300b06092a864886f70d01010a'; // PSS needs its params SEQUENCE
    expect(() => parseAuthData(bytes('0d' + pssNoParams + '00'))).toThrow(ParseError);
    const pssDefaults = '300d06092a864886f70d01010a3000'; // all DEFAULT: SHA-1, refused
    expect(verifyAuthData(key('rsa').publicKey, octets, bytes('0f' + pssDefaults + '00'))).toMatchObject({ ok: false, reason: 'malformed' });
    const mixed = V.blobs['rsassa-pss-sha256']!.replace(/a11c301a06092a864886f70d010108300d0609608648016503040201/, 'a11c301a06092a864886f70d010108300d0609608648016503040202');
    const rsa = key('rsa');
    const { sig } = split(buildAuthData('rsa-pss-sha256', rsa, octets));
    const auth = new Uint8Array([mixed.length / 2, ...bytes(mixed), ...sig]);
    expect(verifyAuthData(rsa.publicKey, octets, auth)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('RSA keys below 2048 bits → weak-key', () => {
    const small = generateKey('rsa', { rsaBits: 1024 });
    const auth = buildAuthData('rsa-pss-sha256', small, octets);
    expect(verifyAuthData(small.publicKey, octets, auth)).toMatchObject({ ok: false, reason: 'weak-key' });
  });

  it('fuzz: random and mutated blobs never throw', () => {
    const keys = [key('ecdsa-p256'), key('rsa'), key('ed25519'), key('ml-dsa-65')];
    const seeds = keys.map((kk) => buildAuthData((({ 'ecdsa-p256': 'ecdsa-p256-sha256', rsa: 'rsa-pss-sha256', ed25519: 'ed25519', 'ml-dsa-65': 'ml-dsa-65' }) as Record<string, SignatureScheme>)[kk.type]!, kk, octets));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc.tuple(fc.nat(3), fc.array(fc.tuple(fc.nat(5000), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(5000)).map(([i, muts, cut]) => {
            const b = Uint8Array.from(seeds[i]!);
            for (const [pos, v] of muts) b[pos % b.length] = v;
            return cut % 7 === 0 ? b.subarray(0, cut % b.length) : b;
          }),
        ),
        fc.nat(3),
        (blob, ki) => {
          const r = verifyAuthData(keys[ki]!.publicKey, octets, blob);
          expect(typeof r.ok).toBe('boolean');
          if (!r.ok) expect(typeof r.reason).toBe('string');
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('SIGNATURE_HASH_ALGORITHMS and scheme choice', () => {
  it('encodes / decodes 2-octet IDs (RFC 7427 §4)', () => {
    expect(hexOf(encodeHashAlgorithms(SUPPORTED_HASHES))).toBe('0002000300040005');
    expect(decodeHashAlgorithms(bytes('000100020005ffff'))).toEqual([1, 2, 5, 0xffff]);
    expect(decodeHashAlgorithms(new Uint8Array(0))).toEqual([]);
    expect(() => decodeHashAlgorithms(bytes('000200'))).toThrow(ParseError);
    expect(() => encodeHashAlgorithms([0x10000])).toThrow(TypeError);
  });

  const all = [1, 2, 3, 4, 5];
  const table: [KeyType, number[] | undefined, SignatureScheme | null, object?][] = [
    ['ecdsa-p256', all, 'ecdsa-p256-sha256'],
    ['ecdsa-p256', [4, 3], 'ecdsa-p256-sha384'],
    ['ecdsa-p384', all, 'ecdsa-p384-sha384'],
    ['ecdsa-p384', [2], null],
    ['ecdsa-p521', [2, 3, 4], 'ecdsa-p521-sha512'],
    ['ecdsa-p521', [1, 2, 3], null],
    ['rsa', all, 'rsa-pss-sha256'],
    ['rsa', [4], 'rsa-pss-sha512'],
    ['rsa', all, 'rsa-pkcs1-sha256', { rsaPss: false }],
    ['rsa', all, 'rsa-pss-sha256', { rsaPss: false, pssOnly: true }],
    ['rsa', [1], null],
    ['ed25519', all, 'ed25519'],
    ['ed25519', [2, 3, 4], null],
    ['ml-dsa-65', [5], 'ml-dsa-65'],
    ['ml-dsa-65', [2, 3, 4], null], // draft: MUST NOT without Identity
    ['ecdsa-p256', undefined, null], // no notify: method 14 not allowed (RFC 7427 §4)
    ['ecdsa-p256', [], null],
  ];
  for (const [t, hashes, want, opts] of table) {
    it(`${t} with ${JSON.stringify(hashes)}${opts ? ` ${JSON.stringify(opts)}` : ''} → ${want}`, () => {
      expect(chooseScheme(t, hashes, opts)).toBe(want);
    });
  }

  it('schemeHash: Ed25519 and ML-DSA announce Identity', () => {
    expect(schemeHash('ml-dsa-65')).toBe(HashAlgorithm.IDENTITY);
    expect(schemeHash('ed25519')).toBe(HashAlgorithm.IDENTITY);
    expect(schemeHash('rsa-pss-sha384')).toBe(HashAlgorithm.SHA2_384);
  });
});

describe('RFC 4754 legacy ECDSA methods 9/10/11', () => {
  for (const [t, method, len, curve] of [
    ['ecdsa-p256', 9, 64, p256],
    ['ecdsa-p384', 10, 96, p384],
    ['ecdsa-p521', 11, 132, p521],
  ] as const) {
    it(`method ${method}: r||s of ${len} octets, verified by noble and by us`, () => {
      const k = key(t);
      const { method: m, data } = buildLegacyEcdsaAuth(k, octets);
      expect(m).toBe(method);
      expect(data.length).toBe(len);
      const jwk = k.publicKey.node!.export({ format: 'jwk' });
      const pub = new Uint8Array([4, ...Buffer.from(jwk.x!, 'base64url'), ...Buffer.from(jwk.y!, 'base64url')]);
      expect(curve.verify(data, octets, pub, { lowS: false })).toBe(true);
      expect(verifyLegacyEcdsaAuth(method, k.publicKey, octets, data)).toMatchObject({ ok: true });
      expect(verifyAuth(method, k.publicKey, octets, data)).toMatchObject({ ok: true });
      const bad = Uint8Array.from(data);
      bad[3]! ^= 1;
      expect(verifyAuth(method, k.publicKey, octets, bad)).toMatchObject({ ok: false, reason: 'bad-signature' });
      expect(verifyAuth(method, k.publicKey, octets, data.subarray(1))).toMatchObject({ ok: false, reason: 'malformed' });
    });
  }

  it('wrong curve for the method → key-mismatch; other methods → unsupported-method', () => {
    const { data } = buildLegacyEcdsaAuth(key('ecdsa-p256'), octets);
    expect(verifyAuth(10, key('ecdsa-p256').publicKey, octets, data)).toMatchObject({ ok: false, reason: 'key-mismatch' });
    expect(verifyAuth(AuthMethod.RSA, key('rsa').publicKey, octets, data)).toMatchObject({ ok: false, reason: 'unsupported-method' });
    expect(verifyAuth(AuthMethod.PSK, key('rsa').publicKey, octets, data)).toMatchObject({ ok: false, reason: 'unsupported-method' });
    expect(() => buildLegacyEcdsaAuth(key('ed25519'), octets)).toThrow(TypeError);
  });
});
