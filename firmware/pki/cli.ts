#!/usr/bin/env node
/**
 * `pqgate-pki`: a small CA tool in the spirit of strongSwan's `pki`, for the
 * gateway's certificate authentication (RFC 7296 §3.6, RFC 7427).
 *
 *   gen   --type ecdsa-p256|ecdsa-p384|ecdsa-p521|rsa3072|rsa2048|rsa4096|ed25519|ml-dsa-65 [--out key.pem]
 *   pub   --in key.pem [--out pub.pem]
 *   self  --key ca.pem --dn "CN=pqgate CA" [--ca] [--pathlen N] [--lifetime DAYS] [--san NAME]... [common]
 *   issue --cacert ca.crt --cakey ca.pem --key k.pem|pub.pem --dn "CN=gw1" [--san NAME]... [--ca] [--pathlen N] [common]
 *   print --in cert.crt
 *
 * common: --lifetime DAYS (default 1095, as strongSwan's pki) | --not-before ISO --not-after ISO,
 *         --flag serverAuth|clientAuth|ikeIntermediate (extendedKeyUsage), --digest sha256|sha384|sha512,
 *         --rsa-pss (RSASSA-PSS instead of PKCS#1 v1.5 for RSA issuers), --serial HEX,
 *         --outform pem|der, --out FILE (default stdout).
 * --san: an IP literal becomes iPAddress, NAME@DOMAIN rfc822Name, anything else dNSName;
 *        prefixes dns:/email:/ip: force the type.
 * ML-DSA-65 (experimental) keys are written as PKCS#8 with the RFC 9881 seed form.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
import { readFileSync, writeFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PqError } from '../util/errors.js';
import { equal, fromHex, hex } from '../util/bytes.js';
import { bytesToIp } from '../util/ip.js';
import { encodeDn, formatDn } from '../auth/dn.js';
import { exportPrivateKeyPem, exportPublicKeyPem, generateKey, isPem, loadPrivateKey, loadPublicKey, toPem, type KeyType, type PublicKey } from '../auth/keys.js';
import { loadCertificate } from '../auth/certs.js';
import { HASH_LEN, defaultSigAlg, type Sha } from '../auth/algorithms.js';
import { KeyUsage } from '../auth/oids.js';
import { buildCertificate, EKU_BY_FLAG, keyIdentifier, parseSan, type CertificateTemplate } from './x509-writer.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

export interface PkiIo {
  out: (s: string | Uint8Array) => void;
  err: (s: string) => void;
  now: () => Date;
}

const defaultIo: PkiIo = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  now: () => new Date(),
};

class UsageError extends Error {}

const FLAGS = new Set(['ca', 'rsa-pss']);
const MULTI = new Set(['san', 'flag']);
const VALUED = new Set(['type', 'out', 'in', 'key', 'dn', 'lifetime', 'pathlen', 'cacert', 'cakey', 'digest', 'serial', 'outform', 'not-before', 'not-after', 'size']);

type Args = { flags: Set<string>; values: Map<string, string>; multi: Map<string, string[]> };

function parseArgs(argv: string[]): Args {
  const a: Args = { flags: new Set(), values: new Map(), multi: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (!tok.startsWith('--')) throw new UsageError(`unexpected argument '${tok}'`);
    const name = tok.slice(2);
    if (FLAGS.has(name)) {
      a.flags.add(name);
      continue;
    }
    if (!VALUED.has(name) && !MULTI.has(name)) throw new UsageError(`unknown option --${name}`);
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`--${name} needs a value`);
    if (MULTI.has(name)) a.multi.set(name, [...(a.multi.get(name) ?? []), v]);
    else if (a.values.has(name)) throw new UsageError(`--${name} given twice`);
    else a.values.set(name, v);
  }
  return a;
}

function need(a: Args, name: string): string {
  const v = a.values.get(name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

const GEN_TYPES: Record<string, { type: KeyType; rsaBits?: number }> = {
  'ecdsa-p256': { type: 'ecdsa-p256' },
  'ecdsa-p384': { type: 'ecdsa-p384' },
  'ecdsa-p521': { type: 'ecdsa-p521' },
  rsa2048: { type: 'rsa', rsaBits: 2048 },
  rsa3072: { type: 'rsa', rsaBits: 3072 },
  rsa4096: { type: 'rsa', rsaBits: 4096 },
  ed25519: { type: 'ed25519' },
  'ml-dsa-65': { type: 'ml-dsa-65' },
};

function emit(a: Args, io: PkiIo, data: string | Uint8Array, secret = false): void {
  const out = a.values.get('out');
  if (out === undefined || out === '-') io.out(data);
  else writeFileSync(out, data, { mode: secret ? 0o600 : 0o644 });
}

function validity(a: Args, io: PkiIo): { notBefore: Date; notAfter: Date } {
  const nb = a.values.get('not-before');
  const na = a.values.get('not-after');
  const parse = (s: string, what: string): Date => {
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) throw new UsageError(`--${what}: invalid date '${s}'`);
    return d;
  };
  const notBefore = nb !== undefined ? parse(nb, 'not-before') : io.now();
  let notAfter: Date;
  if (na !== undefined) {
    if (a.values.has('lifetime')) throw new UsageError('--lifetime and --not-after are exclusive');
    notAfter = parse(na, 'not-after');
  } else {
    const days = Number(a.values.get('lifetime') ?? '1095');
    if (!Number.isInteger(days) || days <= 0 || days > 36500) throw new UsageError('--lifetime must be 1..36500 days');
    notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  }
  return { notBefore, notAfter };
}

/** Certificate options; `issuerType` null = check only what does not depend on the issuer key (before reading files). */
function certOptions(a: Args, issuerType: KeyType | null): Pick<CertificateTemplate, 'san' | 'eku' | 'ca' | 'pathLen' | 'sigAlg' | 'serial'> {
  const digest = a.values.get('digest');
  if (digest !== undefined && !(digest in HASH_LEN)) throw new UsageError('--digest must be sha256, sha384 or sha512');
  if (digest !== undefined && (issuerType === 'ed25519' || issuerType === 'ml-dsa-65')) throw new UsageError(`--digest does not apply to ${issuerType}`);
  const rsaPss = a.flags.has('rsa-pss');
  if (rsaPss && issuerType !== null && issuerType !== 'rsa') throw new UsageError('--rsa-pss needs an RSA issuer key');
  const opts: Pick<CertificateTemplate, 'san' | 'eku' | 'ca' | 'pathLen' | 'sigAlg' | 'serial'> = {
    san: (a.multi.get('san') ?? []).map((s) => {
      try {
        return parseSan(s);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    }),
    eku: (a.multi.get('flag') ?? []).map((f) => {
      const oid = EKU_BY_FLAG[f];
      if (!oid) throw new UsageError(`unknown --flag '${f}' (serverAuth, clientAuth, ikeIntermediate)`);
      return oid;
    }),
    ca: a.flags.has('ca'),
  };
  if (issuerType !== null) opts.sigAlg = defaultSigAlg(issuerType, { ...(digest !== undefined ? { hash: digest as Sha } : {}), rsaPss });
  const pl = a.values.get('pathlen');
  if (pl !== undefined) {
    if (!opts.ca) throw new UsageError('--pathlen needs --ca');
    const n = Number(pl);
    if (!Number.isInteger(n) || n < 0 || n > 255) throw new UsageError('--pathlen must be 0..255');
    opts.pathLen = n;
  }
  const serial = a.values.get('serial');
  if (serial !== undefined) {
    let s: Uint8Array;
    try {
      s = fromHex(serial);
    } catch {
      throw new UsageError('--serial must be hex');
    }
    if (s.length === 0 || s.length > 20) throw new UsageError('--serial must be 1..20 octets');
    opts.serial = s;
  }
  return opts;
}

function writeCert(a: Args, io: PkiIo, der: Uint8Array): void {
  const form = a.values.get('outform') ?? 'pem';
  if (form !== 'pem' && form !== 'der') throw new UsageError('--outform must be pem or der');
  emit(a, io, form === 'pem' ? toPem('CERTIFICATE', der) : der);
}

function dn(a: Args): Uint8Array {
  try {
    return encodeDn(need(a, 'dn'));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--dn: ${(e as Error).message}`);
  }
}

function cmdGen(a: Args, io: PkiIo): void {
  const t = a.values.get('type') ?? 'ecdsa-p256';
  const g = GEN_TYPES[t];
  if (!g) throw new UsageError(`unknown --type '${t}' (${Object.keys(GEN_TYPES).join(', ')})`);
  const key = generateKey(g.type, g.rsaBits !== undefined ? { rsaBits: g.rsaBits } : {});
  emit(a, io, exportPrivateKeyPem(key), true);
}

function cmdPub(a: Args, io: PkiIo): void {
  emit(a, io, exportPublicKeyPem(loadPrivateKey(readFileSync(need(a, 'in'))).publicKey));
}

function cmdSelf(a: Args, io: PkiIo): void {
  const subject = dn(a);
  const times = validity(a, io);
  certOptions(a, null);
  const key = loadPrivateKey(readFileSync(need(a, 'key')));
  const der = buildCertificate({ subject, issuer: subject, subjectKey: key.publicKey, issuerKey: key, ...times, ...certOptions(a, key.type) });
  writeCert(a, io, der);
}

function cmdIssue(a: Args, io: PkiIo): void {
  const subject = dn(a);
  const times = validity(a, io);
  certOptions(a, null);
  const caCert = loadCertificate(readFileSync(need(a, 'cacert')));
  const caKey = loadPrivateKey(readFileSync(need(a, 'cakey')));
  if (!caCert.publicKey || !equal(caCert.publicKey.spki, caKey.publicKey.spki)) throw new PqError('ERR_PKI', '--cakey does not belong to --cacert');
  if (!caCert.basicConstraints?.ca) throw new PqError('ERR_PKI', '--cacert is not a CA certificate');
  const keyData = readFileSync(need(a, 'key'));
  let subjectKey: PublicKey;
  const text = isPem(keyData) ? keyData.toString('latin1') : '';
  if (text.includes('-----BEGIN PUBLIC KEY-----')) subjectKey = loadPublicKey(text);
  else subjectKey = loadPrivateKey(keyData).publicKey;
  const der = buildCertificate({
    subject,
    issuer: caCert.subject,
    subjectKey,
    issuerKey: caKey,
    issuerKeyId: caCert.subjectKeyId ?? keyIdentifier(caCert.spki),
    ...times,
    ...certOptions(a, caKey.type),
  });
  writeCert(a, io, der);
}

const KU_NAMES: [number, string][] = Object.entries(KeyUsage).map(([k, v]) => [v, k]);

function cmdPrint(a: Args, io: PkiIo): void {
  const c = loadCertificate(readFileSync(need(a, 'in')));
  const lines = [
    `subject:  ${formatDn(c.subject)}`,
    `issuer:   ${formatDn(c.issuer)}`,
    `serial:   ${hex(c.serial)}`,
    `validity: ${c.notBefore.toISOString()} .. ${c.notAfter.toISOString()}`,
    `pubkey:   ${c.publicKey ? (c.publicKey.type === 'ml-dsa-65' ? 'ml-dsa-65' : `${c.publicKey.type} (${c.publicKey.bits} bits)`) : 'unsupported'}`,
    `sigalg:   ${c.sigAlgName}`,
  ];
  if (c.basicConstraints) lines.push(`CA:       ${c.basicConstraints.ca}${c.basicConstraints.pathLen !== undefined ? `, pathlen ${c.basicConstraints.pathLen}` : ''}`);
  if (c.keyUsage !== undefined) lines.push(`keyUsage: ${KU_NAMES.filter(([m]) => c.keyUsage! & m).map(([, n]) => n).join(', ')}`);
  for (const n of c.subjectAltNames) {
    if (n.type === 'ip') lines.push(`altName:  ${bytesToIp(n.bytes)}`);
    else if (n.type === 'dns' || n.type === 'email' || n.type === 'uri') lines.push(`altName:  ${n.value}`);
    else if (n.type === 'dn') lines.push(`altName:  ${formatDn(n.der)}`);
  }
  if (c.subjectKeyId) lines.push(`subjkeyId: ${hex(c.subjectKeyId)}`);
  if (c.authorityKeyId) lines.push(`authkeyId: ${hex(c.authorityKeyId)}`);
  io.out(lines.join('\n') + '\n');
}

const USAGE = `usage: pqgate-pki gen|pub|self|issue|print [options]   (see firmware/pki/cli.ts)\n`;

export function main(argv: string[], io: PkiIo = defaultIo): number {
  const [cmd, ...rest] = argv;
  try {
    const a = parseArgs(rest);
    switch (cmd) {
      case 'gen':
        cmdGen(a, io);
        break;
      case 'pub':
        cmdPub(a, io);
        break;
      case 'self':
        cmdSelf(a, io);
        break;
      case 'issue':
        cmdIssue(a, io);
        break;
      case 'print':
        cmdPrint(a, io);
        break;
      default:
        io.err(USAGE);
        return EXIT_USAGE;
    }
    return EXIT_OK;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`pqgate-pki: ${e.message}\n${USAGE}`);
      return EXIT_USAGE;
    }
    io.err(`pqgate-pki: ${(e as Error).message}\n`);
    return EXIT_ERROR;
  }
}

function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(arg)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = main(process.argv.slice(2));
