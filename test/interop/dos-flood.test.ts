/**
 * DoS resistance (issue 9): while a generator in its own namespace sends
 * ≥ 5,000 spoofed IKE_SA_INIT per second from 240 source addresses at a
 * pqgate responder (default admission limits: cookie_threshold 30,
 * cookie_threshold_ip 3, block_threshold 5, init_limit_half_open 4096), a
 * legitimate hybrid x25519 + ML-KEM-768 tunnel from another namespace comes
 * up (after one COOKIE round trip) — pqgate as initiator, and strongSwan 6.1
 * too when its peer root is installed — the half-open table stays at the cookie
 * threshold, and the responder's RSS stays flat.
 *
 * The achieved flood rate is measured by the generator and asserted. The
 * time to establish is asserted only as "completes" with a wide margin (a
 * shared 2-core machine); the real numbers come from `npm run bench:dos`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, interopSkipReason, sweepStale } from './lib/netns.js';
import { sweepStaleDirs } from './lib/rootfs.js';
import { runDosScenario } from '../../bench/lib/dos-scenario.js';

const skip = interopSkipReason();
if (skip) console.warn(`[interop] dos-flood skipped: ${skip}`);

describe.skipIf(!!skip)('spoofed IKE_SA_INIT flood against a pqgate responder', () => {
  beforeAll(() => {
    sweepStale();
    sweepStaleDirs();
  });
  afterAll(() => cleanupAll());

  it('≥ 5,000 spoofed IKE_SA_INIT/s: a hybrid tunnel still comes up, half-open state and memory stay bounded', async () => {
    const r = await runDosScenario({ rate: 5600, seconds: 60, attempts: 2, strongswan: true, log: (l) => console.log(`[dos] ${l}`) });
    // The load really was there.
    expect(r.flood.rate).toBeGreaterThanOrEqual(5000);
    expect(r.flood.sources).toBe(240);
    expect(r.flood.sendErrors).toBe(0);
    // What reached the daemon was answered with stateless cookies (on a loaded machine the kernel drops
    // part of the flood when the daemon is descheduled: r.udp.rcvbufErrors, reported by bench:dos).
    expect(r.udp.inDatagrams).toBeGreaterThan(r.flood.sent * 0.3);
    expect(r.admission.cookiesSent).toBeGreaterThan(r.udp.inDatagrams * 0.95);
    expect(r.flood.cookieReplies).toBeGreaterThan(r.admission.cookiesSent * 0.8); // replies, too, are dropped on a loaded machine
    expect(r.admission.cookieless).toBeGreaterThan(r.udp.inDatagrams * 0.95);
    // No state for it beyond the cookie threshold (+1: the legitimate SA while it is being set up).
    expect(r.maxHalfOpen).toBeLessThanOrEqual(r.admission.limits.cookieThreshold + 1);
    // + the legitimate SAs whose DELETE the flood may have swallowed.
    expect(r.responderIkeSas).toBeLessThanOrEqual(r.admission.limits.cookieThreshold + 1 + r.underFloodMs.length);
    // Admitted without a cookie: the table refills up to the threshold each time the spoofed half-open SAs
    // expire (half_open_timeout 30 s), plus the legitimate attempts (baseline included).
    expect(r.admission.admitted).toBeLessThanOrEqual(r.admission.limits.cookieThreshold * (1 + Math.ceil(r.flood.seconds / 30)) + r.underFloodMs.length + r.underFloodFailed + 1);
    // The legitimate initiator got through (one COOKIE round trip each), while the flood was still running.
    expect(r.underFloodMs.length).toBeGreaterThanOrEqual(1);
    expect(r.underFloodDoneAt[0]!).toBeLessThan(r.flood.seconds);
    // "Completes": attempts that did not make it within the initiator's own 30 s are counted (r.underFloodFailed)
    // and reported; the real times come from bench:dos.
    console.log(`[dos] ${r.underFloodMs.length} established under flood, ${r.underFloodFailed} timed out`);
    // strongSwan 6.1 as the legitimate initiator, started while the flood runs (when its peer root is installed).
    if (r.strongswan && !r.strongswan.skipped) {
      expect(r.strongswan.baselineMs).toBeGreaterThan(0);
      expect(r.strongswan.underFloodMs.length).toBeGreaterThanOrEqual(1);
      console.log(`[dos] strongSwan: baseline ${r.strongswan.baselineMs.toFixed(0)} ms, under flood ${r.strongswan.underFloodMs.map((m) => m.toFixed(0)).join(', ')} ms, ${r.strongswan.underFloodFailed} failed`);
    } else console.log(`[dos] strongSwan initiator skipped: ${r.strongswan?.skipped}`);
    // Memory flat: after the first 3 s (JIT, buffers), RSS grows by less than 24 MiB over the rest of the flood.
    const settled = r.rss.filter((s) => s.t >= 3);
    expect(settled.length).toBeGreaterThan(20);
    const base = Math.min(...settled.slice(0, 4).map((s) => s.rssKiB));
    const peak = Math.max(...settled.map((s) => s.rssKiB));
    console.log(`[dos] RSS ${(base / 1024).toFixed(1)} -> peak ${(peak / 1024).toFixed(1)} MiB; baseline ${r.baselineMs.toFixed(0)} ms, under flood ${r.underFloodMs.map((m) => m.toFixed(0)).join(', ')} ms`);
    expect(peak - base).toBeLessThan(24 * 1024);
  }, 240_000);
});
