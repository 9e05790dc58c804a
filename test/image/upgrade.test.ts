/**
 * qemu/scenarios/upgrade, one VM session per board (docs/upgrade-device.md); arm64 runs 1-2 only:
 *  1. factory state: both slots good, A running, ESP read-only, default glob;
 *  2. v1 → v2 into slot B: trial entry slot-b+3-0.conf, reboot, the health
 *     gate passes, the entry is blessed (slot-b.conf), the floor raised, the
 *     configuration (tunnel in the database, LAN, hostname) kept;
 *  3. a v2 whose daemon is broken into slot A: three unblessed boots (the
 *     real systemd-boot counting +3-0 → +0-3), then B again by itself, and B
 *     records 'rolled-back' with the gate's reason;
 *  4. power cuts (seeded, PQGATE_POWERCUT_POINTS, default 4; the issue's 20
 *     with PQGATE_POWERCUT_POINTS=20) during write, switch and first boot:
 *     every time the VM comes back on a working slot with its configuration;
 *  5. factory reset from the reset request (the backend's scheduleFactoryReset,
 *     what the web admin and CLI call) and from the kernel flag.
 * The slots are written by a test-only driver through the same SlotBackend
 * the upgrade service uses; bundle signatures are h-bundle's part.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBoard } from '../../qemu/board.js';
import { runChecks } from '../../qemu/checks.js';
import { loadScenario, MILESTONES, Testbed } from '../../qemu/scenario.js';
import type { Vm } from '../../qemu/vm.js';
import { request } from 'node:https';
import { assertChecks, report, skipReason, waitHttps, workDir } from './lib.js';
import { makeTestBundle, makeVariant, rng, serveFiles, type TestBundle } from './upgrade-lib.js';

// x86_64 runs everything; arm64 the lighter upgrade check (factory state, v1 → v2 with bless): TCG on arm64 is slower.
for (const BOARD of ['x86_64', 'arm64'] as const) {
const skip = skipReason(BOARD);
const heavy = BOARD === 'x86_64';
/** Boot to the daemon: ~60 s on an idle machine, several times that on a loaded one (PQGATE_IMAGE_BOOT_TIMEOUT, ms). */
const BOOT_TIMEOUT = Number(process.env.PQGATE_IMAGE_BOOT_TIMEOUT ?? 600_000);
const UPGRADE_DONE = /pqgate-upgrade: boot check: (blessed|reboot|rolled-back|none|interrupted)/;

interface Status {
  slots: { name: string; active: boolean; state: string; version?: string; triesLeft?: number; triesDone?: number }[];
  floor: number;
  outcome: { result: string; reason?: string; toVersion: string; fromVersion: string } | null;
  pending: unknown;
}

