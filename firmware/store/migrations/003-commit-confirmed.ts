/**
 * Schema v3: commit-confirmed (Junos `commit confirmed`). A revision can be
 * `pending` until confirmed or until its deadline passes, when the store
 * restores `rollback_to` and marks it `reverted`. Existing revisions become
 * `committed`. FROZEN: never edit (hash pinned in
 * test/store/migrations.test.ts); add a new migration instead.
 */
import type { Migration } from './types.js';

export const migration003: Migration = {
  version: 3,
  name: 'commit-confirmed',
  steps: [
    `ALTER TABLE revisions ADD COLUMN status TEXT NOT NULL DEFAULT 'committed'
       CHECK (status IN ('committed', 'pending', 'reverted'))`,
    `ALTER TABLE revisions ADD COLUMN confirm_deadline INTEGER`,
    `ALTER TABLE revisions ADD COLUMN confirmed_at INTEGER`,
    `ALTER TABLE revisions ADD COLUMN confirmed_by TEXT`,
    `ALTER TABLE revisions ADD COLUMN rollback_to INTEGER REFERENCES revisions(id)`,
    `CREATE INDEX revisions_pending ON revisions (status) WHERE status = 'pending'`,
  ],
};
