import { describe, it, expect, afterEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { scryptSync } from 'node:crypto';
import Database from 'better-sqlite3';
import { tempStore, type TempStore } from './helpers/fixtures.js';
import { StoreErrorCode } from '../../firmware/store/errors.js';
import { verifyPasswordHash } from '../../firmware/store/users.js';

let t: TempStore;
afterEach(() => t?.cleanup());

const PW = 'a long admin passphrase';

describe('admin users', () => {
  it('a new store has no user at all', () => {
    t = tempStore();
    expect(t.store.listUsers()).toEqual([]);
    expect(t.store.verifyUser('admin', 'admin')).toBe(false);
    expect(t.store.verifyUser('root', '')).toBe(false);
  });

  it('stores only an scrypt hash (N = 2^15, per-user salt) and verifies it', () => {
    t = tempStore();
    t.store.createUser('admin', PW, { actor: 'setup' });
    t.store.createUser('ops', PW, { actor: 'admin' });
    expect(t.store.verifyUser('admin', PW)).toBe(true);
    expect(t.store.verifyUser('admin', PW + 'x')).toBe(false);
    expect(t.store.verifyUser('nobody', PW)).toBe(false);
    const db = new Database(t.path, { readonly: true });
    const rows = db.prepare('SELECT name, password_hash FROM admin_users ORDER BY name').all() as { name: string; password_hash: string }[];
    db.close();
    const parts = rows.map((r) => r.password_hash.split('$'));
    for (const p of parts) expect(p.slice(0, 4)).toEqual(['scrypt', '15', '8', '1']);
    expect(parts[0]![4]).not.toBe(parts[1]![4]); // same password, different salts
    expect(parts[0]![5]).not.toBe(parts[1]![5]);
    // The hash is scrypt(password, salt, N=32768, r=8, p=1) as stored: recompute it independently.
    const [, , , , salt, hash] = parts[0]!;
    expect(scryptSync(PW, Buffer.from(salt!, 'base64'), 32, { N: 32768, r: 8, p: 1, maxmem: 64 << 20 }).toString('base64')).toBe(hash);
    expect(verifyPasswordHash(PW, 'scrypt$15$8$1$bad')).toBe(false);
  });

  it('lists users without hashes; audits without passwords', () => {
    t = tempStore();
    t.clock.advance(5);
    t.store.createUser('admin', PW, { actor: 'setup' });
    const list = t.store.listUsers();
    expect(list).toEqual([{ name: 'admin', createdAt: t.clock.t, updatedAt: t.clock.t }]);
    expect(JSON.stringify(list)).not.toContain('scrypt');
    expect(t.store.auditLog()[0]).toEqual(expect.objectContaining({ actor: 'setup', action: 'user-create', target: 'user:admin', detail: null }));
    expect(JSON.stringify(t.store.auditLog())).not.toContain(PW);
  });

  it('changes passwords (checking the current one when given) and deletes users', () => {
    t = tempStore();
    t.store.createUser('admin', PW, { actor: 'setup' });
    expect(() => t.store.changePassword('admin', 'another passphrase', { actor: 'admin', currentPassword: 'wrong one!!' })).toThrow(
      expect.objectContaining({ code: StoreErrorCode.AUTH }),
    );
    expect(t.store.verifyUser('admin', PW)).toBe(true);
    t.clock.advance(10);
    t.store.changePassword('admin', 'another passphrase', { actor: 'admin', currentPassword: PW });
    expect(t.store.verifyUser('admin', PW)).toBe(false);
    expect(t.store.verifyUser('admin', 'another passphrase')).toBe(true);
    expect(t.store.listUsers()[0]!.updatedAt).toBe(t.clock.t);
    t.store.deleteUser('admin', { actor: 'root' });
    expect(t.store.listUsers()).toEqual([]);
    expect(() => t.store.deleteUser('admin', { actor: 'root' })).toThrow(expect.objectContaining({ code: StoreErrorCode.NOT_FOUND }));
  });

  it('enforces names, password length and uniqueness', () => {
    t = tempStore();
    expect(() => t.store.createUser('Admin Root', PW, { actor: 'x' })).toThrow(expect.objectContaining({ code: StoreErrorCode.ARGUMENT }));
    expect(() => t.store.createUser('admin', 'short', { actor: 'x' })).toThrow(expect.objectContaining({ code: StoreErrorCode.ARGUMENT }));
    t.store.createUser('admin', PW, { actor: 'x' });
    expect(() => t.store.createUser('admin', PW, { actor: 'x' })).toThrow(expect.objectContaining({ code: StoreErrorCode.EXISTS }));
    expect(t.store.listUsers()).toHaveLength(1);
  });
});

describe('certificates', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A CA and a leaf certificate made with the openssl CLI. */
  function makeCerts() {
    dir = mkdtempSync(join(tmpdir(), 'pqgate-certs-'));
    const f = (n: string) => join(dir!, n);
    const ossl = (...a: string[]) => execFileSync('openssl', a, { stdio: 'pipe' });
    ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '30', '-subj', '/CN=pqgate test CA', '-addext', 'basicConstraints=critical,CA:TRUE');
    ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('gw.key'), '-out', f('gw.csr'), '-subj', '/CN=gw.branch.example');
    ossl('x509', '-req', '-in', f('gw.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('gw.pem'), '-days', '30');
    const r = (n: string) => readFileSync(f(n), 'utf8');
    return { caPem: r('ca.pem'), caKey: r('ca.key'), gwPem: r('gw.pem'), gwKey: r('gw.key') };
  }

  it('stores CAs and certificates with their key in secrets, never listing the key', () => {
    t = tempStore();
    const c = makeCerts();
    const ca = t.store.addCertificate({ name: 'test-ca', kind: 'ca', pem: c.caPem }, { actor: 'admin' });
    expect(ca).toMatchObject({ kind: 'ca', subject: 'CN=pqgate test CA', hasPrivateKey: false });
    const gw = t.store.addCertificate({ name: 'gw', kind: 'cert', pem: c.gwPem, privateKeyPem: c.gwKey }, { actor: 'admin' });
    expect(gw).toMatchObject({ kind: 'cert', subject: 'CN=gw.branch.example', issuer: 'CN=pqgate test CA', hasPrivateKey: true });
    expect(gw.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const listed = JSON.stringify([t.store.listCertificates(), t.store.auditLog()]);
    const keyBody = c.gwKey.split('\n')[1]!;
    expect(listed).not.toContain(keyBody);
    expect(t.store.certificatePem('gw')).toContain('BEGIN CERTIFICATE');
    expect(() => t.store.addCertificate({ name: 'gw', kind: 'cert', pem: c.gwPem }, { actor: 'admin' })).toThrow(expect.objectContaining({ code: StoreErrorCode.EXISTS }));
    expect(() => t.store.addCertificate({ name: 'leaf-as-ca', kind: 'ca', pem: c.gwPem }, { actor: 'admin' })).toThrow(expect.objectContaining({ code: StoreErrorCode.CERTIFICATE }));
    expect(() => t.store.addCertificate({ name: 'wrong-key', kind: 'cert', pem: c.gwPem, privateKeyPem: c.caKey }, { actor: 'admin' })).toThrow(/does not match/);
    expect(() => t.store.addCertificate({ name: 'junk', kind: 'cert', pem: 'not a cert' }, { actor: 'admin' })).toThrow(expect.objectContaining({ code: StoreErrorCode.CERTIFICATE }));
    t.store.removeCertificate('gw', { actor: 'admin' });
    expect(t.store.listCertificates().map((x) => x.name)).toEqual(['test-ca']);
    const db = new Database(t.path, { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM secrets WHERE kind = 'private_key'").get()).toEqual({ n: 0 });
    db.close();
  });
});
