/**
 * What the web admin does to start cheaply at boot (issue 7, docs/webui.md
 * "Start-up before the daemon"): the certificate maker runs only when there
 * is no certificate yet, and until express is loaded page requests get the
 * application's own "starting" page.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startWebServer } from '../../webui/server.js';
import { answerStarting } from '../../webui/starting.js';
import { WebClient } from './helpers.js';

const DIST_SERVER = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'dist', 'webui', 'server.js');

describe('web admin start-up', () => {
  // In a child process: this test process has loaded express already.
  it.skipIf(!existsSync(DIST_SERVER))('binds and says "listening" before express is loaded, and is ready with it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqg-web-lazy-'));
    try {
      const src = `
        import { createRequire } from 'node:module';
        import { startWebServer } from ${JSON.stringify(DIST_SERVER)};
        const cache = createRequire(import.meta.url).cache;
        const express = () => Object.keys(cache).some((k) => /node_modules[\\/]express[\\/]/.test(k));
        const seen = { atImport: express() };
        const s = await startWebServer({ socket: ${JSON.stringify(join(dir, 'none.sock'))}, listen: { host: '127.0.0.1', port: 0 }, dataDir: ${JSON.stringify(join(dir, 'web'))},
          log: (m) => { if (m === 'listening' || m === 'pages ready') seen[m] = express(); } });
        seen.returned = express() && typeof s.app === 'function';
        await s.close();
        console.log(JSON.stringify(seen));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ atImport: false, listening: false, 'pages ready': true, returned: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!existsSync(DIST_SERVER))('prepareCodeCache (the image build) evaluates what the server loads on first use, serves the first pages and leaves no files behind', () => {
    const src = `
      import { createRequire } from 'node:module';
      import { readdirSync } from 'node:fs';
      import { tmpdir } from 'node:os';
      import { prepareCodeCache } from ${JSON.stringify(DIST_SERVER)};
      const cache = createRequire(import.meta.url).cache;
      const express = () => Object.keys(cache).some((k) => /node_modules[\\/]express[\\/]/.test(k));
      const spools = () => readdirSync(tmpdir()).filter((f) => f.startsWith('pqgate-code-cache-')).length;
      const before = { express: express(), spools: spools() };
      const statuses = await prepareCodeCache();
      console.log(JSON.stringify({ before, statuses, after: { express: express(), spools: spools() } }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const o = JSON.parse(r.stdout) as { before: { express: boolean; spools: number }; statuses: number[]; after: { express: boolean; spools: number } };
    expect(o.before.express).toBe(false);
    // The first pages were served: /login → /setup (first boot), /setup, /login (users exist).
    expect(o.statuses).toEqual([303, 200, 200]);
    expect(o.after.express).toBe(true);
    expect(o.after.spools).toBe(o.before.spools);
  });

  it('makes a certificate on the first start only and serves the stored one afterwards', async () => {
    const data = mkdtempSync(join(tmpdir(), 'pqg-web-start-'));
    try {
      const logs: string[][] = [[], []];
      const certs: string[] = [];
      for (const i of [0, 1]) {
        const s = await startWebServer({ socket: join(data, 'none.sock'), listen: { host: '127.0.0.1', port: 0 }, dataDir: join(data, 'web'), log: (m) => logs[i]!.push(m) });
        certs.push(s.certificate());
        await s.close();
      }
      expect(logs[0]).toContain('generated a self-signed HTTPS certificate');
      expect(logs[1]).not.toContain('generated a self-signed HTTPS certificate');
      expect(logs[1]).toContain('listening');
      expect(certs[1]).toBe(certs[0]);
      expect(certs[0]).toMatch(/^-----BEGIN CERTIFICATE-----/);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});

describe('the "starting" page before the application is loaded', () => {
  it('is the page the application answers while the daemon does not answer (headers and body)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqg-web-early-'));
    const server = await startWebServer({ socket: join(dir, 'none.sock'), listen: { host: '127.0.0.1', port: 0 }, dataDir: join(dir, 'web'), startupWaitMs: 50, log: () => {} });
    const early = createServer((req, res) => {
      if (!answerStarting(req, res, Date.now())) {
        res.statusCode = 599;
        res.end();
      }
    });
    await new Promise<void>((r) => early.listen(0, '127.0.0.1', () => r()));
    try {
      const fromApp = await new WebClient(server).get('/login');
      const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
        new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port: (early.address() as AddressInfo).port, path, method, headers }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
          });
          req.on('error', reject);
          req.end();
        });
      const fromServer = await get('/login');
      expect(fromApp.status).toBe(503);
      expect(fromServer.status).toBe(503);
      // Same headers (but the connection's own, and the anonymous session's cookie that the application sets).
      const own = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => !['date', 'connection', 'keep-alive', 'set-cookie', 'content-length'].includes(k)));
      expect(own(fromServer.headers)).toEqual(own(fromApp.headers));
      expect(Number(fromServer.headers['content-length'])).toBe(Buffer.byteLength(fromServer.text));
      // Same page: the clock and the session's CSRF token aside (the early answer has no session).
      const norm = (t: string) => t.replace(/data-server-now="\d+"/g, 'data-server-now="N"').replace(/(name="(?:_csrf|csrf-token)" (?:value|content)=")[^"]*"/g, '$1T"');
      expect(norm(fromServer.text)).toBe(norm(fromApp.text));
      expect(fromServer.text).toContain('id="daemon-starting"');
      // HEAD: the headers, no body. The API, static files, JSON clients and other methods wait for the application.
      const head = await get('/', {}, 'HEAD');
      expect(head.status).toBe(503);
      expect(head.text).toBe('');
      for (const [path, headers, method] of [['/api/v1/status', {}, 'GET'], ['/static/app.css', {}, 'GET'], ['/login', { accept: 'application/json' }, 'GET'], ['/login', {}, 'POST']] as const)
        expect((await get(path, headers, method)).status, `${method} ${path}`).toBe(599);
    } finally {
      await new Promise((r) => early.close(r));
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
