#!/usr/bin/env node
/**
 * `npm run qemu -- --board x86_64|arm64 [options]`: boot a built image the
 * way hardware boots it (UEFI → systemd-boot → slot A) with the serial
 * console on this terminal and the web admin / IKE ports forwarded to
 * 127.0.0.1. Ctrl-C stops the VM.
 *
 *   --board B           x86_64 or arm64 (required)
 *   --scenario NAME     run a scenario folder from qemu/scenarios instead
 *                       (boot, reboot need --board; site-to-site boots both boards;
 *                       strongswan runs from `npx vitest run --project image`)
 *   --port NAME=PORT    host port for a forwarded guest port (web, http, ike, natt);
 *                       default web=8443 http=8080 ike=5500 natt=14500
 *   --workdir DIR       VM files (default test-artifacts/image/manual-<board>)
 *   --keep-disk         boot the existing overlay in --workdir again (configuration kept)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isBoard, loadBoard, REPO, type BoardName } from './board.js';
import { formatResults, runChecks, runSteps } from './checks.js';
import { loadScenario, MILESTONES, bootTimes, Testbed } from './scenario.js';
import { Vm } from './vm.js';

function usage(msg?: string): never {
  if (msg) process.stderr.write(`qemu: ${msg}\n`);
  process.stderr.write('usage: npm run qemu -- --board x86_64|arm64 [--scenario NAME] [--port web=8443 ...] [--workdir DIR] [--keep-disk]\n');
  process.exit(2);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let board: BoardName | undefined;
  let scenario: string | undefined;
  let workdir: string | undefined;
  let keep = false;
  const ports: Record<string, number> = { web: 8443, http: 8080, ike: 5500, natt: 14500 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = () => args[++i] ?? usage(`${a} needs a value`);
    if (a === '--board') {
      const b = v();
      if (!isBoard(b)) usage(`unknown board ${b}`);
      board = b;
    } else if (a === '--scenario') scenario = v();
    else if (a === '--workdir') workdir = v();
    else if (a === '--keep-disk') keep = true;
    else if (a === '--port') {
      const m = /^(\w+)=(\d+)$/.exec(v());
      if (!m) usage('--port NAME=PORT');
      ports[m[1]!] = Number(m[2]);
    } else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }

  if (scenario) {
    const sc = loadScenario(scenario);
    const bed = new Testbed(sc, workdir ?? join(REPO, 'test-artifacts', 'image', `scenario-${scenario}`), board ? { board } : {});
    const stop = () => void bed.stop().then(() => process.exit(130));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      await bed.start();
      process.stdout.write(`booting ${[...bed.vms.keys()].join(', ')} (serial logs in ${bed.workDir})\n`);
      const boot = await bed.waitBooted();
      process.stdout.write(`booted (ms since QEMU start): ${JSON.stringify(boot)}\n`);
      await bed.applyHostFiles();
      const hosts = bed.checkHosts();
      await runSteps(sc.pre, hosts);
      const results = await runChecks(sc.checks, hosts, { retryMs: 90_000 });
      process.stdout.write(formatResults(results) + '\n');
      await runSteps(sc.post, hosts).catch((e: Error) => process.stderr.write(`posttest: ${e.message}\n`));
      const failed = results.filter((r) => !r.pass).length;
      process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
      return failed ? 1 : 0;
    } finally {
      await bed.stop();
    }
  }

  if (!board) usage('--board is required');
  const b = loadBoard(board);
  const dir = workdir ?? join(REPO, 'test-artifacts', 'image', `manual-${board}`);
  const vm = new Vm({ board: b, name: board, workDir: dir, net: { hostPorts: ports }, echo: process.stdout });
  if (!keep || !existsSync(join(dir, 'disk.qcow2'))) vm.prepare();
  process.stdout.write(`${vm.argv().join(' ')}\n`);
  process.stdout.write(`forwarded: ${Object.entries(ports).map(([k, p]) => `${k} 127.0.0.1:${p}`).join(', ')}; test console: ${vm.testSocket}\n`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void vm.kill().then(() => process.exit(0)));
  vm.start();
  await vm.waitFor(MILESTONES.daemon, 300_000);
  process.stdout.write(`\n[qemu] daemon up; milestones (ms since QEMU start): ${JSON.stringify(bootTimes(vm))}\n`);
  await new Promise(() => undefined); // until Ctrl-C
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`qemu: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
