import { SCHEMA_VERSION } from '../../firmware/store/schema.js';
import { describe, it, expect, afterEach } from 'vitest';
import { tempStore, sampleDoc, PSK_A, PSK_B, PSK_C, type TempStore } from './helpers/fixtures.js';
import { CONFIRM_TIMEOUT_AUTHOR, type StoreChangeEvent } from '../../firmware/store/store.js';
import { StoreErrorCode } from '../../firmware/store/errors.js';
import { diffDocuments, formatDiff } from '../../firmware/store/diff.js';
import type { ConfigDoc } from '../../firmware/store/document.js';
import { ConfigStore } from '../../firmware/store/store.js';
import { openDatabase } from '../../firmware/store/db.js';
import { commitRevision } from '../../firmware/store/persist.js';

let t: TempStore;
afterEach(() => t?.cleanup());

const pskOf = (name: string) => t.store.exportDocument({ includeSecrets: true, actor: 'test' }).tunnels.find((x) => x.name === name)!.psk;

describe('revisions', () => {
  it('starts with one initial revision holding the embedded default configuration', () => {
    t = tempStore();
    const h = t.store.history();
    expect(h).toHaveLength(1);
    expect(h[0]).toMatchObject({ id: 1, kind: 'initial', status: 'committed', author: 'system (initial)' });
    expect(t.store.getDocument()).toEqual({ version: 1, listen: ['0.0.0.0'], ike_port: 500, natt_port: 4500, log_level: 'info', tunnels: [] });
  });

  it('records every change with author, timestamp, comment, snapshot and diff', () => {
    t = tempStore();
    t.clock.advance(60);
    const r = t.store.apply(sampleDoc(), { author: 'alice', comment: 'first tunnels' });
    expect(r.changed).toBe(true);
    expect(r.revision).toMatchObject({ id: 2, author: 'alice', comment: 'first tunnels', kind: 'apply', createdAt: t.clock.t });
    expect(r.diff.map((d) => `${d.op} ${d.path}`)).toEqual(['add tunnels[0]', 'add tunnels[1]']);
    const detail = t.store.getRevision(2);
    expect(detail.document.schema_version).toBe(SCHEMA_VERSION);
    expect(detail.document.tunnels.map((x) => x.name)).toEqual(['cf1', 'site2']);
    expect(detail.document.tunnels.every((x) => x.psk === undefined)).toBe(true);
    expect(t.store.history().map((h) => h.id)).toEqual([2, 1]);
    expect(t.store.auditLog()[0]).toMatchObject({ actor: 'alice', action: 'apply', target: 'revision:2' });
  });

  it('keeps documents as written: omitted fields stay omitted, single strings become lists', () => {
    t = tempStore();
    const d = sampleDoc();
    d.tunnels[1].local_ts = ' 10.1.0.0/16 ';
    d.tunnels[1].fragmentation = false;
    t.store.apply(d, { author: 'a' });
    const out = t.store.getDocument();
    expect(out.tunnels[1]!.local_ts).toEqual(['10.1.0.0/16']);
    expect(out.tunnels[1]!.fragmentation).toBe('no');
    expect(out.tunnels[1]).not.toHaveProperty('dpd_delay');
    expect(out).not.toHaveProperty('control_socket');
    const cfg = t.store.daemonConfig();
    expect(cfg.tunnels[1]!.dpdDelay).toBe(30); // the daemon default applies
  });

  it('writes no revision when nothing changed', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' });
    const again = t.store.apply(sampleDoc(), { author: 'a' });
    expect(again.changed).toBe(false);
    expect(again.revision.id).toBe(2);
    expect(t.store.history()).toHaveLength(2);
  });

  it('applies patches: merge fields, null restores a default, add and remove tunnels', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' });
    const r = t.store.apply(
      { patch: { log_level: 'debug', tunnels: { cf1: { mss: 1400, dpd_delay: null }, site2: null, new3: { remote_addr: '198.51.100.7', local_id: 'fqdn:branch.example', psk: PSK_C } } } },
      { author: 'bob', comment: 'tweak' },
    );
    const doc = t.store.getDocument();
    expect(doc.log_level).toBe('debug');
    expect(doc.tunnels.map((x) => x.name)).toEqual(['cf1', 'new3']);
    expect(doc.tunnels[0]!.mss).toBe(1400);
    expect(doc.tunnels[0]).not.toHaveProperty('dpd_delay');
    expect(pskOf('cf1')).toBe(PSK_A); // untouched key kept
    expect(pskOf('new3')).toBe(PSK_C);
    const paths = r.diff.map((d) => `${d.op} ${d.path}`);
    expect(paths).toEqual(expect.arrayContaining(['change log_level', 'remove tunnels[1]', 'change tunnels[0].mss', 'remove tunnels[0].dpd_delay', 'add tunnels[1]']));
  });

  it('a full document without psk keeps the stored keys of same-named tunnels', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' });
    const edited = t.store.getDocument() as any; // secret-free export, edited and applied back
    edited.tunnels[0].mss = 1300;
    t.store.apply(edited, { author: 'a' });
    expect(pskOf('cf1')).toBe(PSK_A);
    expect(pskOf('site2')).toBe(PSK_B);
    // ... but a new tunnel without a key is an error with its path.
    edited.tunnels.push({ name: 'nokey', remote_addr: '198.51.100.9' });
    expect(() => t.store.apply(edited, { author: 'a' })).toThrow(/tunnels\[2\]\.psk: is required/);
  });

  it('diff(a, b) is structural, path-based and matches tunnels by name', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' });
    const d = sampleDoc();
    d.tunnels.reverse(); // order change
    d.tunnels[1].mss = 1350; // cf1, now at index 1
    d.tunnels[0].psk = PSK_C; // site2's key changes
    d.listen = ['0.0.0.0', '::'];
    t.store.apply(d, { author: 'a' });
    const diff = t.store.diff(2, 3);
    expect(diff.entries).toEqual(
      expect.arrayContaining([
        { path: 'listen', op: 'change', before: ['0.0.0.0'], after: ['0.0.0.0', '::'] },
        { path: 'tunnels', op: 'move', before: ['cf1', 'site2'], after: ['site2', 'cf1'] },
        { path: 'tunnels[1].mss', op: 'change', tunnel: 'cf1', before: 1360, after: 1350 },
        { path: 'tunnels[0].psk', op: 'change', tunnel: 'site2', secret: true },
      ]),
    );
    expect(diff.entries).toHaveLength(4);
    expect(diff.text).toContain('~ tunnels[1].mss: 1360 → 1350');
    expect(diff.text).toContain('~ tunnels[0].psk: (secret changed)');
    // Reverse direction mirrors it.
    const back = t.store.diff(3, 2);
    expect(back.entries.find((e) => e.path === 'tunnels[0].mss')).toMatchObject({ before: 1350, after: 1360 });
    expect(() => t.store.diff(2, 99)).toThrow(expect.objectContaining({ code: StoreErrorCode.NOT_FOUND }));
  });

  it('diffDocuments reports added and removed tunnels and keys', () => {
    const a: ConfigDoc = { version: 1, keylog: '/tmp/k', tunnels: [{ name: 'x', mss: 1 }, { name: 'y' }] };
    const b: ConfigDoc = { version: 1, log_level: 'debug', tunnels: [{ name: 'y', mss: 2 }, { name: 'z' }] };
    const e = diffDocuments({ doc: a }, { doc: b });
    expect(formatDiff(e).split('\n')).toEqual([
      '+ log_level: "debug"',
      '- keylog: "/tmp/k"',
      '- tunnels[0] (x): {"name":"x","mss":1}',
      '+ tunnels[0].mss: 2',
      '+ tunnels[1] (z): {"name":"z"}',
    ]);
  });

  it('rollback creates a new revision equal to the old one, secrets included', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' }); // rev 2
    const before = t.store.getRevision(2);
    t.store.apply({ patch: { tunnels: { cf1: { psk: PSK_C, mss: 1400 }, site2: null } } }, { author: 'b' }); // rev 3
    expect(pskOf('cf1')).toBe(PSK_C);
    const r = t.store.rollback(2, { author: 'carol', comment: 'undo' });
    expect(r.revision).toMatchObject({ id: 4, kind: 'rollback', restores: 2, author: 'carol', comment: 'undo' });
    expect(t.store.getRevision(4).document).toEqual(before.document);
    expect(r.revision.secretsHash).toBe(before.secretsHash);
    expect(pskOf('cf1')).toBe(PSK_A);
    expect(pskOf('site2')).toBe(PSK_B);
    expect(t.store.history().map((h) => h.id)).toEqual([4, 3, 2, 1]);
    expect(() => t.store.rollback(42, { author: 'carol' })).toThrow(expect.objectContaining({ code: StoreErrorCode.NOT_FOUND }));
  });

  it('secrets hash: equal for equal keys, different when a key changes', () => {
    t = tempStore();
    const h1 = t.store.apply(sampleDoc(), { author: 'a' }).revision.secretsHash;
    const h2 = t.store.apply({ patch: { log_level: 'warn' } }, { author: 'a' }).revision.secretsHash;
    const h3 = t.store.apply({ patch: { tunnels: { cf1: { psk: PSK_C } } } }, { author: 'a' }).revision.secretsHash;
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    expect(h2).toBe(h1);
    expect(h3).not.toBe(h1);
  });

  it('two handles on one database (daemon and web UI) see each other; a stale writer gets a conflict', () => {
    t = tempStore();
    const ui = ConfigStore.open(t.path, { now: t.clock.now });
    try {
      ui.apply(sampleDoc(), { author: 'ui' });
      expect(t.store.current().id).toBe(2);
      t.store.apply({ patch: { log_level: 'warn' } }, { author: 'daemon' });
      expect(ui.getDocument().log_level).toBe('warn');
      const db = openDatabase(t.path);
      try {
        // A writer that validated against revision 2 must not overwrite revision 3.
        expect(() => commitRevision(db, { doc: ui.getDocument(), presets: {}, author: 'stale', comment: '', kind: 'apply', now: 0, expectPrevious: 2 })).toThrow(
          expect.objectContaining({ code: StoreErrorCode.CONFLICT }),
        );
      } finally {
        db.close();
      }
      expect(ui.history()).toHaveLength(3);
    } finally {
      ui.close();
    }
  });

  it('validates author, comment and timeout arguments', () => {
    t = tempStore();
    expect(() => t.store.apply(sampleDoc(), { author: '' })).toThrow(expect.objectContaining({ code: StoreErrorCode.ARGUMENT }));
    expect(() => t.store.apply(sampleDoc(), { author: 'a\nb' })).toThrow(expect.objectContaining({ code: StoreErrorCode.ARGUMENT }));
    expect(() => t.store.apply(sampleDoc(), { author: 'a', confirmTimeoutSec: 0 })).toThrow(expect.objectContaining({ code: StoreErrorCode.ARGUMENT }));
    expect(() => t.store.apply(sampleDoc(), { author: 'a', comment: 'x'.repeat(3000) })).toThrow(expect.objectContaining({ code: StoreErrorCode.ARGUMENT }));
    expect(t.store.history()).toHaveLength(1);
  });
});

