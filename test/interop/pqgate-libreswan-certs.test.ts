/**
 * Certificate authentication (RFC 7296 §2.15, RFC 7427 digital signatures,
 * RFC 4754 ECDSA) between pqgate and Debian trixie's libreswan 5.2, both
 * roles, with certificates from pqgate's own `pqgate-pki` imported into
 * pluto's NSS database (pk12util/certutil inside the libreswan root).
 *
 * libreswan 5.2 has no ML-KEM, no RFC 9370 additional key exchanges and no
 * userspace ESP: the IKE SA is what interoperates (pqgate offers its hybrid
 * proposal and a classical one; libreswan picks the classical one), and
 * libreswan refuses the Child SA it cannot install here.
 *
 * RFC 9242 IntAuth with signatures (docs: ikev2-pq-digest.md §3.3, §8 item 1):
 * the only IKE_INTERMEDIATE libreswan 5.2 can run is its experimental
 * `intermediate=yes` exchange (empty, or PPK), which needs the peer's
 * INTERMEDIATE_EXCHANGE_SUPPORTED; pqgate announces that only with an
 * additional key exchange, which libreswan 5.2 cannot negotiate. So no
 * IKE_INTERMEDIATE happens between the two; the tests pin down
 *  - what libreswan 5.2 does when the notify is exchanged but no
 *    IKE_INTERMEDIATE follows (it still appends IKE_AUTH_MID: AUTH fails);
 *  - which IntAuth order libreswan 5.2 signs, measured libreswan <-> libreswan
 *    from the signatures themselves (responder: IntAuth_r | IntAuth_i | MID).
 */
import { createHash, createPublicKey, verify, X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, createPair, interopSkipReason, sweepStale, type Pair } from './lib/netns.js';
import { makeInstanceDir, peerMissingReason, peerPackages, sweepStaleDirs } from './lib/rootfs.js';
import { Libreswan } from './lib/libreswan.js';
import {
  CA_DN,
  certConn,
  ikeFlags,
  makeLibreswanPki,
  nodeHash,
  nssImports,
  part,
  plutoAuthPayloads,
  plutoDigests,
  plutoEcdsaSignatureAfter,
  plutoKey,
  plutoPeerAuth,
  pqgateAuthConfig,
  type LibreswanPki,
  type LsKeyType,
  type PlutoDigest,
} from './lib/libreswan-certs.js';
import { Pqgate } from './lib/pqgate.js';
import { concat, u32be } from '../../firmware/util/bytes.js';
import { createPrf } from '../../firmware/crypto/prf.js';
import { intAuthStep } from '../../firmware/ikev2/sa/keymat.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

const skip = interopSkipReason() ?? peerMissingReason('trixie-libreswan') ?? certToolsMissingReason();
if (skip) console.warn(`[interop] pqgate-libreswan-certs skipped: ${skip}`);

const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const CLASSIC = 'aes256gcm16-prfsha384-x25519';
const LS_IKE = 'aes_gcm256-sha2_384-dh31';
const IDS = { gw: 'gw.pqgate.test', ls: 'ls.libreswan.test' };
const AUTH_DIGITAL_SIGNATURE = 14; // RFC 7427
const AUTH_ECDSA_256 = 9; // RFC 4754
const FLAG_R = 0x20; // IKE header Response flag (RFC 7296 §3.1)
const PRF_HMAC_SHA2_384 = 6;

/** pk12util/certutil in the root (libreswan pulls libnss3-tools in) and openssl on the host (PKCS#12). */
function certToolsMissingReason(): string | undefined {
  if (!peerPackages('trixie-libreswan').has('libnss3-tools')) return 'libnss3-tools missing from the trixie-libreswan root';
  if (spawnSync('openssl', ['version']).status !== 0) return 'host openssl missing (apt-get install openssl)';
  return undefined;
}

