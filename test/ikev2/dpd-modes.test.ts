/**
 * DPD modes and actions with a fake clock (issue 4): on-idle DPD counts ESP
 * traffic the data plane reports (query-activity / Engine.activity),
 * periodic DPD sends regardless, dpd_action hold leaves a trap instead of
 * re-initiating, start_action trap waits for the first packet.
 */
import { describe, expect, it } from 'vitest';
import { pair, up, type Host, type Lab } from './harness.js';
import { decodeHeaderOnly } from '../../firmware/ikev2/codec/index.js';
import { ExchangeType } from '../../firmware/ikev2/constants.js';
import type { Action, TrapAction } from '../../firmware/ikev2/engine-types.js';

function live(lab: Lab, h: Host) {
  return lab.status(h).filter((s) => s.state === 'ESTABLISHED');
}

/** INFORMATIONAL requests `h` sent from index `from` of its actions on (DPD: empty INFORMATIONAL). */
function infoRequests(h: Host, from = 0): number {
  return h.actions.slice(from).filter((a) => {
    if (a.kind !== 'send') return false;
    const hdr = decodeHeaderOnly(a.data);
    return hdr.exchange === ExchangeType.INFORMATIONAL && !hdr.response;
  }).length;
}

function initRequests(h: Host, from = 0): number {
  return h.actions.slice(from).filter((a) => a.kind === 'send' && decodeHeaderOnly(a.data).exchange === ExchangeType.IKE_SA_INIT && !decodeHeaderOnly(a.data).response).length;
}

/** Answer `h`'s query-activity actions the way the daemon does, with `esp()` as the data plane's last-inbound time. */
function answerActivity(lab: Lab, h: Host, esp: () => number | undefined): { queries: number } {
  const seen = { queries: 0 };
  const orig = lab.apply.bind(lab);
  lab.apply = (host: Host, actions: Action[]) => {
    orig(host, actions);
    if (host !== h) return;
    for (const a of actions)
      if (a.kind === 'query-activity') {
        seen.queries++;
        expect(a.inboundSpis.length).toBeGreaterThan(0);
        lab.apply(h, h.engine.activity!(a.ikeSa, esp()));
      }
  };
  return seen;
}

describe('on-idle DPD counts ESP traffic', () => {
  it('sends no liveness check while ESP keeps arriving, and one soon after it stops', () => {
    const { lab, a } = pair({ startAction: 'start', dpdDelay: 10 }, {}, {}, { a: { dataPlaneActivity: true } });
    let espAt: number | undefined = undefined;
    let flowing = true;
    const q = answerActivity(lab, a, () => (flowing ? lab.clock.now() - 50 : espAt));
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    const mark = a.actions.length;
    lab.advance(60_000);
    expect(infoRequests(a, mark)).toBe(0); // ESP every moment: the peer is alive
    expect(q.queries).toBeGreaterThanOrEqual(5); // asked about once per interval, no per-packet events
    flowing = false;
    espAt = lab.clock.now();
    const mark2 = a.actions.length;
    lab.advance(11_500);
    expect(infoRequests(a, mark2)).toBe(1); // 10 s after the last ESP packet
    expect(live(lab, a)).toHaveLength(1); // answered
  });

  it('without an answer from the data plane the check goes out after the grace period', () => {
    const { lab, a } = pair({ startAction: 'start', dpdDelay: 10 }, {}, {}, { a: { dataPlaneActivity: true } });
    lab.run();
    const mark = a.actions.length;
    lab.advance(10_500);
    expect(a.actions.slice(mark).some((x) => x.kind === 'query-activity')).toBe(true);
    expect(infoRequests(a, mark)).toBe(0);
    lab.advance(1_000);
    expect(infoRequests(a, mark)).toBe(1);
  });

  it('without data-plane activity (engine option off) DPD follows IKE traffic only', () => {
    const { lab, a } = pair({ startAction: 'start', dpdDelay: 10 }, {});
    lab.run();
    const mark = a.actions.length;
    lab.advance(31_000);
    expect(a.actions.slice(mark).some((x) => x.kind === 'query-activity')).toBe(false);
    expect(infoRequests(a, mark)).toBe(3);
  });
});

describe('periodic DPD', () => {
  it('sends every interval even while ESP arrives', () => {
    const { lab, a } = pair({ startAction: 'start', dpdDelay: 10, dpdMode: 'periodic' }, {}, {}, { a: { dataPlaneActivity: true } });
    const q = answerActivity(lab, a, () => lab.clock.now());
    lab.run();
    const mark = a.actions.length;
    lab.advance(60_500);
    expect(q.queries).toBe(0);
    expect(infoRequests(a, mark)).toBe(6);
  });

  it('IKE traffic from the peer does not postpone it (the peer runs its own DPD every 3 s)', () => {
    const { lab, a } = pair({ startAction: 'start', dpdDelay: 10, dpdMode: 'periodic' }, { dpdDelay: 3 });
    lab.run();
    const mark = a.actions.length;
    lab.advance(30_500);
    expect(infoRequests(a, mark)).toBe(3);
  });
});

