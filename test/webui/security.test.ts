/**
 * Security properties of the web admin, checked against the running HTTPS
 * server and the fake daemon:
 *   - the route table (express's own, app.router.stack) is enumerated: every
 *     route except login/setup/static refuses a request without a session,
 *     and every state-changing route refuses a cross-site request (no or a
 *     wrong CSRF token, a foreign Origin, Sec-Fetch-Site cross-site, a
 *     foreign Referer) without reaching the daemon;
 *   - login lockout and rate limiting; no session fixation;
 *   - secrets (PSKs, passwords, API tokens, private keys) absent from every
 *     response; API tokens stored hashed;
 *   - path traversal and oversized bodies/uploads refused;
 *   - security headers, cookie attributes, CSP-clean pages, HTTP→HTTPS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { startHarness, formFields, CF_FORM, ADMIN, PASSWORD, WebClient, type Harness, type Resp } from './helpers.js';
import { PUBLIC_PATHS } from '../../webui/app.js';
import { SESSION_COOKIE } from '../../webui/security.js';
import { selfSignedCertificate } from '../../webui/tls.js';
import type { Express } from 'express';

interface RouteEntry {
  method: string;
  path: string;
}

/** Every route in express's route table. */
function routesOf(app: Express): RouteEntry[] {
  const stack = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router.stack;
  return stack.filter((l) => l.route).flatMap((l) => Object.keys(l.route!.methods).map((m) => ({ method: m.toUpperCase(), path: l.route!.path })));
}

const SAMPLE: Record<string, string> = { tunnel: 'cf1', action: 'rekey-child', name: 'cf1', id: '1', handle: '0123456789abcdef', file: 'app.js' };
const fill = (path: string) => path.replace(/:(\w+)/g, (_m, k: string) => SAMPLE[k] ?? 'x');
const changing = (m: string) => !['GET', 'HEAD', 'OPTIONS'].includes(m);
const isPublic = (r: RouteEntry) => PUBLIC_PATHS.has(r.path) || r.path.startsWith('/static/');

/** Daemon methods that change something (everything except reads). */
const READS = new Set(['version', 'status', 'status.tunnels', 'metrics', 'config.get', 'config.validate', 'config.presets', 'config.export', 'config.history', 'config.diff', 'config.pending', 'certs.list', 'users.list', 'users.setupRequired', 'logs.events', 'logs.audit', 'system.info']);

let h: Harness;
let c: WebClient;
let routes: RouteEntry[];

beforeAll(async () => {
  // The per-address login budget is generous here: every client of this file is 127.0.0.1 (the limiter has its own test).
  h = await startHarness({ app: { limits: { backupBytes: 16 * 1024, certBytes: 16 * 1024, jsonBytes: 32 * 1024, formBytes: 16 * 1024 }, loginGuard: { ipMaxAttempts: 1000 } } });
  c = h.client();
  routes = routesOf(h.server.app);
});
afterAll(async () => {
  await h?.close();
});

describe('route table', () => {
  it('has the pages and the API, and only login, setup and static assets are public', () => {
    expect(routes.length).toBeGreaterThan(50);
    expect(routes.filter(isPublic).map((r) => `${r.method} ${r.path}`).sort()).toEqual(['GET /login', 'GET /setup', 'GET /static/:file', 'POST /login', 'POST /setup']);
    expect(routes.filter((r) => changing(r.method)).length).toBeGreaterThan(25);
  });

  it('refuses every non-public route without a session, before the daemon is asked to change anything', async () => {
    const anon = h.client();
    const callsBefore = h.daemon.calls.length;
    for (const r of routes) {
      if (isPublic(r)) continue;
      const res = await anon.request(r.method, fill(r.path), r.method === 'GET' ? {} : { form: { _csrf: 'x' } });
      if (r.method === 'GET' && !r.path.startsWith('/api/')) {
        expect(res.status, `${r.method} ${r.path}`).toBe(303);
        expect(res.headers.location).toBe('/login');
      } else expect(res.status, `${r.method} ${r.path}`).toBe(401);
    }
    expect(h.daemon.calls.slice(callsBefore)).toEqual([]);
  });

  it('refuses every non-public route with an invalid API token', async () => {
    const anon = h.client();
    for (const r of routes.filter((x) => !isPublic(x))) {
      const res = await anon.request(r.method, fill(r.path), { headers: { authorization: 'Bearer pqg_not-a-real-token-at-all' }, csrf: false });
      expect(res.status, `${r.method} ${r.path}`).toBe(401);
    }
  });

  it('serves the public routes without a session', async () => {
    const anon = h.client();
    expect((await anon.get('/static/app.js')).status).toBe(200);
    expect((await anon.get('/static/app.css')).status).toBe(200);
    expect((await anon.get('/setup')).status).toBe(200); // no admin yet
  });
});

