/**
 * The web admin's HTTPS certificate: generated at first start, replaceable
 * by upload.
 *
 * First start: an ECDSA P-256 key (auth/keys.ts) and a self-signed X.509 v3
 * certificate (pki/x509-writer.ts, RFC 5280) for the device's names:
 * subjectAltName dNSName = hostname and localhost, iPAddress = 127.0.0.1,
 * ::1 and the listen address (browsers match names against the SAN only,
 * RFC 6125 §6.4.4), extendedKeyUsage serverAuth, keyUsage digitalSignature.
 * Files: <data>/tls/cert.pem and <data>/tls/key.pem, mode 0600 in a 0700
 * directory. An uploaded replacement must parse, match its key, be valid
 * now and carry serverAuth (or no EKU); it is written atomically and
 * swapped into the running server without a restart.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdirSync, chmodSync, existsSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generateKey, exportPrivateKeyPem, toPem } from '../firmware/auth/keys.js';
import { encodeDn } from '../firmware/auth/dn.js';
import { buildCertificate, EKU_BY_FLAG, type SanEntry } from '../firmware/pki/x509-writer.js';

export interface TlsMaterial {
  cert: string;
  key: string;
}

export interface TlsInfo {
  subject: string;
  issuer: string;
  selfSigned: boolean;
  notBefore: string;
  notAfter: string;
  fingerprint256: string;
  subjectAltName: string;
}

export class TlsUploadError extends Error {
  readonly code = 'ERR_TLS_UPLOAD';
}

const paths = (dataDir: string) => {
  const dir = join(dataDir, 'tls');
  return { dir, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
};

/**
 * Write via a temporary file and rename. The temporary file is created
 * exclusively (O_CREAT|O_EXCL never follows a symlink), so a link planted
 * at either name cannot redirect the write; rename replaces a link at the
 * final name instead of writing through it.
 */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** A fresh self-signed certificate for the given names (DNS names and IP literals). */
export function selfSignedCertificate(names: readonly string[], now = new Date()): TlsMaterial {
  const key = generateKey('ecdsa-p256');
  const san: SanEntry[] = [];
  const seen = new Set<string>();
  for (const n of names) {
    if (!n || seen.has(n) || n === '0.0.0.0' || n === '::') continue;
    seen.add(n);
    if (isIP(n)) san.push({ type: 'ip', value: n });
    else if (/^[A-Za-z0-9.-]{1,253}$/.test(n)) san.push({ type: 'dns', value: n });
  }
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'pqgate';
  const subject = encodeDn(`O=pqgate, CN=pqgate web admin ${host}`);
  const der = buildCertificate({
    subject,
    issuer: subject,
    subjectKey: key.publicKey,
    issuerKey: key,
    // An hour of slack for a device whose clock is slightly behind at first boot.
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 10 * 365 * 86400_000),
    san,
    eku: [EKU_BY_FLAG.serverAuth!],
  });
  return { cert: toPem('CERTIFICATE', der), key: exportPrivateKeyPem(key) };
}

/**
 * Names the certificate should cover: hostname, localhost, loopbacks, the
 * listen host, and (listening on every address) the addresses the device
 * has now, so `curl --cacert cert.pem https://<LAN address>` verifies.
 */
export function defaultNames(listenHost: string): string[] {
  const names = [hostname(), 'localhost', '127.0.0.1', '::1', listenHost];
  if (listenHost === '0.0.0.0' || listenHost === '::')
    for (const addrs of Object.values(networkInterfaces()))
      for (const a of addrs ?? []) if (!a.internal && !a.address.startsWith('fe80:')) names.push(a.address);
  return names;
}

/** Load <data>/tls/{cert,key}.pem, or generate and store them. */
export function loadOrCreateTls(dataDir: string, names: readonly string[]): TlsMaterial & { generated: boolean } {
  const p = paths(dataDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  chmodSync(p.dir, 0o700);
  if (existsSync(p.cert) && existsSync(p.key)) {
    chmodSync(p.key, 0o600);
    return { cert: readFileSync(p.cert, 'utf8'), key: readFileSync(p.key, 'utf8'), generated: false };
  }
  const m = selfSignedCertificate(names);
  writeAtomic(p.key, m.key);
  writeAtomic(p.cert, m.cert);
  return { ...m, generated: true };
}

export function tlsInfo(certPem: string): TlsInfo {
  const x = new X509Certificate(certPem);
  return {
    subject: x.subject.replace(/\n/g, ', '),
    issuer: x.issuer.replace(/\n/g, ', '),
    selfSigned: x.subject === x.issuer && x.verify(x.publicKey),
    notBefore: x.validFrom,
    notAfter: x.validTo,
    fingerprint256: x.fingerprint256,
    subjectAltName: x.subjectAltName ?? '',
  };
}

/**
 * Check an uploaded certificate chain + key (PEM). Messages never quote key
 * material. Returns the material to install (cert chain as given).
 */
export function checkTlsUpload(certPem: string, keyPem: string, now = new Date()): TlsMaterial {
  if (!/-----BEGIN CERTIFICATE-----/.test(certPem)) throw new TlsUploadError('the certificate file is not a PEM certificate');
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch {
    throw new TlsUploadError('the certificate does not parse');
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new TlsUploadError('the private key does not parse (PEM, unencrypted)');
  }
  if (!x.checkPrivateKey(key)) throw new TlsUploadError('the private key does not belong to the certificate');
  if (new Date(x.validTo).getTime() <= now.getTime()) throw new TlsUploadError(`the certificate expired on ${x.validTo}`);
  if (new Date(x.validFrom).getTime() > now.getTime() + 86400_000) throw new TlsUploadError(`the certificate is not valid before ${x.validFrom}`);
  if (x.keyUsage && !x.keyUsage.includes('1.3.6.1.5.5.7.3.1')) throw new TlsUploadError('the certificate is not for TLS servers (extendedKeyUsage lacks serverAuth)');
  if (x.ca && !x.subjectAltName) throw new TlsUploadError('a CA certificate cannot be the server certificate');
  return { cert: certPem.trim() + '\n', key: key.export({ format: 'pem', type: 'pkcs8' }) as string };
}

export function saveTls(dataDir: string, m: TlsMaterial): void {
  const p = paths(dataDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  writeAtomic(p.key, m.key);
  writeAtomic(p.cert, m.cert);
}
