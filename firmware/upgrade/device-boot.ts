/**
 * What the device does at every boot about upgrades (docs/upgrade.md
 * "Boot flow"), on top of ImageSlotBackend:
 *
 * - clean up after interrupted writes (temp files, duplicate entries);
 * - on a **trial** boot (the running slot's entry still has a `+L-D`
 *   counter): run the health gate; pass → bless (rename to the plain entry
 *   name), raise the downgrade floor to the slot's security version, record
 *   'committed'; fail → leave a gate report on /data and ask the caller to
 *   reboot, so systemd-boot's counter keeps counting down to the fallback;
 * - on a **committed** boot with an upgrade pending for the *other* slot
 *   whose entry is exhausted (`+0-N`): this is the old slot after a
 *   rollback; record 'rolled-back' with the trial's own reason (its gate
 *   report) or "never came up" when it left none;
 * - before the daemon opens the configuration database (prepareDatabase):
 *   the trial slot snapshots it before its migrations run; a slot that finds
 *   a database newer than its schema restores that snapshot.
 */
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { otherSlot } from './device-bls.js';
import { fsyncDir } from './device-fs.js';
import type { ImageSlotBackend } from './device.js';
import type { GateResult } from './health-gate.js';

export type BootAction =
  | { action: 'none' }
  | { action: 'blessed'; version: string }
  | { action: 'reboot'; reason: string }
  | { action: 'rolled-back'; reason: string }
  | { action: 'interrupted'; reason: string };

export interface BootLog {
  (msg: string): void;
}

export async function bootCheck(backend: ImageSlotBackend, runGate: () => Promise<GateResult>, log: BootLog, now: () => Date = () => new Date()): Promise<BootAction> {
  const removed = await backend.recoverInterrupted();
  if (removed.length) log(`removed leftovers of an interrupted write: ${removed.join(', ')}`);
  const running = backend.platform.runningSlot();
  if (!running) return { action: 'none' };
  const entry = backend.entryOf(running);
  const pending = backend.pending();
  const at = () => now().toISOString();

  if (entry && entry.name.triesLeft !== undefined) {
    const meta = backend.slotMeta(running);
    const version = meta?.version ?? (await backend.runningVersion());
    log(`slot ${running.toUpperCase()} (${version}) is on trial (${entry.name.triesLeft} tries left after this boot): running the health gate`);
    const r = await runGate();
    if (!r.ok) {
      backend.writeGateReport({ slot: running, version, ok: false, reason: r.reason, at: at() });
      log(`health gate failed: ${r.reason}`);
      return { action: 'reboot', reason: r.reason };
    }
    await backend.bless();
    if (meta) await backend.raiseFloor(meta.securityVersion);
    backend.writeGateReport({ slot: running, version, ok: true, at: at() });
    await backend.recordOutcome({ at: at(), fromVersion: pending?.slot === running ? pending.fromVersion : 'unknown', toVersion: version, slot: running, result: 'committed' });
    backend.setPending(undefined);
    log(`health gate passed in ${Math.round(r.elapsedMs / 1000)} s: slot ${running.toUpperCase()} (${version}) committed`);
    return { action: 'blessed', version };
  }

  if (!pending) return { action: 'none' };

  if (pending.slot === running) {
    // Blessed, then the power went before the outcome was written: finish the commit.
    const meta = backend.slotMeta(running);
    if (meta) await backend.raiseFloor(meta.securityVersion);
    await backend.recordOutcome({ at: at(), fromVersion: pending.fromVersion, toVersion: pending.toVersion, slot: running, result: 'committed' });
    backend.setPending(undefined);
    return { action: 'blessed', version: pending.toVersion };
  }

  const other = otherSlot(running);
  const oe = backend.entryOf(other);
  if (!oe) {
    // markTrial writes the pending record before the entry: the switch never happened.
    const reason = `the upgrade to ${pending.toVersion} was interrupted before slot ${other.toUpperCase()} was made bootable`;
    await backend.recordOutcome({ at: at(), fromVersion: pending.fromVersion, toVersion: pending.toVersion, slot: other, result: 'failed', reason });
    backend.setPending(undefined);
    log(reason);
    return { action: 'interrupted', reason };
  }
  if (oe.name.triesLeft === 0) {
    const g = backend.gateReport();
    const tries = oe.name.triesDone ?? 0;
    const reason =
      g && g.slot === other && !g.ok && g.version === pending.toVersion
        ? `${pending.toVersion} failed its health gate (${g.reason ?? 'no reason given'}); back on ${pending.fromVersion} after ${tries} unblessed boot${tries === 1 ? '' : 's'}`
        : `${pending.toVersion} did not come up (no health report) in ${tries} boot${tries === 1 ? '' : 's'}; back on ${pending.fromVersion}`;
    await backend.recordOutcome({ at: at(), fromVersion: pending.fromVersion, toVersion: pending.toVersion, slot: other, result: 'rolled-back', reason });
    backend.setPending(undefined);
    log(`rolled back: ${reason}`);
    return { action: 'rolled-back', reason };
  }
  // The other slot still has tries left but this one was booted (chosen by hand in the boot menu): leave it be.
  return { action: 'none' };
}

