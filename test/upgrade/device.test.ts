import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  afterBootAttempt,
  entryFileName,
  parseEntryFileName,
  parseSlotMeta,
  pickEntry,
  slotStatus,
} from '../../firmware/upgrade/device-bls.js';
import { bootCheck } from '../../firmware/upgrade/device-boot.js';
import { UpgradeError } from '../../firmware/upgrade/types.js';
import type { GateResult } from '../../firmware/upgrade/health-gate.js';
import { makeBundle, makeFakeDevice, sha256, type FakeDevice } from './fake-device.js';
import { simulateBoot } from './sdboot-model.js';

const entries = (d: FakeDevice) => readdirSync(join(d.esp, 'loader/entries')).sort();
const pass = async (): Promise<GateResult> => ({ ok: true, elapsedMs: 1000 });
const fail = (reason: string) => async (): Promise<GateResult> => ({ ok: false, reason, elapsedMs: 1000 });
const quiet = () => undefined;

let dev: FakeDevice | undefined;
afterEach(() => {
  dev?.cleanup();
  dev = undefined;
});

describe('BLS entry names (boot counting)', () => {
  it('parses the +LEFT-DONE and +LEFT forms and the committed name', () => {
    expect(parseEntryFileName('slot-a.conf')).toEqual({ slot: 'a' });
    expect(parseEntryFileName('slot-b+3-0.conf')).toEqual({ slot: 'b', triesLeft: 3, triesDone: 0 });
    expect(parseEntryFileName('slot-b+2-1.conf')).toEqual({ slot: 'b', triesLeft: 2, triesDone: 1 });
    expect(parseEntryFileName('slot-b+0-3.conf')).toEqual({ slot: 'b', triesLeft: 0, triesDone: 3 });
    expect(parseEntryFileName('slot-a+5.conf')).toEqual({ slot: 'a', triesLeft: 5, triesDone: 0 });
  });
  it('rejects everything else', () => {
    for (const f of ['slot-c.conf', 'slot-a+.conf', 'slot-a+3-.conf', 'slot-a+-1.conf', 'slot-a.conf.pqgate-tmp', 'slot-a+99999.conf', 'pqgate-a.conf', 'slot-a+3-0.conf~', 'slot-a+1a.conf', 'SLOT-A.conf']) {
      expect(parseEntryFileName(f), f).toBeUndefined();
    }
  });
  it('names round-trip and a boot attempt decrements left and increments done', () => {
    for (const n of [{ slot: 'a' as const }, { slot: 'b' as const, triesLeft: 3, triesDone: 0 }, { slot: 'a' as const, triesLeft: 0, triesDone: 7 }]) {
      expect(parseEntryFileName(entryFileName(n))).toEqual(n);
    }
    expect(afterBootAttempt({ slot: 'b', triesLeft: 3, triesDone: 0 })).toEqual({ slot: 'b', triesLeft: 2, triesDone: 1 });
    expect(afterBootAttempt({ slot: 'b', triesLeft: 0, triesDone: 3 })).toEqual({ slot: 'b', triesLeft: 0, triesDone: 3 });
    expect(() => entryFileName({ slot: 'a', triesLeft: -1 })).toThrow(RangeError);
  });
  it('maps entry + metadata to slot status', () => {
    const meta = { version: '2.0.0', securityVersion: 4, board: 'x86_64', generation: 3 };
    expect(slotStatus('b', 'a', undefined, meta)).toMatchObject({ name: 'b', active: false, state: 'empty', version: '2.0.0' });
    expect(slotStatus('a', 'a', { slot: 'a' }, meta)).toMatchObject({ active: true, state: 'good', securityVersion: 4 });
    expect(slotStatus('b', 'a', { slot: 'b', triesLeft: 2, triesDone: 1 }, meta)).toMatchObject({ state: 'trial', triesLeft: 2, triesDone: 1 });
    expect(slotStatus('b', 'a', { slot: 'b', triesLeft: 0, triesDone: 3 }, undefined)).toMatchObject({ state: 'bad', triesLeft: 0 });
  });
  it('picks the committed entry when an interrupted operation left two', () => {
    expect(pickEntry([{ slot: 'b', triesLeft: 2, triesDone: 1 }, { slot: 'b' }])).toEqual({ slot: 'b' });
    expect(pickEntry([{ slot: 'b', triesLeft: 2, triesDone: 1 }, { slot: 'b', triesLeft: 3, triesDone: 0 }])).toEqual({ slot: 'b', triesLeft: 2, triesDone: 1 });
  });
  it('slot.json is parsed strictly', () => {
    expect(parseSlotMeta('{"version":"1","securityVersion":1,"board":"x86_64","generation":2}')).toMatchObject({ generation: 2 });
    expect(parseSlotMeta('{"version":"1","securityVersion":-1,"board":"x86_64"}')).toBeUndefined();
    expect(parseSlotMeta('{"version":1,"securityVersion":1,"board":"x86_64"}')).toBeUndefined();
    expect(parseSlotMeta('not json')).toBeUndefined();
  });
});

