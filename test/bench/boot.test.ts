/**
 * bench:boot's arithmetic (bench/boot.ts): phase durations from milestones,
 * medians over runs with missing milestones, and which runs the summary uses.
 * The booting itself is exercised by `npm run bench:boot` (QEMU, minutes).
 */
import { describe, expect, it } from 'vitest';
import { BOOT_MILESTONES, BOOT_PHASES, WEB_MILESTONES, median, phases, summarize, type BootRun } from '../../bench/boot.js';
import { MILESTONES } from '../../qemu/scenario.js';

const run = (kind: BootRun['kind'], ms: BootRun['ms'], error?: string): BootRun => ({ kind, ms, cpuMs: {}, qemuCpuMs: 0, loadStart: 0, loadEnd: 0, ...(error ? { error } : {}) });

describe('bench:boot', () => {
  it('has a serial milestone for every phase boundary but the two HTTPS ones', () => {
    expect(WEB_MILESTONES).toEqual(['web', 'admin']);
    for (const m of BOOT_MILESTONES.filter((x) => !WEB_MILESTONES.includes(x))) expect(MILESTONES).toHaveProperty(m);
    // Phases chain: each starts where the previous ended.
    for (let i = 1; i < BOOT_PHASES.length; i++) expect(BOOT_PHASES[i]!.from).toBe(BOOT_PHASES[i - 1]!.to);
  });

  it('computes phase durations and leaves out a phase with a missing end', () => {
    const p = phases({ firmware: 4000, kernel: 7500, init: 10000, rootfs: 11000, system: 12500, daemon: 20000, web: 21000, admin: 21400 });
    expect(p).toEqual({ firmware: 4000, loader: 3500, kernel: 2500, initramfs: 1000, rcS: 1500, daemon: 7500, web: 1000, admin: 400 });
    const q = phases({ firmware: 4000, init: 10000 });
    expect(q.loader).toBeUndefined();
    expect(q.kernel).toBeUndefined();
    expect(q.firmware).toBe(4000);
  });

  it('takes medians of the values that exist', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([undefined, 5, NaN])).toBe(5);
    expect(median([])).toBeUndefined();
  });

  it('summarizes each kind without the failed runs', () => {
    const runs = [
      run('fresh', { firmware: 4000, web: 30000 }),
      run('fresh', { firmware: 6000, web: 40000 }),
      run('fresh', { firmware: 1000 }, 'timeout'),
      run('reboot', { firmware: 3000, web: 20000 }),
    ];
    const f = summarize(runs, 'fresh');
    expect(f.n).toBe(2);
    expect(f.milestones.firmware).toBe(5000);
    expect(f.milestones.web).toBe(35000);
    expect(summarize(runs, 'reboot').milestones.web).toBe(20000);
  });
});
