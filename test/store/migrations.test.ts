/**
 * Schema and document migrations. Old databases are built with the frozen
 * migrations (openDatabase({ targetVersion })) and filled with SQL as the
 * firmware of that version wrote it; opening them with the current store
 * must migrate them with every row preserved.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { openDatabase, type Db } from '../../firmware/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion } from '../../firmware/store/schema.js';
import { DOCUMENT_MIGRATIONS } from '../../firmware/store/doc-migrations.js';
import { ConfigStore } from '../../firmware/store/store.js';
import { StoreErrorCode } from '../../firmware/store/errors.js';
import { hashPassword } from '../../firmware/store/users.js';
import { PSK_A, PSK_B, sampleDoc, tempStore, type TempStore } from './helpers/fixtures.js';

let dir: string | undefined;
let t: TempStore | undefined;
afterEach(() => {
  t?.cleanup();
  t = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function dbPath(): string {
  dir = mkdtempSync(join(tmpdir(), 'pqgate-mig-'));
  return join(dir, 'data', 'config.db');
}

const PASSWORD = 'old-firmware-password';
const T0 = Date.UTC(2026, 0, 1);

/** The configuration the old databases hold (what export must give back). */
function expectedDoc() {
  return {
    version: 1,
    listen: ['0.0.0.0', '::'],
    ike_port: 500,
    natt_port: 4500,
    log_level: 'debug',
    tunnels: [
      {
        name: 'cf1',
        local_addr: '192.0.2.1',
        remote_addr: '192.0.2.2',
        local_id: 'fqdn:branch.example',
        psk: PSK_A,
        proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024'],
        esp_proposals: ['aes256gcm16'],
        mode: 'route',
        inside_addr: '10.100.0.9/31',
        fragmentation: 'yes',
        encap: false,
        dpd_delay: 10,
        replay_window: 0,
        mss: 1360,
      },
      { name: 'site2', enabled: false, remote_addr: '%any', local_id: '@gw.branch.example', remote_id: '@site2.example', psk: PSK_B, local_ts: ['10.1.0.0/16'], remote_ts: ['10.2.0.0/16'], mode: 'policy' },
    ],
  };
}

const noPsk = (d: any) => ({ ...d, tunnels: d.tunnels.map(({ psk: _p, ...r }: any) => r) });

