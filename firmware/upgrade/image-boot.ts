/**
 * Once per boot (inittab `once` → `service upgrade-boot` →
 * /usr/lib/pqgate/upgrade-boot.mjs, from the image's bundle): the device side
 * of firmware upgrades (device-boot.ts, docs/upgrade-device.md).
 *  - trial slot: health gate (daemon on its control socket, web admin on 443,
 *    probed tunnels up) → bless + raise the downgrade floor + 'committed';
 *    failure → gate report on /data, then reboot so systemd-boot counts down;
 *  - old slot after a fallback: record 'rolled-back' with the reason.
 * Gate timeout: pqgate.gate_timeout=SECONDS on the kernel command line
 * (default 300: TCG emulation needs most of it, hardware a fraction).
 *
 * `service upgrade-boot` decides in shell whether there is anything to do
 * (no trial entry, no pending record, no leftovers: the common boot) and
 * only then starts node, so a normal boot spends no CPU here; node then
 * lowers its own priority.
 */
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { imageSlotBackend, imageGateChecks } from './device-image.js';
import { bootCheck } from './device-boot.js';
import { runHealthGate } from './health-gate.js';

export async function upgradeBootMain(): Promise<void> {
  const log = (m: string): void => void process.stdout.write(`pqgate-upgrade: ${m}\n`);
  // Behind the daemon and the web admin, which start at the same time (the
  // image's busybox has no `nice` applet). The health gate only polls.
  try {
    setPriority(5);
  } catch {
    // not fatal: the gate works at any priority
  }
  const cmdline = readFileSync('/proc/cmdline', 'utf8');
  const t = /(?:^|\s)pqgate\.gate_timeout=(\d{1,5})(?:\s|$)/.exec(cmdline)?.[1];
  const timeoutMs = (t ? Number(t) : 300) * 1000;

  const backend = imageSlotBackend();
  if (!backend) {
    log('not booted from a firmware slot with a mounted ESP: nothing to do');
    // Stay: init's `once` does not restart us, and the service's log pipe wants a clean end.
    process.exit(0);
  }
  try {
    const r = await bootCheck(backend, () => runHealthGate(imageGateChecks(), { timeoutMs, intervalMs: 2000 }), log);
    log(`boot check: ${r.action}${'reason' in r ? ` (${r.reason})` : ''}${'version' in r ? ` ${r.version}` : ''}`);
    if (r.action === 'reboot') {
      log('rebooting: the boot counter decides whether this slot gets another try');
      await backend.reboot();
    }
  } catch (e) {
    log(`boot check failed: ${(e as Error)?.stack ?? String(e)}`);
    process.exit(1);
  }
}
