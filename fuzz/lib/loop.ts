/**
 * The fuzz loop, shared by the CLI worker (fuzz/worker.ts, with a watchdog
 * for inputs that never return) and the CI short pass (test/fuzz): pick a
 * corpus entry, mutate it, run it, classify the outcome. A thrown error that
 * is not the target's typed error (or an InvariantError) is a crash; an input
 * that takes longer than `timeoutMs` is a hang (measured after it returns;
 * the worker's watchdog catches the ones that never return). The in-memory
 * corpus grows with inputs that showed a new behaviour signature (a cheap
 * stand-in for coverage feedback), bounded by `maxPool`.
 */
import { performance } from 'node:perf_hooks';
import { applyPlan, PlanStream } from './mutate.js';
import type { FuzzTarget } from './target.js';

export interface Finding {
  kind: 'crash' | 'hang';
  input: Uint8Array;
  reason: string;
}

export interface LoopOptions {
  runs: number;
  seed: number;
  /** Per-input limit in ms (default 1000). */
  timeoutMs?: number;
  /** Bound of the in-memory corpus (default 4096). */
  maxPool?: number;
  /** Called before each input (the worker copies it to shared memory for the watchdog). */
  before?: (input: Uint8Array, n: number) => void;
  /** Called every `progressEvery` inputs. */
  progress?: (done: number) => void;
  progressEvery?: number;
  /** Called for each finding as it happens. */
  onFinding?: (f: Finding) => void;
  /** Stop collecting findings after this many (default 20): one bug tends to repeat. */
  maxFindings?: number;
}

export interface LoopResult {
  target: string;
  runs: number;
  ms: number;
  crashes: number;
  hangs: number;
  findings: Finding[];
  /** Distinct behaviour signatures seen. */
  behaviours: number;
  /** Size of the corpus the run started from, and of the grown pool at the end. */
  corpus: number;
  pool: number;
  slowestMs: number;
}

/** Behaviour signatures kept (bounded, so the harness itself never grows without limit). */
const MAX_SIGNATURES = 50_000;

export function fuzzLoop<C>(target: FuzzTarget<C>, corpus: readonly Uint8Array[], opts: LoopOptions): LoopResult {
  if (!corpus.length) throw new Error(`${target.name}: empty corpus (run npm run fuzz:corpus)`);
  const ctx = target.setup();
  const timeoutMs = opts.timeoutMs ?? 1000;
  const maxPool = opts.maxPool ?? 4096;
  const maxFindings = opts.maxFindings ?? 20;
  const pool: Uint8Array[] = [...corpus];
  const seen = new Set<string>();
  const findings: Finding[] = [];
  const crashSigs = new Set<string>();
  let crashes = 0;
  let hangs = 0;
  let slowest = 0;
  const plans = new PlanStream(opts.seed);
  const custom = target.mutators ?? [];
  const maxLen = target.maxLen ?? 65536;
  const t0 = performance.now();
  const every = opts.progressEvery ?? 1000;

  const one = (input: Uint8Array, n: number, fromCorpus: boolean): void => {
    opts.before?.(input, n);
    const s = performance.now();
    let sig: string;
    try {
      sig = target.run(input, ctx);
    } catch (e) {
      crashes++;
      let err = e as Error;
      // Stack traces are off during the run (creating typed errors with stacks was a third of
      // the time); run the input again with them on to report where it failed.
      Error.stackTraceLimit = 12;
      try {
        target.run(input, ctx);
      } catch (e2) {
        err = e2 as Error;
      } finally {
        Error.stackTraceLimit = 0;
      }
      const where = (err?.stack ?? String(err)).split('\n').slice(0, 8).join('\n');
      const key = `${err?.name}:${err?.message?.replace(/\d+/g, '#').slice(0, 80)}`;
      if (!crashSigs.has(key) && findings.length < maxFindings) {
        crashSigs.add(key);
        const f: Finding = { kind: 'crash', input, reason: `${where}\n` };
        findings.push(f);
        opts.onFinding?.(f);
      }
      return;
    }
    let dt = performance.now() - s;
    if (dt > timeoutMs) {
      // Confirm before calling it a hang: on a loaded machine a GC pause or the scheduler
      // can stretch one run; a slow input is slow again.
      const s2 = performance.now();
      try {
        target.run(input, ctx);
      } catch {
        /* already classified above */
      }
      dt = Math.min(dt, performance.now() - s2);
    }
    if (dt > slowest) slowest = dt;
    if (dt > timeoutMs) {
      hangs++;
      if (findings.length < maxFindings) {
        const f: Finding = { kind: 'hang', input, reason: `input took ${dt.toFixed(0)} ms (limit ${timeoutMs} ms)\n` };
        findings.push(f);
        opts.onFinding?.(f);
      }
    }
    if (seen.size < MAX_SIGNATURES && !seen.has(sig)) {
      seen.add(sig);
      if (!fromCorpus && pool.length < maxPool) pool.push(input);
    }
  };

  const stackLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let done = 0;
  // The corpus itself first: every valid input must pass (and seeds the signature set).
  for (const c of corpus) {
    if (done >= opts.runs) break;
    one(c, done++, true);
  }
  while (done < opts.runs) {
    const p = plans.next();
    const base = pool[p.base % pool.length]!;
    one(applyPlan(base, p.muts, pool, custom, maxLen), done, false);
    done++;
    if (done % every === 0) opts.progress?.(done);
  }
  opts.progress?.(done);
  Error.stackTraceLimit = stackLimit;
  return {
    target: target.name,
    runs: done,
    ms: performance.now() - t0,
    crashes,
    hangs,
    findings,
    behaviours: seen.size,
    corpus: corpus.length,
    pool: pool.length,
    slowestMs: slowest,
  };
}
