/**
 * The newest schema for an empty database in one piece: what running every
 * migration (schema.ts MIGRATIONS) on a new file leaves in it, taken from
 * `sqlite_schema` of such a database (SQLite keeps each CREATE statement's
 * text, with ALTER TABLE's changes spliced in), plus the rows the migrations
 * insert. migrate() uses it for a database that has no tables yet, in one
 * transaction with the user_version bump, instead of the migrations: each
 * ALTER TABLE of migrations 002-006 makes SQLite re-parse and re-check the
 * whole schema, ~20 M instructions (the first boot's store creation was
 * ~0.8 s of the daemon's start under QEMU TCG; docs/image.md "Node start-up").
 *
 * test/store/fresh-schema.test.ts checks that a database created from this
 * and one created by the migrations are identical (schema rows, data,
 * user_version, PRAGMA table_info of every table). A new migration raises
 * SCHEMA_VERSION above `version` here: migrate() then takes the migrations'
 * path until this is regenerated (the test fails and prints the new text).
 */
export const FRESH_SCHEMA = {
  version: 6,
  statements: [
    `CREATE TABLE device_settings (
       id INTEGER PRIMARY KEY CHECK (id = 1),
       ike_port INTEGER,
       natt_port INTEGER,
       control_socket TEXT,
       log_level TEXT,
       keylog TEXT
     , data_plane TEXT, admission TEXT CHECK (admission IS NULL OR json_type(admission) = 'object'))`,
    `CREATE TABLE secrets (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       kind TEXT NOT NULL CHECK (kind IN ('psk', 'private_key', 'store_key')),
       value BLOB NOT NULL,
       created_at INTEGER NOT NULL
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
     , status TEXT NOT NULL DEFAULT 'committed'
       CHECK (status IN ('committed', 'pending', 'reverted')), confirm_deadline INTEGER, confirmed_at INTEGER, confirmed_by TEXT, rollback_to INTEGER REFERENCES revisions(id))`,
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
    `CREATE TABLE interfaces (
       address TEXT PRIMARY KEY,
       position INTEGER NOT NULL UNIQUE
     )`,
    `CREATE INDEX revisions_pending ON revisions (status) WHERE status = 'pending'`,
    `CREATE TABLE "tunnels" (
       name TEXT PRIMARY KEY,
       position INTEGER NOT NULL UNIQUE,
       enabled INTEGER CHECK (enabled IN (0, 1)),
       local_addr TEXT,
       remote_addr TEXT,
       remote_port INTEGER,
       local_id TEXT,
       remote_id TEXT,
       auth TEXT,
       psk_secret_id INTEGER REFERENCES secrets(id),
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
       mss INTEGER,
       preset TEXT,
       options TEXT CHECK (options IS NULL OR json_type(options) = 'object'), health_check TEXT CHECK (health_check IS NULL OR json_type(health_check) = 'object'),
       CHECK ((psk_secret_id IS NULL) = (auth IS 'pubkey'))
     )`,
    `INSERT INTO device_settings (id) VALUES (1)`,
  ],
} as const;
