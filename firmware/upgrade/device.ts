/**
 * SlotBackend for the appliance image (docs/upgrade.md "Device side"):
 * GPT partitions rootfs-a / rootfs-b (squashfs), the ESP with systemd-boot,
 * one Boot Loader Specification entry per slot (device-bls.ts), and the data
 * partition for the device's own upgrade state (floor, last outcome,
 * pending upgrade).
 *
 * Crash-safety ordering (every step durable before the next):
 *   1. writeInactive: remove the inactive slot's entry and slot.json first
 *      (from then on nothing boots that slot), write the rootfs partition,
 *      fsync, read back + SHA-256; kernel and initrd to temp names on the
 *      ESP, fsync, verify, rename, fsync the directory.
 *   2. markTrial: slot.json, the pending record on /data, and last the
 *      counted entry `slot-X+3-0.conf`: the switch is that one rename.
 *   3. bless (first boot of the new slot, after the health gate): rename to
 *      `slot-X.conf`. The running (old) slot's entry is never touched
 *      before that.
 * A power cut anywhere leaves either the old slot as the only bootable
 * committed entry, or a counted entry that systemd-boot falls back from.
 *
 * Everything machine-specific sits behind DevicePlatform so the unit tests
 * run the same code on files standing in for partitions and a directory for
 * the ESP (test/upgrade/device.test.ts).
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BundleHeader, BundleImage, CreateDeviceBackend, SlotBackend, SlotName, SlotStatus, UpgradeOutcome } from './types.js';
import { UpgradeError } from './types.js';
import {
  DEFAULT_TRIES,
  entryFileName,
  entryGeneration,
  parseEntry,
  parseEntryFileName,
  parseSlotMeta,
  pickEntry,
  renderEntry,
  slotStatus,
  otherSlot,
  type EntryName,
  type SlotMeta,
} from './device-bls.js';
import { copyAndHash, equalBytes, hashRange, removeDurable, removeTempFiles, renameDurable, writeFileDurable } from './device-fs.js';

export interface DevicePlatform {
  readonly board: string;
  /** The slot this system booted from (kernel command line fw.slot=), undefined outside the image. */
  runningSlot(): SlotName | undefined;
  /** Device path of the GPT partition with this label (rootfs-a, rootfs-b). */
  partitionPath(label: string): string;
  /** Size in bytes of that partition. */
  partitionSize(path: string): number;
  /** Where the ESP is mounted (read-only normally). */
  readonly espDir: string;
  /** Run fn with the ESP writable (remount rw, then sync and back to ro). */
  withEspWritable<T>(fn: () => Promise<T> | T): Promise<T>;
  /** Directory on the data partition for the upgrade state. */
  readonly stateDir: string;
  /** Kernel options for a new entry when the running entry cannot be read. */
  defaultOptions(slot: SlotName): string;
  reboot(): Promise<void>;
  /** Version of the running firmware (package.json of the running rootfs). */
  runningVersion(): string;
}

const ENTRIES = 'loader/entries';
const FACTORY_RESET_MARKER = 'pqgate/factory-reset';
const KERNEL_FILES: Record<'kernel' | 'initrd', string> = { kernel: 'vmlinuz', initrd: 'initrd.img' };

/** Upgrade in progress, recorded by markTrial on the data partition so the old slot can tell what happened. */
export interface PendingUpgrade {
  slot: SlotName;
  fromSlot: SlotName;
  fromVersion: string;
  toVersion: string;
  securityVersion: number;
  at: string;
  /** The new slot snapshotted the database before migrating it (device-boot.ts). */
  snapshot?: string;
}

