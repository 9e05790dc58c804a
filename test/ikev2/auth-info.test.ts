/** IKE_AUTH outcomes, traffic selectors, INFORMATIONAL delete and liveness between two engines. */
import { describe, it, expect } from 'vitest';
import { pair, up } from './harness.js';

describe('IKE_AUTH, selectors and INFORMATIONAL', () => {
  it('fails both sides cleanly on a PSK mismatch (AUTHENTICATION_FAILED)', () => {
    const { lab, a, b } = pair({ psk: 'initiator-secret-0123456789' }, { psk: 'responder-secret-0123456789' });
    up(lab, a);
    lab.run();
    expect(lab.status(a)).toEqual([]);
    expect(lab.status(b)).toEqual([]);
    expect(a.events.some((e) => e.includes('AUTHENTICATION_FAILED'))).toBe(true);
    expect(b.events.some((e) => e.includes('authentication of'))).toBe(true);
    expect(a.installs.length + b.installs.length).toBe(0);
  });

  it('rejects a responder whose identity does not match', () => {
    const { lab, a } = pair({ remoteId: 'someone-else.example' }, { remoteId: 'a.example' });
    up(lab, a);
    lab.run();
    expect(lab.status(a)).toEqual([]);
    expect(a.installs).toHaveLength(0);
  });

  it('picks the responder tunnel by the initiator identity among several', () => {
    const { lab, a, b } = pair({ localId: 'branch2.example', psk: 'branch-two-secret-0123456789' });
    b.engine.loadConfig([]);
    const { tunnel } = require_harness();
    lab.load(b, [
      tunnel({ name: 'branch1', localId: 'b.example', remoteId: 'branch1.example', psk: 'branch-one-secret-0123456789', localTs: ['10.2.0.0/16'], remoteTs: ['10.1.0.0/16'] }),
      tunnel({ name: 'branch2', localId: 'b.example', remoteId: 'branch2.example', psk: 'branch-two-secret-0123456789', localTs: ['10.2.0.0/16'], remoteTs: ['10.1.0.0/16'] }),
    ]);
    up(lab, a);
    lab.run();
    const sb = lab.status(b);
    expect(sb).toHaveLength(1);
    expect(sb[0]!.tunnel).toBe('branch2');
    expect(sb[0]!.state).toBe('ESTABLISHED');
  });

  it('narrows traffic selectors to the responder policy (RFC 7296 §2.9)', () => {
    const { lab, a, b } = pair({ localTs: ['10.1.0.0/16'], remoteTs: ['10.2.0.0/16'] }, { localTs: ['10.2.3.0/24'], remoteTs: ['10.1.0.0/24'] });
    up(lab, a);
    lab.run();
    const [sa] = lab.status(a);
    expect(sa!.children[0]!.localTs).toEqual(['10.1.0.0/24']);
    expect(sa!.children[0]!.remoteTs).toEqual(['10.2.3.0/24']);
    expect(lab.status(b)[0]!.children[0]!.localTs).toEqual(['10.2.3.0/24']);
  });

  it('keeps the IKE SA but creates no child on TS_UNACCEPTABLE', () => {
    const { lab, a, b } = pair({ localTs: ['10.1.0.0/16'], remoteTs: ['10.2.0.0/16'] }, { localTs: ['172.16.0.0/16'], remoteTs: ['10.9.0.0/16'] });
    up(lab, a);
    lab.run();
    const [sa] = lab.status(a);
    expect(sa!.state).toBe('ESTABLISHED');
    expect(sa!.children).toEqual([]);
    expect(a.installs.length + b.installs.length).toBe(0);
    expect(a.events.some((e) => e.includes('TS_UNACCEPTABLE'))).toBe(true);
  });

  it('keeps the IKE SA but creates no child on NO_PROPOSAL_CHOSEN for ESP', () => {
    const { lab, a, b } = pair({ espProposals: ['chacha20poly1305'] }, { espProposals: ['aes256gcm16'] });
    up(lab, a);
    lab.run();
    expect(lab.status(a)[0]!.state).toBe('ESTABLISHED');
    expect(lab.status(b)[0]!.children).toEqual([]);
    expect(a.events.some((e) => e.includes('NO_PROPOSAL_CHOSEN'))).toBe(true);
  });

  it('deletes IKE and Child SAs on both sides with `down`', () => {
    const { lab, a, b } = pair();
    up(lab, a);
    lab.run();
    expect(lab.status(a)[0]!.state).toBe('ESTABLISHED');
    lab.apply(a, a.engine.command({ kind: 'down', tunnel: 't1' }));
    lab.run();
    expect(lab.status(a)).toEqual([]);
    expect(lab.status(b)).toEqual([]);
    expect(a.deletes).toHaveLength(1);
    expect(b.deletes).toHaveLength(1);
  });

  it('answers liveness checks, and declares a silent peer dead', () => {
    const { lab, a, b } = pair({}, {}, {}, { a: { retransmit: { timeout: 1000, tries: 2 } } });
    up(lab, a);
    lab.run();
    lab.apply(a, a.engine.command({ kind: 'dpd', tunnel: 't1' }));
    lab.run();
    expect(lab.status(a)[0]!.state).toBe('ESTABLISHED');
    // Now the responder vanishes.
    lab.net.dropFilter = (d) => d.to.address === '192.0.2.2';
    lab.apply(a, a.engine.command({ kind: 'dpd', tunnel: 't1' }));
    lab.advance(60_000);
    expect(lab.status(a)).toEqual([]);
    expect(a.deletes).toHaveLength(1);
    expect(a.events.some((e) => e.includes('peer is dead'))).toBe(true);
    void b;
  });

  it('re-initiates an always-on tunnel after the peer comes back', () => {
    const { lab, a, b } = pair({ startAction: 'start' }, {}, {}, { a: { retransmit: { timeout: 1000, tries: 1 }, retryDelay: 1000, maxRetryDelay: 8000 } });
    // loadConfig with start_action=start initiated already
    lab.run();
    expect(lab.status(a)[0]!.state).toBe('ESTABLISHED');
    lab.net.dropFilter = (d) => d.to.address === '192.0.2.2';
    lab.apply(a, a.engine.command({ kind: 'dpd', tunnel: 't1' }));
    lab.advance(30_000);
    expect(lab.status(a).filter((s) => s.state === 'ESTABLISHED')).toHaveLength(0);
    lab.net.dropFilter = undefined;
    lab.advance(30_000);
    const s = lab.status(a);
    expect(s.filter((x) => x.state === 'ESTABLISHED')).toHaveLength(1);
    expect(a.installs.length).toBeGreaterThanOrEqual(2);
    void b;
  });
});

