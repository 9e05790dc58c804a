/**
 * The machine around the daemon: `system.info` from node:os, /proc and
 * /sys (the `systeminformation` package is not installed offline, and what
 * the status page needs is a handful of files), whether this is the
 * appliance image (only there may the daemon reboot the machine), and group
 * lookups for the web admin's control socket.
 *
 * The appliance image is recognised by its boot loader's kernel argument
 * `fw.slot=a|b` (image/initramfs, docs/image.md); `pqgate daemon
 * --appliance` forces it (a test rig), nothing else turns it on.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus, freemem, hostname, loadavg, networkInterfaces, totalmem, uptime } from 'node:os';
import type { SystemInfo } from '../control/api.js';
import { packageVersion } from './version.js';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The active firmware slot when booted from the appliance image (kernel command line `fw.slot=`), else undefined. */
export function imageSlot(cmdline = read('/proc/cmdline') ?? ''): string | undefined {
  return /(?:^|\s)fw\.slot=([ab])(?:\s|$)/.exec(cmdline)?.[1];
}

function prefixLen(netmask: string, cidr: string | null): string {
  if (cidr) return cidr;
  return netmask;
}

function interfaces(): SystemInfo['interfaces'] {
  const byName = new Map<string, SystemInfo['interfaces'][number]>();
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    const list = addrs ?? [];
    const mac = list.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac;
    byName.set(name, { name, addresses: list.map((a) => prefixLen(a.netmask, a.cidr)), ...(mac ? { mac } : {}), up: true });
  }
  // Interfaces without addresses (a WAN port waiting for DHCP) and the real link state come from sysfs.
  let names: string[] = [];
  try {
    names = readdirSync('/sys/class/net');
  } catch {
    // not Linux, or no sysfs: node:os's view stands
  }
  for (const name of names) {
    const state = read(`/sys/class/net/${name}/operstate`)?.trim();
    const flags = Number.parseInt(read(`/sys/class/net/${name}/flags`)?.trim() ?? '', 16);
    const up = state === 'up' || (state === 'unknown' && Number.isFinite(flags) && (flags & 1) === 1);
    const mac = read(`/sys/class/net/${name}/address`)?.trim();
    const cur = byName.get(name) ?? { name, addresses: [] };
    byName.set(name, { ...cur, ...(mac && mac !== '00:00:00:00:00:00' ? { mac } : {}), up });
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function temperatures(): SystemInfo['temperaturesC'] {
  const out: SystemInfo['temperaturesC'] = [];
  let zones: string[] = [];
  try {
    zones = readdirSync('/sys/class/thermal').filter((z) => z.startsWith('thermal_zone'));
  } catch {
    return out;
  }
  for (const z of zones) {
    const milli = Number(read(`/sys/class/thermal/${z}/temp`)?.trim());
    if (!Number.isFinite(milli)) continue;
    out.push({ label: read(`/sys/class/thermal/${z}/type`)?.trim() || z, value: Math.round(milli / 100) / 10 });
  }
  return out;
}

function firmware(slot: string | undefined): SystemInfo['firmware'] {
  if (!slot) return null;
  // The running slot's version is ours; the other slot's is not recorded anywhere this daemon can read (docs/image.md).
  const other = slot === 'a' ? 'b' : 'a';
  return {
    active: slot,
    slots: [
      { name: slot, version: packageVersion(), state: 'active' },
      { name: other, version: 'unknown', state: 'inactive' },
    ],
    lastUpgrade: null,
  };
}

export function systemInfo(o: { daemonUptimeSec: number; dataPlane: string; slot: string | undefined }): SystemInfo {
  const c = cpus();
  return {
    hostname: hostname(),
    version: packageVersion(),
    uptimeSec: Math.round(uptime()),
    daemonUptimeSec: Math.round(o.daemonUptimeSec),
    dataPlane: o.dataPlane,
    cpu: { model: c[0]?.model ?? 'unknown', cores: c.length, load: loadavg().map((x) => Math.round(x * 100) / 100) },
    memory: { totalBytes: totalmem(), freeBytes: freemem(), rssBytes: process.memoryUsage().rss },
    interfaces: interfaces(),
    temperaturesC: temperatures(),
    firmware: firmware(o.slot),
  };
}

/** Reboot the appliance: busybox init's `reboot` (runs rcK: services stopped, file systems synced). */
export function rebootMachine(): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('/sbin/reboot', [], { stdio: 'ignore', detached: true });
    p.once('error', reject);
    p.once('spawn', () => {
      p.unref();
      resolve();
    });
  });
}

/** gid of a group from /etc/group, undefined if there is no such group. */
export function groupId(name: string, etcGroup = read('/etc/group') ?? ''): number | undefined {
  for (const line of etcGroup.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2]!)) return Number(f[2]);
  }
  return undefined;
}
