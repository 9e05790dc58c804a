/**
 * Replayed, reordered, truncated and bit-flipped IKE messages are dropped
 * and counted, with state unchanged (issue 9, RFC 7296 §2.1 / §2.21,
 * RFC 7383 §2.6). Two engines in one process with a fake clock; the network
 * is replaced by a man in the middle that holds every datagram, so the test
 * decides what the receiver sees and when: before each genuine protected
 * message (IKE_INTERMEDIATE fragments, IKE_AUTH, INFORMATIONAL,
 * CREATE_CHILD_SA, pre- and post-authentication) it delivers tampered
 * copies and checks that each one bumps exactly one drop counter of the
 * receiving IKE SA while nothing else changes: SA state, Message IDs,
 * outstanding request, keys, Child SAs, endpoints, engine counters, and no
 * datagram goes out. Then the genuine message is delivered and the exchange
 * completes. After establishment every recorded datagram is replayed.
 */
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { pair, up, type Host, type Lab } from '../ikev2/harness.js';
import type { IkeSa } from '../../firmware/ikev2/ike-sa.js';
import type { Datagram } from '../../firmware/net/fake.js';
import { ExchangeType } from '../../firmware/ikev2/constants.js';

const HYBRID = { ikeProposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], fragmentSize: 700 };
const CBC = { ikeProposals: ['aes256-sha256-prfsha256-x25519-ke1_mlkem768'], espProposals: ['aes128-sha256'], fragmentSize: 700 };

type Drops = NonNullable<ReturnType<Host['engine']['status']>[number]['drops']>;

function sas(h: Host): IkeSa[] {
  const e = h.engine as unknown as { byOurSpi: Map<string, IkeSa> };
  return [...new Set(e.byOurSpi.values())];
}

const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('hex') : '-');

/** Everything an attacker must not be able to change (drop counters excluded). */
function snapshot(h: Host): string {
  const perSa = sas(h).map((sa) => {
    const x = sa as unknown as { outstanding?: { sent: { mid: number }; retries: number }; lastResponse?: { mid: number } };
    return {
      uid: sa.uid,
      state: sa.state,
      nextSendMid: sa.nextSendMid,
      nextRecvMid: sa.nextRecvMid,
      outstanding: x.outstanding ? `${x.outstanding.sent.mid}/${x.outstanding.retries}` : null,
      lastResponse: x.lastResponse?.mid ?? null,
      keys: sa.keys ? [sa.keys.skD, sa.keys.skEi, sa.keys.skEr, sa.keys.skAi, sa.keys.skAr].map(hex).join('.') : null,
      local: sa.local,
      remote: sa.remote,
      lastInboundAt: sa.lastInboundAt,
      children: sa.children.map((c) => `${c.spiIn}/${c.spiOut}/${c.state}/${c.rekeys}`),
    };
  });
  const { droppedMalformed: _ignored, ...stats } = h.engine.stats;
  const status = h.engine.status().map(({ drops: _d, ...s }) => s);
  return JSON.stringify({ perSa, stats, status, installs: h.installs.length, deletes: h.deletes.length, sends: h.actions.filter((a) => a.kind === 'send').length });
}

function dropSum(h: Host): number {
  let n = h.engine.stats.droppedMalformed;
  for (const sa of sas(h)) n += sa.drops.replay + sa.drops.auth + sa.drops.malformed + sa.drops.unexpected;
  return n;
}

function totals(h: Host): Drops {
  const t = { replay: 0, auth: 0, malformed: 0, unexpected: 0, retransmits: 0 };
  for (const sa of sas(h)) for (const k of Object.keys(t) as (keyof Drops)[]) t[k] += sa.drops[k];
  return t;
}

/** A man in the middle: every datagram is held until the test delivers it. */
class Mitm {
  readonly held: Datagram[] = [];
  readonly log: Datagram[] = [];
  constructor(
    readonly lab: Lab,
    readonly hosts: Host[],
  ) {
    lab.net.dropFilter = (d) => {
      this.held.push({ ...d, data: d.data.slice() });
      this.log.push({ ...d, data: d.data.slice() });
      return true;
    };
  }
  receiver(d: Datagram): Host {
    return this.hosts.find((h) => h.address === d.to.address)!;
  }
  deliver(d: Datagram, data = d.data): void {
    const h = this.receiver(d);
    this.lab.apply(h, h.engine.receive(data, d.from, d.to));
  }
}

const exchangeOf = (d: Uint8Array): number => d[18]!;
const isResponse = (d: Uint8Array): boolean => (d[19]! & 0x20) !== 0;

