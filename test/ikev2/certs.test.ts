/**
 * Certificate authentication between two engines (RFC 7296 §2.15, RFC 7427):
 * ECDSA P-256/P-384, RSA-PSS, Ed25519 and the experimental ML-DSA-65
 * (draft-ietf-ipsecme-ikev2-pqc-auth), CERT/CERTREQ, chain to a CA,
 * identity vs. certificate, and the refusals: unknown CA, expired
 * certificate, identity not in the certificate, scheme policy, PSK/cert mix.
 */
import { describe, it, expect } from 'vitest';
import { pair, up } from './harness.js';
import { key, makeCert, NOW, DAY } from '../auth/helpers.js';
import type { KeyType } from '../../firmware/auth/keys.js';
import type { LocalCredentials } from '../../firmware/auth/peer.js';
import type { Certificate } from '../../firmware/auth/x509.js';
import type { SignatureScheme } from '../../firmware/auth/signature.js';

function ca(type: KeyType, name = 'pqgate test CA', slot = 10) {
  const k = key(type, slot);
  return { cert: makeCert({ dn: `C=CH, O=pqgate, CN=${name}`, key: k, ca: true }), key: k };
}

function leaf(issuer: { cert: Certificate; key: ReturnType<typeof key> }, type: KeyType, san: string, slot: number, extra: { notAfter?: Date } = {}): LocalCredentials {
  const k = key(type, slot);
  const cert = makeCert({ dn: `C=CH, O=pqgate, CN=${san}`, key: k, issuer, san: [{ type: 'dns', value: san }], ...extra });
  return { key: k, cert, chain: [] };
}

function certPair(o: {
  caA: ReturnType<typeof ca>;
  caB?: ReturnType<typeof ca>;
  a: LocalCredentials;
  b: LocalCredentials;
  trustA?: Certificate[];
  allowedA?: SignatureScheme[];
}) {
  const caB = o.caB ?? o.caA;
  const r = pair(
    { auth: 'pubkey', localCreds: o.a, caCerts: o.trustA ?? [caB.cert], allowedSchemes: o.allowedA },
    { auth: 'pubkey', localCreds: o.b, caCerts: [o.caA.cert] },
    {},
    { a: { wallClock: () => NOW }, b: { wallClock: () => NOW } },
  );
  up(r.lab, r.a);
  r.lab.run();
  return r;
}

describe('certificate authentication (two engines)', () => {
  const families: [string, KeyType, string][] = [
    ['ECDSA P-256', 'ecdsa-p256', 'ecdsa-p256-sha256'],
    ['ECDSA P-384', 'ecdsa-p384', 'ecdsa-p384-sha384'],
    ['RSA (PSS)', 'rsa', 'rsa-pss-sha256'],
    ['Ed25519', 'ed25519', 'ed25519'],
    ['ML-DSA-65 (experimental)', 'ml-dsa-65', 'ml-dsa-65'],
  ];
  for (const [name, type, scheme] of families) {
    it(`${name}: both sides authenticate with certificates from one CA`, () => {
      const c = ca(type);
      const { lab, a, b } = certPair({ caA: c, a: leaf(c, type, 'a.example', 1), b: leaf(c, type, 'b.example', 2) });
      const [sa] = lab.status(a);
      const [sb] = lab.status(b);
      expect(sa?.state, a.events.join('\n')).toBe('ESTABLISHED');
      expect(sb?.state).toBe('ESTABLISHED');
      expect(sa!.children).toHaveLength(1);
      expect(sa!.authLocal).toBe(scheme);
      expect(sa!.authRemote).toBe(scheme);
      expect(sb!.authLocal).toBe(scheme);
      expect(sb!.authRemote).toBe(scheme);
    });
  }

  it('mixes key types across a two-level chain (RSA CA, ECDSA and Ed25519 leaves)', () => {
    const root = ca('rsa', 'root', 11);
    const { lab, a, b } = certPair({ caA: root, a: leaf(root, 'ecdsa-p384', 'a.example', 3), b: leaf(root, 'ed25519', 'b.example', 4) });
    expect(lab.status(a)[0]?.state).toBe('ESTABLISHED');
    expect(lab.status(b)[0]?.state).toBe('ESTABLISHED');
  });

  it('refuses a responder whose certificate comes from another CA', () => {
    const c = ca('ecdsa-p256');
    const rogue = ca('ecdsa-p256', 'rogue CA', 12);
    const { lab, a } = certPair({ caA: c, a: leaf(c, 'ecdsa-p256', 'a.example', 1), b: leaf(rogue, 'ecdsa-p256', 'b.example', 5) });
    expect(lab.status(a)).toEqual([]);
    expect(a.events.some((e) => /authentication of the responder failed: chain/.test(e))).toBe(true);
  });

  it('refuses an initiator with an expired certificate (AUTHENTICATION_FAILED)', () => {
    const c = ca('ecdsa-p256');
    const { lab, a, b } = certPair({ caA: c, a: leaf(c, 'ecdsa-p256', 'a.example', 1, { notAfter: new Date(NOW.getTime() - DAY) }), b: leaf(c, 'ecdsa-p256', 'b.example', 2) });
    expect(lab.status(b)).toEqual([]);
    expect(b.events.some((e) => e.includes('authentication of') && e.includes('chain'))).toBe(true);
    expect(a.events.some((e) => e.includes('AUTHENTICATION_FAILED'))).toBe(true);
  });

  it('refuses a certificate that does not name the IKE identity', () => {
    const c = ca('ecdsa-p256');
    // b's certificate is for other.example, but b presents itself as b.example
    const { lab, a } = certPair({ caA: c, a: leaf(c, 'ecdsa-p256', 'a.example', 1), b: leaf(c, 'ecdsa-p256', 'other.example', 6) });
    expect(lab.status(a)).toEqual([]);
    expect(a.events.some((e) => e.includes('identity'))).toBe(true);
  });

  it('enforces a post-quantum-only signature policy', () => {
    const c = ca('ecdsa-p256');
    const { lab, a } = certPair({ caA: c, a: leaf(c, 'ecdsa-p256', 'a.example', 1), b: leaf(c, 'ecdsa-p256', 'b.example', 2), allowedA: ['ml-dsa-65'] });
    expect(lab.status(a)).toEqual([]);
    expect(a.events.some((e) => e.includes('policy'))).toBe(true);
  });

  it('refuses a PSK peer when certificates are required', () => {
    const c = ca('ecdsa-p256');
    const { lab, a, b } = pair({ auth: 'pubkey', localCreds: leaf(c, 'ecdsa-p256', 'a.example', 1), caCerts: [c.cert] }, {}, {}, { a: { wallClock: () => NOW }, b: { wallClock: () => NOW } });
    up(lab, a);
    lab.run();
    expect(lab.status(a)).toEqual([]);
    expect(lab.status(b)).toEqual([]);
  });
});
