/**
 * The control API end to end over the real admin socket, against an
 * appliance on the configuration store with the real engine and three peers
 * on the in-memory network: every method of firmware/control/api.ts (the
 * list is read from api.ts itself, so a new method without a test fails
 * here), with the effects each one must have, and no secret in any reply
 * or log line (every reply is recorded and searched).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Rig, PSKS, gwTunnel, spis, until, wait } from './harness.js';
import { icmpEcho } from '../dataplane/helpers.js';
import { generateKey, exportPrivateKeyPem, toPem } from '../../firmware/auth/keys.js';
import { encodeDn } from '../../firmware/auth/dn.js';
import { buildCertificate } from '../../firmware/pki/x509-writer.js';
import { SECRET_PLACEHOLDER } from '../../firmware/control/api.js';

const API_METHODS = [...readFileSync(new URL('../../firmware/control/api.ts', import.meta.url), 'utf8').matchAll(/^ {2}'?([a-zA-Z.-]+)'?: \[/gm)].map((m) => m[1]!);
const actor = 'admin@test';
let rig: Rig;
/** Private key PEMs uploaded with certificates: must never come back either. */
const keyPems: string[] = [];

beforeAll(async () => {
  rig = new Rig();
  await rig.startPeer(0);
  await rig.startPeer(1);
  // Peer c expects another PSK: the gateway's c fails authentication (a handshake failure with a reason).
  await rig.startPeer(2, { psk: 'a-different-psk-for-peer-charlie' });
  await rig.startAppliance([gwTunnel(0), gwTunnel(1), gwTunnel(2)]);
  await rig.established(['a', 'b']);
}, 30_000);

afterAll(async () => {
  await rig?.close();
});

