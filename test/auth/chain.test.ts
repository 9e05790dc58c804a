import { describe, expect, it } from 'vitest';
import { validateChain, type ChainResult } from '../../firmware/auth/certs.js';
import { parseCertificate, type Certificate } from '../../firmware/auth/x509.js';
import { KeyUsage, OID } from '../../firmware/auth/oids.js';
import { seq } from '../../firmware/auth/der.js';
import { DAY, NOW, key, makeCert } from './helpers.js';

const k = (slot: number) => key('ecdsa-p256', slot);

// A three-level ECDSA hierarchy: root → int1 → int2, and leaves under each.
const root = makeCert({ dn: 'C=CH, O=pqgate, CN=Root CA', key: k(0), ca: true });
const int1 = makeCert({ dn: 'C=CH, O=pqgate, CN=Intermediate 1', key: k(1), ca: true, issuer: { cert: root, key: k(0) } });
const int2 = makeCert({ dn: 'C=CH, O=pqgate, CN=Intermediate 2', key: k(2), ca: true, issuer: { cert: int1, key: k(1) } });
const leafAt = (issuer: Certificate, ik: number, extra: Partial<Parameters<typeof makeCert>[0]> = {}): Certificate =>
  makeCert({ dn: 'C=CH, O=pqgate, CN=gw1', key: k(9), issuer: { cert: issuer, key: k(ik) }, san: [{ type: 'dns', value: 'gw1.example' }], ...extra });
const leaf1 = leafAt(root, 0);
const leaf2 = leafAt(int1, 1);
const leaf3 = leafAt(int2, 2);
const otherRoot = makeCert({ dn: 'C=CH, O=other, CN=Other Root', key: k(5), ca: true });

function expectOk(r: ChainResult, chain: Certificate[]): void {
  if (!r.ok) throw new Error(`expected a valid chain, got ${r.reason}: ${r.detail}`);
  expect(r.chain.map((c) => Buffer.from(c.der).toString('hex'))).toEqual(chain.map((c) => Buffer.from(c.der).toString('hex')));
}

describe('valid chains', () => {
  it('1 level: leaf ← root', () => expectOk(validateChain(leaf1, [], [root], NOW), [leaf1, root]));
  it('2 levels: leaf ← int1 ← root', () => expectOk(validateChain(leaf2, [int1], [root], NOW), [leaf2, int1, root]));
  it('3 levels from an unordered pool with unrelated certificates', () =>
    expectOk(validateChain(leaf3, [otherRoot, int1, leaf1, int2], [otherRoot, root], NOW), [leaf3, int2, int1, root]));
  it('an intermediate may itself be the trust anchor', () => expectOk(validateChain(leaf3, [], [int2], NOW), [leaf3, int2]));
  it('a pinned (self-signed, trusted) end-entity certificate', () => {
    const pinned = makeCert({ dn: 'CN=pinned', key: k(7) });
    expectOk(validateChain(pinned, [], [pinned], NOW), [pinned]);
  });
  it('ML-DSA-65 root and leaf (experimental)', () => {
    const mr = makeCert({ dn: 'CN=PQ Root', key: key('ml-dsa-65', 0), ca: true });
    const ml = makeCert({ dn: 'CN=pq-gw', key: key('ml-dsa-65', 1), issuer: { cert: mr, key: key('ml-dsa-65', 0) } });
    expectOk(validateChain(ml, [], [mr], NOW), [ml, mr]);
  });
  it('mixed: ML-DSA root → ECDSA intermediate → ML-DSA leaf', () => {
    const mr = makeCert({ dn: 'CN=PQ Root', key: key('ml-dsa-65', 0), ca: true });
    const ei = makeCert({ dn: 'CN=EC Int', key: k(3), ca: true, issuer: { cert: mr, key: key('ml-dsa-65', 0) } });
    const ml = makeCert({ dn: 'CN=pq-gw', key: key('ml-dsa-65', 1), issuer: { cert: ei, key: k(3) } });
    expectOk(validateChain(ml, [ei], [mr], NOW), [ml, ei, mr]);
  });
  it('RSA root signing with RSASSA-PSS → Ed25519 and P-521 leaves', () => {
    const rr = makeCert({ dn: 'CN=RSA Root', key: key('rsa'), ca: true, extra: { sigAlg: { kind: 'rsa-pss', hash: 'sha384', saltLength: 48 } } });
    expect(rr.sigAlg).toEqual({ kind: 'rsa-pss', hash: 'sha384', saltLength: 48 });
    for (const t of ['ed25519', 'ecdsa-p521'] as const) {
      const l = makeCert({ dn: `CN=${t}`, key: key(t), issuer: { cert: rr, key: key('rsa') }, extra: { sigAlg: { kind: 'rsa-pss', hash: 'sha256', saltLength: 32 } } });
      expectOk(validateChain(l, [], [rr], NOW), [l, rr]);
    }
  });
  it('pathLen 0 allows a leaf directly below; pathLen 1 allows one intermediate', () => {
    const r0 = makeCert({ dn: 'CN=R0', key: k(0), ca: true, pathLen: 0 });
    const l0 = leafAt(r0, 0);
    expectOk(validateChain(l0, [], [r0], NOW), [l0, r0]);
    const r1 = makeCert({ dn: 'CN=R1', key: k(0), ca: true, pathLen: 1 });
    const i1 = makeCert({ dn: 'CN=I1', key: k(1), ca: true, issuer: { cert: r1, key: k(0) } });
    const l1 = leafAt(i1, 1);
    expectOk(validateChain(l1, [i1], [r1], NOW), [l1, i1, r1]);
  });
});