/** What the health gate of a trial boot reported, for the old slot to quote after a rollback. */
export interface GateReport {
  slot: SlotName;
  version: string;
  ok: boolean;
  reason?: string;
  at: string;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readJson<T>(path: string, check: (v: unknown) => v is T): T | undefined {
  const t = readText(path);
  if (t === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    return check(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSlot = (v: unknown): v is SlotName => v === 'a' || v === 'b';
const isOutcome = (v: unknown): v is UpgradeOutcome =>
  isObj(v) && typeof v.at === 'string' && typeof v.fromVersion === 'string' && typeof v.toVersion === 'string' && isSlot(v.slot) &&
  ['installed', 'committed', 'rolled-back', 'refused', 'failed'].includes(v.result as string);
const isPending = (v: unknown): v is PendingUpgrade =>
  isObj(v) && isSlot(v.slot) && isSlot(v.fromSlot) && typeof v.fromVersion === 'string' && typeof v.toVersion === 'string' && Number.isSafeInteger(v.securityVersion);
const isGate = (v: unknown): v is GateReport => isObj(v) && isSlot(v.slot) && typeof v.ok === 'boolean' && typeof v.version === 'string';

export class ImageSlotBackend implements SlotBackend {
  readonly board: string;
  /** One operation at a time: writes and renames on the ESP must not interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly platform: DevicePlatform, private readonly now: () => Date = () => new Date()) {
    this.board = platform.board;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.queue.then(fn, fn);
    this.queue = r.catch(() => undefined);
    return r;
  }

  // ---- reading the state ---------------------------------------------------

  private get entriesDir(): string {
    return join(this.platform.espDir, ENTRIES);
  }

  /** All slot entry files on the ESP, parsed (other entries and temp files ignored). */
  entryFiles(): { file: string; name: EntryName }[] {
    let files: string[] = [];
    try {
      files = readdirSync(this.entriesDir);
    } catch {
      return [];
    }
    const out: { file: string; name: EntryName }[] = [];
    for (const file of files) {
      const name = parseEntryFileName(file);
      if (name) out.push({ file, name });
    }
    return out;
  }

  entryOf(slot: SlotName): { file: string; name: EntryName } | undefined {
    const mine = this.entryFiles().filter((e) => e.name.slot === slot);
    const pick = pickEntry(mine.map((e) => e.name));
    return pick ? mine.find((e) => e.name === pick) : undefined;
  }

  slotMeta(slot: SlotName): SlotMeta | undefined {
    const t = readText(join(this.platform.espDir, `pqgate-${slot}`, 'slot.json'));
    return t === undefined ? undefined : parseSlotMeta(t);
  }

  async slots(): Promise<SlotStatus[]> {
    const running = this.platform.runningSlot();
    return (['a', 'b'] as const).map((s) => slotStatus(s, running, this.entryOf(s)?.name, this.slotMeta(s)));
  }

  async runningVersion(): Promise<string> {
    return this.platform.runningVersion();
  }

  private statePath(name: string): string {
    return join(this.platform.stateDir, name);
  }

  private writeState(name: string, value: unknown): void {
    mkdirSync(this.platform.stateDir, { recursive: true, mode: 0o700 });
    writeFileDurable(this.platform.stateDir, name, JSON.stringify(value, null, 2) + '\n');
  }

  private removeState(name: string): void {
    removeDurable(this.platform.stateDir, [name]);
  }

  async securityFloor(): Promise<number> {
    const f = readJson(this.statePath('floor.json'), (v): v is { securityVersion: number } => isObj(v) && Number.isSafeInteger(v.securityVersion));
    let floor = f?.securityVersion ?? 0;
    // The committed running slot's own security version counts even before any upgrade raised the floor.
    const running = this.platform.runningSlot();
    if (running && this.entryOf(running)?.name.triesLeft === undefined) floor = Math.max(floor, this.slotMeta(running)?.securityVersion ?? 0);
    return floor;
  }

  async recordOutcome(o: UpgradeOutcome): Promise<void> {
    this.writeState('outcome.json', o);
  }

  async lastOutcome(): Promise<UpgradeOutcome | undefined> {
    return readJson(this.statePath('outcome.json'), isOutcome);
  }

  pending(): PendingUpgrade | undefined {
    return readJson(this.statePath('pending.json'), isPending);
  }

  setPending(p: PendingUpgrade | undefined): void {
    if (p) this.writeState('pending.json', p);
    else this.removeState('pending.json');
  }

  gateReport(): GateReport | undefined {
    return readJson(this.statePath('gate.json'), isGate);
  }

  writeGateReport(r: GateReport): void {
    this.writeState('gate.json', r);
  }

  // ---- writing -------------------------------------------------------------

  private requireRunning(): SlotName {
    const running = this.platform.runningSlot();
    if (!running) throw new UpgradeError('NO_BACKEND', 'not running from a firmware slot (no fw.slot= on the kernel command line)');
    return running;
  }

  /** Refuse to overwrite the fallback while the running slot is itself on trial: that would leave no known-good slot. */
  private requireCommitted(running: SlotName): void {
    const e = this.entryOf(running);
    if (e && e.name.triesLeft !== undefined) {
      throw new UpgradeError('BUSY', `slot ${running.toUpperCase()} is still on trial (not committed yet); the other slot is its fallback and cannot be overwritten now`);
    }
  }

  writeInactive(bundlePath: string, images: readonly BundleImage[], onProgress?: (done: number, total: number) => void): Promise<SlotName> {
    return this.serial(async () => {
      const running = this.requireRunning();
      this.requireCommitted(running);
      const slot = otherSlot(running);
      const rootfs = images.find((i) => i.name === 'rootfs');
      if (!rootfs) throw new UpgradeError('BAD_FORMAT', 'the bundle has no rootfs image');
      const seen = new Set<string>();
      for (const i of images) {
        if (seen.has(i.name)) throw new UpgradeError('BAD_FORMAT', `the bundle has two ${i.name} images`);
        seen.add(i.name);
        if (!Number.isSafeInteger(i.offset) || !Number.isSafeInteger(i.size) || i.offset < 0 || i.size <= 0) throw new UpgradeError('BAD_FORMAT', `bad offset/size for ${i.name}`);
      }
      const partPath = this.platform.partitionPath(`rootfs-${slot}`);
      const partSize = this.platform.partitionSize(partPath);
      if (rootfs.size > partSize) throw new UpgradeError('TOO_LARGE', `rootfs is ${rootfs.size} bytes, partition rootfs-${slot} has ${partSize}`);
      const src = openSync(bundlePath, 'r');
      try {
        const fileSize = fstatSync(src).size;
        for (const i of images) if (i.offset + i.size > fileSize) throw new UpgradeError('TRUNCATED', `${i.name} runs past the end of the bundle`);
        const total = images.reduce((n, i) => n + 2 * i.size, 0);
        let done = 0;
        const progress = (n: number): void => {
          done += n;
          onProgress?.(done, total);
        };
        return await this.platform.withEspWritable(() => {
          // 1. Unreference the inactive slot before its contents change.
          const slotDir = join(this.platform.espDir, `pqgate-${slot}`);
          mkdirSync(this.entriesDir, { recursive: true });
          removeDurable(this.entriesDir, this.entryFiles().filter((e) => e.name.slot === slot).map((e) => e.file));
          mkdirSync(slotDir, { recursive: true });
          removeDurable(slotDir, ['slot.json']);
          // 2. Root filesystem onto the partition, read back.
          const dst = openSync(partPath, 'r+');
          try {
            const got = copyAndHash(src, rootfs.offset, dst, 0, rootfs.size, progress);
            if (!equalBytes(got, rootfs.sha256)) throw new UpgradeError('WRITE_VERIFY', `rootfs-${slot} read back with a different SHA-256 than the bundle's`);
          } finally {
            closeSync(dst);
          }
          // 3. Kernel and initramfs to temp names, verified, then renamed.
          for (const i of images) {
            if (i.name === 'rootfs') continue;
            const final = KERNEL_FILES[i.name];
            const tmpName = `${final}.pqgate-tmp`;
            const fd = openSync(join(slotDir, tmpName), 'w+', 0o644);
            try {
              const got = copyAndHash(src, i.offset, fd, 0, i.size, progress);
              if (!equalBytes(got, i.sha256)) throw new UpgradeError('WRITE_VERIFY', `${i.name} of slot ${slot.toUpperCase()} read back with a different SHA-256`);
            } finally {
              closeSync(fd);
            }
            renameDurable(slotDir, tmpName, final);
          }
          for (const f of Object.values(KERNEL_FILES)) {
            if (!existsSync(join(slotDir, f))) throw new UpgradeError('WRITE_VERIFY', `slot ${slot.toUpperCase()} has no ${f} on the ESP and the bundle carries none`);
          }
          return slot;
        });
      } catch (e) {
        if (e instanceof UpgradeError) throw e;
        throw new UpgradeError('WRITE_VERIFY', `writing slot ${slot.toUpperCase()} failed: ${(e as Error).message}`, { cause: e });
      } finally {
        closeSync(src);
      }
    });
  }

  /** Read back the rootfs partition's first `size` bytes and hash them (status and tests: "nothing written"). */
  hashPartition(slot: SlotName, size: number): Uint8Array {
    const fd = openSync(this.platform.partitionPath(`rootfs-${slot}`), 'r');
    try {
      return hashRange(fd, 0, size);
    } finally {
      closeSync(fd);
    }
  }

  private nextGeneration(): number {
    let g = 0;
    for (const s of ['a', 'b'] as const) g = Math.max(g, this.slotMeta(s)?.generation ?? 0);
    for (const e of this.entryFiles()) {
      const t = readText(join(this.entriesDir, e.file));
      if (t !== undefined) g = Math.max(g, entryGeneration(t));
    }
    return g + 1;
  }

  private optionsFor(slot: SlotName, running: SlotName): string {
    const cur = this.entryOf(running);
    const opts = cur ? parseEntry(readText(join(this.entriesDir, cur.file)) ?? '').get('options') : undefined;
    if (opts === undefined || !/(?:^|\s)fw\.slot=[ab](?:\s|$)/.test(opts)) return this.platform.defaultOptions(slot);
    // Same command line as the running slot, except the slot and one-shot flags (factory reset).
    return opts
      .split(/\s+/)
      .filter((o) => o !== '' && !o.startsWith('pqgate.factory_reset'))
      .map((o) => (o.startsWith('fw.slot=') ? `fw.slot=${slot}` : o))
      .join(' ');
  }

  markTrial(slot: SlotName, header: BundleHeader, tries = DEFAULT_TRIES): Promise<void> {
    return this.serial(async () => {
      const running = this.requireRunning();
      if (slot === running) throw new UpgradeError('BUSY', `slot ${slot.toUpperCase()} is the running slot`);
      this.requireCommitted(running);
      if (header.board !== this.board) throw new UpgradeError('WRONG_BOARD', `bundle is for ${header.board}, this is ${this.board}`);
      const slotDir = join(this.platform.espDir, `pqgate-${slot}`);
      for (const f of Object.values(KERNEL_FILES)) {
        if (!existsSync(join(slotDir, f))) throw new UpgradeError('WRITE_VERIFY', `slot ${slot.toUpperCase()} has no ${f}: write it first`);
      }
      const generation = this.nextGeneration();
      const fromVersion = this.platform.runningVersion();
      const options = this.optionsFor(slot, running);
      await this.platform.withEspWritable(() => {
        const meta: SlotMeta = { version: header.version, securityVersion: header.securityVersion, board: header.board, generation, installed: this.now().toISOString() };
        writeFileDurable(slotDir, 'slot.json', JSON.stringify(meta, null, 2) + '\n');
        this.setPending({ slot, fromSlot: running, fromVersion, toVersion: header.version, securityVersion: header.securityVersion, at: this.now().toISOString() });
        this.removeState('gate.json');
        removeDurable(this.entriesDir, this.entryFiles().filter((e) => e.name.slot === slot).map((e) => e.file));
        const text = renderEntry({
          title: `pqgate ${header.version} (slot ${slot.toUpperCase()})`,
          generation,
          linux: `/pqgate-${slot}/vmlinuz`,
          initrd: `/pqgate-${slot}/initrd.img`,
          options,
        });
        // The switch: from this rename on, systemd-boot prefers the new slot (higher generation) while it has tries left.
        writeFileDurable(this.entriesDir, entryFileName({ slot, triesLeft: tries, triesDone: 0 }), text);
      });
    });
  }

  /**
   * Commit the running slot (systemd-bless-boot's "good"): rename its counted
   * entry to the plain name. Returns false when it was already committed.
   */
  bless(): Promise<boolean> {
    return this.serial(async () => {
      const running = this.requireRunning();
      const e = this.entryOf(running);
      if (!e) throw new UpgradeError('NO_BACKEND', `no boot entry for the running slot ${running.toUpperCase()}`);
      if (e.name.triesLeft === undefined) return false;
      await this.platform.withEspWritable(() => {
        const others = this.entryFiles().filter((x) => x.name.slot === running && x.file !== e.file && x.name.triesLeft === undefined);
        removeDurable(this.entriesDir, others.map((x) => x.file));
        renameDurable(this.entriesDir, e.file, entryFileName({ slot: running }));
      });
      return true;
    });
  }

  /** Raise the persistent downgrade floor (never lowers it). */
  async raiseFloor(securityVersion: number): Promise<void> {
    const cur = readJson(this.statePath('floor.json'), (v): v is { securityVersion: number } => isObj(v) && Number.isSafeInteger(v.securityVersion));
    if ((cur?.securityVersion ?? 0) >= securityVersion) return;
    this.writeState('floor.json', { securityVersion });
  }

  /**
   * Remove what interrupted operations leave behind: temp files on the ESP
   * (never referenced by an entry) and duplicate entries for one slot (the
   * one pickEntry does not choose). Returns what was removed.
   */
  recoverInterrupted(): Promise<string[]> {
    return this.serial(async () => {
      const removed: string[] = [];
      const dirs = [this.entriesDir, join(this.platform.espDir, 'pqgate-a'), join(this.platform.espDir, 'pqgate-b')];
      const dupes = (['a', 'b'] as const).flatMap((s) => {
        const mine = this.entryFiles().filter((e) => e.name.slot === s);
        const keep = this.entryOf(s);
        return mine.filter((e) => e !== undefined && e.file !== keep?.file).map((e) => e.file);
      });
      const tmpFound = dirs.some((d) => {
        try {
          return readdirSync(d).some((n) => n.endsWith('.pqgate-tmp'));
        } catch {
          return false;
        }
      });
      if (!tmpFound && dupes.length === 0) return removed;
      await this.platform.withEspWritable(() => {
        for (const d of dirs) removed.push(...removeTempFiles(d).map((n) => join(d, n)));
        removeDurable(this.entriesDir, dupes);
        removed.push(...dupes.map((f) => join(this.entriesDir, f)));
      });
      return removed;
    });
  }

  scheduleFactoryReset(): Promise<void> {
    return this.serial(() =>
      this.platform.withEspWritable(() => {
        const dir = join(this.platform.espDir, 'pqgate');
        mkdirSync(dir, { recursive: true });
        writeFileDurable(dir, 'factory-reset', `requested ${this.now().toISOString()}\n`);
      }),
    );
  }

  factoryResetPending(): boolean {
    return existsSync(join(this.platform.espDir, FACTORY_RESET_MARKER));
  }

  reboot(): Promise<void> {
    return this.platform.reboot();
  }
}

/**
 * What the daemon loads on the appliance image (firmware/upgrade/backend.ts
 * selectBackend): the image platform (device-image.ts), imported lazily so
 * this module stays free of the image's paths for the unit tests.
 */
export const createDeviceBackend: CreateDeviceBackend = async ({ slot }) => {
  const { imagePlatform } = await import('./device-image.js');
  const platform = imagePlatform();
  const running = platform.runningSlot();
  if (running !== slot) throw new UpgradeError('NO_BACKEND', `kernel command line says slot ${String(running)}, the daemon was told ${slot}`);
  return new ImageSlotBackend(platform);
};
