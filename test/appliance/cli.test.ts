/**
 * The `pqgate` CLI against a running appliance over its control socket:
 * the status view (every IKE SA and Child SA, algorithms, post-quantum,
 * traffic, rekey times, idle tunnels with their last error), tunnel
 * actions, the config commands (presets with parameters, commit confirmed,
 * diff, history, rollback, import/export), logs (also --follow), metrics,
 * keys, users and system, with exit codes 0/1/2 and validation errors
 * printed with their field paths. Then `pqgate daemon --db` itself: first
 * start creates the database, signals reload and stop it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main, type CliIo } from '../../firmware/cli.js';
import { Rig, PSKS, gwTunnel, until, wait } from './harness.js';

let rig: Rig;

beforeAll(async () => {
  rig = new Rig();
  await rig.startPeer(0);
  await rig.startPeer(1);
  await rig.startPeer(2, { psk: 'a-different-psk-for-peer-charlie' });
  await rig.startAppliance([gwTunnel(0), gwTunnel(1), gwTunnel(2)]);
  await rig.established(['a', 'b']);
}, 30_000);
afterAll(async () => {
  await rig?.close();
});

async function cli(args: string[], extra: Partial<CliIo> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main([...args, '--socket', rig.adminSocket], { out: (s) => void (out += s), err: (s) => void (err += s), env: {}, ...extra });
  return { code, out, err };
}

function file(name: string, text: string): string {
  const f = join(rig.dir, name);
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

describe('pqgate client commands', () => {
  it('status: each IKE SA and Child SA with algorithms, post-quantum, traffic, rekey times; idle tunnels with their last error', async () => {
    await until(async () => (await rig.call('status.tunnels')).idle[0]?.lastError, 8000, 'c failed');
    const r = await cli(['status']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^a #\d+: ESTABLISHED, initiator, \d+s$/m);
    expect(r.out).toContain('  key exchanges: CURVE_25519 + ML_KEM_768');
    expect(r.out).toContain('  post-quantum: ML-KEM-768');
    expect(r.out).toContain('  authentication: local psk / remote psk');
    expect(r.out).toMatch(/^ {2}not rekeyed yet, next rekey in 2\dh\d+m$/m); // the engine spreads rekeys (jitter)
    expect(r.out).toMatch(/^ {2}child a #\d+: INSTALLED, \d+s, ESP in UDP AES_GCM_16_256$/m);
    expect(r.out).toMatch(/^ {4}in {2}0 B, 0 packets; replay drops 0, ICV failures 0, malformed 0$/m);
    expect(r.out).toMatch(/^ {4}out 0 B, 0 packets$/m);
    expect(r.out).toMatch(/^ {4}not rekeyed yet, next rekey in [67]h\d+m$/m);
    expect(r.out).toContain('configured tunnels without an IKE SA: c');
    expect(r.out).toMatch(/^ {2}c: last error: .*AUTHENTICATION_FAILED/m);
    const j = await cli(['status', '--json']);
    expect(JSON.parse(j.out).map((s: { tunnel: string }) => s.tunnel).sort()).toEqual(['a', 'b']);
  });

  it('tunnel actions and their errors (exit 1 for daemon errors, 2 for usage)', async () => {
    expect(await cli(['rekey', 'a', '--child'])).toMatchObject({ code: 0, out: 'rekeying the Child SAs of a\n' });
    expect(await cli(['reset', 'b'])).toMatchObject({ code: 0, out: 'resetting b\n' });
    expect(await cli(['dpd', 'a'])).toMatchObject({ code: 0 });
    const e = await cli(['up', 'nope']);
    expect(e.code).toBe(1);
    expect(e.err).toContain("no tunnel named 'nope' (configured: a, b, c)");
    expect((await cli(['up'])).code).toBe(2);
    expect((await cli(['rekey', 'a', '--ike'])).code).toBe(2);
    await rig.established(['a', 'b']);
    await until(async () => /child a #\d+: INSTALLED[\s\S]*rekeyed 1 time \(last \d+s ago\)/.test((await cli(['status'])).out), 5000, 'child rekey shown');
  });

  it('config: presets with parameters, field-path errors, commit confirmed, diff, history, rollback, export and import', async () => {
    const psk = file('psk.txt', 'cloudflare-cli-psk-0123456789\n');
    const bad = await cli(['config', 'tunnel', 'add', 'cf', '--preset', 'cloudflare', '--set', 'remote_addr=198.51.100.77', '--psk-file', psk]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('params.tunnel_id');
    expect(bad.err).toContain('inside_addr: is required by preset');
    const add = await cli(['config', 'tunnel', 'add', 'cf', '--preset', 'cloudflare', '--param', 'tunnel_id=t1', '--param', 'account_id=acct', '--set', 'remote_addr=198.51.100.77', '--set', 'inside_addr=10.100.0.9/31', '--set', 'start_action=none', '--psk-file', psk, '--comment', 'Cloudflare']);
    expect(add).toMatchObject({ code: 0, out: 'revision 2 committed\n' });
    const got = JSON.parse((await cli(['config', 'get'])).out);
    expect(got.tunnels[3]).toMatchObject({ name: 'cf', local_id: 'fqdn:t1.acct.ipsec.cloudflare.com', mss: 1360, replay_window: 0, psk: '<set>' });
    expect((await cli(['config', 'tunnel', 'add', 'cf', '--set', 'mss=1'])).code).toBe(2); // exists: use set

    const pend = await cli(['config', 'tunnel', 'set', 'cf', '--set', 'mss=1300', '--unset', 'dpd_delay', '--confirm-timeout', '60']);
    expect(pend.code).toBe(0);
    expect(pend.out).toMatch(/^revision 3 applied, pending confirmation until .*: run `pqgate config confirm` before then, or it rolls back by itself\n$/);
    expect((await cli(['config', 'pending'])).out).toMatch(/^#3 .* pending until /);
    expect((await cli(['config', 'confirm'])).out).toBe('revision 3 confirmed\n');
    const diff = await cli(['config', 'diff']);
    expect(diff.out).toContain('--- revision 2\n+++ revision 3\n');
    expect(diff.out).toContain('tunnels[3].mss: 1360 → 1300');
    expect(diff.out).toContain('tunnels[3].dpd_delay');
    const hist = await cli(['config', 'history']);
    expect(hist.out.split('\n').filter(Boolean).map((l) => l.split('  ')[0])).toEqual(['#3', '#2', '#1']);
    expect(hist.out).toMatch(/#2 {2}\S+ {2}\S+@cli {2}committed {2}Cloudflare/);

    const broken = structuredClone(got);
    broken.tunnels[0].mode = 'tunnel';
    broken.tunnels[1].psk = 'short';
    const badDoc = file('bad.json', JSON.stringify(broken));
    const v = await cli(['config', 'validate', badDoc]);
    expect(v.code).toBe(1);
    expect(v.err).toContain('  tunnels[0].mode: ');
    expect(v.err).toContain('  tunnels[1].psk: ');
    const s = await cli(['config', 'set', badDoc]);
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/invalid configuration \(2 errors\):\n {2}tunnels\[0\]\.mode: .*\n {2}tunnels\[1\]\.psk: /);
    expect(s.err).not.toContain('short');
    expect((await cli(['config', 'set', file('syntax.json', '{"tunnels": [ {"psk": "hunter2-hunter2-hunter2" ')])).err).toMatch(/\(document\): invalid JSON/);

    expect((await cli(['config', 'rollback', '1'])).out).toBe('revision 4 committed\n');
    const out = join(rig.dir, 'backup.json');
    expect((await cli(['config', 'export', '--include-secrets', '--out', out])).code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(out, 'utf8')).tunnels.map((t: { psk: string }) => t.psk)).toEqual(PSKS);
    expect(JSON.parse((await cli(['config', 'export'])).out).tunnels[0].psk).toBeUndefined();
    expect((await cli(['config', 'import', out, '--comment', 'restore'])).out).toBe('revision 5 committed\n');
    expect((await cli(['config', 'presets'])).out).toContain('cloudflare: ');
    expect((await cli(['config', 'frob'])).code).toBe(2);
    expect((await cli(['config', 'rollback', 'x'])).code).toBe(2);
  });

  it('logs (and --follow), metrics, keys', async () => {
    const l = await cli(['logs', '--limit', '5']);
    expect(l.out.trim().split('\n')).toHaveLength(5);
    expect(l.out).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z (info |warn |error) /m);
    expect((await cli(['logs', '--tunnel', 'c', '--level', 'warn'])).out).toMatch(/\[c\] .*AUTHENTICATION_FAILED/);
    let stop!: () => void;
    const followUntil = new Promise<void>((r) => (stop = r));
    const following = cli(['logs', '--follow', '--limit', '1'], { followUntil });
    await wait(300);
    await rig.call('down', { tunnel: 'b', actor: 'follower-test' });
    await wait(1200);
    stop();
    const f = await following;
    expect(f.code).toBe(0);
    expect(f.out).toContain('[b] taken down by follower-test');
    await rig.call('up', { tunnel: 'b', actor: 'follower-test' });
    expect((await cli(['logs', '--audit', '--limit', '3'])).out).toMatch(/@cli: /);

    const m = await cli(['metrics']);
    expect(m.out).toContain('# TYPE pqgate_tunnel_up gauge');
    expect(m.out).toContain('pqgate_pq_share');

    const off = await cli(['keys', 'export']);
    expect(off.code).toBe(1);
    expect(off.err).toContain('key capture is off');
    expect((await cli(['keys', 'capture', 'on', '--rekey'])).out).toMatch(/^key capture on since /);
    await until(async () => (await rig.call('keys.capture', { enabled: true, actor: 't' })).esp >= 4, 8000, 'keys captured');
    const dir = join(rig.dir, 'profile');
    const k = await cli(['keys', 'export', '--out', dir]);
    expect(k.out).toMatch(/^wrote 2 IKE SA and 4 ESP SA records to /);
    expect(statSync(join(dir, 'esp_sa')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'ikev2_decryption_table'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect((await cli(['keys', 'capture', 'off'])).out).toBe('key capture off: no keys held\n');
    expect((await cli(['keys', 'frob'])).code).toBe(2);
  });

  it('users, system, version', async () => {
    expect((await cli(['users', 'list'])).out).toContain('no administrators yet');
    const pw = file('pw.txt', 'first-admin-password\n');
    expect(await cli(['users', 'add', 'admin', '--password-file', pw])).toMatchObject({ code: 0, out: 'administrator admin created\n' });
    expect(await rig.call('users.verify', { name: 'admin', password: 'first-admin-password' })).toEqual({ ok: true });
    const asked: string[] = [];
    const prompt = async (q: string) => (asked.push(q), 'second-admin-password');
    expect((await cli(['users', 'add', 'ops'], { promptSecret: prompt })).code).toBe(0);
    expect(asked).toEqual(['password: ', 'again: ']);
    expect((await cli(['users', 'add', 'weak', '--password-file', file('short.txt', 'short\n')])).err).toMatch(/at least 10 characters/);
    expect((await cli(['users', 'list'])).out).toMatch(/^admin {2}created .*\nops {2}created /);
    expect((await cli(['users', 'delete', 'ops'])).code).toBe(0);
    const last = await cli(['users', 'delete', 'admin']);
    expect(last.code).toBe(1);
    expect(last.err).toContain('last administrator');

    const info = await cli(['system', 'info']);
    expect(info.out).toMatch(/^\S+: pqgate \S+, up \d+ min/);
    expect(info.out).toContain('firmware: not running from the appliance image');
    expect((await cli(['system', 'reboot'])).code).toBe(1);
    expect((await cli(['system', 'factory-reset'])).code).toBe(2);
    expect((await cli(['version'])).out).toMatch(/^pqgate \S+\ndaemon \S+ \(node v\d+.*data plane userspace-esp, configuration from the store\)\n$/);
  });
});

describe('pqgate daemon --db', () => {
  it('creates the database on first start (from --initial-config), serves the admin and web sockets, reloads on SIGHUP, stops on SIGTERM', async () => {
    const dir = join(rig.dir, 'd');
    const db = join(dir, 'data', 'pqgate.db');
    const sock = join(dir, 'run', 'ctl.sock');
    const web = join(dir, 'web', 'web.sock');
    const initial = file('initial.json', JSON.stringify({ version: 1, listen: ['127.0.0.1'], ike_port: 0, natt_port: 0, log_level: 'info', tunnels: [gwTunnel(0, { local_addr: '127.0.0.1', remote_addr: '127.0.0.2', start_action: 'none', mode: 'policy', inside_addr: undefined })] }));
    const signals = new EventEmitter();
    let out = '';
    const io: CliIo = { out: (s) => void (out += s), err: (s) => void (out += s), env: {}, signals: signals as never };
    const done = main(['daemon', '--db', db, '--initial-config', initial, '--socket', sock, '--web-socket', web, '--data-plane', 'recording', '--syslog', 'off', '--log-format', 'json'], io);
    await until(() => existsSync(sock) && existsSync(web), 10_000, 'sockets');
    const ready = out.trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.msg === 'ready');
    expect(ready).toMatchObject({ configuration: db, revision: 1, controlSocket: sock, webSocket: web, syslog: 'off' });
    expect(ready.next).toContain('first boot');
    expect(statSync(db).mode & 0o777).toBe(0o600);
    const c = async (args: string[]) => {
      let o = '';
      let e = '';
      const code = await main([...args, '--socket', sock], { out: (s) => void (o += s), err: (s) => void (e += s), env: {} });
      return { code, out: o, err: e };
    };
    expect((await c(['config', 'get'])).out).toContain('"name": "a"');
    expect((await c(['version'])).out).toContain('data plane recording, configuration from the store');
    signals.emit('SIGHUP', 'SIGHUP');
    await until(() => out.includes('"msg":"reconciled"') && out.includes('"reason":"SIGHUP"'), 5000, 'SIGHUP reconcile');
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await done).toBe(0);
    expect(existsSync(sock)).toBe(false);
    expect(existsSync(web)).toBe(false);
    expect(out.trim().split('\n').map((l) => JSON.parse(l)).at(-1).msg).toBe('stopped');
    expect((await main(['daemon', '--config', initial, '--initial-config', initial], io))).toBe(2);
    expect((await main(['daemon', '--db', db, '--config', initial], io))).toBe(2);
  });

  it('--config FILE is stateless: reload re-reads the file, store methods answer ERR_NO_STORE, events are kept in memory', async () => {
    const dir = join(rig.dir, 'f');
    const sock = join(dir, 'run', 'ctl.sock');
    const doc = { version: 1, listen: ['127.0.0.1'], ike_port: 0, natt_port: 0, control_socket: join(dir, 'elsewhere.sock'), tunnels: [gwTunnel(0, { local_addr: '127.0.0.1', remote_addr: '127.0.0.2', start_action: 'none', mode: 'policy', inside_addr: undefined })] };
    const f = file('stateless.json', JSON.stringify(doc));
    const signals = new EventEmitter();
    let out = '';
    const done = main(['daemon', '--config', f, '--socket', sock, '--data-plane', 'recording', '--syslog', 'off'], { out: (s) => void (out += s), err: (s) => void (out += s), env: {}, signals: signals as never });
    await until(() => existsSync(sock), 10_000, 'socket');
    expect(existsSync(join(dir, 'run-web'))).toBe(false); // no web socket without a store
    const c = async (args: string[]) => {
      let o = '';
      let e = '';
      const code = await main([...args, '--socket', sock], { out: (s) => void (o += s), err: (s) => void (e += s), env: {} });
      return { code, out: o, err: e };
    };
    writeFileSync(f, JSON.stringify({ ...doc, tunnels: [...doc.tunnels, gwTunnel(1, { local_addr: '127.0.0.1', remote_addr: '127.0.0.3', start_action: 'none', mode: 'policy', inside_addr: undefined })] }));
    // The command line's --socket is not a restart-only change of the file.
    expect(await c(['reload'])).toMatchObject({ code: 0, out: 'reloaded: 2 tunnels (a, b)\n' });
    const g = await c(['config', 'get']);
    expect(g.code).toBe(1);
    expect(g.err).toContain('ERR_NO_STORE');
    expect((await c(['logs'])).out).toMatch(/daemon started \(configuration file, 1 tunnel\)/);
    expect((await c(['version'])).out).toContain('configuration from a file');
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await done).toBe(0);
  });
});