describe('ImageSlotBackend on a fake disk', () => {
  it('factory state: both slots good, A active, floor from the running slot', async () => {
    dev = makeFakeDevice();
    expect(await dev.backend.slots()).toMatchObject([
      { name: 'a', active: true, state: 'good', version: '1.0.0' },
      { name: 'b', active: false, state: 'good', version: '1.0.0' },
    ]);
    expect(await dev.backend.securityFloor()).toBe(1);
    expect(simulateBoot(dev.esp)).toBe('a');
  });

  it('upgrade: write B, trial entry +3-0, boot B, gate passes, bless, floor raised, committed', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    const progress: number[] = [];
    expect(await dev.backend.writeInactive(b.path, b.images, (d, t) => progress.push(d / t))).toBe('b');
    expect(progress.at(-1)).toBe(1);
    expect(sha256(readFileSync(dev.parts.b).subarray(0, b.data.rootfs!.length))).toEqual(sha256(b.data.rootfs!));
    expect(sha256(readFileSync(join(dev.esp, 'pqgate-b/vmlinuz')))).toEqual(sha256(b.data.kernel!));
    // Between write and switch nothing boots B: its entry is gone, A's untouched.
    expect(entries(dev)).toEqual(['slot-a.conf']);
    expect(simulateBoot(dev.esp)).toBe('a');

    const aBefore = readFileSync(join(dev.esp, 'loader/entries/slot-a.conf'), 'utf8');
    await dev.backend.markTrial('b', b.header);
    expect(entries(dev)).toEqual(['slot-a.conf', 'slot-b+3-0.conf']);
    expect(readFileSync(join(dev.esp, 'loader/entries/slot-a.conf'), 'utf8')).toBe(aBefore);
    const bEntry = readFileSync(join(dev.esp, 'loader/entries/slot-b+3-0.conf'), 'utf8');
    expect(bEntry).toMatch(/^options fw\.slot=b console=ttyS0,115200 panic=10$/m);
    expect(bEntry).toMatch(/^version 3$/m);
    expect((await dev.backend.slots())[1]).toMatchObject({ state: 'trial', triesLeft: 3, version: '2.0.0', securityVersion: 2 });

    expect(simulateBoot(dev.esp)).toBe('b');
    expect(entries(dev)).toEqual(['slot-a.conf', 'slot-b+2-1.conf']);
    dev.running.slot = 'b';
    const r = await bootCheck(dev.backend, pass, quiet);
    expect(r).toEqual({ action: 'blessed', version: '2.0.0' });
    expect(entries(dev)).toEqual(['slot-a.conf', 'slot-b.conf']);
    expect(readFileSync(join(dev.esp, 'loader/entries/slot-a.conf'), 'utf8')).toBe(aBefore);
    expect(await dev.backend.securityFloor()).toBe(2);
    expect(await dev.backend.lastOutcome()).toMatchObject({ result: 'committed', fromVersion: '1.0.0', toVersion: '2.0.0', slot: 'b' });
    expect(dev.backend.pending()).toBeUndefined();
    // The blessed slot stays the default on later boots (higher generation).
    expect(simulateBoot(dev.esp)).toBe('b');
    expect(simulateBoot(dev.esp)).toBe('b');
    // A second boot check on a committed slot does nothing.
    expect(await bootCheck(dev.backend, pass, quiet)).toEqual({ action: 'none' });
  });

  it('a slot failing its gate falls back after three unblessed boots; the old slot records why', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    const seen: string[] = [];
    for (let boot = 1; boot <= 5; boot++) {
      const slot = simulateBoot(dev.esp)!;
      seen.push(slot + ':' + entries(dev).join(','));
      dev.running.slot = slot;
      const r = await bootCheck(dev.backend, fail('daemon: cannot connect to /run/pqgate/control.sock: ENOENT'), quiet);
      if (slot === 'b') expect(r.action).toBe('reboot');
      else if (boot === 4) expect(r).toMatchObject({ action: 'rolled-back' });
      else expect(r).toEqual({ action: 'none' });
    }
    expect(seen).toEqual([
      'b:slot-a.conf,slot-b+2-1.conf',
      'b:slot-a.conf,slot-b+1-2.conf',
      'b:slot-a.conf,slot-b+0-3.conf',
      'a:slot-a.conf,slot-b+0-3.conf',
      'a:slot-a.conf,slot-b+0-3.conf',
    ]);
    const o = await dev.backend.lastOutcome();
    expect(o).toMatchObject({ result: 'rolled-back', slot: 'b', fromVersion: '1.0.0', toVersion: '2.0.0' });
    expect(o?.reason).toContain('failed its health gate (daemon: cannot connect');
    expect(o?.reason).toContain('after 3 unblessed boots');
    expect(await dev.backend.securityFloor()).toBe(1);
    expect((await dev.backend.slots())[1]).toMatchObject({ state: 'bad', triesLeft: 0, triesDone: 3 });
  });

  it('a slot that never reports (hung kernel) is rolled back with "did not come up"', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    for (let i = 0; i < 3; i++) expect(simulateBoot(dev.esp)).toBe('b'); // panics before userspace each time
    expect(simulateBoot(dev.esp)).toBe('a');
    dev.running.slot = 'a';
    const r = await bootCheck(dev.backend, pass, quiet);
    expect(r.action).toBe('rolled-back');
    expect((await dev.backend.lastOutcome())?.reason).toMatch(/did not come up \(no health report\) in 3 boots/);
  });

  it('refuses to overwrite the fallback while the running slot is on trial', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    simulateBoot(dev.esp);
    dev.running.slot = 'b';
    const hashA = sha256(readFileSync(dev.parts.a));
    await expect(dev.backend.writeInactive(b.path, b.images)).rejects.toMatchObject({ code: 'BUSY' });
    expect(sha256(readFileSync(dev.parts.a))).toEqual(hashA);
    expect(entries(dev)).toContain('slot-a.conf');
  });

  it('a bad hash is WRITE_VERIFY and leaves the running slot and its entry untouched', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    const images = b.images.map((i) => (i.name === 'kernel' ? { ...i, sha256: new Uint8Array(32) } : i));
    const hashA = sha256(readFileSync(dev.parts.a));
    const err = await dev.backend.writeInactive(b.path, images).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeError);
    expect(err).toMatchObject({ code: 'WRITE_VERIFY' });
    expect(sha256(readFileSync(dev.parts.a))).toEqual(hashA);
    expect(entries(dev)).toEqual(['slot-a.conf']);
    expect(simulateBoot(dev.esp)).toBe('a');
    // The verified-but-unrenamed temp file is cleaned up at the next boot.
    expect(readdirSync(join(dev.esp, 'pqgate-b'))).toContain('vmlinuz.pqgate-tmp');
    await bootCheck(dev.backend, pass, quiet);
    expect(readdirSync(join(dev.esp, 'pqgate-b'))).not.toContain('vmlinuz.pqgate-tmp');
  });

  it('truncated bundle, oversize rootfs, missing rootfs: typed errors, nothing written', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    const hashB = sha256(readFileSync(dev.parts.b));
    const short = b.images.map((i) => (i.name === 'initrd' ? { ...i, size: i.size + 10 } : i));
    await expect(dev.backend.writeInactive(b.path, short)).rejects.toMatchObject({ code: 'TRUNCATED' });
    const big = b.images.map((i) => (i.name === 'rootfs' ? { ...i, size: (4 << 20) + 1 } : i));
    await expect(dev.backend.writeInactive(b.path, big)).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(dev.backend.writeInactive(b.path, b.images.filter((i) => i.name !== 'rootfs'))).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    await expect(dev.backend.writeInactive(b.path, [...b.images, b.images[0]!])).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    expect(sha256(readFileSync(dev.parts.b))).toEqual(hashB);
    expect(entries(dev)).toEqual(['slot-a.conf', 'slot-b.conf']);
  });

  it('markTrial refuses the running slot and a wrong board', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await expect(dev.backend.markTrial('a', b.header)).rejects.toMatchObject({ code: 'BUSY' });
    await expect(dev.backend.markTrial('b', { ...b.header, board: 'arm64' })).rejects.toMatchObject({ code: 'WRONG_BOARD' });
  });

  it('interrupted write (power cut mid-copy): old slot boots, pending-less state, leftovers removed', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    const cut = new Error('power cut');
    await expect(
      dev.backend.writeInactive(b.path, b.images, (done, total) => {
        if (done > total * 0.7) throw cut;
      }),
    ).rejects.toMatchObject({ code: 'WRITE_VERIFY' });
    expect(simulateBoot(dev.esp)).toBe('a');
    expect(await dev.backend.slots()).toMatchObject([{ state: 'good' }, { state: 'empty' }]);
    expect(await bootCheck(dev.backend, pass, quiet)).toEqual({ action: 'none' });
    // The next attempt goes through.
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    expect(simulateBoot(dev.esp)).toBe('b');
  });

  it('interrupted switch: pending recorded but no entry → outcome "failed", old slot runs', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    // Simulate the cut right before the entry rename: remove the entry, leave a temp copy.
    const dir = join(dev.esp, 'loader/entries');
    writeFileSync(join(dir, 'slot-b+3-0.conf.pqgate-tmp'), readFileSync(join(dir, 'slot-b+3-0.conf')));
    (await import('node:fs')).rmSync(join(dir, 'slot-b+3-0.conf'));
    expect(simulateBoot(dev.esp)).toBe('a');
    expect(await bootCheck(dev.backend, pass, quiet)).toMatchObject({ action: 'interrupted' });
    expect(await dev.backend.lastOutcome()).toMatchObject({ result: 'failed', toVersion: '2.0.0' });
    expect(existsSync(join(dir, 'slot-b+3-0.conf.pqgate-tmp'))).toBe(false);
  });

  it('blessed but the outcome not yet written (cut after the rename): the next boot finishes the commit', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    simulateBoot(dev.esp);
    dev.running.slot = 'b';
    await dev.backend.bless();
    expect(dev.backend.pending()).toBeDefined();
    expect(await bootCheck(dev.backend, pass, quiet)).toEqual({ action: 'blessed', version: '2.0.0' });
    expect(await dev.backend.lastOutcome()).toMatchObject({ result: 'committed' });
    expect(await dev.backend.securityFloor()).toBe(2);
  });

  it('second upgrade goes to A (generation keeps rising) and the floor never drops', async () => {
    dev = makeFakeDevice();
    const b = makeBundle(dev.root, '2.0.0');
    await dev.backend.writeInactive(b.path, b.images);
    await dev.backend.markTrial('b', b.header);
    simulateBoot(dev.esp);
    dev.running.slot = 'b';
    await bootCheck(dev.backend, pass, quiet);
    const c = makeBundle(dev.root, '3.0.0');
    expect(await dev.backend.writeInactive(c.path, c.images)).toBe('a');
    expect(entries(dev)).toEqual(['slot-b.conf']);
    await dev.backend.markTrial('a', { ...c.header, securityVersion: 1 });
    expect(readFileSync(join(dev.esp, 'loader/entries/slot-a+3-0.conf'), 'utf8')).toMatch(/^version 4$/m);
    expect(simulateBoot(dev.esp)).toBe('a');
    dev.running.slot = 'a';
    await bootCheck(dev.backend, pass, quiet);
    expect(await dev.backend.securityFloor()).toBe(2);
  });

  it('factory reset is a marker on the ESP', async () => {
    dev = makeFakeDevice();
    expect(dev.backend.factoryResetPending()).toBe(false);
    await dev.backend.scheduleFactoryReset();
    expect(dev.backend.factoryResetPending()).toBe(true);
    expect(readFileSync(join(dev.esp, 'pqgate/factory-reset'), 'utf8')).toMatch(/^requested 2026-11-27T04:00:00.000Z/);
  });
});
