/** The active health probe (firmware/health/monitor.ts) with a fake clock and a scripted pinger. */
import { describe, expect, it } from 'vitest';
import { ActiveProbe, HealthMonitor, parsePingRtt, type Pinger } from '../../firmware/health/monitor.js';
import { FakeClock } from '../../firmware/util/clock.js';
import type { TunnelConfig } from '../../firmware/config/types.js';

const cfg = { target: '10.2.0.1', interval: 10, timeout: 2, failures: 3 };

describe('ActiveProbe', () => {
  it('is unknown until a reply or `failures` misses; one reply → up, `failures` misses → down', () => {
    const p = new ActiveProbe(cfg, 0);
    expect(p.state).toBe('unknown');
    expect(p.result(10_000, undefined)).toBe('unknown');
    expect(p.result(20_000, 1.5)).toBe('up');
    expect([p.rttMs, p.lastOkAt, p.failures]).toEqual([1.5, 20_000, 0]);
    expect(p.result(30_000, undefined)).toBe('up');
    expect(p.result(40_000, undefined)).toBe('up');
    expect(p.result(50_000, undefined)).toBe('down');
    expect(p.failures).toBe(3);
    expect(p.nextAt).toBe(60_000);
    expect(p.result(60_000, 0.7)).toBe('up');
    expect(p.failures).toBe(0);
  });
});

describe('HealthMonitor', () => {
  function setup(replies: (number | undefined)[], hasSa = () => true) {
    const clock = new FakeClock(0);
    const calls: [string, string | undefined, number][] = [];
    const pinger: Pinger = async (t, s, ms) => {
      calls.push([t, s, ms]);
      return replies.shift();
    };
    const changes: string[] = [];
    const m = new HealthMonitor({
      clock,
      pinger,
      hasChildSa: () => hasSa(),
      counters: (t) => (t === 'cf' ? { probesSeen: 7, probesAnswered: 6, lastProbeAt: 123 } : undefined),
      onChange: (t, s, d) => changes.push(`${t} ${s}: ${d}`),
      setTimer: () => 1,
      clearTimer: () => undefined,
    });
    return { clock, m, calls, changes };
  }
  const tunnels = [{ name: 'cf', healthCheck: { ...cfg, source: '10.1.0.1' } }, { name: 'plain' }] as unknown as TunnelConfig[];

  it('pings the target through the tunnel every interval and reports the shape the status carries', async () => {
    const { clock, m, calls, changes } = setup([2.25, undefined, undefined, undefined, 3]);
    m.configure(tunnels);
    expect(m.health('cf')).toEqual({ state: 'unknown', probesAnswered: 6, probesSeen: 7, lastProbeAt: 123, target: '10.2.0.1', failures: 0 });
    expect(m.health('plain')).toEqual({ state: 'unknown', probesAnswered: 0 });
    await Promise.all(m.runDue());
    expect(calls).toEqual([]); // first probe one interval after configure
    clock.advance(10_000);
    await Promise.all(m.runDue());
    expect(calls).toEqual([['10.2.0.1', '10.1.0.1', 2000]]);
    expect(m.health('cf')).toMatchObject({ state: 'up', rttMs: 2.25, lastOkAt: 10_000, failures: 0 });
    for (let i = 0; i < 3; i++) {
      clock.advance(10_000);
      await Promise.all(m.runDue());
    }
    expect(m.health('cf')).toMatchObject({ state: 'down', failures: 3, lastOkAt: 10_000 });
    clock.advance(10_000);
    await Promise.all(m.runDue());
    expect(m.health('cf')).toMatchObject({ state: 'up', rttMs: 3, failures: 0 });
    expect(changes).toEqual(['cf up: reply from 10.2.0.1 in 2.25 ms', 'cf down: 3 probes to 10.2.0.1 unanswered (no reply)', 'cf up: reply from 10.2.0.1 in 3 ms']);
  });

  it('never pings without a Child SA (it could leave in clear): that round is a miss', async () => {
    const { clock, m, calls } = setup([1, 1, 1], () => false);
    m.configure(tunnels);
    for (let i = 0; i < 3; i++) {
      clock.advance(10_000);
      await Promise.all(m.runDue());
    }
    expect(calls).toEqual([]);
    expect(m.health('cf')).toMatchObject({ state: 'down', failures: 3 });
  });

  it('a changed health_check restarts the probe state; a removed one stops it', async () => {
    const { clock, m } = setup([1]);
    m.configure(tunnels);
    clock.advance(10_000);
    await Promise.all(m.runDue());
    expect(m.health('cf').state).toBe('up');
    m.configure([{ name: 'cf', healthCheck: { ...cfg, target: '10.2.0.9' } }] as unknown as TunnelConfig[]);
    expect(m.health('cf')).toMatchObject({ state: 'unknown', target: '10.2.0.9' });
    m.configure([{ name: 'cf' }] as unknown as TunnelConfig[]);
    expect(m.health('cf').target).toBeUndefined();
  });
});

describe('parsePingRtt', () => {
  it('reads the RTT of one reply from iputils output, undefined without a reply', () => {
    expect(parsePingRtt('1 packets transmitted, 1 received, 0% packet loss, time 0ms\nrtt min/avg/max/mdev = 0.052/0.052/0.052/0.000 ms\n')).toBe(0.052);
    expect(parsePingRtt('1 packets transmitted, 0 received, 100% packet loss, time 0ms\n')).toBeUndefined();
  });
});

describe('pqgate status: health line', () => {
  it('shows the probe and the peer probes, nothing when there is nothing to say', async () => {
    const { healthLine } = await import('../../firmware/control/format.js');
    expect(healthLine({ state: 'up', probesAnswered: 12, lastProbeAt: 98_000, target: '10.2.0.1', rttMs: 1.25, lastOkAt: 97_000, failures: 0 }, 100_000)).toBe(
      'health: up (probe 10.2.0.1, 1.25 ms, last reply 3s ago); peer probes answered 12 (last 2s ago)',
    );
    expect(healthLine({ state: 'down', probesAnswered: 0, target: '10.2.0.1', failures: 3 }, 100_000)).toBe('health: down (probe 10.2.0.1, 3 unanswered)');
    expect(healthLine({ state: 'unknown', probesAnswered: 0 }, 100_000)).toBe('');
    expect(healthLine(undefined)).toBe('');
  });
});
