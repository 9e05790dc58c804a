/**
 * The upgrade end to end through the device's own interfaces, on x86_64, one
 * VM (docs/upgrade-device.md, docs/upgrade.md):
 *  - tampered, truncated, wrong-board and downgrade bundles are refused with
 *    their codes and nothing is written (hash of the inactive partition and
 *    the boot entries unchanged);
 *    (through `pqgate upgrade`, the control API the web admin also calls);
 *  - a v2 bundle made with `pqgate bundle make`, uploaded from the host to
 *    the web admin's REST API (`POST /api/v1/firmware?reboot=1` over the
 *    forwarded HTTPS port, after the first-boot setup), installs as the
 *    trial slot, reboots, passes the health gate, is blessed; `pqgate
 *    upgrade status` and `GET /api/v1/firmware` say committed and show both
 *    slots; the configuration is kept.
 * Built with PQGATE_SIGNING_KEYS (test/run-all.sh makes throwaway CI keys),
 * the bundles are signed with them and an unsigned one must be refused
 * too; a development image accepts unsigned bundles, so that case is then
 * left out, and so is the revoked-key case (a bundle signed by a key that a
 * newer root-signed key list, carried in the bundle, revokes).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync, openSync, readSync, closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBoard, REPO } from '../../qemu/board.js';
import { runChecks } from '../../qemu/checks.js';
import { loadScenario, Testbed } from '../../qemu/scenario.js';
import type { Vm } from '../../qemu/vm.js';
import { assertChecks, report, skipReason, workDir } from './lib.js';
import { makeVariant, serveFiles } from './upgrade-lib.js';
import { WebClient } from '../webui/helpers.js';

/** The VM's self-signed web admin certificate (PEM), to pin it as the only CA (its names include localhost). */
function peerCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      const der = s.getPeerCertificate().raw;
      s.end();
      resolve(`-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`);
    });
    s.once('error', reject);
  });
}

const BOARD = 'x86_64' as const;
/** Boot to the daemon: ~60 s on an idle machine, several times that on a loaded one (PQGATE_IMAGE_BOOT_TIMEOUT, ms). */
const BOOT_TIMEOUT = Number(process.env.PQGATE_IMAGE_BOOT_TIMEOUT ?? 600_000);
const hasBundleTool = (() => {
  try {
    statSync(join(REPO, 'dist/firmware/upgrade/bundle-cli.js'));
    return true;
  } catch {
    return false;
  }
})();
const skip = skipReason(BOARD) ?? (hasBundleTool ? undefined : 'no bundle tool (npm run build)');

/** Whether the built image is a release (signed) build: its trust store then refuses unsigned bundles. */
function imageSigned(): boolean {
  try {
    const r = JSON.parse(readFileSync(join(loadBoard(BOARD).outDir, 'build/rootfs/usr/share/pqgate/release.json'), 'utf8')) as { build?: string };
    return r.build === 'release';
  } catch {
    return false;
  }
}
const signed = skip === undefined && imageSigned();
// A signed image needs the keys it was built with (test/run-all.sh exports PQGATE_SIGNING_KEYS for the build and the tests).
const keys = signed ? process.env.PQGATE_SIGNING_KEYS : undefined;
const skipAll = skip ?? (signed && !keys ? 'signed image but PQGATE_SIGNING_KEYS is not set' : undefined);

function bundleMake(out: string, from: string, board: string, version: string, securityVersion: number, sign = true): void {
  execFileSync(
    'node',
    [join(REPO, 'dist/firmware/cli.js'), 'bundle', 'make', '--board', board, '--version', version, '--security-version', String(securityVersion), '--from', from, '--out', out, ...(keys && sign ? ['--keys', keys] : [])],
    { stdio: 'pipe' },
  );
}

