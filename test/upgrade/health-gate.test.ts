import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GateFatal, runHealthGate, unhealthyProbedTunnels, type GateCheck } from '../../firmware/upgrade/health-gate.js';
import { boardName, daemonStarts } from '../../firmware/upgrade/device-image.js';

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

  it('a fatal check ends the gate at once (crash-looping daemon)', async () => {
    const c = clock();
    let n = 0;
    const checks: GateCheck[] = [{ name: 'daemon', run: async () => { n++; if (n < 3) throw new Error('ENOENT'); throw new GateFatal('started 4 times since boot and never answered'); } }];
    const r = await runHealthGate(checks, { timeoutMs: 300_000, intervalMs: 2000, ...c });
    expect(r).toEqual({ ok: false, reason: 'daemon: started 4 times since boot and never answered', elapsedMs: 4000 });
  });

  it('counts daemon starts and reads the board from the release file', () => {
    const d = mkdtempSync(join(tmpdir(), 'pqgate-gate-'));
    try {
      expect(daemonStarts(join(d, 'missing'))).toBe(0);
      writeFileSync(join(d, 'starts'), '1700000000\n1700000003\n\n1700000006\n');
      expect(daemonStarts(join(d, 'starts'))).toBe(3);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
    expect(boardName('BOARD=arm64\nVERSION=1.0.0\n')).toBe('arm64');
    expect(boardName('VERSION=1\nBOARD=x86_64\n')).toBe('x86_64');
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
