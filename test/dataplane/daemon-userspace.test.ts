/**
 * The daemon with its default data plane: two in-process daemons (real
 * IKE engine) on an in-memory network, each with the userspace ESP data
 * plane over in-memory TUN devices. Checks the wiring, not the ESP code
 * (test/dataplane/userspace.test.ts does that): ESP is forced into UDP,
 * ESP datagrams reach receiveEsp, tunnel settings (inside address, MTU, MSS)
 * reach the interface before the first Child SA, route-based tunnels get
 * routes for their remote selectors except 0/0, counters show up in
 * status, a Child SA rekey keeps the policies, reload removes a dropped
 * tunnel's interface.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../firmware/daemon.js';
import { parseDaemonConfig } from '../../firmware/config/schema.js';
import { FakeNetwork, FakeTransport } from '../../firmware/net/fake.js';
import { MemoryLinks } from '../../firmware/dataplane/tun/memory.js';
import { UserspaceDataPlane } from '../../firmware/dataplane/userspace.js';
import { parseFlow, newFlow } from '../../firmware/dataplane/ip.js';
import type { ChildSaStatus, IkeSaStatus } from '../../firmware/ikev2/engine-types.js';
import { icmpEcho, tcpSyn } from './helpers.js';

const PSK = 'daemon-userspace-psk-0123456789';
const A = '192.0.2.1';
const B = '192.0.2.2';

let daemons: Daemon[] = [];
let pumps: NodeJS.Timeout[] = [];
afterEach(async () => {
  for (const p of pumps.splice(0)) clearInterval(p);
  for (const d of daemons.splice(0)) await d.stop('test end');
});

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(f: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(5);
  }
}

interface Side {
  d: Daemon;
  links: MemoryLinks;
  transport: FakeTransport;
}

function tunnelDoc(name: string, local: string, remote: string | undefined, extra: object): object {
  return {
    name,
    local_addr: local,
    ...(remote ? { remote_addr: remote } : { remote_addr: '%any' }),
    local_id: `fqdn:${local === A ? 'a' : 'b'}.example`,
    remote_id: `fqdn:${local === A ? 'b' : 'a'}.example`,
    psk: PSK,
    proposals: ['aes256gcm16-prfsha384-x25519'],
    esp_proposals: ['aes256gcm16'],
    start_action: 'none',
    ...extra,
  };
}

async function startSide(net: FakeNetwork, addr: string, tunnels: object[], extra: object = {}): Promise<Side> {
  const config = parseDaemonConfig({ listen: [addr], log_level: 'error', control_socket: '/nonexistent/ctl.sock', tunnels, ...extra });
  const links = new MemoryLinks();
  let transport!: FakeTransport;
  const d = await Daemon.start({
    config,
    noControl: true,
    links,
    transportFactory: async () => (transport = new FakeTransport(net, { addresses: [addr] })),
    sourceAddressFor: null,
  });
  daemons.push(d);
  return { d, links, transport };
}

function pair(): FakeNetwork {
  const net = new FakeNetwork();
  // The daemons run on real timers; deliver whatever is due every millisecond.
  pumps.push(setInterval(() => net.deliverDue(), 1));
  return net;
}

async function established(d: Daemon, tunnel: string, children = 1): Promise<IkeSaStatus> {
  return until(() => d.status().find((s) => s.tunnel === tunnel && s.state === 'ESTABLISHED' && s.children.filter((c) => c.state === 'INSTALLED').length >= children), 5000, `${tunnel} established`);
}

function dp(d: Daemon): UserspaceDataPlane {
  const p = (d as unknown as { dataPlane: unknown }).dataPlane;
  expect(p).toBeInstanceOf(UserspaceDataPlane);
  return p as UserspaceDataPlane;
}

function addrs(pkt: Uint8Array): { src: string; dst: string } {
  const ip = (o: number) => [...pkt.subarray(o, o + 4)].join('.');
  return { src: ip(12), dst: ip(16) };
}

describe('daemon with the userspace data plane', () => {
  it('route-based on one side, policy-based on the other: ESP in UDP, interface settings, routes, traffic and counters', async () => {
    const net = pair();
    const a = await startSide(net, A, [
      tunnelDoc('t1', A, B, { mode: 'route', inside_addr: '203.0.113.0/31', mtu: 1380, mss: 1300, local_ts: ['198.51.100.0/25', '203.0.113.0/32'], remote_ts: ['198.51.100.128/25', '203.0.113.1/32'] }),
    ]);
    const b = await startSide(net, B, [tunnelDoc('t1', B, undefined, { mode: 'policy', local_ts: ['198.51.100.128/25', '203.0.113.1/32'], remote_ts: ['198.51.100.0/25', '203.0.113.0/32'] })]);
    expect(a.d.status()).toEqual([]);
    a.d.command({ kind: 'up', tunnel: 't1' });
    const sa = await established(a.d, 't1');
    await established(b.d, 't1');
    // UDP encapsulation forced (no NAT between the two).
    expect(sa.encap).toBe(true);
    expect(sa.children[0]!.encap).toBe(true);
    expect(sa.local.port).toBe(4500);
    // The interface exists with the configured settings before traffic; routes for the remote selectors.
    await until(() => a.links.routes.get('pqt1')?.size === 2, 2000, 'routes');
    expect(a.links.configs.get('pqt1')).toEqual({ mtu: 1380, addresses: ['203.0.113.0/31'], txQueueLen: 1000 });
    expect([...a.links.routes.get('pqt1')!].sort()).toEqual(['198.51.100.128/25', '203.0.113.1/32']);
    await until(() => b.links.routes.get('pqpol0')?.size === 2, 2000, 'policy routes');
    expect([...b.links.routes.get('pqpol0')!].sort()).toEqual(['198.51.100.0/25', '203.0.113.0/32']);
    expect(b.links.configs.get('pqpol0')).toEqual({ mtu: 1400, addresses: [], txQueueLen: 1000 });

    // Health probe from our inside address to the peer's, and the reply back.
    const tunA = a.links.device('pqt1');
    const tunB = b.links.device('pqpol0');
    tunA.inject(icmpEcho('203.0.113.0', '203.0.113.1', 7, 1));
    const atB = await until(() => tunB.delivered[0], 2000, 'echo at B');
    expect(addrs(atB)).toEqual({ src: '203.0.113.0', dst: '203.0.113.1' });
    tunB.inject(icmpEcho('203.0.113.1', '203.0.113.0', 7, 1));
    const atA = await until(() => tunA.delivered[0], 2000, 'echo at A');
    expect(addrs(atA)).toEqual({ src: '203.0.113.1', dst: '203.0.113.0' });
    // A SYN from a host behind A leaves with its MSS clamped to the tunnel's setting.
    tunA.inject(tcpSyn('198.51.100.10', '198.51.100.130', 40000, 5201, 1460));
    const syn = await until(() => tunB.delivered[1], 2000, 'SYN at B');
    const f = newFlow();
    expect(parseFlow(syn, f)).toBe(true);
    expect((syn[20 + 22]! << 8) | syn[20 + 23]!).toBe(1300);

    // The transport handed ESP to the data plane (nothing dropped) and status carries the counters.
    expect(a.d.stats.espDropped).toBe(0);
    expect(dp(a.d).stats.rxEsp).toBe(1);
    const st = await a.d.statusWithCounters();
    const c = st[0]!.children[0]! as ChildSaStatus;
    expect(c).toMatchObject({ packetsOut: 2, packetsIn: 1, replayDrops: 0, authFailures: 0 });
    expect(c.bytesOut).toBe(atB.length + syn.length);
    expect(c.bytesIn).toBe(atA.length);
    expect(c.lastOutAt).toBeGreaterThan(0);
    const sb = await b.d.statusWithCounters();
    expect(sb[0]!.children[0]).toMatchObject({ packetsIn: 2, packetsOut: 1 });

    // Child SA rekey: the old SA goes, the policies and routes stay, traffic keeps flowing.
    const oldIn = c.spiIn;
    a.d.command({ kind: 'rekey-child', tunnel: 't1' });
    await until(() => {
      const ch = a.d.status()[0]?.children ?? [];
      return ch.length === 1 && ch[0]!.spiIn !== oldIn && ch[0]!.state === 'INSTALLED';
    }, 5000, 'rekeyed child');
    await until(() => b.d.status()[0]?.children.length === 1, 5000, 'peer drops the old child');
    await wait(20);
    expect([...b.links.routes.get('pqpol0')!].sort()).toEqual(['198.51.100.0/25', '203.0.113.0/32']);
    tunA.inject(icmpEcho('198.51.100.10', '198.51.100.130', 8, 2));
    await until(() => tunB.delivered[2], 2000, 'traffic after the rekey');
    tunB.inject(icmpEcho('198.51.100.130', '198.51.100.10', 8, 2));
    await until(() => tunA.delivered[1], 2000, 'reply after the rekey');
    expect(dp(b.d).stats.noPolicy).toBe(0);
  });

  it('a 0.0.0.0/0 route-based tunnel gets no route that would swallow the peer; reload removes a dropped tunnel', async () => {
    const net = pair();
    const a = await startSide(net, A, [tunnelDoc('cf', A, B, { mode: 'route', inside_addr: '203.0.113.8/31' })]);
    const b = await startSide(net, B, [tunnelDoc('cf', B, undefined, { mode: 'route', inside_addr: '203.0.113.9/31' })]);
    a.d.command({ kind: 'up', tunnel: 'cf' });
    await established(a.d, 'cf');
    await established(b.d, 'cf');
    await until(() => a.links.configs.get('pqcf'), 2000, 'interface');
    expect(a.links.configs.get('pqcf')).toEqual({ mtu: 1400, addresses: ['203.0.113.8/31'], txQueueLen: 1000 });
    expect([...a.links.routes.get('pqcf')!]).toEqual([]);
    // With the interface's /31 connected route, the peer's inside address is reachable: probe both ways.
    a.links.device('pqcf').inject(icmpEcho('203.0.113.8', '203.0.113.9', 1, 1));
    await until(() => b.links.device('pqcf').delivered[0], 2000, 'probe at B');
    b.links.device('pqcf').inject(icmpEcho('203.0.113.9', '203.0.113.8', 1, 1));
    await until(() => a.links.device('pqcf').delivered[0], 2000, 'probe at A');

    // reload without the tunnel: the IKE SA is deleted and the interface closed.
    const dpA = dp(a.d);
    // Started without a file, reload() re-reads the embedded default configuration: no tunnels.
    await a.d.reload();
    await until(() => a.links.device('pqcf').closed, 2000, 'interface closed');
    await until(() => a.d.status().length === 0, 3000, 'IKE SA deleted');
    expect(dpA.stats.internalErrors).toBe(0);
  });

  it('data_plane "recording" keeps the record-only data plane and does not force encapsulation', async () => {
    const net = pair();
    const a = await startSide(net, A, [tunnelDoc('t', A, B, { mode: 'policy', local_ts: ['198.51.100.0/25'], remote_ts: ['198.51.100.128/25'] })], { data_plane: 'recording' });
    const b = await startSide(net, B, [tunnelDoc('t', B, undefined, { mode: 'policy', local_ts: ['198.51.100.128/25'], remote_ts: ['198.51.100.0/25'] })], { data_plane: 'recording' });
    a.d.command({ kind: 'up', tunnel: 't' });
    const sa = await established(a.d, 't');
    await established(b.d, 't');
    expect(sa.encap).toBe(false);
    expect(a.links.devices.size).toBe(0);
    const st = await a.d.statusWithCounters();
    expect(st[0]!.children[0]!.packetsIn).toBe(0);
  });
});
