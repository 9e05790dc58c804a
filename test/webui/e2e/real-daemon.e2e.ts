/// <reference lib="dom" />
/**
 * The web admin against the real daemon and a real peer, in Chromium:
 *
 *   Chromium ─HTTPS─ web admin (this process) ─control socket─ pqgate daemon (netns gwL) ══IKE/ESP══ strongSwan 6.1 (netns gwR)
 *
 * First-boot setup, login, a Cloudflare-preset tunnel to strongSwan
 * (configured like Cloudflare's side: ecp384 + ML-KEM-768/1024 as ADDKE1,
 * 0.0.0.0/0 selectors, PSK, fqdn id) created in the page and applied on
 * trial; it comes up with the ML-KEM badge and its counters move (pings
 * between the tunnel's inside addresses, as Cloudflare health probes do);
 * a rekey from the page; commit-confirmed rollback of an edit; backup and
 * restore; the peer is killed and the page says so; factory reset.
 *
 * Needs root, the strongSwan 6.1 peer root (test/peers/setup.sh), Chromium,
 * `npm run build`, and a daemon with store mode (`pqgate daemon --db ...
 * --web-socket ...`) serving the control methods of firmware/control/api.ts
 * on its web socket. Until the daemon has them the test skips and names what
 * is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { cleanupAll, interopSkipReason, sweepStale } from '../../interop/lib/netns.js';
import { peerMissingReason, sweepStaleDirs } from '../../interop/lib/rootfs.js';
import { pskConnections, Strongswan } from '../../interop/lib/strongswan.js';
import { CLI } from '../../interop/lib/pqgate.js';
import { makeInstanceDir } from '../../interop/lib/rootfs.js';
import { createSite, pingUntilReply, type Site } from '../../interop/lib/traffic.js';
import { sleep, type Spawned } from '../../interop/lib/proc.js';
import type { Netns } from '../../interop/lib/netns.js';
import { ControlClient } from '../../../firmware/control/client.js';
import { ControlError, ControlErrorCode } from '../../../firmware/control/protocol.js';
import { startWebServer, type RunningServer } from '../../../webui/server.js';
import { browserSkipReason, launch, newContext, shot } from './browser.js';
import { ADMIN, PASSWORD } from '../helpers.js';

const PSK = 'pqgate-webui-e2e-psk-0123456789';
const TUNNEL_ID = 'e2e-tunnel';
const ACCOUNT_ID = 'e2e-account';
const CF_ID = `${TUNNEL_ID}.${ACCOUNT_ID}.ipsec.cloudflare.com`;
const PROPOSAL = 'aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024';

/** Control methods this test drives through the web admin. */
export const REQUIRED_METHODS = [
  'users.setupRequired', 'users.create', 'users.verify', 'config.get', 'config.presets', 'config.tunnel.put', 'config.validate',
  'config.pending', 'config.confirm', 'config.cancel', 'config.history', 'config.export', 'config.import', 'status.tunnels',
  'rekey-ike', 'system.info', 'system.factoryReset', 'logs.events',
] as const;

/**
 * The daemon in store mode (`pqgate daemon --db`), as on the appliance: the
 * admin socket (owner only) and the web admin's socket (`--web-socket`),
 * which is what the web admin uses. Returns undefined (with the reason) if
 * this build of the daemon has no store mode yet.
 */
async function startDaemon(ns: Netns, listen: string): Promise<{ proc: Spawned; dir: string; socket: string; webSocket: string; release: () => void } | { skip: string }> {
  const { dir, release } = makeInstanceDir('webui-gw');
  const initial = join(dir, 'initial.json');
  writeFileSync(initial, JSON.stringify({ version: 1, listen: [listen], log_level: 'debug', tunnels: [] }), { mode: 0o600 });
  const socket = join(dir, 'run', 'control.sock');
  const webSocket = join(dir, 'run-web', 'web.sock');
  const log = join(dir, 'daemon.log');
  const proc = ns.spawn(['node', CLI, 'daemon', '--db', join(dir, 'db', 'config.db'), '--initial-config', initial, '--socket', socket, '--web-socket', webSocket, '--log-level', 'debug'], log, 'pqgate appliance');
  const deadline = Date.now() + 20_000;
  while (!existsSync(webSocket)) {
    if (proc.hasExited()) {
      const text = readFileSync(log, 'utf8');
      release();
      if (/unknown option|usage/i.test(text)) return { skip: `the daemon has no store mode yet (pqgate daemon --db ... --web-socket ...): ${text.split('\n').find((l) => l.trim()) ?? ''}` };
      throw new Error(`pqgate daemon exited during start-up:\n${text}`);
    }
    if (Date.now() > deadline) throw new Error(`pqgate daemon: no web socket after 20 s:\n${readFileSync(log, 'utf8')}`);
    await sleep(50);
  }
  return { proc, dir, socket, webSocket, release };
}

