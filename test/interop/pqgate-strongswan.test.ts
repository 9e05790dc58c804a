/**
 * pqgate against Debian's strongSwan 6.1 (sid, ML-KEM via OpenSSL 3.6;
 * kernel-libipsec, encap = yes) in network namespaces, both roles:
 *   x25519 + ML-KEM-768; ECP-384 + ML-KEM-1024 (Cisco 8000 / Cloudflare);
 *   ECP-256 + ML-KEM-768 + ML-KEM-1024 (two ADDKEs); an optional round the
 *   peer declines; classical x25519; fragmentation forced at 576 bytes;
 *   a NAT (nftables masquerade) between the peers.
 * A case passes only when strongSwan's own `swanctl --list-sas` shows the IKE
 * SA ESTABLISHED with the expected methods and pqgate's `status --json`
 * agrees (same SPIs, same methods, Child SA SPIs crossed); tshark, given
 * pqgate's key log, decrypts the IKE_AUTH exchange.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cleanupAll, createPair, interopSkipReason, sweepStale, type Pair } from './lib/netns.js';
import { makeInstanceDir, peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { pskConnections, Strongswan, type IkeSa } from './lib/strongswan.js';
import { Capture, ikeDecryptionReport } from './lib/tshark.js';
import { Pqgate } from './lib/pqgate.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

const PSK = 'pqgate-interop-psk-0123456789';
const PQ_ID = 'gw.pqgate.test';
const SS_ID = 'peer.strongswan.test';

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] pqgate-strongswan skipped: ${skip}`);

interface Case {
  name: string;
  /** pqgate's IKE proposals and strongSwan's (strongSwan syntax on both sides). */
  pq: string[];
  ss: string[];
  /** Expected key exchanges in order, as pqgate names them. */
  kes: string[];
  fragmentSize?: number;
  nat?: boolean;
}

const CASES: Case[] = [
  { name: 'x25519 + ML-KEM-768', pq: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], ss: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], kes: ['CURVE_25519', 'ML_KEM_768'] },
  { name: 'ECP-384 + ML-KEM-1024 (Cisco 8000 / Cloudflare)', pq: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'], ss: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'], kes: ['ECP_384', 'ML_KEM_1024'] },
  { name: 'ECP-256 + ML-KEM-768 + ML-KEM-1024 (two ADDKEs)', pq: ['aes256gcm16-prfsha256-ecp256-ke1_mlkem768-ke2_mlkem1024'], ss: ['aes256gcm16-prfsha256-ecp256-ke1_mlkem768-ke2_mlkem1024'], kes: ['ECP_256', 'ML_KEM_768', 'ML_KEM_1024'] },
  { name: 'optional ML-KEM round declined by a classical peer', pq: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none'], ss: ['aes256gcm16-prfsha384-x25519'], kes: ['CURVE_25519'] },
  { name: 'classical x25519 (AES-CBC + SHA-256)', pq: ['aes256-sha256-x25519'], ss: ['aes256-sha256-x25519'], kes: ['CURVE_25519'] },
  { name: 'fragmentation forced at 576 bytes', pq: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], ss: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], kes: ['CURVE_25519', 'ML_KEM_768'], fragmentSize: 576 },
  { name: 'through a NAT (nftables masquerade)', pq: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768'], ss: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768'], kes: ['ECP_384', 'ML_KEM_768'], nat: true },
];

/** strongSwan's view of the key exchanges, in pqgate's notation. */
function ssKes(sa: IkeSa): string[] {
  return [sa.dhGroup, ...sa.additionalKe].filter((x): x is string => !!x);
}

function expectAgree(ss: IkeSa, pq: IkeSaStatus, c: Case): void {
  expect(ss.state).toBe('ESTABLISHED');
  expect(pq.state).toBe('ESTABLISHED');
  expect(ssKes(ss)).toEqual(c.kes);
  expect(pq.keyExchanges).toEqual(c.kes);
  expect(pq.spiI).toBe(ss.spiI);
  expect(pq.spiR).toBe(ss.spiR);
  expect(pq.postQuantum).toBe(c.kes.length > 1 ? c.kes.slice(1).join(' + ') : null);
  // The first Child SA: SPIs crossed.
  expect(ss.children).toHaveLength(1);
  expect(pq.children).toHaveLength(1);
  expect(parseInt(pq.children[0]!.spiIn, 16)).toBe(parseInt(ss.children[0]!.spiOut, 16));
  expect(parseInt(pq.children[0]!.spiOut, 16)).toBe(parseInt(ss.children[0]!.spiIn, 16));
  if (c.fragmentSize) expect(pq.fragmentation).toBe(true);
  expect(pq.encap).toBe(true); // strongSwan encap = yes (and the NAT case)
}

