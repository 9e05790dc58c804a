/**
 * Who may use the control sockets. The admin socket is the daemon user's
 * only (0600 in a 0700 directory); the web admin's socket is opened to one
 * group (0660 in a 0750 directory of that group) and serves everything but
 * the session-key methods. Checked with real processes running as
 * nobody:nogroup (needs root to switch users; skipped otherwise).
 * system.reboot works only on the appliance image.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Rig } from './harness.js';
import { groupId } from '../../firmware/appliance/system.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const NOBODY = 65534;
const webGid = groupId('nogroup') ?? groupId('nobody');

let rig: Rig;
afterEach(async () => {
  await rig?.close();
});

/** Run one request as uid/gid in a fresh node process (raw protocol: the client library is not needed). */
function requestAs(uid: number, gid: number, socket: string, method: string): Promise<{ error?: string; reply?: { result?: unknown; error?: { code: string } } }> {
  const script = `
    const s = require('node:net').connect(process.argv[1]);
    let buf = '';
    s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
    s.on('connect', () => s.write(JSON.stringify({ id: 1, method: process.argv[2], params: { actor: 'nobody' } }) + '\\n'));
    s.on('data', (d) => { buf += d; if (buf.includes('\\n')) { console.log(JSON.stringify({ reply: JSON.parse(buf) })); process.exit(0); } });`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', script, socket, method], { uid, gid, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`child failed: ${err || out}`));
      }
    });
  });
}

describe('control socket permissions', () => {
  it('admin socket owner-only; web socket for its group, without keys.*', async () => {
    rig = new Rig();
    await rig.startAppliance([], webGid !== undefined ? { webGroup: webGid } : {});
    const a = statSync(rig.adminSocket);
    expect(a.isSocket()).toBe(true);
    expect(a.mode & 0o777).toBe(0o600);
    expect(statSync(dirname(rig.adminSocket)).mode & 0o777).toBe(0o700);
    const w = statSync(rig.webSocket);
    expect(w.mode & 0o777).toBe(webGid !== undefined ? 0o660 : 0o600);
    if (webGid !== undefined) {
      expect(w.gid).toBe(webGid);
      const wd = statSync(dirname(rig.webSocket));
      expect(wd.mode & 0o777).toBe(0o750);
      expect(wd.gid).toBe(webGid);
    }
    // Same process (owner): the web socket answers the web's methods, not the session keys.
    expect((await rig.call('version', {}, rig.webSocket)).protocol).toBe(1);
    expect((await rig.call('users.setupRequired', {}, rig.webSocket)).setupRequired).toBe(true);
    expect((await rig.callError('keys.export', { actor: 'web' }, rig.webSocket)).code).toBe('ERR_METHOD_NOT_FOUND');
    expect((await rig.callError('keys.capture', { enabled: true, actor: 'web' }, rig.webSocket)).code).toBe('ERR_METHOD_NOT_FOUND');
    expect((await rig.callError('keys.export', { actor: 'root' })).code).toBe('ERR_KEY_CAPTURE_OFF'); // the admin socket has it
  });

  it.skipIf(!isRoot || webGid === undefined)('as another user: the admin socket refuses, the web socket serves its group only', async () => {
    rig = new Rig();
    await rig.startAppliance([], { webGroup: webGid! });
    expect(await requestAs(NOBODY, webGid!, rig.adminSocket, 'version')).toEqual({ error: 'EACCES' });
    const ok = await requestAs(NOBODY, webGid!, rig.webSocket, 'version');
    expect(ok.reply?.result).toMatchObject({ name: 'pqgate', protocol: 1 });
    expect((await requestAs(NOBODY, webGid!, rig.webSocket, 'keys.export')).reply?.error?.code).toBe('ERR_METHOD_NOT_FOUND');
    // Not in the group: no way in (the directory is 0750).
    const other = webGid === 1 ? 2 : 1;
    expect(await requestAs(NOBODY, other, rig.webSocket, 'version')).toEqual({ error: 'EACCES' });
  });

  it('system.reboot: only on the appliance image, answered before the machine goes down', async () => {
    rig = new Rig();
    let rebooted = 0;
    await rig.startAppliance([], { appliance: true, reboot: () => void rebooted++ });
    expect(await rig.call('system.reboot', { actor: 'admin' }, rig.webSocket)).toEqual({ ok: true });
    expect(rebooted).toBe(0);
    await new Promise((r) => setTimeout(r, 400));
    expect(rebooted).toBe(1);
    const ev = await rig.call('logs.events', { level: 'warn' });
    expect(ev[0].message).toBe('reboot requested by admin');
    expect((await rig.callError('system.reboot', {})).code).toBe('ERR_INVALID_PARAMS');
  });
});