/** Which of the methods the daemon does not know (probed with parameters no method accepts, so nothing changes). */
export async function missingMethods(socket: string): Promise<string[]> {
  const c = await ControlClient.connect(socket);
  try {
    const missing: string[] = [];
    for (const m of REQUIRED_METHODS) {
      const harmless = ['users.setupRequired', 'config.get', 'config.presets', 'config.pending', 'config.history', 'status.tunnels', 'system.info', 'logs.events'].includes(m);
      try {
        await c.call(m, harmless ? {} : { probe: true });
      } catch (e) {
        if (e instanceof ControlError && (e.code === ControlErrorCode.METHOD_NOT_FOUND || e.code === 'ERR_NO_STORE')) missing.push(m);
      }
    }
    return missing;
  } finally {
    c.close();
  }
}

const envSkip = interopSkipReason() ?? peerMissingReason('sid-strongswan') ?? browserSkipReason() ?? (existsSync(CLI) ? undefined : `${CLI} missing: run npm run build`);
if (envSkip) console.warn(`[e2e] real-daemon web admin test skipped: ${envSkip}`);

describe.skipIf(!!envSkip)('web admin with the real daemon and strongSwan 6.1', () => {
  let site: Site;
  let gw: Exclude<Awaited<ReturnType<typeof startDaemon>>, { skip: string }> | undefined;
  let ss: Strongswan | undefined;
  let web: RunningServer;
  let browser: Browser;
  let page: Page;
  let data: string;
  let pinger: Spawned | undefined;
  let skipReason: string | undefined;
  const url = (p: string) => `${web.url}${p}`;

  beforeAll(async () => {
    sweepStale();
    sweepStaleDirs();
    site = await createSite('webui');
    const started = await startDaemon(site.gwL, site.outerL);
    if ('skip' in started) {
      skipReason = started.skip;
      console.warn(`[e2e] real-daemon web admin test skipped: ${skipReason}`);
      return;
    }
    gw = started;
    const missing = await missingMethods(gw.webSocket);
    if (missing.length) {
      skipReason = `the daemon does not serve ${missing.join(', ')} on its web socket yet (firmware/control/api.ts)`;
      console.warn(`[e2e] real-daemon web admin test skipped: ${skipReason}`);
      return;
    }
    // strongSwan as Cloudflare's side: responder only, PSK, 0/0, the preset's proposal.
    await site.gwR.addAddr('lo', `${site.insideR}/32`);
    await site.gwR.ip(['rule', 'add', 'to', site.lanR, 'lookup', 'main', 'pref', '101']);
    const conn = pskConnections(site.outerR, site.outerL, site.outerR, CF_ID, { proposals: [PROPOSAL], espProposals: ['aes256gcm16'], psk: PSK, localTs: ['0.0.0.0/0'], remoteTs: ['0.0.0.0/0'] });
    ss = await Strongswan.start({ ns: site.gwR, label: 'cf', ...conn });
    data = mkdtempSync(join(tmpdir(), 'pqg-webui-e2e-'));
    web = await startWebServer({ socket: gw.webSocket, listen: { host: '127.0.0.1', port: 0 }, dataDir: data, log: () => {} });
    browser = await launch(web.certificate());
    page = await (await newContext(browser)).newPage();
  });

  afterAll(async () => {
    await pinger?.stop(1000).catch(() => {});
    await browser?.close();
    await web?.close();
    await ss?.stop().catch(() => {});
    await gw?.proc.stop(5000).catch(() => {});
    try {
      gw?.release();
    } catch {
      /* reported by the cleanup registry */
    }
    await site?.destroy().catch(() => {});
    cleanupAll();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  it('setup, login, Cloudflare-preset tunnel to strongSwan: up with the ML-KEM badge and moving counters', async (t) => {
    if (skipReason) t.skip(skipReason);
    await page.goto(url('/'));
    expect(new URL(page.url()).pathname).toBe('/setup');
    await page.fill('input[name=name]', ADMIN);
    await page.fill('input[name=password]', PASSWORD);
    await page.fill('input[name=password2]', PASSWORD);
    await page.click('#setup-form button[type=submit]');
    await page.waitForURL(url('/'));

    await page.goto(url('/tunnels/new?preset=cloudflare'));
    await page.fill('#f-name', 'cf');
    await page.fill('#f-remote_addr', site.outerR);
    await page.fill('#f-local_addr', site.outerL);
    await page.fill('#f-psk', PSK);
    await page.fill('#f-inside_addr', `${site.insideL}/31`);
    await page.fill('#p-tunnel_id', TUNNEL_ID);
    await page.fill('#p-account_id', ACCOUNT_ID);
    await page.click('#apply-tunnel');
    await page.waitForURL(url('/'));
    await page.click('#confirm-revision');
    await page.waitForSelector('section.tunnel[data-tunnel="cf"][data-health="up"], section.tunnel[data-tunnel="cf"] tr.child', { timeout: 60_000 });
    await ss!.waitEstablished('c', 'k', 30_000);
    expect(await page.textContent('tr.ike [data-pq]')).toMatch(/^ML-KEM-(768|1024)$/);

    // Health-probe style traffic through the tunnel, continuously.
    await pingUntilReply(site.gwL, site.insideR, { src: site.insideL, timeoutMs: 20_000 });
    pinger = site.gwL.spawn(['ping', '-n', '-i', '0.2', '-I', site.insideL, site.insideR], join(data, 'ping.log'), 'ping');
    const first = await page.textContent('tr.child [data-field="packetsIn"]');
    await page.waitForFunction((prev) => document.querySelector('tr.child [data-field="packetsIn"]')?.textContent !== prev, first, { timeout: 20_000 });
    await page.waitForSelector('section.tunnel[data-tunnel="cf"][data-health="up"]', { timeout: 30_000 });
    await shot(page, 'real-dashboard');
  });

  it('rekeys the IKE SA from the page', async (t) => {
    if (skipReason) t.skip(skipReason);
    const before = await page.getAttribute('tr.ike', 'data-sa');
    await page.click('tr.ike a[data-action="rekey-ike"]');
    await page.click('#confirm-action');
    await page.waitForFunction((id) => {
      const row = document.querySelector('tr.ike');
      return row && row.getAttribute('data-sa') !== id;
    }, before, { timeout: 30_000 });
    await page.waitForSelector('section.tunnel[data-tunnel="cf"][data-health="up"]', { timeout: 30_000 });
  });

  it('rolls an edit on trial back with "Roll back now"', async (t) => {
    if (skipReason) t.skip(skipReason);
    await page.goto(url('/tunnels/cf/edit'));
    await page.fill('#f-mss', '1300');
    await page.click('#apply-tunnel');
    await page.waitForSelector('#pending-banner');
    await page.click('#rollback-now');
    await page.waitForSelector('.flash.ok >> text=Rolled back');
    await page.goto(url('/tunnels/cf/edit'));
    expect(await page.inputValue('#f-mss')).toBe('1360');
  });

  it('backup and restore', async (t) => {
    if (skipReason) t.skip(skipReason);
    await page.goto(url('/maintenance'));
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download-backup')]);
    const text = readFileSync((await dl.path())!, 'utf8');
    expect(text).not.toContain(PSK);
    const backup = JSON.parse(text);
    backup.tunnels[0].mss = 10;
    await page.setInputFiles('#restore-form input[name=backup]', { name: 'b.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(backup)) });
    await page.click('#restore-form button');
    await page.waitForSelector('#restore .issues code.path >> text=tunnels[0].mss');
    backup.tunnels[0].mss = 1360;
    await page.setInputFiles('#restore-form input[name=backup]', { name: 'b.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(backup)) });
    await page.click('#restore-form button');
    await page.waitForSelector('.flash.ok >> text=Backup restored');
  });

  it('says so when the peer dies', async (t) => {
    if (skipReason) t.skip(skipReason);
    await page.goto(url('/'));
    await ss!.stop();
    ss = undefined;
    // Inbound traffic stops at once (degraded); DPD then gives up on the IKE SA (down, with the reason).
    await page.waitForSelector('section.tunnel[data-tunnel="cf"][data-health="degraded"], section.tunnel[data-tunnel="cf"][data-health="down"]', { timeout: 120_000 });
    await page.waitForSelector('section.tunnel[data-tunnel="cf"][data-health="down"]', { timeout: 150_000 });
    expect(await page.textContent('section.tunnel[data-tunnel="cf"]')).toMatch(/not respond|timed out|no reply/i);
    await shot(page, 'real-dashboard-peer-dead');
  });

  it('factory reset returns to setup', async (t) => {
    if (skipReason) t.skip(skipReason);
    await page.goto(url('/maintenance'));
    await page.fill('#factory-reset-form input[name=confirm]', 'FACTORY RESET');
    await page.click('#factory-reset-button');
    await page.waitForURL(url('/setup'));
  });
});
