/**
 * The real DevicePlatform of the appliance image (docs/image.md): GPT
 * partitions found by label through sysfs (no udev in the image), the ESP
 * mounted read-only by rcS on /run/pqgate/esp and remounted read-write only
 * while the slot writer works, upgrade state in /data/upgrade; and the
 * image's health-gate checks (control socket, HTTPS on 443, tunnel probes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { controlCall } from '../control/client.js';
import { imageSlot } from '../appliance/system.js';
import { packageVersion } from '../appliance/version.js';
import type { SlotName } from './types.js';
import { UpgradeError } from './types.js';
import { ImageSlotBackend, type DevicePlatform } from './device.js';
import { GateFatal, unhealthyProbedTunnels, type GateCheck } from './health-gate.js';

/** Starts of the daemon service after which a daemon that never answered is judged crash-looping. */
export const CRASH_LOOP_STARTS = 4;

/** How often `service daemon` started the daemon since boot (one line each in /run/pqgate/daemon.starts). */
export function daemonStarts(file = '/run/pqgate/daemon.starts'): number {
  return (read(file) ?? '').split('\n').filter((l) => l.trim() !== '').length;
}

export const ESP_MOUNT = '/run/pqgate/esp';
export const STATE_DIR = '/data/upgrade';
export const CONTROL_SOCKET = '/run/pqgate/control.sock';
/** The web admin's bundle in the image (image/lib/esbuild.mjs); the gate checks HTTPS only when it is built in. */
export const WEBUI_SERVER = '/usr/lib/pqgate/lib/web.cjs';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** /sys/class/block entry of the partition with this GPT name, or undefined. */
export function findPartition(label: string, sysBlock = '/sys/class/block'): string | undefined {
  let names: string[] = [];
  try {
    names = readdirSync(sysBlock);
  } catch {
    return undefined;
  }
  for (const n of names) {
    const u = read(`${sysBlock}/${n}/uevent`);
    if (u && u.split('\n').includes(`PARTNAME=${label}`)) return n;
  }
  return undefined;
}

export function boardName(release = read('/etc/pqgate-release') ?? ''): string {
  // The image records its board at build time (image/boards/*/post-build.sh writes /etc/pqgate-release).
  return /^BOARD=(\S+)$/m.exec(release)?.[1] ?? (process.arch === 'arm64' ? 'arm64' : 'x86_64');
}

export function imagePlatform(): DevicePlatform {
  let rwDepth = 0;
  const mount = (opts: string) => execFileSync('mount', ['-o', opts, ESP_MOUNT], { stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    board: boardName(),
    runningSlot: () => imageSlot() as SlotName | undefined,
    partitionPath(label) {
      const n = findPartition(label);
      if (!n) throw new UpgradeError('NO_BACKEND', `no partition labelled ${label}`);
      return `/dev/${n}`;
    },
    partitionSize(path) {
      const n = path.replace(/^\/dev\//, '');
      const sectors = Number((read(`/sys/class/block/${n}/size`) ?? '').trim());
      if (!Number.isSafeInteger(sectors) || sectors <= 0) throw new UpgradeError('NO_BACKEND', `cannot read the size of ${path}`);
      return sectors * 512; // sysfs counts 512-byte sectors whatever the device's block size
    },
    espDir: ESP_MOUNT,
    async withEspWritable(fn) {
      if (!existsSync(`${ESP_MOUNT}/loader`)) throw new UpgradeError('NO_BACKEND', `the ESP is not mounted on ${ESP_MOUNT}`);
      if (rwDepth++ === 0) mount('remount,rw');
      try {
        return await fn();
      } finally {
        if (--rwDepth === 0) {
          execFileSync('sync');
          try {
            mount('remount,ro');
          } catch {
            // busy (a reader): stays rw until the next boot; the writes are synced
          }
        }
      }
    },
    stateDir: STATE_DIR,
    defaultOptions(slot) {
      const cur = (read('/proc/cmdline') ?? '').trim().split(/\s+/).filter((o) => o && !o.startsWith('BOOT_IMAGE=') && !o.startsWith('fw.slot=') && !o.startsWith('pqgate.factory_reset'));
      return [`fw.slot=${slot}`, ...cur].join(' ');
    },
    reboot() {
      // Through init (busybox reboot signals PID 1), so rcK stops the daemon and unmounts /data.
      spawn('reboot', [], { stdio: 'ignore', detached: true }).unref();
      return Promise.resolve();
    },
    runningVersion: () => packageVersion(),
  };
}

let backend: ImageSlotBackend | undefined;

/** The image's SlotBackend, or undefined when not running from a firmware slot. */
export function imageSlotBackend(): ImageSlotBackend | undefined {
  if (imageSlot() === undefined || !existsSync(`${ESP_MOUNT}/loader`)) return undefined;
  return (backend ??= new ImageSlotBackend(imagePlatform()));
}

function httpsAnswers(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // The device's own certificate is self-signed (first boot generates it); any HTTP answer means the web admin is serving.
    // node:https (with tls and http) is loaded only here: the daemon bundles
    // this module for imageSlotBackend(), and compiling https at its start
    // cost ~0.25 s under QEMU TCG (docs/image.md "Node start-up").
    const { request } = process.getBuiltinModule('node:https');
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve();
    });
    req.on('timeout', () => req.destroy(new Error(`no answer on HTTPS port ${port} within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new Error(`web admin on port ${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    req.end();
  });
}

/** The gate checks of the image: daemon, web admin (if built in), probed tunnels. */
export function imageGateChecks(): GateCheck[] {
  let lastStatus: unknown;
  const checks: GateCheck[] = [
    {
      name: 'daemon',
      async run() {
        try {
          lastStatus = await controlCall(CONTROL_SOCKET, 'status.tunnels', {}, { timeoutMs: 5000 });
        } catch (e) {
          // `service daemon` logs each start; a daemon that keeps exiting will not come up by waiting.
          const starts = daemonStarts();
          if (starts >= CRASH_LOOP_STARTS) throw new GateFatal(`started ${starts} times since boot and never answered (${(e as Error).message})`);
          throw e;
        }
      },
    },
  ];
  if (existsSync(WEBUI_SERVER)) checks.push({ name: 'web admin', run: () => httpsAnswers(443, 5000) });
  checks.push({
    name: 'tunnel health probes',
    async run() {
      const { failing } = unhealthyProbedTunnels(lastStatus);
      if (failing.length) throw new Error(`not up: ${failing.join(', ')}`);
    },
  });
  return checks;
}
