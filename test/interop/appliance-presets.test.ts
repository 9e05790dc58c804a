/**
 * Each vendor preset (firmware/presets/*.json) brings a tunnel up against
 * strongSwan 6.1 configured the way that vendor's peer would be
 * (/work/shared/spec/vendor-semantics.md):
 *
 *   cloudflare   Cloudflare's IPsec edge: responder only, PSK, remote ID =
 *                its anycast address, our FQDN identity
 *                <tunnel_id>.<account_id>.ipsec.cloudflare.com, DH 20 with
 *                ML-KEM-768 or -1024 in ADDKE1 (768 preferred), AES-GCM,
 *                no ESN, anti-replay off, 0.0.0.0/0 selectors (route-based)
 *   cisco-8000   IOS XE 26.1 `pqc mlkem1024` (ML-KEM-1024 only), group 20,
 *                PFS group 20 on the IPsec profile, VTI (0/0), DPD 10 s
 *   fortios      FortiOS 7.6.6 `addke1` ML-KEM-768, and a second box with
 *                ML-KEM-1024; phase 2 AES-GCM + PFS group 20, replay off
 *   strongswan   a swanctl peer with x25519 + ML-KEM-768 that initiates;
 *                pqgate responds, selectors overridden per site
 *
 * The tunnel is created the way a user would: the preset through the
 * control API (config.tunnel.put with preset and params) on a running
 * appliance (`pqgate daemon --db`, from dist/). A case passes when
 * strongSwan's `swanctl --list-sas` shows the IKE SA ESTABLISHED with the
 * expected key exchanges and an INSTALLED Child SA, and pqgate agrees (same
 * SPIs, same methods, post-quantum field, fragmentation on), and a Child
 * SA rekey succeeds the way that peer wants it (PFS group 20 for Cisco and
 * FortiOS, whose samples set `set pfs group20` / phase 2 `dhgrp 20`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, createPair, interopSkipReason, sweepStale, type Pair } from './lib/netns.js';
import { peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { Strongswan, type IkeSa, type SwanConnection } from './lib/strongswan.js';
import { ApplianceGate, up } from '../appliance/gate.js';

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] appliance-presets skipped: ${skip}`);

const PSK = 'appliance-preset-psk-0123456789';
const TUNNEL_ID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const ACCOUNT_ID = '0123456789abcdef0123456789abcdef';
const CF_FQDN = `${TUNNEL_ID}.${ACCOUNT_ID}.ipsec.cloudflare.com`;

interface Case {
  name: string;
  preset: 'cloudflare' | 'cisco-8000' | 'fortios' | 'strongswan';
  /** The tunnel fields the user gives on top of the preset. */
  tunnel: (p: Pair) => Record<string, unknown>;
  params?: Record<string, string>;
  /** strongSwan as that vendor's peer. */
  peer: (p: Pair) => SwanConnection;
  /** Who initiates: pqgate (the preset's start_action) or strongSwan. */
  ssInitiates?: boolean;
  kes: string[];
  /** Key exchanges of a rekeyed Child SA (PFS). */
  rekeyKes: string[];
  /** Fields the preset must have put in pqgate's tunnel. */
  expectDoc: Record<string, unknown>;
}

const ANY = ['0.0.0.0/0'];

