/**
 * Crash safety: a writer process committing revisions in a loop is killed
 * with SIGKILL at random moments, KILLS times. After every kill the database
 * must open, pass PRAGMA integrity_check, and hold exactly the last revision
 * the writer reported as committed (N) or the one after it (N + 1: committed
 * but killed before it could print), with live tables equal to that
 * revision's content (db.ts: WAL + synchronous = FULL; persist.ts: one
 * transaction per revision).
 *
 * Speed: a Node process costs ~40 ms of CPU to start here, so 1,000 kills
 * are CPU-bound. Writers are transpiled to CommonJS once (faster to load
 * than ES modules, no TypeScript loader), started ahead of time (a pool of
 * warm writers that have opened the database and wait for "go"), and three
 * lanes with their own databases overlap one writer's start-up with another
 * lane's kill and check.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { transpileTree } from './helpers/transpile.js';
import { crashRevision } from './helpers/crash-docs.js';
import { ConfigStore } from '../../firmware/store/store.js';
import { openDatabase } from '../../firmware/store/db.js';
import { latestRevision, readLive, readSecretValues, snapshotOf } from '../../firmware/store/persist.js';
import { withoutSecrets, type ConfigDoc } from '../../firmware/store/document.js';

const ROOT = resolve(import.meta.dirname, '../..');
const KILLS = Number(process.env.PQGATE_CRASH_KILLS ?? 1000);
/** Parallel databases, each with its own chain of writers. */
const LANES = 3;
/** Warm writers waiting per lane. */
const POOL = 2;
/** Kills per database before a lane starts a fresh one. */
const KILLS_PER_DB = 100;

interface Writer {
  proc: ChildProcess;
  lines: string[];
  ready: Promise<void>;
  /** The writer read the newest revision and is about to commit. */
  started: Promise<void>;
  /** Resolves once the writer reported `n` commits (or died). */
  commits(n: number): Promise<void>;
  closed: Promise<void>;
}

let work: string;
let writerJs: string;
const live = new Set<ChildProcess>();
const timing = { ready: 0, close: 0, check: 0 };

function startWriter(dbPath: string): Writer {
  const env = { ...process.env };
  // Node parses every extra CA certificate at start-up (~60 ms here); the writer needs none.
  delete env.NODE_EXTRA_CA_CERTS;
  const proc = spawn(process.execPath, [writerJs, dbPath], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(proc);
  const lines: string[] = [];
  let buf = '';
  let onReady!: () => void;
  let onStarted!: () => void;
  let committedCount = 0;
  let dead = false;
  const waiters: { n: number; resolve: () => void }[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) if (dead || committedCount >= w.n) w.resolve();
    else waiters.push(w);
  };
  const commits = (n: number) => new Promise<void>((resolve) => {
    waiters.push({ n, resolve });
    wake();
  });
  const ready = new Promise<void>((r) => (onReady = r));
  const started = new Promise<void>((r) => (onStarted = r));
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'ready') onReady();
      else {
        if (line.startsWith('start ')) onStarted();
        lines.push(line);
        if (line.startsWith('committed ')) {
          committedCount++;
          wake();
        }
      }
    }
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  proc.stdin!.on('error', () => {}); // EPIPE after the kill
  const closed = new Promise<void>((res) =>
    proc.on('close', (code, signal) => {
      live.delete(proc);
      if (signal !== 'SIGKILL') lines.push(`exit ${code} ${signal} ${stderr.slice(0, 2000)}`);
      onReady(); // a child that died early must not hang the pool
      onStarted();
      dead = true;
      wake();
      res();
    }),
  );
  return { proc, lines, ready, started, commits, closed };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'pqgate-crash-'));
  transpileTree(ROOT, ['test/store/helpers/crash-writer.ts'], join(work, 'js'), 'cjs');
  writerJs = join(work, 'js', 'test/store/helpers/crash-writer.js');
});