describe.skipIf(skipAll !== undefined)(`upgrade through the control API on ${BOARD}${skipAll ? ` (skipped: ${skipAll})` : ''}`, () => {
  const scenario = loadScenario('upgrade');
  const dir = skipAll ? '' : workDir(`upgrade-api-${BOARD}`);
  let bed: Testbed;
  let vm: Vm;
  let server: Server;
  let port = 0;
  let v1 = '';
  let floor = 1;
  const files: Record<string, string> = {};
  const t0 = Date.now();

  const fetch = (name: string) => vm.sh(`wget -q -O /tmp/${name} http://10.0.2.2:${port}/${name}`, 120_000);
  const entries = async () => (await vm.sh('ls /run/pqgate/esp/loader/entries')).trim().split(/\s+/).sort();
  const inactiveHash = () => vm.sh('head -c 67108864 /dev/vda3 | sha256sum', 120_000);

  beforeAll(async () => {
    const b = loadBoard(BOARD);
    v1 = (JSON.parse(readFileSync(join(b.outDir, 'build', 'rootfs', 'usr/lib/pqgate/package.json'), 'utf8')) as { version: string }).version;
    floor = Number((readFileSync(join(REPO, 'image/security-version'), 'utf8').trim()) || '1');
    const v2 = makeVariant(join(b.outDir, 'rootfs.squashfs'), dir, `${v1}-api2`);
    const from = join(dir, 'v2');
    mkdirSync(from, { recursive: true });
    copyFileSync(v2.squashfs, join(from, 'rootfs.squashfs'));
    copyFileSync(join(b.outDir, 'vmlinuz'), join(from, 'vmlinuz'));
    copyFileSync(join(b.outDir, 'initrd.img'), join(from, 'initrd.img'));
    files.good = join(dir, 'good.pqb');
    bundleMake(files.good, from, BOARD, v2.version, floor + 1);
    files.wrongBoard = join(dir, 'wrong-board.pqb');
    bundleMake(files.wrongBoard, from, 'arm64', v2.version, floor + 1);
    files.downgrade = join(dir, 'downgrade.pqb');
    bundleMake(files.downgrade, from, BOARD, `${v1}-old`, Math.max(0, floor - 1));
    if (keys) {
      files.unsigned = join(dir, 'unsigned.pqb');
      bundleMake(files.unsigned, from, BOARD, v2.version, floor + 1, false);
      // Revoked key: a second signing key S2, then a key list version 2 signed by the image's root that lists
      // both signing keys and revokes S2. A bundle signed by S2 carrying that list must be refused
      // (REVOKED_KEY); the CI signing key stays valid for the upgrade that follows.
      const cli = (args: string[]) => execFileSync('node', [join(REPO, 'dist/firmware/cli.js'), 'bundle', ...args], { stdio: 'pipe' }).toString();
      const s2 = /signing key ([0-9a-f]{16})/.exec(cli(['keygen', '--dir', join(dir, 'other-keys-2'), '--valid-days', '30']))![1]!;
      const revokedDir = join(dir, 'revoked-keys');
      mkdirSync(revokedDir, { recursive: true });
      copyFileSync(join(dir, 'other-keys-2', 'signing.key'), join(revokedDir, 'signing.key'));
      cli(['sign-keylist', '--root', join(keys, 'root.key'), '--out', join(revokedDir, 'keylist.pqkl'), '--list-version', '2', '--key', join(keys, 'signing.pub'), '--key', join(dir, 'other-keys-2', 'signing.pub'), '--revoke', s2, '--valid-days', '30']);
      files.revoked = join(dir, 'revoked.pqb');
      execFileSync('node', [join(REPO, 'dist/firmware/cli.js'), 'bundle', 'make', '--board', BOARD, '--version', v2.version, '--security-version', String(floor + 1), '--from', from, '--out', files.revoked, '--keys', revokedDir], { stdio: 'pipe' });
    }
    // Tampered: one byte flipped in the middle of the rootfs payload.
    files.tampered = join(dir, 'tampered.pqb');
    copyFileSync(files.good, files.tampered);
    const fd = openSync(files.tampered, 'r+');
    const at = Math.floor(statSync(files.tampered).size / 3);
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, at);
    one[0] = one[0]! ^ 0xff;
    writeSync(fd, one, 0, 1, at);
    closeSync(fd);
    // Truncated: the first half.
    files.truncated = join(dir, 'truncated.pqb');
    const good = readFileSync(files.good);
    writeFileSync(files.truncated, good.subarray(0, Math.floor(good.length / 2)));
    const s = await serveFiles([...Object.values(files), join(scenario.dir, 'gw', 'config.json')]);
    server = s.server;
    port = s.port;

    bed = new Testbed(scenario, dir, { board: BOARD });
    await bed.start();
    vm = bed.vm('gw');
    // Generous: the build machine's TCG guests slow down several-fold under load.
    await bed.waitBooted(BOOT_TIMEOUT);
    await bed.applyHostFiles(BOOT_TIMEOUT);
    await fetch('config.json');
    await vm.sh('pqgate config set /tmp/config.json');
    report('setup', `${Date.now() - t0} ms`);
  }, 1_800_000);

  afterAll(async () => {
    await bed?.stop();
    server?.close();
    report('upgrade-api scenario total', `${Math.round((Date.now() - t0) / 1000)} s`);
  });

  it('refuses tampered, truncated, wrong-board and downgrade bundles; nothing written', async () => {
    const hash0 = await inactiveHash();
    const entries0 = await entries();
    const expected: Record<string, RegExp> = {
      tampered: /\[(IMAGE_HASH|BAD_SIGNATURE)\]/,
      truncated: /\[(TRUNCATED|BAD_FORMAT)\]/,
      wrongBoard: /\[WRONG_BOARD\]/,
      downgrade: /\[DOWNGRADE\]/,
      ...(files.unsigned ? { unsigned: /\[UNSIGNED\]/ } : {}),
      ...(files.revoked ? { revoked: /\[REVOKED_KEY\]/ } : {}),
    };
    for (const [k, re] of Object.entries(expected)) {
      const name = files[k]!.split('/').pop()!;
      await fetch(name);
      const r = await vm.exec(`pqgate upgrade /tmp/${name}`, 300_000);
      report(`refusal ${k}`, r.output.trim().split('\n').pop()!);
      expect(r.code, k).not.toBe(0);
      expect(r.output, k).toMatch(re);
      expect(r.output, k).toMatch(/nothing was written/);
      await vm.sh(`rm -f /tmp/${name}`);
    }
    expect(await inactiveHash()).toBe(hash0);
    expect(await entries()).toEqual(entries0);
    expect(await vm.sh('pqgate upgrade status')).toMatch(/last upgrade: .* refused/);
  }, 900_000);

  it('v2 uploaded to the web admin REST API (POST /api/v1/firmware?reboot=1): trial, reboot, gate, bless; status says committed', async () => {
    const t = Date.now();
    const webPort = bed.hostPorts.get('gw')!.web!;
    const cert = await peerCertificate(webPort);
    const web = new WebClient({ url: `https://127.0.0.1:${webPort}`, certificate: () => cert } as ConstructorParameters<typeof WebClient>[0]);
    // First boot: the one-time setup page creates the admin account (no default password).
    expect((await web.setup('admin', 'correct horse battery staple 42')).status).toBe(303);
    await web.get('/');
    const body = readFileSync(files.good!);
    const mark = vm.mark();
    const up = await web.request('POST', '/api/v1/firmware?reboot=1', { raw: { body, type: 'application/octet-stream' }, headers: { accept: 'application/json' } });
    report('web upload', `${up.status} ${up.text.trim()} (${body.length} bytes in ${Date.now() - t} ms)`);
    if (up.status !== 202) report('web admin log', await vm.sh('logread | grep -i pqgate-web | tail -20; df -k /data'));
    expect(up.status).toBe(202);
    expect(up.json()).toMatchObject({ bytes: body.length });
    const v = await vm.waitFor(/pqgate-upgrade: boot check: (blessed|reboot|none)/, BOOT_TIMEOUT + 300_000, mark);
    expect(v.line).toContain(`blessed ${v1}-api2`);
    expect(await entries()).toEqual(['slot-a.conf', 'slot-b.conf']);
    const st = await vm.sh('pqgate upgrade status');
    report('pqgate upgrade status', st.trim());
    expect(st).toMatch(new RegExp(`slot b: ${v1}-api2 good \\(active\\)`));
    expect(st).toMatch(new RegExp(`slot a: ${v1} good`));
    expect(st).toMatch(/committed/);
    // The web admin (a new session after the reboot) reports the same through its API.
    const again = new WebClient({ url: `https://127.0.0.1:${webPort}`, certificate: () => cert } as ConstructorParameters<typeof WebClient>[0]);
    expect((await again.login('admin', 'correct horse battery staple 42')).status).toBe(303);
    const api = await again.request('GET', '/api/v1/firmware', { headers: { accept: 'application/json' } });
    expect(api.status).toBe(200);
    expect(api.text).toContain(`${v1}-api2`);
    expect(api.text).toMatch(/committed/);
    assertChecks(await runChecks(scenario.checks, bed.checkHosts(), { retryMs: 30_000 }));
    report('upgrade via the web admin API (upload + install + reboot + gate + bless)', `${Math.round((Date.now() - t) / 1000)} s`);
  }, 1_800_000);
});
