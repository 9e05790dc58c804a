/**
 * Firmware upgrade in the web admin (Maintenance page section, and the
 * same routes under /api/v1/firmware for scripts and the QEMU tests):
 *
 *   POST /maintenance/firmware, /api/v1/firmware   body = the .pqb itself (application/octet-stream)
 *        ?reboot=1                                  reboot once installed
 *   GET  /maintenance/firmware/status, /api/v1/firmware   upgrade.status (polled for install progress)
 *
 * The upload is streamed to the spool directory (never buffered whole):
 * a name this process makes up (`up-<random>.pqb`, the client's file name
 * is never used), created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0640, at most
 * `limits.firmwareBytes` (counted while streaming, so a lying or missing
 * Content-Length does not help), one upload at a time. Then the daemon gets
 * the path (its web socket accepts only such spooled names, methods-upgrade.ts)
 * and verifies the bundle itself; this process only deletes the spool file
 * when that install has finished. The cookie path is CSRF-protected by app.ts
 * (X-CSRF-Token header); API tokens work as everywhere.
 */
import type { Express, Request, Response } from 'express';
import { constants, promises as fsp, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { html, type SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';
import type { WebContext } from '../app.js';
import type { UpgradeStatus } from '../../firmware/upgrade/service.js';
import type { UpgradeOutcome } from '../../firmware/upgrade/types.js';
import { ControlError } from '../../firmware/control/protocol.js';

export const DEV_BANNER_TEXT = 'Development build — accepts unsigned firmware';

const STATUS_BY_CODE: Record<string, number> = { NO_BACKEND: 503, BUSY: 409, BAD_FILE: 400, ERR_INVALID_PARAMS: 400, ERR_CONNECTION: 503 };

/**
 * Create the spool, clear leftovers of an interrupted upload (the web process restarted), and return its
 * real path: the daemon refuses spool paths reached through a symbolic link, so the data directory may sit
 * below one (e.g. /var → /data/var) only if this process names the spool by its real path.
 */
export function prepareSpool(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  for (const f of readdirSync(dir)) if (/^up-[0-9a-f]{16}\.pqb$/.test(f)) rmSync(join(dir, f), { force: true });
  return realpathSync(dir);
}

/** The last outcome in plain words. */
export function outcomeText(o: UpgradeOutcome | undefined): string {
  if (!o) return 'No firmware upgrade yet.';
  const when = o.at.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
  switch (o.result) {
    case 'installed':
      return `${when}: firmware ${o.toVersion} was installed in slot ${o.slot}. It starts at the next reboot and is kept only if its health check passes.`;
    case 'committed':
      return `${when}: firmware ${o.toVersion} passed its health check and is now the running firmware (slot ${o.slot}).`;
    case 'rolled-back':
      return `${when}: firmware ${o.toVersion} did not pass its health check; the gateway went back to ${o.fromVersion}.${o.reason ? ` Reason: ${o.reason}` : ''}`;
    case 'refused':
      return `${when}: the uploaded firmware${o.toVersion !== 'unknown' ? ` ${o.toVersion}` : ''} was refused and nothing was written. Reason: ${o.reason ?? 'not given'}`;
    case 'failed':
      return `${when}: installing firmware ${o.toVersion} failed; the running firmware is unchanged. Reason: ${o.reason ?? 'not given'}`;
  }
}

export function devBanner(): SafeHtml {
  return html`<div class="flash error dev-build" role="alert" id="dev-build-banner"><strong>${DEV_BANNER_TEXT}.</strong> This image was built without signing keys; install a signed release to leave development mode.</div>`;
}

export function firmwareSection(ctx: WebContext, csrf: string, st: UpgradeStatus | undefined, error?: string): SafeHtml {
  if (!st) return html`<section class="card" id="firmware"><h2>Firmware</h2><p>The firmware status is unavailable (the daemon did not answer).</p></section>`;
  const o = st.lastOutcome;
  const bad = o && (o.result === 'refused' || o.result === 'failed' || o.result === 'rolled-back');
  return html`<section class="card" id="firmware"><h2>Firmware</h2>
${st.dev ? devBanner() : ''}
${error ? html`<div class="flash error" role="alert">${error}</div>` : ''}
${
  st.slots.length
    ? html`<p>Board <strong>${st.board ?? '?'}</strong>, running <strong>${st.runningVersion ?? '?'}</strong>.</p>
<div class="table-wrap"><table class="list" id="firmware-slots"><thead><tr><th>Slot</th><th>Version</th><th>State</th></tr></thead><tbody>
${st.slots.map(
  (s) =>
    html`<tr><td data-label="Slot">${s.name}${s.active ? html` <span class="badge">active</span>` : ''}</td><td data-label="Version">${s.version ?? '–'}</td><td data-label="State">${s.state}${s.state === 'trial' && s.triesLeft !== undefined ? ` (${s.triesLeft} boot tries left)` : ''}</td></tr>`,
)}
</tbody></table></div>`
    : ''
}
<p id="firmware-outcome" class="${bad ? 'flash error' : ''}">Last upgrade: ${outcomeText(o)}</p>
${
  st.available
    ? html`<form class="form" id="firmware-form" data-upload="/maintenance/firmware" data-status="/maintenance/firmware/status">${csrfField(csrf)}
<label>Firmware bundle (.pqb, at most ${Math.round(ctx.limits.firmwareBytes / 1048576)} MiB) <input type="file" name="bundle" accept=".pqb,application/octet-stream" required id="firmware-file"></label>
<label class="check"><input type="checkbox" name="reboot" value="1" id="firmware-reboot"> Reboot into it when installed</label>
<button type="submit" class="primary" id="firmware-upload">Upload and install</button>
<progress id="firmware-progress" max="100" value="0" hidden></progress> <span id="firmware-phase" role="status"></span>
<p class="help">The bundle is verified completely (signatures, board, version, every image) before anything is written; then it goes to the inactive slot and runs once as a trial. The other slot stays as it is.</p>
<noscript><p class="help">Uploading needs JavaScript here; without it use <code>pqgate upgrade FILE.pqb</code> on the gateway.</p></noscript></form>`
    : html`<p id="firmware-unavailable">Firmware upgrades are not available: ${st.reason ?? 'unknown reason'}.</p>`
}
</section>`;
}

export function registerUpgradeRoutes(app: Express, ctx: WebContext, spoolDir: string): void {
  let uploading = false;
  const isApi = (req: Request) => req.path.startsWith('/api/');
  const fail = (res: Response, status: number, code: string, message: string) => res.status(status).json({ error: { code, message } });

  const status = async (_req: Request, res: Response) => {
    try {
      res.setHeader('Cache-Control', 'no-store');
      res.json(await ctx.daemon.call('upgrade.status', {}));
    } catch (e) {
      const c = e instanceof ControlError ? e.code : 'ERR_INTERNAL';
      fail(res, STATUS_BY_CODE[c] ?? 500, c, (e as Error).message);
    }
  };
  app.get('/maintenance/firmware/status', status);
  app.get('/api/v1/firmware', status);

  /** After the daemon accepted the path: delete the spool file once that install has finished (or after an hour). */
  const reap = (path: string, id: number) => {
    const end = ctx.now() + 3_600_000;
    const tick = async () => {
      let done = ctx.now() > end;
      if (!done) {
        try {
          const s = await ctx.daemon.call('upgrade.status', {});
          done = s.progress.id !== id || s.progress.phase === 'done' || s.progress.phase === 'failed' || s.progress.phase === 'idle';
        } catch {
          done = false; // daemon restarting (reboot): keep trying until the deadline
        }
      }
      if (done) await fsp.rm(path, { force: true });
      else setTimeout(() => void tick(), 1000).unref();
    };
    setTimeout(() => void tick(), 500).unref();
  };

  const upload = async (req: Request, res: Response) => {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/octet-stream') return fail(res, 415, 'ERR_UPLOAD', 'send the bundle as the request body with Content-Type: application/octet-stream');
    const limit = ctx.limits.firmwareBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > limit) {
      res.setHeader('Connection', 'close');
      return fail(res, 413, 'ERR_TOO_LARGE', `the bundle is larger than ${Math.round(limit / 1048576)} MiB`);
    }
    if (uploading) return fail(res, 409, 'BUSY', 'another firmware upload is in progress');
    uploading = true;
    const path = join(spoolDir, `up-${randomBytes(8).toString('hex')}.pqb`);
    // The answer is sent only after the spool is cleaned up: whoever sees a refusal sees an empty spool.
    let reply: (() => void) | undefined;
    let keep = false;
    try {
      const fh = await fsp.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
      let total = 0;
      let tooLarge = false;
      try {
        for await (const chunk of req as AsyncIterable<Buffer>) {
          total += chunk.length;
          if (total > limit) {
            tooLarge = true;
            break;
          }
          await fh.write(chunk);
        }
      } finally {
        await fh.close();
      }
      if (tooLarge) {
        res.setHeader('Connection', 'close');
        reply = () => fail(res, 413, 'ERR_TOO_LARGE', `the bundle is larger than ${Math.round(limit / 1048576)} MiB`);
      } else if (total === 0) reply = () => fail(res, 400, 'ERR_UPLOAD', 'empty upload');
      else {
        const reboot = req.query.reboot === '1' || req.query.reboot === 'true';
        const r = await ctx.daemon.call('upgrade.install', { path, reboot, wait: false, actor: ctx.actor(res) });
        keep = true;
        reap(path, r.id);
        ctx.log('firmware upload handed to the daemon', { user: ctx.principal(res).user, bytes: total, id: r.id });
        reply = () => res.status(202).json({ id: r.id, bytes: total, status: isApi(req) ? '/api/v1/firmware' : '/maintenance/firmware/status' });
      }
    } catch (e) {
      if (e instanceof ControlError) reply = () => fail(res, STATUS_BY_CODE[e.code] ?? 422, e.code, e.message);
      else if ((e as NodeJS.ErrnoException).code === 'ECONNRESET' || (e as Error).message === 'aborted') reply = undefined; // client went away
      // The spool lives on the data partition: a full disk is the device's state, not a server fault (RFC 4918 §11.5).
      else if ((e as NodeJS.ErrnoException).code === 'ENOSPC' || (e as NodeJS.ErrnoException).code === 'EDQUOT')
        reply = () => fail(res, 507, 'ERR_NO_SPACE', 'not enough free space on the data partition to receive the bundle; nothing was installed');
      else throw e;
    } finally {
      if (!keep) await fsp.rm(path, { force: true });
      uploading = false;
    }
    reply?.();
  };
  app.post('/maintenance/firmware', upload);
  app.post('/api/v1/firmware', upload);
}
