/**
 * Which SlotBackend the daemon uses: on the appliance image the device
 * side's (firmware/upgrade/device.ts, `createDeviceBackend`), loaded
 * lazily so a dev machine never touches partitions; off the image none, and
 * the upgrade service answers NO_BACKEND ("firmware upgrades need the
 * appliance image") instead of failing in some partition tool.
 */
import type { CreateDeviceBackend, SlotBackend, SlotName } from './types.js';


export async function selectBackend(slot: string | undefined, log?: (msg: string, meta?: Record<string, unknown>) => void): Promise<SlotBackend | undefined> {
  if (slot !== 'a' && slot !== 'b') return undefined;
  try {
    // A literal specifier so the image's bundler (image/lib/esbuild.mjs) includes the device side.
    const m = (await import('./device.js')) as { createDeviceBackend?: CreateDeviceBackend };
    if (typeof m.createDeviceBackend !== 'function') {
      log?.('firmware upgrades unavailable: device backend module has no createDeviceBackend');
      return undefined;
    }
    return await m.createDeviceBackend({ slot: slot as SlotName });
  } catch (e) {
    log?.('firmware upgrades unavailable: no device backend', { error: (e as Error).message });
    return undefined;
  }
}
