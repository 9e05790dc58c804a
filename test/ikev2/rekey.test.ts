/**
 * CREATE_CHILD_SA and IKE_FOLLOWUP_KE between two engines: hybrid Child and
 * IKE rekeys, collisions (RFC 7296 §2.8.1/§2.8.2), hours of simulated time
 * with short lifetimes, DPD.
 */
import { describe, it, expect } from 'vitest';
import { pair, up, type Host, type Lab } from './harness.js';
import { equal } from '../../firmware/util/bytes.js';
import type { InstallChildAction } from '../../firmware/ikev2/engine-types.js';

const HYBRID_IKE = ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768'];
const HYBRID_ESP = ['aes256gcm16-ecp384-ke1_mlkem768'];

function live(lab: Lab, h: Host) {
  return lab.status(h).filter((s) => s.state === 'ESTABLISHED');
}

/** Installs must pair up: every outbound SA of one side is an inbound SA of the other with the same key. */
function expectInstallsPair(a: Host, b: Host) {
  const byIn = new Map<number, InstallChildAction>();
  for (const i of b.installs) byIn.set(i.inbound.spi, i);
  for (const i of a.installs) {
    const peer = byIn.get(i.outbound.spi);
    expect(peer, `no peer install for ${i.outbound.spi.toString(16)}`).toBeDefined();
    expect(equal(i.outbound.encrKey, peer!.inbound.encrKey)).toBe(true);
    expect(equal(i.inbound.encrKey, peer!.outbound.encrKey)).toBe(true);
  }
}

function activeChildren(lab: Lab, h: Host) {
  return live(lab, h).flatMap((s) => s.children.filter((c) => c.state === 'INSTALLED'));
}