interface Setup {
  pqInitiates: boolean;
  type: LsKeyType;
  /** Extra conn keys for libreswan (e.g. intermediate=yes). */
  lsExtra?: Record<string, string>;
  /** `ipsec whack --impair` settings applied before the exchange. */
  impairs?: string[];
  /** plutodebug (default "all": the AUTH payload dumps are "all"-level). */
  debug?: string;
}

interface Peers {
  pair: Pair;
  x: LibreswanPki;
  gw: Pqgate;
  ls: Libreswan;
}

/** pluto's non-debug lines (its debug output at "all crypt" is megabytes). */
function plutoSummary(log: string, n = 60): string {
  return log
    .split('\n')
    .filter((l) => !/: \| /.test(l))
    .slice(-n)
    .join('\n');
}

/**
 * pqgate (left) and libreswan (right) with one CA's certificates; runs `body`
 * and always tears down processes, namespaces and the PKI/NSS directories.
 */
async function withPeers(s: Setup, body: (p: Peers) => Promise<void>): Promise<void> {
  const pair = await createPair({ tag: `lc${s.pqInitiates ? 'i' : 'r'}` });
  const work = makeInstanceDir('lscerts');
  let gw: Pqgate | undefined;
  let ls: Libreswan | undefined;
  try {
    const x = makeLibreswanPki(work.dir, s.type, IDS);
    gw = await Pqgate.start({
      ns: pair.left,
      config: {
        listen: [pair.leftAddr],
        tunnels: [
          {
            name: 'ls',
            local_addr: pair.leftAddr,
            ...(s.pqInitiates ? { remote_addr: pair.rightAddr } : {}),
            ...pqgateAuthConfig(x),
            // Hybrid first, classical after it: libreswan 5.2 must land on the classical one.
            proposals: [HYBRID, CLASSIC],
            esp_proposals: ['aes256gcm16'],
            local_ts: [pair.leftInner.net],
            remote_ts: [pair.rightInner.net],
            start_action: 'none',
          },
        ],
      },
    });
    ls = await Libreswan.start({
      ns: pair.right,
      debug: s.debug ?? 'all',
      nss: nssImports(x),
      conns: [
        certConn(x, {
          name: 'c',
          left: pair.rightAddr,
          right: s.pqInitiates ? '%any' : pair.leftAddr,
          leftsubnet: pair.rightInner.net,
          rightsubnet: pair.leftInner.net,
          ike: LS_IKE,
          esp: 'aes_gcm256',
          extra: s.lsExtra,
        }),
      ],
    });
    for (const i of s.impairs ?? []) await ls.whack(['--impair', i]);
    await body({ pair, x, gw, ls });
  } catch (e) {
    (e as Error).message += `\n--- pluto ---\n${ls ? plutoSummary(ls.log()) : ''}\n--- pqgate ---\n${gw?.log().split('\n').slice(-40).join('\n') ?? ''}`;
    throw e;
  } finally {
    await ls?.stop();
    await gw?.stop();
    work.release();
    await pair.destroy();
  }
}

/** Start the exchange from the configured side and wait until both sides show the IKE SA. */
async function establish(p: Peers, pqInitiates: boolean): Promise<IkeSaStatus> {
  if (pqInitiates) await p.gw.up('ls');
  else void p.ls.up('c');
  await p.ls.waitFor(async () => (await p.ls.establishedIke('c')).length > 0, 20_000, 'libreswan ESTABLISHED_IKE_SA');
  return p.gw.waitFor((s) => s.state === 'ESTABLISHED', 15_000);
}

/** How pluto names a pqgate signature scheme in "authenticated peer ... <scheme> [digital ]signature". */
function plutoSchemeText(scheme: string, type: LsKeyType): string {
  const ec = /^ecdsa-p(256|384|521)-sha(256|384|512)$/.exec(scheme);
  if (ec) return `P-${ec[1]} ECDSA with SHA2_${ec[2]}`;
  const pss = /^rsa-pss-sha(256|384|512)$/.exec(scheme);
  if (pss) return `${type.slice(3)}-bit RSASSA-PSS with SHA2_${pss[1]}`;
  throw new Error(`unexpected scheme ${scheme}`);
}