describe('cross-site requests', () => {
  beforeAll(async () => {
    expect((await c.setup()).status).toBe(303);
    await c.get('/');
    const page = await c.get('/tunnels/new?preset=cloudflare');
    expect((await c.post('/tunnels/new', { ...formFields(page.text, 'tunnel-form'), ...CF_FORM, trial: '' })).status).toBe(303);
  });

  const attacks: [string, (r: RouteEntry) => Parameters<WebClient['request']>[2]][] = [
    ['no CSRF token', () => ({ form: { confirm: 'FACTORY RESET' }, csrf: false })],
    ['a wrong CSRF token', () => ({ form: { _csrf: 'A'.repeat(43), confirm: 'FACTORY RESET' } })],
    ['a foreign Origin', () => ({ form: { confirm: 'FACTORY RESET' }, headers: { origin: 'https://evil.example' } })],
    ['Origin null', () => ({ form: { confirm: 'FACTORY RESET' }, headers: { origin: 'null' } })],
    ['Sec-Fetch-Site: cross-site without Origin', () => ({ form: { confirm: 'FACTORY RESET' }, noOrigin: true, headers: { 'sec-fetch-site': 'cross-site' } })],
    ['a foreign Referer without Origin', () => ({ form: { confirm: 'FACTORY RESET' }, noOrigin: true, headers: { referer: 'https://evil.example/page' } })],
  ];

  for (const [what, opts] of attacks)
    it(`refuses every state-changing route with ${what}`, async () => {
      const revisions = h.daemon.store.history().length;
      const callsBefore = h.daemon.calls.length;
      const targets = routes.filter((r) => changing(r.method));
      for (const r of targets) {
        const res = await c.request(r.method, fill(r.path), opts(r));
        expect(res.status, `${r.method} ${r.path}`).toBe(403);
        expect(res.text).toMatch(/CSRF|cross-site|Referer/);
      }
      const mutating = h.daemon.calls.slice(callsBefore).filter((x) => !READS.has(x.method));
      expect(mutating).toEqual([]);
      expect(h.daemon.store.history().length).toBe(revisions);
      expect(h.daemon.factoryResets).toBe(0);
      expect((await c.get('/')).status).toBe(200); // still logged in (logout was refused too)
    });

  it('accepts the same requests from our own origin with the token (the check is not "refuse everything")', async () => {
    expect((await c.post('/sa/cf1/rekey-child')).status).toBe(303);
    const r = await c.api('PUT', '/api/v1/tunnels/cf1', { tunnel: { mss: 1350 } });
    expect(r.status).toBe(200);
    expect(h.daemon.store.getDocument().tunnels[0]!.mss).toBe(1350);
  });

  it('API tokens need no CSRF token but a foreign Origin is still refused', async () => {
    const created = await c.api('POST', '/api/v1/account/tokens', { name: 'ci' });
    expect(created.status).toBe(201);
    const token = created.json().token as string;
    const bot = h.client();
    const auth = { authorization: `Bearer ${token}` };
    expect((await bot.request('GET', '/api/v1/status', { headers: auth })).status).toBe(200);
    const put = await bot.request('PUT', '/api/v1/tunnels/cf1', { json: { tunnel: { mss: 1340 } }, headers: auth, noOrigin: true, csrf: false });
    expect(put.status).toBe(200);
    expect(put.json().revision.author).toBe('admin (API token ci)');
    const evil = await bot.request('PUT', '/api/v1/tunnels/cf1', { json: { tunnel: { mss: 1330 } }, headers: { ...auth, origin: 'https://evil.example' }, csrf: false });
    expect(evil.status).toBe(403);
    expect(h.daemon.store.getDocument().tunnels[0]!.mss).toBe(1340);
    const id = created.json().id as string;
    expect((await c.api('DELETE', `/api/v1/account/tokens/${id}`)).status).toBe(200);
    expect((await bot.request('GET', '/api/v1/status', { headers: auth })).status).toBe(401);
  });

  it('the login and setup forms need their CSRF token too', async () => {
    const anon = h.client();
    await anon.get('/');
    const r = await anon.request('POST', '/login', { form: { name: ADMIN, password: PASSWORD }, csrf: false });
    expect(r.status).toBe(403);
    expect(anon.cookies.size).toBe(0); // no session was created
    const noSession = await anon.request('POST', '/login', { form: { name: ADMIN, password: PASSWORD, _csrf: 'guess' } });
    expect(noSession.status).toBe(403);
  });
});

