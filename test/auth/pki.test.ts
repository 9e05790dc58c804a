import { describe, expect, it, afterAll } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { main, EXIT_ERROR, EXIT_OK, EXIT_USAGE, type PkiIo } from '../../firmware/pki/cli.js';
import { identityMatchesCert, loadCertificate, validateChain } from '../../firmware/auth/certs.js';
import { loadPrivateKey } from '../../firmware/auth/keys.js';
import { KeyUsage, OID } from '../../firmware/auth/oids.js';
import { IdType } from '../../firmware/ikev2/constants.js';
import { buildAuthData, verifyAuthData, chooseScheme, SUPPORTED_HASHES } from '../../firmware/auth/signature.js';
import { run, tempDir } from './helpers.js';
import { execFileSync } from 'node:child_process';

const t = tempDir('pqg-pki-');
afterAll(() => t.cleanup());
const p = (n: string): string => join(t.dir, n);
const NOW = new Date();

function pki(...argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const io: PkiIo = { out: (s) => void (out += typeof s === 'string' ? s : Buffer.from(s).toString('latin1')), err: (s) => void (err += s), now: () => NOW };
  const code = main(argv, io);
  return { code, out, err };
}
function ok(...argv: string[]): string {
  const r = pki(...argv);
  if (r.code !== EXIT_OK) throw new Error(`pki ${argv.join(' ')} → ${r.code}: ${r.err}`);
  return r.out;
}

/** openssl verify; returns [exit code, output]. */
function osslVerify(args: string[]): [number, string] {
  try {
    return [0, execFileSync('openssl', ['verify', ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })];
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    return [x.status, `${x.stdout}${x.stderr}`];
  }
}

