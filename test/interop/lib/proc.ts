/**
 * Process helpers and the cleanup registry shared by the interop harness
 * (namespaces, peer daemons, captures) and the benchmarks.
 *
 * Cleanup rules (see /work/shared/spec/peers-and-machine.md and docs/testing.md):
 * - every resource registers a *synchronous* undo action here the moment it
 *   exists, so the registry can run from `process.on('exit')` as well as from
 *   vitest's afterAll or a signal handler;
 * - only processes we spawned are killed, by PID; nothing is killed by name;
 * - actions run last-in first-out (processes before the namespaces they live in).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Text written to the command's stdin. */
  input?: string;
  /** Kill the command (SIGKILL) after this many milliseconds. Default 60 s. */
  timeoutMs?: number;
  /** Reject when the exit code is not 0 (default true). */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** A command exited non-zero (or was killed) while `check` was on. */
export class CommandError extends Error {
  readonly code = 'COMMAND_FAILED' as const;
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
  ) {
    super(
      `command failed (exit ${result.code}): ${argv.join(' ')}\n` +
        `${result.stderr.trim() || result.stdout.trim()}`.slice(0, 4000),
    );
    this.name = 'CommandError';
  }
}

/** Run a command to completion (asynchronously) and collect its output. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const { input, timeoutMs = 60_000, check = true, env } = opts;
  return new Promise((resolve, reject) => {
    // Own process group, so a timeout kills the command *and* whatever it started
    // (e.g. `ipsec up` -> whack), which would otherwise keep our pipes open.
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env, detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = {
        code: code ?? (signal ? 128 + signalNumber(signal) : -1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (check && result.code !== 0) reject(new CommandError([cmd, ...args], result));
      else resolve(result);
    });
    child.stdin!.on('error', () => {}); // the command may exit without reading stdin
    child.stdin!.end(input ?? '');
  });
}

/** Synchronous variant; used by cleanup code that must work inside process.on('exit'). */
export function runSync(cmd: string, args: readonly string[], opts: ExecOptions = {}): ExecResult {
  const { input, timeoutMs = 30_000, check = true, env } = opts;
  const r = spawnSync(cmd, args, {
    input: input ?? '',
    timeout: timeoutMs,
    encoding: 'utf8',
    env: env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw r.error;
  const result: ExecResult = {
    code: r.status ?? (r.signal ? 128 + signalNumber(r.signal) : -1),
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
  };
  if (check && result.code !== 0) throw new CommandError([cmd, ...args], result);
  return result;
}

function signalNumber(sig: NodeJS.Signals): number {
  const map: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return map[sig] ?? 0;
}

// ------------------------------------------------------------------ process liveness

/** True if `pid` exists and is not a zombie (a zombie has exited; it only awaits reaping). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3 (after the parenthesised comm, which may contain spaces) is the state.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Process start time in clock ticks since boot (field 22 of /proc/PID/stat), or undefined. */
export function pidStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Busy-wait without an event loop (for cleanup inside process.on('exit')). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Kill one process we started: SIGTERM, wait up to `graceMs`, then SIGKILL.
 * Synchronous so it can run from an exit handler. Returns true if it is gone.
 */
export function killPidSync(pid: number, graceMs = 3000): boolean {
  if (!pidAlive(pid)) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return !pidAlive(pid);
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    sleepSync(20);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  for (let i = 0; i < 100 && pidAlive(pid); i++) sleepSync(10);
  return !pidAlive(pid);
}

// ------------------------------------------------------------------ long-running processes

export interface Spawned {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or 128+signal) when the process ends. */
  readonly exited: Promise<number>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawn a long-running process with stdout+stderr appended to `logFile`, and
 * register its termination with the cleanup registry.
 */
export function spawnLogged(argv: readonly string[], logFile: string, label: string, opts: SpawnOptions = {}): Spawned {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // detached: own process group, so a ^C to the test runner reaches our cleanup
    // handler first instead of killing the daemon before we can stop it cleanly.
    child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], detached: true, ...opts });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`failed to spawn ${argv.join(' ')}`);
  const pid = child.pid;
  let done = false;
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve(code ?? 128 + signalNumber(signal ?? 'SIGKILL'));
    });
    child.on('error', () => {
      done = true;
      resolve(-1);
    });
  });
  const unregister = onCleanup(() => {
    if (!done) killPidSync(pid);
  }, `${label} (pid ${pid})`);
  const stop = async (graceMs = 5000): Promise<void> => {
    if (!done) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const t = setTimeout(() => {
        try {
          if (!done) process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, graceMs);
      await exited;
      clearTimeout(t);
    }
    unregister();
  };
  return { pid, child, exited, hasExited: () => done, stop };
}

// ------------------------------------------------------------------ cleanup registry

interface CleanupEntry {
  readonly id: number;
  readonly label: string;
  readonly fn: () => void;
}

const registry: CleanupEntry[] = [];
let nextId = 1;
let hooksInstalled = false;

/**
 * Register a synchronous undo action. Returns a function that removes it
 * (call it after releasing the resource normally).
 */
export function onCleanup(fn: () => void, label: string): () => void {
  installHooks();
  const entry: CleanupEntry = { id: nextId++, label, fn };
  registry.push(entry);
  return () => {
    const i = registry.findIndex((e) => e.id === entry.id);
    if (i >= 0) registry.splice(i, 1);
  };
}

/**
 * Run every registered action, newest first. Never throws: failures are
 * collected and returned (and printed) so one stuck resource does not stop
 * the others from being released.
 */
export function cleanupAll(): string[] {
  const errors: string[] = [];
  while (registry.length > 0) {
    const e = registry.pop()!;
    try {
      e.fn();
    } catch (err) {
      errors.push(`${e.label}: ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) process.stderr.write(`[pqgate cleanup] ${errors.join('\n[pqgate cleanup] ')}\n`);
  return errors;
}

/** Number of resources still registered (tests assert 0 after their own teardown). */
export function pendingCleanups(): string[] {
  return registry.map((e) => e.label);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    cleanupAll();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupAll();
      process.exit(128 + signalNumber(sig));
    });
  }
}