describe('login protection', () => {
  it('locks a user name after repeated failures, even against the right password, then lets it in again', async () => {
    // A clock of our own: the lockout must not run out while a loaded machine serves the requests.
    let clock = Date.now();
    const hh = await startHarness({ app: { now: () => clock, loginGuard: { maxFailures: 3, lockoutMs: 1500, ipMaxAttempts: 100 } } });
    try {
      const a = hh.client();
      await a.setup();
      const b = hh.client();
      for (let i = 0; i < 3; i++) expect((await b.login(ADMIN, `wrong password ${i}`)).status).toBe(401);
      const locked = await b.login(ADMIN, PASSWORD);
      expect(locked.status).toBe(429);
      expect(locked.text).toContain('Too many failed attempts for this user');
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
      // Unknown names lock the same way: the lock does not reveal which names exist.
      for (let i = 0; i < 3; i++) expect((await b.login('nobody-here', `x${i}`)).status).toBe(401);
      expect((await b.login('nobody-here', 'x')).status).toBe(429);
      const verifies = hh.daemon.calls.filter((x) => x.method === 'users.verify').length;
      await b.login(ADMIN, PASSWORD);
      expect(hh.daemon.calls.filter((x) => x.method === 'users.verify').length).toBe(verifies); // not even asked
      clock += 1600;
      expect((await b.login(ADMIN, PASSWORD)).status).toBe(303);
    } finally {
      await hh.close();
    }
  });

  it('rate-limits login attempts per source address', async () => {
    const hh = await startHarness({ app: { loginGuard: { maxFailures: 100, ipMaxAttempts: 5, ipWindowMs: 60_000 } } });
    try {
      await hh.client().setup();
      const b = hh.client();
      for (let i = 0; i < 5; i++) expect((await b.login(`user${i}`, 'wrong')).status).toBe(401);
      const r = await b.login(ADMIN, PASSWORD);
      expect(r.status).toBe(429);
      expect(r.text).toContain('Too many login attempts from your address');
      // Guessing API tokens spends the same budget.
      const t = await b.request('GET', '/api/v1/status', { headers: { authorization: 'Bearer pqg_guess' } });
      expect(t.status).toBe(429);
    } finally {
      await hh.close();
    }
  });
});

