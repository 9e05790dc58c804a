/**
 * Secrets never leave the store through a read path: every string the API
 * returns (history, revisions, diffs, exports without secrets, errors,
 * audit and event logs, users, change events) and every non-secret table in
 * the database file is searched for each PSK ever configured.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { tempStore, sampleDoc, PSK_A, PSK_B, PSK_C, type TempStore } from './helpers/fixtures.js';
import { ConfigStore } from '../../firmware/store/store.js';
import { StoreErrorCode } from '../../firmware/store/errors.js';

let t: TempStore;
afterEach(() => t?.cleanup());

const SECRETS = [PSK_A, PSK_B, PSK_C];
const PASSWORD = 'correct horse battery staple';

function leaks(label: string, value: unknown): string[] {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
  return [...SECRETS, PASSWORD].filter((s) => text.includes(s)).map((s) => `${label} contains ${s.slice(0, 12)}…`);
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { errors?: Error[] };
    return { message: err.message, stack: err.stack, errors: err.errors?.map((x) => x.message) };
  }
  throw new Error('expected an error');
}

describe('secrets', () => {
  it('appear in no read output, error, log or non-secret table', () => {
    t = tempStore();
    const events: unknown[] = [];
    t.store.onChange((e) => events.push(e));
    t.store.apply(sampleDoc(), { author: 'alice', comment: 'initial tunnels' });
    t.store.apply({ patch: { tunnels: { cf1: { psk: PSK_C } } } }, { author: 'bob' });
    t.store.apply({ patch: { tunnels: { site2: { mss: 1300 } } } }, { author: 'bob', confirmTimeoutSec: 30 });
    t.clock.advance(31);
    t.store.checkPending();
    t.store.rollback(2, { author: 'carol' });
    t.store.createUser('admin', PASSWORD, { actor: 'setup' });
    t.store.changePassword('admin', PASSWORD + '!', { actor: 'admin', currentPassword: PASSWORD });
    t.store.logEvent({ level: 'info', tunnel: 'cf1', message: 'IKE SA established' });

    // Errors: PSKs quoted by mistake in other fields, a stored key quoted in a patch, bad keys.
    const bad = sampleDoc();
    bad.tunnels[0].remote_addr = PSK_A;
    bad.tunnels[1].local_ts = [PSK_B];
    const errors = [
      caught(() => t.store.importDocument(bad, { author: 'x' })),
      caught(() => t.store.apply({ patch: { tunnels: { cf1: { remote_addr: PSK_C, inside_addr: PSK_A } } } }, { author: 'x' })),
      caught(() => t.store.apply({ patch: { tunnels: { cf1: { psk: PSK_A.slice(0, 8) } } } }, { author: 'x' })),
      caught(() => t.store.importDocument(`{"tunnels": [{"name": "x", "psk": "${PSK_A}"`, { author: 'x' })),
      caught(() => t.store.addTunnelFromPreset('cloudflare', { name: 'cf9', remote_addr: PSK_B, psk: PSK_B }, { author: 'x' })),
      caught(() => t.store.changePassword('admin', 'new-password-123', { actor: 'x', currentPassword: PASSWORD })),
    ];

    const outputs: Record<string, unknown> = {
      history: t.store.history(),
      revisions: t.store.history().map((h) => t.store.getRevision(h.id)),
      diffs: t.store.history().map((h) => (h.id > 1 ? t.store.diff(h.id - 1, h.id) : null)),
      diffAll: t.store.diff(1, t.store.current().id),
      current: t.store.current(),
      document: t.store.getDocument(),
      exportPlain: t.store.exportDocument(),
      exportBackup: t.store.exportDocument({ backup: true }),
      presets: t.store.getPresets(),
      audit: t.store.auditLog({ limit: 1000 }),
      events: t.store.events(),
      users: t.store.listUsers(),
      changeEvents: events,
      errors,
    };
    const found = Object.entries(outputs).flatMap(([k, v]) => leaks(k, v));
    expect(found).toEqual([]);
    // The errors still name the fields.
    expect(JSON.stringify(errors[0])).toContain('tunnels[0].remote_addr');
    expect(JSON.stringify(errors[1])).toContain('[psk]');

    // The database: only `secrets` (and admin_users' hashes, checked above via PASSWORD) may hold them.
    const db = new Database(t.path, { readonly: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'secrets'").all() as { name: string }[]).map((r) => r.name);
      expect(tables).toEqual(expect.arrayContaining(['revisions', 'tunnels', 'audit_log', 'admin_users']));
      for (const name of tables) expect(leaks(`table ${name}`, db.prepare(`SELECT * FROM "${name}"`).all())).toEqual([]);
      const hashes = db.prepare('SELECT password_hash FROM admin_users').all() as { password_hash: string }[];
      expect(hashes[0]!.password_hash).toMatch(/^scrypt\$15\$8\$1\$/);
    } finally {
      db.close();
    }

    // The search is not vacuous: the explicit backup path does include the keys.
    const withSecrets = JSON.stringify(t.store.exportDocument({ includeSecrets: true, actor: 'backup' }));
    expect(withSecrets).toContain(PSK_A);
    expect(withSecrets).toContain(PSK_B);
    expect(t.store.auditLog()[0]).toMatchObject({ action: 'export-secrets', actor: 'backup' });
  });

  it('the database file is 0600 (WAL and SHM too) in a 0700 directory', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' });
    expect(statSync(t.path).mode & 0o777).toBe(0o600);
    expect(statSync(t.path + '-wal').mode & 0o777).toBe(0o600);
    expect(statSync(t.path + '-shm').mode & 0o777).toBe(0o600);
    expect(statSync(join(t.dir, 'state')).mode & 0o777).toBe(0o700);
  });

  it('tightens its own loose directory and file, refuses a shared sticky directory', () => {
    t = tempStore();
    t.store.close();
    chmodSync(t.path, 0o644);
    chmodSync(join(t.dir, 'state'), 0o755);
    t.store = t.reopen();
    expect(statSync(t.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(t.dir, 'state')).mode & 0o777).toBe(0o700);
    // Search-only for others (0711, the appliance's /data: the web admin reaches its own directory below it)
    // is private enough: nothing can be listed, created or removed; the database files stay 0600.
    t.store.close();
    chmodSync(join(t.dir, 'state'), 0o711);
    t.store = t.reopen();
    expect(statSync(join(t.dir, 'state')).mode & 0o777).toBe(0o711);
    expect(statSync(t.path).mode & 0o777).toBe(0o600);
    t.store.close();
    chmodSync(join(t.dir, 'state'), 0o751);
    t.store = t.reopen();
    expect(statSync(join(t.dir, 'state')).mode & 0o777).toBe(0o700);
    const shared = join(t.dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    expect(() => ConfigStore.open(join(shared, 'c.db'))).toThrow(expect.objectContaining({ code: StoreErrorCode.PERMISSIONS }));
  });
});
