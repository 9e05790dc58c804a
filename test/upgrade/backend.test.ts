import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { selectBackend } from '../../firmware/upgrade/backend.js';

describe('selectBackend', () => {
  it('off the image (no fw.slot): no backend, and the device module is not even loaded', async () => {
    const log: string[] = [];
    expect(await selectBackend(undefined, (m) => log.push(m))).toBeUndefined();
    expect(await selectBackend('c', (m) => log.push(m))).toBeUndefined();
    expect(log).toEqual([]);
  });

  it('on the image: the device side\'s backend when firmware/upgrade/device.ts exists, else none with a logged reason (never a crash)', async () => {
    const log: string[] = [];
    const hasDevice = existsSync(new URL('../../firmware/upgrade/device.ts', import.meta.url));
    const b = await selectBackend('a', (m) => log.push(m)).catch((e: unknown) => e);
    if (hasDevice) {
      // The device module may refuse to start off the image (no GPT slots here): then it is none, with the reason logged.
      if (b === undefined) expect(log.join('\n')).toMatch(/firmware upgrades unavailable/);
      else expect(typeof (b as { writeInactive?: unknown }).writeInactive).toBe('function');
    } else {
      expect(b).toBeUndefined();
      expect(log.join('\n')).toMatch(/firmware upgrades unavailable/);
    }
  });
});