describe.skipIf(!!skip)('pqgate <-> strongSwan 6.1', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => {
    cleanupAll();
  });

  async function setup(c: Case, pqInitiates: boolean): Promise<{ pair: Pair; gw: Pqgate; ss: Strongswan; cap: Capture }> {
    const pair = await createPair({ tag: pqInitiates ? 'pi' : 'pr', nat: c.nat });
    // createPair puts `right` behind the NAT. The initiator must be the one
    // behind it (a masquerade NAT forwards nothing inbound), so with a NAT
    // pqgate sits on the side that initiates; without one, pqgate is `left`.
    const pqRight = !!c.nat && pqInitiates;
    const gwNs = pqRight ? pair.right : pair.left;
    const ssNs = pqRight ? pair.left : pair.right;
    const gwAddr = pqRight ? pair.rightAddr : pair.leftAddr;
    const ssAddr = pqRight ? pair.leftAddr : pair.rightAddr;
    const ssSeenByGw = pqRight ? pair.leftAddr : pair.rightSeenAs;
    const gwNet = pqRight ? pair.rightInner.net : pair.leftInner.net;
    const ssNet = pqRight ? pair.leftInner.net : pair.rightInner.net;
    const capDir = makeInstanceDir('cap');
    const cap = await Capture.start(gwNs, pair.dev, join(capDir.dir, 'ike.pcap'));
    const gw = await Pqgate.start({
      ns: gwNs,
      label: 'gw',
      config: {
        listen: [gwAddr],
        tunnels: [
          {
            name: 'ss',
            local_addr: gwAddr,
            ...(pqInitiates ? { remote_addr: ssSeenByGw } : {}),
            local_id: PQ_ID,
            remote_id: SS_ID,
            auth: 'psk',
            psk: PSK,
            proposals: c.pq,
            esp_proposals: ['aes256gcm16'],
            local_ts: [gwNet],
            remote_ts: [ssNet],
            fragmentation: 'yes',
            ...(c.fragmentSize ? { fragment_size: c.fragmentSize } : {}),
            start_action: 'none',
          },
        ],
      },
    });
    const conn = pskConnections(ssAddr, pqInitiates ? '%any' : gwAddr, SS_ID, PQ_ID, { proposals: c.ss, psk: PSK, localTs: [ssNet], remoteTs: [gwNet] });
    const ss = await Strongswan.start({ ns: ssNs, label: 'ss', ...conn, ...(c.fragmentSize ? { charon: { fragmentSize: c.fragmentSize } } : {}) });
    return { pair, gw, ss, cap };
  }

  for (const c of CASES) {
    for (const pqInitiates of [true, false]) {
      it(`${c.name}: pqgate ${pqInitiates ? 'initiates' : 'responds'}`, async () => {
        const { pair, gw, ss, cap } = await setup(c, pqInitiates);
        try {
          if (pqInitiates) await gw.up('ss');
          else await ss.initiate('k', 'c');
          const ssSa = await ss.waitEstablished('c', 'k', 20_000);
          const pqSa = await gw.waitFor((s) => s.state === 'ESTABLISHED' && s.children.length === 1, 10_000);
          expectAgree(ssSa, pqSa, c);
          if (c.nat) {
            // The initiator sits behind the NAT; the responder sees it as remote NAT.
            expect(pqInitiates ? pqSa.natLocal : pqSa.natRemote).toBe(true);
            expect(pqInitiates ? ssSa.natRemote : ssSa.natLocal).toBe(true);
          }
          // An independent check of pqgate's key derivation: tshark decrypts IKE_AUTH with pqgate's key log.
          await cap.stop();
          const report = await ikeDecryptionReport(cap.file, [gw.ikeKeylog()]);
          expect(report.ikeAuth.length, JSON.stringify(report.ikeAuth)).toBeGreaterThanOrEqual(2);
          expect(report.allIkeAuthDecrypted, JSON.stringify(report.ikeAuth)).toBe(true);
        } finally {
          await cap.stop().catch(() => undefined);
          await ss.stop();
          await gw.stop();
          await pair.destroy();
        }
      });
    }
  }
});
