import { describe, expect, it } from 'vitest';
import { runHealthGate, unhealthyProbedTunnels, type GateCheck } from '../../firmware/upgrade/health-gate.js';

function clock() {
  let t = 0;
  return { now: () => t, sleep: async (ms: number) => void (t += ms) };
}

describe('health gate', () => {
  it('passes once every check passes, polling until then', async () => {
    const c = clock();
    let daemonUpAt = 3;
    let calls = 0;
    const checks: GateCheck[] = [
      { name: 'daemon', run: async () => void (++calls < daemonUpAt && (() => { throw new Error('ENOENT'); })()) },
      { name: 'web admin', run: async () => undefined },
    ];
    const r = await runHealthGate(checks, { timeoutMs: 60_000, intervalMs: 2000, ...c });
    expect(r).toEqual({ ok: true, elapsedMs: 4000 });
    daemonUpAt = 0;
  });

  it('fails after the timeout naming the check still failing', async () => {
    const c = clock();
    const attempts: (string | undefined)[] = [];
    const checks: GateCheck[] = [
      { name: 'daemon', run: async () => undefined },
      { name: 'web admin', run: async () => { throw new Error('web admin on port 443: ECONNREFUSED'); } },
      { name: 'never reached', run: async () => { throw new Error('x'); } },
    ];
    const r = await runHealthGate(checks, { timeoutMs: 10_000, intervalMs: 3000, ...c, onAttempt: (f) => attempts.push(f) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('health gate timed out after 12 s: web admin: web admin on port 443: ECONNREFUSED');
    expect(attempts).toHaveLength(5);
  });

  it('reads tunnel probe health defensively', () => {
    expect(unhealthyProbedTunnels(undefined)).toEqual({ probed: 0, failing: [] });
    expect(unhealthyProbedTunnels([{ id: 1 }])).toEqual({ probed: 0, failing: [] });
    expect(unhealthyProbedTunnels({ sas: [], idle: [] })).toEqual({ probed: 0, failing: [] });
    expect(unhealthyProbedTunnels({ health: 'odd' })).toEqual({ probed: 0, failing: [] });
    const status = {
      sas: [],
      idle: [],
      health: {
        hq: { state: 'up', probesAnswered: 0, target: '198.51.100.1', rttMs: 3 },
        branch: { state: 'down', probesAnswered: 0, target: '203.0.113.9', failures: 3 },
        noprobe: { state: 'unknown', probesAnswered: 4 },
        starting: { state: 'unknown', probesAnswered: 0, target: '198.51.100.7' },
        junk: null,
      },
    };
    expect(unhealthyProbedTunnels(status)).toEqual({
      probed: 3,
      failing: ['branch (probe to 203.0.113.9 down, 3 missed)', 'starting (probe to 198.51.100.7 unknown)'],
    });
  });
});