const sha = (alg: string, data: Uint8Array): Uint8Array => new Uint8Array(createHash(nodeHash(alg)).update(data).digest());
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function ecdsaVerifies(alg: string, data: Uint8Array, certPem: string, sig: Uint8Array): boolean {
  const key = createPublicKey(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'pem' }));
  return verify(nodeHash(alg), data, { key, dsaEncoding: 'der' }, sig);
}

/** The sighash computation over RealMessage1 (the initiator's AUTH) or RealMessage2 (the responder's). */
function sighashOf(log: string, ofResponder: boolean): PlutoDigest {
  const all = plutoDigests(log, 'sighash', 'hash');
  const d = all.find((x) => ((ikeFlags(part(x, 'first packet')) & FLAG_R) !== 0) === ofResponder);
  if (!d) throw new Error(`no sighash over RealMessage${ofResponder ? 2 : 1} among ${all.length}`);
  return d;
}

describe.skipIf(!!skip)('certificate authentication: pqgate <-> libreswan 5.2', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => cleanupAll());

  // libreswan signs with the highest hash both announced when it initiates
  // (SHA2_512) and, as responder, reuses the hash of the initiator's signature
  // (pluto: "digsig: using hash SHA2_256 saved earlier"). pqgate signs P-256
  // with SHA-256 and RSA-PSS with SHA-256.
  const cases: { type: LsKeyType; label: string; ours: string; theirs: (pqInitiates: boolean) => string }[] = [
    { type: 'ecdsa-p256', label: 'ECDSA P-256 (authby=ecdsa)', ours: 'ecdsa-p256-sha256', theirs: (i) => (i ? 'ecdsa-p256-sha256' : 'ecdsa-p256-sha512') },
    { type: 'rsa2048', label: 'RSA 2048 (authby=rsasig, RSASSA-PSS)', ours: 'rsa-pss-sha256', theirs: (i) => (i ? 'rsa-pss-sha256' : 'rsa-pss-sha512') },
  ];
  for (const c of cases) {
    for (const pqInitiates of [true, false]) {
      it(`${c.label}, RFC 7427: pqgate ${pqInitiates ? 'initiates' : 'responds'}`, () =>
        withPeers({ pqInitiates, type: c.type }, async (p) => {
          const pq = await establish(p, pqInitiates);
          expect(p.ls.version).toMatch(/^5\.2/);
          expect(pq.role).toBe(pqInitiates ? 'initiator' : 'responder');
          expect(pq.localId).toBe(IDS.gw);
          expect(pq.remoteId).toBe(IDS.ls);
          expect(pq.keyExchanges).toEqual(['CURVE_25519']);
          expect(pq.authLocal).toBe(c.ours);
          expect(pq.authRemote).toBe(c.theirs(pqInitiates));
          // pluto authenticated pqgate with the certificate pqgate sent, chained to the CA in NSS.
          const auth = plutoPeerAuth(p.ls.log());
          expect(auth).toBe(`certificate '@${IDS.gw}' and ${plutoSchemeText(c.ours, c.type)} digital signature issued by '${CA_DN}'`);
          expect(plutoAuthPayloads(p.ls.log())).toEqual(
            pqInitiates
              ? [{ dir: 'parse', method: AUTH_DIGITAL_SIGNATURE }, { dir: 'emit', method: AUTH_DIGITAL_SIGNATURE }]
              : [{ dir: 'emit', method: AUTH_DIGITAL_SIGNATURE }, { dir: 'parse', method: AUTH_DIGITAL_SIGNATURE }],
          );
          if (pqInitiates) expect(pq.lastError).toMatch(/TEMPORARY_FAILURE/); // libreswan cannot install ESP here
        }));
    }
  }

  // RFC 7427 §4: without the peer's SIGNATURE_HASH_ALGORITHMS an ECDSA signer
  // uses the RFC 4754 method. pluto omits its notify (so pqgate signs with
  // method 9) and forces method 9 for its own AUTH (so pqgate verifies it).
  for (const pqInitiates of [true, false]) {
    it(`ECDSA P-256, RFC 4754 (method 9) both directions: pqgate ${pqInitiates ? 'initiates' : 'responds'}`, () =>
      withPeers(
        { pqInitiates, type: 'ecdsa-p256', impairs: ['omit_v2_notification:SIGNATURE_HASH_ALGORITHMS', 'force_v2_auth_method:ECDSA_SHA2_256_P256'] },
        async (p) => {
          const pq = await establish(p, pqInitiates);
          expect(pq.authLocal).toBe('ecdsa-p256-sha256');
          expect(pq.authRemote).toBe('ecdsa-p256-sha256');
          expect(p.ls.log()).toMatch(/IMPAIR: omitting SIGNATURE_HASH_ALGORITHMS notification/);
          // "signature", not "digital signature": pluto verified an RFC 4754 AUTH from pqgate.
          expect(plutoPeerAuth(p.ls.log())).toBe(`certificate '@${IDS.gw}' and P-256 ECDSA with SHA2_256 signature issued by '${CA_DN}'`);
          const methods = plutoAuthPayloads(p.ls.log());
          expect(methods).toHaveLength(2);
          expect(methods.every((m) => m.method === AUTH_ECDSA_256)).toBe(true);
        },
      ));
  }

  it('libreswan intermediate=yes initiates: pqgate chooses no ADDKE, announces no IKE_INTERMEDIATE; certificate auth succeeds', () =>
    withPeers({ pqInitiates: false, type: 'ecdsa-p256', lsExtra: { intermediate: 'yes' } }, async (p) => {
      // libreswan 5.2 cannot express RFC 9370 additional key exchanges at all:
      for (const ike of [`${LS_IKE}-ke1_dh20`, `${LS_IKE}-addke1_dh20`, `${LS_IKE}-ke1_mlkem768`]) {
        const r = await p.ls.ipsec(['algparse', `ike=${ike}`], { check: false });
        expect(r.stdout + r.stderr).toMatch(/ERROR: IKE proposal contains unexpected '(addke1|ke1)_/);
      }
      const pq = await establish(p, false);
      expect(pq.authRemote).toBe('ecdsa-p256-sha512');
      const log = p.ls.log();
      // pluto offered INTERMEDIATE_EXCHANGE_SUPPORTED (pqgate never sends it here), pqgate did not
      // answer it (no ADDKE chosen): straight to IKE_AUTH.
      expect(log).toMatch(/Notify Message Type: v2N_INTERMEDIATE_EXCHANGE_SUPPORTED/);
      expect(log).toMatch(/\| INTERMEDIATE_EXCHANGE_SUPPORTED neither requested nor accepted/);
      expect(log).toMatch(/processed IKE_SA_INIT response from .* initiating IKE_AUTH/);
      expect(log).not.toMatch(/IKE_INTERMEDIATE request to/);
      expect(plutoPeerAuth(log)).toMatch(/^certificate '@gw\.pqgate\.test' and P-256 ECDSA with SHA2_256 digital signature/);
    }));

  it('libreswan 5.2 intermediate=yes responds: notify exchanged, no IKE_INTERMEDIATE, and pluto still appends IKE_AUTH_MID (AUTH fails)', () =>
    withPeers({ pqInitiates: true, type: 'ecdsa-p256', lsExtra: { intermediate: 'yes' }, debug: 'all crypt' }, async (p) => {
      await p.gw.up('ls');
      await p.ls.waitFor(async () => /authentication failed/.test(p.ls.log()), 20_000, 'pluto to reject the AUTH');
      const log = p.ls.log();
      // Both sides announced RFC 9242 support; pqgate chose the classical proposal and went to IKE_AUTH.
      expect(log).toMatch(/processing IKE_SA_INIT request from .*N\(INTERMEDIATE_EXCHANGE_SUPPORTED\)/);
      expect(log).toMatch(/accepted INTERMEDIATE_EXCHANGE_SUPPORTED notification REQUEST/);
      expect(log).not.toMatch(/received IKE_INTERMEDIATE request/);
      expect(log).toMatch(/responding to IKE_AUTH message \(ID 1\) .* with encrypted notification AUTHENTICATION_FAILED/);
      await p.ls.waitFor(async () => /AUTHENTICATION_FAILED/.test(p.gw.log()), 10_000, 'pqgate to log the AUTHENTICATION_FAILED answer');
      expect((await p.gw.status()).some((s) => s.state === 'ESTABLISHED')).toBe(false);

      // What pluto hashed to verify pqgate's AUTH: RFC 7296 octets + empty
      // IntAuth chains + IKE_AUTH_MID = 1. pqgate's signature is over the RFC
      // 7296 octets alone (RFC 9242 §3.3.2: IntAuth only after IKE_INTERMEDIATE).
      const d = sighashOf(log, false);
      expect(part(d, 'IntAuth_*_I_A')).toHaveLength(0);
      expect(part(d, 'IntAuth_*_R_A')).toHaveLength(0);
      expect(hex(part(d, 'IKE_AUTH_MID'))).toBe('00000001');
      const rfc7296 = concat(part(d, 'first packet'), part(d, 'nonce'), part(d, 'IDHASH'));
      const withMid = concat(rfc7296, part(d, 'IKE_AUTH_MID'));
      expect(hex(sha(d.alg, withMid))).toBe(hex(d.out));
      const sig = plutoEcdsaSignatureAfter(log, d.line);
      const gwCert = readFileSync(p.x.gw.cert, 'utf8');
      expect(ecdsaVerifies(d.alg, rfc7296, gwCert, sig)).toBe(true);
      expect(ecdsaVerifies(d.alg, withMid, gwCert, sig)).toBe(false);
    }));
});

