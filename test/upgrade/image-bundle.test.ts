/**
 * image/lib/bundle.sh, the hook image/build.sh runs: trust anchors and
 * release.json into the staged rootfs, and the .pqb from the output
 * directory — signed with PQGATE_SIGNING_KEYS, or unsigned + dev trust
 * store without it. Runs the shell functions on a stand-in rootfs and
 * output directory (no package downloads); needs the compiled CLI (dist/).
 */
import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tmp, cleanup } from './helpers.js';
import { loadTrustStore } from '../../firmware/upgrade/trust.js';
import { verifyBundleFile } from '../../firmware/upgrade/bundle-verify.js';

const repo = resolve(import.meta.dirname, '../..');
const dir = tmp();
afterAll(() => cleanup(dir));

function runHook(env: Record<string, string>, name: string): { rootfs: string; out: string } {
  const rootfs = join(dir, name, 'rootfs');
  const out = join(dir, name, 'out');
  mkdirSync(rootfs, { recursive: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'rootfs.squashfs'), randomBytes(200_000));
  writeFileSync(join(out, 'vmlinuz'), randomBytes(30_000));
  writeFileSync(join(out, 'initrd.img'), randomBytes(10_000));
  const script = `set -euo pipefail; T_START=$SECONDS; source "$IMAGE_DIR/lib/common.sh"; source "$IMAGE_DIR/lib/bundle.sh"; bundle_install_trust "$1"; bundle_make`;
  execFileSync('bash', ['-c', script, 'hook', rootfs], { env: { ...process.env, IMAGE_DIR: join(repo, 'image'), REPO: repo, BOARD: 'x86_64', OUT: out, PQGATE_VERSION: '9.9.9', ...env }, stdio: 'pipe' });
  return { rootfs, out };
}

describe('image/lib/bundle.sh (npm run image hook)', () => {
  it('needs the compiled CLI', () => {
    expect(existsSync(join(repo, 'dist/firmware/upgrade/bundle-cli.js')), 'run npm run build first').toBe(true);
  });

  it('with PQGATE_SIGNING_KEYS: signed trust store in the rootfs and a signed bundle it accepts', async () => {
    const keys = join(dir, 'keys');
    execFileSync('node', [join(repo, 'dist/firmware/cli.js'), 'bundle', 'keygen', '--dir', keys]);
    const { rootfs, out } = runHook({ PQGATE_SIGNING_KEYS: keys, PQGATE_SECURITY_VERSION: '4' }, 'signed');
    const trust = loadTrustStore(join(rootfs, 'usr/share/pqgate/trust'));
    expect(trust.dev).toBe(false);
    expect(trust.roots.size).toBe(1);
    expect(JSON.parse(readFileSync(join(rootfs, 'usr/share/pqgate/release.json'), 'utf8'))).toEqual({ board: 'x86_64', version: '9.9.9', securityVersion: 4, build: 'release' });
    expect(readdirSync(out).filter((f) => f.endsWith('.pqb'))).toEqual(['pqgate-x86_64-9.9.9.pqb']);
    const v = await verifyBundleFile(join(out, 'pqgate-x86_64-9.9.9.pqb'), { trust, board: 'x86_64', securityFloor: 4 });
    expect(v.signedBy).toMatch(/^[0-9a-f]{16}$/);
    expect(v.header.images.map((i) => i.name)).toEqual(['rootfs', 'kernel', 'initrd']);
  });

  it('without keys: development trust store and an unsigned bundle', async () => {
    const { rootfs, out } = runHook({ PQGATE_SIGNING_KEYS: '' }, 'dev');
    const trust = loadTrustStore(join(rootfs, 'usr/share/pqgate/trust'));
    expect(trust.dev).toBe(true);
    const release = JSON.parse(readFileSync(join(rootfs, 'usr/share/pqgate/release.json'), 'utf8'));
    expect(release).toMatchObject({ build: 'dev', securityVersion: Number(readFileSync(join(repo, 'image/security-version'), 'utf8').trim()) });
    const v = await verifyBundleFile(join(out, 'pqgate-x86_64-9.9.9.pqb'), { trust, board: 'x86_64', securityFloor: 0 });
    expect(v.signedBy).toBeUndefined();
    expect(v.header.build).toBe('dev');
  });
});
