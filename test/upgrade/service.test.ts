import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { UpgradeService, NO_BACKEND_MESSAGE, type UpgradeProgress } from '../../firmware/upgrade/service.js';
import { signKeyList } from '../../firmware/upgrade/keylist.js';
import { generateKey } from '../../firmware/upgrade/keys.js';
import { IMAGE_START } from '../../firmware/upgrade/bundle.js';
import { UpgradeError } from '../../firmware/upgrade/types.js';
import { FakeBackend, makeKeySet, makeTrustDir, makeImages, bundle, tmp, cleanup, keyListOf, type KeySet } from './helpers.js';

describe('upgrade service with a file-backed fake backend', () => {
  let ks: KeySet;
  let dir: string;
  let trustDir: string;
  let images: ReturnType<typeof makeImages>;
  let good: string;

  beforeAll(() => {
    ks = makeKeySet();
    dir = tmp();
    trustDir = makeTrustDir(ks);
    images = makeImages(dir);
    good = bundle(dir, { images, signer: ks.signer, keyList: ks.keyList, name: 'good.pqb' });
  });
  afterAll(() => cleanup(dir, trustDir));

  const svc = (b: FakeBackend | undefined, td = trustDir) => new UpgradeService({ backend: b, trustDir: td, stateDir: join(dir, `state-${Math.random()}`), now: () => Date.UTC(2026, 5, 1) });

  it('install: verify, write the inactive slot (read back), mark trial, record installed, progress to done', async () => {
    const be = new FakeBackend(tmp());
    const s = svc(be);
    const seen: UpgradeProgress['phase'][] = [];
    const r = await s.install(good, { onProgress: (p) => seen.push(p.phase) });
    expect(r).toMatchObject({ slot: 'b', version: '0.2.0', securityVersion: 2, signedBy: ks.signerPub.id, rebooting: false });
    expect(be.writes).toEqual([{ slot: 'b', images: ['rootfs', 'kernel', 'initrd'] }]);
    for (const im of images) expect(readFileSync(join(be.dir, 'slot-b', im.name)).equals(readFileSync(im.path))).toBe(true);
    expect(be.trials.map((t) => [t.slot, t.header.version])).toEqual([['b', '0.2.0']]);
    expect(be.outcomes.at(-1)).toMatchObject({ result: 'installed', fromVersion: '0.1.0', toVersion: '0.2.0', slot: 'b' });
    expect(seen[0]).toBe('verifying');
    expect(seen).toContain('writing');
    expect(seen.at(-1)).toBe('done');
    const st = await s.status();
    expect(st).toMatchObject({ available: true, dev: false, board: 'x86_64', runningVersion: '0.1.0', securityFloor: 1, keyListVersion: 1, progress: { phase: 'done' } });
    expect(st.slots.find((x) => x.name === 'b')).toMatchObject({ state: 'trial', version: '0.2.0' });
    expect(st.lastOutcome?.result).toBe('installed');
    cleanup(be.dir);
  });

  it('every refusal is recorded as refused with its reason and code, and nothing is written', async () => {
    const raw = readFileSync(good);
    const tampered = join(dir, 's-tampered.pqb');
    const t = Buffer.from(raw);
    t[IMAGE_START + 100]! ^= 1;
    writeFileSync(tampered, t);
    const truncated = join(dir, 's-trunc.pqb');
    writeFileSync(truncated, raw.subarray(0, raw.length - 50));
    const revoked = bundle(dir, { images, signer: ks.signer, keyList: signKeyList(keyListOf([ks.signerPub], 3, [ks.signerPub.id]), ks.root) });
    const stranger = bundle(dir, { images, signer: generateKey('signing').secret, keyList: ks.keyList });
    const cases: [string, string, FakeBackend][] = [
      [tampered, 'IMAGE_HASH', new FakeBackend(tmp())],
      [truncated, 'TRUNCATED', new FakeBackend(tmp())],
      [good, 'WRONG_BOARD', new FakeBackend(tmp(), 'arm64')],
      [good, 'DOWNGRADE', new FakeBackend(tmp(), 'x86_64', 7)],
      [bundle(dir, { images }), 'UNSIGNED', new FakeBackend(tmp())],
      [revoked, 'REVOKED_KEY', new FakeBackend(tmp())],
      [stranger, 'UNKNOWN_KEY', new FakeBackend(tmp())],
      [join(dir, 'missing.pqb'), 'BAD_FILE', new FakeBackend(tmp())],
    ];
    for (const [file, want, be] of cases) {
      const s = svc(be);
      const err = await s.install(file).catch((e: unknown) => e);
      expect([want, err instanceof UpgradeError ? err.code : String(err)]).toEqual([want, want]);
      expect(be.writes).toEqual([]);
      expect(be.trials).toEqual([]);
      expect(be.outcomes).toHaveLength(1);
      expect(be.outcomes[0]).toMatchObject({ result: 'refused', code: want, fromVersion: '0.1.0' });
      expect(be.outcomes[0]!.reason!.length).toBeGreaterThan(10);
      expect((await s.status()).progress).toMatchObject({ phase: 'failed', error: { code: want } });
      cleanup(be.dir);
    }
  });

  it('a write that does not read back is recorded as failed (WRITE_VERIFY) and nothing is marked trial', async () => {
    const be = new FakeBackend(tmp(), 'x86_64', 1, true);
    const s = svc(be);
    await expect(s.install(good)).rejects.toMatchObject({ code: 'WRITE_VERIFY' });
    expect(be.trials).toEqual([]);
    expect(be.outcomes.at(-1)).toMatchObject({ result: 'failed', code: 'WRITE_VERIFY', toVersion: '0.2.0' });
    cleanup(be.dir);
  });

  it('one install at a time: BUSY', async () => {
    const be = new FakeBackend(tmp());
    const s = svc(be);
    const first = s.install(good);
    await expect(s.install(good)).rejects.toMatchObject({ code: 'BUSY' });
    await first;
    expect(be.writes).toHaveLength(1);
    cleanup(be.dir);
  });

  it('reboot after install when asked', async () => {
    const be = new FakeBackend(tmp());
    const r = await svc(be).install(good, { reboot: true });
    expect(r.rebooting).toBe(true);
    await new Promise((res) => setTimeout(res, 400));
    expect(be.reboots).toBe(1);
    cleanup(be.dir);
  });

  it('dev image: unsigned accepted; status says dev', async () => {
    const devTrust = makeTrustDir(undefined);
    const be = new FakeBackend(tmp());
    const s = svc(be, devTrust);
    await s.install(bundle(dir, { images }));
    expect(be.writes).toHaveLength(1);
    expect((await s.status()).dev).toBe(true);
    cleanup(be.dir, devTrust);
  });

  it('a newer key list carried by a good bundle is kept; installKeyList refuses an older one', async () => {
    const be = new FakeBackend(tmp());
    const s = svc(be);
    const k2 = generateKey('signing');
    const v2 = signKeyList(keyListOf([k2.public], 2, [ks.signerPub.id]), ks.root);
    await s.install(bundle(dir, { images, signer: k2.secret, keyList: v2 }));
    expect((await s.status()).keyListVersion).toBe(2);
    await expect(s.install(good)).rejects.toMatchObject({ code: 'REVOKED_KEY' });
    const old = join(dir, 'old.pqkl');
    writeFileSync(old, ks.keyList);
    expect(() => s.installKeyList(old)).toThrow(expect.objectContaining({ code: 'KEYLIST_REPLAY' }));
    const v3 = join(dir, 'v3.pqkl');
    writeFileSync(v3, signKeyList(keyListOf([k2.public], 3, [ks.signerPub.id]), ks.root));
    expect(s.installKeyList(v3)).toEqual({ version: 3, changed: true });
    cleanup(be.dir);
  });

  it('no backend (not the appliance image): NO_BACKEND with a clear message, status unavailable', async () => {
    const s = svc(undefined);
    await expect(s.install(good)).rejects.toMatchObject({ code: 'NO_BACKEND', message: NO_BACKEND_MESSAGE });
    expect(await s.status()).toMatchObject({ available: false, reason: NO_BACKEND_MESSAGE, slots: [] });
    expect(existsSync(good)).toBe(true);
  });
});
