/**
 * Batched UDP I/O of the userspace data plane on real loopback sockets:
 * UdpBatchSender (sendmmsg + UDP GSO through the addon) delivers every
 * datagram intact and in order, with and without GSO, mixed sizes
 * included; UdpBatchReceiver (recvmmsg + UDP GRO) splits GRO runs back into
 * the original datagrams, sends ESP (non-zero SPI) and everything else
 * (non-ESP marker, keepalive) to the right handlers, reports the source,
 * and stop() hands the socket back to node:dgram.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { UdpBatchSender, dgramSocketFd } from '../../firmware/dataplane/udp-batch.js';
import { UdpBatchReceiver, dgramHandle } from '../../firmware/dataplane/udp-recv.js';
import { nativeAead } from '../../firmware/dataplane/esp/native-aead.js';
import type { Endpoint } from '../../firmware/dataplane/types.js';

const lib = nativeAead();
const sockets: Socket[] = [];
const stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
  for (const s of sockets.splice(0)) s.close();
});

async function bound(v6 = false): Promise<{ s: Socket; ep: Endpoint }> {
  const s = createSocket(v6 ? { type: 'udp6', ipv6Only: true } : 'udp4');
  sockets.push(s);
  const address = v6 ? '::1' : '127.0.0.1';
  await new Promise<void>((r, j) => {
    s.once('error', j);
    s.bind(0, address, () => r());
  });
  return { s, ep: { address, port: s.address().port } };
}

/** An "ESP packet": SPI, sequence number, then a recognisable body. */
function esp(spi: number, seq: number, len: number): Uint8Array {
  const p = new Uint8Array(len);
  const v = new DataView(p.buffer);
  v.setUint32(0, spi);
  v.setUint32(4, seq);
  for (let i = 8; i < len; i++) p[i] = (seq + i) & 0xff;
  return p;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await wait(5);
  }
}

describe.skipIf(!lib)('batched UDP I/O (pqtun addon)', () => {
  for (const gso of [true, false]) {
    it(`sender: ${gso ? 'UDP GSO + sendmmsg' : 'sendmmsg'}, received by node:dgram intact and in order`, async () => {
      const tx = await bound();
      const rx = await bound();
      const got: Buffer[] = [];
      rx.s.on('message', (m) => got.push(m));
      let fallback = 0;
      const sender = new UdpBatchSender({ lib: lib!, gso, fdFor: () => dgramSocketFd(tx.s), fallback: () => void fallback++ });
      // Runs of equal sizes with a shorter tail, a size change, single odd ones: 300 datagrams.
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 300; i++) sent.push(esp(0x1000, i + 1, i < 100 ? 1200 : i < 101 ? 333 : i < 250 ? 1400 : 64 + i));
      // In bursts of 50 (a 300-datagram burst could overflow a default-sized receive buffer).
      for (let i = 0; i < sent.length; i += 50) {
        for (const d of sent.slice(i, i + 50)) sender.send(tx.ep, rx.ep, d);
        sender.flush();
        await until(() => got.length === Math.min(i + 50, sent.length));
      }
      expect(fallback).toBe(0);
      expect(sender.stats).toMatchObject({ datagrams: 300, dropped: 0, errors: 0 });
      got.forEach((g, i) => expect(g.equals(Buffer.from(sent[i]!)), `datagram ${i}`).toBe(true));
    });
  }

  it('sender: no descriptor → the fallback', async () => {
    const rx = await bound();
    const via: Uint8Array[] = [];
    const sender = new UdpBatchSender({ lib: lib!, fdFor: () => undefined, fallback: (_f, _t, d) => void via.push(d) });
    sender.send({ address: '127.0.0.1', port: 1 }, rx.ep, esp(1, 1, 100));
    expect(via).toHaveLength(1);
  });

  it('receiver: recvmmsg + GRO splits bursts back into datagrams; ESP and the rest go apart; stop() returns the socket to node', async () => {
    const tx = await bound();
    const rx = await bound();
    const handle = dgramHandle(rx.s);
    expect(handle).toBeDefined();
    const espIn: { data: Buffer; from: Endpoint; to: Endpoint }[] = [];
    const other: Uint8Array[] = [];
    let batchEnds = 0;
    const r = new UdpBatchReceiver({
      lib: lib!,
      handle: handle!,
      local: rx.ep,
      onEsp: (data, from, to) => espIn.push({ data: Buffer.from(data), from, to }), // views of a reused arena: copy
      onOther: (data) => other.push(data),
      onBatchEnd: () => batchEnds++,
    });
    r.start();
    stops.push(() => r.stop());
    let nodeSaw = 0;
    rx.s.on('message', () => nodeSaw++);
    // A GSO burst of equal-sized ESP packets with a short tail, then IKE (marker) and a keepalive.
    const sender = new UdpBatchSender({ lib: lib!, fdFor: () => dgramSocketFd(tx.s), fallback: () => {} });
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) sent.push(esp(0xabcd, i + 1, i < 39 ? 1000 : 77));
    for (const d of sent) sender.send(tx.ep, rx.ep, d);
    sender.flush();
    const ike = new Uint8Array([0, 0, 0, 0, ...new Array(40).fill(7)]);
    tx.s.send(ike, rx.ep.port, rx.ep.address);
    tx.s.send(new Uint8Array([0xff]), rx.ep.port, rx.ep.address);
    await until(() => espIn.length === 40 && other.length === 2);
    espIn.forEach((e, i) => {
      expect(e.data.equals(Buffer.from(sent[i]!)), `ESP ${i}`).toBe(true);
      expect(e.from).toEqual(tx.ep);
      expect(e.to).toEqual(rx.ep);
    });
    expect(Buffer.from(other[0]!).equals(Buffer.from(ike))).toBe(true);
    expect(Array.from(other[1]!)).toEqual([0xff]);
    expect(nodeSaw).toBe(0);
    expect(batchEnds).toBeGreaterThan(0);
    expect(r.stats.groRuns).toBeGreaterThan(0); // the burst came in as GRO runs, not 40 reads
    // Back to node.
    r.stop();
    tx.s.send(esp(0xabcd, 99, 50), rx.ep.port, rx.ep.address);
    await until(() => nodeSaw === 1);
    expect(espIn).toHaveLength(40);
  });

  it('IPv6: GSO send and GRO receive over ::1, the source in canonical form', async () => {
    let tx, rx;
    try {
      tx = await bound(true);
      rx = await bound(true);
    } catch {
      return; // no IPv6 loopback here
    }
    const got: { data: Buffer; from: Endpoint }[] = [];
    const r = new UdpBatchReceiver({ lib: lib!, handle: dgramHandle(rx.s)!, local: rx.ep, onEsp: (d, from) => got.push({ data: Buffer.from(d), from }), onOther: () => {} });
    r.start();
    stops.push(() => r.stop());
    const sender = new UdpBatchSender({ lib: lib!, fdFor: () => dgramSocketFd(tx.s), fallback: () => {} });
    const sent = Array.from({ length: 10 }, (_, i) => esp(0x77, i + 1, 900));
    for (const d of sent) sender.send(tx.ep, rx.ep, d);
    sender.flush();
    await until(() => got.length === 10);
    got.forEach((g, i) => {
      expect(g.data.equals(Buffer.from(sent[i]!))).toBe(true);
      expect(g.from).toEqual(tx.ep);
    });
  });
});