/** Tampered copies of a protected datagram: each must be dropped without effect. */
function tampered(d: Uint8Array): { what: string; data: Uint8Array }[] {
  const out: { what: string; data: Uint8Array }[] = [];
  const flip = (at: number, bit: number, what: string) => {
    const c = d.slice();
    c[at] ^= 1 << bit;
    out.push({ what, data: c });
  };
  flip(d.length - 1, 0, 'ICV bit flip');
  flip(d.length >> 1, 3, 'ciphertext bit flip');
  flip(28 + 4 + 1, 6, 'SK/SKF body bit flip (IV or fragment number)');
  flip(17, 4, 'major version bit flip');
  flip(20, 0, 'Message ID bit flip (low byte of the high half)');
  flip(23, 0, 'Message ID bit flip');
  flip(27, 2, 'header length bit flip');
  flip(19, 5, 'Response flag flip');
  out.push({ what: 'truncated by one octet', data: d.slice(0, d.length - 1) });
  out.push({ what: 'truncated to half', data: d.slice(0, d.length >> 1) });
  out.push({ what: 'truncated to the header', data: d.slice(0, 28) });
  out.push({ what: 'extended by one octet', data: Uint8Array.from([...d, 0]) });
  return out;
}

/**
 * Drive the exchange through the MITM. Before every genuine protected
 * datagram (not IKE_SA_INIT: unauthenticated, a forger that wins the race
 * can always break it), deliver its tampered copies and check each is
 * dropped, counted once and changes nothing.
 */
function runTampering(m: Mitm, counted: Map<string, number>): number {
  let injected = 0;
  for (let guard = 0; guard < 500 && m.held.length; guard++) {
    const d = m.held.shift()!;
    const r = m.receiver(d);
    if (exchangeOf(d.data) !== ExchangeType.IKE_SA_INIT && sas(r).length) {
      for (const t of tampered(d.data)) {
        const before = snapshot(r);
        const n0 = dropSum(r);
        const heldBefore = m.held.length;
        m.deliver(d, t.data);
        expect(snapshot(r), `${t.what} changed state`).toBe(before);
        expect(dropSum(r) - n0, `${t.what} was not counted exactly once`).toBe(1);
        expect(m.held.length, `${t.what} made the receiver send`).toBe(heldBefore);
        const key = `${exchangeOf(d.data)}${isResponse(d.data) ? 'r' : 'q'}`;
        counted.set(key, (counted.get(key) ?? 0) + 1);
        injected++;
      }
    }
    m.deliver(d);
  }
  return injected;
}

function established(lab: Lab, a: Host, b: Host): void {
  expect(lab.status(a).map((x) => x.state)).toEqual(['ESTABLISHED']);
  expect(lab.status(b).map((x) => x.state)).toEqual(['ESTABLISHED']);
  expect(a.engine.stats.internalErrors + b.engine.stats.internalErrors).toBe(0);
}