describe('sessions', () => {
  it('issues a new session id at login: a planted or pre-login id is worthless', async () => {
    const v = h.client();
    v.cookies.set(SESSION_COOKIE, 'attacker-chosen-session-id-0123456789');
    await v.get('/login');
    const planted = v.cookies.get(SESSION_COOKIE);
    expect(planted).not.toBe('attacker-chosen-session-id-0123456789'); // unknown ids are replaced
    const pre = planted!;
    expect((await v.post('/login', { name: ADMIN, password: PASSWORD })).status).toBe(303);
    const post = v.cookies.get(SESSION_COOKIE)!;
    expect(post).not.toBe(pre);
    const attacker = h.client();
    attacker.cookies.set(SESSION_COOKIE, pre);
    expect((await attacker.get('/')).headers.location).toBe('/login');
    attacker.cookies.set(SESSION_COOKIE, post);
    expect((await attacker.get('/')).status).toBe(200); // (the real cookie works, of course)
  });

  it('logout ends the session on the server', async () => {
    const v = h.client();
    await v.login();
    const cookie = v.cookies.get(SESSION_COOKIE)!;
    expect((await v.post('/logout')).status).toBe(303);
    const replay = h.client();
    replay.cookies.set(SESSION_COOKIE, cookie);
    expect((await replay.get('/')).headers.location).toBe('/login');
  });

  it('lists sessions and revokes another one', async () => {
    const other = h.client();
    await other.login();
    const acct = await c.get('/account');
    const handles = [...acct.text.matchAll(/<tr data-session="([0-9a-f]{16})">/g)].map((m) => m[1]!);
    expect(handles.length).toBeGreaterThanOrEqual(2);
    const mine = /<tr data-session="([0-9a-f]{16})"><td data-label="Session" class="mono">[0-9a-f]{8} <span class="badge">this one<\/span>/.exec(acct.text)![1];
    for (const hd of handles) if (hd !== mine) expect((await c.post(`/account/sessions/${hd}/revoke`)).status).toBe(303);
    expect((await other.get('/')).headers.location).toBe('/login');
    expect((await c.get('/')).status).toBe(200);
  });

  it('sets the session cookie HttpOnly, Secure, SameSite=Strict with the __Host- prefix', async () => {
    const v = h.client();
    const r = await v.get('/login');
    const sc = (r.headers['set-cookie'] ?? []).find((x) => x.startsWith(`${SESSION_COOKIE}=`));
    expect(sc).toBeDefined();
    expect(SESSION_COOKIE.startsWith('__Host-')).toBe(true);
    for (const attr of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) expect(sc).toContain(attr);
    expect(sc).not.toMatch(/Domain=/i);
  });
});