const CASES: Case[] = [
  {
    name: 'cloudflare: DH 20 + ML-KEM-768 (1024 accepted), FQDN identity, anti-replay off, 0/0 route-based',
    preset: 'cloudflare',
    params: { tunnel_id: TUNNEL_ID, account_id: ACCOUNT_ID },
    tunnel: (p) => ({ name: 'cf1', local_addr: p.leftAddr, remote_addr: p.rightAddr, inside_addr: '203.0.113.9/31', psk: PSK }),
    peer: (p) => ({
      name: 'cloudflare',
      localAddrs: [p.rightAddr],
      remoteAddrs: [p.leftAddr],
      proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024', 'aes128gcm16-prfsha256-ecp384-ke1_mlkem768-ke1_mlkem1024'],
      fragmentation: 'yes',
      local: { auth: 'psk', id: p.rightAddr },
      remote: { auth: 'psk', id: CF_FQDN },
      children: [{ name: 'cf', localTs: ANY, remoteTs: ANY, espProposals: ['aes256gcm16', 'aes128gcm16'], extra: { replay_window: '0' } }],
    }),
    kes: ['ECP_384', 'ML_KEM_768'],
    rekeyKes: [],
    expectDoc: { local_id: `fqdn:${CF_FQDN}`, replay_window: 0, mss: 1360, mode: 'route', start_action: 'start', local_ts: ANY, remote_ts: ANY },
  },
  {
    name: 'cisco-8000: DH 20 + ML-KEM-1024 only, PFS group 20, VTI 0/0, DPD 10 s',
    preset: 'cisco-8000',
    tunnel: (p) => ({ name: 'c8k', local_addr: p.leftAddr, remote_addr: p.rightAddr, inside_addr: '203.0.113.21/31', psk: PSK }),
    peer: (p) => ({
      name: 'cisco',
      localAddrs: [p.rightAddr],
      remoteAddrs: [p.leftAddr],
      proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'],
      rekeyTime: '24h',
      dpdDelay: '10s',
      local: { auth: 'psk', id: p.rightAddr },
      remote: { auth: 'psk', id: p.leftAddr },
      children: [{ name: 'vti', localTs: ANY, remoteTs: ANY, espProposals: ['aes256gcm16-ecp384'], rekeyTime: '1h', extra: { replay_window: '0' } }],
    }),
    kes: ['ECP_384', 'ML_KEM_1024'],
    rekeyKes: ['ECP_384'],
    expectDoc: { esp_proposals: ['aes256gcm16-ecp384'], dpd_delay: 10, child_rekey_time: 3600, proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'] },
  },
  {
    name: 'fortios (addke1 ML-KEM-768): phase 2 AES-GCM + PFS group 20, replay off',
    preset: 'fortios',
    tunnel: (p) => ({ name: 'fgt', local_addr: p.leftAddr, remote_addr: p.rightAddr, inside_addr: '203.0.113.31/31', psk: PSK }),
    peer: (p) => fortigate(p, 'mlkem768'),
    kes: ['ECP_384', 'ML_KEM_768'],
    rekeyKes: ['ECP_384'],
    expectDoc: { esp_proposals: ['aes256gcm16-ecp384'], rekey_time: 86400, child_rekey_time: 28800, dpd_delay: 30 },
  },
  {
    name: 'fortios (addke1 ML-KEM-1024)',
    preset: 'fortios',
    tunnel: (p) => ({ name: 'fgt', local_addr: p.leftAddr, remote_addr: p.rightAddr, inside_addr: '203.0.113.31/31', psk: PSK }),
    peer: (p) => fortigate(p, 'mlkem1024'),
    kes: ['ECP_384', 'ML_KEM_1024'],
    rekeyKes: ['ECP_384'],
    expectDoc: { proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024'] },
  },
  {
    name: 'strongswan: the peer initiates x25519 + ML-KEM-768, pqgate responds (site selectors overridden)',
    preset: 'strongswan',
    ssInitiates: true,
    tunnel: (p) => ({ name: 'sw', local_addr: p.leftAddr, local_id: 'fqdn:gw.pqgate.test', remote_id: 'fqdn:peer.strongswan.test', psk: PSK, mode: 'policy', local_ts: [p.leftInner.net], remote_ts: [p.rightInner.net] }),
    peer: (p) => ({
      name: 'site',
      localAddrs: [p.rightAddr],
      remoteAddrs: [p.leftAddr],
      proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'],
      local: { auth: 'psk', id: 'peer.strongswan.test' },
      remote: { auth: 'psk', id: 'gw.pqgate.test' },
      children: [{ name: 'net', localTs: [p.rightInner.net], remoteTs: [p.leftInner.net], espProposals: ['aes256gcm16'] }],
    }),
    kes: ['CURVE_25519', 'ML_KEM_768'],
    rekeyKes: [],
    expectDoc: { rekey_time: 14400, child_rekey_time: 3600, proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16-prfsha384-x25519'] },
  },
];

function fortigate(p: Pair, kem: 'mlkem768' | 'mlkem1024'): SwanConnection {
  return {
    name: 'fortigate',
    localAddrs: [p.rightAddr],
    remoteAddrs: [p.leftAddr],
    // phase1-interface: proposal aes256gcm-prfsha384, dhgrp 20, addke1 <kem>, keylife 86400, fragmentation enable
    proposals: [`aes256gcm16-prfsha384-ecp384-ke1_${kem}`],
    rekeyTime: '24h',
    fragmentation: 'yes',
    local: { auth: 'psk', id: p.rightAddr },
    remote: { auth: 'psk', id: p.leftAddr },
    // phase2-interface: proposal aes256gcm, dhgrp 20, replay disable, keylifeseconds 28800, 0/0 selectors
    children: [{ name: 'p2', localTs: ANY, remoteTs: ANY, espProposals: ['aes256gcm16-ecp384'], rekeyTime: '8h', extra: { replay_window: '0' } }],
  };
}

function ssKes(sa: IkeSa): string[] {
  return [sa.dhGroup, ...sa.additionalKe].filter((x): x is string => !!x);
}

describe.skipIf(!!skip)('vendor presets against strongSwan 6.1 as that vendor', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => {
    cleanupAll();
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const pair = await createPair({ tag: `ap${CASES.indexOf(c)}` });
      let ss: Strongswan | undefined;
      let gw: ApplianceGate | undefined;
      try {
        const peer = c.peer(pair);
        ss = await Strongswan.start({ ns: pair.right, label: 'ss', connections: [{ ...peer, encap: true }], secrets: [{ type: 'ike', secret: PSK, ids: [peer.local.id!, peer.remote.id!] }] });
        gw = await ApplianceGate.start({ ns: pair.left, label: c.preset, initial: { version: 1, listen: [pair.leftAddr], log_level: 'debug', tunnels: [] } });
        const t = c.tunnel(pair);
        const r = await gw.call('config.tunnel.put', { tunnel: t, preset: c.preset, ...(c.params ? { params: c.params } : {}), comment: `${c.preset} peer`, actor: 'interop' });
        expect(r.revision).toMatchObject({ id: 2, state: 'committed' });
        const doc = (await gw.call('config.get')).document.tunnels[0];
        expect(doc).toMatchObject({ name: t.name, psk: '<set>', ...c.expectDoc });
        expect((await gw.call('config.export', { actor: 'interop' })).document.tunnel_presets).toEqual({ [t.name as string]: c.preset });

        if (c.ssInitiates) await ss.initiate(peer.children[0]!.name, peer.name);
        // Otherwise the preset's start_action (start) brings it up by itself.
        const st = await gw.waitFor((s) => !!up(s, t.name as string), 30_000, `${t.name} up`);
        const pq = up(st, t.name as string)!;
        const ssa = await ss.waitEstablished(peer.name, peer.children[0]!.name, 15_000);
        expect(ssKes(ssa)).toEqual(c.kes);
        expect(pq.keyExchanges).toEqual(c.kes);
        expect(pq.postQuantum).toBe(c.kes[1]);
        expect(pq.spiI).toBe(ssa.spiI);
        expect(pq.spiR).toBe(ssa.spiR);
        expect(pq.role).toBe(c.ssInitiates ? 'responder' : 'initiator');
        expect(ssa.initiator).toBe(!!c.ssInitiates);
        expect(pq.fragmentation).toBe(true);
        const child = pq.children.find((x) => x.state === 'INSTALLED')!;
        const sch = ssa.children.find((x) => x.state === 'INSTALLED')!;
        expect(parseInt(child.spiIn, 16)).toBe(parseInt(sch.spiOut, 16));
        expect(parseInt(child.spiOut, 16)).toBe(parseInt(sch.spiIn, 16));
        expect(child.encr).toBe('AES_GCM_16_256');
        expect(child.esn).toBe(false);
        if (c.preset === 'cloudflare') {
          expect(ssa.remoteId).toBe(CF_FQDN);
          expect(sch.localTs).toEqual(ANY);
        }
        // A Child SA rekey as the peer expects it (Cisco / FortiOS: PFS group 20 on CREATE_CHILD_SA).
        await gw.call('rekey-child', { tunnel: t.name, actor: 'interop' });
        const rk = await gw.waitFor((s) => up(s, t.name as string)?.children.some((x) => x.state === 'INSTALLED' && x.rekeys === 1) ?? false, 20_000, `${t.name} Child SA rekeyed`);
        const rekeyed = up(rk, t.name as string)!.children.find((x) => x.rekeys === 1)!;
        expect(rekeyed.keyExchanges).toEqual(c.rekeyKes);
        // strongSwan installed the same rekeyed Child SA, with the same PFS group.
        const ssRekeyed = await ss.waitFor(async () => (await ss!.listSas()).flatMap((x) => x.children).find((x) => x.state === 'INSTALLED' && parseInt(x.spiOut, 16) === parseInt(rekeyed.spiIn, 16)), 10_000, 'rekeyed Child SA at strongSwan');
        expect(ssRekeyed.dhGroup ? [ssRekeyed.dhGroup] : []).toEqual(c.rekeyKes);
        const m = (await gw.call('metrics')).text as string;
        expect(m).toContain(`pqgate_tunnel_up{tunnel="${t.name}"} 1`);
        expect(m).toContain('pqgate_pq_share 1');
      } catch (e) {
        if (gw) (e as Error).message += `\n--- pqgate log ---\n${gw.log().split('\n').slice(-60).join('\n')}`;
        if (ss) (e as Error).message += `\n--- charon log ---\n${ss.log().split('\n').slice(-40).join('\n')}`;
        throw e;
      } finally {
        await gw?.stop().catch(() => undefined);
        await ss?.stop().catch(() => undefined);
        await pair.destroy();
      }
    });
  }
});
