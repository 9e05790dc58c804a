/**
 * Certificate authentication (RFC 7296 §2.15, RFC 7427 digital signatures)
 * between pqgate and Debian's strongSwan 6.1, both roles, with the hybrid
 * x25519 + ML-KEM-768 exchange (so the RFC 9242 IntAuth is inside the signed
 * octets of both AUTH payloads):
 *  - certificates made by strongSwan's own `pki` tool (ECDSA P-256 CA);
 *  - certificates made by pqgate's `pqgate-pki` (Ed25519 and RSA-PSS CA/leaves).
 * The IKE SA must be ESTABLISHED on both sides, strongSwan must show the
 * peer's identity from the certificate, and pqgate's status must name the
 * signature schemes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cleanupAll, createPair, interopSkipReason, sweepStale, type Pair } from './lib/netns.js';
import { makeInstanceDir, peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { Strongswan, type SwanConnection } from './lib/strongswan.js';
import { Pqgate, REPO } from './lib/pqgate.js';

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] pqgate-certs skipped: ${skip}`);

const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const PQ_ID = 'gw.pqgate.test';
const SS_ID = 'peer.strongswan.test';
const PKI = join(REPO, 'dist', 'firmware', 'pki', 'cli.js');

interface Pki {
  caPem: string;
  gwKey: string;
  gwCert: string;
  ssKey: string;
  ssCert: string;
}

function ssConnection(pair: Pair, pqInitiates: boolean): SwanConnection {
  return {
    name: 'c',
    localAddrs: [pair.rightAddr],
    remoteAddrs: [pqInitiates ? '%any' : pair.leftAddr],
    proposals: [HYBRID],
    encap: true,
    local: { auth: 'pubkey', id: SS_ID, certs: ['ss.pem'] },
    remote: { auth: 'pubkey', id: PQ_ID, cacerts: ['ca.pem'] },
    children: [{ name: 'k', localTs: [pair.rightInner.net], remoteTs: [pair.leftInner.net], espProposals: ['aes256gcm16'] }],
  };
}

/** Certificates from strongSwan's pki, run inside the sid root. */
async function strongswanPki(ss: Strongswan): Promise<Pki> {
  const script = [
    'set -e',
    'cd /etc/swanctl',
    'mkdir -p /etc/swanctl/gw',
    'pki --gen --type ecdsa --size 256 --outform pem > gw/ca.key',
    'pki --self --ca --in gw/ca.key --dn "C=CH, O=pqgate, CN=Interop CA" --outform pem > x509ca/ca.pem',
    'pki --gen --type ecdsa --size 256 --outform pem > ecdsa/ss.key',
    `pki --issue --cacert x509ca/ca.pem --cakey gw/ca.key --type priv --in ecdsa/ss.key --dn "C=CH, O=pqgate, CN=${SS_ID}" --san ${SS_ID} --outform pem > x509/ss.pem`,
    'pki --gen --type ecdsa --size 256 --outform pem > gw/gw.key',
    `pki --issue --cacert x509ca/ca.pem --cakey gw/ca.key --type priv --in gw/gw.key --dn "C=CH, O=pqgate, CN=${PQ_ID}" --san ${PQ_ID} --outform pem > gw/gw.pem`,
  ].join('\n');
  await ss.exec('sh', ['-c', script]);
  const f = (p: string) => readFileSync(join(ss.dir, 'swanctl', p), 'utf8');
  return { caPem: f('x509ca/ca.pem'), gwKey: f('gw/gw.key'), gwCert: f('gw/gw.pem'), ssKey: f('ecdsa/ss.key'), ssCert: f('x509/ss.pem') };
}

