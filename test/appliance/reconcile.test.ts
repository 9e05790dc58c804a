/**
 * Reconcile through the control API: with three tunnels up (real IKE
 * engine, three peers on the in-memory network), a committed change to one
 * tunnel re-negotiates that tunnel only; the other two keep their IKE and
 * Child SAs (same SPIs on both ends). A change limited to data-plane fields
 * (mss, inside_addr, mtu) re-negotiates
 * nothing and reconfigures the interface. Adding and removing a tunnel leave the others alone too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Rig, gwTunnel, spis, until, wait } from './harness.js';

let rig: Rig;
afterEach(async () => {
  await rig?.close();
});

async function threeUp(): Promise<Rig> {
  rig = new Rig();
  for (const i of [0, 1, 2]) await rig.startPeer(i);
  await rig.startAppliance([gwTunnel(0), gwTunnel(1), gwTunnel(2)]);
  await rig.established(['a', 'b', 'c']);
  return rig;
}

const actor = 'test@reconcile';

describe('reconcile with three tunnels up', () => {
  it('editing one tunnel re-establishes it and leaves the other two SAs untouched (same SPIs, peers agree)', async () => {
    await threeUp();
    const before = await rig.established(['a', 'b', 'c']);
    const peerA = spis(rig.peers[0]!.status()[0]!);
    const peerC = spis(rig.peers[2]!.status()[0]!);
    expect(before.get('b')!.children[0]!.encr).toBe('AES_GCM_16_256');
    expect(before.get('a')!.postQuantum).toBe('ML_KEM_768');

    const r = await rig.call('config.tunnel.put', { tunnel: { name: 'b', esp_proposals: ['aes128gcm16'] }, comment: 'b: AES-128', actor });
    expect(r.revision).toMatchObject({ id: 2, author: actor, state: 'committed' });
    const b = await until(() => {
      const sa = rig.app.daemon.status().find((s) => s.tunnel === 'b' && s.state === 'ESTABLISHED' && s.children[0]?.state === 'INSTALLED');
      return sa && sa.spiI !== before.get('b')!.spiI ? sa : undefined;
    }, 10_000, 'b re-established');
    expect(b.children[0]!.encr).toBe('AES_GCM_16_128');
    await wait(100);
    const after = await rig.established(['a', 'b', 'c']);
    expect(spis(after.get('a')!)).toBe(spis(before.get('a')!));
    expect(spis(after.get('c')!)).toBe(spis(before.get('c')!));
    expect(after.get('a')!.establishedAt).toBe(before.get('a')!.establishedAt);
    // The peers' view of a and c did not change either (no DELETE, no new exchange).
    expect(spis(rig.peers[0]!.status()[0]!)).toBe(peerA);
    expect(spis(rig.peers[2]!.status()[0]!)).toBe(peerC);
    expect(rig.peers[0]!.status()).toHaveLength(1);
    // b: the peer holds exactly the new SA.
    await until(() => rig.peers[1]!.status().length === 1 && rig.peers[1]!.status()[0]!.spiI === b.spiI, 5000, 'peer b on the new SA');
    // Through the API too: status.tunnels lists all three, nothing idle.
    const st = await rig.call('status.tunnels');
    expect(st.sas.map((s: { tunnel: string }) => s.tunnel).sort()).toEqual(['a', 'b', 'c']);
    expect(st.idle).toEqual([]);
  });

  it('a data-plane-only change (inside_addr, mss) keeps every SA and reconfigures the interface', async () => {
    await threeUp();
    const before = await rig.established(['a', 'b', 'c']);
    await until(() => rig.links.configs.get('pqa'), 3000, 'interface pqa');
    expect(rig.links.configs.get('pqa')!.addresses).toEqual(['203.0.113.0/31']);
    await rig.call('config.set', { document: { patch: { tunnels: { a: { inside_addr: '203.0.113.100/31', mss: 1300 } } } }, actor });
    expect(rig.links.configs.get('pqa')!.addresses).toEqual(['203.0.113.100/31']);
    await wait(200);
    const after = await rig.established(['a', 'b', 'c']);
    for (const n of ['a', 'b', 'c']) expect(spis(after.get(n)!)).toBe(spis(before.get(n)!));
    expect(rig.peers[0]!.status()).toHaveLength(1);
    // mtu (stored since schema v4) is a data-plane-only change too.
    await rig.call('config.set', { document: { patch: { tunnels: { a: { mtu: 1380 } } } }, actor });
    await until(() => rig.links.configs.get('pqa')?.mtu === 1380, 3000, 'mtu applied');
    const after2 = await rig.established(['a', 'b', 'c']);
    for (const n of ['a', 'b', 'c']) expect(spis(after2.get(n)!)).toBe(spis(before.get(n)!));
  });

  it('adding and removing a tunnel leave the others untouched', async () => {
    rig = new Rig();
    for (const i of [0, 1, 2]) await rig.startPeer(i);
    await rig.startAppliance([gwTunnel(0), gwTunnel(1)]);
    const before = await rig.established(['a', 'b']);
    await rig.call('config.tunnel.put', { tunnel: gwTunnel(2), actor });
    await rig.established(['a', 'b', 'c']);
    await rig.call('config.tunnel.delete', { name: 'a', actor });
    await until(() => !rig.app.daemon.status().some((s) => s.tunnel === 'a'), 5000, 'a deleted');
    await until(() => rig.peers[0]!.status().length === 0, 5000, 'peer a told');
    // The removed tunnel's interface goes with it.
    await until(() => rig.links.device('pqa').closed, 3000, 'pqa closed');
    const after = await rig.established(['b', 'c']);
    expect(spis(after.get('b')!)).toBe(spis(before.get('b')!));
    const history = await rig.call('config.history', {});
    expect(history.map((r: { id: number }) => r.id)).toEqual([3, 2, 1]);
  });
});