describe.skipIf(skip !== undefined)(`upgrade scenario on ${BOARD}${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const scenario = loadScenario('upgrade');
  const dir = skip ? '' : workDir(`upgrade-${BOARD}`);
  let bed: Testbed;
  let vm: Vm;
  let server: Server;
  let url: (f: string) => string;
  let good: TestBundle;
  let bad: TestBundle;
  let v1 = '';
  const t0 = Date.now();

  const driver = async (args: string, timeoutMs = 60_000): Promise<string> => vm.sh(`node /data/upgrade-driver.mjs ${args}`, timeoutMs);
  const status = async (): Promise<Status> => JSON.parse((await driver('status')).trim().split('\n').pop()!) as Status;
  const entries = async () => (await vm.sh('ls /run/pqgate/esp/loader/entries')).trim().split(/\s+/).sort();
  const fetch = (name: string, to = '/tmp') => vm.sh(`wget -q -O ${to}/${name.split('/').pop()} ${url(name)}`, 120_000);
  const webGet = (path: string) =>
    new Promise<{ status: number; location?: string }>((resolve, reject) => {
      const q = request({ host: '127.0.0.1', port: bed.hostPorts.get('gw')!.web!, path, rejectUnauthorized: false, timeout: 20_000 }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, ...(res.headers.location ? { location: res.headers.location } : {}) });
      });
      q.on('error', reject);
      q.on('timeout', () => q.destroy(new Error('timeout')));
      q.end();
    });
  /**
   * Reboot through init from the test console. Detached with a delay so the
   * console command returns before init kills every process (a plain
   * `reboot` races its own end marker against init's SIGTERM).
   */
  const reboot = async (): Promise<number> => {
    const mark = vm.mark();
    await vm.sh('sync; (sleep 1; reboot) > /dev/null 2>&1 &');
    await vm.waitFor(/reboot: Restarting system/, 120_000, mark);
    return mark;
  };
  /** Wait for the upgrade boot service's verdict on the boot that starts after `from`. */
  const bootVerdict = async (from: number, timeoutMs = BOOT_TIMEOUT + 300_000) => (await vm.waitFor(UPGRADE_DONE, timeoutMs, from)).line;

  beforeAll(async () => {
    const b = loadBoard(BOARD);
    v1 = (JSON.parse(readFileSync(join(b.outDir, 'build', 'rootfs', 'usr/lib/pqgate/package.json'), 'utf8')) as { version: string }).version;
    const tPack = Date.now();
    const vGood = makeVariant(join(b.outDir, 'rootfs.squashfs'), dir, `${v1}-upg2`);
    const vBad = heavy ? makeVariant(join(b.outDir, 'rootfs.squashfs'), dir, `${v1}-broken`, { brokenDaemon: true }) : undefined;
    const parts = (v: { squashfs: string }) => ({ rootfs: v.squashfs, kernel: join(b.outDir, 'vmlinuz'), initrd: join(b.outDir, 'initrd.img') });
    good = makeTestBundle(dir, BOARD, vGood.version, 2, parts(vGood));
    bad = vBad ? makeTestBundle(dir, BOARD, vBad.version, 3, parts(vBad)) : good;
    report('repacked v2 rootfs + bundles', `${Date.now() - tPack} ms; good ${good.size} bytes`);
    const s = await serveFiles([good.file, good.manifest, bad.file, bad.manifest, join(scenario.dir, 'upgrade-driver.mjs'), join(scenario.dir, 'gw', 'config.json')]);
    server = s.server;
    url = (f) => `http://10.0.2.2:${s.port}/${f.split('/').pop()}`;

    bed = new Testbed(scenario, dir, { board: BOARD });
    await bed.start();
    vm = bed.vm('gw');
    // Generous: the build machine's TCG guests slow down several-fold under load.
    await bed.waitBooted(BOOT_TIMEOUT);
    await bed.applyHostFiles(BOOT_TIMEOUT);
    await fetch('upgrade-driver.mjs', '/data');
    await fetch('config.json');
    await vm.sh('pqgate config set /tmp/config.json');
    report('setup', `${Date.now() - t0} ms`);
  }, 1_800_000);

  afterAll(async () => {
    await bed?.stop();
    server?.close();
    report('upgrade scenario total', `${Math.round((Date.now() - t0) / 1000)} s`);
  });

  it('factory state: both slots good, A running, default is a glob, ESP read-only', async () => {
    const s = await status();
    expect(s.slots).toMatchObject([
      { name: 'a', active: true, state: 'good', version: v1 },
      { name: 'b', active: false, state: 'good', version: v1 },
    ]);
    expect(await vm.sh('cat /run/pqgate/esp/loader/loader.conf')).toMatch(/^default slot-\*$/m);
    expect(await entries()).toEqual(['slot-a.conf', 'slot-b.conf']);
    expect(await vm.sh("grep ' /run/pqgate/esp ' /proc/mounts")).toMatch(/vfat ro,/);
  });

  it('v1 → v2: trial entry, reboot, health gate, bless; configuration kept', async () => {
    const t = Date.now();
    await fetch(good.file);
    await fetch(good.manifest);
    const out = await driver(`install /tmp/${good.file.split('/').pop()} /tmp/${good.manifest.split('/').pop()}`, 300_000);
    expect(out).toContain('{"slot":"b"}');
    expect(await entries()).toEqual(['slot-a.conf', 'slot-b+3-0.conf']);
    await vm.sh('rm -f /tmp/bundle-*');
    const mark = await reboot();
    const verdict = await bootVerdict(mark);
    expect(verdict).toContain(`blessed ${v1}-upg2`);
    expect(await vm.sh('cat /proc/cmdline')).toMatch(/fw\.slot=b/);
    expect(await entries()).toEqual(['slot-a.conf', 'slot-b.conf']);
    const s = await status();
    expect(s.slots[1]).toMatchObject({ name: 'b', active: true, state: 'good', version: `${v1}-upg2` });
    expect(s.outcome).toMatchObject({ result: 'committed', fromVersion: v1, toVersion: `${v1}-upg2` });
    expect(s.floor).toBe(2);
    assertChecks(await runChecks(scenario.checks, bed.checkHosts(), { retryMs: 30_000 }));
    report('upgrade v1→v2 (install + reboot + gate + bless)', `${Math.round((Date.now() - t) / 1000)} s`);
  }, 1_800_000);

  it.skipIf(!heavy)('a v2 that fails its health gate: three unblessed boots, then back on B by itself, with the reason', async () => {
    const t = Date.now();
    await fetch(bad.file);
    await fetch(bad.manifest);
    expect(await driver(`install /tmp/${bad.file.split('/').pop()} /tmp/${bad.manifest.split('/').pop()}`, 300_000)).toContain('{"slot":"a"}');
    expect(await entries()).toEqual(['slot-a+3-0.conf', 'slot-b.conf']);
    await vm.sh('rm -f /tmp/bundle-*');
    const mark = await reboot();
    // Each trial boot ends with the gate's failure and a reboot; the fourth boot is slot B.
    await vm.waitFor(/pqgate-upgrade: rolled back:/, 4 * BOOT_TIMEOUT, mark);
    const boots = vm.lines.slice(mark).filter((l) => MILESTONES.rootfs.test(l.text)).map((l) => /slot ([ab])/.exec(l.text)![1]);
    report('fallback boots (slot per boot)', boots.join(' '));
    expect(boots).toEqual(['a', 'a', 'a', 'b']);
    expect(vm.serialText(mark)).toMatch(/health gate failed: daemon: started \d+ times since boot and never answered \(cannot connect/);
    expect(await entries()).toEqual(['slot-a+0-3.conf', 'slot-b.conf']);
    const s = await status();
    expect(s.slots).toMatchObject([{ name: 'a', state: 'bad', triesLeft: 0, triesDone: 3 }, { name: 'b', active: true, state: 'good' }]);
    expect(s.outcome).toMatchObject({ result: 'rolled-back', toVersion: `${v1}-broken` });
    expect(s.outcome!.reason).toMatch(/failed its health gate \(daemon: started \d+ times since boot and never answered .*\); back on .* after 3 unblessed boots/);
    expect(s.floor).toBe(2);
    assertChecks(await runChecks(scenario.checks, bed.checkHosts(), { retryMs: 30_000 }));
    report('failed-gate fallback (install + 3 trial boots + fallback boot)', `${Math.round((Date.now() - t) / 1000)} s`);
  }, 5_400_000);

  it.skipIf(!heavy)('power cuts during write, switch and first boot: always back on a working slot with its configuration', async () => {
    const points = Number(process.env.PQGATE_POWERCUT_POINTS ?? 4);
    const seed = Number(process.env.PQGATE_POWERCUT_SEED ?? Date.now() % 100000);
    const rand = rng(seed);
    report('power-cut seed', `${seed} (${points} points)`);
    const phases = ['write', 'switch', 'first-boot'] as const;
    const bundleArgs = `/tmp/${good.file.split('/').pop()} /tmp/${good.manifest.split('/').pop()}`;
    for (let i = 0; i < points; i++) {
      const phase = phases[Math.floor(rand() * phases.length)]!;
      // /tmp is RAM: fetch the bundle again after every (re)boot.
      await fetch(good.file);
      await fetch(good.manifest);
      const s0 = await status();
      const running = s0.slots.find((x) => x.active)!.name;
      let delayMs = 0;
      if (phase === 'write') {
        // Started in the background in the guest, so the test console stays free; cut inside the write.
        await vm.sh(`(node /data/upgrade-driver.mjs install ${bundleArgs} > /tmp/install.log 2>&1 &)`);
        delayMs = Math.floor(rand() * 8000);
      } else if (phase === 'switch') {
        await driver(`install ${bundleArgs}`, 300_000);
        await vm.sh('sync; (sleep 1; reboot) > /dev/null 2>&1 &');
        delayMs = Math.floor(rand() * 4000);
      } else {
        await driver(`install ${bundleArgs}`, 300_000);
        await reboot();
        delayMs = Math.floor(rand() * 40_000);
      }
      await new Promise((r) => setTimeout(r, delayMs));
      report(`power cut ${i + 1}/${points}`, `phase ${phase}, ${delayMs} ms in (running ${running})`);
      await vm.kill();
      const mark = vm.mark();
      vm.start();
      await vm.waitFor(MILESTONES.daemon, BOOT_TIMEOUT, mark);
      // Whatever the boot check decides (bless a trial, record a rollback, nothing), the result must be a working, configured system.
      const verdict = await bootVerdict(mark, 300_000);
      if (/reboot/.test(verdict)) throw new Error(`power cut ${i + 1}: the good v2 failed its gate: ${vm.serialText(mark).slice(-2000)}`);
      assertChecks(await runChecks(scenario.checks, bed.checkHosts(), { retryMs: 30_000 }));
      const s = await status();
      const active = s.slots.find((x) => x.active)!;
      expect(active.state, `cut ${i + 1}`).toBe('good');
      report(`  back on slot ${active.name} (${active.version}); entries ${(await entries()).join(' ')}; verdict: ${verdict.replace(/.*boot check: /, '')}`, '');
    }
  }, 3_600_000);

  it.skipIf(!heavy)('factory reset: from the reset request and from the kernel flag; slots untouched', async () => {
    const before = await entries();
    // An administrator exists: the web admin asks for a login, not the setup.
    await vm.sh("echo 'correct-horse-battery' | pqgate users add admin --password-file -");
    expect((await webGet('/login')).location ?? '').not.toMatch(/setup/);
    await driver('factory-reset');
    let mark = await reboot();
    await vm.waitFor(MILESTONES.daemon, BOOT_TIMEOUT, mark);
    expect(vm.serialText(mark)).toMatch(/pqgate-init: factory reset \(reset request\): wiping the data partition/);
    expect(vm.serialText(mark)).toMatch(/factory reset done: first-boot state/);
    expect(await vm.sh('ls -A /data | grep -v lost+found || true')).not.toMatch(/hostname|network\.conf|upgrade/);
    expect(await vm.sh('hostname')).toMatch(/^pqgate$/m);
    expect(await vm.sh('pqgate config export')).not.toContain('"hq"');
    expect(await vm.sh('test -e /run/pqgate/esp/pqgate/factory-reset && echo still || echo gone')).toMatch(/gone/);
    expect(await entries()).toEqual(before);
    // First-boot state: no administrator, the web admin sends everyone to the setup page.
    expect(await vm.sh('pqgate users list || true')).toMatch(/no administrators yet/);
    await waitHttps(bed.hostPorts.get('gw')!.web!, 180_000);
    expect(await webGet('/login')).toMatchObject({ status: 303, location: '/setup' });

    // The button: the kernel flag (added to the running entry here, as holding the button would).
    await vm.sh('echo branch-2 > /data/hostname && sync');
    const entry = before.find((e) => e === 'slot-b.conf' || e === 'slot-a.conf' ) ?? before[0]!;
    await vm.sh(`mount -o remount,rw /run/pqgate/esp && for f in /run/pqgate/esp/loader/entries/*.conf; do sed -i 's/^options .*/& pqgate.factory_reset=1/' "$f"; done && sync && mount -o remount,ro /run/pqgate/esp`);
    mark = await reboot();
    await vm.waitFor(MILESTONES.daemon, BOOT_TIMEOUT, mark);
    expect(vm.serialText(mark)).toMatch(/factory reset \(kernel command line\): wiping/);
    expect(await vm.sh('test -e /data/hostname && echo kept || echo wiped')).toMatch(/wiped/);
    await vm.sh(`mount -o remount,rw /run/pqgate/esp && for f in /run/pqgate/esp/loader/entries/*.conf; do sed -i 's/ pqgate.factory_reset=1//' "$f"; done && sync && mount -o remount,ro /run/pqgate/esp`);
    expect(entry).toBeDefined();
  }, 900_000);
});
}
