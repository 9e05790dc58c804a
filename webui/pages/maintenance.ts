/**
 * Maintenance: backup download, restore upload (validated by the daemon
 * before anything is applied: an invalid backup is refused with every
 * problem's path and nothing changes), reboot, factory reset (typed
 * confirmation), firmware slots and upload (pages/upgrade.ts), and the
 * web admin's HTTPS certificate (replace by upload).
 *
 * A backup normally leaves out the pre-shared keys (restoring it keeps the
 * keys the device has). A backup with keys is a POST that needs the
 * password again; it is the only response of the web admin that contains
 * secrets, and the daemon writes it to the audit log.
 */
import type { Express, Request, Response } from 'express';
import { html, type SafeHtml } from '../html.js';
import { csrfField, confirmBody, issuesBlock } from '../layout.js';
import { restore, ChangeRefused, change } from '../service.js';
import { clearSessionCookie, clientIp } from '../security.js';
import { checkTlsUpload, TlsUploadError } from '../tls-store.js';
import type { Part } from '../multipart.js';
import type { WebContext } from '../app.js';
import type { UpgradeStatus } from '../../firmware/upgrade/service.js';
import { firmwareSection } from './upgrade.js';
import type { Issue } from '../daemon-client.js';

export const FACTORY_RESET_PHRASE = 'FACTORY RESET';

interface MaintState {
  restoreIssues?: Issue[];
  restoreError?: string;
  resetError?: string;
  tlsError?: string;
  backupError?: string;
}

function body(ctx: WebContext, csrf: string, upgrade: UpgradeStatus | undefined, st: MaintState): SafeHtml {
  let tls: SafeHtml = html`<p>Certificate information unavailable.</p>`;
  if (ctx.tls) {
    const t = ctx.tls.info();
    tls = html`<dl class="kv" id="tls-info"><dt>Subject</dt><dd>${t.subject}</dd><dt>Issuer</dt><dd>${t.selfSigned ? 'self-signed' : t.issuer}</dd>
<dt>Names</dt><dd>${t.subjectAltName}</dd><dt>Valid</dt><dd>${t.notBefore} \u2013 ${t.notAfter}</dd><dt>SHA-256</dt><dd class="mono small">${t.fingerprint256}</dd></dl>`;
  }
  return html`<section class="card" id="backup"><h2>Backup</h2>
<p>The backup is the configuration document with its revision metadata. Pre-shared keys are left out; restoring such a backup keeps the keys the gateway has.</p>
<p><a class="button primary" href="/maintenance/backup" download id="download-backup">Download backup</a></p>
${st.backupError ? html`<div class="flash error" role="alert">${st.backupError}</div>` : ''}
<details><summary>Backup including the pre-shared keys</summary>
<form method="post" action="/maintenance/backup-secrets" class="form">${csrfField(csrf)}
<label>Your password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Download backup with keys</button><p class="help">Keep this file like the keys themselves. The download is recorded in the audit log.</p></form></details>
</section>
<section class="card" id="restore"><h2>Restore</h2>
${issuesBlock(st.restoreIssues, 'The backup was refused; nothing was changed:')}
${st.restoreError ? html`<div class="flash error" role="alert">${st.restoreError}</div>` : ''}
<form method="post" action="/maintenance/restore" enctype="multipart/form-data" class="form" id="restore-form">${csrfField(csrf)}
<label>Backup file (JSON, at most ${Math.round(ctx.limits.backupBytes / 1024)} KiB) <input type="file" name="backup" accept="application/json,.json" required></label>
<label>Comment <input name="comment" maxlength="200"></label>
<button type="submit">Validate and restore</button>
<p class="help">The file is validated completely first; it becomes a new revision only if it is valid.</p></form></section>
${firmwareSection(ctx, csrf, upgrade)}
<section class="card" id="https"><h2>HTTPS certificate of this admin page</h2>${tls}
${st.tlsError ? html`<div class="flash error" role="alert">${st.tlsError}</div>` : ''}
<form method="post" action="/maintenance/tls" enctype="multipart/form-data" class="form" id="tls-form">${csrfField(csrf)}
<label>Certificate (PEM, chain allowed) <input type="file" name="cert" required></label>
<label>Private key (PEM, unencrypted) <input type="file" name="key" required></label>
<button type="submit">Replace certificate</button></form></section>
<section class="card" id="reboot"><h2>Reboot</h2><p>Tunnels go down until the gateway is back (about a minute).</p>
<a class="button danger" href="/maintenance/reboot">Reboot\u2026</a></section>
<section class="card danger-zone" id="factory-reset"><h2>Factory reset</h2>
<p>Erases the configuration, its history, keys, certificates, users and logs. The gateway returns to first-boot setup.</p>
${st.resetError ? html`<div class="flash error" role="alert">${st.resetError}</div>` : ''}
<form method="post" action="/maintenance/factory-reset" class="form" id="factory-reset-form">${csrfField(csrf)}
<label>Type <strong>${FACTORY_RESET_PHRASE}</strong> to confirm <input name="confirm" autocomplete="off" data-must-equal="${FACTORY_RESET_PHRASE}"></label>
<button type="submit" class="danger" id="factory-reset-button">Erase everything</button></form></section>`;
}

