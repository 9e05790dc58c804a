/**
 * Every single-byte change anywhere in a signed bundle is refused with a
 * typed UpgradeError (never accepted, never another exception), and so is
 * every truncation: random positions with fast-check, plus each region's
 * boundaries. Also the status text of a development image.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyBundleFile } from '../../firmware/upgrade/bundle-verify.js';
import { loadTrustStore } from '../../firmware/upgrade/trust.js';
import { UpgradeError } from '../../firmware/upgrade/types.js';
import { formatUpgradeStatus, DEV_BANNER } from '../../firmware/control/cli-upgrade.js';
import { makeKeySet, makeTrustDir, makeImages, bundle, tmp, cleanup } from './helpers.js';

let dir: string;
let trustDir: string;
let raw: Buffer;
let trust: ReturnType<typeof loadTrustStore>;

beforeAll(() => {
  const ks = makeKeySet();
  dir = tmp();
  trustDir = makeTrustDir(ks);
  trust = loadTrustStore(trustDir);
  raw = readFileSync(bundle(dir, { images: makeImages(dir, { rootfs: 20_000, kernel: 5_000, initrd: 3_000 }), signer: ks.signer, keyList: ks.keyList }));
});
afterAll(() => cleanup(dir, trustDir));

async function verdict(b: Buffer): Promise<string> {
  const f = join(dir, 'probe.pqb');
  writeFileSync(f, b);
  try {
    await verifyBundleFile(f, { trust, board: 'x86_64', securityFloor: 1 });
    return 'OK';
  } catch (e) {
    if (e instanceof UpgradeError) return e.code;
    return `UNTYPED ${(e as Error).stack}`;
  }
}

describe('tampering anywhere is refused', () => {
  it('the untouched bundle verifies', async () => {
    expect(await verdict(raw)).toBe('OK');
  });

  it('any single changed byte (random positions and values)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: raw.length - 1 }), fc.integer({ min: 1, max: 255 }), async (pos, x) => {
        const b = Buffer.from(raw);
        b[pos]! ^= x;
        const v = await verdict(b);
        expect(v, `byte ${pos} ^ ${x}`).not.toBe('OK');
        expect(v.startsWith('UNTYPED'), v).toBe(false);
      }),
      { numRuns: 150 },
    );
  });

  it('any truncation, and any appended bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: raw.length - 1 }), async (len) => {
        expect(await verdict(raw.subarray(0, len))).toBe('TRUNCATED');
      }),
      { numRuns: 60 },
    );
    for (const extra of [1, 12, 4096]) expect(await verdict(Buffer.concat([raw, Buffer.alloc(extra, 7)]))).toBe('BAD_FORMAT');
  });
});

describe('pqgate upgrade status text', () => {
  it('flags a development image and says why upgrades are unavailable', () => {
    const t = formatUpgradeStatus({ available: false, reason: 'firmware upgrades need the appliance image', dev: true, slots: [], progress: { id: 0, phase: 'idle', done: 0, total: 0 } });
    expect(t).toContain(`*** ${DEV_BANNER} ***`);
    expect(t).toContain('firmware upgrades unavailable: firmware upgrades need the appliance image');
    const s = formatUpgradeStatus({
      available: true, dev: false, board: 'arm64', runningVersion: '1.0', securityFloor: 2, keyListVersion: 3,
      slots: [{ name: 'a', active: true, state: 'good', version: '1.0' }, { name: 'b', active: false, state: 'bad', version: '1.1' }],
      lastOutcome: { at: '2026-11-27T00:00:00Z', fromVersion: '1.0', toVersion: '1.1', slot: 'b', result: 'rolled-back', reason: 'health gate: web admin not reachable' },
      progress: { id: 1, phase: 'done', done: 1, total: 1 },
    });
    expect(s).not.toContain('DEVELOPMENT');
    expect(s).toContain('board arm64, running 1.0, security version floor 2, signing key list version 3');
    expect(s).toContain('slot b: 1.1 bad');
    expect(s).toContain('1.0 → 1.1, rolled-back: health gate: web admin not reachable');
  });
});
