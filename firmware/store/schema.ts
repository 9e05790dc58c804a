/**
 * The store's SQLite schema: an ordered list of frozen migrations
 * (migrations/NNN-*.ts). `PRAGMA user_version` holds the version a database
 * is at; opening a database runs every migration above it, each in its own
 * transaction together with the user_version bump, so a crash mid-migration
 * leaves the database at the previous version, never half-migrated. A new,
 * empty database gets the newest schema in one transaction instead
 * (fresh-schema.ts: identical result, without the migrations' ALTER TABLEs).
 *
 * History:
 *   v1  device settings (listen as JSON), tunnels, secrets, certificates,
 *       admin users, revisions, audit and event logs
 *   v2  listen addresses → `interfaces` rows; tunnels.preset
 *   v3  commit-confirmed: revisions.status / confirm_deadline /
 *       confirmed_at / confirmed_by / rollback_to
 *   v4  every document key storable: tunnels rebuilt with psk_secret_id
 *       optional (auth pubkey) and an `options` JSON column for the typed
 *       fields without a column; device_settings.data_plane
 */
import type Database from 'better-sqlite3';
import type { Migration } from './migrations/types.js';
import { migration001 } from './migrations/001-initial.js';
import { migration002 } from './migrations/002-interfaces-presets.js';
import { migration003 } from './migrations/003-commit-confirmed.js';
import { migration004 } from './migrations/004-tunnel-options.js';
import { migration005 } from './migrations/005-health-check.js';
import { migration006 } from './migrations/006-admission.js';
import { StoreError, StoreErrorCode } from './errors.js';
import { FRESH_SCHEMA } from './fresh-schema.js';

export type { Migration };

export const MIGRATIONS: readonly Migration[] = [migration001, migration002, migration003, migration004, migration005, migration006];
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Bring `db` to `target` (default: the newest version). Refuses a database
 * from a newer firmware rather than guessing at its meaning. Returns the
 * versions applied.
 */
export function migrate(db: Database.Database, target: number = SCHEMA_VERSION): number[] {
  const current = schemaVersion(db);
  if (current > SCHEMA_VERSION)
    throw new StoreError(StoreErrorCode.SCHEMA_NEWER, `database schema version ${current} is newer than this firmware's (${SCHEMA_VERSION})`);
  if (target > SCHEMA_VERSION || target < current) throw new StoreError(StoreErrorCode.ARGUMENT, `cannot migrate from version ${current} to ${target}`);
  // A new, empty database straight to the newest version (fresh-schema.ts):
  // the same result as the migrations below, in one transaction, without
  // their ALTER TABLE re-parses. Checked inside the write transaction, so a
  // second process creating the same file cannot interleave.
  if (current === 0 && target === SCHEMA_VERSION && FRESH_SCHEMA.version === SCHEMA_VERSION) {
    const created = db
      .transaction(() => {
        if (schemaVersion(db) !== 0 || (db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() as number) !== 0) return false;
        for (const sql of FRESH_SCHEMA.statements) db.exec(sql);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
        return true;
      })
      .immediate();
    if (created) return MIGRATIONS.map((m) => m.version);
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= current || m.version > target) continue;
    db.transaction(() => {
      for (const step of m.steps) db.exec(step);
      // user_version lives in the database header, which is written in the same transaction.
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    applied.push(m.version);
  }
  return applied;
}
