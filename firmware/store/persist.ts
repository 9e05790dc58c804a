/**
 * The store's single write path for configuration: one SQLite transaction
 * that (1) resolves PSKs to rows of `secrets`, (2) rewrites the live tables
 * (device_settings, interfaces, tunnels), (3) appends the revision (snapshot
 * without secrets, secret references, keyed secrets hash, diff against the
 * previous revision) and (4) the audit entry. Either all of it is durable
 * (WAL + synchronous=FULL, db.ts) or none of it: the live tables always equal
 * the newest revision's snapshot.
 *
 * Write transactions are BEGIN IMMEDIATE: the write lock is taken before
 * anything is read, so a second process (a web UI beside the daemon) waits
 * for it (busy_timeout) instead of failing to upgrade a stale read snapshot.
 *
 * No validation happens here: callers (store.ts) pass canonical documents
 * that parseDaemonConfig accepted. This module deliberately does not import
 * the config schema, so a process that only writes revisions (the crash test
 * child) starts fast.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Db } from './db.js';
import { SCHEMA_VERSION } from './schema.js';
import { StoreError, StoreErrorCode } from './errors.js';
import { ConfigError } from '../util/errors.js';
import {
  TUNNEL_BOOL_FIELDS, TUNNEL_FIELDS, TUNNEL_INT_FIELDS, TUNNEL_LIST_FIELDS, TUNNEL_OPTION_FIELDS, TUNNEL_TEXT_FIELDS, TUNNEL_JSON_FIELDS, TOP_FIELDS, TOP_ADMISSION_FIELDS,
  fromBackup, stableJson, toBackup, withoutSecrets, type BackupDoc, type ConfigDoc, type TunnelDoc,
} from './document.js';
import { migrateDocument } from './doc-migrations.js';
import { diffDocuments, type DiffEntry } from './diff.js';
import { appendAudit } from './logs.js';

export type RevisionKind = 'initial' | 'apply' | 'import' | 'rollback';
export type RevisionStatus = 'committed' | 'pending' | 'reverted';

/** A revisions row (schema ≥ 3). */
export interface RevisionRow {
  id: number;
  created_at: number;
  author: string;
  comment: string;
  kind: RevisionKind;
  restores: number | null;
  snapshot: string;
  secret_refs: string;
  secrets_hash: string;
  diff: string;
  status: RevisionStatus;
  confirm_deadline: number | null;
  confirmed_at: number | null;
  confirmed_by: string | null;
  rollback_to: number | null;
}

/** The configuration as the live tables hold it. `doc` has no PSKs. */
export interface LiveState {
  doc: ConfigDoc;
  presets: Record<string, string>;
  /** Tunnel name → secrets.id of its PSK (tunnels with auth pubkey have none). */
  secretRefs: Record<string, number>;
}

type Row = Record<string, unknown>;

export function readLive(db: Db): LiveState {
  const s = db.prepare('SELECT ike_port, natt_port, control_socket, log_level, keylog, data_plane, admission FROM device_settings WHERE id = 1').get() as Row | undefined;
  // Schema v6: the admission keys live in one JSON object column.
  const admission = s && typeof s.admission === 'string' ? (JSON.parse(s.admission) as Row) : {};
  const listen = (db.prepare('SELECT address FROM interfaces ORDER BY position').all() as { address: string }[]).map((r) => r.address);
  // Key order as in docs/config.md: version, top-level fields, tunnels last.
  const d: Row = { version: 1 };
  for (const k of TOP_FIELDS) {
    if (k === 'listen') {
      if (listen.length) d.listen = listen;
    } else if ((TOP_ADMISSION_FIELDS as readonly string[]).includes(k)) {
      if (admission[k] !== undefined && admission[k] !== null) d[k] = admission[k];
    } else if (s && s[k] !== null && s[k] !== undefined) d[k] = s[k];
  }
  d.tunnels = [];
  const doc = d as unknown as ConfigDoc;
  const presets: Record<string, string> = {};
  const secretRefs: Record<string, number> = {};
  for (const r of db.prepare('SELECT * FROM tunnels ORDER BY position').all() as Row[]) {
    const opts = r.options === null || r.options === undefined ? {} : (JSON.parse(r.options as string) as Row);
    const t: Row = {};
    // Document key order (TUNNEL_FIELDS); the PSK is never in a live read.
    for (const f of TUNNEL_FIELDS) {
      if (f === 'psk') continue;
      const v = (TUNNEL_OPTION_FIELDS as readonly string[]).includes(f) ? opts[f] : r[f];
      if (v === null || v === undefined) continue;
      if ((TUNNEL_LIST_FIELDS as readonly string[]).includes(f) || (TUNNEL_JSON_FIELDS as readonly string[]).includes(f)) t[f] = JSON.parse(v as string);
      else if ((TUNNEL_BOOL_FIELDS as readonly string[]).includes(f)) t[f] = v === 1;
      else t[f] = v;
    }
    doc.tunnels.push(t as unknown as TunnelDoc);
    // No reference = a tunnel without PSK (auth pubkey, schema ≥ 4).
    if (r.psk_secret_id !== null) secretRefs[r.name as string] = r.psk_secret_id as number;
    if (r.preset !== null) presets[r.name as string] = r.preset as string;
  }
  return { doc, presets, secretRefs };
}

