import { describe, it, expect } from 'vitest';
import { FakeNetwork, FakeTransport } from '../../firmware/net/fake.js';
import { addNonEspMarker } from '../../firmware/net/natt.js';
import { FakeClock } from '../../firmware/util/clock.js';
import type { Endpoint } from '../../firmware/dataplane/types.js';

const A: Endpoint = { address: '192.0.2.1', port: 500 };
const B: Endpoint = { address: '192.0.2.2', port: 500 };

/** Send n numbered datagrams A→B and return the order and count received. */
function run(opts: ConstructorParameters<typeof FakeNetwork>[0], n = 200): { got: number[]; net: FakeNetwork } {
  const net = new FakeNetwork(opts);
  const got: number[] = [];
  net.attach(B, (d) => got.push((d[0]! << 8) | d[1]!));
  for (let i = 0; i < n; i++) net.send(A, B, new Uint8Array([i >> 8, i & 0xff]));
  net.runUntilIdle();
  return { got, net };
}

describe('FakeNetwork', () => {
  it('delivers in order, copies data, reports from/to', () => {
    const net = new FakeNetwork();
    const seen: { d: number[]; from: Endpoint; to: Endpoint }[] = [];
    net.attach(B, (d, from, to) => seen.push({ d: [...d], from, to }));
    const buf = new Uint8Array([1, 2, 3]);
    net.send(A, B, buf);
    buf[0] = 99; // the network holds its own copy
    net.send(A, B, new Uint8Array([4]));
    expect(net.pending()).toBe(2);
    expect(net.deliverDue()).toBe(2);
    expect(seen).toEqual([
      { d: [1, 2, 3], from: A, to: B },
      { d: [4], from: A, to: B },
    ]);
  });

  it('counts datagrams to unattached endpoints as undeliverable', () => {
    const net = new FakeNetwork();
    net.send(A, B, new Uint8Array([1]));
    net.runUntilIdle();
    expect(net.stats.undeliverable).toBe(1);
    expect(net.trace.map((t) => t.event)).toEqual(['sent', 'undeliverable']);
  });

  it('delivers replies sent from inside a handler in the same run', () => {
    const net = new FakeNetwork();
    let pongs = 0;
    net.attach(B, (d, from) => net.send(B, from, d));
    net.attach(A, () => pongs++);
    net.send(A, B, new Uint8Array([1]));
    net.runUntilIdle();
    expect(pongs).toBe(1);
  });

  it('applies delay under the fake clock and advances it only in runUntilIdle', () => {
    const clock = new FakeClock(1000);
    const net = new FakeNetwork({ clock, delayMs: 50 });
    const at: number[] = [];
    net.attach(B, () => at.push(clock.now()));
    net.send(A, B, new Uint8Array([1]));
    expect(net.step()).toBe(false); // not due yet
    expect(net.nextDeliveryTime()).toBe(1050);
    const ticks: number[] = [];
    net.runUntilIdle({ onAdvance: (now) => ticks.push(now) });
    expect(at).toEqual([1050]);
    expect(ticks).toEqual([1050]);
    net.send(A, B, new Uint8Array([2]));
    expect(net.runUntilIdle({ advanceClock: false })).toBe(0);
    expect(net.pending()).toBe(1);
  });

  it('loss is reproducible for a seed and close to the configured rate', () => {
    const r1 = run({ seed: 42, lossRate: 0.3 });
    const r2 = run({ seed: 42, lossRate: 0.3 });
    const r3 = run({ seed: 43, lossRate: 0.3 });
    expect(r1.got).toEqual(r2.got);
    expect(r1.got).not.toEqual(r3.got);
    expect(r1.net.stats.lost).toBe(200 - r1.got.length);
    expect(r1.net.stats.lost).toBeGreaterThan(35);
    expect(r1.net.stats.lost).toBeLessThan(85);
    // in order when only losing
    expect([...r1.got].sort((a, b) => a - b)).toEqual(r1.got);
  });

  it('reordering is reproducible and really reorders', () => {
    const r1 = run({ seed: 7, reorderRate: 0.2, reorderDelayMs: 3, delayMs: 1 });
    const r2 = run({ seed: 7, reorderRate: 0.2, reorderDelayMs: 3, delayMs: 1 });
    expect(r1.got).toEqual(r2.got);
    expect(r1.got).toHaveLength(200);
    expect(r1.got).not.toEqual([...r1.got].sort((a, b) => a - b));
  });

  it('reordering sends within one instant let later datagrams overtake held ones', () => {
    // All 200 sent at t=0; the held-back ones arrive after every undelayed one.
    const { got } = run({ seed: 1, reorderRate: 0.25, reorderDelayMs: 5 });
    const firstHeld = got.findIndex((v, i) => i > 0 && v < got[i - 1]!);
    expect(firstHeld).toBeGreaterThan(0);
    const tail = got.slice(firstHeld);
    expect(tail).toEqual([...tail].sort((a, b) => a - b));
  });

  it('duplication delivers extra copies deterministically', () => {
    const r1 = run({ seed: 9, duplicateRate: 0.1 });
    const r2 = run({ seed: 9, duplicateRate: 0.1 });
    expect(r1.got).toEqual(r2.got);
    expect(r1.got.length).toBe(200 + r1.net.stats.duplicated);
    expect(r1.net.stats.duplicated).toBeGreaterThan(5);
    expect(new Set(r1.got).size).toBe(200);
  });

  it('changing one rate does not reshuffle the fates drawn for another', () => {
    const lossOnly = run({ seed: 5, lossRate: 0.2 });
    const lossAndDup = run({ seed: 5, lossRate: 0.2, duplicateRate: 0.3 });
    expect(new Set(lossAndDup.got)).toEqual(new Set(lossOnly.got));
  });

  it('drops datagrams above the MTU and by filter', () => {
    const net = new FakeNetwork({ mtu: 1280 });
    const got: number[] = [];
    net.attach(B, (d) => got.push(d.length));
    net.send(A, B, new Uint8Array(1252)); // 1252 + 28 = 1280: fits
    net.send(A, B, new Uint8Array(1253));
    net.dropFilter = (d) => d.data.length === 7;
    net.send(A, B, new Uint8Array(7));
    net.send(A, B, new Uint8Array(8));
    net.runUntilIdle();
    expect(got).toEqual([1252, 8]);
    expect(net.stats.tooBig).toBe(1);
    expect(net.stats.filtered).toBe(1);
  });

  it('translates through a NAPT and back; rebind changes the mapping', () => {
    const net = new FakeNetwork();
    const inside: Endpoint = { address: '10.0.0.2', port: 500 };
    const server: Endpoint = { address: '203.0.113.5', port: 500 };
    const nat = net.addNat('10.0.0.2', '198.51.100.1', 40000);
    const atServer: Endpoint[] = [];
    const atInside: Endpoint[] = [];
    net.attach(server, (d, from) => {
      atServer.push(from);
      net.send(server, from, d);
    });
    net.attach(inside, (_d, from, to) => atInside.push(from, to));
    net.send(inside, server, new Uint8Array([1]));
    net.runUntilIdle();
    expect(atServer).toEqual([{ address: '198.51.100.1', port: 40000 }]);
    expect(atInside).toEqual([server, inside]);
    nat.rebind();
    net.send(inside, server, new Uint8Array([2]));
    net.runUntilIdle();
    expect(atServer[1]).toEqual({ address: '198.51.100.1', port: 40001 });
    // the old mapping is gone
    net.send(server, { address: '198.51.100.1', port: 40000 }, new Uint8Array([3]));
    net.runUntilIdle();
    expect(net.stats.undeliverable).toBe(1);
  });

  it('refuses a second handler on one endpoint; detach frees it', () => {
    const net = new FakeNetwork();
    const off = net.attach(A, () => {});
    expect(() => net.attach(A, () => {})).toThrow(/already attached/);
    off();
    expect(net.isAttached(A)).toBe(false);
    net.attach(A, () => {});
  });

  it('stops a livelock', () => {
    const net = new FakeNetwork();
    net.attach(A, (d) => net.send(A, A, d));
    net.send(A, A, new Uint8Array([1]));
    expect(() => net.runUntilIdle({ maxSteps: 100 })).toThrow(/still delivering/);
  });
});

