/**
 * Audit log (who changed what: revisions, confirmations, users, exports
 * with secrets) and event log (what the daemon saw: tunnel up/down, errors),
 * both append-only tables. Callers build the entries: nothing here ever
 * receives a secret (audit details name revisions, tunnels and fields, never
 * values of PSKs or passwords).
 */
import type { Db } from './db.js';

export interface AuditEntry {
  id: number;
  ts: number;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown> | null;
}

export interface EventEntry {
  id: number;
  ts: number;
  level: 'error' | 'warn' | 'info' | 'debug';
  tunnel: string | null;
  message: string;
}

/** Events kept; older ones are pruned on append (the event log is a ring, the audit log is not). */
export const EVENT_LOG_MAX = 10_000;

export function appendAudit(db: Db, e: Omit<AuditEntry, 'id'>): number {
  const r = db
    .prepare('INSERT INTO audit_log (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)')
    .run(e.ts, e.actor, e.action, e.target, e.detail === null ? null : JSON.stringify(e.detail));
  return Number(r.lastInsertRowid);
}

interface AuditRow {
  id: number;
  ts: number;
  actor: string;
  action: string;
  target: string | null;
  detail: string | null;
}

export function listAudit(db: Db, opts: { limit?: number; beforeId?: number } = {}): AuditEntry[] {
  const rows = db
    .prepare('SELECT id, ts, actor, action, target, detail FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?')
    .all(opts.beforeId ?? Number.MAX_SAFE_INTEGER, opts.limit ?? 100) as AuditRow[];
  return rows.map((r) => ({ ...r, detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>) }));
}

export function appendEvent(db: Db, e: Omit<EventEntry, 'id'>, max = EVENT_LOG_MAX): number {
  const id = Number(db.prepare('INSERT INTO event_log (ts, level, tunnel, message) VALUES (?, ?, ?, ?)').run(e.ts, e.level, e.tunnel, e.message).lastInsertRowid);
  if (id % 100 === 0) db.prepare('DELETE FROM event_log WHERE id <= ?').run(id - max);
  return id;
}

export function listEvents(db: Db, opts: { limit?: number; tunnel?: string; beforeId?: number } = {}): EventEntry[] {
  const limit = opts.limit ?? 100;
  const before = opts.beforeId ?? Number.MAX_SAFE_INTEGER;
  const rows =
    opts.tunnel === undefined
      ? db.prepare('SELECT id, ts, level, tunnel, message FROM event_log WHERE id < ? ORDER BY id DESC LIMIT ?').all(before, limit)
      : db.prepare('SELECT id, ts, level, tunnel, message FROM event_log WHERE id < ? AND tunnel = ? ORDER BY id DESC LIMIT ?').all(before, opts.tunnel, limit);
  return rows as EventEntry[];
}
