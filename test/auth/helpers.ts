import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, type KeyType, type PrivateKey } from '../../firmware/auth/keys.js';
import { encodeDn } from '../../firmware/auth/dn.js';
import { parseCertificate, type Certificate } from '../../firmware/auth/x509.js';
import { buildCertificate, keyIdentifier, type CertificateTemplate, type SanEntry } from '../../firmware/pki/x509-writer.js';

export const VECTORS = join(import.meta.dirname, '..', 'vectors', 'auth');
export const readVector = (name: string): string => readFileSync(join(VECTORS, name), 'utf8');

const keyCache = new Map<string, PrivateKey>();
/** One key per (type, slot), generated once per test file: RSA keygen is slow. */
export function key(type: KeyType, slot = 0): PrivateKey {
  const id = `${type}/${slot}`;
  let k = keyCache.get(id);
  if (!k) {
    k = generateKey(type, type === 'rsa' ? { rsaBits: 2048 } : {});
    keyCache.set(id, k);
  }
  return k;
}

export const DAY = 86_400_000;
export const NOW = new Date('2027-03-01T12:00:00Z');

export interface MakeCert {
  dn: string;
  key: PrivateKey;
  /** Issuer certificate + key; omitted = self-signed. */
  issuer?: { cert: Certificate; key: PrivateKey };
  ca?: boolean;
  pathLen?: number;
  keyUsage?: number;
  san?: SanEntry[];
  notBefore?: Date;
  notAfter?: Date;
  extra?: Partial<CertificateTemplate>;
}

export function makeCert(o: MakeCert): Certificate {
  const subject = encodeDn(o.dn);
  const t: CertificateTemplate = {
    subject,
    subjectKey: o.key.publicKey,
    issuer: o.issuer ? o.issuer.cert.subject : subject,
    issuerKey: o.issuer ? o.issuer.key : o.key,
    notBefore: o.notBefore ?? new Date(NOW.getTime() - 30 * DAY),
    notAfter: o.notAfter ?? new Date(NOW.getTime() + 365 * DAY),
    ...(o.issuer ? { issuerKeyId: o.issuer.cert.subjectKeyId ?? keyIdentifier(o.issuer.cert.spki) } : {}),
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    ...(o.pathLen !== undefined ? { pathLen: o.pathLen } : {}),
    ...(o.keyUsage !== undefined ? { keyUsage: o.keyUsage } : {}),
    ...(o.san ? { san: o.san } : {}),
    ...o.extra,
  };
  return parseCertificate(buildCertificate(t));
}

/** Run a command, returning stdout; throws with stderr on a non-zero exit. */
export function run(cmd: string, args: string[], input?: Uint8Array | string): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

export function runBuf(cmd: string, args: string[], input?: Uint8Array | string): Buffer {
  return execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
