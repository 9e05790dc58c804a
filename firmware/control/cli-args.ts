/**
 * Command-line plumbing shared by the `pqgate` commands (firmware/cli.ts,
 * cli-commands.ts, cli-config.ts): argument parsing with per-command flag
 * checks, the I/O seam tests replace, and helpers to reach the daemon.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import { defaultControlSocket } from '../config/defaults.js';
import { ControlClient } from './client.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Signal hookup for `daemon` (tests pass their own emitter). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Standard input as text (documents given as `-`, passwords). Default: process.stdin. */
  stdin?: () => Promise<string>;
  /** Ask for a secret on the terminal without echo (default: readline on /dev/tty via process.stdin when it is a TTY). */
  promptSecret?: (prompt: string) => Promise<string>;
  /** Stop `logs --follow` (tests). Default: never (Ctrl-C). */
  followUntil?: Promise<void>;
}

export class UsageError extends Error {}

export interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
  /** Repeatable flags (--param, --set, --unset), in order. */
  multi: Map<string, string[]>;
}

/** Flags that take a value. */
export const VALUE_FLAGS = new Set([
  '--config', '--socket', '--log-level', '--log-format', '--db', '--initial-config', '--web-socket', '--web-group', '--syslog', '--data-plane',
  '--sa', '--reqid', '--comment', '--confirm-timeout', '--preset', '--psk-file', '--limit', '--tunnel', '--level', '--out', '--password-file', '--confirm',
]);
/** Flags that take a value and may repeat. */
export const MULTI_FLAGS = new Set(['--param', '--set', '--unset']);

export function parseArgs(args: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const multi = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (VALUE_FLAGS.has(name) || MULTI_FLAGS.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : args[++i];
        if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
        if (MULTI_FLAGS.has(name)) multi.set(name, [...(multi.get(name) ?? []), v]);
        else flags.set(name, v);
      } else {
        if (eq > 0) throw new UsageError(`${name} takes no value`);
        flags.set(name, true);
      }
    } else if (a.startsWith('-') && a !== '-') {
      if (a === '-h') flags.set('--help', true);
      else throw new UsageError(`unknown option ${a}`);
    } else positional.push(a);
  }
  return { positional, flags, multi };
}

/** Reject flags the command does not know. */
export function checkFlags(p: Parsed, cmd: string, allowed: readonly string[]): void {
  for (const f of [...p.flags.keys(), ...p.multi.keys()]) if (f !== '--help' && !allowed.includes(f)) throw new UsageError(`${cmd}: unknown option ${f}`);
}

export function flag(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function intFlag(p: Parsed, name: string, min: number, max: number): number | undefined {
  const v = flag(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`${name} must be an integer between ${min} and ${max}`);
  return Number(v);
}

export function socketPath(p: Parsed, io: CliIo): string {
  const s = flag(p, '--socket');
  return s !== undefined ? resolve(s) : defaultControlSocket(io.env);
}

export async function withClient<T>(p: Parsed, io: CliIo, fn: (c: ControlClient) => Promise<T>, timeoutMs?: number): Promise<T> {
  const c = await ControlClient.connect(socketPath(p, io), timeoutMs !== undefined ? { timeoutMs } : {});
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** Who runs the CLI, for the audit log: `<unix user>@cli`. */
export function cliActor(): string {
  try {
    return `${userInfo().username}@cli`;
  } catch {
    return `uid ${typeof process.getuid === 'function' ? process.getuid() : '?'}@cli`;
  }
}

export function readStdin(): Promise<string> {
  return new Promise((res, rej) => {
    const parts: Buffer[] = [];
    process.stdin.on('data', (b: Buffer) => parts.push(b));
    process.stdin.once('end', () => res(Buffer.concat(parts).toString('utf8')));
    process.stdin.once('error', rej);
  });
}

/** A FILE argument's text; `-` = standard input. */
export async function readInput(file: string, io: CliIo): Promise<string> {
  if (file === '-') return (io.stdin ?? readStdin)();
  return readFileSync(file, 'utf8');
}

/** Prompt for a secret on a terminal without echoing it. */
export function promptSecretTty(prompt: string): Promise<string> {
  return new Promise((res, rej) => {
    if (!process.stdin.isTTY) {
      rej(new UsageError('no terminal to ask for the password: use --password-file FILE (or - for standard input)'));
      return;
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const w = (rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream });
    let asked = false;
    w._writeToOutput = (s: string) => {
      if (!asked) {
        process.stderr.write(s);
        asked = true;
      }
    };
    rl.question(prompt, (answer) => {
      process.stderr.write('\n');
      rl.close();
      res(answer);
    });
  });
}

/** A password: from --password-file (- = stdin, first line), else asked twice on the terminal. */
export async function readPassword(p: Parsed, io: CliIo): Promise<string> {
  const file = flag(p, '--password-file');
  if (file !== undefined) {
    const text = await readInput(file, io);
    return text.split(/\r?\n/)[0] ?? '';
  }
  const ask = io.promptSecret ?? promptSecretTty;
  const a = await ask('password: ');
  const b = await ask('again: ');
  if (a !== b) throw new UsageError('the passwords differ');
  return a;
}
