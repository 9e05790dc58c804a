/**
 * Firmware upgrades through the appliance: the control API (admin and web
 * sockets) and the CLI, on an UpgradeService with the file-backed fake
 * backend (test/upgrade/helpers.ts), so every write is recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { signKeyList } from '../../firmware/upgrade/keylist.js';
import { join } from 'node:path';
import { main } from '../../firmware/cli.js';
import { UpgradeService } from '../../firmware/upgrade/service.js';
import { Rig, until } from './harness.js';
import { FakeBackend, keyListOf, makeKeySet, makeTrustDir, makeImages, bundle, tmp, cleanup, type KeySet } from '../upgrade/helpers.js';

let rig: Rig;
let ks: KeySet;
let dir: string;
let trustDir: string;
let be: FakeBackend;
let good: string;
let unsigned: string;
const actor = 'tester';

beforeAll(async () => {
  ks = makeKeySet();
  dir = tmp();
  trustDir = makeTrustDir(ks);
  const images = makeImages(dir);
  good = bundle(dir, { images, signer: ks.signer, keyList: ks.keyList, name: 'good.pqb' });
  unsigned = bundle(dir, { images, name: 'unsigned.pqb' });
  be = new FakeBackend(tmp());
  rig = new Rig();
  await rig.startAppliance([], { upgrade: new UpgradeService({ backend: be, trustDir, stateDir: join(dir, 'state') }) });
}, 30_000);
afterAll(async () => {
  await rig?.close();
  cleanup(dir, trustDir, be.dir);
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main([...args, '--socket', rig.adminSocket], { out: (s) => void (out += s), err: (s) => void (err += s), env: {} });
  return { code, out, err };
}

describe('firmware upgrade through the control API and the CLI', () => {
  it('upgrade status: slots, running version, floor, key list; system.info shows the device slots', async () => {
    const s = await rig.call('upgrade.status');
    expect(s).toMatchObject({ available: true, dev: false, board: 'x86_64', runningVersion: '0.1.0', securityFloor: 1, keyListVersion: 1 });
    expect(s.slots.map((x: { name: string }) => x.name)).toEqual(['a', 'b']);
    const r = await cli(['upgrade', 'status']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('slot a: 0.1.0 good (active)');
    expect(r.out).not.toContain('DEVELOPMENT');
    const info = await rig.call('system.info');
    expect(info.firmware).toMatchObject({ active: 'a', slots: [{ name: 'a', version: '0.1.0' }, { name: 'b', state: 'empty' }] });
  });

  it('a refused bundle (unsigned on a signed image): exit 1 with the reason and code, nothing written, outcome recorded', async () => {
    const r = await cli(['upgrade', unsigned]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refused, nothing was written: .*not signed.*\[UNSIGNED\]/);
    expect(be.writes).toEqual([]);
    const st = await cli(['upgrade', 'status']);
    expect(st.out).toMatch(/last upgrade: .*refused: the bundle is not signed.*\[UNSIGNED\]/);
    // The waiting form of the method answers with the code directly.
    expect((await rig.callError('upgrade.install', { path: unsigned, actor })).code).toBe('UNSIGNED');
  });

  it('pqgate upgrade FILE installs into the inactive slot as trial; status shows it', async () => {
    const r = await cli(['upgrade', good]);
    expect([r.code, r.out]).toEqual([0, expect.stringContaining('firmware 0.2.0 installed in slot b as the trial slot')]);
    expect(be.writes).toEqual([{ slot: 'b', images: ['rootfs', 'kernel', 'initrd'] }]);
    const st = await cli(['upgrade', 'status']);
    expect(st.out).toContain('slot b: 0.2.0 trial, 3 boot tries left');
    expect(st.out).toMatch(/last upgrade: .*0\.1\.0 → 0\.2\.0, installed \(slot b\)/);
    const ev = await rig.call('logs.events', { limit: 50 });
    expect(ev.some((e: { message: string }) => /firmware 0\.2\.0 installed in slot b \(trial\)/.test(e.message))).toBe(true);
  });

  it('parameters: relative or unnormalised paths refused; usage errors exit 2', async () => {
    expect((await rig.callError('upgrade.install', { path: 'good.pqb', actor })).code).toBe('ERR_INVALID_PARAMS');
    expect((await rig.callError('upgrade.install', { path: `${dir}/../x.pqb`, actor })).code).toBe('ERR_INVALID_PARAMS');
    expect((await rig.callError('upgrade.install', { path: good })).code).toBe('ERR_INVALID_PARAMS'); // actor required
    expect((await cli(['upgrade'])).code).toBe(2);
    expect((await cli(['factory-reset'])).code).toBe(2);
  });

  it('web socket: only spooled *.pqb names, no symlinked file or directory', async () => {
    const spool = join(dir, 'spool');
    mkdirSync(spool);
    copyFileSync(unsigned, join(spool, 'up-1.pqb'));
    symlinkSync(good, join(spool, 'link.pqb'));
    symlinkSync(spool, join(dir, 'spool-link'));
    const w = (path: string) => rig.callError('upgrade.install', { path, actor }, rig.webSocket);
    expect((await w(join(dir, 'state', 'keylist.pqkl'))).code).toBe('ERR_INVALID_PARAMS');
    expect((await w(join(spool, 'link.pqb'))).code).toBe('BAD_FILE');
    expect((await w(join(dir, 'spool-link', 'up-1.pqb'))).code).toBe('BAD_FILE');
    expect((await w(join(spool, 'up-1.pqb'))).code).toBe('UNSIGNED');
    expect(be.writes).toHaveLength(1); // only the earlier good install
    // upgrade.status is available to the web admin too.
    expect((await rig.call('upgrade.status', {}, rig.webSocket)).available).toBe(true);
  });

  it('upgrade keylist: the current list is a no-op, a newer one is installed, an older one refused as a replay', async () => {
    const f = (name: string, b: Uint8Array) => {
      writeFileSync(join(dir, name), b);
      return join(dir, name);
    };
    const v1 = f('v1.pqkl', ks.keyList);
    expect((await cli(['upgrade', 'keylist', v1])).out).toContain('version 1 was already installed');
    const v2 = f('v2.pqkl', signKeyList(keyListOf([ks.signerPub], 2), ks.root));
    expect((await cli(['upgrade', 'keylist', v2])).out).toContain('signing key list version 2 installed');
    const r = await cli(['upgrade', 'keylist', v1]);
    expect([r.code, r.err]).toEqual([1, expect.stringMatching(/older than the version 2 .*KEYLIST_REPLAY/)]);
    expect((await rig.call('upgrade.status')).keyListVersion).toBe(2);
  });

  it('factory-reset --yes on the image: store wiped, data wipe scheduled, reboot', async () => {
    const r = await cli(['factory-reset', '--yes']);
    expect([r.code, r.out]).toEqual([0, expect.stringContaining('rebooting, the data partition is wiped at boot')]);
    expect(be.resets).toBe(1);
    await until(() => be.reboots === 1, 3000, 'reboot');
    expect(await rig.call('users.setupRequired')).toEqual({ setupRequired: true });
  });
});
