/**
 * npm run fuzz -- --target <name|all> [--runs N] [--seed S] [--timeout MS] [--max-growth MIB] [--progress SEC] [--json] [--list]
 *
 * Runs each target in a worker thread with a watchdog: an input that does
 * not return within --timeout ms is saved to fuzz/crashes/<target>/ as a
 * hang and the worker is restarted on the remaining inputs. Crashes (any
 * exception that is not the target's typed error, or a broken invariant) are
 * saved there too. Memory: process RSS is sampled through the run, and the
 * worker's heap after a forced GC at 10% of the run is compared with the end;
 * growth beyond --max-growth MiB counts as a failure. Exit status 1 on any
 * crash, hang or memory growth.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { TARGETS, targetByName } from './targets/index.js';
import { saveCrash } from './lib/corpus.js';
import type { WorkerInput } from './worker.js';

interface Args {
  target: string;
  runs: number;
  seed: number;
  timeoutMs: number;
  maxGrowthMiB: number;
  json: boolean;
  /** Print a progress line every this many seconds (0 = never). */
  progressSec: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { target: '', runs: 100_000, seed: 1, timeoutMs: 2000, maxGrowthMiB: 48, json: false, progressSec: 0 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${k}: expected a number, got ${v}`);
      i++;
      return Math.floor(n);
    };
    if (k === '--target') {
      a.target = v ?? '';
      i++;
    } else if (k === '--runs') a.runs = num();
    else if (k === '--seed') a.seed = num();
    else if (k === '--timeout') a.timeoutMs = num();
    else if (k === '--max-growth') a.maxGrowthMiB = num();
    else if (k === '--json') a.json = true;
    else if (k === '--progress') a.progressSec = num();
    else if (k === '--list') {
      for (const t of TARGETS) console.log(`${t.name.padEnd(14)} ${t.description}`);
      process.exit(0);
    } else throw new Error(`unknown argument ${k} (--target, --runs, --seed, --timeout, --max-growth, --progress, --json, --list)`);
  }
  if (!a.target) throw new Error(`--target is required: ${TARGETS.map((t) => t.name).join(', ')} or all`);
  return a;
}

export interface TargetReport {
  target: string;
  runs: number;
  seconds: number;
  rate: number;
  crashes: number;
  hangs: number;
  behaviours: number;
  rssStartMiB: number;
  rssEndMiB: number;
  rssMaxMiB: number;
  heapAt10MiB: number;
  heapEndMiB: number;
  memoryGrowth: boolean;
  restarts: number;
  /** Slowest input (ms, confirmed by a second run). */
  slowestMs: number;
}

const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;

/** The target in progress, for the partial report on SIGTERM / SIGINT. */
let current: { name: string; done: number; crashes: number; hangs: number; t0: number } | undefined;
const finished: string[] = [];

async function runTarget(name: string, a: Args): Promise<TargetReport> {
  const here = dirname(fileURLToPath(import.meta.url));
  const ints = new SharedArrayBuffer(20);
  const cur = new SharedArrayBuffer(1 << 20);
  const view = new Int32Array(ints);
  let remaining = a.runs;
  let done = 0;
  let crashes = 0;
  let hangs = 0;
  let behaviours = 0;
  let restarts = 0;
  let slowest = 0;
  const t0 = Date.now();
  const rssStart = process.memoryUsage().rss;
  let rssMax = rssStart;
  let heap10 = 0;
  let seed = a.seed;
  while (remaining > 0) {
    Atomics.store(view, 0, 0);
    Atomics.store(view, 3, 0);
    Atomics.store(view, 4, 0);
    const wd: WorkerInput = { target: name, runs: remaining, seed, timeoutMs: a.timeoutMs, ints, cur };
    const w = new Worker(join(here, 'worker.js'), { workerData: wd });
    const outcome = await new Promise<{ kind: 'done'; result: { runs: number; crashes: number; hangs: number; behaviours: number; slowestMs: number } } | { kind: 'hang'; at: number } | { kind: 'error'; error: Error }>((resolve) => {
      let last = -1;
      let lastChange = Date.now();
      let lastReport = Date.now();
      const timer = setInterval(() => {
        rssMax = Math.max(rssMax, process.memoryUsage().rss);
        if (a.progressSec && Date.now() - lastReport >= a.progressSec * 1000) {
          lastReport = Date.now();
          const n = done + Atomics.load(view, 0);
          console.log(`  .. ${name}: ${n} inputs, ${Math.round(n / ((Date.now() - t0) / 1000))}/s, RSS ${mib(process.memoryUsage().rss)} MiB, heap ${Math.round(Atomics.load(view, 2) / 102.4) / 10} MiB`);
        }
        current = { name, done: done + Atomics.load(view, 0), crashes, hangs, t0 };
        const n = Atomics.load(view, 0);
        // The watchdog starts with the first input (worker start-up and corpus setup are not an input).
        if (Atomics.load(view, 4) === 0) lastChange = Date.now();
        else if (n !== last) {
          last = n;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > a.timeoutMs + 500) {
          clearInterval(timer);
          const len = Atomics.load(view, 1);
          const input = new Uint8Array(cur, 0, len).slice();
          void w.terminate();
          const p = saveCrash(name, 'hang', input, `no return within ${a.timeoutMs} ms (watchdog)`);
          console.error(`  HANG  ${p}`);
          resolve({ kind: 'hang', at: n });
        }
      }, 100);
      w.on('message', (m: { kind: string; finding?: string; path?: string; reason?: string; result?: never }) => {
        if (m.kind === 'finding') console.error(`  ${m.finding!.toUpperCase()} ${m.path}: ${m.reason}`);
        else if (m.kind === 'done') {
          clearInterval(timer);
          resolve({ kind: 'done', result: m.result! });
        }
      });
      w.on('error', (error) => {
        clearInterval(timer);
        resolve({ kind: 'error', error });
      });
    });
    if (outcome.kind === 'error') throw outcome.error;
    heap10 = heap10 || Atomics.load(view, 3);
    if (outcome.kind === 'hang') {
      hangs++;
      restarts++;
      done += outcome.at + 1;
      remaining -= outcome.at + 1;
      seed += 1_000_003; // do not replay the same mutations
      continue;
    }
    await w.terminate();
    done += outcome.result.runs;
    remaining -= outcome.result.runs;
    crashes += outcome.result.crashes;
    hangs += outcome.result.hangs;
    behaviours = Math.max(behaviours, outcome.result.behaviours);
    slowest = Math.max(slowest, outcome.result.slowestMs);
  }
  const heapEnd = Atomics.load(view, 2);
  const seconds = (Date.now() - t0) / 1000;
  const growth = heap10 > 0 && (heapEnd - heap10) / 1024 > a.maxGrowthMiB;
  return {
    target: name,
    runs: done,
    seconds: Math.round(seconds * 10) / 10,
    rate: Math.round(done / seconds),
    crashes,
    hangs,
    behaviours,
    rssStartMiB: mib(rssStart),
    rssEndMiB: mib(process.memoryUsage().rss),
    rssMaxMiB: mib(rssMax),
    heapAt10MiB: Math.round((heap10 / 1024) * 10) / 10,
    heapEndMiB: Math.round((heapEnd / 1024) * 10) / 10,
    memoryGrowth: growth,
    restarts,
    slowestMs: Math.round(slowest * 10) / 10,
  };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const names = a.target === 'all' ? TARGETS.map((t) => t.name) : [a.target];
  for (const n of names) if (!targetByName(n)) throw new Error(`unknown target ${n}: ${TARGETS.map((t) => t.name).join(', ')} or all`);
  if (!(globalThis as { gc?: unknown }).gc) console.error('note: run with node --expose-gc for the heap growth check (npm run fuzz does)');
  const reports: TargetReport[] = [];
  for (const n of names) {
    if (!a.json) console.log(`${n}: ${a.runs} inputs, seed ${a.seed}, timeout ${a.timeoutMs} ms`);
    const r = await runTarget(n, a);
    if (r.memoryGrowth) saveCrash(n, 'memory', new Uint8Array(0), `heap after GC grew from ${r.heapAt10MiB} MiB (10% of the run) to ${r.heapEndMiB} MiB`);
    reports.push(r);
    finished.push(`${r.target} ${r.runs} inputs, ${r.rate}/s, crashes ${r.crashes}, hangs ${r.hangs}${r.memoryGrowth ? ', MEMORY GROWTH' : ''}`);
    current = undefined;
    if (!a.json)
      console.log(
        `  inputs ${r.runs}  ${r.rate}/s  ${r.seconds}s  crashes ${r.crashes}  hangs ${r.hangs}  behaviours ${r.behaviours}  slowest ${r.slowestMs} ms  ` +
          `RSS ${r.rssStartMiB} -> ${r.rssEndMiB} MiB (max ${r.rssMaxMiB})  heap ${r.heapAt10MiB} -> ${r.heapEndMiB} MiB${r.memoryGrowth ? '  MEMORY GROWTH' : ''}`,
      );
  }
  const total = reports.reduce((s, r) => s + r.runs, 0);
  const bad = reports.some((r) => r.crashes || r.hangs || r.memoryGrowth);
  if (a.json) console.log(JSON.stringify({ seed: a.seed, total, reports }, null, 2));
  else console.log(`total ${total} inputs, ${bad ? 'FAILURES (see fuzz/crashes/)' : 'no crashes, hangs or memory growth'}`);
  process.exit(bad ? 1 : 0);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const)
  process.on(sig, () => {
    // Stopped early: report what ran (finished targets and the one in progress).
    for (const f of finished) console.log(`finished: ${f}`);
    if (current) console.log(`stopped: ${current.name} after ${current.done} inputs, ${Math.round(current.done / ((Date.now() - current.t0) / 1000))}/s, crashes ${current.crashes}, hangs ${current.hangs} (worker-reported crashes are in fuzz/crashes/)`);
    process.exit(130);
  });

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
});
