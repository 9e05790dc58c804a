/**
 * Schema v2: the IKE listen addresses become rows of `interfaces` (one per
 * address, in document order) instead of a JSON column, and tunnels remember
 * the preset they were created from. FROZEN: never edit (hash pinned in
 * test/store/migrations.test.ts); add a new migration instead.
 *
 * Data: device_settings.listen (JSON array or NULL) is copied row by row with
 * json_each before the column is dropped. Revision snapshots are not
 * rewritten: each carries its own schema_version and is migrated at read
 * time by the document migrations (store/doc-migrations.ts).
 */
import type { Migration } from './types.js';

export const migration002: Migration = {
  version: 2,
  name: 'interfaces-presets',
  steps: [
    `CREATE TABLE interfaces (
       address TEXT PRIMARY KEY,
       position INTEGER NOT NULL UNIQUE
     )`,
    `INSERT INTO interfaces (address, position)
       SELECT j.value, j.key FROM device_settings d, json_each(d.listen) j
       WHERE d.listen IS NOT NULL`,
    `ALTER TABLE device_settings DROP COLUMN listen`,
    `ALTER TABLE tunnels ADD COLUMN preset TEXT`,
  ],
};
