/**
 * The appliance configuration store: the daemon's JSON configuration
 * (docs/config.md) kept in SQLite with full revision history, rollback,
 * Junos-style commit-confirmed, import/export (backups with schema
 * versions), admin users, certificates and the audit/event logs.
 * docs/store.md describes the semantics; this class is the only API the
 * daemon, CLI and web UI use.
 *
 * Secrets: PSKs and private keys live in their own table and are never
 * returned by a read method (getDocument, history, getRevision, diff,
 * auditLog, errors). They leave the store only through
 * exportDocument({ includeSecrets: true }) (audited, for backups) and
 * daemonConfig() (the running daemon's in-memory configuration).
 *
 * Time: `now()` is wall-clock milliseconds, injectable for tests. Commit-
 * confirmed deadlines must survive a restart, so they cannot use the
 * engine's monotonic clock.
 */
import { ConfigValidationError, parseDaemonConfig, type ParseOptions } from '../config/schema.js';
import { defaultConfigDocument } from '../config/defaults.js';
import type { DaemonConfig } from '../config/types.js';
import { ConfigError } from '../util/errors.js';
import { applyPreset, isPreset, type ApplyPresetOptions } from '../presets/presets.js';
import { openDatabase, type Db } from './db.js';
import { SCHEMA_VERSION } from './schema.js';
import { StoreError, StoreErrorCode } from './errors.js';
import { toBackup, withPsk, type BackupDoc, type ConfigDoc } from './document.js';
import { diffDocuments, formatDiff, type DiffEntry } from './diff.js';
import {
  commitRevision, getRevisionRow, latestRevision, readLive, readSecretValues, snapshotOf,
  type CommitResult, type RevisionKind, type RevisionRow, type RevisionStatus,
} from './persist.js';
import { validateConfig, validateDocument, validatePatch, type ValidateContext, type ValidatedInput } from './validate.js';
import { appendAudit, appendEvent, listAudit, listEvents, type AuditEntry, type EventEntry } from './logs.js';
import * as users from './users.js';
import * as certs from './certs.js';

export const CONFIRM_TIMEOUT_AUTHOR = 'system (confirm timeout)';
export const INITIAL_AUTHOR = 'system (initial)';
const MAX_CONFIRM_TIMEOUT_SEC = 7 * 86400;

export interface StoreOptions {
  /** Wall clock, ms since the epoch. Default Date.now. */
  now?: () => number;
  /** Document of revision 1 when the database is new. Default: the embedded default configuration. */
  initialDocument?: unknown;
  /** Run checkPending() while opening (default true): a revision past its confirm deadline is rolled back. */
  checkPendingOnOpen?: boolean;
}

export interface ChangeOptions {
  author: string;
  comment?: string;
  /** Commit confirmed: roll back automatically unless confirm() is called within this many seconds. */
  confirmTimeoutSec?: number;
}

export interface RevisionInfo {
  id: number;
  createdAt: number;
  author: string;
  comment: string;
  kind: RevisionKind;
  status: RevisionStatus;
  /** For rollbacks: the revision whose content this one restores. */
  restores: number | null;
  /** For pending revisions: the revision restored if not confirmed in time. */
  rollbackTo: number | null;
  confirmDeadline: number | null;
  confirmedAt: number | null;
  confirmedBy: string | null;
  /** Keyed hash of the secrets (equal hash = equal PSKs); never the secrets. */
  secretsHash: string;
  /** Changes against the previous revision. */
  diff: DiffEntry[];
}

export interface RevisionDetail extends RevisionInfo {
  /** The configuration of this revision (backup form, current schema, no secrets). */
  document: BackupDoc;
}

export interface ApplyResult {
  /** False when the input equals the current configuration (no revision written). */
  changed: boolean;
  revision: RevisionInfo;
  diff: DiffEntry[];
}

export type StoreChangeKind = 'initial' | 'apply' | 'import' | 'rollback' | 'confirm' | 'confirm-timeout' | 'cancel';

export interface StoreChangeEvent {
  kind: StoreChangeKind;
  /** The current revision after the change. */
  revision: number;
  previous: number | null;
  /** True while the current revision awaits confirm(). */
  pending: boolean;
  /** The running configuration changed: the daemon must reconcile its tunnels. */
  configChanged: boolean;
}

