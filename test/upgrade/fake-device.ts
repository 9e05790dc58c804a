/**
 * A loop-free fake of the appliance disk for the device backend tests:
 * regular files stand in for the rootfs partitions, a directory for the ESP
 * (laid out like image/lib/image.sh builds it), another for /data/upgrade.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageSlotBackend, type DevicePlatform } from '../../firmware/upgrade/device.js';
import { renderEntry } from '../../firmware/upgrade/device-bls.js';
import type { BundleHeader, BundleImage, SlotName } from '../../firmware/upgrade/types.js';

export const PART_SIZE = 4 << 20;

export interface FakeDevice {
  root: string;
  esp: string;
  parts: Record<SlotName, string>;
  state: string;
  running: { slot: SlotName | undefined };
  reboots: number;
  espWrites: number;
  backend: ImageSlotBackend;
  cleanup(): void;
}

export function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

/** A factory-fresh device: both slots carry version `version`, slot A has the higher generation (the default). */
export function makeFakeDevice(version = '1.0.0', securityVersion = 1): FakeDevice {
  const root = mkdtempSync(join(tmpdir(), 'pqgate-device-'));
  const esp = join(root, 'esp');
  const state = join(root, 'data', 'upgrade');
  mkdirSync(join(esp, 'loader/entries'), { recursive: true });
  writeFileSync(join(esp, 'loader/loader.conf'), 'default slot-*\ntimeout 0\neditor no\n');
  const parts = { a: join(root, 'rootfs-a'), b: join(root, 'rootfs-b') };
  for (const s of ['a', 'b'] as const) {
    writeFileSync(parts[s], randomBytes(PART_SIZE));
    mkdirSync(join(esp, `pqgate-${s}`));
    writeFileSync(join(esp, `pqgate-${s}/vmlinuz`), `kernel ${version}`);
    writeFileSync(join(esp, `pqgate-${s}/initrd.img`), `initrd ${version}`);
    const generation = s === 'a' ? 2 : 1;
    writeFileSync(join(esp, `pqgate-${s}/slot.json`), JSON.stringify({ version, securityVersion, board: 'x86_64', generation }));
    writeFileSync(
      join(esp, `loader/entries/slot-${s}.conf`),
      renderEntry({ title: `pqgate ${version} (slot ${s.toUpperCase()})`, generation, linux: `/pqgate-${s}/vmlinuz`, initrd: `/pqgate-${s}/initrd.img`, options: `fw.slot=${s} console=ttyS0,115200 panic=10` }),
    );
  }
  const dev: FakeDevice = {
    root, esp, parts, state,
    running: { slot: 'a' },
    reboots: 0,
    espWrites: 0,
    backend: undefined as unknown as ImageSlotBackend,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
  const platform: DevicePlatform = {
    board: 'x86_64',
    runningSlot: () => dev.running.slot,
    partitionPath: (label) => {
      const s = /^rootfs-([ab])$/.exec(label)?.[1] as SlotName | undefined;
      if (!s) throw new Error(`no partition ${label}`);
      return parts[s];
    },
    partitionSize: () => PART_SIZE,
    espDir: esp,
    async withEspWritable(fn) {
      dev.espWrites++;
      return await fn();
    },
    stateDir: state,
    defaultOptions: (slot) => `fw.slot=${slot}`,
    async reboot() {
      dev.reboots++;
    },
    runningVersion: () => version,
  };
  dev.backend = new ImageSlotBackend(platform, () => new Date('2026-11-27T04:00:00Z'));
  return dev;
}

/** A bundle-like file: images at offsets after a dummy header (the device side never parses the header). */
export function makeBundle(dir: string, version: string, sizes = { rootfs: 1_500_000, kernel: 300_000, initrd: 100_000 }): { path: string; images: BundleImage[]; header: BundleHeader; data: Record<string, Uint8Array> } {
  const header0 = new Uint8Array(4096).fill(0x42);
  const data: Record<string, Uint8Array> = {};
  const images: BundleImage[] = [];
  const chunks: Uint8Array[] = [header0];
  let off = header0.length;
  for (const name of ['rootfs', 'kernel', 'initrd'] as const) {
    const b = randomBytes(sizes[name]);
    data[name] = b;
    images.push({ name, offset: off, size: b.length, sha256: sha256(b) });
    chunks.push(b);
    off += b.length;
  }
  const path = join(dir, `bundle-${version}.pqb`);
  writeFileSync(path, Buffer.concat(chunks));
  const header: BundleHeader = { format: 1, board: 'x86_64', version, securityVersion: 2, created: '2026-11-27T00:00:00Z', images };
  return { path, images, header, data };
}
