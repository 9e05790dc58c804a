/**
 * Runs one target's fuzz loop in a worker thread for fuzz/run.ts. Before
 * each input it copies the input into shared memory and bumps a counter, so
 * the main thread's watchdog can tell a hang (an input that never returns)
 * and save that input. Heap use after a forced GC is sampled every 5% of the
 * run for the memory-growth check (needs node --expose-gc, set by npm run fuzz).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { fuzzLoop } from './lib/loop.js';
import { loadCorpus, saveCrash } from './lib/corpus.js';
import { targetByName } from './targets/index.js';

export interface WorkerInput {
  target: string;
  runs: number;
  seed: number;
  timeoutMs: number;
  /** [0] inputs done, [1] current input length, [2] heap KiB after GC (latest), [3] heap KiB after GC at 10%, [4] 1 once the first input started */
  ints: SharedArrayBuffer;
  /** The input being run. */
  cur: SharedArrayBuffer;
}

const w = workerData as WorkerInput;
const ints = new Int32Array(w.ints);
const cur = new Uint8Array(w.cur);
const target = targetByName(w.target)!;
const gc = (globalThis as { gc?: () => void }).gc;
const heapKiB = (): number => {
  gc?.();
  return Math.round(process.memoryUsage().heapUsed / 1024);
};
const sampleEvery = Math.max(1000, Math.floor(w.runs / 20));
const res = fuzzLoop(target, loadCorpus(w.target), {
  runs: w.runs,
  seed: w.seed,
  timeoutMs: w.timeoutMs,
  before(input, n) {
    const len = Math.min(input.length, cur.length);
    cur.set(input.subarray(0, len));
    Atomics.store(ints, 1, len);
    Atomics.store(ints, 0, n);
    Atomics.store(ints, 4, 1);
  },
  progressEvery: sampleEvery,
  progress(done) {
    const h = heapKiB();
    Atomics.store(ints, 2, h);
    if (done >= w.runs / 10 && Atomics.load(ints, 3) === 0) Atomics.store(ints, 3, h);
  },
  onFinding(f) {
    const p = saveCrash(w.target, f.kind, f.input, f.reason);
    parentPort!.postMessage({ kind: 'finding', finding: f.kind, path: p, reason: f.reason.split('\n')[0] });
  },
});
parentPort!.postMessage({ kind: 'done', result: { ...res, findings: res.findings.length } });