import * as harness from './harness.js';
function require_harness() {
  return harness;
}

describe('per-SA operator commands', () => {
  it('rekeys one Child SA by reqid and deletes one IKE SA by id, leaving the others', async () => {
    const { pair: mk, up: goUp } = await import('./harness.js');
    const { lab, a, b } = mk();
    goUp(lab, a);
    lab.run();
    const [sa] = lab.status(a);
    const reqid = sa!.children[0]!.reqid;
    const spiBefore = sa!.children[0]!.spiIn;
    lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1', sa: sa!.id, child: reqid + 1000 }));
    lab.run();
    expect(lab.status(a)[0]!.children[0]!.spiIn).toBe(spiBefore); // no such reqid: nothing happened
    lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1', sa: sa!.id, child: reqid }));
    lab.run();
    expect(lab.status(a)[0]!.children[0]!.spiIn).not.toBe(spiBefore);
    lab.apply(a, a.engine.command({ kind: 'down', tunnel: 't1', sa: sa!.id + 1000 }));
    lab.run();
    expect(lab.status(a)).toHaveLength(1);
    lab.apply(a, a.engine.command({ kind: 'down', tunnel: 't1', sa: sa!.id }));
    lab.run();
    expect(lab.status(a)).toHaveLength(0);
    expect(lab.status(b)).toHaveLength(0);
  });
});
