/**
 * Schema v4: every key of the configuration document (config/schema.ts
 * TOP_KEYS / TUNNEL_KEYS, docs/config.md) round-trips through the store:
 * apply → live tables → getDocument / exportDocument / daemonConfig(), equal
 * to what parseDaemonConfig makes of the same document. Includes an
 * `auth: "pubkey"` tunnel (no PSK; real certificate and key files, which
 * parseDaemonConfig reads) next to a PSK tunnel.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { main as pki, type PkiIo } from '../../firmware/pki/cli.js';
import { parseDaemonConfig, ConfigValidationError, ADMISSION_KEYS } from '../../firmware/config/schema.js';
import { TOP_FIELDS, TUNNEL_FIELDS } from '../../firmware/store/document.js';
import { openDatabase } from '../../firmware/store/db.js';
import { SCHEMA_VERSION } from '../../firmware/store/schema.js';
import { PSK_A, PSK_B, tempStore, type TempStore } from './helpers/fixtures.js';

let pkiDir: string;
const f = (n: string) => join(pkiDir, n);

beforeAll(() => {
  pkiDir = mkdtempSync(join(tmpdir(), 'pqgate-allkeys-pki-'));
  const io: PkiIo = { out: () => {}, err: (s) => process.stderr.write(s), now: () => new Date() };
  const run = (...argv: string[]) => expect(pki(argv, io), argv.join(' ')).toBe(0);
  run('gen', '--type', 'ecdsa-p256', '--out', f('ca.key'));
  run('self', '--key', f('ca.key'), '--dn', 'CN=allkeys CA', '--ca', '--out', f('ca.crt'));
  run('gen', '--type', 'ecdsa-p256', '--out', f('int.key'));
  run('issue', '--cacert', f('ca.crt'), '--cakey', f('ca.key'), '--key', f('int.key'), '--dn', 'CN=allkeys intermediate', '--ca', '--out', f('int.crt'));
  run('gen', '--type', 'ecdsa-p256', '--out', f('gw.key'));
  run('issue', '--cacert', f('int.crt'), '--cakey', f('int.key'), '--key', f('gw.key'), '--dn', 'CN=gw.example', '--san', 'gw.example', '--out', f('gw.crt'));
});
afterAll(() => rmSync(pkiDir, { recursive: true, force: true }));

let t: TempStore | undefined;
afterEach(() => {
  t?.cleanup();
  t = undefined;
});

/** The key lists of the daemon's parser, read from its source so that a key added there without a store migration fails here. */
function parserKeys(name: 'TOP_KEYS' | 'TUNNEL_KEYS'): string[] {
  const src = readFileSync(new URL('../../firmware/config/schema.ts', import.meta.url), 'utf8');
  const m = new RegExp(`const ${name} = \\[([^\\]]*)\\] as const`).exec(src);
  expect(m, name).not.toBeNull();
  const keys = [...m![1]!.matchAll(/'([a-z_]+)'/g)].map((x) => x[1]!);
  // `...ADMISSION_KEYS` spreads the global DoS-protection keys into TOP_KEYS.
  if (/\.\.\.ADMISSION_KEYS/.test(m![1]!)) keys.push(...ADMISSION_KEYS);
  return keys;
}

