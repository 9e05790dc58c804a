/**
 * The web admin's HTTPS certificate on disk: load, save, describe, check an
 * upload (docs/webui.md "HTTPS"). Only node:crypto and the file system, so
 * the server can load an existing certificate and bind before anything else
 * is loaded; making a new one (first start) is in tls.ts, which server.ts
 * loads only then (its key and X.509 code pulls in the firmware's key
 * module, whose ML-DSA tables cost start-up time under QEMU's TCG).
 *
 * Files: <data>/tls/cert.pem and <data>/tls/key.pem, mode 0600 in a 0700
 * directory. An uploaded replacement must parse, match its key, be valid
 * now and carry serverAuth (or no EKU); it is written atomically and
 * swapped into the running server without a restart.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdirSync, chmodSync, existsSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

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

export const tlsPaths = (dataDir: string) => {
  const dir = join(dataDir, 'tls');
  return { dir, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
};

/**
 * Write via a temporary file and rename. The temporary file is created
 * exclusively (O_CREAT|O_EXCL never follows a symlink), so a link planted
 * at either name cannot redirect the write; rename replaces a link at the
 * final name instead of writing through it.
 */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** <data>/tls/{cert,key}.pem when both exist (the key's mode is re-asserted), else undefined. */
export function loadTls(dataDir: string): TlsMaterial | undefined {
  const p = tlsPaths(dataDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  chmodSync(p.dir, 0o700);
  if (!existsSync(p.cert) || !existsSync(p.key)) return undefined;
  chmodSync(p.key, 0o600);
  return { cert: readFileSync(p.cert, 'utf8'), key: readFileSync(p.key, 'utf8') };
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
  const p = tlsPaths(dataDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  writeAtomic(p.key, m.key);
  writeAtomic(p.cert, m.cert);
}
