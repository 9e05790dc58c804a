/**
 * Scenario 2 (qemu/scenarios/site-to-site): an x86_64 and an arm64 gateway,
 * joined by -netdev dgram, bring up a hybrid ECP-384 + ML-KEM-1024 tunnel in
 * the kernel (XFRM) and pass ping both ways and an 8 MiB transfer between
 * the networks behind them. Both VMs boot through UEFI in parallel.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { runChecks, runSteps } from '../../qemu/checks.js';
import { loadScenario, Testbed } from '../../qemu/scenario.js';
import { assertChecks, assertCleanSerial, report, skipReason, workDir } from './lib.js';

const skip = skipReason('x86_64') ?? skipReason('arm64');

describe.skipIf(skip !== undefined)(`site-to-site x86_64 <-> arm64 over kernel XFRM${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let bed: Testbed;

  beforeAll(async () => {
    bed = new Testbed(loadScenario('site-to-site'), workDir('site-to-site'));
    await bed.start();
  });

  afterAll(async () => {
    await bed?.stop();
  });

  it('boots both gateways, establishes the hybrid tunnel, passes ping and bulk traffic', async () => {
    const t0 = Date.now();
    const boot = await bed.waitBooted();
    report('site-to-site boot (ms since QEMU start)', boot);
    await bed.applyHostFiles();
    const hosts = bed.checkHosts();
    await runSteps(bed.scenario.pre, hosts);
    const results = await runChecks(bed.scenario.checks, hosts, { retryMs: 90_000, timeoutMs: 180_000 });
    report('site-to-site check times (ms)', Object.fromEntries(results.map((r) => [r.check.line + ':' + r.check.command.slice(0, 40), r.ms])));
    assertChecks(results);
    for (const vm of bed.vms.values()) assertCleanSerial(vm);
    report('site-to-site total (s)', Math.round((Date.now() - t0) / 1000));
  });
});