afterAll(() => {
  for (const p of live) p.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

async function lane(id: number, kills: number, stats: { commits: number; killsWithCommits: number }): Promise<void> {
  const pool: Writer[] = [];
  let dbPath = '';
  let initial!: { doc: ConfigDoc; presets: Record<string, string> };
  let lastKnown = 1; // newest revision id known to be in the database
  try {
    for (let i = 0; i < kills; i++) {
      if (i % KILLS_PER_DB === 0) {
        // A fresh database now and then keeps it small (and the checks fast); warm writers of the old one are discarded.
        for (const w of pool.splice(0)) w.proc.kill('SIGKILL');
        if (dbPath) expect(statSync(dbPath).mode & 0o777).toBe(0o600);
        dbPath = join(work, `lane${id}-${i}`, 'store.db');
        const seed = ConfigStore.open(dbPath, { now: () => 1_700_000_000_000 });
        initial = { doc: seed.getDocument(), presets: seed.getPresets() };
        seed.close();
        lastKnown = 1;
      }
      while (pool.length < POOL) pool.push(startWriter(dbPath));
      const w = pool.shift()!;
      let t = performance.now();
      await w.ready;
      timing.ready += performance.now() - t;
      w.proc.stdin!.write('go\n');
      await w.started;
      // Random moment in the commit loop: after 0-2 reported commits, plus 0-5 ms
      // (a commit is one fsync, a few ms), so kills land before, inside and
      // between transactions whatever the machine's speed.
      await w.commits(Math.floor(Math.random() * 3));
      await sleep(Math.random() * 5);
      t = performance.now();
      w.proc.kill('SIGKILL');
      await w.closed;
      timing.close += performance.now() - t;
      t = performance.now();

      const where = `lane ${id}, kill ${i}`;
      expect(w.lines.filter((l) => !/^(committed|start) \d+$/.test(l)), where).toEqual([]);
      const committed = w.lines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice(10)));
      const started = w.lines.find((l) => l.startsWith('start '));
      if (started) expect(Number(started.slice(6)), `${where}: writer saw the newest revision`).toBe(lastKnown);
      const N = committed.length ? committed[committed.length - 1]! : lastKnown;
      if (committed.length) stats.killsWithCommits++;
      stats.commits += committed.length;

      const db = openDatabase(dbPath);
      try {
        expect(db.pragma('integrity_check', { simple: true }), where).toBe('ok');
        const latest = latestRevision(db)!;
        expect([N, N + 1], `${where}: latest revision ${latest.id}, last reported ${N}`).toContain(latest.id);
        // The live tables and the revision's snapshot both hold exactly what the writer wrote for that id.
        const want = latest.id === 1 ? initial : crashRevision(latest.id);
        const state = readLive(db);
        expect(state.doc, where).toEqual(withoutSecrets(want.doc));
        expect(state.presets, where).toEqual(want.presets);
        expect(snapshotOf(latest), where).toEqual({ doc: withoutSecrets(want.doc), presets: want.presets });
        const values = readSecretValues(db, Object.values(state.secretRefs));
        for (const t of want.doc.tunnels) expect(values.get(state.secretRefs[t.name]!), where).toBe(t.psk);
        lastKnown = latest.id;
      } finally {
        db.close();
      }
      timing.check += performance.now() - t;
    }
  } finally {
    for (const w of pool) w.proc.kill('SIGKILL');
    await Promise.all(pool.map((w) => w.closed));
  }
}

describe('crash safety', () => {
  it(`survives ${KILLS} SIGKILLs of writers at random moments`, { timeout: 400_000 }, async () => {
    const stats = { commits: 0, killsWithCommits: 0 };
    const t0 = performance.now();
    // Independent lanes (one database each) overlap one writer's start-up with another's kill and check.
    await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i, Math.floor(KILLS / LANES) + (i < KILLS % LANES ? 1 : 0), stats)));
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `crash test: ${KILLS} kills in ${secs.toFixed(1)} s over ${LANES} lanes, ${stats.commits} commits reported, ${stats.killsWithCommits} kills after at least one commit; ` +
        `summed over lanes: ${(timing.ready / 1000).toFixed(1)} s waiting for warm writers, ${(timing.close / 1000).toFixed(1)} s for killed ones to exit, ${(timing.check / 1000).toFixed(1)} s checking`,
    );
    // The kills must land among commits, not only before the first one.
    expect(stats.killsWithCommits).toBeGreaterThan(KILLS / 2);
  });
});