function writeLive(db: Db, doc: ConfigDoc, presets: Record<string, string>, refs: Record<string, number>): void {
  const admission: Row = {};
  for (const k of TOP_ADMISSION_FIELDS) if (doc[k] !== undefined) admission[k] = doc[k];
  db.prepare('UPDATE device_settings SET ike_port = ?, natt_port = ?, control_socket = ?, log_level = ?, keylog = ?, data_plane = ?, admission = ? WHERE id = 1').run(
    doc.ike_port ?? null, doc.natt_port ?? null, doc.control_socket ?? null, doc.log_level ?? null, doc.keylog ?? null, doc.data_plane ?? null,
    Object.keys(admission).length ? JSON.stringify(admission) : null,
  );
  db.prepare('DELETE FROM interfaces').run();
  const ins = db.prepare('INSERT INTO interfaces (address, position) VALUES (?, ?)');
  (doc.listen ?? []).forEach((a, i) => ins.run(a, i));
  db.prepare('DELETE FROM tunnels').run();
  const cols = ['name', 'position', 'psk_secret_id', 'preset', 'options', ...TUNNEL_BOOL_FIELDS, ...TUNNEL_INT_FIELDS, ...TUNNEL_TEXT_FIELDS, ...TUNNEL_LIST_FIELDS, ...TUNNEL_JSON_FIELDS];
  const insT = db.prepare(`INSERT INTO tunnels (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
  doc.tunnels.forEach((t, i) => {
    const tr = t as unknown as Row;
    const opts: Row = {};
    for (const f of TUNNEL_OPTION_FIELDS) if (tr[f] !== undefined) opts[f] = tr[f];
    insT.run(
      t.name, i, refs[t.name] ?? null, presets[t.name] ?? null, Object.keys(opts).length ? JSON.stringify(opts) : null,
      ...TUNNEL_BOOL_FIELDS.map((f) => (tr[f] === undefined ? null : tr[f] ? 1 : 0)),
      ...TUNNEL_INT_FIELDS.map((f) => tr[f] ?? null),
      ...TUNNEL_TEXT_FIELDS.map((f) => tr[f] ?? null),
      ...TUNNEL_LIST_FIELDS.map((f) => (tr[f] === undefined ? null : JSON.stringify(tr[f]))),
      ...TUNNEL_JSON_FIELDS.map((f) => (tr[f] === undefined ? null : JSON.stringify(tr[f]))),
    );
  });
}

export function readSecretValues(db: Db, ids: readonly number[]): Map<number, string> {
  const out = new Map<number, string>();
  const q = db.prepare("SELECT value FROM secrets WHERE id = ? AND kind = 'psk'");
  for (const id of ids) {
    const r = q.get(id) as { value: Buffer } | undefined;
    if (!r) throw new StoreError(StoreErrorCode.NOT_FOUND, `secret #${id} is missing`);
    out.set(id, Buffer.from(r.value).toString('utf8'));
  }
  return out;
}

/** The store's random key for the secrets hash (created on first use). */
function storeKey(db: Db, now: number): Buffer {
  const r = db.prepare("SELECT value FROM secrets WHERE kind = 'store_key' ORDER BY id LIMIT 1").get() as { value: Buffer } | undefined;
  if (r) return Buffer.from(r.value);
  const key = randomBytes(32);
  db.prepare("INSERT INTO secrets (kind, value, created_at) VALUES ('store_key', ?, ?)").run(key, now);
  return key;
}

/**
 * HMAC-SHA256 over the (tunnel name, PSK) pairs, keyed with a random
 * per-store key: equal hashes mean equal secrets, but a leaked history does
 * not allow offline guessing of a PSK the way a plain hash would.
 */
function secretsHash(db: Db, refs: Record<string, number>, now: number): string {
  const values = readSecretValues(db, Object.values(refs));
  const pairs = Object.keys(refs)
    .sort()
    .map((n) => [n, values.get(refs[n]!)!]);
  return createHmac('sha256', storeKey(db, now)).update(stableJson(pairs)).digest('hex');
}

export function latestRevision(db: Db): RevisionRow | undefined {
  return db.prepare('SELECT * FROM revisions ORDER BY id DESC LIMIT 1').get() as RevisionRow | undefined;
}

export function getRevisionRow(db: Db, id: number): RevisionRow | undefined {
  return db.prepare('SELECT * FROM revisions WHERE id = ?').get(id) as RevisionRow | undefined;
}

