/**
 * The web admin's HTTPS certificate: generated at first start, replaceable
 * by upload.
 *
 * First start: an ECDSA P-256 key (auth/keys.ts) and a self-signed X.509 v3
 * certificate (pki/x509-writer.ts, RFC 5280) for the device's names:
 * subjectAltName dNSName = hostname and localhost, iPAddress = 127.0.0.1,
 * ::1 and the listen address (browsers match names against the SAN only,
 * RFC 6125 §6.4.4), extendedKeyUsage serverAuth, keyUsage digitalSignature.
 * Storing, describing and checking certificates is in tls-store.ts
 * (re-exported here); this module is what only a first start needs.
 */
import { hostname, networkInterfaces } from 'node:os';
// Not node:net's isIP: its IPv6 check compiles a large regular expression on first use (~0.07 s of the first boot under QEMU TCG; firmware/util/ip.ts).
import { isIP } from '../firmware/util/ip.js';
import { generateKey, exportPrivateKeyPem, toPem } from '../firmware/auth/keys.js';
import { encodeDn } from '../firmware/auth/dn.js';
import { buildCertificate, EKU_BY_FLAG, type SanEntry } from '../firmware/pki/x509-writer.js';
import { loadTls, tlsPaths, writeAtomic, type TlsMaterial } from './tls-store.js';

export * from './tls-store.js';

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
  const existing = loadTls(dataDir);
  if (existing) return { ...existing, generated: false };
  const p = tlsPaths(dataDir);
  const m = selfSignedCertificate(names);
  writeAtomic(p.key, m.key);
  writeAtomic(p.cert, m.cert);
  return { ...m, generated: true };
}