describe('rejected chains', () => {
  const tamper = (c: Certificate): Certificate => {
    const der = Uint8Array.from(c.der);
    der[der.length - 10]! ^= 0x01;
    return parseCertificate(der);
  };
  const expired = leafAt(root, 0, { notBefore: new Date(NOW.getTime() - 400 * DAY), notAfter: new Date(NOW.getTime() - DAY) });
  const future = leafAt(root, 0, { notBefore: new Date(NOW.getTime() + DAY), notAfter: new Date(NOW.getTime() + 400 * DAY) });
  const expiredInt = makeCert({ dn: 'C=CH, O=pqgate, CN=Intermediate 1', key: k(1), ca: true, issuer: { cert: root, key: k(0) }, notAfter: new Date(NOW.getTime() - DAY) });
  const expiredRoot = makeCert({ dn: 'C=CH, O=pqgate, CN=Root CA', key: k(0), ca: true, notAfter: new Date(NOW.getTime() - DAY) });
  const imposter = makeCert({ dn: 'C=CH, O=pqgate, CN=Root CA', key: k(6), ca: true }); // same DN, other key
  const noAki = leafAt(root, 0, { extra: { issuerKeyId: undefined } });
  const notCa = makeCert({ dn: 'CN=not a CA', key: k(4), issuer: { cert: root, key: k(0) } });
  const underNotCa = leafAt(notCa, 4);
  const r0 = makeCert({ dn: 'CN=R0', key: k(0), ca: true, pathLen: 0 });
  const i0 = makeCert({ dn: 'CN=I0', key: k(1), ca: true, issuer: { cert: r0, key: k(0) } });
  const underI0 = leafAt(i0, 1);
  const i1pl0 = makeCert({ dn: 'CN=I1', key: k(1), ca: true, pathLen: 0, issuer: { cert: root, key: k(0) } });
  const i2 = makeCert({ dn: 'CN=I2', key: k(2), ca: true, issuer: { cert: i1pl0, key: k(1) } });
  const underI2 = leafAt(i2, 2);
  // loop: A issued by B, B issued by A, neither trusted
  const a0 = makeCert({ dn: 'CN=Loop A', key: k(3), ca: true });
  const b = makeCert({ dn: 'CN=Loop B', key: k(4), ca: true, issuer: { cert: a0, key: k(3) } });
  const a = makeCert({ dn: 'CN=Loop A', key: k(3), ca: true, issuer: { cert: b, key: k(4) } });
  const underA = leafAt(a, 3);
  const leafNoDs = leafAt(root, 0, { keyUsage: KeyUsage.keyEncipherment });
  const caNoCertSign = makeCert({ dn: 'CN=CA without keyCertSign', key: k(1), ca: true, keyUsage: KeyUsage.digitalSignature | KeyUsage.cRLSign, issuer: { cert: root, key: k(0) } });
  const underNoCertSign = leafAt(caNoCertSign, 1);
  const crit = (dn: string, ca: boolean, issuer?: { cert: Certificate; key: ReturnType<typeof k> }, kk = k(9)) =>
    makeCert({ dn, key: kk, ca, ...(issuer ? { issuer } : {}), extra: { extraExtensions: [{ oid: OID.nameConstraints, critical: true, value: seq() }] } });
  const leafCrit = crit('CN=gw1', false, { cert: root, key: k(0) });
  const intCrit = crit('CN=Crit Int', true, { cert: root, key: k(0) }, k(1));
  const underIntCrit = leafAt(intCrit, 1);

  const table: [string, () => ChainResult, string][] = [
    ['expired leaf', () => validateChain(expired, [], [root], NOW), 'expired'],
    ['not-yet-valid leaf', () => validateChain(future, [], [root], NOW), 'not-yet-valid'],
    ['expired intermediate', () => validateChain(leaf2, [expiredInt], [root], NOW), 'expired'],
    ['expired trust anchor', () => validateChain(leaf1, [], [expiredRoot], NOW), 'expired'],
    ['wrong issuer (anchor of another CA)', () => validateChain(leaf1, [], [otherRoot], NOW), 'no-issuer'],
    ['missing intermediate', () => validateChain(leaf3, [int1], [root], NOW), 'no-issuer'],
    ['AKI names another key than the anchor with the same DN', () => validateChain(leaf1, [], [imposter], NOW), 'no-issuer'],
    ['same DN, other key, no AKI → signature fails', () => validateChain(noAki, [], [imposter], NOW), 'bad-signature'],
    ['tampered leaf signature', () => validateChain(tamper(leaf1), [], [root], NOW), 'bad-signature'],
    ['tampered intermediate signature', () => validateChain(leaf2, [tamper(int1)], [root], NOW), 'bad-signature'],
    ['non-CA issuer', () => validateChain(underNotCa, [notCa], [root], NOW), 'issuer-not-ca'],
    ['pathLen 0 on the root, one intermediate', () => validateChain(underI0, [i0], [r0], NOW), 'path-length-exceeded'],
    ['pathLen 0 on an intermediate, another below it', () => validateChain(underI2, [i2, i1pl0], [root], NOW), 'path-length-exceeded'],
    ['issuer loop', () => validateChain(underA, [a, b], [root], NOW), 'loop'],
    ['longer than maxLength', () => validateChain(leaf3, [int1, int2], [root], NOW, { maxLength: 3 }), 'chain-too-long'],
    ['leaf keyUsage without digitalSignature', () => validateChain(leafNoDs, [], [root], NOW), 'key-usage'],
    ['CA keyUsage without keyCertSign', () => validateChain(underNoCertSign, [caNoCertSign], [root], NOW), 'key-usage'],
    ['unknown critical extension on the leaf', () => validateChain(leafCrit, [], [root], NOW), 'unknown-critical-extension'],
    ['unknown critical extension on an intermediate', () => validateChain(underIntCrit, [intCrit], [root], NOW), 'unknown-critical-extension'],
    ['no trust anchors at all', () => validateChain(leaf1, [root], [], NOW), 'untrusted-root'],
    ['untrusted self-signed leaf', () => validateChain(makeCert({ dn: 'CN=self', key: k(7) }), [], [root], NOW), 'untrusted-root'],
  ];
  for (const [name, f, reason] of table) {
    it(`${name} → ${reason}`, () => {
      const r = f();
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason).toBe(reason);
        expect(r.detail.length).toBeGreaterThan(0);
      }
    });
  }

  it('the same leaves validate at a time when they are valid (the table is not vacuous)', () => {
    expect(validateChain(future, [], [root], new Date(NOW.getTime() + 2 * DAY)).ok).toBe(true);
    expect(validateChain(expired, [], [root], new Date(NOW.getTime() - 2 * DAY)).ok).toBe(true);
    expect(validateChain(leaf2, [int1], [root], NOW).ok).toBe(true);
  });

  it('a peer flooding same-named, same-key CA certificates hits the signature-check budget', () => {
    const x0 = makeCert({ dn: 'CN=X', key: k(4), ca: true });
    const flood = Array.from({ length: 12 }, () => makeCert({ dn: 'CN=X', key: k(4), ca: true, issuer: { cert: x0, key: k(4) } }));
    const victim = leafAt(x0, 4);
    const t0 = Date.now();
    expect(validateChain(victim, flood, [root], NOW)).toMatchObject({ ok: false, reason: 'too-complex' });
    expect(Date.now() - t0).toBeLessThan(5000);
    // a small, honest pool is unaffected by the budget
    expect(validateChain(leaf3, [int1, int2, ...flood.slice(0, 3)], [root], NOW, { maxSignatureChecks: 8 }).ok).toBe(true);
  });

  it('prefers a valid path when a bad candidate with the same name exists', () => {
    // pool holds a tampered copy and the good intermediate
    expectOk(validateChain(leaf2, [tamper(int1), int1], [root], NOW), [leaf2, int1, root]);
  });
});
