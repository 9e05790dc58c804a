/**
 * Firmware upload through the web admin: authentication, CSRF, size limit
 * (counted while streaming), the spool (server-made names, cleaned up), the
 * Maintenance page (slots, last outcome in plain words, progress markup),
 * the development-build banner, and off-image behaviour. Behind the fake
 * daemon is the real UpgradeService with the file-backed fake backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness, type WebClient } from './helpers.js';
import { UpgradeService } from '../../firmware/upgrade/service.js';
import { FakeBackend, makeKeySet, makeTrustDir, makeImages, bundle, tmp, cleanup, type KeySet } from '../upgrade/helpers.js';

const LIMIT = 2 * 1024 * 1024;
let ks: KeySet;
let dir: string;
let trustDir: string;
let be: FakeBackend;
let h: Harness;
let c: WebClient;
let good: Buffer;
let unsigned: Buffer;

const spool = () => readdirSync(join(h.dataDir, 'spool'));
async function until<T>(f: () => Promise<T | undefined>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  ks = makeKeySet();
  dir = tmp();
  trustDir = makeTrustDir(ks);
  const images = makeImages(dir);
  good = readFileSync(bundle(dir, { images, signer: ks.signer, keyList: ks.keyList }));
  unsigned = readFileSync(bundle(dir, { images }));
  be = new FakeBackend(tmp());
  h = await startHarness({ daemon: { upgrade: new UpgradeService({ backend: be, trustDir, stateDir: join(dir, 'state') }) }, app: { limits: { firmwareBytes: LIMIT } } });
  c = h.client();
  await c.setup();
  await c.login();
}, 30_000);
afterAll(async () => {
  await h?.close();
  cleanup(dir, trustDir, be.dir);
});

const upload = (cl: WebClient, body: Buffer, o: { path?: string; type?: string; csrf?: boolean; anonymous?: boolean } = {}) =>
  cl.request('POST', o.path ?? '/maintenance/firmware', { raw: { body, type: o.type ?? 'application/octet-stream' }, headers: { accept: 'application/json' }, ...(o.csrf === false ? { csrf: false } : {}), ...(o.anonymous ? { anonymous: true } : {}) });

describe('web admin firmware upload', () => {
  it('Maintenance page: slots, no upgrade yet, the upload form with its progress bar; no dev banner on a signed image', async () => {
    const r = await c.get('/maintenance');
    expect(r.status).toBe(200);
    expect(r.text).toContain('id="firmware-slots"');
    expect(r.text).toMatch(/<td data-label="Slot">a <span class="badge">active<\/span><\/td><td data-label="Version">0\.1\.0<\/td>/);
    expect(r.text).toContain('Last upgrade: No firmware upgrade yet.');
    expect(r.text).toContain('id="firmware-form"');
    expect(r.text).toContain('<progress id="firmware-progress"');
    expect(r.text).not.toContain('dev-build');
  });

  it('refused without a session, without the CSRF token, from another origin, with the wrong type; nothing spooled', async () => {
    const anon = h.client();
    expect((await upload(anon, good, { anonymous: true })).status).toBe(401);
    expect((await upload(c, good, { csrf: false })).status).toBe(403);
    const cross = await c.request('POST', '/maintenance/firmware', { raw: { body: good, type: 'application/octet-stream' }, headers: { origin: 'https://evil.example', accept: 'application/json' } });
    expect(cross.status).toBe(403);
    expect((await upload(c, good, { type: 'text/plain' })).status).toBe(415);
    expect(spool()).toEqual([]);
    expect(h.daemon.installs).toEqual([]);
  });

  it('size limit: 413 by Content-Length, and nothing is kept or installed', async () => {
    const big = Buffer.alloc(LIMIT + 1);
    const r = await upload(c, big);
    expect(r.status).toBe(413);
    expect(r.json().error.code).toBe('ERR_TOO_LARGE');
    expect(spool()).toEqual([]);
    expect(h.daemon.installs).toEqual([]);
  });

  it('a refused bundle: accepted for verification (202), then refused with the reason in plain words; spool cleaned', async () => {
    const r = await upload(c, unsigned);
    expect(r.status).toBe(202);
    const id = r.json().id as number;
    expect(h.daemon.installs[0]).toMatch(/\/spool\/up-[0-9a-f]{16}\.pqb$/);
    const st = await until(async () => {
      const s = (await c.get('/maintenance/firmware/status')).json();
      return s.progress.id === id && s.progress.phase === 'failed' ? s : undefined;
    });
    expect(st.progress.error.code).toBe('UNSIGNED');
    expect(be.writes).toEqual([]);
    await until(async () => (spool().length === 0 ? true : undefined));
    const page = await c.get('/maintenance');
    expect(page.text).toMatch(/the uploaded firmware 0\.2\.0 was refused and nothing was written\. Reason: the bundle is not signed/);
  });

  it('a good bundle: streamed, verified, written to the inactive slot as trial; page shows it', async () => {
    const r = await upload(c, good);
    expect(r.status).toBe(202);
    const id = r.json().id as number;
    await until(async () => {
      const s = (await c.get('/maintenance/firmware/status')).json();
      return s.progress.id === id && s.progress.phase === 'done' ? s : undefined;
    });
    expect(be.writes).toEqual([{ slot: 'b', images: ['rootfs', 'kernel', 'initrd'] }]);
    await until(async () => (spool().length === 0 ? true : undefined));
    const page = await c.get('/maintenance');
    expect(page.text).toContain('firmware 0.2.0 was installed in slot b. It starts at the next reboot');
    expect(page.text).toContain('trial (3 boot tries left)');
    // The REST route answers the same status (session + CSRF header here; API tokens work the same way).
    const api = await c.request('GET', '/api/v1/firmware', { headers: { accept: 'application/json' } });
    expect(api.json()).toMatchObject({ available: true, lastOutcome: { result: 'installed', toVersion: '0.2.0' } });
  });

  it('the spool name is the server\'s: a client file name never reaches the disk', async () => {
    const r = await c.request('POST', '/api/v1/firmware?reboot=0', { raw: { body: unsigned, type: 'application/octet-stream' }, headers: { accept: 'application/json', 'content-disposition': 'attachment; filename="../../etc/passwd"' } });
    expect(r.status).toBe(202);
    expect(h.daemon.installs.at(-1)).toMatch(/\/spool\/up-[0-9a-f]{16}\.pqb$/);
  });
});

describe('web admin: development build and off-image', () => {
  it('a dev image shows the red banner on every page', async () => {
    const devTrust = makeTrustDir(undefined);
    const b = new FakeBackend(tmp());
    const hd = await startHarness({ daemon: { upgrade: new UpgradeService({ backend: b, trustDir: devTrust, stateDir: join(dir, 'state-dev') }) } });
    try {
      const cl = hd.client();
      await cl.setup();
      await cl.login();
      for (const p of ['/', '/maintenance']) expect((await cl.get(p)).text).toContain('Development build — accepts unsigned firmware');
      expect((await cl.get('/maintenance')).text).toContain('id="dev-build-banner"');
    } finally {
      await hd.close();
      cleanup(devTrust, b.dir);
    }
  });

  it('off the image: the page says upgrades need the appliance image; an upload is 503', async () => {
    const ho = await startHarness();
    try {
      const cl = ho.client();
      await cl.setup();
      await cl.login();
      const page = await cl.get('/maintenance');
      expect(page.text).toMatch(/Firmware upgrades are not available: firmware upgrades need the appliance image/);
      expect(page.text).not.toContain('dev-build');
      const r = await upload(cl, Buffer.from('PQGBNDL1'));
      expect(r.status).toBe(503);
      expect(readdirSync(join(ho.dataDir, 'spool'))).toEqual([]);
    } finally {
      await ho.close();
    }
  });
});
