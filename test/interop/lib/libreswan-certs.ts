/**
 * Certificates for libreswan 5.2 (Debian trixie) peers: one CA and two end
 * entities (pqgate's gateway and the libreswan peer) made by pqgate's own
 * `pqgate-pki` tool, the libreswan key and certificate bundled as PKCS#12 by
 * the host's `openssl`, and the commands that import them into pluto's NSS
 * database (certutil / pk12util from libnss3-tools, which libreswan's package
 * already pulls into the trixie root).
 *
 * Identities are FQDNs carried as dNSName subjectAltNames (RFC 4945 §3.1:
 * the IKE ID must be in the certificate), so both sides can check ID vs.
 * certificate.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { REPO } from './pqgate.js';
import { NSS_DB, NSS_IMPORT_DIR, type LibreswanConn, type LibreswanOptions } from './libreswan.js';
import { shq } from './rootfs.js';

export const PKI_CLI = join(REPO, 'dist', 'firmware', 'pki', 'cli.js');

/** Key types used with libreswan: pluto signs ECDSA (authby=ecdsa) and RSA (authby=rsasig). */
export type LsKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa2048' | 'rsa3072';

export interface EndEntity {
  id: string;
  key: string;
  cert: string;
  /** Key + certificate as PKCS#12 for pk12util, and the NSS nickname it gets. */
  p12: string;
  nickname: string;
}

/** Which end entity a libreswan instance is: normally `ls`; `gw` when a second libreswan stands in for pqgate. */
export type Who = 'gw' | 'ls';

export interface LibreswanPki {
  type: LsKeyType;
  dir: string;
  /** CA certificate (PEM) and its subject DN as libreswan prints it. */
  caCert: string;
  caDn: string;
  /** pqgate's end entity (or a second libreswan's). */
  gw: EndEntity;
  ls: EndEntity;
  /** PKCS#12 transport password (not a secret: the bundle lives in a test temp dir). */
  p12Password: string;
}

export const CA_DN = 'C=CH, O=pqgate, CN=pqgate libreswan interop CA';
const CA_NICK = 'pqgate-interop-ca';