describe('FakeTransport', () => {
  it('adds and strips the non-ESP marker on the NAT-T port, passes ESP and ignores keepalives', () => {
    const net = new FakeNetwork();
    const t1 = new FakeTransport(net, { addresses: ['192.0.2.1'] });
    const t2 = new FakeTransport(net, { addresses: ['192.0.2.2'] });
    const raw: number[][] = [];
    const ike2: { d: number[]; to: Endpoint }[] = [];
    const esp2: number[][] = [];
    t2.onIke((d, _f, to) => ike2.push({ d: [...d], to }));
    t2.onEsp((d) => esp2.push([...d]));
    const spy = { address: '192.0.2.9', port: 4500 };
    net.attach(spy, (d) => raw.push([...d]));
    const n1 = { address: '192.0.2.1', port: 4500 };
    const n2 = { address: '192.0.2.2', port: 4500 };
    t1.send(n1, spy, new Uint8Array([1, 2, 3, 4, 5]));
    t1.send({ address: '192.0.2.1', port: 500 }, spy, new Uint8Array([1, 2, 3, 4, 5]));
    t1.send(n1, n2, new Uint8Array(28).fill(3));
    t1.sendRaw(n1, n2, new Uint8Array([0xff]));
    t1.sendRaw(n1, n2, new Uint8Array([1, 1, 1, 1, 0, 0, 0, 1, 42]));
    net.send(n1, n2, addNonEspMarker(new Uint8Array(0)).subarray(0, 3));
    net.runUntilIdle();
    expect(raw).toEqual([
      [0, 0, 0, 0, 1, 2, 3, 4, 5],
      [1, 2, 3, 4, 5],
    ]);
    expect(ike2).toEqual([{ d: new Array(28).fill(3), to: n2 }]);
    expect(esp2).toEqual([[1, 1, 1, 1, 0, 0, 0, 1, 42]]);
    expect(t2.stats).toMatchObject({ keepalivesIn: 1, invalidIn: 1, espIn: 1, ikeIn: 1 });
    expect(t1.localEndpoints()).toHaveLength(2);
  });
});
