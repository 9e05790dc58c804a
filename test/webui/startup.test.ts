/**
 * Boot order (docs/webui.md "Start-up"): the image starts the web admin
 * together with the daemon, so it serves before the control socket exists.
 * Pages then answer 503 "starting" (auto-reload, Retry-After) instead of an
 * error; a request made while the daemon comes up waits for it (bounded) and
 * is served normally; once the daemon has answered, a missing daemon fails
 * fast again and says it is not answering.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeDaemon } from './fake-daemon.js';
import { WebClient } from './helpers.js';
import { parseArgs, startWebServer, type RunningServer } from '../../webui/server.js';
import { DaemonClient } from '../../webui/daemon-client.js';
import { ControlErrorCode } from '../../firmware/control/protocol.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function webFirst(startupWaitMs: number): Promise<{ server: RunningServer; socket: string; logs: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'pqg-webui-start-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'run', 'web.sock');
  const logs: string[] = [];
  const server = await startWebServer({
    socket,
    listen: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'web'),
    startupWaitMs,
    log: (msg, meta) => logs.push(`${msg} ${JSON.stringify(meta ?? {})}`),
  });
  cleanups.push(() => server.close());
  return { server, socket, logs };
}

async function daemonAt(socketPath: string): Promise<FakeDaemon> {
  const d = await FakeDaemon.start({ socketPath });
  cleanups.push(() => d.close());
  return d;
}

describe('web admin before the daemon', () => {
  it('--ready-file: written with the pid once the pages are ready (not before), a failure is logged and not fatal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqg-webui-ready-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    expect(parseArgs(['--ready-file', join(dir, 'web.ready')])).toMatchObject({ readyFile: join(dir, 'web.ready') });
    const logs: string[] = [];
    let readyAtPagesReady: boolean | undefined;
    const server = await startWebServer({
      socket: join(dir, 'run', 'web.sock'),
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: join(dir, 'web'),
      readyFile: join(dir, 'web.ready'),
      log: (msg, meta) => {
        if (msg === 'pages ready') readyAtPagesReady = existsSync(join(dir, 'web.ready'));
        logs.push(`${msg} ${JSON.stringify(meta ?? {})}`);
      },
    });
    cleanups.push(() => server.close());
    expect(readyAtPagesReady).toBe(false);
    expect(readFileSync(join(dir, 'web.ready'), 'utf8')).toBe(`${process.pid}\n`);

    const server2 = await startWebServer({
      socket: join(dir, 'run', 'web.sock'),
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: join(dir, 'web2'),
      readyFile: join(dir, 'missing-dir', 'web.ready'),
      log: (msg, meta) => logs.push(`${msg} ${JSON.stringify(meta ?? {})}`),
    });
    cleanups.push(() => server2.close());
    expect(logs.join('\n')).toMatch(/cannot write the ready file .*ENOENT/);
    expect((await new WebClient(server2).get('/')).status).toBe(303);
  });

  it('serves a self-reloading "starting" page (503) and answers the API with 503 + Retry-After', async () => {
    const { server, logs } = await webFirst(200);
    expect(logs.join('\n')).toMatch(/control socket not there yet/);
    const c = new WebClient(server);
    // Public routes that need no daemon answer at once.
    expect((await c.get('/')).status).toBe(303);
    const t0 = Date.now();
    const page = await c.get('/login');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150); // waited for the socket, bounded
    expect(page.status).toBe(503);
    expect(page.headers['retry-after']).toBe('2');
    expect(page.text).toContain('id="daemon-starting"');
    expect(page.text).toMatch(/<meta http-equiv="refresh" content="2">/);
    const api = await c.api('GET', '/api/v1/status');
    expect([401, 503]).toContain(api.status);
    const setup = await c.api('GET', '/setup');
    expect(setup.status).toBe(503);
    expect(setup.headers['retry-after']).toBe('2');
    expect(setup.json().error.code).toBe(ControlErrorCode.CONNECTION);
  });

  it('a page requested while the daemon comes up waits for it and is served normally', async () => {
    const { server, socket } = await webFirst(5_000);
    const c = new WebClient(server);
    const pending = c.get('/login');
    await new Promise((r) => setTimeout(r, 300));
    await daemonAt(socket);
    const r = await pending;
    // First boot: no administrator yet, so /login leads to the setup page.
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/setup');
    const s = await c.get('/setup');
    expect(s.status).toBe(200);
    expect(s.text).toContain('id="setup-form"');
  });

  it('after the daemon answered once, a lost daemon fails fast and the page says it is not answering', async () => {
    const { server, socket } = await webFirst(5_000);
    const d = await FakeDaemon.start({ socketPath: socket });
    const c = new WebClient(server);
    expect((await c.get('/setup')).status).toBe(200);
    await d.close();
    const t0 = Date.now();
    const r = await c.get('/setup');
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(r.status).toBe(503);
    expect(r.text).toContain('id="daemon-unreachable"');
  });
});

describe('DaemonClient startup wait', () => {
  it('retries only the connection, only until the first success, and within its bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqg-webui-client-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'run', 'web.sock');
    const client = new DaemonClient({ socketPath: socket, startupWaitMs: 300, startupPollMs: 50 });
    expect(client.starting).toBe(true);
    const t0 = Date.now();
    await expect(client.call('users.setupRequired', {})).rejects.toMatchObject({ code: ControlErrorCode.CONNECTION });
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(200);
    expect(waited).toBeLessThan(3_000);
    const d = await daemonAt(socket);
    expect((await client.call('users.setupRequired', {})).setupRequired).toBe(true);
    expect(client.starting).toBe(false);
    expect(d.calls.filter((x) => x.method === 'users.setupRequired')).toHaveLength(1);
  });
});
