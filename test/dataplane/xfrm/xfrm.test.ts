/**
 * XfrmDataPlane against a recording fake of its system edge (iproute2,
 * monitor, UDP_ENCAP): what it asks the kernel for, in which order, and how
 * it keeps the bookkeeping (policy reference counts across a rekey, routes
 * with a source address, the peer pinned under a 0/0 route, xfrm interface
 * lifecycle, expire/acquire events, cleanup on close).
 */
import { describe, expect, it } from 'vitest';
import { Encr, IntegId } from '../../../firmware/ikev2/constants.js';
import type { DataPlaneEvent, PolicySpec, SaSpec, Selector } from '../../../firmware/dataplane/types.js';
import { parseAddr } from '../../../firmware/dataplane/ip.js';
import { XfrmDataPlane } from '../../../firmware/dataplane/xfrm/xfrm.js';
import { XfrmError } from '../../../firmware/dataplane/xfrm/algorithms.js';
import type { MonitorEvent } from '../../../firmware/dataplane/xfrm/parse.js';
import type { XfrmSystem } from '../../../firmware/dataplane/xfrm/system.js';
import { probeKernelXfrm } from '../../../firmware/dataplane/xfrm/probe.js';

class FakeSystem implements XfrmSystem {
  readonly lines: string[] = [];
  readonly runs: string[][] = [];
  readonly encapPorts: number[] = [];
  onEvent: ((e: MonitorEvent) => void) | undefined;
  monitorClosed = false;
  failOn: RegExp | undefined;
  addrOutput = '1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 192.0.2.1/24 brd 192.0.2.255 scope global eth0\n3: lan0    inet 198.51.100.1/24 scope global lan0\n';
  routeGet = '192.0.2.2 via 192.0.2.254 dev eth0 src 192.0.2.1 uid 0 \n    cache \n';
  counters = '';
  ip = {
    batch: async (lines: string[]): Promise<void> => {
      for (const l of lines) {
        if (this.failOn?.test(l)) throw new XfrmError('ERR_XFRM_IP', `ip ${l}: RTNETLINK answers: File exists`);
        this.lines.push(l);
      }
    },
    run: async (args: string[]): Promise<string> => {
      this.runs.push(args);
      if (args[0] === '-o') return this.addrOutput;
      if (args[0] === 'route') return this.routeGet;
      return this.counters;
    },
  };
  monitor(onEvent: (e: MonitorEvent) => void) {
    this.onEvent = onEvent;
    return { close: () => (this.monitorClosed = true) };
  }
  enableUdpEncap(port: number): number {
    this.encapPorts.push(port);
    return 1;
  }
}

const sel = (a: string, b: string): Selector => {
  const s = parseAddr(a);
  return { family: s.length === 4 ? 4 : 6, startAddr: s, endAddr: parseAddr(b), ipProtocol: 0, startPort: 0, endPort: 65535 };
};
const LOCAL = { address: '192.0.2.1', port: 4500 };
const PEER = { address: '192.0.2.2', port: 4500 };

function sa(direction: 'in' | 'out', spi: number, over: Partial<SaSpec> = {}): SaSpec {
  return {
    spi,
    direction,
    src: direction === 'out' ? LOCAL : PEER,
    dst: direction === 'out' ? PEER : LOCAL,
    encap: true,
    encrId: Encr.AES_GCM_16,
    encrKeyBits: 256,
    encrKey: new Uint8Array(36).fill(7),
    integId: IntegId.NONE,
    integKey: new Uint8Array(0),
    esn: false,
    replayWindow: 64,
    reqid: 1,
    ifId: 5,
    tunnel: 'hq',
    ...over,
  };
}

function policy(direction: 'in' | 'out', over: Partial<PolicySpec> = {}): PolicySpec {
  return {
    reqid: 1,
    direction,
    local: [sel('198.51.100.0', '198.51.100.255')],
    remote: [sel('203.0.113.0', '203.0.113.255')],
    ifId: 5,
    tunnel: 'hq',
    src: direction === 'out' ? LOCAL : PEER,
    dst: direction === 'out' ? PEER : LOCAL,
    ...over,
  };
}

