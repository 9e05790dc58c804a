import { describe, it, expect, afterEach } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { UdpTransport, expandListen, probeSourceAddress } from '../../firmware/net/udp.js';
import { classifyNattDatagram, addNonEspMarker } from '../../firmware/net/natt.js';
import type { Endpoint } from '../../firmware/dataplane/types.js';

describe('RFC 3948 demultiplexing on the NAT-T port', () => {
  it('classifies marker, keepalive, ESP and runts', () => {
    const ike = new Uint8Array(32).fill(7);
    const withMarker = addNonEspMarker(ike);
    expect([...withMarker.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    const c1 = classifyNattDatagram(withMarker);
    expect(c1.kind).toBe('ike');
    expect(c1.kind === 'ike' && [...c1.data]).toEqual([...ike]);
    expect(classifyNattDatagram(new Uint8Array([0xff])).kind).toBe('keepalive');
    const esp = new Uint8Array([0xc0, 0x01, 0x02, 0x03, 0, 0, 0, 1, 9, 9]);
    const c2 = classifyNattDatagram(esp);
    expect(c2.kind).toBe('esp');
    expect(c2.kind === 'esp' && c2.data).toBe(esp);
    expect(classifyNattDatagram(new Uint8Array([0, 0, 0, 0])).kind).toBe('invalid'); // marker, no message
    expect(classifyNattDatagram(new Uint8Array([1, 2])).kind).toBe('invalid');
    expect(classifyNattDatagram(new Uint8Array([0xff, 0xff])).kind).toBe('invalid'); // not a keepalive
    expect(classifyNattDatagram(new Uint8Array([1, 2, 3, 4, 5])).kind).toBe('invalid'); // shorter than SPI+SEQ
    expect(classifyNattDatagram(new Uint8Array()).kind).toBe('invalid');
  });
});

describe('listen expansion', () => {
  const ifaces = ['127.0.0.1', '192.0.2.1', '::1', 'fe80::1', '2001:db8::1'];
  it('expands wildcards per family, skips link-local, keeps explicit addresses', () => {
    expect(expandListen(['0.0.0.0'], ifaces)).toEqual(['127.0.0.1', '192.0.2.1']);
    expect(expandListen(['::'], ifaces)).toEqual(['::1', '2001:db8::1']);
    expect(expandListen(['192.0.2.1', '0.0.0.0'], ifaces)).toEqual(['192.0.2.1', '127.0.0.1']);
    expect(expandListen(['2001:DB8::1'], [])).toEqual(['2001:db8::1']);
    expect(() => expandListen(['eth0'], ifaces)).toThrow(/not an IP address/);
  });
});

/** A plain UDP peer on loopback. */
async function peer(): Promise<{ s: Socket; ep: Endpoint; got: { data: Buffer; port: number }[]; next: () => Promise<Buffer> }> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const got: { data: Buffer; port: number }[] = [];
  const waiters: ((b: Buffer) => void)[] = [];
  s.on('message', (m, ri) => {
    got.push({ data: m, port: ri.port });
    waiters.shift()?.(m);
  });
  return {
    s,
    ep: { address: '127.0.0.1', port: s.address().port },
    got,
    next: () => new Promise((r) => waiters.push(r)),
  };
}

function sendTo(s: Socket, data: Uint8Array, ep: Endpoint): Promise<void> {
  return new Promise((r, j) => s.send(data, ep.port, ep.address, (e) => (e ? j(e) : r())));
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('UdpTransport on loopback', () => {
  const open: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });

  async function transport(): Promise<UdpTransport> {
    const t = await UdpTransport.open({ listen: ['127.0.0.1'], ikePort: 0, nattPort: 0 });
    open.push(t);
    return t;
  }

  it('binds an IKE and a NAT-T socket per address on ephemeral ports', async () => {
    const t = await transport();
    const ike = t.endpoints('ike');
    const natt = t.endpoints('natt');
    expect(ike).toHaveLength(1);
    expect(natt).toHaveLength(1);
    expect(ike[0]!.address).toBe('127.0.0.1');
    expect(ike[0]!.port).toBeGreaterThan(0);
    expect(natt[0]!.port).not.toBe(ike[0]!.port);
    expect(t.boundPorts()).toEqual({ ike: ike[0]!.port, natt: natt[0]!.port });
  });

  it('delivers IKE on the IKE port as is, and demultiplexes the NAT-T port', async () => {
    const t = await transport();
    const p = await peer();
    open.push({ close: () => p.s.close() });
    const ikeIn: { data: number[]; from: Endpoint; to: Endpoint }[] = [];
    const espIn: { data: number[]; from: Endpoint; to: Endpoint }[] = [];
    t.onIke((data, from, to) => ikeIn.push({ data: [...data], from, to }));
    t.onEsp((data, from, to) => espIn.push({ data: [...data], from, to }));
    const [ike] = t.endpoints('ike');
    const [natt] = t.endpoints('natt');
    const msg = Uint8Array.from({ length: 40 }, (_, i) => i + 1);
    await sendTo(p.s, msg, ike!); // port 500: no marker
    await sendTo(p.s, addNonEspMarker(msg), natt!); // 4500 with marker
    await sendTo(p.s, new Uint8Array([0xff]), natt!); // keepalive
    const esp = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 5, 1, 2, 3]);
    await sendTo(p.s, esp, natt!);
    await sendTo(p.s, new Uint8Array([0, 0]), natt!); // runt
    await wait(100);
    expect(ikeIn).toHaveLength(2);
    expect(ikeIn[0]).toEqual({ data: [...msg], from: p.ep, to: ike });
    expect(ikeIn[1]).toEqual({ data: [...msg], from: p.ep, to: natt });
    expect(espIn).toEqual([{ data: [...esp], from: p.ep, to: natt }]);
    expect(t.stats.keepalivesIn).toBe(1);
    expect(t.stats.invalidIn).toBe(1);
  });

  it('adds the non-ESP marker only when sending from the NAT-T port', async () => {
    const t = await transport();
    const p = await peer();
    open.push({ close: () => p.s.close() });
    const [ike] = t.endpoints('ike');
    const [natt] = t.endpoints('natt');
    const msg = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    let n = p.next();
    t.send(ike!, p.ep, msg);
    expect([...(await n)]).toEqual([...msg]);
    expect(p.got.at(-1)!.port).toBe(ike!.port);
    n = p.next();
    t.send(natt!, p.ep, msg);
    expect([...(await n)]).toEqual([0, 0, 0, 0, ...msg]);
    expect(p.got.at(-1)!.port).toBe(natt!.port);
    n = p.next();
    t.sendRaw(natt!, p.ep, new Uint8Array([0xff]));
    expect([...(await n)]).toEqual([0xff]);
  });

  it('picks a socket of the right role for a wildcard source address', async () => {
    const t = await transport();
    const p = await peer();
    open.push({ close: () => p.s.close() });
    const { ike, natt } = t.boundPorts();
    const msg = new Uint8Array([9, 9, 9, 9]);
    let n = p.next();
    t.send({ address: '0.0.0.0', port: natt }, p.ep, msg);
    expect([...(await n)]).toEqual([0, 0, 0, 0, 9, 9, 9, 9]);
    expect(p.got.at(-1)!.port).toBe(natt);
    n = p.next();
    t.send({ address: '0.0.0.0', port: ike }, p.ep, msg);
    expect([...(await n)]).toEqual([9, 9, 9, 9]);
    expect(p.got.at(-1)!.port).toBe(ike);
  });

  it('survives a throwing handler', async () => {
    const t = await transport();
    const p = await peer();
    open.push({ close: () => p.s.close() });
    let calls = 0;
    t.onIke(() => {
      calls++;
      throw new Error('handler bug');
    });
    const [ike] = t.endpoints('ike');
    await sendTo(p.s, new Uint8Array(30), ike!);
    await sendTo(p.s, new Uint8Array(30), ike!);
    await wait(100);
    expect(calls).toBe(2);
  });

  it('reports a port in use clearly and releases what it bound', async () => {
    const t = await transport();
    const { ike } = t.boundPorts();
    await expect(UdpTransport.open({ listen: ['127.0.0.1'], ikePort: ike, nattPort: 0 })).rejects.toThrow(/cannot bind UDP 127\.0\.0\.1:\d+: EADDRINUSE/);
    // the NAT-T port of a half-failed pair is released too
    const holder = await UdpTransport.open({ listen: ['127.0.0.1'], ikePort: 0, nattPort: 0 });
    const natt = holder.boundPorts().natt;
    await holder.close();
    await expect(UdpTransport.open({ listen: ['127.0.0.1'], ikePort: 0, nattPort: natt }).then((x) => x.close())).resolves.toBeUndefined();
  });

  it('refuses an address that is not configured', async () => {
    await expect(UdpTransport.open({ listen: ['192.0.2.123'], ikePort: 0, nattPort: 0 })).rejects.toThrow(/EADDRNOTAVAIL/);
  });

  it('refresh() binds new addresses and closes vanished ones', async () => {
    let addrs = ['127.0.0.1'];
    const t = await UdpTransport.open({ listen: ['0.0.0.0'], ikePort: 0, nattPort: 0, interfaceAddresses: () => addrs });
    open.push(t);
    expect(t.localEndpoints().map((e) => e.address)).toEqual(['127.0.0.1', '127.0.0.1']);
    addrs = ['127.0.0.1', '127.0.0.2'];
    expect(await t.refresh()).toEqual({ added: ['127.0.0.2'], removed: [] });
    expect(t.endpoints('ike').map((e) => e.address)).toEqual(['127.0.0.1', '127.0.0.2']);
    addrs = ['127.0.0.2'];
    expect(await t.refresh()).toEqual({ added: [], removed: ['127.0.0.1'] });
    expect(t.endpoints('natt').map((e) => e.address)).toEqual(['127.0.0.2']);
  });

  it('close() waits for queued sends', async () => {
    const t = await UdpTransport.open({ listen: ['127.0.0.1'], ikePort: 0, nattPort: 0 });
    const p = await peer();
    open.push({ close: () => p.s.close() });
    const [ike] = t.endpoints('ike');
    for (let i = 0; i < 50; i++) t.send(ike!, p.ep, new Uint8Array([i, 1, 2, 3]));
    await t.close();
    await wait(50);
    expect(p.got).toHaveLength(50);
  });

  it('probeSourceAddress finds the loopback source for a loopback peer', async () => {
    expect(await probeSourceAddress('127.0.0.1')).toBe('127.0.0.1');
  });
});

