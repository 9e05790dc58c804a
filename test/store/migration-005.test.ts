/** Schema v5 (migrations/005-health-check.ts): tunnels.health_check, a JSON object or NULL. */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../firmware/store/db.js';
import { migrate } from '../../firmware/store/schema.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('schema v5: health_check', () => {
  it('adds the column to a v4 database, keeps existing rows (NULL = no probe), and refuses anything but an object', () => {
    dir = mkdtempSync(join(tmpdir(), 'pqgate-mig5-'));
    const db = openDatabase(join(dir, 'data', 'config.db'), { targetVersion: 4 });
    db.prepare("INSERT INTO tunnels (name, position, auth, rekey_time) VALUES ('old', 0, 'pubkey', 3600)").run();
    expect(() => db.prepare('SELECT health_check FROM tunnels').all()).toThrow(/no such column/);
    expect(migrate(db, 5)).toEqual([5]);
    expect(db.prepare("SELECT name, rekey_time, health_check FROM tunnels WHERE name = 'old'").get()).toEqual({ name: 'old', rekey_time: 3600, health_check: null });
    db.prepare("UPDATE tunnels SET health_check = ? WHERE name = 'old'").run(JSON.stringify({ target: '10.0.0.1', interval: 10 }));
    expect(JSON.parse((db.prepare('SELECT health_check FROM tunnels').get() as { health_check: string }).health_check)).toEqual({ target: '10.0.0.1', interval: 10 });
    expect(() => db.prepare("UPDATE tunnels SET health_check = '[1]' WHERE name = 'old'").run()).toThrow(/CHECK constraint/);
    expect(() => db.prepare("UPDATE tunnels SET health_check = 'not json' WHERE name = 'old'").run()).toThrow();
    db.close();
  });
});