/** A document that sets every top-level and every tunnel key (string-or-list fields partly as single strings). */
function everyKeyDoc(): any {
  return {
    version: 1,
    listen: ['192.0.2.1', '::'],
    ike_port: 1500,
    natt_port: 14500,
    control_socket: join(pkiDir, 'control.sock'),
    log_level: 'debug',
    keylog: join(pkiDir, 'keys.log'),
    data_plane: 'recording',
    cookie_threshold: 40,
    cookie_threshold_ip: 4,
    block_threshold: 8,
    init_limit_half_open: 2000,
    half_open_timeout: 25,
    tunnels: [
      {
        name: 'pk1',
        enabled: true,
        local_addr: '192.0.2.1',
        remote_addr: '192.0.2.2',
        remote_port: 4501,
        local_id: 'fqdn:gw.example',
        remote_id: 'fqdn:peer.example',
        auth: 'pubkey',
        proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768'],
        esp_proposals: 'aes256gcm16',
        local_ts: '10.1.0.0/16',
        remote_ts: ['10.2.0.0/16', '10.3.0.0/16'],
        mode: 'route',
        inside_addr: '10.100.0.9/31',
        start_action: 'trap',
        fragmentation: true,
        fragment_size: 1200,
        encap: true,
        rekey_time: 7200,
        child_rekey_time: 1800,
        dpd_delay: 15,
        replay_window: 64,
        mss: 1300,
        mtu: 1380,
        cert: f('gw.crt'),
        key: f('gw.key'),
        cert_chain: f('int.crt'),
        ca_certs: f('ca.crt'),
        allowed_schemes: ['ecdsa-p256-sha256', 'ml-dsa-65'],
        full_transcript_auth: 'required',
        retransmit_timeout: 2,
        retransmit_tries: 7,
        child_rekey_bytes: 5_000_000_000,
        child_rekey_packets: 1_000_000,
        dpd_action: 'clear',
        dpd_mode: 'periodic',
        health_check: { target: '10.3.0.1', source: '10.1.0.1', interval: 5, timeout: 1, failures: 2 },
      },
      {
        name: 'psk1',
        remote_addr: '%any',
        local_id: '@gw.example',
        auth: 'psk',
        psk: PSK_A,
        mode: 'policy',
        local_ts: ['10.1.0.0/16'],
        remote_ts: ['10.9.0.0/16'],
        mtu: 1400,
        full_transcript_auth: 'off',
        retransmit_timeout: 10,
        retransmit_tries: 0,
        child_rekey_packets: 0,
      },
    ],
  };
}

/** everyKeyDoc as the store canonicalises it: lists as arrays, fragmentation as yes/no. */
function canonical(): any {
  const d = everyKeyDoc();
  Object.assign(d.tunnels[0], { esp_proposals: ['aes256gcm16'], local_ts: ['10.1.0.0/16'], fragmentation: 'yes', ca_certs: [f('ca.crt')] });
  return d;
}
const noPsk = (d: any) => ({ ...d, tunnels: d.tunnels.map(({ psk: _p, ...r }: any) => r) });