function pki(...args: string[]): void {
  execFileSync('node', [PKI_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * CA + gateway + libreswan certificates in `dir` (an instance dir from
 * makeInstanceDir, so cleanup is the caller's registry). All three keys have
 * `type`; certificates are signed with ECDSA or PKCS#1 v1.5 (the default of
 * pqgate-pki and what NSS verifies everywhere).
 */
export function makeLibreswanPki(dir: string, type: LsKeyType, ids: { gw: string; ls: string }): LibreswanPki {
  const p = (n: string) => join(dir, n);
  pki('gen', '--type', type, '--out', p('ca.key'));
  pki('self', '--ca', '--key', p('ca.key'), '--dn', CA_DN, '--out', p('ca.pem'));
  for (const [n, id] of [['gw', ids.gw], ['ls', ids.ls]] as const) {
    pki('gen', '--type', type, '--out', p(`${n}.key`));
    pki('issue', '--cacert', p('ca.pem'), '--cakey', p('ca.key'), '--key', p(`${n}.key`), '--dn', `C=CH, O=pqgate, CN=${id}`, '--san', id, '--out', p(`${n}.pem`));
  }
  const p12Password = 'pqgate-interop-p12';
  // NSS imports private keys only from PKCS#12 (certutil cannot); OpenSSL 3's
  // defaults (PBES2/PBKDF2/AES-256-CBC, SHA-256 MAC) are read by NSS 3.110.
  for (const n of ['gw', 'ls']) {
    execFileSync('openssl', ['pkcs12', '-export', '-inkey', p(`${n}.key`), '-in', p(`${n}.pem`), '-name', n, '-passout', `pass:${p12Password}`, '-out', p(`${n}.p12`)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
  const ee = (n: Who): EndEntity => ({ id: ids[n], key: p(`${n}.key`), cert: p(`${n}.pem`), p12: p(`${n}.p12`), nickname: n });
  return { type, dir, caCert: p('ca.pem'), caDn: CA_DN, gw: ee('gw'), ls: ee('ls'), p12Password };
}

/**
 * `LibreswanOptions.nss` for a PKI: trust the CA for peer certificates
 * (`-t CT,,`: trusted CA for TLS client/server auth, which is what pluto
 * checks) and import the libreswan key + certificate under its nickname.
 */
export function nssImports(x: LibreswanPki, who: Who = 'ls'): NonNullable<LibreswanOptions['nss']> {
  const inRoot = (f: string) => `${NSS_IMPORT_DIR}/${basename(f)}`;
  return {
    dir: x.dir,
    commands: [
      `certutil -A -d ${NSS_DB} -n ${CA_NICK} -t CT,, -a -i ${shq(inRoot(x.caCert))}`,
      `pk12util -i ${shq(inRoot(x[who].p12))} -d ${NSS_DB} -W ${shq(x.p12Password)}`,
      `certutil -L -d ${NSS_DB}`,
    ],
  };
}

/** libreswan's authby= for the key type (RFC 7427 signatures with ECDSA or RSA). */
export function authbyFor(type: LsKeyType): 'ecdsa' | 'rsasig' {
  return type.startsWith('ecdsa') ? 'ecdsa' : 'rsasig';
}

/**
 * A certificate-authenticated libreswan conn: our certificate by NSS
 * nickname, the gateway's identity checked against its certificate, and the
 * gateway's certificate required to chain to the CA that issued ours
 * (rightca=%same).
 */
export function certConn(
  x: LibreswanPki,
  c: Omit<LibreswanConn, 'authby' | 'leftid' | 'rightid'> & { extra?: Record<string, string> },
  who: Who = 'ls',
): LibreswanConn {
  const peer: Who = who === 'ls' ? 'gw' : 'ls';
  return {
    ...c,
    authby: authbyFor(x.type),
    leftid: `@${x[who].id}`,
    rightid: `@${x[peer].id}`,
    extra: {
      leftcert: x[who].nickname,
      leftsendcert: 'always',
      rightca: '%same',
      ...c.extra,
    },
  };
}

/** The gateway side of a PKI for pqgate's tunnel config (auth pubkey). */
export function pqgateAuthConfig(x: LibreswanPki): Record<string, unknown> {
  return { auth: 'pubkey', local_id: x.gw.id, remote_id: x.ls.id, cert: x.gw.cert, key: x.gw.key, ca_certs: [x.caCert] };
}

/**
 * pluto's summary of how it authenticated the peer, from the
 * "established IKE SA; authenticated peer ..." log line, e.g.
 *   initiator established IKE SA; authenticated peer certificate 'CN=...' and 256-bit ECDSA with SHA2_512 digital signature ...
 * Returns the text after "authenticated peer", or undefined.
 */
export function plutoPeerAuth(log: string): string | undefined {
  const m = /established IKE SA; authenticated peer (.*)$/m.exec(log);
  return m?.[1];
}

export function readPem(path: string): string {
  return readFileSync(path, 'utf8');
}

// ------------------------------------------------------------------ pluto debug logs
//
// With plutodebug "all crypt" (and "private" for keys) pluto 5.2 dumps every
// input of the AUTH signature hash and of the RFC 9242 IntAuth PRF, e.g.
//   | sighash hash SHA2_512 init
//   | sighash hash SHA2_512 digest first packet (0x55f9432acf20 length 230)
//   |   0a 62 6b b5  90 a2 24 84  00 00 00 00  00 00 00 00   .bk...$.........
//   | sighash hash SHA2_512 digest IntAuth_*_I_A ((nil) length 0)
//   | sighash hash SHA2_512 final length 64
//   | prf(IntAuth_*_A [| IntAuth_*_P]) PRF HMAC_SHA2_384 update Adjusted Message Header (0x7ffe14e7bff0 length 28)
//   | 71-byte DER encoded ECDSA signature: siBuffer: 30 45 02 20  0a 3c ...
// The parsers below read those dumps so a test can recompute and check them
// independently (node:crypto, pqgate's own keymat functions).

export interface PlutoHunk {
  name: string;
  bytes: Uint8Array;
}

/** One hash or PRF computation as pluto logged it: its inputs in order and its output. */
export interface PlutoDigest {
  /** Hash or PRF name as pluto prints it: SHA2_256, HMAC_SHA2_384, ... */
  alg: string;
  parts: PlutoHunk[];
  out: Uint8Array;
  /** Index of the `init` line in the log's lines. */
  line: number;
}

const LOG_PREFIX = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d+: /;

/** Log lines without pluto's `logtime=yes` timestamps. */
export function plutoLines(log: string): string[] {
  return log.split('\n').map((l) => l.replace(LOG_PREFIX, ''));
}

/**
 * `n` bytes of a multi-line hex dump starting after lines[start]. Dump lines
 * are `|   xx xx xx xx  xx ...   ascii`: the hex area is the fixed 50
 * columns after `|   `, so the ASCII column never leaks in. Lines of other
 * threads interleaved with the dump are skipped.
 */
function readDump(lines: readonly string[], start: number, n: number): Uint8Array {
  const out: number[] = [];
  for (let i = start + 1; out.length < n && i < lines.length && i < start + 4 * (n / 16 + 4); i++) {
    const l = lines[i]!;
    if (!/^\| {3}[0-9a-f]{2} /.test(l)) continue;
    for (const h of l.slice(4, 54).match(/[0-9a-f]{2}/g) ?? []) if (out.length < n) out.push(parseInt(h, 16));
  }
  if (out.length !== n) throw new Error(`pluto log: dump after line ${start} has ${out.length} of ${n} bytes`);
  return Uint8Array.from(out);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Every `<label> <kind> <alg> init ... final` computation in the log.
 *  - label 'sighash', kind 'hash': the hash pluto signs / verifies (parts `digest NAME`);
 *  - label 'prf(IntAuth_*_A [| IntAuth_*_P])', kind 'PRF': one RFC 9242 IntAuth step (parts `update NAME`).
 */
export function plutoDigests(log: string, label: string, kind: 'hash' | 'PRF'): PlutoDigest[] {
  const lines = plutoLines(log);
  const head = `^\\| ${escapeRe(label)} ${kind} (\\S+) `;
  const init = new RegExp(`${head}init\\b`);
  const part = new RegExp(`${head}(?:digest|update) (.+) \\((?:0x[0-9a-f]+|\\(nil\\)) length (\\d+)\\)$`);
  const fin = new RegExp(`${head}final length (\\d+)$`);
  const out: PlutoDigest[] = [];
  let cur: PlutoDigest | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    let m: RegExpExecArray | null;
    if ((m = init.exec(l))) {
      cur = { alg: m[1]!, parts: [], out: new Uint8Array(0), line: i };
    } else if (cur && (m = part.exec(l)) && m[1] === cur.alg) {
      cur.parts.push({ name: m[2]!, bytes: readDump(lines, i, Number(m[3])) });
    } else if (cur && (m = fin.exec(l)) && m[1] === cur.alg) {
      cur.out = readDump(lines, i, Number(m[2]));
      out.push(cur);
      cur = undefined;
    }
  }
  return out;
}

/** The value of a named part (first match); throws when absent. */
export function part(d: PlutoDigest, name: string): Uint8Array {
  const p = d.parts.find((x) => x.name === name);
  if (!p) throw new Error(`pluto ${d.alg} computation at line ${d.line} has no part '${name}' (has ${d.parts.map((x) => x.name).join(', ')})`);
  return p.bytes;
}

/**
 * IKE header flags of a logged message (octet 19, RFC 7296 §3.1): I = 0x08,
 * R (response) = 0x20. Used to tell RealMessage1 from RealMessage2 and an
 * IKE_INTERMEDIATE request from its response without trusting pluto's labels.
 */
export function ikeFlags(message: Uint8Array): number {
  if (message.length < 28) throw new Error('not an IKE message');
  return message[19]!;
}

/** A key pluto extracted and (plutodebug "private") dumped, e.g. 'SK_pi', 'SK_pr'. */
export function plutoKey(log: string, name: string): Uint8Array {
  const lines = plutoLines(log);
  const re = new RegExp(`^\\| chunk_${escapeRe(name)} extracted len (\\d+) bytes`);
  for (let i = 0; i < lines.length; i++) {
    const m = re.exec(lines[i]!);
    if (!m) continue;
    for (let j = i + 1; j < Math.min(lines.length, i + 20); j++) {
      if (lines[j] === '| unwrapped:') return readDump(lines, j, Number(m[1]));
    }
  }
  throw new Error(`pluto log: no dump of ${name} (needs plutodebug "private")`);
}

/** The first `N-byte DER encoded ECDSA signature: siBuffer: ...` after line `from`. */
export function plutoEcdsaSignatureAfter(log: string, from: number): Uint8Array {
  const lines = plutoLines(log);
  for (let i = from; i < lines.length; i++) {
    const m = /^\| (\d+)-byte DER encoded ECDSA signature: siBuffer: ([0-9a-f ]+)$/.exec(lines[i]!);
    if (!m) continue;
    const bytes = (m[2]!.match(/[0-9a-f]{2}/g) ?? []).map((h) => parseInt(h, 16));
    if (bytes.length !== Number(m[1])) throw new Error(`pluto log line ${i}: ${bytes.length} of ${m[1]} signature bytes`);
    return Uint8Array.from(bytes);
  }
  throw new Error(`pluto log: no ECDSA signature after line ${from}`);
}

/** AUTH payloads pluto parsed (received) or emitted (sent), in log order, with their method. */
export function plutoAuthPayloads(log: string): { dir: 'parse' | 'emit'; method: number }[] {
  const lines = plutoLines(log);
  const out: { dir: 'parse' | 'emit'; method: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\| \*+(parse|emit) IKEv2 Authentication Payload:$/.exec(lines[i]!);
    if (!m) continue;
    for (let j = i + 1; j < Math.min(lines.length, i + 8); j++) {
      const a = /^\| {4}auth method: \S+ \(0x([0-9a-f]+)\)$/.exec(lines[j]!);
      if (a) {
        out.push({ dir: m[1] as 'parse' | 'emit', method: parseInt(a[1]!, 16) });
        break;
      }
    }
  }
  return out;
}

/** node:crypto's name for pluto's hash name (SHA2_256 -> sha256). */
export function nodeHash(plutoHash: string): string {
  const m = /^SHA2_(256|384|512)$/.exec(plutoHash);
  if (!m) throw new Error(`unexpected hash ${plutoHash}`);
  return `sha${m[1]}`;
}
