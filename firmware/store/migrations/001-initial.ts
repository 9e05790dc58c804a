/**
 * Schema v1 (initial store). FROZEN: this file describes what firmware with
 * schema v1 created; databases in the field have exactly this shape. Never
 * edit it (test/store/migrations.test.ts pins its hash): change the schema
 * with a new migration file instead.
 *
 * The configuration document (docs/config.md) maps onto device_settings +
 * tunnels; absent (defaulted) fields are NULL so that an export gives back
 * the document as written, and a later firmware's new defaults still apply.
 * List fields are JSON arrays. PSKs live in `secrets`, referenced by id.
 */
import type { Migration } from './types.js';

export const migration001: Migration = {
  version: 1,
  name: 'initial',
  steps: [
    `CREATE TABLE device_settings (
       id INTEGER PRIMARY KEY CHECK (id = 1),
       listen TEXT,
       ike_port INTEGER,
       natt_port INTEGER,
       control_socket TEXT,
       log_level TEXT,
       keylog TEXT
     )`,
    `INSERT INTO device_settings (id) VALUES (1)`,
    `CREATE TABLE secrets (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       kind TEXT NOT NULL CHECK (kind IN ('psk', 'private_key', 'store_key')),
       value BLOB NOT NULL,
       created_at INTEGER NOT NULL
     )`,
    `CREATE TABLE tunnels (
       name TEXT PRIMARY KEY,
       position INTEGER NOT NULL UNIQUE,
       enabled INTEGER CHECK (enabled IN (0, 1)),
       local_addr TEXT,
       remote_addr TEXT,
       remote_port INTEGER,
       local_id TEXT,
       remote_id TEXT,
       auth TEXT,
       psk_secret_id INTEGER NOT NULL REFERENCES secrets(id),
       proposals TEXT,
       esp_proposals TEXT,
       local_ts TEXT,
       remote_ts TEXT,
       mode TEXT,
       inside_addr TEXT,
       start_action TEXT,
       fragmentation TEXT,
       fragment_size INTEGER,
       encap INTEGER CHECK (encap IN (0, 1)),
       rekey_time INTEGER,
       child_rekey_time INTEGER,
       dpd_delay INTEGER,
       replay_window INTEGER,
       mss INTEGER
     )`,
    `CREATE TABLE certificates (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       name TEXT NOT NULL UNIQUE,
       kind TEXT NOT NULL CHECK (kind IN ('cert', 'ca')),
       pem TEXT NOT NULL,
       subject TEXT NOT NULL,
       issuer TEXT NOT NULL,
       fingerprint TEXT NOT NULL,
       not_before TEXT NOT NULL,
       not_after TEXT NOT NULL,
       key_secret_id INTEGER REFERENCES secrets(id),
       created_at INTEGER NOT NULL
     )`,
    `CREATE TABLE admin_users (
       name TEXT PRIMARY KEY,
       password_hash TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       updated_at INTEGER NOT NULL
     )`,
    `CREATE TABLE revisions (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       created_at INTEGER NOT NULL,
       author TEXT NOT NULL,
       comment TEXT NOT NULL DEFAULT '',
       kind TEXT NOT NULL,
       restores INTEGER REFERENCES revisions(id),
       snapshot TEXT NOT NULL,
       secret_refs TEXT NOT NULL,
       secrets_hash TEXT NOT NULL,
       diff TEXT NOT NULL
     )`,
    `CREATE TABLE audit_log (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       ts INTEGER NOT NULL,
       actor TEXT NOT NULL,
       action TEXT NOT NULL,
       target TEXT,
       detail TEXT
     )`,
    `CREATE TABLE event_log (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       ts INTEGER NOT NULL,
       level TEXT NOT NULL,
       tunnel TEXT,
       message TEXT NOT NULL
     )`,
    `CREATE INDEX event_log_ts ON event_log (ts)`,
  ],
};
