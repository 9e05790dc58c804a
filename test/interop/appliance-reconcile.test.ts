/**
 * Reconcile against a real peer: the appliance (`pqgate daemon --db`, from
 * dist/, in a network namespace) keeps three tunnels to strongSwan 6.1 (one
 * peer with three connections, told apart by their identities; distinct
 * selectors). One tunnel is edited through the control API; that one is
 * re-negotiated with the new setting, and the other two keep their IKE and
 * Child SAs: same SPIs in pqgate's status and in strongSwan's own
 * `swanctl --list-sas`. Then a commit-confirmed change that is not
 * confirmed rolls back by itself, with strongSwan seeing the tunnel
 * return to the previous algorithm and the others still untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, createPair, interopSkipReason, sweepStale, type Pair } from './lib/netns.js';
import { peerMissingReason, sweepStaleDirs } from './lib/rootfs.js';
import { Strongswan, type IkeSa, type SwanConnection, type SwanSecret } from './lib/strongswan.js';
import { ApplianceGate, up } from '../appliance/gate.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

const skip = interopSkipReason() ?? peerMissingReason('sid-strongswan');
if (skip) console.warn(`[interop] appliance-reconcile skipped: ${skip}`);

const PROPOSAL = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const N = [1, 2, 3] as const;
const psk = (i: number) => `appliance-reconcile-psk-${i}-0123456789`;
/** Per tunnel: pqgate's and strongSwan's selectors (distinct, so the peer's SPD has no overlap). */
const lan = (i: number) => ({ gw: `198.51.100.${(i - 1) * 16}/28`, ss: `198.51.100.${128 + (i - 1) * 16}/28` });

function ssConnections(pair: Pair): { connections: SwanConnection[]; secrets: SwanSecret[] } {
  return {
    connections: N.map((i) => ({
      name: `c${i}`,
      localAddrs: [pair.rightAddr],
      remoteAddrs: [pair.leftAddr],
      proposals: [PROPOSAL],
      encap: true,
      unique: 'never' as const,
      local: { auth: 'psk', id: `peer-${i}.strongswan.test` },
      remote: { auth: 'psk', id: `gw-${i}.pqgate.test` },
      children: [{ name: `k${i}`, localTs: [lan(i).ss], remoteTs: [lan(i).gw], espProposals: ['aes256gcm16', 'aes128gcm16'] }],
    })),
    secrets: N.map((i) => ({ type: 'ike' as const, secret: psk(i), ids: [`peer-${i}.strongswan.test`, `gw-${i}.pqgate.test`] })),
  };
}

function gwTunnel(pair: Pair, i: number): Record<string, unknown> {
  return {
    name: `t${i}`,
    local_addr: pair.leftAddr,
    remote_addr: pair.rightAddr,
    local_id: `gw-${i}.pqgate.test`,
    remote_id: `peer-${i}.strongswan.test`,
    psk: psk(i),
    proposals: [PROPOSAL],
    esp_proposals: ['aes256gcm16'],
    local_ts: [lan(i).gw],
    remote_ts: [lan(i).ss],
    mode: 'policy',
    start_action: 'start',
  };
}

/** IKE SPIs + Child SA SPIs as pqgate shows them (inbound:outbound). */
function pqKey(sa: IkeSaStatus): string {
  const c = sa.children.find((x) => x.state === 'INSTALLED')!;
  return `${sa.spiI}_${sa.spiR}/${parseInt(c.spiIn, 16).toString(16)}:${parseInt(c.spiOut, 16).toString(16)}`;
}

/** The same identity from strongSwan's side: its inbound SPI is pqgate's outbound. */
function ssKey(sa: IkeSa): string {
  const c = sa.children.find((x) => x.state === 'INSTALLED')!;
  return `${sa.spiI}_${sa.spiR}/${parseInt(c.spiOut, 16).toString(16)}:${parseInt(c.spiIn, 16).toString(16)}`;
}