export function registerMaintenancePages(app: Express, ctx: WebContext): void {
  const csrf = (res: Response) => ctx.principal(res).session?.csrf ?? '';
  const show = async (req: Request, res: Response, st: MaintState = {}, status = 200) => {
    const upgrade = await ctx.daemon.call('upgrade.status', {}).catch(() => undefined);
    await ctx.page(req, res, 'Maintenance', '/maintenance', body(ctx, csrf(res), upgrade, st), status);
  };
  const file = (req: Request, name: string): Part | undefined => (req.body as { _files?: Record<string, Part> } | undefined)?._files?.[name];
  const stamp = () => new Date(ctx.now()).toISOString().replace(/[:.]/g, '-');

  app.get('/maintenance', (req, res) => show(req, res));

  app.get('/maintenance/backup', async (_req, res) => {
    const r = await ctx.daemon.call('config.export', { includeSecrets: false, actor: ctx.actor(res) });
    res.setHeader('Content-Disposition', `attachment; filename="pqgate-backup-${stamp()}.json"`);
    res.type('application/json').send(JSON.stringify(r.document, null, 2) + '\n');
  });

  app.post('/maintenance/backup-secrets', async (req, res) => {
    const p = ctx.principal(res);
    const password = typeof req.body?.password === 'string' ? req.body.password : '';
    // Re-entering the password is throttled like a login (a stolen session must not become a password oracle).
    const verdict = ctx.guard.attempt(p.user, clientIp(req));
    if (!verdict.ok) {
      res.setHeader('Retry-After', String(verdict.retryAfterSec));
      await show(req, res, { backupError: 'Too many wrong passwords: try again later.' }, 429);
      return;
    }
    const ok = password !== '' && (await ctx.daemon.call('users.verify', { name: p.user, password })).ok;
    if (!ok) {
      ctx.guard.failure(p.user);
      await show(req, res, { backupError: 'Wrong password: no backup with keys.' }, 403);
      return;
    }
    ctx.guard.success(p.user);
    const r = await ctx.daemon.call('config.export', { includeSecrets: true, actor: ctx.actor(res) });
    ctx.log('backup with secrets downloaded', { user: p.user });
    res.setHeader('Content-Disposition', `attachment; filename="pqgate-backup-with-keys-${stamp()}.json"`);
    res.type('application/json').send(JSON.stringify(r.document, null, 2) + '\n');
  });

  app.post('/maintenance/restore', async (req, res) => {
    const f = file(req, 'backup');
    if (!f || f.data.length === 0) {
      await show(req, res, { restoreError: 'Choose a backup file.' }, 400);
      return;
    }
    if (f.data.length > ctx.limits.backupBytes) {
      await show(req, res, { restoreError: `The file is larger than ${Math.round(ctx.limits.backupBytes / 1024)} KiB.` }, 413);
      return;
    }
    try {
      const rev = await restore(ctx.daemon, f.data.toString('utf8'), ctx.actor(res), typeof req.body?.comment === 'string' ? req.body.comment.slice(0, 200) : undefined);
      ctx.flash(res, 'ok', `Backup restored as revision ${rev.id}.`);
      res.redirect(303, '/');
    } catch (e) {
      if (!(e instanceof ChangeRefused)) throw e;
      await show(req, res, e.issues ? { restoreIssues: e.issues } : { restoreError: e.message }, e.status);
    }
  });

  app.post('/maintenance/tls', async (req, res) => {
    const cert = file(req, 'cert');
    const key = file(req, 'key');
    if (!ctx.tls) {
      await show(req, res, { tlsError: 'This server was started without a replaceable certificate.' }, 501);
      return;
    }
    if (!cert || !key) {
      await show(req, res, { tlsError: 'Choose a certificate file and a key file.' }, 400);
      return;
    }
    if (cert.data.length + key.data.length > ctx.limits.certBytes) {
      await show(req, res, { tlsError: `Certificate and key together may not exceed ${Math.round(ctx.limits.certBytes / 1024)} KiB.` }, 413);
      return;
    }
    try {
      ctx.tls.replace(checkTlsUpload(cert.data.toString('utf8'), key.data.toString('utf8')));
    } catch (e) {
      if (!(e instanceof TlsUploadError)) throw e;
      await show(req, res, { tlsError: e.message }, 400);
      return;
    }
    ctx.log('HTTPS certificate replaced', { user: ctx.principal(res).user });
    ctx.flash(res, 'ok', 'HTTPS certificate replaced; new connections use it.');
    res.redirect(303, '/maintenance');
  });

  app.get('/maintenance/reboot', async (req, res) => {
    await ctx.page(
      req,
      res,
      'Reboot',
      '/maintenance',
      confirmBody({ question: 'Reboot the gateway now?', detail: 'All tunnels go down until it is back.', action: '/maintenance/reboot', csrf: csrf(res), button: 'Reboot now', cancel: '/maintenance', danger: true }),
    );
  });

  app.post('/maintenance/reboot', async (req, res) => {
    await change(() => ctx.daemon.call('system.reboot', { actor: ctx.actor(res) }));
    await ctx.page(req, res, 'Rebooting', null, html`<p id="rebooting">The gateway is rebooting. This page works again when it is back, in about a minute. <a href="/">Dashboard</a></p>`, 202);
  });

  app.post('/maintenance/factory-reset', async (req, res) => {
    const typed = typeof req.body?.confirm === 'string' ? req.body.confirm.trim() : '';
    if (typed !== FACTORY_RESET_PHRASE) {
      await show(req, res, { resetError: `Type ${FACTORY_RESET_PHRASE} exactly to confirm. Nothing was erased.` }, 400);
      return;
    }
    await change(() => ctx.daemon.call('system.factoryReset', { confirm: FACTORY_RESET_PHRASE, actor: ctx.actor(res) }));
    ctx.log('factory reset', { user: ctx.principal(res).user });
    // The daemon forgot every user: so does the web admin (sessions, API tokens, lockouts).
    ctx.sessions.clear();
    ctx.tokens.clear();
    ctx.guard.clear();
    ctx.onFactoryReset();
    clearSessionCookie(res);
    res.redirect(303, '/setup');
  });
}