/**
 * Reference measurement without pqgate: two libreswan 5.2 with
 * intermediate=yes run one (empty) IKE_INTERMEDIATE exchange and authenticate
 * with ECDSA certificates. From pluto's dumps (plutodebug "all crypt
 * private") the test recomputes IntAuth_i / IntAuth_r with pqgate's own
 * RFC 9242 code from SK_pi / SK_pr and the logged messages, then checks which
 * order each actual signature covers.
 */
describe.skipIf(!!skip)('libreswan 5.2 IntAuth order in signature AUTH (libreswan <-> libreswan)', () => {
  afterAll(() => cleanupAll());

  it('initiator signs IntAuth_i | IntAuth_r | MID, responder signs IntAuth_r | IntAuth_i | MID', async () => {
    const pair = await createPair({ tag: 'lsls' });
    const work = makeInstanceDir('lscerts');
    let west: Libreswan | undefined;
    let east: Libreswan | undefined;
    try {
      // 'gw' plays the initiating libreswan here.
      const x = makeLibreswanPki(work.dir, 'ecdsa-p256', { gw: 'west.libreswan.test', ls: 'east.libreswan.test' });
      const common = { ike: LS_IKE, esp: 'aes_gcm256', extra: { intermediate: 'yes' } };
      const debug = 'all crypt private';
      east = await Libreswan.start({
        ns: pair.right,
        label: 'east',
        debug,
        nss: nssImports(x, 'ls'),
        conns: [certConn(x, { name: 'c', left: pair.rightAddr, right: pair.leftAddr, leftsubnet: pair.rightInner.net, rightsubnet: pair.leftInner.net, ...common }, 'ls')],
      });
      west = await Libreswan.start({
        ns: pair.left,
        label: 'west',
        debug,
        nss: nssImports(x, 'gw'),
        conns: [certConn(x, { name: 'c', left: pair.leftAddr, right: pair.rightAddr, leftsubnet: pair.leftInner.net, rightsubnet: pair.rightInner.net, ...common }, 'gw')],
      });
      void west.up('c');
      await west.waitFor(async () => (await west!.establishedIke('c')).length > 0, 20_000, 'west ESTABLISHED_IKE_SA');
      await east.waitFor(async () => (await east!.establishedIke('c')).length > 0, 10_000, 'east ESTABLISHED_IKE_SA');
      const wlog = west.log();
      const elog = east.log();
      expect(wlog).toMatch(/sent IKE_INTERMEDIATE request/);
      expect(elog).toMatch(/responder processed IKE_INTERMEDIATE/);

      // IntAuth chains recomputed from SK_pi / SK_pr and the logged A|P of
      // each IKE_INTERMEDIATE message (RFC 9242 §3.3.1; one exchange, so N = 1).
      const prf = createPrf(PRF_HMAC_SHA2_384);
      const steps = plutoDigests(wlog, 'prf(IntAuth_*_A [| IntAuth_*_P])', 'PRF');
      const step = (response: boolean): { mine: Uint8Array; pluto: Uint8Array } => {
        const s = steps.find((d) => ((ikeFlags(part(d, 'Adjusted Message Header')) & FLAG_R) !== 0) === response);
        if (!s) throw new Error(`no IntAuth computation for the IKE_INTERMEDIATE ${response ? 'response' : 'request'}`);
        const a = concat(part(s, 'Adjusted Message Header'), part(s, 'Unencrypted payloads (if any)'), part(s, 'Adjusted Encrypted (SK) Header'));
        const mine = intAuthStep(prf, plutoKey(wlog, response ? 'SK_pr' : 'SK_pi'), undefined, a, part(s, 'Inner payloads (decrypted)'));
        return { mine, pluto: s.out };
      };
      const ia = step(false);
      const ra = step(true);
      expect(hex(ia.mine)).toBe(hex(ia.pluto)); // pqgate's IntAuth formula = libreswan's
      expect(hex(ra.mine)).toBe(hex(ra.pluto));
      const intAuthI = ia.mine;
      const intAuthR = ra.mine;
      const mid = u32be(2); // IKE_AUTH follows IKE_INTERMEDIATE #1

      const check = (log: string, ofResponder: boolean, signerCert: string): { iFirst: boolean; rFirst: boolean } => {
        const d = sighashOf(log, ofResponder);
        const base = concat(part(d, 'first packet'), part(d, 'nonce'), part(d, 'IDHASH'));
        expect(hex(part(d, 'IKE_AUTH_MID'))).toBe(hex(mid));
        const sig = plutoEcdsaSignatureAfter(log, d.line);
        const pem = readFileSync(signerCert, 'utf8');
        return {
          iFirst: ecdsaVerifies(d.alg, concat(base, intAuthI, intAuthR, mid), pem, sig),
          rFirst: ecdsaVerifies(d.alg, concat(base, intAuthR, intAuthI, mid), pem, sig),
        };
      };
      // The initiator's (west's) signature, as east verified it, and the responder's (east's), as west verified it.
      expect(check(elog, false, x.gw.cert)).toEqual({ iFirst: true, rFirst: false });
      expect(check(wlog, true, x.ls.cert)).toEqual({ iFirst: false, rFirst: true });
    } catch (e) {
      (e as Error).message += `\n--- west ---\n${west ? plutoSummary(west.log()) : ''}\n--- east ---\n${east ? plutoSummary(east.log()) : ''}`;
      throw e;
    } finally {
      await west?.stop();
      await east?.stop();
      work.release();
      await pair.destroy();
    }
  });
});
