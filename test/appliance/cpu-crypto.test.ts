/**
 * loadCpuCryptoDrivers (firmware/appliance/cpu-crypto.ts): the kernel data
 * plane's hook before its first SA on the firmware image.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCpuCryptoDrivers } from '../../firmware/appliance/cpu-crypto.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pqgate-cpucrypto-'));
  dirs.push(d);
  return d;
}
const ALIAS = 'cpu:type:x86,ven0000fam0006mod002C:feature:,0000,0001,0002,0019,0099';

describe('loadCpuCryptoDrivers', () => {
  it("runs modprobe -a -q with the CPU's modalias while rcS has not finished", async () => {
    const d = dir();
    writeFileSync(join(d, 'modalias'), ALIAS + '\n');
    const calls: string[][] = [];
    const r = await loadCpuCryptoDrivers({ doneFile: join(d, 'done'), modaliasFile: join(d, 'modalias'), modprobe: async (a) => void calls.push(a) });
    expect(r).toBe('loaded');
    expect(calls).toEqual([['-a', '-q', ALIAS]]);
  });

  it('does nothing once rcS wrote its marker', async () => {
    const d = dir();
    writeFileSync(join(d, 'modalias'), ALIAS);
    writeFileSync(join(d, 'done'), '');
    const calls: string[][] = [];
    expect(await loadCpuCryptoDrivers({ doneFile: join(d, 'done'), modaliasFile: join(d, 'modalias'), modprobe: async (a) => void calls.push(a) })).toBe('already-loaded');
    expect(calls).toEqual([]);
  });

  it('no modalias (not Linux, or an odd one) → nothing run', async () => {
    const d = dir();
    const calls: string[][] = [];
    const o = { doneFile: join(d, 'done'), modaliasFile: join(d, 'modalias'), modprobe: async (a: string[]) => void calls.push(a) };
    expect(await loadCpuCryptoDrivers(o)).toBe('no-cpu-modalias');
    writeFileSync(join(d, 'modalias'), 'cpu:type x86; rm -rf /');
    expect(await loadCpuCryptoDrivers(o)).toBe('no-cpu-modalias');
    expect(calls).toEqual([]);
  });

  it('a failing modprobe rejects with its message (the data plane reports it and installs the SA anyway)', async () => {
    const d = dir();
    writeFileSync(join(d, 'modalias'), ALIAS);
    await expect(
      loadCpuCryptoDrivers({ doneFile: join(d, 'done'), modaliasFile: join(d, 'modalias'), modprobe: () => Promise.reject(new Error('modprobe: FATAL: no such module')) }),
    ).rejects.toThrow('no such module');
  });
});