describe('rekeying', () => {
  it('rekeys a Child SA with PFS: ECP-384 + ML-KEM-768 via IKE_FOLLOWUP_KE', () => {
    const { lab, a, b } = pair({ ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP }, { ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP });
    up(lab, a);
    lab.run();
    const reqid = a.installs[0]!.inbound.reqid;
    lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
    lab.run();
    expect(a.installs).toHaveLength(2);
    expect(b.installs).toHaveLength(2);
    expect(a.installs[1]!.inbound.reqid).toBe(reqid);
    const ca = activeChildren(lab, a);
    const cb = activeChildren(lab, b);
    expect(ca).toHaveLength(1);
    expect(cb).toHaveLength(1);
    expect(ca[0]!.keyExchanges).toEqual(['ECP_384', 'ML_KEM_768']);
    expect(cb[0]!.keyExchanges).toEqual(['ECP_384', 'ML_KEM_768']);
    expect(ca[0]!.spiOut).toBe(cb[0]!.spiIn);
    expect(ca[0]!.rekeys).toBe(1);
    // The old pair is removed, keeping the policies (same reqid lives on).
    expect(a.deletes).toHaveLength(1);
    expect(b.deletes).toHaveLength(1);
    expect((a.deletes[0] as { rekeyed?: boolean }).rekeyed).toBe(true);
    expectInstallsPair(a, b);
    // The IKE_FOLLOWUP_KE exchange really happened.
    expect(a.actions.filter((x) => x.kind === 'send' && x.data[18] === 44).length).toBeGreaterThanOrEqual(1);
  });

  it('rekeys the IKE SA repeating ECP-384 + ML-KEM-768 and moves the Child SAs', () => {
    const { lab, a, b } = pair({ ikeProposals: HYBRID_IKE }, { ikeProposals: HYBRID_IKE });
    up(lab, a);
    lab.run();
    const before = live(lab, a)[0]!;
    lab.apply(a, a.engine.command({ kind: 'rekey-ike', tunnel: 't1' }));
    lab.run();
    const sa = live(lab, a);
    const sb = live(lab, b);
    expect(sa).toHaveLength(1);
    expect(sb).toHaveLength(1);
    expect(sa[0]!.spiI).not.toBe(before.spiI);
    expect(sa[0]!.spiI).toBe(sb[0]!.spiI);
    expect(sa[0]!.spiR).toBe(sb[0]!.spiR);
    expect(sa[0]!.keyExchanges).toEqual(['ECP_384', 'ML_KEM_768']);
    expect(sb[0]!.keyExchanges).toEqual(['ECP_384', 'ML_KEM_768']);
    expect(sa[0]!.rekeys).toBe(1);
    expect(sa[0]!.children).toHaveLength(1);
    expect(sb[0]!.children).toHaveLength(1);
    expect(a.deletes).toHaveLength(0); // children survive an IKE rekey
    // The new SA's keys agree: a Child rekey over it succeeds.
    lab.apply(b, b.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
    lab.run();
    expect(activeChildren(lab, a)).toHaveLength(1);
    expect(a.installs).toHaveLength(2);
    expectInstallsPair(a, b);
  });

  it('IKE rekey with two additional key exchanges (ML-KEM-768 then ML-KEM-1024)', () => {
    const p = ['aes256gcm16-prfsha512-x25519-ke1_mlkem768-ke2_mlkem1024'];
    const { lab, a, b } = pair({ ikeProposals: p }, { ikeProposals: p });
    up(lab, a);
    lab.run();
    lab.apply(b, b.engine.command({ kind: 'rekey-ike', tunnel: 't1' })); // the responder rekeys
    lab.run();
    const sa = live(lab, a);
    expect(sa).toHaveLength(1);
    expect(sa[0]!.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768', 'ML_KEM_1024']);
    expect(sa[0]!.role).toBe('responder'); // b initiated the rekey: it is the new SA's initiator
    lab.apply(a, a.engine.command({ kind: 'dpd', tunnel: 't1' }));
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
  });

  it('resolves a simultaneous Child SA rekey to one Child SA (RFC 7296 §2.8.1)', () => {
    for (const seed of [1, 2, 3]) {
      const { lab, a, b } = pair({ espProposals: HYBRID_ESP }, { espProposals: HYBRID_ESP }, { seed, delayMs: 20 });
      up(lab, a);
      lab.run();
      lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
      lab.apply(b, b.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
      lab.run();
      const ca = activeChildren(lab, a);
      const cb = activeChildren(lab, b);
      expect(ca, `seed ${seed}`).toHaveLength(1);
      expect(cb).toHaveLength(1);
      expect(ca[0]!.spiOut).toBe(cb[0]!.spiIn);
      expect(ca[0]!.spiIn).toBe(cb[0]!.spiOut);
      expect(a.events.some((e) => e.includes('rekey collision'))).toBe(true);
      expect(b.events.some((e) => e.includes('rekey collision'))).toBe(true);
      expect(a.engine.stats.internalErrors + b.engine.stats.internalErrors).toBe(0);
    }
  });

  it('resolves a simultaneous IKE SA rekey to one IKE SA (RFC 7296 §2.8.2)', () => {
    for (const seed of [1, 2, 3]) {
      const { lab, a, b } = pair({ ikeProposals: HYBRID_IKE }, { ikeProposals: HYBRID_IKE }, { seed, delayMs: 20 });
      up(lab, a);
      lab.run();
      lab.apply(a, a.engine.command({ kind: 'rekey-ike', tunnel: 't1' }));
      lab.apply(b, b.engine.command({ kind: 'rekey-ike', tunnel: 't1' }));
      lab.run();
      const sa = live(lab, a);
      const sb = live(lab, b);
      expect(sa, `seed ${seed}`).toHaveLength(1);
      expect(sb).toHaveLength(1);
      expect(sa[0]!.spiI).toBe(sb[0]!.spiI);
      expect(sa[0]!.children).toHaveLength(1);
      expect(sb[0]!.children).toHaveLength(1);
      expect(a.events.some((e) => e.includes('rekey collision'))).toBe(true);
      // The survivor works.
      lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
      lab.run();
      expect(activeChildren(lab, b)).toHaveLength(1);
      expectInstallsPair(a, b);
    }
  });

  it('handles a delete of the Child SA racing its rekey', () => {
    const { lab, a, b } = pair({}, {}, { delayMs: 20 });
    up(lab, a);
    lab.run();
    lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
    lab.apply(b, b.engine.command({ kind: 'down', tunnel: 't1' }));
    lab.run();
    expect(live(lab, a)).toHaveLength(0);
    expect(live(lab, b)).toHaveLength(0);
    expect(a.engine.stats.internalErrors + b.engine.stats.internalErrors).toBe(0);
  });

  it('survives two simulated hours of IKE rekeys every 40 s and Child rekeys every 15 s with 5 % loss', () => {
    const { lab, a, b } = pair(
      { ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP, rekeyTime: 40, childRekeyTime: 15 },
      { ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP, rekeyTime: 40, childRekeyTime: 15 },
      { seed: 7, lossRate: 0.05, delayMs: 2, jitterMs: 10 },
      { a: { retransmit: { timeout: 500 } }, b: { retransmit: { timeout: 500 } } },
    );
    up(lab, a);
    lab.run();
    const hour = 3600_000;
    // Make-before-break, as the data plane sees it: at every sampled instant
    // some outbound SA of each side is installed as an inbound SA on the other.
    const seen = new Map<Host, { i: number; out: Set<number>; inb: Set<number> }>();
    const installed = (h: Host) => {
      const st = seen.get(h) ?? { i: 0, out: new Set<number>(), inb: new Set<number>() };
      seen.set(h, st);
      const { out, inb } = st;
      for (; st.i < h.actions.length; st.i++) {
        const x = h.actions[st.i]!;
        if (x.kind === 'install-child') {
          out.add(x.outbound.spi);
          inb.add(x.inbound.spi);
        } else if (x.kind === 'delete-child') {
          out.delete(x.outboundSpi);
          inb.delete(x.inboundSpi);
        }
      }
      return { out, inb };
    };
    let gaps = 0;
    for (let t = 0; t < 2 * hour; t += 1000) {
      lab.advance(1000);
      const ia = installed(a);
      const ib = installed(b);
      const aToB = [...ia.out].some((s) => ib.inb.has(s));
      const bToA = [...ib.out].some((s) => ia.inb.has(s));
      if (!aToB || !bToA) gaps++;
    }
    const sa = live(lab, a);
    expect(sa.length).toBeGreaterThanOrEqual(1);
    expect(sa[0]!.rekeys).toBeGreaterThan(100);
    expect(a.installs.length).toBeGreaterThan(300);
    expect(gaps).toBe(0);
    expect(a.engine.stats.internalErrors + b.engine.stats.internalErrors).toBe(0);
    expect(activeChildren(lab, a)[0]!.keyExchanges).toEqual(['ECP_384', 'ML_KEM_768']);
    expectInstallsPair(a, b);
  }, 120_000); // ~9 s of CPU on a quiet machine; generous so a loaded CI host does not fail it

  it('DPD declares the peer dead and the always-on initiator comes back', () => {
    const { lab, a } = pair({ startAction: 'start', dpdDelay: 10 }, { dpdDelay: 0 }, {}, { a: { retransmit: { timeout: 1000, tries: 3 }, retryDelay: 1000 } });
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    lab.advance(35_000); // several DPD rounds, all answered
    expect(live(lab, a)).toHaveLength(1);
    lab.net.dropFilter = (d) => d.to.address === '192.0.2.2';
    lab.advance(40_000);
    expect(live(lab, a)).toHaveLength(0);
    expect(a.events.some((e) => e.includes('peer is dead'))).toBe(true);
    lab.net.dropFilter = undefined;
    lab.advance(90_000);
    expect(live(lab, a)).toHaveLength(1);
  });
});

describe('DPD action', () => {
  it("'clear' removes the SAs of a dead peer and does not re-initiate; 'restart' does, even without start_action start", () => {
    for (const [action, start, expectBack] of [
      ['clear', 'start', false],
      ['restart', 'none', true],
    ] as const) {
      const { lab, a } = pair({ startAction: start, dpdDelay: 5, dpdAction: action }, {}, {}, { a: { retransmit: { timeout: 1000, tries: 2 }, retryDelay: 1000 } });
      if (start === 'none') up(lab, a);
      lab.run();
      expect(live(lab, a)).toHaveLength(1);
      lab.net.dropFilter = (d) => d.to.address === '192.0.2.2';
      lab.advance(30_000);
      expect(live(lab, a)).toHaveLength(0);
      lab.net.dropFilter = undefined;
      lab.advance(60_000);
      expect(live(lab, a), action).toHaveLength(expectBack ? 1 : 0);
    }
  });
});