const opensslHasMlDsa = (() => {
  try {
    return /ML-DSA-65/i.test(execFileSync('openssl', ['list', '-signature-algorithms'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
})();

const TYPES = ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa3072', 'ed25519', 'ml-dsa-65'] as const;

describe.each(TYPES)('pki gen/self/issue with %s', (type) => {
  const ca = p(`ca-${type}`);
  const gw = p(`gw-${type}`);
  it('generates a CA and a gateway certificate', () => {
    ok('gen', '--type', type, '--out', `${ca}.pem`);
    expect(statSync(`${ca}.pem`).mode & 0o777).toBe(0o600);
    ok('self', '--ca', '--key', `${ca}.pem`, '--dn', `C=CH, O=pqgate, CN=pqgate CA ${type}`, '--lifetime', '3650', '--out', `${ca}.crt`);
    ok('gen', '--type', type, '--out', `${gw}.pem`);
    ok('issue', '--cacert', `${ca}.crt`, '--cakey', `${ca}.pem`, '--key', `${gw}.pem`, '--dn', 'C=CH, O=pqgate, CN=gw1', '--san', 'gw1.example', '--san', '192.0.2.1', '--out', `${gw}.crt`);
  });

  it('our parser and validator accept them; identities match', () => {
    const caCert = loadCertificate(readFileSync(`${ca}.crt`));
    const gwCert = loadCertificate(readFileSync(`${gw}.crt`));
    expect(caCert.basicConstraints).toEqual({ ca: true });
    expect(caCert.keyUsage).toBe(KeyUsage.keyCertSign | KeyUsage.cRLSign);
    expect(gwCert.keyUsage).toBe(KeyUsage.digitalSignature);
    expect(gwCert.basicConstraints).toBeUndefined();
    expect(Buffer.from(gwCert.authorityKeyId!).equals(Buffer.from(caCert.subjectKeyId!))).toBe(true);
    const r = validateChain(gwCert, [], [caCert], NOW);
    expect(r.ok).toBe(true);
    expect(identityMatchesCert(IdType.FQDN, new TextEncoder().encode('gw1.example'), gwCert)).toBe(true);
    expect(identityMatchesCert(IdType.IPV4_ADDR, Uint8Array.of(192, 0, 2, 1), gwCert)).toBe(true);
    // the key file signs IKE AUTH data that verifies with the certificate's key
    const k = loadPrivateKey(readFileSync(`${gw}.pem`));
    const scheme = chooseScheme(k.type, SUPPORTED_HASHES)!;
    const octets = new TextEncoder().encode('octets');
    expect(verifyAuthData(gwCert.publicKey!, octets, buildAuthData(scheme, k, octets)).ok).toBe(true);
  });

  it("node's X509Certificate parses them and sees the issuer relation", () => {
    const caX = new X509Certificate(readFileSync(`${ca}.crt`));
    const gwX = new X509Certificate(readFileSync(`${gw}.crt`));
    expect(caX.ca).toBe(true);
    expect(gwX.ca).toBe(false);
    expect(gwX.subject).toBe('C=CH\nO=pqgate\nCN=gw1');
    expect(gwX.subjectAltName).toBe('DNS:gw1.example, IP Address:192.0.2.1');
    // Node 20 bundles OpenSSL 3.0, whose X509_check_issued needs to decode the issuer key: not for ML-DSA.
    if (type !== 'ml-dsa-65') {
      expect(gwX.checkIssued(caX)).toBe(true);
      expect(gwX.verify(caX.publicKey)).toBe(true);
      expect(caX.verify(caX.publicKey)).toBe(true);
    }
  });

  it('openssl x509 -text prints them', () => {
    const text = run('openssl', ['x509', '-in', `${gw}.crt`, '-text', '-noout']);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s*\n\s*DNS:gw1\.example, IP Address:192\.0\.2\.1/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s*\n\s*Digital Signature/);
    expect(run('openssl', ['x509', '-in', `${ca}.crt`, '-text', '-noout'])).toMatch(/CA:TRUE/);
  });

  it.skipIf(type === 'ml-dsa-65' && !opensslHasMlDsa)('openssl verify -CAfile ca.crt gw.crt', () => {
    const [code, out] = osslVerify(['-CAfile', `${ca}.crt`, `${gw}.crt`]);
    expect(out).toMatch(/: OK/);
    expect(code).toBe(0);
  });
});

describe('pki: intermediates, options and failures', () => {
  it('root → intermediate (--ca) → leaf with --rsa-pss, verified by openssl with -untrusted', () => {
    ok('gen', '--type', 'rsa2048', '--out', p('r.pem'));
    ok('self', '--ca', '--key', p('r.pem'), '--dn', 'CN=R', '--out', p('r.crt'));
    ok('gen', '--type', 'ecdsa-p384', '--out', p('i.pem'));
    ok('issue', '--ca', '--cacert', p('r.crt'), '--cakey', p('r.pem'), '--key', p('i.pem'), '--dn', 'CN=I', '--rsa-pss', '--digest', 'sha384', '--out', p('i.crt'));
    ok('gen', '--type', 'ed25519', '--out', p('l.pem'));
    ok('pub', '--in', p('l.pem'), '--out', p('l.pub'));
    ok('issue', '--cacert', p('i.crt'), '--cakey', p('i.pem'), '--key', p('l.pub'), '--dn', 'CN=L', '--san', 'email:l@example.net', '--flag', 'serverAuth', '--flag', 'ikeIntermediate', '--out', p('l.crt'));
    expect(osslVerify(['-CAfile', p('r.crt'), '-untrusted', p('i.crt'), p('l.crt')])[0]).toBe(0);
    const text = run('openssl', ['x509', '-in', p('i.crt'), '-text', '-noout']);
    expect(text).toMatch(/Signature Algorithm: rsassaPss[\s\S]*Hash Algorithm: sha384[\s\S]*Salt Length: 0x30/);
    const l = loadCertificate(readFileSync(p('l.crt')));
    expect(l.extKeyUsage).toEqual([OID.ekuServerAuth, OID.ekuIkeIntermediate]);
    expect(l.subjectAltNames).toMatchObject([{ type: 'email', value: 'l@example.net' }]);
    expect(validateChain(l, [loadCertificate(readFileSync(p('i.crt')))], [loadCertificate(readFileSync(p('r.crt')))], NOW).ok).toBe(true);
  });

  it('--pathlen 0 on the root: openssl and our validator both reject a leaf below an intermediate', () => {
    ok('gen', '--type', 'ecdsa-p256', '--out', p('pr.pem'));
    ok('self', '--ca', '--pathlen', '0', '--key', p('pr.pem'), '--dn', 'CN=PR', '--out', p('pr.crt'));
    ok('issue', '--ca', '--cacert', p('pr.crt'), '--cakey', p('pr.pem'), '--key', p('pr.pem'), '--dn', 'CN=PI', '--out', p('pi.crt'));
    ok('issue', '--cacert', p('pi.crt'), '--cakey', p('pr.pem'), '--key', p('pr.pem'), '--dn', 'CN=PL', '--out', p('pl.crt'));
    const [code, out] = osslVerify(['-CAfile', p('pr.crt'), '-untrusted', p('pi.crt'), p('pl.crt')]);
    expect(code).not.toBe(0);
    expect(out).toMatch(/path length/i);
    const r = validateChain(loadCertificate(readFileSync(p('pl.crt'))), [loadCertificate(readFileSync(p('pi.crt')))], [loadCertificate(readFileSync(p('pr.crt')))], NOW);
    expect(r).toMatchObject({ ok: false, reason: 'path-length-exceeded' });
  });

  it('--not-before/--not-after: an expired certificate is refused by openssl and by us', () => {
    ok('gen', '--type', 'ecdsa-p256', '--out', p('e.pem'));
    ok('self', '--ca', '--key', p('e.pem'), '--dn', 'CN=E', '--out', p('e.crt'));
    ok('issue', '--cacert', p('e.crt'), '--cakey', p('e.pem'), '--key', p('e.pem'), '--dn', 'CN=EL', '--not-before', '2020-01-01T00:00:00Z', '--not-after', '2021-01-01T00:00:00Z', '--out', p('el.crt'));
    const [code, out] = osslVerify(['-CAfile', p('e.crt'), p('el.crt')]);
    expect(code).not.toBe(0);
    expect(out).toMatch(/expired/);
    expect(validateChain(loadCertificate(readFileSync(p('el.crt'))), [], [loadCertificate(readFileSync(p('e.crt')))], NOW)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('a validity reaching past 2049 is written as GeneralizedTime and read back', () => {
    ok('gen', '--type', 'ed25519', '--out', p('g.pem'));
    ok('self', '--key', p('g.pem'), '--dn', 'CN=G', '--not-before', '2049-06-01T00:00:00Z', '--not-after', '2051-06-01T12:34:56Z', '--serial', '01ff', '--outform', 'der', '--out', p('g.der'));
    const c = loadCertificate(readFileSync(p('g.der')));
    expect(c.notAfter.toISOString()).toBe('2051-06-01T12:34:56.000Z');
    expect(Buffer.from(c.serial).toString('hex')).toBe('01ff');
    expect(run('openssl', ['asn1parse', '-inform', 'DER', '-in', p('g.der')])).toMatch(/UTCTIME\s+:490601000000Z[\s\S]*GENERALIZEDTIME\s+:20510601123456Z/);
  });

  it('print shows the certificate fields', () => {
    const out = ok('print', '--in', p('l.crt'));
    expect(out).toMatch(/subject:\s+CN=L/);
    expect(out).toMatch(/issuer:\s+CN=I/);
    expect(out).toMatch(/pubkey:\s+ed25519/);
    expect(out).toMatch(/sigalg:\s+ecdsa-with-SHA384/);
    expect(out).toMatch(/altName:\s+l@example.net/);
  });

  it('writes to stdout without --out', () => {
    expect(ok('gen', '--type', 'ecdsa-p256')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  const usage: string[][] = [
    [],
    ['bogus'],
    ['gen', '--type', 'dsa'],
    ['gen', '--type'],
    ['gen', 'stray'],
    ['self', '--key', 'x.pem'],
    ['self', '--key', 'x.pem', '--dn', 'CN=x', '--pathlen', '1'],
    ['self', '--key', 'x.pem', '--dn', 'CN=x', '--lifetime', '0'],
    ['self', '--key', 'x.pem', '--dn', 'NOPE'],
    ['gen', '--frobnicate', '1'],
  ];
  for (const argv of usage) {
    it(`usage error: ${JSON.stringify(argv)} → exit 2`, () => {
      const r = pki(...argv);
      expect(r.code).toBe(EXIT_USAGE);
      expect(r.err).toMatch(/usage|pqgate-pki/);
    });
  }

  it('runtime errors → exit 1 (missing file, key not matching the CA, non-CA issuer, --digest with Ed25519)', () => {
    expect(pki('pub', '--in', p('does-not-exist.pem')).code).toBe(EXIT_ERROR);
    expect(pki('issue', '--cacert', p('r.crt'), '--cakey', p('i.pem'), '--key', p('l.pem'), '--dn', 'CN=x').err).toMatch(/does not belong/);
    expect(pki('issue', '--cacert', p('l.crt'), '--cakey', p('l.pem'), '--key', p('l.pem'), '--dn', 'CN=x').err).toMatch(/not a CA/);
    expect(pki('self', '--key', p('l.pem'), '--dn', 'CN=x', '--digest', 'sha384').code).toBe(EXIT_USAGE);
  });
});