export interface ExportOptions {
  /** Include PSKs (backups). Audited. Default false: tunnels come without `psk`. */
  includeSecrets?: boolean;
  /** Backup form: adds schema_version and tunnel_presets (see docs/store.md). */
  backup?: boolean;
  /** Who exported (for the audit log when secrets are included). */
  actor?: string;
}

function info(r: RevisionRow): RevisionInfo {
  return {
    id: r.id,
    createdAt: r.created_at,
    author: r.author,
    comment: r.comment,
    kind: r.kind,
    status: r.status,
    restores: r.restores,
    rollbackTo: r.rollback_to,
    confirmDeadline: r.confirm_deadline,
    confirmedAt: r.confirmed_at,
    confirmedBy: r.confirmed_by,
    secretsHash: r.secrets_hash,
    diff: JSON.parse(r.diff) as DiffEntry[],
  };
}

/** The PSK a tunnel's secret reference points at; none for a tunnel without PSK (auth pubkey). */
function pskOf(values: Map<number, string>, ref: number | undefined): string | undefined {
  return ref === undefined ? undefined : values.get(ref)!;
}

function checkActor(author: unknown, what = 'author'): string {
  if (typeof author !== 'string' || author.trim() === '' || author.length > 128 || /[\u0000-\u001f\u007f]/.test(author))
    throw new StoreError(StoreErrorCode.ARGUMENT, `${what} must be a non-empty string of at most 128 printable characters`);
  return author;
}

function checkChange(opts: ChangeOptions): { author: string; comment: string; confirmTimeoutSec?: number } {
  const author = checkActor(opts?.author);
  const comment = opts.comment ?? '';
  if (typeof comment !== 'string' || comment.length > 2000) throw new StoreError(StoreErrorCode.ARGUMENT, 'comment must be a string of at most 2000 characters');
  const t = opts.confirmTimeoutSec;
  if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > MAX_CONFIRM_TIMEOUT_SEC))
    throw new StoreError(StoreErrorCode.ARGUMENT, `confirmTimeoutSec must be an integer between 1 and ${MAX_CONFIRM_TIMEOUT_SEC}`);
  return { author, comment, ...(t !== undefined ? { confirmTimeoutSec: t } : {}) };
}

export class ConfigStore {
  readonly path: string;
  private readonly db: Db;
  private readonly now: () => number;
  private readonly listeners = new Set<(e: StoreChangeEvent) => void>();
  private closed = false;

  private constructor(path: string, db: Db, now: () => number) {
    this.path = path;
    this.db = db;
    this.now = now;
  }

  /** Open (create, migrate) the store at `path`; see StoreOptions. */
  static open(path: string, opts: StoreOptions = {}): ConfigStore {
    const db = openDatabase(path);
    const store = new ConfigStore(path, db, opts.now ?? Date.now);
    try {
      if (!latestRevision(db)) store.initialize(opts.initialDocument ?? defaultConfigDocument());
      if (opts.checkPendingOnOpen !== false) store.checkPending();
    } catch (e) {
      db.close();
      throw e;
    }
    return store;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.db.close();
  }

