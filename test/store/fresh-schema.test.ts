/**
 * store/fresh-schema.ts: a new database created in one piece is identical to
 * one built by running every migration (schema rows and their SQL text, table
 * and index definitions, foreign keys, data, user_version), migrate() reports
 * the same versions for both, and only an empty version-0 database takes
 * that path.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../firmware/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion } from '../../firmware/store/schema.js';
import { FRESH_SCHEMA } from '../../firmware/store/fresh-schema.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Everything about a database's schema and contents that a reader could observe. */
function describeDb(db: Db): unknown {
  const objects = db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name').all() as { type: string; name: string }[];
  const tables = objects.filter((o) => o.type === 'table').map((o) => o.name);
  return {
    userVersion: schemaVersion(db),
    objects,
    tables: Object.fromEntries(
      tables.map((t) => [
        t,
        {
          columns: db.pragma(`table_xinfo("${t}")`),
          foreignKeys: db.pragma(`foreign_key_list("${t}")`),
          indexes: (db.pragma(`index_list("${t}")`) as { name: string }[]).map((i) => ({ ...i, columns: db.pragma(`index_xinfo("${i.name}")`) })),
          rows: t === 'sqlite_sequence' ? db.prepare('SELECT * FROM sqlite_sequence ORDER BY name').all() : db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all(),
        },
      ]),
    ),
  };
}

/** The statements FRESH_SCHEMA should hold, from a database the migrations built. */
function regenerated(db: Db): string {
  const sql = (db.prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name <> 'sqlite_sequence' ORDER BY rowid").pluck().all() as string[]).map((s) => `    \`${s}\`,`);
  return sql.join('\n');
}

describe('fresh schema', () => {
  it('is the newest version, and a database created from it equals one the migrations built', () => {
    dir = mkdtempSync(join(tmpdir(), 'pqgate-fresh-'));
    // Through the migrations: version 1 first (a target below the newest never takes the fresh path), then the rest.
    const migrated = openDatabase(join(dir, 'migrated.db'), { targetVersion: 1 });
    expect(migrate(migrated)).toEqual(MIGRATIONS.slice(1).map((m) => m.version));
    if (FRESH_SCHEMA.version !== SCHEMA_VERSION) {
      expect.fail(`store/fresh-schema.ts is at version ${FRESH_SCHEMA.version}, the migrations at ${SCHEMA_VERSION}: regenerate its statements:\n${regenerated(migrated)}`);
    }
    const fresh = openDatabase(join(dir, 'fresh.db'), { noMigrate: true });
    expect(migrate(fresh)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(describeDb(fresh)).toEqual(describeDb(migrated));
    expect(schemaVersion(fresh)).toBe(SCHEMA_VERSION);
    expect(fresh.pragma('foreign_key_check')).toEqual([]);
    expect(fresh.pragma('integrity_check', { simple: true })).toBe('ok');
    migrated.close();
    fresh.close();
  });

  it('is used only for an empty database: one with a table of its own at version 0 runs the migrations and keeps it', () => {
    dir = mkdtempSync(join(tmpdir(), 'pqgate-fresh-'));
    const path = join(dir, 'x.db');
    const pre = openDatabase(path, { noMigrate: true });
    pre.exec('CREATE TABLE local_notes (note TEXT)');
    pre.prepare('INSERT INTO local_notes VALUES (?)').run('kept');
    pre.close();
    const db = openDatabase(path);
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT note FROM local_notes').pluck().all()).toEqual(['kept']);
    // The migrations' own trace: migration 004 rebuilt tunnels under a temporary name.
    expect(db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'tunnels'").pluck().get()).toMatch(/^CREATE TABLE "tunnels"/);
    db.close();
  });
});
