/**
 * Commit-confirmed through the control API with the running tunnels
 * following: a pending change is live at once; unless confirmed it rolls
 * back by itself at its deadline (the daemon's timer) and the tunnels go
 * back to the previous configuration; confirmed, it stays. Cancel rolls back
 * at once; a deadline that passes while the daemon is down is rolled back
 * at the next start. Tunnels the change does not touch keep their SAs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Rig, gwTunnel, spis, until, wait } from './harness.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

let rig: Rig;
afterEach(async () => {
  await rig?.close();
});

const actor = 'admin@test';

function espOf(tunnel: string): string | undefined {
  const sa = rig.app.daemon.status().find((s) => s.tunnel === tunnel && s.state === 'ESTABLISHED' && s.children[0]?.state === 'INSTALLED');
  return sa?.children[0]?.encr;
}

async function reestablished(tunnel: string, old: IkeSaStatus, encr: string): Promise<IkeSaStatus> {
  return until(() => {
    const sa = rig.app.daemon.status().find((s) => s.tunnel === tunnel && s.state === 'ESTABLISHED' && s.children[0]?.state === 'INSTALLED');
    return sa && sa.spiI !== old.spiI && sa.children[0]!.encr === encr ? sa : undefined;
  }, 10_000, `${tunnel} re-established with ${encr}`);
}

async function threeUp(): Promise<Map<string, IkeSaStatus>> {
  rig = new Rig();
  for (const i of [0, 1, 2]) await rig.startPeer(i);
  await rig.startAppliance([gwTunnel(0), gwTunnel(1), gwTunnel(2)]);
  return rig.established(['a', 'b', 'c']);
}

describe('commit confirmed, with the running tunnels following', () => {
  it('rolls back on timeout: the pending change runs, then the tunnel returns to the previous configuration', async () => {
    const before = await threeUp();
    const r = await rig.call('config.tunnel.put', { tunnel: { name: 'b', esp_proposals: ['aes128gcm16'] }, confirmTimeoutSec: 1, comment: 'try AES-128', actor });
    expect(r.revision).toMatchObject({ id: 2, state: 'pending' });
    expect(r.revision.confirmDeadline).toBeGreaterThan(Date.now());
    // The pending revision is live: b runs AES-128 now.
    const during = await reestablished('b', before.get('b')!, 'AES_GCM_16_128');
    expect((await rig.call('config.pending')).revision).toMatchObject({ id: 2, state: 'pending' });
    // Other changes wait for the decision.
    expect((await rig.callError('config.tunnel.put', { tunnel: { name: 'a', mss: 1300 }, actor })).code).toBe('ERR_STORE_PENDING');

    // No confirm: at the deadline the daemon's timer rolls back, and b follows.
    const after = await reestablished('b', during, 'AES_GCM_16_256');
    const hist = await rig.call('config.history', {});
    expect(hist[0]).toMatchObject({ id: 3, author: 'system (confirm timeout)', state: 'committed' });
    expect(hist[1]).toMatchObject({ id: 2, state: 'rolled-back' });
    expect((await rig.call('config.pending')).revision).toBeNull();
    expect((await rig.call('config.get')).document.tunnels.find((t: { name: string }) => t.name === 'b').esp_proposals).toEqual(['aes256gcm16']);
    // a and c never moved.
    const now = await rig.established(['a', 'b', 'c']);
    expect(spis(now.get('a')!)).toBe(spis(before.get('a')!));
    expect(spis(now.get('c')!)).toBe(spis(before.get('c')!));
    expect(now.get('b')!.spiI).toBe(after.spiI);
    const events = await rig.call('logs.events', { limit: 200 });
    expect(events.some((e: { message: string }) => e.message === 'revision 3: revision 2 was not confirmed in time: rolled back')).toBe(true);
    // The diff of the rollback names the field.
    const d = await rig.call('config.diff', { from: 2, to: 3 });
    expect(d.entries).toEqual([{ path: 'tunnels[1].esp_proposals', kind: 'change', before: ['aes128gcm16'], after: ['aes256gcm16'] }]);
  });

  it('keeps the change when confirmed in time', async () => {
    const before = await threeUp();
    const r = await rig.call('config.tunnel.delete', { name: 'c', confirmTimeoutSec: 1, actor });
    expect(r.revision.state).toBe('pending');
    await until(() => !rig.app.daemon.status().some((s) => s.tunnel === 'c'), 5000, 'c deleted');
    const c = await rig.call('config.confirm', { actor: 'second-admin' });
    expect(c.revision).toMatchObject({ id: 2, state: 'committed', confirmDeadline: r.revision.confirmDeadline });
    await wait(1500);
    // Past the deadline: nothing rolled back, c stays gone, a and b untouched.
    expect((await rig.call('config.history', {})).map((x: { id: number }) => x.id)).toEqual([2, 1]);
    expect(rig.app.daemon.status().some((s) => s.tunnel === 'c')).toBe(false);
    const now = await rig.established(['a', 'b']);
    expect(spis(now.get('a')!)).toBe(spis(before.get('a')!));
    expect(spis(now.get('b')!)).toBe(spis(before.get('b')!));
    expect((await rig.callError('config.confirm', { actor })).code).toBe('ERR_STORE_NOT_PENDING');
    const audit = await rig.call('logs.audit', { limit: 10 });
    expect(audit.some((a: { actor: string; action: string }) => a.actor === 'second-admin' && a.action === 'confirm')).toBe(true);
  });

  it('cancel rolls back at once; a deadline passed while the daemon was down is rolled back at start', async () => {
    const before = await threeUp();
    await rig.call('config.tunnel.put', { tunnel: { name: 'a', esp_proposals: ['aes128gcm16'] }, confirmTimeoutSec: 60, actor });
    const during = await reestablished('a', before.get('a')!, 'AES_GCM_16_128');
    const cancelled = await rig.call('config.cancel', { actor });
    expect(cancelled.revision).toMatchObject({ id: 3, author: actor, state: 'committed' });
    await reestablished('a', during, 'AES_GCM_16_256');

    // Pending again, then the daemon stops before the deadline and starts after it.
    await rig.call('config.tunnel.put', { tunnel: { name: 'c', esp_proposals: ['aes128gcm16'] }, confirmTimeoutSec: 1, actor });
    await until(() => espOf('c') === 'AES_GCM_16_128', 10_000, 'c on AES-128');
    await rig.app.stop('test restart');
    await wait(1200);
    await rig.startAppliance([]);
    const back = await rig.established(['a', 'b', 'c']);
    expect(back.get('c')!.children[0]!.encr).toBe('AES_GCM_16_256');
    const hist = await rig.call('config.history', { limit: 2 });
    expect(hist[0]).toMatchObject({ id: 5, author: 'system (confirm timeout)' });
    expect(hist[1]).toMatchObject({ id: 4, state: 'rolled-back' });
  });
});
