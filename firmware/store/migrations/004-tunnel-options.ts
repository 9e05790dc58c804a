/**
 * Schema v4: every key of the configuration document (docs/config.md) has a
 * place in the store.
 *
 *   - `tunnels` is rebuilt (SQLite cannot relax NOT NULL in place,
 *     https://www.sqlite.org/lang_altertable.html#otheralter) so that
 *     `psk_secret_id` is optional: a tunnel with `auth: "pubkey"` has no PSK.
 *     A CHECK keeps the two consistent: a PSK reference exactly when the
 *     tunnel does not use public-key authentication.
 *   - `tunnels.options` (JSON object, NULL = none) holds the typed fields
 *     that have no column of their own: mtu, cert, key, cert_chain, ca_certs,
 *     allowed_schemes, full_transcript_auth, retransmit_timeout,
 *     retransmit_tries, child_rekey_bytes, child_rekey_packets. They are
 *     validated by parseDaemonConfig before every write like every other
 *     field. cert/key are file paths, not secrets; the PSK stays in `secrets`.
 *   - `device_settings.data_plane`.
 *
 * Data: every tunnel row is copied unchanged (all v3 tunnels use a PSK);
 * revision snapshots are not rewritten (doc-migrations.ts lifts them on
 * read). Nothing references `tunnels`, so dropping the old table is safe with
 * foreign_keys on. FROZEN once released: never edit (hash pinned in
 * test/store/migrations.test.ts); add a new migration instead.
 */
import type { Migration } from './types.js';

export const migration004: Migration = {
  version: 4,
  name: 'tunnel-options',
  steps: [
    `CREATE TABLE tunnels_v4 (
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
       options TEXT CHECK (options IS NULL OR json_type(options) = 'object'),
       CHECK ((psk_secret_id IS NULL) = (auth IS 'pubkey'))
     )`,
    `INSERT INTO tunnels_v4 (name, position, enabled, local_addr, remote_addr, remote_port, local_id, remote_id, auth, psk_secret_id,
       proposals, esp_proposals, local_ts, remote_ts, mode, inside_addr, start_action, fragmentation, fragment_size, encap,
       rekey_time, child_rekey_time, dpd_delay, replay_window, mss, preset, options)
     SELECT name, position, enabled, local_addr, remote_addr, remote_port, local_id, remote_id, auth, psk_secret_id,
       proposals, esp_proposals, local_ts, remote_ts, mode, inside_addr, start_action, fragmentation, fragment_size, encap,
       rekey_time, child_rekey_time, dpd_delay, replay_window, mss, preset, NULL
     FROM tunnels`,
    `DROP TABLE tunnels`,
    `ALTER TABLE tunnels_v4 RENAME TO tunnels`,
    `ALTER TABLE device_settings ADD COLUMN data_plane TEXT`,
  ],
};
