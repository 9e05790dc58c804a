/** Schema v6 (migrations/006-admission.ts): device_settings.admission, a JSON object or NULL. */
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

describe('schema v6: admission', () => {
  it('adds the column to a v5 database, keeps the settings row (NULL = defaults), and refuses anything but an object', () => {
    dir = mkdtempSync(join(tmpdir(), 'pqgate-mig6-'));
    const db = openDatabase(join(dir, 'data', 'config.db'), { targetVersion: 5 });
    db.prepare('UPDATE device_settings SET ike_port = 1500 WHERE id = 1').run();
    expect(() => db.prepare('SELECT admission FROM device_settings').all()).toThrow(/no such column/);
    expect(migrate(db)).toEqual([6]);
    expect(db.prepare('SELECT ike_port, admission FROM device_settings WHERE id = 1').get()).toEqual({ ike_port: 1500, admission: null });
    db.prepare('UPDATE device_settings SET admission = ? WHERE id = 1').run(JSON.stringify({ cookie_threshold: 10 }));
    expect(JSON.parse((db.prepare('SELECT admission FROM device_settings').get() as { admission: string }).admission)).toEqual({ cookie_threshold: 10 });
    expect(() => db.prepare("UPDATE device_settings SET admission = '[1]' WHERE id = 1").run()).toThrow(/CHECK constraint/);
    expect(() => db.prepare("UPDATE device_settings SET admission = 'x' WHERE id = 1").run()).toThrow();
    db.close();
  });
});
