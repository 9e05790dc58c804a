/**
 * CI's short fuzz pass (docs/fuzzing.md): every target of `npm run fuzz`,
 * seeded, from its checked-in corpus. Any crash (an exception other than the
 * target's typed errors, or a broken invariant) or an input slower than the
 * per-input limit fails the test and prints the input in hex, ready to be
 * saved as a regression (test/fuzz/regressions/). Counts are sized for well
 * under 60 s in total on a loaded 2-core machine; FUZZ_CI_SCALE multiplies
 * them (e.g. FUZZ_CI_SCALE=10 before a release).
 */
import { describe, it, expect } from 'vitest';
import { fuzzLoop } from '../../fuzz/lib/loop.js';
import { loadCorpus } from '../../fuzz/lib/corpus.js';
import { TARGETS } from '../../fuzz/targets/index.js';

const SCALE = Number(process.env.FUZZ_CI_SCALE ?? 1);
const RUNS: Record<string, number> = {
  'ike-parse': 20_000,
  'rest-api': 20_000,
  'sk-decrypt': 8_000,
  'esp-decap': 5_000,
  reassembly: 4_000,
  'config-import': 2_500,
};

describe('fuzz short pass (seeded)', () => {
  it('lists exactly the documented targets', () => {
    expect(TARGETS.map((t) => t.name).sort()).toEqual(Object.keys(RUNS).sort());
  });

  for (const t of TARGETS) {
    it(`${t.name}: ${Math.round(RUNS[t.name]! * SCALE)} inputs, no crash or hang`, () => {
      const corpus = loadCorpus(t.name);
      expect(corpus.length).toBeGreaterThan(0);
      const r = fuzzLoop(t, corpus, { runs: Math.round(RUNS[t.name]! * SCALE), seed: 20261127, timeoutMs: 1000 });
      const report = r.findings.map((f) => `${f.kind}: ${f.reason}input ${Buffer.from(f.input).toString('hex').slice(0, 2000)}`).join('\n\n');
      expect(r.crashes, report).toBe(0);
      expect(r.hangs, report).toBe(0);
      expect(r.runs).toBe(Math.round(RUNS[t.name]! * SCALE));
      // Mutations reach past the first check: several distinct behaviours per target.
      expect(r.behaviours).toBeGreaterThan(10);
    }, 120_000);
  }
});
