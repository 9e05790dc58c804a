/**
 * Leveled, structured logging for the daemon.
 *
 * Two formats, one record model:
 *   text: `2026-11-27T10:00:00.000Z info  [cf1] IKE SA established k=v ...`
 *   json: `{"ts":"...","level":"info","tunnel":"cf1","msg":"...","k":"v"}` (one object per line)
 *
 * Secrets never reach the sink: field values whose key names a secret (psk,
 * password, secret, *key, *keys, nonce, skeyseed) are replaced by
 * "[redacted]", and byte arrays are never printed, only their length. Message
 * text is the caller's responsibility: the engine's EventAction messages
 * carry no key material by contract (engine-types.ts).
 *
 * A `tap` sees every record that passes the level filter, already
 * sanitised, in structured form: the appliance sends them to syslog
 * (appliance/syslog.ts) besides the stdout line.
 */

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'text' | 'json';

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

export type LogFields = Record<string, unknown>;

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where finished lines go (without trailing newline). Default: process.stdout. */
  sink?: (line: string) => void;
  /** Wall-clock source for timestamps (tests inject a fixed one). */
  now?: () => Date;
  /** Context fields merged into every record (e.g. { tunnel: 'cf1' }). */
  context?: LogFields;
  /** Also hand every emitted record to this function (syslog). Shared with child loggers. */
  tap?: (record: LogRecord) => void;
}

/** One sanitised record, as a tap receives it. */
export interface LogRecord {
  level: LogLevel;
  msg: string;
  tunnel?: string;
  /** Sanitised fields (secrets redacted), without `tunnel`. */
  fields: LogFields;
}

/** `msg k=v ...` with the tunnel tag, as the text format prints it after the level (no timestamp). */
export function formatRecordText(r: LogRecord): string {
  const tag = r.tunnel !== undefined ? `[${r.tunnel}] ` : '';
  const kv = Object.entries(r.fields)
    .map(([k, v]) => ` ${k}=${renderValue(v)}`)
    .join('');
  return `${tag}${r.msg}${kv}`;
}

const SECRET_KEY = /(psk|secret|password|passphrase|nonce|skeyseed|(^|_|[a-z])keys?$|^sk_)/i;

/** True if a field with this name must never be printed. */
export function isSecretField(name: string): boolean {
  return SECRET_KEY.test(name);
}

function sanitize(name: string, v: unknown, depth = 0): unknown {
  if (isSecretField(name)) return '[redacted]';
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof Error) return { name: v.name, message: v.message, ...('code' in v ? { code: (v as { code: unknown }).code } : {}) };
  if (typeof v === 'bigint') return v.toString();
  if (v === null || typeof v !== 'object') return v;
  if (depth >= 4) return '[…]';
  if (Array.isArray(v)) return v.map((x) => sanitize('', x, depth + 1));
  const out: LogFields = {};
  for (const [k, x] of Object.entries(v as LogFields)) out[k] = sanitize(k, x, depth + 1);
  return out;
}

/** Text rendering of one field value: bare if simple, JSON otherwise. */
function renderValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w.:/@%+-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return JSON.stringify(v);
}

export class Logger {
  private level: LogLevel;
  readonly format: LogFormat;
  private readonly sink: (line: string) => void;
  private readonly now: () => Date;
  private readonly context: LogFields;
  private tap: ((record: LogRecord) => void) | undefined;

  constructor(opts: LoggerOptions = {}) {
    this.level = opts.level ?? 'info';
    this.format = opts.format ?? 'text';
    this.sink = opts.sink ?? ((line) => void process.stdout.write(line + '\n'));
    this.now = opts.now ?? (() => new Date());
    this.context = opts.context ?? {};
    this.tap = opts.tap;
  }

  /** Set (or clear) the tap after construction; children created later share it. */
  setTap(tap: ((record: LogRecord) => void) | undefined): void {
    this.tap = tap;
  }

  getLevel(): LogLevel {
    return this.level;
  }
  setLevel(level: LogLevel): void {
    this.level = level;
  }
  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.level];
  }

  /** A logger sharing level/format/sink with extra context (e.g. the tunnel name). */
  child(context: LogFields): Logger {
    const c = new Logger({ level: this.level, format: this.format, sink: this.sink, now: this.now, context: { ...this.context, ...context } });
    // Children follow the parent's level changes (reload can change log_level) and its tap.
    Object.defineProperty(c, 'level', { get: () => this.level, set: (l: LogLevel) => (this.level = l) });
    Object.defineProperty(c, 'tap', { get: () => this.tap, set: (t: ((record: LogRecord) => void) | undefined) => (this.tap = t) });
    return c;
  }

  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const all: LogFields = { ...this.context, ...(fields ?? {}) };
    const clean: LogFields = {};
    for (const [k, v] of Object.entries(all)) if (v !== undefined) clean[k] = sanitize(k, v);
    const ts = this.now().toISOString();
    // A message is a single line: an embedded newline would let one record
    // masquerade as two (log injection from peer-supplied text such as IDs).
    const oneLine = msg.replace(/[\r\n]+/g, ' ');
    const { tunnel, ...rest } = clean;
    let line: string;
    if (this.format === 'json') {
      line = JSON.stringify({ ts, level, ...(tunnel !== undefined ? { tunnel } : {}), msg: oneLine, ...rest });
    } else {
      line = `${ts} ${level.padEnd(5)} ${formatRecordText({ level, msg: oneLine, fields: rest, ...(tunnel !== undefined ? { tunnel: String(tunnel) } : {}) })}`;
    }
    try {
      this.sink(line);
    } catch {
      // A broken stdout (EPIPE) must not take the daemon down.
    }
    if (this.tap) {
      try {
        this.tap({ level, msg: oneLine, fields: rest, ...(tunnel !== undefined ? { tunnel: String(tunnel) } : {}) });
      } catch {
        // Same for a broken syslog pipe.
      }
    }
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  trace(msg: string, fields?: LogFields): void {
    this.log('trace', msg, fields);
  }
}

/** A logger that drops everything (library default when none is injected). */
export const nullLogger = new Logger({ level: 'error', sink: () => {} });
