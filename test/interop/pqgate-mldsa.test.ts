/**
 * ★ Experimental fully post-quantum IKEv2 between two pqgate daemons in
 * network namespaces: ECP-384 + ML-KEM-1024 key exchange and ML-DSA-65
 * certificate authentication (draft-ietf-ipsecme-ikev2-pqc-auth) with
 * certificates made by pqgate's own pki tool, plus full-transcript
 * authentication (draft-ietf-ipsecme-ikev2-downgrade-prevention) required on
 * both sides. No other implementation on this machine speaks ML-DSA in IKE
 * (strongSwan 6.1 here has no ML-DSA), so this is pqgate <-> pqgate only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cleanupAll, createPair, interopSkipReason, sweepStale } from './lib/netns.js';
import { makeInstanceDir, sweepStaleDirs } from './lib/rootfs.js';
import { Pqgate, REPO } from './lib/pqgate.js';

const skip = interopSkipReason();
const PKI = join(REPO, 'dist', 'firmware', 'pki', 'cli.js');

describe.skipIf(!!skip)('pqgate <-> pqgate: ML-KEM-1024 + ML-DSA-65 (experimental)', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => cleanupAll());

  it('establishes with ML-DSA-65 certificates (PQ-only signature policy), ML-KEM-1024 and required full-transcript AUTH', async () => {
    const pair = await createPair({ tag: 'md' });
    const work = makeInstanceDir('mldsa');
    const gws: Pqgate[] = [];
    try {
      const p = (n: string) => join(work.dir, n);
      const run = (...a: string[]) => execFileSync('node', [PKI, ...a], { stdio: ['ignore', 'pipe', 'pipe'] });
      run('gen', '--type', 'ml-dsa-65', '--out', p('ca.key'));
      run('self', '--ca', '--key', p('ca.key'), '--dn', 'C=CH, O=pqgate, CN=pqgate PQ CA', '--out', p('ca.pem'));
      for (const n of ['left', 'right']) {
        run('gen', '--type', 'ml-dsa-65', '--out', p(`${n}.key`));
        run('issue', '--cacert', p('ca.pem'), '--cakey', p('ca.key'), '--key', p(`${n}.key`), '--dn', `C=CH, O=pqgate, CN=${n}.pqgate.test`, '--san', `${n}.pqgate.test`, '--out', p(`${n}.pem`));
      }
      const tunnel = (me: 'left' | 'right', addr: string, peer?: string) => ({
        listen: [addr],
        tunnels: [
          {
            name: 'pq',
            local_addr: addr,
            ...(peer ? { remote_addr: peer } : {}),
            local_id: `${me}.pqgate.test`,
            remote_id: `${me === 'left' ? 'right' : 'left'}.pqgate.test`,
            auth: 'pubkey',
            cert: p(`${me}.pem`),
            key: p(`${me}.key`),
            ca_certs: [p('ca.pem')],
            allowed_schemes: ['ml-dsa-65'],
            full_transcript_auth: 'required',
            proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'],
            esp_proposals: ['aes256gcm16'],
            local_ts: [me === 'left' ? pair.leftInner.net : pair.rightInner.net],
            remote_ts: [me === 'left' ? pair.rightInner.net : pair.leftInner.net],
            start_action: 'none',
          },
        ],
        // IKE only here: the two daemons share no TUN/data-plane setup in this test.
        data_plane: 'recording',
      });
      const right = await Pqgate.start({ ns: pair.right, label: 'right', config: tunnel('right', pair.rightAddr) });
      gws.push(right);
      const left = await Pqgate.start({ ns: pair.left, label: 'left', config: tunnel('left', pair.leftAddr, pair.rightAddr) });
      gws.push(left);
      await left.up('pq');
      const a = await left.waitFor((s) => s.state === 'ESTABLISHED', 20_000);
      const b = await right.waitFor((s) => s.state === 'ESTABLISHED', 10_000);
      for (const s of [a, b]) {
        expect(s.keyExchanges).toEqual(['ECP_384', 'ML_KEM_1024']);
        expect(s.postQuantum).toBe('ML_KEM_1024');
        expect(s.authLocal).toBe('ml-dsa-65');
        expect(s.authRemote).toBe('ml-dsa-65');
        expect(s.children).toHaveLength(1);
      }
      expect(a.spiI).toBe(b.spiI);
    } finally {
      for (const g of gws) await g.stop();
      work.release();
      await pair.destroy();
    }
  }, 90_000);
});