describe('secrets never leave', () => {
  const PSK2 = 'second-tunnel-psk-!<>&"-0123456789';
  const NEW_PASSWORD = 'a brand new password 42';
  let token = '';
  let tlsKey = '';

  it('after PSKs, a token, a certificate and a password change, no response carries any of them', async () => {
    const s = h.client();
    await s.login();
    // A second tunnel over the API, and a form re-render with a typed PSK (must not be echoed).
    expect((await s.api('PUT', '/api/v1/tunnels/site2', { tunnel: { remote_addr: '203.0.113.9', local_id: 'gw.example', psk: PSK2, mode: 'policy', local_ts: ['10.1.0.0/16'], remote_ts: ['10.2.0.0/16'], start_action: 'start' } })).status).toBe(200);
    const page = await s.get('/tunnels/new');
    const bad = await s.post('/tunnels/new', { ...formFields(page.text, 'tunnel-form'), name: 'bad', psk: PSK2 + 'typed', mss: '5' });
    expect(bad.status).toBe(422);
    const created = await s.post('/account/tokens', { name: 'ci2' });
    token = /<pre id="new-token">(pqg_[A-Za-z0-9_-]+)<\/pre>/.exec(created.text)![1]!;
    const cert = selfSignedCertificate(['localhost', '127.0.0.1']);
    tlsKey = cert.key;
    const up = await s.request('POST', '/maintenance/tls', { multipart: { files: { cert: { filename: 'c.pem', data: cert.cert }, key: { filename: 'k.pem', data: cert.key } } } });
    expect(up.status).toBe(303);
    expect((await s.post('/account/password', { current: PASSWORD, password: NEW_PASSWORD, password2: NEW_PASSWORD })).status).toBe(303);
    // Crawl every GET route, with the session and with the token.
    for (const r of routes.filter((x) => x.method === 'GET')) {
      await s.get(fill(r.path));
      if (r.path.startsWith('/api/')) await s.request('GET', fill(r.path), { headers: { authorization: `Bearer ${token}` }, anonymous: true });
    }
    await s.get('/tunnels/cf1/edit');
    await s.get('/tunnels/site2/edit');
    await s.get('/config/diff?from=1&to=6');
    await s.get('/logs?tunnel=site2');
    // The authorised door: a backup with keys needs the password and is the only place a PSK appears.
    const withKeys = await s.post('/maintenance/backup-secrets', { password: NEW_PASSWORD });
    expect(withKeys.status).toBe(200);
    expect(withKeys.text).toContain(JSON.stringify(PSK2)); // (so the grep below can find a PSK when one is there)
    await c.login(ADMIN, NEW_PASSWORD); // the password change ended c's session

    const keyBody = tlsKey.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    // Distinctive prefixes catch the secrets in any encoding (raw, JSON- or HTML-escaped).
    const secrets = [CF_FORM.psk, 'cloudflare-psk', 'second-tunnel-psk', PASSWORD, 'correct horse', NEW_PASSWORD, 'brand new password', token, token.slice(0, 20), keyBody.slice(0, 40), 'PRIVATE KEY'];
    const all = [...c.log, ...s.log].filter((r) => r !== withKeys && r !== created);
    expect(all.length).toBeGreaterThan(80);
    for (const r of all) for (const sec of secrets) expect(r.text.includes(sec), `${r.method} ${r.url} contains a secret`).toBe(false);
    // The token text was shown exactly once.
    expect(created.text).toContain(token);
  });

  it('stores API tokens only as hashes', () => {
    const file = readFileSync(join(h.dataDir, 'api-tokens.json'), 'utf8');
    expect(file).not.toContain(token);
    expect(file).toContain(createHash('sha256').update(token).digest('hex'));
  });
});

describe('uploads and paths', () => {
  let s: WebClient;
  beforeAll(async () => {
    s = h.client();
    await s.login(ADMIN, 'a brand new password 42');
  });

  it('static assets cannot be used to read other files', async () => {
    for (const p of ['/static/../package.json', '/static/..%2f..%2fpackage.json', '/static/%2e%2e%2fpackage.json', '/static/..%5c..%5cpackage.json', '/static/app.js%00.css', '/static/.%2e/webui/app.ts', '/static//etc/passwd', '/static/%2fetc%2fpasswd']) {
      const r = await s.request('GET', p, { rawPath: true });
      expect([303, 404], p).toContain(r.status);
      expect(r.text).not.toContain('"name": "pqgate"');
      expect(r.text).not.toContain('root:x:0:0');
      expect(r.text).not.toContain('createApp');
    }
  });

  it('refuses upload file names that climb directories, and changes nothing', async () => {
    const revs = h.daemon.store.history().length;
    const backup = (await s.get('/maintenance/backup')).text;
    for (const filename of ['../../../../tmp/pqg-pwned.json', '..\\..\\pqg-pwned.json', 'a/b.json', '..']) {
      const r = await s.request('POST', '/maintenance/restore', { multipart: { files: { backup: { filename, data: backup } } } });
      expect(r.status, filename).toBe(400);
      expect(r.text).toContain('file name not allowed');
    }
    const cert = selfSignedCertificate(['localhost']);
    const before = h.server.certificate();
    const t = await s.request('POST', '/maintenance/tls', { multipart: { files: { cert: { filename: '../../tls/cert.pem', data: cert.cert }, key: { filename: 'k.pem', data: cert.key } } } });
    expect(t.status).toBe(400);
    expect(h.server.certificate()).toBe(before);
    expect(existsSync('/tmp/pqg-pwned.json')).toBe(false);
    expect(h.daemon.store.history().length).toBe(revs);
  });

  it('refuses oversized uploads and bodies with 413, changing nothing', async () => {
    const revs = h.daemon.store.history().length;
    const doc = JSON.parse((await s.get('/maintenance/backup')).text);
    doc.tunnels[0].comment_padding = undefined;
    const big = JSON.stringify(doc) + ' '.repeat(17 * 1024); // over the 16 KiB backup limit
    const r1 = await s.request('POST', '/maintenance/restore', { multipart: { files: { backup: { filename: 'b.json', data: big } } } });
    expect(r1.status).toBe(413);
    const huge = ' '.repeat(200 * 1024); // over the multipart parser's own limit
    const r2 = await s.request('POST', '/maintenance/restore', { multipart: { files: { backup: { filename: 'b.json', data: huge } } } });
    expect(r2.status).toBe(413);
    const r3 = await s.api('PUT', '/api/v1/tunnels/cf1', { tunnel: { mss: 1300, local_id: 'x'.repeat(40 * 1024) } });
    expect(r3.status).toBe(413);
    const r4 = await s.post('/tunnels/cf1/edit', { comment: 'y'.repeat(20 * 1024) });
    expect(r4.status).toBe(413);
    const r5 = await s.request('POST', '/maintenance/tls', { multipart: { files: { cert: { filename: 'c.pem', data: 'z'.repeat(12 * 1024) }, key: { filename: 'k.pem', data: 'z'.repeat(8 * 1024) } } } });
    expect(r5.status).toBe(413);
    expect(h.daemon.store.history().length).toBe(revs);
  });
});