describe('IKE replay and tampering: dropped, counted, state unchanged', () => {
  for (const [name, over] of [
    ['AES-GCM', HYBRID],
    ['AES-CBC + HMAC', CBC],
  ] as const) {
    it(`tampered IKE_INTERMEDIATE fragments, IKE_AUTH, INFORMATIONAL and CREATE_CHILD_SA (${name})`, () => {
      const { lab, a, b } = pair(over, over);
      const m = new Mitm(lab, [a, b]);
      const counted = new Map<string, number>();
      up(lab, a);
      let injected = runTampering(m, counted);
      established(lab, a, b);
      // Post-authentication exchanges: DPD (INFORMATIONAL) and a Child SA rekey (CREATE_CHILD_SA).
      lab.apply(a, a.engine.command({ kind: 'dpd', tunnel: 't1' }));
      injected += runTampering(m, counted);
      lab.apply(b, b.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
      injected += runTampering(m, counted);
      established(lab, a, b);
      expect(b.installs).toHaveLength(2);
      // Every protected exchange, both directions, was attacked (IKE_INTERMEDIATE is 43, IKE_AUTH 35, CREATE_CHILD_SA 36, INFORMATIONAL 37).
      for (const k of ['43q', '43r', '35q', '35r', '37q', '37r', '36q', '36r']) expect(counted.get(k), k).toBeGreaterThan(0);
      // Fragmented IKE_INTERMEDIATE: more attacks than one per message.
      expect(counted.get('43q')!).toBeGreaterThan(tampered(new Uint8Array(64)).length);
      const t = [totals(a), totals(b)];
      const sum = t.reduce((s, x) => s + x.replay + x.auth + x.malformed + x.unexpected, 0) + a.engine.stats.droppedMalformed + b.engine.stats.droppedMalformed;
      expect(sum).toBe(injected);
      // Each reason occurred: forged ICVs, replay-like Message IDs, structure errors.
      expect(t[0]!.auth + t[1]!.auth).toBeGreaterThan(0);
      expect(t[0]!.malformed + t[1]!.malformed).toBeGreaterThan(0);
      expect(t[0]!.unexpected + t[0]!.replay + t[1]!.unexpected + t[1]!.replay).toBeGreaterThan(0);
      // Visible in the status view (pqgate status --json).
      expect(a.engine.status()[0]!.drops).toEqual(t[0]);
    });
  }

  it('every datagram replayed after establishment is dropped and counted, retransmitted requests answered from the cache', () => {
    const { lab, a, b } = pair(HYBRID, HYBRID);
    const m = new Mitm(lab, [a, b]);
    up(lab, a);
    runTampering(m, new Map());
    lab.apply(a, a.engine.command({ kind: 'dpd', tunnel: 't1' }));
    runTampering(m, new Map());
    lab.apply(b, b.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
    runTampering(m, new Map());
    established(lab, a, b);
    const recorded = m.log.filter((d) => exchangeOf(d.data) !== ExchangeType.IKE_SA_INIT || isResponse(d.data));
    expect(recorded.length).toBeGreaterThan(8);
    const before = [snapshot(a), snapshot(b)];
    const drops0 = [totals(a), totals(b)];
    // Replay everything twice, in reverse order the second time (reordering).
    for (const d of [...recorded, ...[...recorded].reverse()]) m.deliver(d);
    // The cached responses re-sent for byte-identical retransmitted requests reach the initiator
    // (a replay there) and are counted too; deliver them until quiet.
    let resent = 0;
    while (m.held.length) {
      m.deliver(m.held.shift()!);
      resent++;
    }
    const drops1 = [totals(a), totals(b)];
    const delta = (i: number) => drops1[i]!.replay + drops1[i]!.auth + drops1[i]!.malformed + drops1[i]!.unexpected + drops1[i]!.retransmits - (drops0[i]!.replay + drops0[i]!.auth + drops0[i]!.malformed + drops0[i]!.unexpected + drops0[i]!.retransmits);
    expect(delta(0) + delta(1)).toBe(2 * recorded.length + resent);
    // Only the last request of each side may be answered again (RFC 7296 §2.1), from the cache.
    expect(drops1[0]!.retransmits + drops1[1]!.retransmits - drops0[0]!.retransmits - drops0[1]!.retransmits).toBeGreaterThan(0);
    expect(drops1[0]!.replay + drops1[1]!.replay).toBeGreaterThan(drops0[0]!.replay + drops0[1]!.replay + recorded.length);
    // Nothing else changed except the send count of re-sent cached responses.
    const strip = (s: string) => s.replace(/"sends":\d+/, '');
    expect(strip(snapshot(a))).toBe(strip(before[0]!));
    expect(strip(snapshot(b))).toBe(strip(before[1]!));
    // The tunnel still works: a fresh exchange completes.
    lab.net.dropFilter = undefined;
    lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
    lab.run(10_000);
    established(lab, a, b);
    expect(a.installs).toHaveLength(3);
  });

  it('reordered and duplicated IKE_INTERMEDIATE fragments: duplicates counted, message reassembled once', () => {
    const { lab, a, b } = pair(HYBRID, HYBRID);
    const m = new Mitm(lab, [a, b]);
    up(lab, a);
    // IKE_SA_INIT both ways.
    while (m.held.length && exchangeOf(m.held[0]!.data) === ExchangeType.IKE_SA_INIT) m.deliver(m.held.shift()!);
    const frags = m.held.splice(0, m.held.length);
    expect(frags.length).toBeGreaterThan(1);
    expect(frags.every((d) => exchangeOf(d.data) === ExchangeType.IKE_INTERMEDIATE && !isResponse(d.data))).toBe(true);
    const [bsa] = sas(b);
    const before = bsa!.drops.replay;
    // Last fragment first, then each fragment twice except the first: all but the first copies are duplicates.
    const order = [...frags].reverse();
    const mid = bsa!.nextRecvMid;
    for (const d of order.slice(0, -1)) {
      m.deliver(d);
      m.deliver(d);
    }
    expect(bsa!.drops.replay - before).toBe(order.length - 1);
    expect(bsa!.nextRecvMid).toBe(mid); // incomplete: nothing processed yet
    m.deliver(order[order.length - 1]!);
    expect(bsa!.nextRecvMid).toBe(mid + 1);
    // Deliver the rest of the handshake.
    while (m.held.length) m.deliver(m.held.shift()!);
    established(lab, a, b);
  });
});

// Keep the helper used (hash of datagrams for debugging failed runs).
export const datagramId = (d: Uint8Array): string => createHash('sha1').update(d).digest('hex').slice(0, 8);