/** Rows common to v1-v3: secrets, tunnels (without v2's preset column), users, logs, revisions. */
function fillCommon(db: Db, schemaVersion: 1 | 2 | 3, presets?: Record<string, string>): void {
  db.prepare("INSERT INTO secrets (id, kind, value, created_at) VALUES (1, 'psk', ?, ?), (2, 'psk', ?, ?)").run(Buffer.from(PSK_A), T0, Buffer.from(PSK_B), T0);
  db.prepare(
    `INSERT INTO tunnels (name, position, enabled, local_addr, remote_addr, local_id, psk_secret_id, proposals, esp_proposals, mode, inside_addr, fragmentation, encap, dpd_delay, replay_window, mss)
     VALUES ('cf1', 0, NULL, '192.0.2.1', '192.0.2.2', 'fqdn:branch.example', 1, ?, '["aes256gcm16"]', 'route', '10.100.0.9/31', 'yes', 0, 10, 0, 1360)`,
  ).run(JSON.stringify(['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024']));
  db.prepare(
    `INSERT INTO tunnels (name, position, enabled, remote_addr, local_id, remote_id, psk_secret_id, local_ts, remote_ts, mode)
     VALUES ('site2', 1, 0, '%any', '@gw.branch.example', '@site2.example', 2, '["10.1.0.0/16"]', '["10.2.0.0/16"]', 'policy')`,
  ).run();
  db.prepare('INSERT INTO admin_users (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)').run('admin', hashPassword(PASSWORD), T0, T0);
  db.prepare("INSERT INTO audit_log (ts, actor, action, target, detail) VALUES (?, 'admin', 'apply', 'revision:2', '{\"changes\":2}')").run(T0 + 2);
  db.prepare("INSERT INTO event_log (ts, level, tunnel, message) VALUES (?, 'info', 'cf1', 'IKE SA established')").run(T0 + 3);
  const initial = { schema_version: schemaVersion, version: 1, listen: ['0.0.0.0'], log_level: 'info', tunnels: [], ...(schemaVersion >= 2 ? { tunnel_presets: {} } : {}) };
  const full = { schema_version: schemaVersion, ...noPsk(expectedDoc()), ...(schemaVersion >= 2 ? { tunnel_presets: presets ?? {} } : {}) };
  const ins = db.prepare('INSERT INTO revisions (id, created_at, author, comment, kind, snapshot, secret_refs, secrets_hash, diff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  ins.run(1, T0, 'system (initial)', 'initial configuration', 'initial', JSON.stringify(initial), '{}', 'h1', '[]');
  ins.run(2, T0 + 1, 'admin', 'tunnels', 'apply', JSON.stringify(full), JSON.stringify({ cf1: 1, site2: 2 }), 'h2', '[{"path":"tunnels[0]","op":"add"}]');
}

function buildV1(path: string): void {
  const db = openDatabase(path, { targetVersion: 1 });
  expect(schemaVersion(db)).toBe(1);
  db.prepare("UPDATE device_settings SET listen = ?, ike_port = 500, natt_port = 4500, log_level = 'debug' WHERE id = 1").run(JSON.stringify(['0.0.0.0', '::']));
  fillCommon(db, 1);
  db.close();
}

function buildV2(path: string): void {
  const db = openDatabase(path, { targetVersion: 2 });
  expect(schemaVersion(db)).toBe(2);
  db.prepare("UPDATE device_settings SET ike_port = 500, natt_port = 4500, log_level = 'debug' WHERE id = 1").run();
  db.prepare("INSERT INTO interfaces (address, position) VALUES ('0.0.0.0', 0), ('::', 1)").run();
  fillCommon(db, 2, { cf1: 'cloudflare' });
  db.prepare("UPDATE tunnels SET preset = 'cloudflare' WHERE name = 'cf1'").run();
  db.close();
}

function buildV3(path: string): void {
  const db = openDatabase(path, { targetVersion: 3 });
  expect(schemaVersion(db)).toBe(3);
  db.prepare("UPDATE device_settings SET ike_port = 500, natt_port = 4500, log_level = 'debug' WHERE id = 1").run();
  db.prepare("INSERT INTO interfaces (address, position) VALUES ('0.0.0.0', 0), ('::', 1)").run();
  fillCommon(db, 3, { cf1: 'cloudflare' });
  db.prepare("UPDATE tunnels SET preset = 'cloudflare' WHERE name = 'cf1'").run();
  // v3 revisions carry commit-confirmed columns; status 'committed' is the column default.
  db.prepare('UPDATE revisions SET confirmed_at = ?, confirmed_by = ? WHERE id = 2').run(T0 + 5, 'admin');
  db.close();
}

function checkMigrated(path: string, presets: Record<string, string>): void {
  const store = ConfigStore.open(path, { now: () => T0 + 10_000 });
  try {
    expect(store.exportDocument({ includeSecrets: true, actor: 'test' })).toEqual(expectedDoc());
    expect(store.getPresets()).toEqual(presets);
    // History kept, no revision added by the migration, status filled in by v3.
    expect(store.history().map((h) => [h.id, h.kind, h.status, h.author])).toEqual([
      [2, 'apply', 'committed', 'admin'],
      [1, 'initial', 'committed', 'system (initial)'],
    ]);
    // Old snapshots are readable in today's form (document migrations).
    const r2 = store.getRevision(2);
    expect(r2.document).toEqual({ schema_version: SCHEMA_VERSION, ...noPsk(expectedDoc()), tunnel_presets: presets });
    expect(store.getRevision(1).document.listen).toEqual(['0.0.0.0']);
    // Users, logs survive.
    expect(store.listUsers().map((u) => u.name)).toEqual(['admin']);
    expect(store.verifyUser('admin', PASSWORD)).toBe(true);
    expect(store.events().map((e) => e.message)).toEqual(['IKE SA established']);
    expect(store.auditLog().at(-1)).toMatchObject({ id: 1, actor: 'admin', action: 'apply', target: 'revision:2', detail: { changes: 2 } });
    // The migrated store works: roll back to the v1-era initial revision and forward again.
    store.rollback(1, { author: 'test' });
    expect(store.getDocument().tunnels).toEqual([]);
    store.rollback(2, { author: 'test' });
    expect(store.exportDocument({ includeSecrets: true, actor: 'test' })).toEqual(expectedDoc());
    expect(store.getPresets()).toEqual(presets);
    expect(store.diff(2, 4).entries).toEqual([]);
  } finally {
    store.close();
  }
  const db = openDatabase(path);
  try {
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    expect((db.prepare('PRAGMA table_info(device_settings)').all() as { name: string }[]).map((c) => c.name)).not.toContain('listen');
    expect(db.prepare('SELECT address, position FROM interfaces ORDER BY position').all()).toEqual([
      { address: '0.0.0.0', position: 0 },
      { address: '::', position: 1 },
    ]);
    // v4: tunnels rebuilt with the PSK reference optional and an options column; every row and reference kept.
    const cols = db.prepare('PRAGMA table_info(tunnels)').all() as { name: string; notnull: number }[];
    expect(cols.find((c) => c.name === 'psk_secret_id')).toMatchObject({ notnull: 0 });
    expect(cols.map((c) => c.name)).toEqual(expect.arrayContaining(['options', 'preset', 'mss']));
    expect((db.prepare('PRAGMA table_info(device_settings)').all() as { name: string }[]).map((c) => c.name)).toContain('data_plane');
    expect(db.prepare('SELECT name, psk_secret_id, options FROM tunnels ORDER BY position').all()).toEqual([
      { name: 'cf1', psk_secret_id: 1, options: null },
      { name: 'site2', psk_secret_id: 2, options: null },
    ]);
    expect(db.prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'tunnels%'").all()).toEqual([{ name: 'tunnels' }]);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
  } finally {
    db.close();
  }
}

describe('schema migrations', () => {
  it('has at least three versions, numbered 1..n without gaps', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(3);
  });

  it('released migrations are frozen (edit = new migration, never a change)', () => {
    const pinned: Record<number, string> = {
      1: '84682be6d63ca02433a4298372ff9f7c8ef17c3216b1291c1dc70bc3599151e4',
      2: 'cfdcbeb283ab5b18e069cb5d6f6c97d92b214dd88b92b4b16bef07e6cb076d3f',
      3: '9c822b56e5d98767285ab64bcae6d135aa448cdf807daaed78a858b0f1b4c2e1',
      4: '18abadb1f5cd4fbf9428a22f32c9656d2d01ff5b06a14dea6208e7bbf2cf70cf',
      5: 'a338e336a67fa95edd06775da888ab43adc5f5131ea370c214a0bbda4a77afce',
    };
    for (const m of MIGRATIONS) if (pinned[m.version]) expect(createHash('sha256').update(JSON.stringify(m.steps)).digest('hex'), `migration ${m.version}`).toBe(pinned[m.version]);
  });

  it('a new database is created at the newest version with one initial revision', () => {
    const path = dbPath();
    const store = ConfigStore.open(path);
    store.close();
    const db = openDatabase(path);
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT count(*) AS n FROM revisions').get()).toEqual({ n: 1 });
    db.close();
  });

  it('migrates a v1 database (listen as JSON, no presets, no confirm fields) with every row preserved', () => {
    const path = dbPath();
    buildV1(path);
    checkMigrated(path, {});
  });

  it('migrates a v2 database (interfaces, presets) with every row preserved', () => {
    const path = dbPath();
    buildV2(path);
    checkMigrated(path, { cf1: 'cloudflare' });
  });

  it('migrates a v3 database (commit-confirmed) to v4 with every row preserved', () => {
    const path = dbPath();
    buildV3(path);
    checkMigrated(path, { cf1: 'cloudflare' });
    const store = ConfigStore.open(path);
    try {
      expect(store.getRevision(2)).toMatchObject({ confirmedBy: 'admin' });
    } finally {
      store.close();
    }
  });

  it('a migrated v3 store takes the keys v3 refused (auth pubkey needs no PSK reference, mtu, data_plane)', () => {
    const path = dbPath();
    buildV3(path);
    const store = ConfigStore.open(path, { now: () => T0 + 10_000 });
    try {
      store.apply({ patch: { data_plane: 'recording', tunnels: { cf1: { mtu: 1380, retransmit_tries: 2 } } } }, { author: 'test' });
      const d = store.exportDocument({ includeSecrets: true, actor: 'test' });
      expect(d).toMatchObject({ data_plane: 'recording', tunnels: [{ name: 'cf1', psk: PSK_A, mtu: 1380, retransmit_tries: 2 }, { name: 'site2', psk: PSK_B }] });
      expect(store.daemonConfig()).toMatchObject({ dataPlane: 'recording' });
      expect(store.getPresets()).toEqual({ cf1: 'cloudflare' });
    } finally {
      store.close();
    }
  });

  it('migrates step by step: v1 → v2 keeps the listen addresses as interface rows', () => {
    const path = dbPath();
    buildV1(path);
    const db = openDatabase(path, { targetVersion: 2 });
    expect(db.prepare('SELECT address FROM interfaces ORDER BY position').all()).toEqual([{ address: '0.0.0.0' }, { address: '::' }]);
    expect(db.prepare("SELECT preset FROM tunnels WHERE name = 'cf1'").get()).toEqual({ preset: null });
    expect(migrate(db, 3)).toEqual([3]);
    expect(migrate(db)).toEqual([4, 5, 6]);
    expect(migrate(db)).toEqual([]);
    db.close();
  });

  it('a failing migration leaves the database at its previous version, untouched', () => {
    const path = dbPath();
    buildV1(path);
    const raw = openDatabase(path, { noMigrate: true });
    raw.exec('CREATE TABLE interfaces (x INTEGER)'); // makes migration 2's first step fail
    raw.close();
    expect(() => ConfigStore.open(path)).toThrow(/interfaces already exists/);
    const db = openDatabase(path, { noMigrate: true });
    expect(schemaVersion(db)).toBe(1);
    expect(db.prepare('SELECT listen FROM device_settings').get()).toEqual({ listen: '["0.0.0.0","::"]' });
    db.close();
  });

  it('refuses a database from a newer firmware', () => {
    const path = dbPath();
    ConfigStore.open(path).close();
    const db = openDatabase(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => ConfigStore.open(path)).toThrow(expect.objectContaining({ code: StoreErrorCode.SCHEMA_NEWER }));
  });
});

describe('document migrations (backups from older firmware)', () => {
  it('cover every schema version step', () => {
    expect(DOCUMENT_MIGRATIONS.map((m) => [m.from, m.to])).toEqual(Array.from({ length: SCHEMA_VERSION - 1 }, (_, i) => [i + 1, i + 2]));
  });

  it('restores a schema 1 backup', () => {
    t = tempStore();
    const backup = { schema_version: 1, ...sampleDoc() };
    const r = t.store.importDocument(backup, { author: 'restore' });
    expect(t.store.getRevision(r.revision.id).document).toMatchObject({ schema_version: SCHEMA_VERSION, tunnel_presets: {} });
    expect(t.store.exportDocument({ includeSecrets: true, actor: 'x' }).tunnels.map((x) => x.psk)).toEqual([PSK_A, PSK_B]);
  });

  it('restores a schema 3 backup into v4', () => {
    t = tempStore();
    const backup = { schema_version: 3, ...sampleDoc(), tunnel_presets: { cf1: 'cloudflare' } };
    const r = t.store.importDocument(JSON.stringify(backup), { author: 'restore' });
    expect(t.store.getRevision(r.revision.id).document).toEqual({ schema_version: SCHEMA_VERSION, ...noPsk(sampleDoc()), tunnel_presets: { cf1: 'cloudflare' } });
    expect(t.store.exportDocument({ includeSecrets: true, actor: 'x' })).toEqual(sampleDoc());
    expect(t.store.getPresets()).toEqual({ cf1: 'cloudflare' });
  });

  it('restores a schema 2 backup with its presets', () => {
    t = tempStore();
    const backup = { schema_version: 2, ...sampleDoc(), tunnel_presets: { cf1: 'cloudflare' } };
    t.store.importDocument(JSON.stringify(backup), { author: 'restore' });
    expect(t.store.getPresets()).toEqual({ cf1: 'cloudflare' });
    expect(t.store.exportDocument({ backup: true })).toMatchObject({ schema_version: SCHEMA_VERSION, tunnel_presets: { cf1: 'cloudflare' } });
  });
});
