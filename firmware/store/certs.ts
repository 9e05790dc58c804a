/**
 * Certificates and CA certificates (for certificate authentication, which
 * the engine does not do yet: the tables and checks exist so that backups
 * and the UI have one place for them). The PEM is parsed with node:crypto's
 * X509Certificate; a private key goes to `secrets` (kind private_key) and is
 * checked to belong to the certificate. Listings never include keys.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Db } from './db.js';
import { StoreError, StoreErrorCode } from './errors.js';

export interface CertificateInfo {
  name: string;
  kind: 'cert' | 'ca';
  subject: string;
  issuer: string;
  /** SHA-256 fingerprint, colon-separated hex (as openssl prints it). */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  hasPrivateKey: boolean;
  createdAt: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function addCertificate(db: Db, input: { name: string; kind: 'cert' | 'ca'; pem: string; privateKeyPem?: string }, now: number): CertificateInfo {
  if (!NAME.test(input.name)) throw new StoreError(StoreErrorCode.ARGUMENT, 'certificate name must be 1-64 of A-Z a-z 0-9 _ . -');
  if (input.kind !== 'cert' && input.kind !== 'ca') throw new StoreError(StoreErrorCode.ARGUMENT, "kind must be 'cert' or 'ca'");
  let x: X509Certificate;
  try {
    x = new X509Certificate(input.pem);
  } catch (e) {
    throw new StoreError(StoreErrorCode.CERTIFICATE, `not a PEM certificate: ${(e as Error).message}`);
  }
  if (input.kind === 'ca' && !x.ca) throw new StoreError(StoreErrorCode.CERTIFICATE, 'not a CA certificate (basicConstraints CA:FALSE or missing)');
  if (input.kind === 'ca' && input.privateKeyPem !== undefined) throw new StoreError(StoreErrorCode.ARGUMENT, 'a CA entry holds no private key');
  let keyDer: Buffer | undefined;
  if (input.privateKeyPem !== undefined) {
    let key;
    try {
      key = createPrivateKey(input.privateKeyPem);
    } catch {
      // The parser's message might quote key material: say only that it failed.
      throw new StoreError(StoreErrorCode.CERTIFICATE, 'private key does not parse');
    }
    if (!x.checkPrivateKey(key)) throw new StoreError(StoreErrorCode.CERTIFICATE, 'private key does not match the certificate');
    keyDer = key.export({ format: 'der', type: 'pkcs8' });
  }
  return db.transaction(() => {
    if (db.prepare('SELECT 1 FROM certificates WHERE name = ?').get(input.name)) throw new StoreError(StoreErrorCode.EXISTS, `certificate '${input.name}' already exists`);
    const keyId = keyDer ? Number(db.prepare("INSERT INTO secrets (kind, value, created_at) VALUES ('private_key', ?, ?)").run(keyDer, now).lastInsertRowid) : null;
    db.prepare(
      `INSERT INTO certificates (name, kind, pem, subject, issuer, fingerprint, not_before, not_after, key_secret_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(input.name, input.kind, x.toString(), x.subject, x.issuer, x.fingerprint256, x.validFrom, x.validTo, keyId, now);
    return getCertificate(db, input.name)!;
  }).immediate();
}

interface CertRow {
  name: string;
  kind: 'cert' | 'ca';
  subject: string;
  issuer: string;
  fingerprint: string;
  not_before: string;
  not_after: string;
  key_secret_id: number | null;
  created_at: number;
}

function info(r: CertRow): CertificateInfo {
  return {
    name: r.name,
    kind: r.kind,
    subject: r.subject,
    issuer: r.issuer,
    fingerprint: r.fingerprint,
    notBefore: r.not_before,
    notAfter: r.not_after,
    hasPrivateKey: r.key_secret_id !== null,
    createdAt: r.created_at,
  };
}

export function getCertificate(db: Db, name: string): CertificateInfo | undefined {
  const r = db.prepare('SELECT * FROM certificates WHERE name = ?').get(name) as CertRow | undefined;
  return r ? info(r) : undefined;
}

export function listCertificates(db: Db): CertificateInfo[] {
  return (db.prepare('SELECT * FROM certificates ORDER BY kind, name').all() as CertRow[]).map(info);
}

/** The certificate PEM (public data). */
export function certificatePem(db: Db, name: string): string | undefined {
  return (db.prepare('SELECT pem FROM certificates WHERE name = ?').get(name) as { pem: string } | undefined)?.pem;
}

export function removeCertificate(db: Db, name: string): void {
  db.transaction(() => {
    const r = db.prepare('SELECT key_secret_id FROM certificates WHERE name = ?').get(name) as { key_secret_id: number | null } | undefined;
    if (!r) throw new StoreError(StoreErrorCode.NOT_FOUND, `no certificate '${String(name).slice(0, 64)}'`);
    db.prepare('DELETE FROM certificates WHERE name = ?').run(name);
    if (r.key_secret_id !== null) db.prepare('DELETE FROM secrets WHERE id = ?').run(r.key_secret_id);
  }).immediate();
}
