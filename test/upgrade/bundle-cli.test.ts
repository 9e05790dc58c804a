import { describe, it, expect, afterAll } from 'vitest';
import { statSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../firmware/cli.js';
import { tmp, cleanup, makeImages } from './helpers.js';

const dir = tmp();
afterAll(() => cleanup(dir));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['bundle', ...args], { out: (s) => void (out += s), err: (s) => void (err += s), env: {} });
  return { code, out, err };
}

describe('pqgate bundle (release tooling)', () => {
  const keys = join(dir, 'keys');
  const trust = join(dir, 'trust');
  const devTrust = join(dir, 'trust-dev');
  const out = join(dir, 'image-out');

  it('keygen: root and signing pairs, private keys 0600, never overwritten', async () => {
    const r = await run(['keygen', '--dir', keys]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/root key [0-9a-f]{16}, signing key [0-9a-f]{16}, key list version 1/);
    for (const f of ['root.key', 'signing.key']) expect(statSync(join(keys, f)).mode & 0o777).toBe(0o600);
    for (const f of ['root.pub', 'signing.pub', 'keylist.pqkl']) expect(existsSync(join(keys, f))).toBe(true);
    const again = await run(['keygen', '--dir', keys]);
    expect([again.code, again.err]).toEqual([1, expect.stringContaining('refusing to overwrite')]);
  });

  it('trust, make (from an image output directory), inspect, verify; unsigned + dev trust store', async () => {
    expect((await run(['trust', '--out', trust, '--keys', keys])).code).toBe(0);
    expect((await run(['trust', '--out', devTrust, '--dev'])).out).toContain('accepts UNSIGNED');
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(out);
    const imgs = makeImages(dir);
    copyFileSync(imgs[0]!.path, join(out, 'rootfs.squashfs'));
    copyFileSync(imgs[1]!.path, join(out, 'vmlinuz'));
    copyFileSync(imgs[2]!.path, join(out, 'initrd.img'));
    const pqb = join(dir, 'pqgate-x86_64-0.3.0.pqb');
    const m = await run(['make', '--board', 'x86_64', '--version', '0.3.0', '--security-version', '3', '--from', out, '--out', pqb, '--keys', keys]);
    expect([m.code, m.err]).toEqual([0, '']);
    expect(m.out).toContain('rootfs 300000, kernel 50001, initrd 20000, signed');
    const i = await run(['inspect', '--json', pqb]);
    const j = JSON.parse(i.out);
    expect(j).toMatchObject({ board: 'x86_64', version: '0.3.0', securityVersion: 3, build: 'release', keyList: { version: 1 } });
    expect(j.signedBy).toMatch(/^[0-9a-f]{16}$/);
    const v = await run(['verify', pqb, '--trust', trust]);
    expect([v.code, v.out]).toEqual([0, expect.stringContaining('signed by')]);
    expect((await run(['verify', pqb, '--trust', trust, '--floor', '4'])).err).toContain('[DOWNGRADE]');
    expect((await run(['verify', pqb, '--trust', trust, '--board', 'arm64'])).err).toContain('[WRONG_BOARD]');

    const dev = join(dir, 'dev.pqb');
    const d = await run(['make', '--board', 'x86_64', '--version', '0.3.0-dev', '--security-version', '3', '--from', out, '--out', dev]);
    expect(d.out).toContain('UNSIGNED development build');
    expect((await run(['inspect', dev])).out).toContain('UNSIGNED (development build)');
    expect((await run(['verify', dev, '--trust', trust])).err).toContain('[UNSIGNED]');
    expect((await run(['verify', dev, '--trust', devTrust])).out).toContain('accepted by this DEVELOPMENT trust store');
  });

  it('rotation: sign-keylist admits a new signing key and revokes the old one', async () => {
    const k2 = join(dir, 'keys2');
    await run(['keygen', '--dir', k2]);
    const oldId = JSON.parse(readFileSync(join(keys, 'signing.pub'), 'utf8')).id as string;
    const list = join(dir, 'v2.pqkl');
    const r = await run(['sign-keylist', '--root', join(keys, 'root.key'), '--out', list, '--list-version', '2', '--key', join(k2, 'signing.pub'), '--revoke', oldId]);
    expect([r.code, r.err]).toEqual([0, '']);
    // A release signed with the new key and carrying the new list verifies against the old root.
    const rel = join(dir, 'k2');
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(rel);
    copyFileSync(join(k2, 'signing.key'), join(rel, 'signing.key'));
    copyFileSync(list, join(rel, 'keylist.pqkl'));
    const pqb = join(dir, 'rot.pqb');
    expect((await run(['make', '--board', 'x86_64', '--version', '0.4.0', '--security-version', '3', '--from', out, '--out', pqb, '--keys', rel])).code).toBe(0);
    expect((await run(['verify', pqb, '--trust', trust])).code).toBe(0);
    expect((await run(['verify', join(dir, 'pqgate-x86_64-0.3.0.pqb'), '--trust', trust, '--state', join(dir, 'st')])).code).toBe(0);
    // Once the device has seen list 2 (state dir), the old key's bundles are refused.
    const st = join(dir, 'st');
    const { storeKeyList, loadTrustStore } = await import('../../firmware/upgrade/trust.js');
    const { openKeyList } = await import('../../firmware/upgrade/keylist.js');
    const t = loadTrustStore(trust);
    storeKeyList(st, openKeyList(new Uint8Array(readFileSync(list)), t.roots), t.roots, t.shippedList);
    expect((await run(['verify', join(dir, 'pqgate-x86_64-0.3.0.pqb'), '--trust', trust, '--state', st])).err).toContain('[REVOKED_KEY]');
  });

  it('usage', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['make', '--bogus'])).code).toBe(2);
  });
});
