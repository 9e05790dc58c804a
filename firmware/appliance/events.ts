/**
 * The event log the operator reads (`pqgate logs`, the web admin's log
 * page): what the daemon saw, one line each, bounded. With a configuration
 * store it is the store's event_log table (the newest 10,000 are kept,
 * store/logs.ts); without one (stateless `--config` mode) a ring in memory.
 *
 * Writes are batched: the engine can report many events in a burst (a hub
 * re-establishing its tunnels), and each SQLite commit is an fsync
 * (synchronous = FULL). Events are buffered and written in one transaction
 * every FLUSH_MS; if the buffer overflows, the oldest are dropped and a
 * warning says how many. Readers flush first, so a reply never misses an
 * event that happened before the request.
 */
import type { EventEntry as ApiEvent } from '../control/api.js';
import type { ConfigStore } from '../store/store.js';

export type EventLevel = ApiEvent['level'];
export const EVENT_LEVELS: readonly EventLevel[] = ['error', 'warn', 'info', 'debug'];

export interface NewEvent {
  level: EventLevel;
  tunnel?: string | undefined;
  message: string;
  ts?: number;
}

export interface EventQuery {
  limit?: number;
  beforeId?: number;
  /** Only events newer than this id (`pqgate logs --follow`). */
  afterId?: number;
  tunnel?: string;
  /** Minimum severity: 'warn' = warnings and errors. */
  level?: EventLevel;
}

export interface EventLog {
  append(e: NewEvent): void;
  /** Newest first. */
  list(q: EventQuery): ApiEvent[];
  flush(): void;
  close(): void;
}

const MAX_MESSAGE = 500;
const FLUSH_MS = 200;
const MAX_BUFFER = 2000;

function clean(e: NewEvent, now: number): Required<Pick<NewEvent, 'level' | 'message' | 'ts'>> & { tunnel?: string } {
  // One line, bounded: messages may carry peer-supplied text (identities).
  const message = e.message.replace(/[\r\n]+/g, ' ').slice(0, MAX_MESSAGE);
  return { level: e.level, message, ts: e.ts ?? now, ...(e.tunnel ? { tunnel: e.tunnel } : {}) };
}

function matches(e: { level: string; tunnel?: string | null }, q: EventQuery): boolean {
  if (q.tunnel !== undefined && e.tunnel !== q.tunnel) return false;
  if (q.level !== undefined && EVENT_LEVELS.indexOf(e.level as EventLevel) > EVENT_LEVELS.indexOf(q.level)) return false;
  return true;
}

/** Events in the store's event_log, written in batches. */
export class StoreEventLog implements EventLog {
  private buffer: NewEvent[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private store: ConfigStore,
    private readonly now: () => number = Date.now,
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  /** After a factory reset the store is a new object. */
  setStore(store: ConfigStore): void {
    this.buffer = [];
    this.dropped = 0;
    this.store = store;
  }

  append(e: NewEvent): void {
    if (this.buffer.length >= MAX_BUFFER) {
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push(clean(e, this.now()));
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.buffer.length) return;
    const batch = this.buffer;
    if (this.dropped) batch.unshift({ level: 'warn', message: `${this.dropped} events dropped (more than ${MAX_BUFFER} in ${FLUSH_MS} ms)`, ts: batch[0]!.ts ?? this.now() });
    this.buffer = [];
    this.dropped = 0;
    try {
      this.store.logEvents(batch);
    } catch (e) {
      this.onError(e);
    }
  }

  list(q: EventQuery): ApiEvent[] {
    this.flush();
    const limit = q.limit ?? 100;
    const out: ApiEvent[] = [];
    let before = q.beforeId;
    // The store filters by tunnel; severity and afterId are filtered here, a page at a time.
    for (let page = 0; page < 50 && out.length < limit; page++) {
      const rows = this.store.events({ limit: 500, ...(q.tunnel !== undefined ? { tunnel: q.tunnel } : {}), ...(before !== undefined ? { beforeId: before } : {}) });
      if (!rows.length) break;
      for (const r of rows) {
        if (q.afterId !== undefined && r.id <= q.afterId) return out;
        if (matches(r, q)) out.push({ id: r.id, ts: r.ts, level: r.level, message: r.message, ...(r.tunnel ? { tunnel: r.tunnel } : {}) });
        if (out.length >= limit) return out;
      }
      before = rows[rows.length - 1]!.id;
    }
    return out;
  }

  close(): void {
    this.flush();
  }
}

/** Stateless mode: the newest `max` events in memory. */
export class MemoryEventLog implements EventLog {
  private readonly ring: ApiEvent[] = [];
  private nextId = 1;

  constructor(
    private readonly max = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  append(e: NewEvent): void {
    const c = clean(e, this.now());
    this.ring.push({ id: this.nextId++, ts: c.ts, level: c.level, message: c.message, ...(c.tunnel ? { tunnel: c.tunnel } : {}) });
    if (this.ring.length > this.max) this.ring.shift();
  }

  list(q: EventQuery): ApiEvent[] {
    const out: ApiEvent[] = [];
    for (let i = this.ring.length - 1; i >= 0 && out.length < (q.limit ?? 100); i--) {
      const e = this.ring[i]!;
      if (q.beforeId !== undefined && e.id >= q.beforeId) continue;
      if (q.afterId !== undefined && e.id <= q.afterId) break;
      if (matches(e, q)) out.push(e);
    }
    return out;
  }

  flush(): void {}
  close(): void {}
}