describe('headers and pages', () => {
  const check = (r: Resp) => {
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(r.headers['strict-transport-security']).toMatch(/^max-age=\d{8}/);
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('same-origin');
    expect(r.headers['x-powered-by']).toBeUndefined();
  };

  it('sends the security headers on pages, API, static files, errors and refusals', async () => {
    const anon = h.client();
    for (const r of [await c.get('/'), await c.get('/api/v1/status'), await anon.get('/static/app.js'), await c.get('/no/such/page'), await anon.get('/api/v1/status'), await anon.get('/login'), await c.request('POST', '/config/confirm', { csrf: false, form: {} })])
      check(r);
    expect((await c.get('/')).headers['cache-control']).toBe('no-store');
  });

  it('pages carry no inline script, inline style or event handler attribute (the CSP forbids them)', () => {
    const pages = [...c.log].filter((r) => String(r.headers['content-type']).startsWith('text/html'));
    expect(pages.length).toBeGreaterThan(20);
    for (const r of pages) {
      expect(r.text, r.url).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(r.text, r.url).not.toMatch(/\sstyle="/);
      expect(r.text, r.url).not.toMatch(/\son[a-z]+="/);
    }
  });

  it('escapes data from the daemon and the request', async () => {
    const r = await c.get('/tunnels/%3Cscript%3Ealert(1)%3C%2Fscript%3E/edit');
    expect(r.status).toBe(404);
    expect(r.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(r.text).not.toContain('<script>alert(1)</script>');
  });

  it('redirects plain HTTP to HTTPS', async () => {
    const hh = await startHarness({ httpRedirect: true });
    try {
      const res = await new Promise<{ status: number; location: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: hh.server.httpPort, path: '/tunnels?x=1', headers: { host: `127.0.0.1:${hh.server.httpPort}` } }, (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, location: String(r.headers.location) });
        });
        req.on('error', reject);
        req.end();
      });
      expect(res.status).toBe(308);
      expect(res.location).toBe(`https://127.0.0.1:${hh.server.port}/tunnels?x=1`);
    } finally {
      await hh.close();
    }
  });
});

describe('OpenAPI', () => {
  it('describes exactly the /api/v1 routes', async () => {
    const doc = (await c.api('GET', '/api/v1/openapi.json')).json();
    expect(doc.openapi).toMatch(/^3\./);
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    const served = routes
      .filter((r) => r.path.startsWith('/api/v1/'))
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`)
      .sort();
    expect(documented).toEqual(served);
  });
});
