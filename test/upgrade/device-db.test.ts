import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { bootCheck, dbSchemaVersion, prepareDatabase } from '../../firmware/upgrade/device-boot.js';
import { openDatabase } from '../../firmware/store/db.js';
import { SCHEMA_VERSION } from '../../firmware/store/schema.js';
import { makeBundle, makeFakeDevice, type FakeDevice } from './fake-device.js';
import { simulateBoot } from './sdboot-model.js';

let dev: FakeDevice | undefined;
afterEach(() => {
  dev?.cleanup();
  dev = undefined;
});
const quiet = () => undefined;
const OLD = SCHEMA_VERSION - 1;

function rows(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT v FROM test_marker ORDER BY rowid').all() as { v: string }[]).map((r) => r.v);
  } finally {
    db.close();
  }
}

async function upgradeToTrial(d: FakeDevice): Promise<void> {
  const b = makeBundle(d.root, '2.0.0');
  await d.backend.writeInactive(b.path, b.images);
  await d.backend.markTrial('b', b.header);
  expect(simulateBoot(d.esp)).toBe('b');
  d.running.slot = 'b';
}

describe('configuration database across upgrades', () => {
  it('the trial slot snapshots before migrating; after a rollback the old slot restores the snapshot', async () => {
    dev = makeFakeDevice();
    const dataDir = join(dev.root, 'data');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const dbPath = join(dataDir, 'pqgate.db');
    // The old firmware's database, one schema behind.
    const old = openDatabase(dbPath, { targetVersion: OLD });
    old.exec("CREATE TABLE test_marker(v TEXT); INSERT INTO test_marker VALUES ('configured on v1')");
    old.close();

    await upgradeToTrial(dev);
    const snap = prepareDatabase(dev.backend, dbPath, SCHEMA_VERSION, quiet);
    expect(snap).toMatchObject({ action: 'snapshot' });
    expect(statSync(join(dev.state, 'pre-upgrade.db')).mode & 0o777).toBe(0o600);
    // A second start of the daemon on the same trial boot does not overwrite the snapshot.
    expect(prepareDatabase(dev.backend, dbPath, SCHEMA_VERSION, quiet)).toEqual({ action: 'none' });
    const nu = openDatabase(dbPath); // the new slot's daemon migrates forward
    nu.exec("INSERT INTO test_marker VALUES ('changed on v2 during trial')");
    nu.close();
    expect(dbSchemaVersion(dbPath)).toBe(SCHEMA_VERSION);

    // The gate fails three times, systemd-boot falls back to A.
    for (let i = 0; i < 3; i++) {
      await bootCheck(dev.backend, async () => ({ ok: false, reason: 'web admin: ECONNREFUSED', elapsedMs: 1 }), quiet);
      dev.running.slot = simulateBoot(dev.esp);
    }
    expect(dev.running.slot).toBe('a');
    const r = prepareDatabase(dev.backend, dbPath, OLD, quiet);
    expect(r).toMatchObject({ action: 'restored' });
    expect(dbSchemaVersion(dbPath)).toBe(OLD);
    expect(rows(dbPath)).toEqual(['configured on v1']);
    // The old firmware opens it without SCHEMA_NEWER.
    openDatabase(dbPath, { targetVersion: OLD }).close();
    // The newer database is kept aside, not deleted.
    const aside = readdirSync(dataDir).filter((f) => f.startsWith(`pqgate.db.schema${SCHEMA_VERSION}-`) && !f.endsWith('-wal') && !f.endsWith('-shm'));
    expect(aside).toHaveLength(1);
    expect(rows(join(dataDir, aside[0]!))).toEqual(['configured on v1', 'changed on v2 during trial']);
    await bootCheck(dev.backend, async () => ({ ok: true, elapsedMs: 1 }), quiet);
    expect(await dev.backend.lastOutcome()).toMatchObject({ result: 'rolled-back' });
  });

  it('a committed upgrade keeps the migrated database; nothing restored later', async () => {
    dev = makeFakeDevice();
    const dbPath = join(dev.root, 'data', 'pqgate.db');
    const old = openDatabase(dbPath, { targetVersion: OLD });
    old.exec("CREATE TABLE test_marker(v TEXT); INSERT INTO test_marker VALUES ('v1')");
    old.close();
    await upgradeToTrial(dev);
    prepareDatabase(dev.backend, dbPath, SCHEMA_VERSION, quiet);
    openDatabase(dbPath).close();
    await bootCheck(dev.backend, async () => ({ ok: true, elapsedMs: 1 }), quiet);
    expect(prepareDatabase(dev.backend, dbPath, SCHEMA_VERSION, quiet)).toEqual({ action: 'none' });
    expect(dbSchemaVersion(dbPath)).toBe(SCHEMA_VERSION);
    expect(rows(dbPath)).toEqual(['v1']);
  });

  it('first boot of a trial slot without a database: nothing to snapshot', async () => {
    dev = makeFakeDevice();
    const dbPath = join(dev.root, 'data', 'pqgate.db');
    await upgradeToTrial(dev);
    expect(prepareDatabase(dev.backend, dbPath, SCHEMA_VERSION, quiet)).toEqual({ action: 'none' });
    expect(existsSync(join(dev.state, 'pre-upgrade.db'))).toBe(false);
  });
});
