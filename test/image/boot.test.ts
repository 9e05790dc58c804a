/**
 * Scenario 1 (qemu/scenarios/boot) and 4 (qemu/scenarios/reboot) per board:
 * the factory image boots through UEFI to the daemon, the checks pass, the
 * serial console shows no errors; then a configuration written through the
 * device survives a reboot (same VM, same disk) and the daemon comes back on
 * it. One booted VM per board serves both scenarios.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOARDS, type BoardName } from '../../qemu/board.js';
import { runChecks } from '../../qemu/checks.js';
import { bootTimes, loadScenario, MILESTONES, Testbed } from '../../qemu/scenario.js';
import { assertChecks, assertCleanSerial, buildInfo, report, skipReason, waitHttps, workDir } from './lib.js';

const ROOTFS_LIMIT = 48 * 1024 * 1024;

for (const board of BOARDS) {
  const skip = skipReason(board);
  describe.skipIf(skip !== undefined)(`${board} image${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let bed: Testbed;

    beforeAll(async () => {
      bed = new Testbed(loadScenario('boot'), workDir(`boot-${board}`), { board: board as BoardName });
      await bed.start();
    });

    afterAll(async () => {
      await bed?.stop();
    });

    it('fits the rootfs budget', () => {
      const info = buildInfo(board);
      expect(info).toBeDefined();
      report(`${board} rootfs`, `${(info!.rootfsBytes / 1048576).toFixed(1)} MiB (build ${info!.buildSeconds}s)`);
      expect(info!.rootfsBytes).toBeLessThanOrEqual(ROOTFS_LIMIT);
    });

    it('boots through UEFI to the daemon; checks pass; clean serial log', async () => {
      const times = await bed.waitBooted();
      report(`${board} boot milestones (ms since QEMU start)`, times.gw);
      const results = await runChecks(bed.scenario.checks, bed.checkHosts(), { retryMs: 20_000 });
      assertChecks(results);
      // The web admin answers HTTPS on the forwarded port (any non-5xx page: setup/login redirect).
      const web = await waitHttps(bed.hostPorts.get('gw')!.web!, 120_000);
      report(`${board} web admin`, `HTTP ${web.status} at ${bed.vm('gw').elapsed()} ms since QEMU start`);
      expect(web.status).toBeLessThan(500);
      assertCleanSerial(bed.vm('gw'));
    });

    it('keeps its configuration across a reboot', async () => {
      const vm = bed.vm('gw');
      const reboot = loadScenario('reboot');
      const before = vm.mark();
      // The configuration an operator would save: a tunnel, a static LAN address, a hostname.
      for (const [guest, local] of Object.entries(reboot.spec.hosts.gw!.files ?? {})) {
        await vm.writeFile(guest, readFileSync(join(reboot.dir, local)));
      }
      await vm.sh('sync; reboot');
      await vm.waitFor(/Restarting system|reboot: Restarting/, 60_000, before);
      const after = vm.mark();
      await vm.waitFor(MILESTONES.daemon, 180_000, after);
      report(`${board} reboot milestones (ms since QEMU start)`, bootTimes(vm, after));
      const results = await runChecks(reboot.checks, bed.checkHosts(), { retryMs: 20_000 });
      assertChecks(results);
      assertCleanSerial(vm, after);
    });
  });
}
