/**
 * The built entry point (dist/webui/server.js) started as root with --user:
 * it binds, hands its data directory to the unprivileged user, drops to it
 * (uid, gid and supplementary groups), and still reaches the daemon through
 * the control socket because the socket is group-accessible (mode 0660,
 * group of the web user) — the deployment docs/webui.md describes. With a
 * root-only socket it cannot, and says so instead of pretending.
 *
 * Needs root and `npm run build` (skipped otherwise, with the reason).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeDaemon } from './fake-daemon.js';
import { WebClient, ADMIN, PASSWORD } from './helpers.js';
import { lookupIds, type RunningServer } from '../../webui/server.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY = join(REPO, 'dist', 'webui', 'server.js');
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const skip = !root ? 'needs root (privilege drop)' : !existsSync(ENTRY) ? `${ENTRY} missing: run npm run build` : undefined;
if (skip) console.warn(`[webui] server.test skipped: ${skip}`);

const WEB_USER = 'nobody';
const WEB_GROUP = 'nogroup';

describe.skipIf(!!skip)('dist/webui/server.js as root with --user', () => {
  let daemon: FakeDaemon;
  let data: string;
  let proc: ChildProcess;
  let port = 0;
  let stderr = '';
  const ids = root ? lookupIds(WEB_USER, WEB_GROUP) : { uid: -1, gid: -1 };

  beforeAll(async () => {
    daemon = await FakeDaemon.start();
    // The deployment: the socket and its directory belong to the web admin's group.
    chmodSync(daemon.dir, 0o711);
    chownSync(dirname(daemon.socketPath), 0, ids.gid);
    chmodSync(dirname(daemon.socketPath), 0o750);
    chownSync(daemon.socketPath, 0, ids.gid);
    chmodSync(daemon.socketPath, 0o660);
    data = mkdtempSync(join(tmpdir(), 'pqg-webui-root-'));
    proc = spawn(process.execPath, [ENTRY, '--socket', daemon.socketPath, '--listen', '127.0.0.1:0', '--data', join(data, 'web'), '--user', WEB_USER, '--group', WEB_GROUP], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const deadline = Date.now() + 20_000;
    while (!port) {
      const m = /"https":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(stderr);
      if (m) port = Number(m[1]);
      else if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`web server did not start:\n${stderr}`);
      else await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    await daemon?.close();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  const client = () => {
    const cert = readFileSync(join(data, 'web', 'tls', 'cert.pem'), 'utf8');
    return new WebClient({ url: `https://127.0.0.1:${port}`, certificate: () => cert } as RunningServer);
  };

  it('runs as the unprivileged user with its own data directory', () => {
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const uids = /^Uid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/).map(Number);
    const gids = /^Gid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/).map(Number);
    expect(uids).toEqual([ids.uid, ids.uid, ids.uid, ids.uid]);
    expect(gids).toEqual([ids.gid, ids.gid, ids.gid, ids.gid]);
    expect(/^Groups:\s*(.*)$/m.exec(status)![1]!.trim().split(/\s+/).map(Number)).not.toContain(0);
    expect(/^CapEff:\s+(\S+)/m.exec(status)![1]).toBe('0000000000000000');
    const st = statSync(join(data, 'web', 'tls', 'key.pem'));
    expect([st.uid, st.mode & 0o777]).toEqual([ids.uid, 0o600]);
    expect(statSync(join(data, 'web')).mode & 0o777).toBe(0o700);
    expect(stderr).toContain('dropped privileges');
  });

  it('reaches the daemon through the group-accessible control socket: setup, login, dashboard', async () => {
    const c = client();
    expect((await c.setup(ADMIN, PASSWORD)).status).toBe(303);
    const dash = await c.get('/');
    expect(dash.status).toBe(200);
    expect(dash.text).toContain('No tunnels configured yet');
    expect(daemon.calls.some((x) => x.method === 'users.create')).toBe(true);
  });

  it('says the daemon is unreachable when the socket is root-only', async () => {
    chmodSync(daemon.socketPath, 0o600);
    try {
      const c = client();
      await c.login(ADMIN, PASSWORD);
      const r = await c.get('/login');
      expect(r.status).toBe(503);
      expect(r.text).toMatch(/EACCES/);
    } finally {
      chmodSync(daemon.socketPath, 0o660);
    }
  });
});
