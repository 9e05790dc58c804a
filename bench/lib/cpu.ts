/**
 * CPU time of processes, for the handshake benchmark's per-setup CPU cost.
 *
 * Why: on this shared 2-core machine the wall-clock rate of a run depends on
 * what else is running (load averages of 5-25 were seen), while the CPU time
 * a daemon spends per setup barely does. Both pqgate and strongSwan are
 * therefore also reported as "CPU ms per setup" per side, read from
 * /proc/<pid>/stat (utime + stime, fields 14 and 15, proc(5)); for a
 * multi-threaded charon this already sums every thread. Kernel work done in
 * softirq context (veth, UDP) is charged to no process and is not included.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of one process in milliseconds; 0 if it is gone or unreadable. */
export function pidCpuMs(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  return (statCpuTicks(stat) * 1000) / clockTicks();
}

/**
 * utime + stime (clock ticks) from the text of /proc/<pid>/stat; 0 if it
 * does not have the expected shape. The command name (field 2) is in
 * parentheses and may itself contain spaces and ')', so fields are counted
 * from the last ')'.
 */
export function statCpuTicks(stat: string): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) return 0;
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state), so utime (14) is rest[11] and stime (15) rest[12].
  const ticks = Number(rest[11]) + Number(rest[12]);
  return Number.isFinite(ticks) && ticks >= 0 ? ticks : 0;
}

/** Sum of pidCpuMs over several processes. */
export function pidsCpuMs(pids: readonly number[]): number {
  return pids.reduce((s, p) => s + pidCpuMs(p), 0);
}

/** This process's CPU time (user + system) in milliseconds, microsecond resolution. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