describe('commit confirmed', () => {
  function withEvents(): StoreChangeEvent[] {
    const ev: StoreChangeEvent[] = [];
    t.store.onChange((e) => ev.push(e));
    return ev;
  }

  it('rolls back automatically when not confirmed in time', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' }); // rev 2
    const events = withEvents();
    const p = t.store.apply({ patch: { tunnels: { cf1: { remote_addr: '192.0.2.99', psk: PSK_C } } } }, { author: 'ops', confirmTimeoutSec: 300 });
    expect(p.revision).toMatchObject({ id: 3, status: 'pending', rollbackTo: 2, confirmDeadline: t.clock.t + 300_000 });
    expect(t.store.pending()?.id).toBe(3);
    expect(t.store.pendingDeadline()).toBe(t.clock.t + 300_000);
    expect(t.store.getDocument().tunnels[0]!.remote_addr).toBe('192.0.2.99'); // it is live while pending

    t.clock.advance(299);
    expect(t.store.checkPending()).toBeUndefined();
    expect(() => t.store.apply({ patch: { log_level: 'debug' } }, { author: 'x' })).toThrow(expect.objectContaining({ code: StoreErrorCode.PENDING }));
    expect(() => t.store.rollback(1, { author: 'x' })).toThrow(expect.objectContaining({ code: StoreErrorCode.PENDING }));

    t.clock.advance(1);
    const rb = t.store.checkPending()!;
    expect(rb.revision).toMatchObject({ id: 4, kind: 'rollback', restores: 2, author: CONFIRM_TIMEOUT_AUTHOR, status: 'committed' });
    expect(t.store.getRevision(3).status).toBe('reverted');
    expect(t.store.getRevision(4).document).toEqual(t.store.getRevision(2).document);
    expect(t.store.getDocument().tunnels[0]!.remote_addr).toBe('192.0.2.2');
    expect(pskOf('cf1')).toBe(PSK_A);
    expect(t.store.pending()).toBeUndefined();
    expect(events.map((e) => [e.kind, e.revision, e.pending, e.configChanged])).toEqual([
      ['apply', 3, true, true],
      ['confirm-timeout', 4, false, true],
    ]);
    expect(t.store.auditLog().find((a) => a.action === 'confirm-timeout')).toMatchObject({ action: 'confirm-timeout', actor: CONFIRM_TIMEOUT_AUTHOR, detail: expect.objectContaining({ reverted: 3 }) });
    // Changes are possible again.
    expect(t.store.apply({ patch: { log_level: 'debug' } }, { author: 'x' }).revision.id).toBe(5);
  });

  it('keeps the revision when confirmed in time', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' });
    const events = withEvents();
    t.store.apply({ patch: { log_level: 'debug' } }, { author: 'ops', confirmTimeoutSec: 60 });
    t.clock.advance(59);
    const c = t.store.confirm({ author: 'ops2' });
    expect(c).toMatchObject({ id: 3, status: 'committed', confirmedBy: 'ops2', confirmedAt: t.clock.t });
    t.clock.advance(3600);
    expect(t.store.checkPending()).toBeUndefined();
    expect(t.store.getDocument().log_level).toBe('debug');
    expect(t.store.history()).toHaveLength(3);
    expect(events.map((e) => [e.kind, e.configChanged])).toEqual([
      ['apply', true],
      ['confirm', false],
    ]);
    expect(() => t.store.confirm({ author: 'ops' })).toThrow(expect.objectContaining({ code: StoreErrorCode.NOT_PENDING }));
  });

  it('a confirmation after the deadline is too late even before the timer ran', () => {
    t = tempStore();
    t.store.apply({ patch: { log_level: 'debug' } }, { author: 'ops', confirmTimeoutSec: 10 });
    t.clock.advance(11);
    expect(() => t.store.confirm({ author: 'ops' })).toThrow(/deadline passed: rolled back as revision 3/);
    expect(t.store.getDocument().log_level).toBe('info');
  });

  it('a pending revision past its deadline at start-up is rolled back; one within it stays pending', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' });
    t.store.apply({ patch: { tunnels: { site2: null } } }, { author: 'ops', confirmTimeoutSec: 120 });
    t.clock.advance(60);
    t.reopen(); // daemon restart within the window
    expect(t.store.pending()?.id).toBe(3);
    expect(t.store.getDocument().tunnels).toHaveLength(1);
    t.store.close();
    t.clock.advance(61); // daemon down across the deadline
    t.reopen();
    expect(t.store.pending()).toBeUndefined();
    expect(t.store.current()).toMatchObject({ id: 4, kind: 'rollback', restores: 2, author: CONFIRM_TIMEOUT_AUTHOR });
    expect(t.store.getDocument().tunnels.map((x) => x.name)).toEqual(['cf1', 'site2']);
    expect(pskOf('site2')).toBe(PSK_B);
  });

  it('rollback and import can be confirmed too', () => {
    t = tempStore();
    t.store.apply(sampleDoc(), { author: 'a' }); // 2
    const r = t.store.rollback(1, { author: 'ops', confirmTimeoutSec: 60 }); // 3, pending
    expect(r.revision).toMatchObject({ kind: 'rollback', status: 'pending', restores: 1, rollbackTo: 2 });
    t.clock.advance(61);
    expect(t.store.checkPending()!.revision).toMatchObject({ id: 4, restores: 2 });
    expect(t.store.getDocument().tunnels).toHaveLength(2);
    const i = t.store.importDocument({ version: 1, tunnels: [] }, { author: 'ops', confirmTimeoutSec: 60 });
    expect(i.revision).toMatchObject({ kind: 'import', status: 'pending', rollbackTo: 4 });
    expect(t.store.confirm().confirmedBy).toBe('ops'); // defaults to the pending revision's author
    expect(t.store.getDocument().tunnels).toEqual([]);
  });

  it('cancelPending rolls back at once', () => {
    t = tempStore();
    t.store.apply({ patch: { log_level: 'debug' } }, { author: 'ops', confirmTimeoutSec: 600 });
    const r = t.store.cancelPending({ author: 'ops' });
    expect(r.revision).toMatchObject({ kind: 'rollback', author: 'ops', restores: 1 });
    expect(t.store.getRevision(2).status).toBe('reverted');
    expect(() => t.store.cancelPending({ author: 'ops' })).toThrow(expect.objectContaining({ code: StoreErrorCode.NOT_PENDING }));
  });

  it('a throwing listener does not break the store and is recorded in the event log', () => {
    t = tempStore();
    const seen: number[] = [];
    t.store.onChange(() => {
      throw new Error('reconcile failed');
    });
    const off = t.store.onChange((e) => seen.push(e.revision));
    t.store.apply(sampleDoc(), { author: 'a' });
    off();
    t.store.apply({ patch: { log_level: 'warn' } }, { author: 'a' });
    expect(seen).toEqual([2]);
    expect(t.store.events({ limit: 5 }).map((e) => e.message)).toContain('store change listener failed: reconcile failed');
  });
});