function ssByConn(sas: IkeSa[]): Map<string, IkeSa> {
  const m = new Map<string, IkeSa>();
  for (const s of sas) if (s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED')) m.set(s.name, s);
  return m;
}

describe.skipIf(!!skip)('appliance reconcile against strongSwan 6.1', () => {
  let pair: Pair;
  let ss: Strongswan;
  let gw: ApplianceGate;

  beforeAll(async () => {
    sweepStale();
    sweepStaleDirs();
    pair = await createPair({ tag: 'arc' });
    ss = await Strongswan.start({ ns: pair.right, label: 'ss', ...ssConnections(pair) });
    gw = await ApplianceGate.start({ ns: pair.left, initial: { version: 1, listen: [pair.leftAddr], log_level: 'debug', tunnels: N.map((i) => gwTunnel(pair, i)) } });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop().catch(() => undefined);
    await ss?.stop().catch(() => undefined);
    await pair?.destroy();
    cleanupAll();
  });

  async function allUp(): Promise<{ pq: Map<string, IkeSaStatus>; ss: Map<string, IkeSa> }> {
    const st = await gw.waitFor((s) => N.every((i) => up(s, `t${i}`)), 30_000, 'three tunnels up');
    const sas = await ss.waitFor(async () => {
      const m = ssByConn(await ss.listSas());
      return m.size === 3 ? m : undefined;
    }, 15_000, 'three SAs at strongSwan');
    return { pq: new Map(N.map((i) => [`t${i}`, up(st, `t${i}`)!])), ss: sas };
  }

  it('three tunnels up; editing one re-negotiates it and leaves the other two SAs (same SPIs at both ends)', async () => {
    const before = await allUp();
    for (const i of N) {
      const p = before.pq.get(`t${i}`)!;
      expect(p.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
      expect(ssKey(before.ss.get(`c${i}`)!)).toBe(pqKey(p));
    }

    const r = await gw.call('config.tunnel.put', { tunnel: { name: 't2', esp_proposals: ['aes128gcm16'] }, comment: 't2: AES-128', actor: 'interop' });
    expect(r.revision.state).toBe('committed');
    const st = await gw.waitFor((s) => {
      const t2 = up(s, 't2');
      return !!t2 && t2.spiI !== before.pq.get('t2')!.spiI && t2.children[0]!.encr === 'AES_GCM_16_128';
    }, 30_000, 't2 re-negotiated with AES-128');
    const sas = await ss.waitFor(async () => {
      const all = await ss.listSas();
      const m = ssByConn(all);
      // The old c2 IKE SA is gone (deleted by pqgate), the new one is up.
      return m.size === 3 && all.filter((s) => s.name === 'c2').length === 1 && m.get('c2')!.spiI === up(st, 't2')!.spiI ? m : undefined;
    }, 15_000, 'strongSwan on the new t2 SA');
    expect(sas.get('c2')!.children[0]!.encrKeysize).toBe(128);
    expect(ssKey(sas.get('c2')!)).toBe(pqKey(up(st, 't2')!));
    for (const i of [1, 3]) {
      expect(pqKey(up(st, `t${i}`)!)).toBe(pqKey(before.pq.get(`t${i}`)!));
      expect(ssKey(sas.get(`c${i}`)!)).toBe(ssKey(before.ss.get(`c${i}`)!));
      expect(sas.get(`c${i}`)!.uniqueId).toBe(before.ss.get(`c${i}`)!.uniqueId);
    }
    expect((await ss.listSas()).length).toBe(3);
  });

  it('an unconfirmed change rolls back at its deadline; strongSwan sees the tunnel return, the others untouched', async () => {
    const before = await allUp();
    const r = await gw.call('config.tunnel.put', { tunnel: { name: 't3', esp_proposals: ['aes128gcm16'] }, confirmTimeoutSec: 4, actor: 'interop' });
    expect(r.revision.state).toBe('pending');
    const during = await gw.waitFor((s) => up(s, 't3')?.children[0]?.encr === 'AES_GCM_16_128', 30_000, 't3 on AES-128 (pending)');
    await ss.waitFor(async () => ssByConn(await ss.listSas()).get('c3')?.children[0]?.encrKeysize === 128, 15_000, 'c3 on AES-128 at strongSwan');
    // No confirm: the daemon's timer rolls back, t3 is re-negotiated with AES-256.
    const after = await gw.waitFor((s) => up(s, 't3')?.children[0]?.encr === 'AES_GCM_16_256' && up(s, 't3')!.spiI !== up(during, 't3')!.spiI, 40_000, 't3 back on AES-256');
    const sas = await ss.waitFor(async () => {
      const m = ssByConn(await ss.listSas());
      return m.get('c3')?.spiI === up(after, 't3')!.spiI && m.size === 3 ? m : undefined;
    }, 15_000, 'c3 back at strongSwan');
    expect(sas.get('c3')!.children[0]!.encrKeysize).toBe(256);
    const hist = await gw.call('config.history', { limit: 2 });
    expect(hist[0].author).toBe('system (confirm timeout)');
    expect(hist[1].state).toBe('rolled-back');
    for (const i of [1, 2]) {
      expect(pqKey(up(after, `t${i}`)!)).toBe(pqKey(before.pq.get(`t${i}`)!));
      expect(ssKey(sas.get(`c${i}`)!)).toBe(ssKey(before.ss.get(`c${i}`)!));
    }
  });
});