  /**
   * Run a validation and scrub every PSK the store holds (current and
   * historical) from its error messages: parseDaemonConfig scrubs the keys
   * present in the input, but a patch may quote a stored key elsewhere.
   */
  private scrubbed<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof ConfigValidationError)) throw e;
      const rows = this.db.prepare("SELECT value FROM secrets WHERE kind = 'psk'").all() as { value: Buffer }[];
      const secrets = rows.map((r) => Buffer.from(r.value).toString('utf8')).filter((v) => v.length >= 4);
      let changed = false;
      const errors = e.errors.map((x) => {
        let msg = x.message.slice(x.path.length + 2);
        for (const sec of secrets)
          if (msg.includes(sec)) {
            msg = msg.split(sec).join('[psk]');
            changed = true;
          }
        return new ConfigError(x.path, msg);
      });
      throw changed ? new ConfigValidationError(errors) : e;
    }
  }

  private ctx(): ValidateContext {
    const refs = readLive(this.db).secretRefs;
    return { hasStoredPsk: (n) => refs[n] !== undefined, isPreset };
  }

  private initialize(doc: unknown): void {
    const v = validateDocument(doc, { hasStoredPsk: () => false, isPreset });
    commitRevision(this.db, { doc: v.doc, presets: v.presets ?? {}, author: INITIAL_AUTHOR, comment: 'initial configuration', kind: 'initial', now: this.now() });
  }

  // ---- reading ------------------------------------------------------------

  /** The newest revision (the running configuration, pending or not). */
  current(): RevisionInfo {
    return info(latestRevision(this.db)!);
  }

  /** The current configuration document, without secrets. */
  getDocument(): ConfigDoc {
    return readLive(this.db).doc;
  }

  /** Tunnel name → preset it was created from. */
  getPresets(): Record<string, string> {
    return readLive(this.db).presets;
  }

  getRevision(id: number): RevisionDetail {
    const r = getRevisionRow(this.db, id);
    if (!r) throw new StoreError(StoreErrorCode.NOT_FOUND, `no revision ${id}`);
    const s = snapshotOf(r);
    return { ...info(r), document: toBackup(s.doc, s.presets, SCHEMA_VERSION) };
  }

  /** Revisions, newest first. */
  history(opts: { limit?: number; beforeId?: number } = {}): RevisionInfo[] {
    const rows = this.db.prepare('SELECT * FROM revisions WHERE id < ? ORDER BY id DESC LIMIT ?').all(opts.beforeId ?? Number.MAX_SAFE_INTEGER, opts.limit ?? 1000) as RevisionRow[];
    return rows.map(info);
  }

  /** Structural diff between two revisions (either order), with JSON paths and a readable text. */
  diff(a: number, b: number): { from: number; to: number; entries: DiffEntry[]; text: string } {
    const side = (id: number) => {
      const r = getRevisionRow(this.db, id);
      if (!r) throw new StoreError(StoreErrorCode.NOT_FOUND, `no revision ${id}`);
      return { ...snapshotOf(r), secretRefs: JSON.parse(r.secret_refs) as Record<string, number> };
    };
    const entries = diffDocuments(side(a), side(b));
    return { from: a, to: b, entries, text: formatDiff(entries) };
  }

  // ---- changing -----------------------------------------------------------

  private ensureNotPending(): void {
    // A revision whose deadline passed is rolled back first, even if the daemon's timer has not fired yet.
    this.checkPending();
    const p = this.pending();
    if (p) throw new StoreError(StoreErrorCode.PENDING, `revision ${p.id} awaits confirmation until ${new Date(p.confirmDeadline!).toISOString()}: confirm or cancel it first`);
  }

  private commit(
    v: ValidatedInput,
    kind: RevisionKind,
    opts: ChangeOptions,
    extra: { base: number; restores?: number; secretRefs?: Record<string, number>; keepPresets?: boolean },
  ): ApplyResult {
    const o = checkChange(opts);
    const now = this.now();
    let presets = v.presets;
    if (presets === undefined) {
      // A plain document does not carry presets: keep the origin of tunnels that are still there.
      presets = extra.keepPresets ? readLive(this.db).presets : {};
    }
    const r: CommitResult = commitRevision(this.db, {
      doc: v.doc,
      presets,
      author: o.author,
      comment: o.comment,
      kind,
      now,
      ...(extra.restores !== undefined ? { restores: extra.restores } : {}),
      ...(extra.secretRefs ? { secretRefs: extra.secretRefs } : {}),
      ...(o.confirmTimeoutSec !== undefined ? { pending: { deadline: now + o.confirmTimeoutSec * 1000, rollbackTo: extra.base } } : {}),
      skipIfUnchanged: kind === 'apply' && o.confirmTimeoutSec === undefined,
      expectPrevious: extra.base,
    });
    const result = { changed: r.changed, revision: info(r.revision), diff: r.diff };
    if (r.changed) this.emit({ kind, revision: r.revision.id, previous: r.previous, pending: r.revision.status === 'pending', configChanged: true });
    return result;
  }

  /**
   * Apply a full document (plain or backup form; tunnels without `psk` keep
   * their stored key) or a patch `{ patch: {...} }` (validate.ts). Validates
   * everything first: on any error nothing is written and the
   * ConfigValidationError lists every problem with its path.
   */
  apply(input: unknown, opts: ChangeOptions): ApplyResult {
    checkChange(opts);
    this.ensureNotPending();
    const base = this.current().id;
    const ctx = this.ctx();
    const isPatch = input !== null && typeof input === 'object' && !Array.isArray(input) && 'patch' in input;
    const v = this.scrubbed(() => (isPatch ? validatePatch((input as { patch: unknown }).patch, readLive(this.db), ctx) : validateDocument(input, ctx)));
    return this.commit(v, 'apply', opts, { base, keepPresets: true });
  }

  /**
   * Restore a document or backup (JSON text or value) as a new revision.
   * A backup from an older schema is migrated first. All-or-nothing; tunnel
   * presets come from the backup (a plain document has none).
   */
  importDocument(json: unknown, opts: ChangeOptions): ApplyResult {
    checkChange(opts);
    this.ensureNotPending();
    const base = this.current().id;
    const ctx = this.ctx();
    const v = this.scrubbed(() => validateDocument(json, ctx));
    return this.commit(v, 'import', opts, { base });
  }

  /** A new revision equal to revision `rev` (configuration, presets and secrets). */
  rollback(rev: number, opts: ChangeOptions): ApplyResult {
    checkChange(opts);
    this.ensureNotPending();
    return this.restore(rev, 'rollback', opts);
  }

  private restore(rev: number, kind: RevisionKind, opts: ChangeOptions): ApplyResult {
    const base = this.current().id;
    const r = getRevisionRow(this.db, rev);
    if (!r) throw new StoreError(StoreErrorCode.NOT_FOUND, `no revision ${rev}`);
    const s = snapshotOf(r);
    const refs = JSON.parse(r.secret_refs) as Record<string, number>;
    // Re-validate with today's rules (the old revision's keys exist: placeholders stand in for them).
    const v = this.scrubbed(() => validateConfig(s.doc, s.presets, { hasStoredPsk: (n) => refs[n] !== undefined, isPreset }));
    return this.commit({ doc: v.doc, presets: v.presets ?? {} }, kind, opts, { base, restores: rev, secretRefs: refs });
  }

  /** Create a tunnel from a preset (presets.ts applyPreset) and apply it as a patch. */
  addTunnelFromPreset(preset: string, overrides: Record<string, unknown>, opts: ChangeOptions & ApplyPresetOptions): ApplyResult {
    const listen = this.getDocument().listen;
    const r = this.scrubbed(() => applyPreset(preset, overrides, { ...(opts.params ? { params: opts.params } : {}), ...(listen ? { listen } : {}) }));
    if (this.getDocument().tunnels.some((t) => t.name === r.tunnel.name))
      throw new ConfigValidationError([new ConfigError('name', `a tunnel named '${r.tunnel.name}' already exists`)]);
    return this.apply({ patch: { tunnels: { [r.tunnel.name]: r.tunnel }, tunnel_presets: { [r.tunnel.name]: preset } } }, opts);
  }

  // ---- commit confirmed -----------------------------------------------------

  /** The revision awaiting confirmation, if any. */
  pending(): RevisionInfo | undefined {
    const r = this.db.prepare("SELECT * FROM revisions WHERE status = 'pending' ORDER BY id DESC LIMIT 1").get() as RevisionRow | undefined;
    return r ? info(r) : undefined;
  }

  /** When checkPending() must next run (ms, wall clock), for the daemon's timer. */
  pendingDeadline(): number | undefined {
    return this.pending()?.confirmDeadline ?? undefined;
  }

  /** Make the pending revision permanent. `author` defaults to the pending revision's author. */
  confirm(opts: { author?: string } = {}): RevisionInfo {
    const now = this.now();
    // A confirmation after the deadline is too late, even if the timer has not fired yet.
    const reverted = this.checkPending(now);
    if (reverted) throw new StoreError(StoreErrorCode.NOT_PENDING, `the confirm deadline passed: rolled back as revision ${reverted.revision.id}`);
    const p = this.pending();
    if (!p) throw new StoreError(StoreErrorCode.NOT_PENDING, 'no revision awaits confirmation');
    const author = checkActor(opts.author ?? p.author);
    this.db.transaction(() => {
      this.db.prepare("UPDATE revisions SET status = 'committed', confirmed_at = ?, confirmed_by = ? WHERE id = ? AND status = 'pending'").run(now, author, p.id);
      appendAudit(this.db, { ts: now, actor: author, action: 'confirm', target: `revision:${p.id}`, detail: null });
    }).immediate();
    this.emit({ kind: 'confirm', revision: p.id, previous: p.id, pending: false, configChanged: false });
    return info(getRevisionRow(this.db, p.id)!);
  }

  private revertPending(p: RevisionInfo, author: string, kind: 'confirm-timeout' | 'cancel', comment: string): ApplyResult {
    const now = this.now();
    const target = p.rollbackTo!;
    let result: ApplyResult | undefined;
    // One transaction: the restoring revision and the pending one's new status land together.
    this.db.transaction(() => {
      const r = getRevisionRow(this.db, target);
      if (!r) throw new StoreError(StoreErrorCode.CORRUPT, `pending revision ${p.id} rolls back to missing revision ${target}`);
      const s = snapshotOf(r);
      const c = commitRevision(this.db, {
        doc: s.doc,
        presets: s.presets,
        secretRefs: JSON.parse(r.secret_refs) as Record<string, number>,
        author,
        comment,
        kind: 'rollback',
        restores: target,
        now,
        audit: { action: kind === 'cancel' ? 'cancel-pending' : 'confirm-timeout', detail: { reverted: p.id } },
      });
      this.db.prepare("UPDATE revisions SET status = 'reverted' WHERE id = ?").run(p.id);
      result = { changed: true, revision: info(c.revision), diff: c.diff };
    }).immediate();
    this.emit({ kind, revision: result!.revision.id, previous: p.id, pending: false, configChanged: true });
    return result!;
  }

  /**
   * Called by the daemon's timer (and at open): if the pending revision's
   * deadline has passed, restore the revision before it as a new revision
   * authored "system (confirm timeout)". Returns that revision, if any.
   */
  checkPending(now: number = this.now()): ApplyResult | undefined {
    const p = this.pending();
    if (!p || p.confirmDeadline === null || now < p.confirmDeadline) return undefined;
    return this.revertPending(p, CONFIRM_TIMEOUT_AUTHOR, 'confirm-timeout', `revision ${p.id} not confirmed by its deadline`);
  }

  /** Roll back the pending revision now (the operator gave up on it). */
  cancelPending(opts: { author: string; comment?: string }): ApplyResult {
    const author = checkActor(opts?.author);
    const p = this.pending();
    if (!p) throw new StoreError(StoreErrorCode.NOT_PENDING, 'no revision awaits confirmation');
    return this.revertPending(p, author, 'cancel', opts.comment ?? `revision ${p.id} cancelled`);
  }

  /** Subscribe to revision changes; returns the unsubscribe function. Listener errors are logged to the event log, never thrown. */
  onChange(cb: (e: StoreChangeEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private emit(e: StoreChangeEvent): void {
    for (const cb of [...this.listeners]) {
      try {
        cb(e);
      } catch (err) {
        appendEvent(this.db, { ts: this.now(), level: 'error', tunnel: null, message: `store change listener failed: ${(err as Error)?.message ?? String(err)}`.slice(0, 500) });
      }
    }
  }

  // ---- import / export ------------------------------------------------------

  /** The configuration document (docs/config.md); backup form and secrets on request. */
  exportDocument(opts: ExportOptions = {}): ConfigDoc | BackupDoc {
    const live = readLive(this.db);
    const doc = live.doc;
    if (opts.includeSecrets) {
      const actor = checkActor(opts.actor ?? 'unknown', 'actor');
      const values = readSecretValues(this.db, Object.values(live.secretRefs));
      doc.tunnels = doc.tunnels.map((t) => withPsk(t, pskOf(values, live.secretRefs[t.name])));
      appendAudit(this.db, { ts: this.now(), actor, action: 'export-secrets', target: `revision:${this.current().id}`, detail: { backup: opts.backup === true, tunnels: doc.tunnels.length } });
    }
    return opts.backup ? toBackup(doc, live.presets, SCHEMA_VERSION) : doc;
  }

  /**
   * The validated configuration for the running daemon, PSKs included. For
   * the daemon process only; never to be served over the control or web API.
   */
  daemonConfig(opts: ParseOptions = {}): DaemonConfig {
    const live = readLive(this.db);
    const values = readSecretValues(this.db, Object.values(live.secretRefs));
    const doc = { ...live.doc, tunnels: live.doc.tunnels.map((t) => withPsk(t, pskOf(values, live.secretRefs[t.name]))) };
    return parseDaemonConfig(doc, opts);
  }

  // ---- admin users ----------------------------------------------------------

  createUser(name: string, password: string, opts: { actor: string }): users.AdminUser {
    const actor = checkActor(opts?.actor, 'actor');
    const now = this.now();
    return this.db.transaction(() => {
      const u = users.createUser(this.db, name, password, now);
      appendAudit(this.db, { ts: now, actor, action: 'user-create', target: `user:${name}`, detail: null });
      return u;
    }).immediate();
  }

  verifyUser(name: string, password: string): boolean {
    return users.verifyUser(this.db, name, password);
  }

  changePassword(name: string, newPassword: string, opts: { actor: string; currentPassword?: string }): void {
    const actor = checkActor(opts?.actor, 'actor');
    const now = this.now();
    this.db.transaction(() => {
      users.changePassword(this.db, name, newPassword, now, opts.currentPassword);
      appendAudit(this.db, { ts: now, actor, action: 'user-password', target: `user:${name}`, detail: null });
    }).immediate();
  }

  deleteUser(name: string, opts: { actor: string }): void {
    const actor = checkActor(opts?.actor, 'actor');
    const now = this.now();
    this.db.transaction(() => {
      users.deleteUser(this.db, name);
      appendAudit(this.db, { ts: now, actor, action: 'user-delete', target: `user:${name}`, detail: null });
    }).immediate();
  }

  listUsers(): users.AdminUser[] {
    return users.listUsers(this.db);
  }

  // ---- certificates -----------------------------------------------------------

  addCertificate(input: { name: string; kind: 'cert' | 'ca'; pem: string; privateKeyPem?: string }, opts: { actor: string }): certs.CertificateInfo {
    const actor = checkActor(opts?.actor, 'actor');
    const now = this.now();
    return this.db.transaction(() => {
      const c = certs.addCertificate(this.db, input, now);
      appendAudit(this.db, { ts: now, actor, action: 'certificate-add', target: `certificate:${c.name}`, detail: { kind: c.kind, fingerprint: c.fingerprint, hasPrivateKey: c.hasPrivateKey } });
      return c;
    }).immediate();
  }

  listCertificates(): certs.CertificateInfo[] {
    return certs.listCertificates(this.db);
  }

  certificatePem(name: string): string | undefined {
    return certs.certificatePem(this.db, name);
  }

  removeCertificate(name: string, opts: { actor: string }): void {
    const actor = checkActor(opts?.actor, 'actor');
    const now = this.now();
    this.db.transaction(() => {
      certs.removeCertificate(this.db, name);
      appendAudit(this.db, { ts: now, actor, action: 'certificate-remove', target: `certificate:${name}`, detail: null });
    }).immediate();
  }

  // ---- logs -------------------------------------------------------------------

  auditLog(opts: { limit?: number; beforeId?: number } = {}): AuditEntry[] {
    return listAudit(this.db, opts);
  }

  logEvent(e: { level: EventEntry['level']; tunnel?: string; message: string; ts?: number }): number {
    return appendEvent(this.db, { ts: e.ts ?? this.now(), level: e.level, tunnel: e.tunnel ?? null, message: e.message });
  }

  /** Append several events in one transaction (one fsync): the daemon batches what the engine reports. */
  logEvents(list: readonly { level: EventEntry['level']; tunnel?: string; message: string; ts?: number }[]): void {
    if (!list.length) return;
    const now = this.now();
    this.db.transaction(() => {
      for (const e of list) appendEvent(this.db, { ts: e.ts ?? now, level: e.level, tunnel: e.tunnel ?? null, message: e.message });
    }).immediate();
  }

  events(opts: { limit?: number; tunnel?: string; beforeId?: number } = {}): EventEntry[] {
    return listEvents(this.db, opts);
  }
}
