/**
 * Classical IKEv2 between pqgate and legacy peers, both roles:
 *  - Debian bookworm's strongSwan 5.9.8 (no RFC 9370): pqgate offers its
 *    hybrid proposal first and a classical one after it (5.9.8 refuses a
 *    lone `...-ke1_mlkem768-ke1_none` proposal), and must land on the
 *    classical one;
 *  - Debian trixie's libreswan 5.2 (IKE_INTERMEDIATE but no ML-KEM, no ESP on
 *    this kernel): the IKE SA is established; the Child SA cannot be
 *    installed by libreswan (it answers TEMPORARY_FAILURE as responder), and
 *    pqgate keeps the IKE SA up without a Child SA, as RFC 7296 §1.2 says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addInnerAddresses, cleanupAll, createPair, interopSkipReason, sweepStale } from './lib/netns.js';
import { peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { pskConnections, Strongswan } from './lib/strongswan.js';
import { Libreswan } from './lib/libreswan.js';
import { Pqgate } from './lib/pqgate.js';

const PSK = 'pqgate-interop-psk-0123456789';
const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const CLASSIC = 'aes256gcm16-prfsha384-x25519';

const skip = interopSkipReason() ?? peerMissingReason('bookworm-strongswan') ?? peerMissingReason('trixie-libreswan');
if (skip) console.warn(`[interop] pqgate-legacy skipped: ${skip}`);

function gwConfig(addr: string, remote: string | undefined, lnet: string, rnet: string, proposals: string[], remoteId: string) {
  return {
    listen: [addr],
    tunnels: [
      {
        name: 'legacy',
        local_addr: addr,
        ...(remote ? { remote_addr: remote } : {}),
        local_id: 'gw.pqgate.test',
        remote_id: remoteId,
        auth: 'psk',
        psk: PSK,
        proposals,
        esp_proposals: ['aes256gcm16'],
        local_ts: [lnet],
        remote_ts: [rnet],
        start_action: 'none',
      },
    ],
  };
}

describe.skipIf(!!skip)('pqgate <-> legacy peers (classical IKEv2)', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => cleanupAll());

  for (const pqInitiates of [true, false]) {
    it(`strongSwan 5.9.8: pqgate ${pqInitiates ? 'initiates' : 'responds'} with hybrid + classical proposals`, async () => {
      const pair = await createPair({ tag: pqInitiates ? 'bi' : 'br' });
      const gw = await Pqgate.start({
        ns: pair.left,
        config: gwConfig(pair.leftAddr, pqInitiates ? pair.rightAddr : undefined, pair.leftInner.net, pair.rightInner.net, [HYBRID, CLASSIC], 'old.strongswan.test'),
      });
      const conn = pskConnections(pair.rightAddr, pqInitiates ? '%any' : pair.leftAddr, 'old.strongswan.test', 'gw.pqgate.test', {
        proposals: [CLASSIC],
        psk: PSK,
        localTs: [pair.rightInner.net],
        remoteTs: [pair.leftInner.net],
      });
      // 5.9.8's kernel-libipsec routes need a local address inside its selectors.
      await addInnerAddresses(pair);
      const ss = await Strongswan.start({ ns: pair.right, peer: 'bookworm-strongswan', label: 'old', ...conn });
      try {
        expect(ss.version).toMatch(/^5\.9\.8/);
        if (pqInitiates) await gw.up('legacy');
        else await ss.initiate('k', 'c');
        const ssSa = await ss.waitEstablished('c', 'k', 20_000);
        const pq = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1);
        expect(ssSa.dhGroup).toBe('CURVE_25519');
        expect(ssSa.additionalKe).toEqual([]);
        expect(pq.keyExchanges).toEqual(['CURVE_25519']);
        expect(pq.postQuantum).toBeNull();
        expect(pq.spiI).toBe(ssSa.spiI);
        expect(pq.spiR).toBe(ssSa.spiR);
        expect(parseInt(pq.children[0]!.spiOut, 16)).toBe(parseInt(ssSa.children[0]!.spiIn, 16));
      } catch (e) {
        (e as Error).message += `\n--- charon ---\n${ss.log().split('\n').slice(-30).join('\n')}\n--- pqgate ---\n${gw.log().split('\n').slice(-30).join('\n')}`;
        throw e;
      } finally {
        await ss.stop();
        await gw.stop();
        await pair.destroy();
      }
    });
  }

  for (const pqInitiates of [true, false]) {
    it(`libreswan 5.2: pqgate ${pqInitiates ? 'initiates' : 'responds'} (IKE SA; libreswan cannot install ESP here)`, async () => {
      const pair = await createPair({ tag: pqInitiates ? 'li' : 'lr' });
      const gw = await Pqgate.start({
        ns: pair.left,
        config: gwConfig(pair.leftAddr, pqInitiates ? pair.rightAddr : undefined, pair.leftInner.net, pair.rightInner.net, [HYBRID, CLASSIC], 'ls.libreswan.test'),
      });
      const ls = await Libreswan.start({
        ns: pair.right,
        conns: [
          {
            name: 'c',
            left: pair.rightAddr,
            right: pqInitiates ? '%any' : pair.leftAddr,
            leftid: '@ls.libreswan.test',
            rightid: '@gw.pqgate.test',
            leftsubnet: pair.rightInner.net,
            rightsubnet: pair.leftInner.net,
            ike: 'aes_gcm256-sha2_384-dh31',
            esp: 'aes_gcm256',
            encapsulation: 'yes',
          },
        ],
        secrets: [{ ids: ['@ls.libreswan.test', '@gw.pqgate.test'], psk: PSK }],
      });
      try {
        if (pqInitiates) await gw.up('legacy');
        else void ls.up('c');
        await ls.waitFor(async () => (await ls.establishedIke('c')).length > 0, 20_000, 'libreswan IKE SA established');
        const pq = await gw.waitFor((s) => s.state === 'ESTABLISHED');
        expect(pq.keyExchanges).toEqual(['CURVE_25519']);
        expect(pq.encr).toBe('AES_GCM_16_256');
        expect(pq.prf).toBe('PRF_HMAC_SHA2_384');
        const states = await ls.showStates();
        expect(states.some((s) => /ESTABLISHED_IKE_SA/.test(s.state))).toBe(true);
        if (pqInitiates) {
          // libreswan as responder refuses the Child SA it cannot install; the IKE SA stays.
          expect(pq.children).toHaveLength(0);
        }
      } finally {
        await ls.stop();
        await gw.stop();
        await pair.destroy();
      }
    });
  }
});