describe('UdpTransport on IPv6 loopback', () => {
  const hasV6 = Object.values(networkInterfaces()).some((l) => l?.some((a) => a.address === '::1'));
  it.skipIf(!hasV6)('binds ::1 and adds the marker on the NAT-T port', async () => {
    const t = await UdpTransport.open({ listen: ['0:0:0:0:0:0:0:1'], ikePort: 0, nattPort: 0 });
    const s = createSocket({ type: 'udp6', ipv6Only: true });
    try {
      await new Promise<void>((r) => s.bind(0, '::1', () => r()));
      const got: Buffer[] = [];
      s.on('message', (m) => got.push(m));
      const [natt] = t.endpoints('natt');
      expect(natt!.address).toBe('::1');
      const ins: Endpoint[] = [];
      t.onIke((_d, from) => ins.push(from));
      t.send(natt!, { address: '::1', port: s.address().port }, new Uint8Array([5, 6, 7, 8]));
      await sendTo(s, addNonEspMarker(new Uint8Array(30)), natt!);
      await wait(100);
      expect(got.map((b) => [...b])).toEqual([[0, 0, 0, 0, 5, 6, 7, 8]]);
      expect(ins).toEqual([{ address: '::1', port: s.address().port }]);
    } finally {
      s.close();
      await t.close();
    }
  });
});
