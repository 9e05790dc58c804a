/**
 * Issue 9: attacks on the web admin, each against the running HTTPS server
 * (webui/server.ts) and the fake daemon, complementing security.test.ts:
 *
 *   - session fixation: a planted id is never adopted, the id rotates at
 *     setup and at login, an attacker's copy of the pre-login id stays
 *     anonymous on pages and on the API;
 *   - CSRF: every state-changing route refuses the token of another session
 *     and an `Origin: null` request;
 *   - brute force: the per-account lockout holds across source addresses,
 *     the per-address budget is per address (another address still gets
 *     in) and X-Forwarded-For does not reset it;
 *   - upload names: traversal, absolute paths, NUL bytes, backslashes on
 *     every upload route and in the generic multipart parser (the firmware
 *     upload uses the same); symlinks planted where the server writes;
 *   - oversized bodies: a declared length over the limit gets 413 before the
 *     body is sent, and the connection is closed;
 *   - slow-loris: many silent and trickling connections from one address
 *     are cut (per-address limit at once, handshake/header timeouts soon)
 *     while a normal client is served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as netConnect, type Socket } from 'node:net';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startHarness, ADMIN, PASSWORD, WebClient, type Harness } from './helpers.js';
import { SESSION_COOKIE } from '../../webui/security.js';
import { selfSignedCertificate } from '../../webui/tls.js';
import { parseMultipart, checkFileName, MultipartError } from '../../webui/multipart.js';
import { PUBLIC_PATHS } from '../../webui/app.js';
import { addressGroup, LoginGuard } from '../../webui/sessions.js';
import type { Express } from 'express';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

let h: Harness;
let admin: WebClient;

beforeAll(async () => {
  h = await startHarness({
    app: { limits: { backupBytes: 16 * 1024, certBytes: 16 * 1024, jsonBytes: 32 * 1024, formBytes: 16 * 1024 }, loginGuard: { ipMaxAttempts: 1000 } },
  });
  admin = h.client();
  await admin.setup();
});
afterAll(async () => {
  await h?.close();
});

function changingRoutes(app: Express): { method: string; path: string }[] {
  const stack = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router.stack;
  return stack
    .filter((l) => l.route)
    .flatMap((l) => Object.keys(l.route!.methods).map((m) => ({ method: m.toUpperCase(), path: l.route!.path })))
    .filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method));
}

describe('session fixation', () => {
  it('setup and login each issue a new id; a planted id is replaced; the pre-login id stays anonymous for pages and API', async () => {
    const hh = await startHarness();
    try {
      const v = hh.client();
      v.cookies.set(SESSION_COOKIE, 'f'.repeat(43));
      await v.get('/setup');
      const preSetup = v.cookies.get(SESSION_COOKIE)!;
      expect(preSetup).not.toBe('f'.repeat(43));
      expect((await v.post('/setup', { name: ADMIN, password: PASSWORD, password2: PASSWORD })).status).toBe(303);
      const postSetup = v.cookies.get(SESSION_COOKIE);
      // Setup either logs in with a fresh id or sends to the login page: never with the pre-setup id.
      expect(postSetup).not.toBe(preSetup);
      const w = hh.client();
      await w.get('/login');
      const preLogin = w.cookies.get(SESSION_COOKIE)!;
      // The attacker learnt preLogin (e.g. planted it in the victim's browser) before the victim logs in.
      expect((await w.post('/login', { name: ADMIN, password: PASSWORD })).status).toBe(303);
      expect(w.cookies.get(SESSION_COOKIE)).not.toBe(preLogin);
      const attacker = hh.client();
      for (const id of [preSetup, preLogin]) {
        attacker.cookies.set(SESSION_COOKIE, id);
        expect((await attacker.get('/')).headers.location).toBe('/login');
        expect((await attacker.api('GET', '/api/v1/status')).status).toBe(401);
      }
      // Two cookies of the same name (one planted for a parent path or domain): none of them is adopted as logged in.
      const dup = await hh.client().request('GET', '/', { anonymous: true, headers: { cookie: `${SESSION_COOKIE}=${preLogin}; ${SESSION_COOKIE}=${'a'.repeat(43)}` } });
      expect(dup.headers.location).toBe('/login');
    } finally {
      await hh.close();
    }
  });
});

describe('CSRF', () => {
  it('every state-changing route refuses the CSRF token of another session and Origin: null, before the daemon is asked', async () => {
    const other = h.client();
    await other.login();
    const me = h.client();
    await me.login();
    expect(other.csrfToken).not.toBe(me.csrfToken);
    const routes = changingRoutes(h.server.app).filter((r) => !PUBLIC_PATHS.has(r.path));
    expect(routes.length).toBeGreaterThan(10);
    const calls = h.daemon.calls.length;
    for (const r of routes) {
      const path = r.path.replace(/:(\w+)/g, (_m, k: string) => (k === 'handle' ? '0123456789abcdef' : k === 'id' ? '1' : 'cf1'));
      const stolen = await me.request(r.method, path, { form: { _csrf: other.csrfToken }, csrf: false });
      expect(stolen.status, `${r.method} ${path} with another session's token`).toBe(403);
      const nullOrigin = await me.request(r.method, path, { form: {}, headers: { origin: 'null' } });
      expect(nullOrigin.status, `${r.method} ${path} with Origin: null`).toBe(403);
    }
    const changing = h.daemon.calls.slice(calls).filter((c) => !/^(status|users\.setupRequired|config\.pending|version)/.test(c.method));
    expect(changing).toEqual([]);
  });
});

describe('brute force', () => {
  it('the account lockout holds whichever address the guesses come from; the per-address budget is per address and ignores X-Forwarded-For', async () => {
    const hh = await startHarness({ app: { loginGuard: { maxFailures: 3, lockoutMs: 60_000, ipMaxAttempts: 4, ipWindowMs: 60_000 } } });
    try {
      await hh.client().setup();
      // Three failures for "admin" from three addresses lock the account, even for the right password from a fourth.
      for (const [i, addr] of ['127.0.0.2', '127.0.0.3', '127.0.0.4'].entries()) {
        const c = hh.client();
        await c.request('GET', '/login', { localAddress: addr });
        expect((await c.request('POST', '/login', { form: { name: ADMIN, password: `wrong ${i}` }, localAddress: addr })).status).toBe(401);
      }
      const victim = hh.client();
      await victim.request('GET', '/login', { localAddress: '127.0.0.5' });
      const locked = await victim.request('POST', '/login', { form: { name: ADMIN, password: PASSWORD }, localAddress: '127.0.0.5' });
      expect(locked.status).toBe(429);
      expect(locked.text).toContain('Too many failed attempts for this user');
      // One address spends its budget guessing other names; rotating X-Forwarded-For does not help it.
      const g = hh.client();
      await g.request('GET', '/login', { localAddress: '127.0.0.6' });
      for (let i = 0; i < 4; i++) {
        const r = await g.request('POST', '/login', { form: { name: `guess${i}`, password: 'x' }, localAddress: '127.0.0.6', headers: { 'x-forwarded-for': `198.51.100.${i}` } });
        expect(r.status).toBe(401);
      }
      const blocked = await g.request('POST', '/login', { form: { name: 'guess9', password: 'x' }, localAddress: '127.0.0.6', headers: { 'x-forwarded-for': '198.51.100.99', forwarded: 'for=198.51.100.99' } });
      expect(blocked.status).toBe(429);
      expect(blocked.text).toContain('Too many login attempts from your address');
      // Another address is unaffected by that budget (it is not global).
      const fresh = hh.client();
      await fresh.request('GET', '/login', { localAddress: '127.0.0.7' });
      expect((await fresh.request('POST', '/login', { form: { name: 'guess0', password: 'x' }, localAddress: '127.0.0.7' })).status).toBe(401);
    } finally {
      await hh.close();
    }
  });
});

const BAD_NAMES = ['../../etc/passwd', '/etc/passwd', '..\\..\\windows\\win.ini', 'C:\\boot.ini', 'a\u0000.json', 'backup.json\u0000.png', '..', 'x/../../y.json', '....//y.json', 'dir/b.json', 'a\nb.json'];

describe('upload names', () => {
  it('the generic multipart parser refuses traversal, absolute paths, NUL and control characters, separators', () => {
    for (const n of BAD_NAMES) {
      expect(() => checkFileName(n), JSON.stringify(n)).toThrow(MultipartError);
      const body = Buffer.concat([
        Buffer.from(`--b\r\nContent-Disposition: form-data; name="f"; filename="${n.replace(/[\\"]/g, (c) => `\\${c}`)}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
        Buffer.from('data'),
        Buffer.from('\r\n--b--\r\n'),
      ]);
      expect(() => parseMultipart(body, 'multipart/form-data; boundary=b'), JSON.stringify(n)).toThrow(/file name not allowed|malformed/);
    }
    expect(checkFileName('backup-2026-11-27.json')).toBe('backup-2026-11-27.json');
  });

  it('backup restore (page and API) and certificate upload refuse every bad name and change nothing', async () => {
    const revs = h.daemon.store.history().length;
    const backup = (await admin.get('/maintenance/backup')).text;
    const cert = selfSignedCertificate(['localhost']);
    const before = h.server.certificate();
    for (const filename of BAD_NAMES) {
      const page = await admin.request('POST', '/maintenance/restore', { multipart: { files: { backup: { filename, data: backup } } } });
      expect(page.status, `page ${JSON.stringify(filename)}`).toBe(400);
      const api = await admin.request('POST', '/api/v1/config/restore', { multipart: { files: { backup: { filename, data: backup } } }, headers: { accept: 'application/json' } });
      expect(api.status, `api ${JSON.stringify(filename)}`).toBe(400);
      const tls = await admin.request('POST', '/maintenance/tls', { multipart: { files: { cert: { filename, data: cert.cert }, key: { filename: 'k.pem', data: cert.key } } } });
      expect(tls.status, `tls ${JSON.stringify(filename)}`).toBe(400);
    }
    expect(h.daemon.store.history().length).toBe(revs);
    expect(h.server.certificate()).toBe(before);
  });

  it('symlinks planted where the server writes are replaced, never written through', async () => {
    const victims = join(tmpdir(), `pqg-victim-${process.pid}`);
    mkdirSync(victims, { recursive: true });
    try {
      const tlsDir = join(h.dataDir, 'tls');
      mkdirSync(tlsDir, { recursive: true });
      const targets = ['cert.pem', 'cert.pem.tmp', 'key.pem', 'key.pem.tmp'].map((n) => {
        const victim = join(victims, n);
        writeFileSync(victim, 'untouched');
        rmSync(join(tlsDir, n), { force: true });
        symlinkSync(victim, join(tlsDir, n));
        return victim;
      });
      const cert = selfSignedCertificate(['localhost', '127.0.0.1']);
      const r = await admin.request('POST', '/maintenance/tls', { multipart: { files: { cert: { filename: 'c.pem', data: cert.cert }, key: { filename: 'k.pem', data: cert.key } } } });
      expect(r.status).toBe(303);
      for (const v of targets) expect(readFileSync(v, 'utf8')).toBe('untouched');
      for (const n of ['cert.pem', 'key.pem']) expect(lstatSync(join(tlsDir, n)).isSymbolicLink()).toBe(false);
      expect(readFileSync(join(tlsDir, 'cert.pem'), 'utf8')).toBe(cert.cert);
      expect(existsSync(join(tlsDir, 'cert.pem.tmp'))).toBe(false);
    } finally {
      rmSync(victims, { recursive: true, force: true });
    }
  });
});

/** A raw TLS connection to the admin port (for requests no HTTP client would send). */
function rawTls(server: Harness['server'], localAddress?: string): Promise<TLSSocket> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: url.hostname, port: Number(url.port), ca: server.certificate(), servername: 'localhost', ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes (or `ms` passes), and whether it closed. */
function collect(s: Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    const done = (closed: boolean) => {
      clearTimeout(t);
      resolve({ text, closed });
    };
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.once('close', () => done(true));
    s.once('error', () => {});
    const t = setTimeout(() => done(false), ms);
  });
}