/** Certificates from pqgate's own pki tool. */
function pqgatePki(dir: string, type: 'ed25519' | 'rsa3072'): Pki & { ssKeyDir: string } {
  const run = (...a: string[]) => execFileSync('node', [PKI, ...a], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = (n: string) => join(dir, n);
  run('gen', '--type', type, '--out', p('ca.key'));
  run('self', '--ca', '--key', p('ca.key'), '--dn', 'C=CH, O=pqgate, CN=pqgate Test CA', ...(type === 'rsa3072' ? ['--rsa-pss'] : []), '--out', p('ca.pem'));
  for (const [n, id] of [['gw', PQ_ID], ['ss', SS_ID]] as const) {
    run('gen', '--type', type, '--out', p(`${n}.key`));
    run('issue', '--cacert', p('ca.pem'), '--cakey', p('ca.key'), '--key', p(`${n}.key`), '--dn', `C=CH, O=pqgate, CN=${id}`, '--san', id, ...(type === 'rsa3072' ? ['--rsa-pss'] : []), '--out', p(`${n}.pem`));
  }
  const r = (n: string) => readFileSync(p(n), 'utf8');
  return { caPem: r('ca.pem'), gwKey: r('gw.key'), gwCert: r('gw.pem'), ssKey: r('ss.key'), ssCert: r('ss.pem'), ssKeyDir: type === 'ed25519' ? 'pkcs8' : 'pkcs8' };
}

describe.skipIf(!!skip)('certificate authentication: pqgate <-> strongSwan 6.1', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => cleanupAll());

  async function run(pqInitiates: boolean, source: 'strongswan-pki' | 'pqgate-ed25519' | 'pqgate-rsa-pss', expectScheme: RegExp, expectPeerScheme = expectScheme): Promise<void> {
    const pair = await createPair({ tag: `c${pqInitiates ? 'i' : 'r'}${source.length}` });
    const work = makeInstanceDir('certs');
    let ss: Strongswan | undefined;
    let gw: Pqgate | undefined;
    try {
      let pki: Pki;
      const files: Record<string, string> = {};
      if (source === 'strongswan-pki') {
        ss = await Strongswan.start({ ns: pair.right, label: 'ss', connections: [ssConnection(pair, pqInitiates)], load: false });
        pki = await strongswanPki(ss);
      } else {
        const p = pqgatePki(work.dir, source === 'pqgate-ed25519' ? 'ed25519' : 'rsa3072');
        pki = p;
        files['x509ca/ca.pem'] = p.caPem;
        files['x509/ss.pem'] = p.ssCert;
        files[`${p.ssKeyDir}/ss.key`] = p.ssKey;
        ss = await Strongswan.start({ ns: pair.right, label: 'ss', connections: [ssConnection(pair, pqInitiates)], files, load: false });
      }
      await ss.loadAll();
      const gwDir = join(work.dir, 'gw');
      mkdirSync(gwDir, { recursive: true });
      writeFileSync(join(gwDir, 'ca.pem'), pki.caPem);
      writeFileSync(join(gwDir, 'gw.pem'), pki.gwCert);
      writeFileSync(join(gwDir, 'gw.key'), pki.gwKey, { mode: 0o600 });
      gw = await Pqgate.start({
        ns: pair.left,
        config: {
          listen: [pair.leftAddr],
          tunnels: [
            {
              name: 'ss',
              local_addr: pair.leftAddr,
              ...(pqInitiates ? { remote_addr: pair.rightAddr } : {}),
              local_id: PQ_ID,
              remote_id: SS_ID,
              auth: 'pubkey',
              cert: join(gwDir, 'gw.pem'),
              key: join(gwDir, 'gw.key'),
              ca_certs: [join(gwDir, 'ca.pem')],
              proposals: [HYBRID],
              esp_proposals: ['aes256gcm16'],
              local_ts: [pair.leftInner.net],
              remote_ts: [pair.rightInner.net],
            },
          ],
        },
      });
      if (pqInitiates) await gw.up('ss');
      else await ss.initiate('k', 'c');
      const sa = await ss.waitEstablished('c', 'k', 20_000);
      expect(sa.remoteId).toBe(PQ_ID);
      expect(sa.additionalKe).toEqual(['ML_KEM_768']);
      const pq = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1);
      expect(pq.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
      expect(pq.authRemote).toMatch(expectPeerScheme);
      expect(pq.authLocal).toMatch(expectScheme);
      expect(pq.remoteId).toBe(SS_ID);
    } catch (e) {
      (e as Error).message += `\n--- charon ---\n${ss?.log().split('\n').slice(-40).join('\n')}\n--- pqgate ---\n${gw?.log().split('\n').slice(-40).join('\n')}`;
      throw e;
    } finally {
      await ss?.stop();
      await gw?.stop();
      work.release();
      await pair.destroy();
    }
  }

  for (const pqInitiates of [true, false]) {
    const role = pqInitiates ? 'initiates' : 'responds';
    it(`certificates from strongSwan's pki (ECDSA P-256): pqgate ${role}`, () => run(pqInitiates, 'strongswan-pki', /^ecdsa-p256/));
    it(`certificates from pqgate-pki (Ed25519): pqgate ${role}`, () => run(pqInitiates, 'pqgate-ed25519', /^ed25519$/));
    // strongSwan signs with RSA PKCS#1 v1.5 by default (its rsa/pss choice is per-connection); pqgate signs with PSS.
    it(`certificates from pqgate-pki (RSA-PSS): pqgate ${role}`, () => run(pqInitiates, 'pqgate-rsa-pss', /^rsa-pss-sha256$/, /^rsa-pkcs1-sha256$/));
  }
});