/** Schema version of a database file (PRAGMA user_version), undefined if it cannot be read. */
export function dbSchemaVersion(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    return db.pragma('user_version', { simple: true }) as number;
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export type PrepareResult = { action: 'none' } | { action: 'snapshot'; path: string } | { action: 'restored'; from: string; movedAside: string };

/**
 * Run before the daemon opens (and migrates) the configuration database.
 * `schemaVersion` is this firmware's newest schema (firmware/store/schema.ts SCHEMA_VERSION).
 */
export function prepareDatabase(backend: ImageSlotBackend, dbPath: string, schemaVersion: number, log: BootLog, now: () => Date = () => new Date()): PrepareResult {
  const running = backend.platform.runningSlot();
  if (!running) return { action: 'none' };
  const snapshot = join(backend.platform.stateDir, 'pre-upgrade.db');
  const entry = backend.entryOf(running);
  const pending = backend.pending();
  const trial = entry !== undefined && entry.name.triesLeft !== undefined;

  if (trial && pending?.slot === running && pending.snapshot === undefined) {
    if (existsSync(dbPath)) {
      // VACUUM INTO writes a consistent copy (WAL included) to a new file; then rename it into place.
      const tmp = snapshot + '.pqgate-tmp';
      if (existsSync(tmp)) renameSync(tmp, tmp + '.old');
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        db.prepare('VACUUM INTO ?').run(tmp);
      } finally {
        db.close();
      }
      chmodSync(tmp, 0o600); // holds PSKs and keys, like the database itself
      fsyncFile(tmp);
      renameSync(tmp, snapshot);
      fsyncDir(dirname(snapshot));
      log(`configuration database snapshotted to ${snapshot} before the new slot migrates it`);
    }
    backend.setPending({ ...pending, snapshot: existsSync(dbPath) ? snapshot : '' });
    return existsSync(snapshot) ? { action: 'snapshot', path: snapshot } : { action: 'none' };
  }

  const cur = dbSchemaVersion(dbPath);
  if (cur === undefined || cur <= schemaVersion) return { action: 'none' };
  // The database was migrated by a newer slot that is not running any more (rolled back).
  const snapVersion = dbSchemaVersion(snapshot);
  if (snapVersion === undefined || snapVersion > schemaVersion) {
    log(`configuration database schema ${cur} is newer than this firmware's ${schemaVersion} and no usable pre-upgrade snapshot exists`);
    return { action: 'none' };
  }
  const aside = join(dirname(dbPath), `${basename(dbPath)}.schema${cur}-${now().toISOString().replace(/[:.]/g, '')}`);
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(dbPath + suffix)) renameSync(dbPath + suffix, aside + suffix);
  }
  const tmp = dbPath + '.pqgate-tmp';
  copyFileSync(snapshot, tmp);
  fsyncFile(tmp);
  renameSync(tmp, dbPath);
  fsyncDir(dirname(dbPath));
  log(`configuration database schema ${cur} is newer than this firmware's ${schemaVersion}: restored the pre-upgrade snapshot (schema ${snapVersion}); the newer one is kept as ${aside}`);
  return { action: 'restored', from: snapshot, movedAside: aside };
}