async function installed(fake: FakeSystem, dp: XfrmDataPlane, spiIn = 0x100, spiOut = 0x200): Promise<void> {
  await dp.addSa(sa('in', spiIn));
  await dp.addSa(sa('out', spiOut));
  await dp.addPolicy(policy('out'));
  await dp.addPolicy(policy('in'));
  void fake;
}

describe('XfrmDataPlane', () => {
  it('first use flushes leftovers, starts the monitor, creates the xfrm interface, marks the NAT-T socket, installs states', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    await dp.setTunnelOptions('hq', { insideAddr: '10.100.0.1/31' });
    await dp.addSa(sa('in', 0x100));
    expect(fake.lines.slice(0, 2)).toEqual(['xfrm state flush', 'xfrm policy flush']);
    expect(fake.onEvent).toBeDefined();
    expect(fake.lines).toContain('link add pqhq type xfrm if_id 5');
    expect(fake.lines).toContain('link set dev pqhq mtu 1400');
    expect(fake.lines).toContain('addr replace 10.100.0.1/31 dev pqhq');
    expect(fake.lines).toContain('link set dev pqhq up');
    expect(fake.encapPorts).toEqual([4500]);
    expect(fake.lines.at(-1)).toMatch(/^xfrm state add src 192\.0\.2\.2 dst 192\.0\.2\.1 proto esp spi 0x00000100 .* encap espinudp 4500 4500 0\.0\.0\.0 if_id 5$/);
    // Every encapsulated inbound SA asks again (sockets re-bound on reload get marked; the system skips marked ones); the interface is made once.
    await dp.addSa(sa('in', 0x101));
    await dp.addSa(sa('out', 0x201));
    expect(fake.encapPorts).toEqual([4500, 4500]);
    expect(fake.lines.filter((l) => l.startsWith('link add'))).toHaveLength(1);
  });

  it('beforeFirstSa (the image CPU crypto drivers) is awaited once, before the first state; a failure is reported and the SA installed anyway', async () => {
    const fake = new FakeSystem();
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const dp = new XfrmDataPlane({
      system: fake,
      beforeFirstSa: async () => {
        calls++;
        order.push(`hook, ${fake.lines.filter((l) => l.startsWith('xfrm state add')).length} states`);
        await gate;
      },
    });
    const first = dp.addSa(sa('in', 0x100));
    const second = dp.addSa(sa('out', 0x200));
    await new Promise((r) => setTimeout(r, 10));
    // Both installs wait for the hook; no state is added before it finished.
    expect(fake.lines.filter((l) => l.startsWith('xfrm state add'))).toHaveLength(0);
    release();
    await Promise.all([first, second]);
    await dp.addSa(sa('in', 0x101));
    expect(calls).toBe(1);
    expect(order).toEqual(['hook, 0 states']);
    expect(fake.lines.filter((l) => l.startsWith('xfrm state add'))).toHaveLength(3);

    const fake2 = new FakeSystem();
    const errors: Error[] = [];
    const dp2 = new XfrmDataPlane({ system: fake2, onError: (e) => errors.push(e), beforeFirstSa: () => Promise.reject(new Error('modprobe: not found')) });
    await dp2.addSa(sa('in', 0x100));
    expect(errors.map((e) => e.message)).toEqual(['modprobe: not found']);
    expect(fake2.lines.filter((l) => l.startsWith('xfrm state add'))).toHaveLength(1);
  });

  it('replaces a leftover xfrm interface of the same name (crashed predecessor)', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    let first = true;
    const batch = fake.ip.batch;
    fake.ip.batch = async (lines: string[]) => {
      if (first && lines[0]?.startsWith('link add')) {
        first = false;
        throw new XfrmError('ERR_XFRM_IP', 'ip link add pqhq type xfrm if_id 5: RTNETLINK answers: File exists');
      }
      return batch(lines);
    };
    await dp.addSa(sa('out', 0x200));
    const del = fake.lines.indexOf('link del pqhq');
    expect(del).toBeGreaterThan(-1);
    expect(fake.lines[del + 1]).toBe('link add pqhq type xfrm if_id 5');
    expect(fake.lines.at(-1)).toMatch(/^xfrm state add .* if_id 5$/);
  });

  it('routes the remote selectors into the interface with a local source inside the local selectors', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    await installed(fake, dp);
    expect(fake.lines).toContain('route replace 203.0.113.0/24 dev pqhq src 198.51.100.1');
    expect(fake.lines.filter((l) => l.startsWith('xfrm policy update')).map((l) => / dir (\w+)/.exec(l)![1])).toEqual(['out', 'in', 'fwd']);
  });

  it('a 0.0.0.0/0 remote selector pins the peer to its current route first', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    await dp.addPolicy(policy('out', { remote: [sel('0.0.0.0', '255.255.255.255')] }));
    const pin = fake.lines.indexOf('route replace 192.0.2.2/32 via 192.0.2.254 dev eth0');
    const dflt = fake.lines.findIndex((l) => l.startsWith('route replace 0.0.0.0/0 dev pqhq'));
    expect(pin).toBeGreaterThan(-1);
    expect(dflt).toBeGreaterThan(pin);
  });

  it('a rekey (same reqid, same selectors) shares the policies: deleting the old Child SA keeps them', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    await installed(fake, dp, 0x100, 0x200);
    await installed(fake, dp, 0x101, 0x201); // rekey: new SAs, same policies
    fake.lines.length = 0;
    // Old Child SA deleted (policies listed as the engine does).
    await dp.deletePolicy(policy('out'));
    await dp.deletePolicy(policy('in'));
    await dp.deleteSa(0x100, 'in');
    await dp.deleteSa(0x200, 'out');
    expect(fake.lines).toEqual(['xfrm state delete src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x00000100', 'xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00000200']);
    // The last one takes the policies and the route with it.
    await dp.deletePolicy(policy('out'));
    await dp.deletePolicy(policy('in'));
    expect(fake.lines).toContain('xfrm policy delete src 198.51.100.0/24 dst 203.0.113.0/24 dir out if_id 5');
    expect(fake.lines).toContain('xfrm policy delete src 203.0.113.0/24 dst 198.51.100.0/24 dir fwd if_id 5');
    expect(fake.lines).toContain('route del 203.0.113.0/24 dev pqhq');
  });

  it('a failed install leaves no bookkeeping behind', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    fake.failOn = /spi 0x00000300/;
    await expect(dp.addSa(sa('out', 0x300))).rejects.toThrow(/File exists/);
    fake.failOn = undefined;
    await expect(dp.querySa(0x300, 'out')).resolves.toBeUndefined();
    await dp.addSa(sa('out', 0x300)); // not "exists"
    await expect(dp.addSa(sa('out', 0x300))).rejects.toMatchObject({ code: 'ERR_SA_EXISTS' });
    fake.failOn = /dir fwd/;
    await expect(dp.addPolicy(policy('in'))).rejects.toThrow();
    fake.failOn = undefined;
    fake.lines.length = 0;
    await dp.deletePolicy(policy('in')); // nothing was counted: nothing to delete
    expect(fake.lines.filter((l) => l.startsWith('xfrm policy delete'))).toEqual([]);
  });

  it('updateSa replaces the state with new endpoints and the same keys', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    await dp.addSa(sa('out', 0x200));
    fake.lines.length = 0;
    await dp.updateSa(0x200, 'out', LOCAL, { address: '192.0.2.2', port: 34567 });
    expect(fake.lines[0]).toBe('xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00000200');
    expect(fake.lines[1]).toMatch(/^xfrm state add src 192\.0\.2\.1 dst 192\.0\.2\.2 .* aead rfc4106\(gcm\(aes\)\) 0x(07){36} 128 encap espinudp 4500 34567 /);
  });

  it('querySa parses the kernel counters; unknown SAs are undefined', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    await dp.addSa(sa('in', 0x100));
    fake.counters = '\tlifetime current:\n\t  8400(bytes), 100(packets)\n\t  add 2026-11-27 01:00:00 use -\n\tstats:\n\t  replay-window 0 replay 1 failed 2\n';
    await expect(dp.querySa(0x100, 'in')).resolves.toEqual({ bytes: 8400, packets: 100, replayDrops: 1, authFailures: 2, lastUsed: 0 });
    expect(fake.runs.at(-1)).toEqual(['-s', 'xfrm', 'state', 'get', 'src', '192.0.2.2', 'dst', '192.0.2.1', 'proto', 'esp', 'spi', '0x00000100']);
    await expect(dp.querySa(0x999, 'in')).resolves.toBeUndefined();
  });

  it('kernel expire events map to the SA by SPI and addresses; acquire carries the reqid', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    const events: DataPlaneEvent[] = [];
    dp.onEvent((e) => events.push(e));
    await dp.addSa(sa('in', 0x100));
    await dp.addSa(sa('out', 0x100)); // same SPI number the other way: the addresses tell them apart
    fake.onEvent!({ kind: 'expire', src: '192.0.2.1', dst: '192.0.2.2', spi: 0x100, hard: false });
    fake.onEvent!({ kind: 'expire', src: '192.0.2.2', dst: '192.0.2.1', spi: 0x100, hard: true });
    fake.onEvent!({ kind: 'expire', src: '192.0.2.9', dst: '192.0.2.1', spi: 0x100, hard: true }); // not ours
    fake.onEvent!({ kind: 'acquire', reqid: 3 });
    expect(events).toEqual([
      { kind: 'expire', spi: 0x100, direction: 'out', hard: false },
      { kind: 'expire', spi: 0x100, direction: 'in', hard: true },
      { kind: 'acquire', reqid: 3 },
    ]);
    await expect(dp.querySa(0x100, 'in')).resolves.toBeUndefined(); // hard-expired: gone
  });

  it('close removes policies, states, interfaces and pinned routes, and stops the monitor', async () => {
    const fake = new FakeSystem();
    const dp = new XfrmDataPlane({ system: fake });
    await installed(fake, dp);
    await dp.addPolicy(policy('out', { reqid: 2, ifId: 6, tunnel: 'dc', remote: [sel('0.0.0.0', '255.255.255.255')] }));
    fake.lines.length = 0;
    await dp.close();
    expect(fake.monitorClosed).toBe(true);
    expect(fake.lines.filter((l) => l.startsWith('xfrm policy delete'))).toHaveLength(4);
    expect(fake.lines.filter((l) => l.startsWith('xfrm state delete'))).toHaveLength(2);
    expect(fake.lines).toContain('link del pqhq');
    expect(fake.lines).toContain('link del pqdc');
    expect(fake.lines).toContain('route del 192.0.2.2/32');
    await expect(dp.addSa(sa('in', 0x500))).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});

describe('probeKernelXfrm', () => {
  const fs = (files: Record<string, string>, dirs: string[] = []) => ({
    exists: (p: string) => p in files || dirs.includes(p),
    read: (p: string) => files[p],
    kernelRelease: '6.1.0-56-arm64',
  });

  it('ok with XFRM netlink and ESP (loaded module or built in)', () => {
    expect(probeKernelXfrm(fs({ '/proc/net/xfrm_stat': '', '/proc/crypto': 'name : rfc4106(gcm(aes))' }, ['/sys/module/esp4']))).toEqual({ ok: true, reasons: [] });
    const builtin = fs({ '/lib/modules/6.1.0-56-arm64/modules.builtin': 'kernel/net/xfrm/xfrm_user.ko\nkernel/net/ipv4/esp4.ko\n' });
    expect(probeKernelXfrm(builtin)).toMatchObject({ ok: true, reasons: [expect.stringMatching(/gcm\(aes\) not registered/)] });
  });

  it('not ok without ESP (this build machine: XFRM but no esp4)', () => {
    const r = probeKernelXfrm(fs({ '/proc/net/xfrm_stat': '' }));
    expect(r.ok).toBe(false);
    expect(r.reasons.join()).toMatch(/no ESP/);
  });
});