describe('dpd_action hold and start_action trap', () => {
  it('hold: a dead peer leaves a trap instead of re-initiating; the first packet (acquire → up) brings the tunnel back and removes the trap', () => {
    const { lab, a } = pair({ startAction: 'start', dpdDelay: 5, dpdAction: 'hold' }, {}, {}, { a: { retransmit: { timeout: 1000, tries: 2 }, retryDelay: 1000 } });
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    const reqid = lab.status(a)[0]!.children[0]!.reqid;
    lab.net.dropFilter = (d) => d.to.address === '192.0.2.2';
    lab.advance(30_000);
    expect(live(lab, a)).toHaveLength(0);
    const traps = a.actions.filter((x): x is TrapAction => x.kind === 'trap');
    expect(traps).toHaveLength(1);
    expect(traps[0]!.install).toBe(true);
    expect(traps[0]!.policies[0]!.direction).toBe('out');
    expect(traps[0]!.policies[0]!.reqid).not.toBe(reqid);
    expect(a.events.some((e) => e.includes('dpd_action hold'))).toBe(true);
    // Old Child SA removed from the data plane with its policies (not a rekey).
    expect(a.deletes.some((d) => d.kind === 'delete-child' && !d.rekeyed)).toBe(true);
    lab.net.dropFilter = undefined;
    const mark = a.actions.length;
    lab.advance(120_000);
    expect(initRequests(a, mark)).toBe(0); // no traffic, no initiation
    expect(live(lab, a)).toHaveLength(0);
    // The data plane's acquire: the daemon issues 'up' (daemon.ts onDataPlaneEvent).
    up(lab, a);
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    const after = a.actions.slice(mark).filter((x): x is TrapAction => x.kind === 'trap');
    expect(after.map((t) => t.install)).toEqual([false]);
    expect(after[0]!.policies).toEqual(traps[0]!.policies);
    // The install came first, then the trap went (make-before-break for the first packets).
    const iInstall = a.actions.findIndex((x, i) => i >= mark && x.kind === 'install-child');
    const iUntrap = a.actions.findIndex((x, i) => i >= mark && x.kind === 'trap');
    expect(iInstall).toBeGreaterThan(-1);
    expect(iUntrap).toBeGreaterThan(iInstall);
  });

  it('hold while the peer is still away: a failed initiation keeps the trap, the next acquire tries again', () => {
    const { lab, a } = pair({ startAction: 'none', dpdDelay: 5, dpdAction: 'hold' }, {}, {}, { a: { retransmit: { timeout: 1000, tries: 1 }, retryDelay: 1000 } });
    up(lab, a);
    lab.run();
    lab.net.dropFilter = (d) => d.to.address === '192.0.2.2';
    lab.advance(30_000);
    expect(a.actions.filter((x) => x.kind === 'trap')).toHaveLength(1);
    const mark = a.actions.length;
    up(lab, a);
    lab.advance(60_000);
    expect(live(lab, a)).toHaveLength(0);
    expect(initRequests(a, mark)).toBeGreaterThanOrEqual(1);
    expect(a.actions.slice(mark).filter((x) => x.kind === 'trap')).toHaveLength(0); // still trapped
    lab.net.dropFilter = undefined;
    up(lab, a);
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    expect(a.actions.slice(mark).filter((x) => x.kind === 'trap').map((x) => (x as TrapAction).install)).toEqual([false]);
  });

  it('start_action trap: nothing is sent at load, a trap is installed; traffic brings the tunnel up; a peer delete re-arms the trap', () => {
    const { lab, a, b } = pair({ startAction: 'trap' }, {});
    lab.run();
    expect(initRequests(a)).toBe(0);
    const t = a.actions.filter((x): x is TrapAction => x.kind === 'trap');
    expect(t.map((x) => x.install)).toEqual([true]);
    expect(t[0]!.policies[0]!.remote[0]!.family).toBe(4);
    up(lab, a);
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    lab.apply(b, b.engine.command({ kind: 'down', tunnel: 't1' }));
    lab.run();
    expect(live(lab, a)).toHaveLength(0);
    expect(a.actions.filter((x): x is TrapAction => x.kind === 'trap').map((x) => x.install)).toEqual([true, false, true]);
    // Operator down removes the trap for good.
    lab.apply(a, a.engine.command({ kind: 'down', tunnel: 't1' }));
    expect(a.actions.filter((x): x is TrapAction => x.kind === 'trap').map((x) => x.install)).toEqual([true, false, true, false]);
  });
});

describe('Engine.hasInstalledChild (what the health monitor asks per probe)', () => {
  const fromStatus = (lab: Lab, h: Host, t: string) =>
    lab.status(h).some((s) => s.tunnel === t && s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED' || c.state === 'REKEYING'));

  it('agrees with the status view before, during and after the tunnel lives', () => {
    const { lab, a, b } = pair({ startAction: 'none' });
    expect(lab.status(a)).toHaveLength(0);
    up(lab, a);
    lab.run();
    const t = lab.status(a)[0]!.tunnel;
    for (const h of [a, b]) expect(h.engine.hasInstalledChild(t)).toBe(fromStatus(lab, h, t));
    expect(a.engine.hasInstalledChild(t)).toBe(true);
    expect(a.engine.hasInstalledChild('no-such-tunnel')).toBe(false);
    lab.apply(a, a.engine.command({ kind: 'down', tunnel: t }));
    lab.run();
    expect(a.engine.hasInstalledChild(t)).toBe(fromStatus(lab, a, t));
    expect(a.engine.hasInstalledChild(t)).toBe(false);
  });
});