/** A stored snapshot (any schema version) → current-version document and presets. */
export function snapshotOf(row: Pick<RevisionRow, 'snapshot' | 'id'>): { doc: ConfigDoc; presets: Record<string, string> } {
  const errors: ConfigError[] = [];
  const b = migrateDocument(JSON.parse(row.snapshot) as Record<string, unknown>, errors);
  if (errors.length) throw new StoreError(StoreErrorCode.CORRUPT, `revision ${row.id}: snapshot cannot be migrated: ${errors[0]!.message}`);
  return fromBackup(b as unknown as BackupDoc);
}

export interface CommitInput {
  /** Canonical document. A tunnel's `psk` sets its key; without one the tunnel keeps its current key. */
  doc: ConfigDoc;
  /** Exact secret references to use (rollback); overrides the psk / keep logic for the tunnels listed. */
  secretRefs?: Record<string, number>;
  presets: Record<string, string>;
  author: string;
  comment: string;
  kind: RevisionKind;
  now: number;
  restores?: number;
  pending?: { deadline: number; rollbackTo: number };
  /**
   * The newest revision id the caller validated against; if another writer
   * committed since, the transaction fails with ERR_STORE_CONFLICT instead of
   * silently overwriting its change.
   */
  expectPrevious?: number;
  /** Return { changed: false } instead of writing when nothing differs from the newest revision. */
  skipIfUnchanged?: boolean;
  /** Audit action name (default: the kind) and extra detail (never secrets). */
  audit?: { action?: string; detail?: Record<string, unknown> };
}

export interface CommitResult {
  changed: boolean;
  revision: RevisionRow;
  previous: number | null;
  diff: DiffEntry[];
}

function resolveSecrets(db: Db, input: CommitInput, live: LiveState): Record<string, number> {
  const refs: Record<string, number> = {};
  const current = readSecretValues(db, [...new Set(Object.values(live.secretRefs))]);
  const insert = db.prepare("INSERT INTO secrets (kind, value, created_at) VALUES ('psk', ?, ?)");
  for (const t of input.doc.tunnels) {
    // Public-key authentication has no PSK (validation refuses one): no reference.
    if (t.auth === 'pubkey') continue;
    const explicit = input.secretRefs?.[t.name];
    if (explicit !== undefined) {
      readSecretValues(db, [explicit]); // must exist
      refs[t.name] = explicit;
      continue;
    }
    const cur = live.secretRefs[t.name];
    if (t.psk !== undefined) {
      if (cur !== undefined && current.get(cur) === t.psk) refs[t.name] = cur;
      else refs[t.name] = Number(insert.run(Buffer.from(t.psk, 'utf8'), input.now).lastInsertRowid);
    } else if (cur !== undefined) refs[t.name] = cur;
    else throw new StoreError(StoreErrorCode.ARGUMENT, `tunnel '${t.name}' has no PSK and none is stored`);
  }
  return refs;
}

/** Write one revision (see the module comment). Runs in its own transaction. */
export function commitRevision(db: Db, input: CommitInput): CommitResult {
  return db.transaction((): CommitResult => {
    const prev = latestRevision(db);
    if (input.expectPrevious !== undefined && prev?.id !== input.expectPrevious)
      throw new StoreError(StoreErrorCode.CONFLICT, `the configuration changed (revision ${prev?.id ?? 'none'}, expected ${input.expectPrevious}): reload and retry`);
    const live = readLive(db);
    const refs = resolveSecrets(db, input, live);
    const doc = withoutSecrets(input.doc);
    const presets: Record<string, string> = {};
    for (const t of doc.tunnels) if (input.presets[t.name] !== undefined) presets[t.name] = input.presets[t.name]!;
    const snapshot = toBackup(doc, presets, SCHEMA_VERSION);
    const before = prev ? { ...snapshotOf(prev), secretRefs: JSON.parse(prev.secret_refs) as Record<string, number> } : undefined;
    const diff = diffDocuments(before, { doc, presets, secretRefs: refs });
    if (input.skipIfUnchanged && prev && diff.length === 0) return { changed: false, revision: prev, previous: prev.id, diff };

    writeLive(db, doc, presets, refs);
    const hash = secretsHash(db, refs, input.now);
    const r = db
      .prepare(
        `INSERT INTO revisions (created_at, author, comment, kind, restores, snapshot, secret_refs, secrets_hash, diff, status, confirm_deadline, rollback_to)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        input.now, input.author, input.comment, input.kind, input.restores ?? null, JSON.stringify(snapshot), JSON.stringify(refs), hash,
        JSON.stringify(diff), input.pending ? 'pending' : 'committed', input.pending?.deadline ?? null, input.pending?.rollbackTo ?? null,
      );
    const id = Number(r.lastInsertRowid);
    appendAudit(db, {
      ts: input.now,
      actor: input.author,
      action: input.audit?.action ?? input.kind,
      target: `revision:${id}`,
      detail: { changes: diff.length, paths: diff.slice(0, 50).map((d) => d.path), ...(input.pending ? { confirm_deadline: input.pending.deadline } : {}), ...input.audit?.detail },
    });
    return { changed: true, revision: getRevisionRow(db, id)!, previous: prev?.id ?? null, diff };
  }).immediate();
}
