import { describe, expect, it } from 'vitest';
import { pidCpuMs, pidsCpuMs, selfCpuMs, statCpuTicks } from '../../bench/lib/cpu.js';

// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ...
const stat = (comm: string, utime: number, stime: number) => `4242 (${comm}) S 1 4242 4242 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 33 0 12345 0 0`;

describe('bench/lib/cpu', () => {
  it('reads utime + stime (fields 14 and 15)', () => {
    expect(statCpuTicks(stat('charon', 150, 37))).toBe(187);
  });

  it('counts fields from the last ")" so a command name with spaces and parentheses does not shift them', () => {
    expect(statCpuTicks(stat('node (x) y', 9, 1))).toBe(10);
    expect(statCpuTicks(stat(') 1 2 3 4', 5, 6))).toBe(11);
  });

  it('returns 0 for text of the wrong shape', () => {
    expect(statCpuTicks('')).toBe(0);
    expect(statCpuTicks('4242 (node) S 1')).toBe(0);
    expect(statCpuTicks(stat('node', -5, 1))).toBe(0);
  });

  it('a process that burns CPU shows it in /proc, close to process.cpuUsage()', () => {
    if (process.platform !== 'linux') return;
    const p0 = pidCpuMs(process.pid);
    const s0 = selfCpuMs();
    let x = 0;
    const until = selfCpuMs() + 300;
    while (selfCpuMs() < until) for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
    const dp = pidCpuMs(process.pid) - p0;
    const ds = selfCpuMs() - s0;
    expect(x).toBeGreaterThan(0);
    expect(ds).toBeGreaterThanOrEqual(300);
    // /proc has clock-tick resolution (10 ms at CLK_TCK 100) and covers every thread of the process.
    expect(dp).toBeGreaterThan(ds - 50);
    expect(dp).toBeLessThan(ds * 3 + 50);
  });

  it('a missing process counts as 0', () => {
    expect(pidCpuMs(0x7ffffff0)).toBe(0);
    expect(pidsCpuMs([0x7ffffff0, 0x7ffffff1])).toBe(0);
  });
});