describe('schema v4: every document key round-trips', () => {
  it('the store knows every key of the daemon parser', () => {
    expect([...TOP_FIELDS].sort()).toEqual(parserKeys('TOP_KEYS').filter((k) => k !== 'version' && k !== 'tunnels').sort());
    expect([...TUNNEL_FIELDS]).toEqual(parserKeys('TUNNEL_KEYS'));
    const doc = everyKeyDoc();
    expect(Object.keys(doc).sort()).toEqual(parserKeys('TOP_KEYS').sort());
    expect(Object.keys(doc.tunnels[0]).sort()).toEqual(parserKeys('TUNNEL_KEYS').filter((k) => k !== 'psk').sort());
  });

  it('apply → daemonConfig() equals parseDaemonConfig of the same document; export gives it back', () => {
    t = tempStore();
    const expected = parseDaemonConfig(everyKeyDoc());
    expect(expected.tunnels[0]!.localCreds).toBeDefined();
    expect(expected.tunnels[0]!.caCerts).toHaveLength(1);
    expect(expected.dataPlane).toBe('recording');
    t.store.apply(everyKeyDoc(), { author: 'alice' });
    expect(t.store.daemonConfig()).toEqual(expected);
    expect(t.store.exportDocument({ includeSecrets: true, actor: 'test' })).toEqual(canonical());
    expect(t.store.getDocument()).toEqual(noPsk(canonical()));
    expect(t.store.getRevision(2).document).toEqual({ schema_version: SCHEMA_VERSION, ...noPsk(canonical()), tunnel_presets: {} });
    // From the database file, not a cache.
    t.reopen();
    expect(t.store.daemonConfig()).toEqual(expected);
    expect(t.store.exportDocument({ includeSecrets: true, actor: 'test' })).toEqual(canonical());
    // Applying the same document again is no change.
    expect(t.store.apply(everyKeyDoc(), { author: 'alice' }).changed).toBe(false);
  });

  it('stores the pubkey tunnel without a PSK reference and its typed options as JSON (paths only, no PSK)', () => {
    t = tempStore();
    t.store.apply(everyKeyDoc(), { author: 'alice' });
    t.store.close();
    const db = openDatabase(t.path);
    try {
      const rows = db.prepare('SELECT name, auth, psk_secret_id, options FROM tunnels ORDER BY position').all() as any[];
      expect(rows[0]).toMatchObject({ name: 'pk1', auth: 'pubkey', psk_secret_id: null });
      expect(JSON.parse(rows[0].options)).toMatchObject({ mtu: 1380, cert: f('gw.crt'), key: f('gw.key'), ca_certs: [f('ca.crt')], child_rekey_bytes: 5_000_000_000 });
      expect(rows[1].psk_secret_id).toEqual(expect.any(Number));
      expect(rows[1].options).not.toContain(PSK_A);
      expect(db.prepare('SELECT data_plane FROM device_settings').get()).toEqual({ data_plane: 'recording' });
      // The schema itself refuses a PSK tunnel without a PSK reference.
      expect(() => db.prepare("UPDATE tunnels SET psk_secret_id = NULL WHERE name = 'psk1'").run()).toThrow(/CHECK/);
    } finally {
      db.close();
    }
    t.store = t.reopen();
  });

  it('the DoS-protection keys (ADMISSION_KEYS) round-trip through the store (schema v6 device_settings.admission), bad values refused with the field', () => {
    const src = readFileSync(new URL('../../firmware/config/schema.ts', import.meta.url), 'utf8');
    expect(src).toMatch(/const TOP_KEYS = \[[^\]]*\.\.\.ADMISSION_KEYS\] as const/);
    for (const k of ADMISSION_KEYS) expect((TOP_FIELDS as readonly string[]).includes(k)).toBe(true);
    t = tempStore();
    const values = { cookie_threshold: 10, cookie_threshold_ip: 2, block_threshold: 64, init_limit_half_open: 500, half_open_timeout: 20 };
    t.store.apply({ ...everyKeyDoc(), ...values }, { author: 'alice' });
    const exported = t.store.exportDocument({ includeSecrets: false, actor: 'test' }) as any;
    for (const [k, v] of Object.entries(values)) expect(exported[k], k).toBe(v);
    expect(t.store.daemonConfig().admission).toEqual({ cookieThreshold: 10, cookieThresholdIp: 2, blockThreshold: 64, initLimitHalfOpen: 500, halfOpenTimeout: 20 });
    // Survives a reopen (read back from the column, not a cache).
    t.store = t.reopen();
    expect(t.store.daemonConfig().admission).toEqual({ cookieThreshold: 10, cookieThresholdIp: 2, blockThreshold: 64, initLimitHalfOpen: 500, halfOpenTimeout: 20 });
    // Left out = defaults again (the column goes back to NULL).
    const without = everyKeyDoc();
    for (const k of ADMISSION_KEYS) delete without[k];
    t.store.apply(without, { author: 'alice' });
    expect(t.store.daemonConfig().admission).toBeUndefined();
    // Bad input: a clear error naming the field, nothing changed.
    const before = t.store.exportDocument({ includeSecrets: false, actor: 'test' });
    expect(() => t.store.apply({ ...everyKeyDoc(), cookie_threshold: -1 }, { author: 'alice' })).toThrow(/cookie_threshold/);
    expect(t.store.exportDocument({ includeSecrets: false, actor: 'test' })).toEqual(before);
  });

  it('a backup restores into a fresh store with the same daemon configuration', () => {
    t = tempStore();
    t.store.apply(everyKeyDoc(), { author: 'alice' });
    const backup = JSON.stringify(t.store.exportDocument({ includeSecrets: true, backup: true, actor: 'test' }));
    const expected = t.store.daemonConfig();
    t.cleanup();
    t = tempStore();
    t.store.importDocument(backup, { author: 'restore' });
    expect(t.store.daemonConfig()).toEqual(expected);
  });

  it('a secret-free export applies back: the PSK tunnel keeps its key, the pubkey tunnel needs none', () => {
    t = tempStore();
    t.store.apply(everyKeyDoc(), { author: 'alice' });
    const doc: any = t.store.getDocument();
    doc.tunnels[0].mtu = 1280;
    doc.tunnels[1].retransmit_tries = 3;
    const r = t.store.apply(doc, { author: 'bob' });
    expect(r.diff.map((d) => `${d.op} ${d.path}`)).toEqual(['change tunnels[0].mtu', 'change tunnels[1].retransmit_tries']);
    const cfg = t.store.daemonConfig();
    expect(cfg.tunnels[0]!.mtu).toBe(1280);
    expect(Buffer.from(cfg.tunnels[1]!.psk).toString()).toBe(PSK_A);
  });

  it('switches a tunnel between psk and pubkey by patch, and rolls back to the PSK', () => {
    t = tempStore();
    t.store.apply(everyKeyDoc(), { author: 'alice' });
    const pub = { auth: 'pubkey', psk: null, cert: f('gw.crt'), key: f('gw.key'), ca_certs: [f('ca.crt')] };
    const r = t.store.apply({ patch: { tunnels: { psk1: pub } } }, { author: 'bob' });
    expect(r.diff.map((d) => d.path)).toEqual(expect.arrayContaining(['tunnels[1].auth', 'tunnels[1].cert', 'tunnels[1].psk']));
    expect(JSON.stringify(r.diff)).not.toContain(PSK_A);
    expect(t.store.daemonConfig().tunnels[1]).toMatchObject({ auth: 'pubkey', psk: new Uint8Array(0) });
    expect(t.store.exportDocument({ includeSecrets: true, actor: 'x' }).tunnels[1]!.psk).toBeUndefined();
    // Back to PSK without giving one: the store holds none for it any more.
    expect(() => t!.store.apply({ patch: { tunnels: { psk1: { auth: 'psk', cert: null, key: null, ca_certs: null } } } }, { author: 'bob' })).toThrow(ConfigValidationError);
    t.store.rollback(2, { author: 'carol' });
    expect(t.store.exportDocument({ includeSecrets: true, actor: 'x' })).toEqual(canonical());
    expect(Buffer.from(t.store.daemonConfig().tunnels[1]!.psk).toString()).toBe(PSK_A);
    // And with a new key given.
    t.store.apply({ patch: { tunnels: { pk1: { auth: 'psk', psk: PSK_B, cert: null, key: null, cert_chain: null, ca_certs: null, allowed_schemes: null } } } }, { author: 'bob' });
    expect(Buffer.from(t.store.daemonConfig().tunnels[0]!.psk).toString()).toBe(PSK_B);
  });

  it('still refuses what the daemon refuses, with field paths (psk on a pubkey tunnel, cert on a psk tunnel, bad data_plane)', () => {
    t = tempStore();
    const d = everyKeyDoc();
    d.tunnels[0].psk = PSK_B;
    d.tunnels[1].cert = f('gw.crt');
    d.data_plane = 'kernel';
    let err: unknown;
    try {
      t.store.apply(d, { author: 'alice' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    const paths = (err as ConfigValidationError).errors.map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['tunnels[0].psk', 'tunnels[1].cert', 'data_plane']));
    expect(String((err as Error).message)).not.toContain(PSK_B);
  });
});
