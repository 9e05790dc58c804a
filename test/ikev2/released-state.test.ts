/**
 * After IKE_AUTH an IKE SA keeps no handshake transcript (ike-sa.ts
 * releaseHandshake: nonces, RealMessage1/2, IntAuth chains, SK_pi/SK_pr
 * wiped), on both sides, and everything that comes later still works:
 * Child SA and IKE SA rekeys with additional key exchanges, then a delete.
 */
import { describe, it, expect } from 'vitest';
import { pair, up, type Host } from './harness.js';
import type { IkeSa } from '../../firmware/ikev2/ike-sa.js';

/** The engine's live IKE SAs (its private table: this test is about their internals). */
function sas(h: Host): IkeSa[] {
  return [...(h.engine as unknown as { byOurSpi: Map<string, IkeSa> }).byOurSpi.values()].filter((s) => s.state === 'ESTABLISHED');
}

function expectReleased(sa: IkeSa): void {
  expect(sa.ni).toBeUndefined();
  expect(sa.nr).toBeUndefined();
  expect(sa.initRequest).toBeUndefined();
  expect(sa.initResponse).toBeUndefined();
  expect(sa.intAuthI).toBeUndefined();
  expect(sa.intAuthR).toBeUndefined();
  expect(sa.currentRequestRaw.length).toBe(0);
  expect(sa.candidates).toEqual([]);
  expect(sa.skPi.every((b) => b === 0)).toBe(true);
  expect(sa.skPr.every((b) => b === 0)).toBe(true);
  // SK_d (later key material) is kept.
  expect(sa.keys!.skD.some((b) => b !== 0)).toBe(true);
}

describe('state kept after IKE_AUTH', () => {
  it('drops the transcript on both sides; rekeys and deletes still work', () => {
    const ike = ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'];
    const esp = ['aes256gcm16-x25519-ke1_mlkem768'];
    const { lab, a, b } = pair({ ikeProposals: ike, espProposals: esp }, { ikeProposals: ike, espProposals: esp });
    up(lab, a);
    lab.run();
    const [sa] = sas(a);
    const [sb] = sas(b);
    expect(sa && sb).toBeTruthy();
    expectReleased(sa!);
    expectReleased(sb!);
    // Transcript-free SAs still rekey their Child SA and themselves (RFC 7296 §2.17/§2.18 use SK_d and fresh nonces).
    const installs = a.installs.length;
    lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
    lab.run();
    expect(a.installs.length).toBe(installs + 1);
    lab.apply(b, b.engine.command({ kind: 'rekey-ike', tunnel: 't1' }));
    lab.run();
    const [na] = sas(a);
    const [nb] = sas(b);
    expect(na).not.toBe(sa);
    expect(na!.rekeys).toBe(1);
    expect(nb!.rekeys).toBe(1);
    expect(na!.children.length).toBe(1);
    lab.apply(a, a.engine.command({ kind: 'down', tunnel: 't1' }));
    lab.run();
    expect(sas(a)).toEqual([]);
    expect(sas(b)).toEqual([]);
  });
});
