/** Test fixtures for the upgrade tests: key sets, trust stores, image files, a file-backed fake SlotBackend. */
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, encodePublicKey, type HybridSecretKey } from '../../firmware/upgrade/keys.js';
import { signKeyList, type KeyList } from '../../firmware/upgrade/keylist.js';
import { makeBundle, type MakeBundleOptions } from '../../firmware/upgrade/bundle-make.js';
import type { BundleHeader, BundleImage, SlotBackend, SlotName, SlotStatus, UpgradeOutcome } from '../../firmware/upgrade/types.js';
import { UpgradeError } from '../../firmware/upgrade/types.js';
import type { HybridPublicKey } from '../../firmware/upgrade/types.js';

export function tmp(prefix = 'pqgate-upg-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface KeySet {
  root: HybridSecretKey;
  rootPub: HybridPublicKey;
  signer: HybridSecretKey;
  signerPub: HybridPublicKey;
  keyList: Uint8Array;
}

export function keyListOf(pubs: HybridPublicKey[], version: number, revoked: string[] = [], validity = { notBefore: '2020-01-01T00:00:00Z', notAfter: '2099-01-01T00:00:00Z' }): KeyList {
  return { format: 1, version, issued: '2026-01-01T00:00:00Z', keys: pubs.map((p) => ({ ...p, ...validity })), revoked };
}

export function makeKeySet(): KeySet {
  const r = generateKey('root');
  const s = generateKey('signing');
  return { root: r.secret, rootPub: r.public, signer: s.secret, signerPub: s.public, keyList: signKeyList(keyListOf([s.public], 1), r.secret) };
}

/** A trust dir: signed (roots + shipped key list) or dev. */
export function makeTrustDir(ks: KeySet | undefined, opts: { shipKeyList?: boolean } = {}): string {
  const d = tmp('pqgate-trust-');
  writeFileSync(join(d, 'trust.json'), JSON.stringify({ format: 1, mode: ks ? 'signed' : 'dev' }));
  if (ks) {
    mkdirSync(join(d, 'roots'));
    writeFileSync(join(d, 'roots', `${ks.rootPub.id}.pub`), encodePublicKey(ks.rootPub, 'root'));
    if (opts.shipKeyList !== false) writeFileSync(join(d, 'keylist.pqkl'), ks.keyList);
  }
  return d;
}

export function makeImages(dir: string, sizes = { rootfs: 300_000, kernel: 50_001, initrd: 20_000 }): MakeBundleOptions['images'] {
  return (['rootfs', 'kernel', 'initrd'] as const).map((name) => {
    const path = join(dir, `${name}.img`);
    writeFileSync(path, randomBytes(sizes[name]));
    return { name, path };
  });
}

export function bundle(dir: string, o: Partial<MakeBundleOptions> & { name?: string } = {}): string {
  const out = join(dir, o.name ?? `b-${randomBytes(4).toString('hex')}.pqb`);
  makeBundle({ out, board: 'x86_64', version: '0.2.0', securityVersion: 2, images: o.images ?? makeImages(dir), created: '2026-06-01T00:00:00Z', ...o });
  return out;
}

/** Fake device: slots in memory, images written to files under `dir`, every write recorded. */
export class FakeBackend implements SlotBackend {
  readonly writes: { slot: SlotName; images: string[] }[] = [];
  readonly outcomes: UpgradeOutcome[] = [];
  trials: { slot: SlotName; header: BundleHeader }[] = [];
  resets = 0;
  reboots = 0;
  slotState: SlotStatus[] = [
    { name: 'a', active: true, state: 'good', version: '0.1.0', securityVersion: 1, board: 'x86_64' },
    { name: 'b', active: false, state: 'empty' },
  ];
  constructor(readonly dir: string, readonly board = 'x86_64', public floor = 1, public corruptWrite = false) {}
  async slots() { return this.slotState.map((s) => ({ ...s })); }
  async runningVersion() { return this.slotState.find((s) => s.active)!.version ?? 'unknown'; }
  async securityFloor() { return this.floor; }
  async writeInactive(bundlePath: string, images: readonly BundleImage[], onProgress?: (d: number, t: number) => void): Promise<SlotName> {
    const slot = this.slotState.find((s) => !s.active)!.name;
    const total = images.reduce((a, i) => a + i.size, 0);
    let done = 0;
    mkdirSync(join(this.dir, `slot-${slot}`), { recursive: true });
    this.writes.push({ slot, images: images.map((i) => i.name) });
    const fd = openSync(bundlePath, 'r');
    try {
      for (const im of images) {
        const buf = Buffer.alloc(im.size);
        readSync(fd, buf, 0, im.size, im.offset);
        if (this.corruptWrite) buf[0]! ^= 1;
        const target = join(this.dir, `slot-${slot}`, im.name);
        writeFileSync(target, buf);
        done += im.size;
        onProgress?.(done, total);
        if (!createHash('sha256').update(readFileSync(target)).digest().equals(Buffer.from(im.sha256))) throw new UpgradeError('WRITE_VERIFY', `${im.name} read back differs`);
      }
    } finally {
      closeSync(fd);
    }
    return slot;
  }
  async markTrial(slot: SlotName, header: BundleHeader) {
    this.trials.push({ slot, header });
    this.slotState = this.slotState.map((s) => (s.name === slot ? { name: slot, active: false, state: 'trial', triesLeft: 3, triesDone: 0, version: header.version, securityVersion: header.securityVersion, board: header.board } : s));
  }
  async recordOutcome(o: UpgradeOutcome) { this.outcomes.push(o); }
  async lastOutcome() { return this.outcomes.at(-1); }
  async scheduleFactoryReset() { this.resets++; }
  async reboot() { this.reboots++; }
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