describe('control API over the admin socket', () => {
  it('lists every method of api.ts', () => {
    expect(API_METHODS.length).toBeGreaterThanOrEqual(40);
    expect(API_METHODS).toContain('status.tunnels');
    expect(API_METHODS).toContain('system.factoryReset');
  });

  it('version, status and status.tunnels: SAs with algorithms and counters, idle tunnels with their last error', async () => {
    const v = await rig.call('version');
    expect(v).toMatchObject({ name: 'pqgate', protocol: 1, configSource: 'store', tunnels: ['a', 'b', 'c'], dataPlane: 'userspace-esp' });
    const st = await rig.call('status');
    expect(st.map((s: { tunnel: string }) => s.tunnel).sort()).toEqual(['a', 'b']);
    const a = st.find((s: { tunnel: string }) => s.tunnel === 'a');
    expect(a).toMatchObject({ state: 'ESTABLISHED', keyExchanges: ['CURVE_25519', 'ML_KEM_768'], postQuantum: 'ML_KEM_768', encr: 'AES_GCM_16_256' });
    expect(a.children[0]).toMatchObject({ state: 'INSTALLED', packetsIn: 0, packetsOut: 0, bytesIn: 0 });
    const t = await until(async () => {
      const r = await rig.call('status.tunnels');
      return r.idle.find((i: { tunnel: string; lastError: string | null }) => i.tunnel === 'c' && i.lastError) ? r : undefined;
    }, 8000, 'c idle with an error');
    expect(t.now).toBeGreaterThan(0);
    expect(t.idle).toEqual([{ tunnel: 'c', lastError: expect.stringContaining('AUTHENTICATION_FAILED'), nextAttemptAt: null }]);
  });

  it('tunnel commands: rekey-ike, rekey-child, dpd, down, up, reset; unknown tunnels and bad params are errors', async () => {
    const before = (await rig.established(['a', 'b'])).get('a')!;
    rig.links.device('pqa').inject(icmpEcho('203.0.113.0', '203.0.113.1', 1, 1));
    await until(() => rig.app.daemon.status().length && true, 1000);
    expect(await rig.call('rekey-child', { tunnel: 'a', actor })).toMatchObject({ ok: true });
    await until(() => rig.app.daemon.status().find((s) => s.tunnel === 'a')?.children.some((c) => c.spiIn !== before.children[0]!.spiIn && c.state === 'INSTALLED' && c.rekeys === 1), 5000, 'child rekeyed');
    expect(await rig.call('rekey-ike', { tunnel: 'a', actor })).toMatchObject({ ok: true });
    const rekeyed = await until(() => rig.app.daemon.status().find((s) => s.tunnel === 'a' && s.state === 'ESTABLISHED' && s.spiI !== before.spiI && s.rekeys === 1), 5000, 'IKE rekeyed');
    expect(rekeyed.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
    expect(await rig.call('dpd', { tunnel: 'a' })).toMatchObject({ ok: true });

    await rig.call('down', { tunnel: 'a', actor });
    await until(() => !rig.app.daemon.status().some((s) => s.tunnel === 'a'), 5000, 'a down');
    await wait(300);
    expect(rig.app.daemon.status().some((s) => s.tunnel === 'a')).toBe(false); // not re-initiated
    await rig.call('up', { tunnel: 'a', actor });
    await rig.established(['a']);

    const b = (await rig.established(['b'])).get('b')!;
    expect(await rig.call('reset', { tunnel: 'b', actor })).toEqual({ ok: true });
    const b2 = await until(() => rig.app.daemon.status().find((s) => s.tunnel === 'b' && s.state === 'ESTABLISHED' && s.spiI !== b.spiI), 5000, 'b reset');
    expect(b2.rekeys).toBe(0);

    expect((await rig.callError('up', { tunnel: 'nope' })).message).toMatch(/no tunnel named 'nope' \(configured: a, b, c\)/);
    expect((await rig.callError('up', { tunnel: 'nope' })).code).toBe('ERR_NO_SUCH_TUNNEL');
    expect((await rig.callError('down', {})).code).toBe('ERR_INVALID_PARAMS');
    expect((await rig.callError('reset', { tunnel: 7 })).code).toBe('ERR_INVALID_PARAMS');
    expect((await rig.callError('no.such.method')).code).toBe('ERR_METHOD_NOT_FOUND');
    const ev = await rig.call('logs.events', { tunnel: 'a', limit: 100 });
    expect(ev.some((e: { message: string }) => e.message === `taken down by ${actor}`)).toBe(true);
  });

  it('metrics: tunnel up, SA counts, bytes and packets that survive rekeys, rekeys, failures by reason, PQ share', async () => {
    const m = (await rig.call('metrics')).text as string;
    expect(m).toContain('pqgate_tunnel_up{tunnel="a"} 1');
    expect(m).toContain('pqgate_tunnel_up{tunnel="c"} 0');
    expect(m).toContain('pqgate_ike_sas 2');
    expect(m).toContain('pqgate_child_sas 2');
    expect(m).toContain('pqgate_pq_share 1');
    expect(m).toMatch(/pqgate_rekeys_total\{kind="ike"\} 1\n/);
    expect(m).toMatch(/pqgate_rekeys_total\{kind="child"\} [1-9]/);
    expect(m).toMatch(/pqgate_handshake_failures_total\{reason="AUTHENTICATION_FAILED"\} [1-9]/);
    // The echo went out through a's first Child SA, since rekeyed away and deleted: still counted.
    const out = Number(/pqgate_child_packets_total\{tunnel="a",direction="out"\} (\d+)/.exec(m)?.[1]);
    expect(out).toBe(1);
    expect(Number(/pqgate_child_bytes_total\{tunnel="a",direction="out"\} (\d+)/.exec(m)?.[1])).toBe(84);
    rig.links.device('pqa').inject(icmpEcho('203.0.113.0', '203.0.113.1', 1, 2));
    await until(async () => /pqgate_child_packets_total\{tunnel="a",direction="out"\} 2\n/.test((await rig.call('metrics')).text), 3000, 'second packet counted');
  });

  it('config.get hides PSKs behind "<set>"; config.validate reports field paths; config.set keeps "<set>" keys', async () => {
    const g = await rig.call('config.get');
    expect(g.revision).toBe(1);
    expect(g.document.tunnels.map((t: { psk: string }) => t.psk)).toEqual([SECRET_PLACEHOLDER, SECRET_PLACEHOLDER, SECRET_PLACEHOLDER]);
    const bad = structuredClone(g.document);
    bad.tunnels[1].mss = 100;
    bad.tunnels[2].proposals = ['aes999-prfsha384-x25519'];
    bad.tunnels.push({ name: 'new', remote_addr: '198.51.100.9', local_id: 'x.example', psk: 'short' });
    const v = await rig.call('config.validate', { document: bad });
    expect(v.ok).toBe(false);
    expect(v.issues.map((i: { path: string }) => i.path)).toEqual(['tunnels[1].mss', 'tunnels[2].proposals[0]', 'tunnels[3].psk']);
    expect((await rig.call('config.validate', { document: g.document })).ok).toBe(true);
    const e = await rig.callError('config.set', { document: bad, actor });
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toContain('tunnels[1].mss');
    expect((await rig.call('config.get')).revision).toBe(1); // nothing applied

    const doc = structuredClone(g.document);
    doc.tunnels[1].dpd_delay = 45;
    const before = (await rig.established(['a'])).get('a')!;
    const r = await rig.call('config.set', { document: doc, comment: 'b: DPD 45 s', actor });
    expect(r.revision).toMatchObject({ id: 2, author: actor, comment: 'b: DPD 45 s', state: 'committed' });
    // a kept its key and its SA (only b changed); b comes back with its stored PSK.
    await rig.established(['a', 'b']);
    expect(spis((await rig.established(['a'])).get('a')!)).toBe(spis(before));
    expect((await rig.callError('config.set', { document: doc })).code).toBe('ERR_INVALID_PARAMS'); // no actor
  });

  it('config.tunnel.put with a preset and params, config.presets, config.tunnel.delete', async () => {
    const presets = await rig.call('config.presets');
    expect(presets.map((p: { name: string }) => p.name).sort()).toEqual(['cisco-8000', 'cloudflare', 'fortios', 'strongswan']);
    const cf = presets.find((p: { name: string }) => p.name === 'cloudflare');
    expect(Object.keys(cf.params)).toEqual(['tunnel_id', 'account_id']);
    const missing = await rig.callError('config.tunnel.put', { tunnel: { name: 'cf', remote_addr: '198.51.100.77', inside_addr: '10.100.0.9/31', psk: 'cloudflare-psk-0123456789' }, preset: 'cloudflare', actor });
    expect(missing.message).toContain('params.tunnel_id');
    const r = await rig.call('config.tunnel.put', {
      tunnel: { name: 'cf', remote_addr: '198.51.100.77', inside_addr: '10.100.0.9/31', psk: 'cloudflare-psk-0123456789', start_action: 'none' },
      preset: 'cloudflare',
      params: { tunnel_id: 't1', account_id: 'acct' },
      actor,
    });
    expect(r.revision.id).toBe(3);
    const t = (await rig.call('config.get')).document.tunnels.find((x: { name: string }) => x.name === 'cf');
    expect(t).toMatchObject({ local_id: 'fqdn:t1.acct.ipsec.cloudflare.com', proposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024'], replay_window: 0, mss: 1360, psk: SECRET_PLACEHOLDER });
    expect((await rig.call('config.export', { actor })).document.tunnel_presets).toEqual({ cf: 'cloudflare' });
    await rig.call('config.tunnel.delete', { name: 'cf', actor });
    expect((await rig.callError('config.tunnel.delete', { name: 'cf', actor })).code).toBe('ERR_NO_SUCH_TUNNEL');
  });

  it('config.export (secrets only on request, audited), config.import, history, diff, rollback, pending/confirm/cancel', async () => {
    const plain = await rig.call('config.export', {});
    expect(plain.document.schema_version).toBeGreaterThanOrEqual(3);
    expect(plain.document.tunnels.every((t: { psk?: string }) => t.psk === undefined)).toBe(true);
    expect((await rig.callError('config.export', { includeSecrets: true })).code).toBe('ERR_INVALID_PARAMS');
    const full = await rig.call('config.export', { includeSecrets: true, actor });
    expect(full.document.tunnels.map((t: { psk: string }) => t.psk)).toEqual(PSKS);
    full.document.log_level = 'debug';
    const imp = await rig.call('config.import', { document: full.document, comment: 'restore', actor });
    expect(imp.revision).toMatchObject({ author: actor, comment: 'restore' });
    const hist = await rig.call('config.history', { limit: 3 });
    expect(hist[0].id).toBe(imp.revision.id);
    const d = await rig.call('config.diff', { from: imp.revision.id - 1, to: imp.revision.id });
    expect(d.entries).toEqual([{ path: 'log_level', kind: 'change', before: 'info', after: 'debug' }]);
    expect(d.text).toContain('log_level');
    const rb = await rig.call('config.rollback', { revision: 1, comment: 'back to the start', actor });
    expect(rb.revision.id).toBe(imp.revision.id + 1);
    expect((await rig.call('config.diff', { from: 1, to: rb.revision.id })).entries).toEqual([]);
    expect((await rig.call('config.pending')).revision).toBeNull();
    expect((await rig.callError('config.confirm', { actor })).code).toBe('ERR_STORE_NOT_PENDING');
    expect((await rig.callError('config.cancel', { actor })).code).toBe('ERR_STORE_NOT_PENDING');
    expect((await rig.callError('config.rollback', { revision: 999, actor })).code).toBe('ERR_STORE_NOT_FOUND');
    const audit = await rig.call('logs.audit', { limit: 50 });
    expect(audit.some((a: { action: string; actor: string }) => a.action === 'export-secrets' && a.actor === actor)).toBe(true);
  });

  it('certificates: add a CA and a certificate with its key, list them without keys, remove', async () => {
    const caKey = generateKey('ecdsa-p256');
    const caDn = encodeDn('CN=Test CA');
    const caPem = toPem('CERTIFICATE', buildCertificate({ subject: caDn, issuer: caDn, subjectKey: caKey.publicKey, issuerKey: caKey, notBefore: new Date('2025-01-01'), notAfter: new Date('2035-01-01'), ca: true }));
    const key = generateKey('ecdsa-p256');
    const dn = encodeDn('CN=gw.example');
    const pem = toPem('CERTIFICATE', buildCertificate({ subject: dn, issuer: caDn, subjectKey: key.publicKey, issuerKey: caKey, notBefore: new Date('2025-01-01'), notAfter: new Date('2035-01-01'), san: [{ type: 'dns', value: 'gw.example' }] }));
    const keyPem = exportPrivateKeyPem(key);
    keyPems.push(keyPem);
    expect(await rig.call('certs.add', { name: 'ca1', kind: 'ca', pem: caPem, actor })).toMatchObject({ name: 'ca1', kind: 'ca', hasPrivateKey: false, keyType: 'ec prime256v1' });
    const c = await rig.call('certs.add', { name: 'gw', kind: 'cert', pem, privateKeyPem: keyPem, actor });
    expect(c).toMatchObject({ name: 'gw', subject: 'CN=gw.example', issuer: 'CN=Test CA', sans: ['DNS:gw.example'], hasPrivateKey: true });
    const wrong = exportPrivateKeyPem(generateKey('ecdsa-p256'));
    keyPems.push(wrong);
    expect((await rig.callError('certs.add', { name: 'gw2', kind: 'cert', pem, privateKeyPem: wrong, actor })).message).toContain('does not match');
    expect((await rig.call('certs.list')).map((x: { name: string }) => x.name)).toEqual(['ca1', 'gw']);
    expect(await rig.call('certs.remove', { name: 'gw', actor })).toEqual({ ok: true });
    expect((await rig.call('certs.list')).map((x: { name: string }) => x.name)).toEqual(['ca1']);
  });

  it('users: first-boot setup, then only an administrator adds users; verify, password, delete (never the last one)', async () => {
    expect(await rig.call('users.setupRequired')).toEqual({ setupRequired: true });
    expect(await rig.call('users.create', { name: 'admin', password: 'correct horse battery' })).toEqual({ ok: true });
    expect(await rig.call('users.setupRequired')).toEqual({ setupRequired: false });
    expect((await rig.callError('users.create', { name: 'intruder', password: 'intruder-password-1' })).code).toBe('ERR_PERMISSION');
    await rig.call('users.create', { name: 'ops', password: 'ops-password-0123', actor: 'admin' });
    expect(await rig.call('users.verify', { name: 'admin', password: 'correct horse battery' })).toEqual({ ok: true });
    expect(await rig.call('users.verify', { name: 'admin', password: 'wrong password!!' })).toEqual({ ok: false });
    expect(await rig.call('users.verify', { name: 'ghost', password: 'whatever-password' })).toEqual({ ok: false });
    const list = await rig.call('users.list');
    expect(list.map((u: { name: string }) => u.name)).toEqual(['admin', 'ops']);
    expect(list[0].lastLoginAt).toBeGreaterThan(0);
    expect(list[1].lastLoginAt).toBeNull();
    expect((await rig.callError('users.password', { name: 'admin', currentPassword: 'nope-nope-nope', newPassword: 'new-password-0123', actor: 'admin' })).code).toBe('ERR_STORE_AUTH');
    await rig.call('users.password', { name: 'admin', currentPassword: 'correct horse battery', newPassword: 'new-password-0123', actor: 'admin' });
    expect(await rig.call('users.verify', { name: 'admin', password: 'new-password-0123' })).toEqual({ ok: true });
    await rig.call('users.delete', { name: 'ops', actor: 'admin' });
    expect((await rig.callError('users.delete', { name: 'admin', actor: 'admin' })).code).toBe('ERR_LAST_USER');
  });

  it('logs.events: newest first, filters by tunnel, severity and id', async () => {
    const all = await rig.call('logs.events', { limit: 500 });
    expect(all.length).toBeGreaterThan(10);
    expect(all[0].id).toBeGreaterThan(all[1].id);
    expect(all.some((e: { message: string }) => /^IKE SA established/.test(e.message))).toBe(true);
    const errs = await rig.call('logs.events', { level: 'warn', limit: 500 });
    expect(errs.length).toBeGreaterThan(0);
    expect(errs.every((e: { level: string }) => e.level === 'warn' || e.level === 'error')).toBe(true);
    const c = await rig.call('logs.events', { tunnel: 'c', limit: 500 });
    expect(c.every((e: { tunnel: string }) => e.tunnel === 'c')).toBe(true);
    const newer = await rig.call('logs.events', { afterId: all[3].id });
    expect(newer.map((e: { id: number }) => e.id)).toEqual(all.slice(0, 3).map((e: { id: number }) => e.id));
    const older = await rig.call('logs.events', { beforeId: all[3].id, limit: 2 });
    expect(older.map((e: { id: number }) => e.id)).toEqual([all[4].id, all[5].id]);
    expect((await rig.callError('logs.events', { level: 'loud' })).code).toBe('ERR_INVALID_PARAMS');
  });

  it('keys.capture and keys.export: nothing held by default; with capture the current keys of every SA in Wireshark formats', async () => {
    expect((await rig.callError('keys.export', { actor })).code).toBe('ERR_KEY_CAPTURE_OFF');
    const sasBefore = await rig.established(['a', 'b']);
    const on = await rig.call('keys.capture', { enabled: true, rekey: true, actor });
    expect(on).toMatchObject({ enabled: true });
    // Every SA is rekeyed; its new keys are captured as they are derived.
    const now = await until(async () => {
      const m = await rig.established(['a', 'b']);
      const fresh = ['a', 'b'].every((n) => m.get(n)!.spiI !== sasBefore.get(n)!.spiI && m.get(n)!.children[0]!.spiIn !== sasBefore.get(n)!.children[0]!.spiIn);
      return fresh && rig.app.daemon.status().filter((s) => s.tunnel !== 'c').length === 2 ? m : undefined;
    }, 8000, 'SAs rekeyed');
    await wait(100);
    const k = await rig.call('keys.export', { actor });
    const ike = k.ikev2_decryption_table.trim().split('\n');
    const esp = k.esp_sa.trim().split('\n');
    expect(ike).toHaveLength(2);
    for (const n of ['a', 'b']) {
      const sa = now.get(n)!;
      // SPIi, SPIr, SK_ei, SK_er, "AES-GCM-256 ...", SK_ai, SK_ar, "NONE ..."
      expect(ike.some((l: string) => l.startsWith(`${sa.spiI},${sa.spiR},`) && /^[0-9a-f]{16},[0-9a-f]{16},[0-9a-f]{72},[0-9a-f]{72},"AES-GCM-256 with 16 octet ICV \[RFC5282\]",,,"NONE \[RFC4306\]"$/.test(l))).toBe(true);
      for (const spi of [sa.children[0]!.spiIn, sa.children[0]!.spiOut]) expect(esp.some((l: string) => l.includes(`"0x${spi}"`) && l.startsWith('"IPv4",'))).toBe(true);
    }
    expect(esp).toHaveLength(4);
    const off = await rig.call('keys.capture', { enabled: false, actor });
    expect(off).toEqual({ enabled: false, since: null, ike: 0, esp: 0 });
    expect((await rig.callError('keys.export', { actor })).code).toBe('ERR_KEY_CAPTURE_OFF');
    expect((await rig.callError('keys.capture', { actor })).code).toBe('ERR_INVALID_PARAMS');
  });

  it('system.info from /proc and os; system.reboot refused off the appliance image; reload', async () => {
    const s = await rig.call('system.info');
    expect(s.hostname.length).toBeGreaterThan(0);
    expect(s.cpu.cores).toBeGreaterThan(0);
    expect(s.memory.totalBytes).toBeGreaterThan(s.memory.freeBytes);
    expect(s.interfaces.some((i: { name: string }) => i.name === 'lo')).toBe(true);
    expect(s.dataPlane).toBe('userspace-esp');
    expect(s.firmware).toBeNull();
    const e = await rig.callError('system.reboot', { actor });
    expect(e.code).toBe('ERR_NOT_APPLIANCE');
    const r = await rig.call('reload');
    expect(r).toMatchObject({ tunnels: 3, names: ['a', 'b', 'c'], restartRequired: [] });
  });

  it('system.factoryReset wipes configuration, keys, certificates, users and logs: first-boot state', async () => {
    expect((await rig.callError('system.factoryReset', { confirm: 'yes', actor })).code).toBe('ERR_INVALID_PARAMS');
    await rig.call('config.tunnel.put', { tunnel: { name: 'extra', remote_addr: '198.51.100.5', local_id: 'e.example', psk: 'extra-psk-0123456789ab', start_action: 'none' }, actor });
    expect(await rig.call('system.factoryReset', { confirm: 'FACTORY RESET', actor })).toEqual({ ok: true });
    expect(await rig.call('users.setupRequired')).toEqual({ setupRequired: true });
    expect(await rig.call('certs.list')).toEqual([]);
    const hist = await rig.call('config.history', {});
    expect(hist.map((h: { id: number; author: string }) => [h.id, h.author])).toEqual([[1, 'system (initial)']]);
    expect((await rig.call('config.get')).document.tunnels.map((t: { name: string }) => t.name)).toEqual(['a', 'b', 'c']);
    const ev = await rig.call('logs.events', { limit: 1000 });
    expect(ev.some((e: { message: string }) => e.message.startsWith('taken down by'))).toBe(false);
    expect(ev.some((e: { message: string }) => e.message === `factory reset by ${actor}: configuration, keys, certificates, users and logs erased`)).toBe(true);
    expect((await rig.call('logs.audit', {})).map((a: { action: string }) => a.action)).toEqual(['initial']);
    // The running tunnels follow the reset configuration ('extra' is gone).
    await until(() => !rig.app.daemon.config.tunnels.some((t) => t.name === 'extra'), 3000, 'extra removed');
    await rig.established(['a', 'b']);
  });

  it('upgrade.* off the appliance image: unavailable with a clear reason, not a crash', async () => {
    const st = await rig.call('upgrade.status');
    expect(st).toMatchObject({ available: false, slots: [], progress: { phase: 'idle' } });
    expect(st.reason).toMatch(/need the appliance image/);
    expect(await rig.callError('upgrade.install', { path: '/nonexistent/x.pqb', actor })).toMatchObject({ code: 'NO_BACKEND', message: expect.stringMatching(/appliance image/) });
    expect((await rig.callError('upgrade.keylist', { path: '/nonexistent/k.pqkl', actor })).code).toBe('BAD_TRUST');
  });

  it('every method was called, and no reply (nor log line) carried a PSK or a private key', () => {
    const called = new Set(rig.replies.map((r) => r.method));
    expect(API_METHODS.filter((m) => !called.has(m))).toEqual([]);
    for (const r of rig.replies) if (API_METHODS.includes(r.method)) expect(r.text, r.method).not.toContain('ERR_METHOD_NOT_FOUND');
    const secrets = [...PSKS, 'cloudflare-psk-0123456789', 'extra-psk-0123456789ab', 'a-different-psk-for-peer-charlie'];
    const hex = secrets.map((s) => Buffer.from(s).toString('hex'));
    const keyBodies = keyPems.map((p) => p.split('\n').slice(1, -2).join(''));
    let checked = 0;
    for (const r of rig.replies) {
      const p = r.params as { includeSecrets?: boolean } | undefined;
      if (r.method === 'keys.export' || (r.method === 'config.export' && p?.includeSecrets)) continue;
      checked++;
      for (const s of [...secrets, ...hex, ...keyBodies]) expect(r.text.includes(s), `${r.method} reply carries a secret`).toBe(false);
    }
    expect(checked).toBeGreaterThan(80);
    const logs = rig.logs.join('\n');
    for (const s of [...secrets, ...hex]) expect(logs.includes(s)).toBe(false);
  });
});
