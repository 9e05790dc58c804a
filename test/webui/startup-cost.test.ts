/**
 * What the web admin does to start cheaply at boot (issue 7, docs/webui.md
 * "Start-up before the daemon"): the certificate maker runs only when there
 * is no certificate yet, and a web admin started at a higher nice value
 * (the image's service script) serves at the one given by
 * --nice-after-start, on every thread.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs, startWebServer } from '../../webui/server.js';
import { answerStarting } from '../../webui/starting.js';
import { WebClient } from './helpers.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST_SERVER = join(REPO, 'dist', 'webui', 'server.js');
const root = typeof process.getuid === 'function' && process.getuid() === 0;
// Children inherit the test runner's own nice value (e.g. under `nice -n 10 npx vitest`).
const base = getPriority(0);
const higher = Math.min(base + 5, 19);

describe('web admin start-up', () => {
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

  it('parses --nice-after-start and refuses values outside -20..19', () => {
    const base = ['--socket', '/s', '--listen', '127.0.0.1:1', '--data', '/d'];
    expect(parseArgs([...base, '--nice-after-start', '0'])).toMatchObject({ niceAfterStart: 0 });
    expect(parseArgs([...base, '--nice-after-start', '-5'])).toMatchObject({ niceAfterStart: -5 });
    expect((parseArgs(base) as { niceAfterStart?: number }).niceAfterStart).toBeUndefined();
    for (const bad of ['20', '-21', 'x', '', '1.5', '100']) expect(() => parseArgs([...base, '--nice-after-start', bad])).toThrow(/--nice-after-start/);
    expect(() => parseArgs([...base, '--nice-after-start'])).toThrow(/needs a value/);
  });

  // setNice in a child process (it changes the whole process): the nice value of every thread, read from /proc.
  const niceOfThreads = `
    import { readdirSync, readFileSync } from 'node:fs';
    export const nices = () => readdirSync('/proc/self/task').map((t) => { const s = readFileSync('/proc/self/task/' + t + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]); });`;
  const child = (prefix: string[], body: string) => {
    const src = `${niceOfThreads}\nimport { setNice } from ${JSON.stringify(DIST_SERVER)};\n${body}`;
    const r = spawnSync(prefix[0] ?? process.execPath, [...prefix.slice(1), ...(prefix.length ? [process.execPath] : []), '--input-type=module', '-e', src], { encoding: 'utf8', timeout: 20_000 });
    if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { before: number[]; after: number[]; later?: number[]; logs: unknown[] };
  };

  it.skipIf(!existsSync(DIST_SERVER))('sets the nice value of every thread, not only the main thread', () => {
    const r = child([], `
      const logs = []; const before = nices(); setNice(${higher}, (m, meta) => logs.push([m, meta])); const after = nices();
      console.log(JSON.stringify({ before, after, logs }));`);
    expect(r.before.length).toBeGreaterThan(1); // node runs V8 and libuv threads besides the main one
    expect(new Set(r.before)).toEqual(new Set([base]));
    expect(r.after).toHaveLength(r.before.length);
    expect(new Set(r.after)).toEqual(new Set([higher]));
    expect(r.logs).toEqual(higher === base ? [] : [['nice value for serving', { from: base, to: higher, threads: r.before.length }]]);
  });

  it.skipIf(!root || !existsSync(DIST_SERVER) || !existsSync('/usr/bin/nice') || base >= 19)('as root, brings a niced process back to 0, and threads started later inherit it', () => {
    const r = child(['/usr/bin/nice', '-n', '5'], `
      const { Worker } = await import('node:worker_threads');
      const logs = []; const before = nices(); setNice(0, (m) => logs.push(m)); const after = nices();
      // A thread made afterwards (a worker with its own V8 platform threads' share) starts at the main thread's value.
      const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
      await new Promise((r) => w.once('online', r));
      const later = nices();
      await w.terminate();
      console.log(JSON.stringify({ before, after, later, logs }));`);
    expect(new Set(r.before)).toEqual(new Set([higher]));
    expect(new Set(r.after)).toEqual(new Set([0]));
    expect(r.later!.length).toBeGreaterThan(r.after.length);
    expect(new Set(r.later)).toEqual(new Set([0]));
  });

  it.skipIf(root || !existsSync(DIST_SERVER) || base >= 19)('without root, lowering the nice value fails loudly', () => {
    expect(() => child(['/usr/bin/nice', '-n', '5'], `setNice(${base}, () => {}); console.log('{}');`)).toThrow(/--nice-after-start/);
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