describe('oversized bodies', () => {
  it('a declared length over the limit gets 413 before the body is sent, and the connection is closed (form, JSON, multipart)', async () => {
    const cookie = `${SESSION_COOKIE}=${admin.cookies.get(SESSION_COOKIE)}`;
    for (const [path, type] of [
      ['/tunnels/cf1/edit', 'application/x-www-form-urlencoded'],
      ['/api/v1/tunnels/cf1', 'application/json'],
      ['/maintenance/restore', 'multipart/form-data; boundary=x'],
    ] as const) {
      const s = await rawTls(h.server);
      const got = collect(s, 3000);
      const declared = 50 * 1024 * 1024;
      s.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nCookie: ${cookie}\r\nOrigin: ${h.server.url}\r\nContent-Type: ${type}\r\nContent-Length: ${declared}\r\n\r\n`);
      s.write(Buffer.alloc(1024, 0x61)); // 1 KiB of the promised 50 MiB, then nothing
      const r = await got;
      expect(r.text, path).toMatch(/^HTTP\/1\.1 413 /);
      expect(r.text.toLowerCase()).toContain('connection: close');
      expect(r.closed, `${path}: connection closed`).toBe(true);
      s.destroy();
    }
  });

  it('a chunked body is answered with 413 as soon as it passes the limit, without waiting for its end', async () => {
    const cookie = `${SESSION_COOKIE}=${admin.cookies.get(SESSION_COOKIE)}`;
    for (const [path, type, limit] of [
      ['/api/v1/tunnels/cf1', 'application/json', 32 * 1024],
      ['/maintenance/restore', 'multipart/form-data; boundary=x', 32 * 1024],
    ] as const) {
      const s = await rawTls(h.server);
      const got = collect(s, 3000);
      s.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nCookie: ${cookie}\r\nOrigin: ${h.server.url}\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = Buffer.alloc(8192, 0x20);
      for (let sent = 0; sent <= limit + 16 * 1024; sent += chunk.length) s.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
      // No terminating chunk: the body never ends.
      const r = await got;
      expect(r.text, path).toMatch(/^HTTP\/1\.1 413 /);
      expect(r.closed, `${path}: connection closed`).toBe(true);
      s.destroy();
    }
  });
});

describe('slow-loris', () => {
  it('silent and trickling connections from one address are cut while a normal client from another address is served', async () => {
    const limits = { handshakeTimeoutMs: 1000, headersTimeoutMs: 1200, requestTimeoutMs: 3000, checkIntervalMs: 200, idleTimeoutMs: 5000, maxPerAddress: 8 };
    const hh = await startHarness({ connections: limits });
    try {
      await hh.client().setup();
      const url = new URL(hh.server.url);
      const attacker = '127.0.0.9';
      // 10 connections that never start TLS, from one address: 8 are held, 2 are closed at once.
      const silent: { s: Socket; r: Promise<{ text: string; closed: boolean }>; at: number }[] = [];
      for (let i = 0; i < 10; i++) {
        const s = netConnect({ host: url.hostname, port: Number(url.port), localAddress: attacker });
        await new Promise((r) => s.once('connect', r));
        silent.push({ s, r: collect(s, 4000), at: Date.now() });
      }
      await wait(150);
      expect(silent.filter((x) => x.s.destroyed || x.s.readyState === 'closed').length).toBeGreaterThanOrEqual(2);
      // A normal client from another address is served meanwhile.
      const normal = hh.client();
      const ok = await normal.request('GET', '/login', { localAddress: '127.0.0.10' });
      expect(ok.status).toBe(200);
      // Trickling TLS connections from a second attacking address: a header line every 300 ms, never finishing.
      const trickle: { s: TLSSocket; r: Promise<{ text: string; closed: boolean }>; timer: NodeJS.Timeout }[] = [];
      for (let i = 0; i < 4; i++) {
        const s = await rawTls(hh.server, '127.0.0.11');
        const r = collect(s, 5000);
        s.write('GET /login HTTP/1.1\r\nHost: localhost\r\n');
        const timer = setInterval(() => !s.destroyed && s.write(`X-Slow-${i}: a\r\n`), 300);
        trickle.push({ s, r, timer });
      }
      // Every silent connection is closed by the handshake timeout, every trickling one by the header timeout.
      const silentDone = await Promise.all(silent.map((x) => x.r));
      expect(silentDone.every((x) => x.closed)).toBe(true);
      const trickleDone = await Promise.all(trickle.map((x) => x.r));
      for (const t of trickle) clearInterval(t.timer);
      expect(trickleDone.every((x) => x.closed)).toBe(true);
      expect(trickleDone.every((x) => !x.text.includes('200 OK'))).toBe(true);
      // The attacking address can connect again afterwards (the per-address count went back down).
      const again = hh.client();
      expect((await again.request('GET', '/login', { localAddress: attacker })).status).toBe(200);
      for (const x of [...silent.map((y) => y.s), ...trickle.map((y) => y.s)]) x.destroy();
    } finally {
      await hh.close();
    }
  }, 20_000);
});

describe('request body deadlines', () => {
  it('an ordinary body must arrive within requestTimeoutMs; a firmware upload may take longer but must keep a minimum rate', async () => {
    const limits = { requestTimeoutMs: 1500, uploadTimeoutMs: 20_000, uploadMinBytesPerSec: 1000, idleTimeoutMs: 10_000, checkIntervalMs: 200 };
    const hh = await startHarness({ connections: limits });
    try {
      await hh.client().setup();
      const trickle = async (path: string, ctype: string, bytesPerTick: number, length = 10_000_000) => {
        const s = await rawTls(hh.server);
        const r = collect(s, 6000);
        const t0 = Date.now();
        let closedAt = 0;
        s.once('close', () => (closedAt = Date.now() - t0));
        s.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${ctype}\r\nContent-Length: ${length}\r\n\r\n`);
        const timer = setInterval(() => !s.destroyed && s.write(Buffer.alloc(bytesPerTick, 0x41)), 100);
        return { s, r, timer, closedAt: () => closedAt };
      };
      // Ordinary form post trickling fast enough for an upload, but it is not one: cut at requestTimeoutMs.
      const form = await trickle('/login', 'application/x-www-form-urlencoded', 10, 50_000);
      // Firmware upload at ~5 KB/s (above the 1 KB/s minimum): still open after twice requestTimeoutMs.
      const fast = await trickle('/api/v1/firmware', 'application/octet-stream', 500);
      // Firmware upload at ~100 B/s: cut at the first rate check.
      const slow = await trickle('/api/v1/firmware', 'application/octet-stream', 10);
      await wait(3500);
      expect(form.s.destroyed || form.closedAt() > 0, 'ordinary request cut').toBe(true);
      expect(form.closedAt()).toBeGreaterThanOrEqual(1000);
      expect(slow.s.destroyed || slow.closedAt() > 0, 'trickling upload cut').toBe(true);
      expect(fast.closedAt(), 'upload above the minimum rate kept').toBe(0);
      for (const x of [form, fast, slow]) {
        clearInterval(x.timer);
        x.s.destroy();
      }
    } finally {
      await hh.close();
    }
  }, 20_000);
});

describe('per-address limits count an IPv6 client by its /64', () => {
  it('groups addresses as the limits see them', () => {
    expect(addressGroup('192.0.2.7')).toBe('192.0.2.7');
    expect(addressGroup('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressGroup('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:DB8:0001:0002:0:0:0:1')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressGroup('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressGroup('::1')).toBe('0:0:0:0::/64');
    expect(addressGroup('2001:db8:1:3::1')).not.toBe(addressGroup('2001:db8:1:2::1'));
  });

  it('the login rate limit spends one budget across a /64', () => {
    const g = new LoginGuard({ ipMaxAttempts: 3, ipWindowMs: 60_000, maxFailures: 100 });
    for (let i = 1; i <= 3; i++) expect(g.attempt(`u${i}`, `2001:db8:1:2::${i}`).ok).toBe(true);
    expect(g.attempt('u9', '2001:db8:1:2:ffff::9').ok).toBe(false);
    expect(g.attempt('u9', '2001:db8:1:3::9').ok).toBe(true);
  });
});
