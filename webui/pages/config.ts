/**
 * Revision history with diffs, rollback to a revision, and the
 * commit-confirmed controls behind the banner (confirm / roll back now).
 */
import type { Express, Response } from 'express';
import { html, href, fmtTime, type SafeHtml } from '../html.js';
import { confirmBody } from '../layout.js';
import { change, ChangeRefused } from '../service.js';
import type { WebContext } from '../app.js';
import type { ControlResult } from '../../firmware/control/api.js';
import { trialSeconds, DEFAULT_TRIAL_SEC } from '../tunnel-form.js';

type Diff = ControlResult<'config.diff'>;

export function diffBody(d: Diff, from: number, to: number): SafeHtml {
  const lines = d.text ? d.text.split('\n') : [];
  return html`<p>Changes from revision ${from} to revision ${to}:</p>
${lines.length ? html`<pre class="diff" id="diff">${lines.map((l) => html`<span class="${l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'chg'}">${l}</span>\n`)}</pre>` : html`<p>No differences.</p>`}
<p><a href="/config/history">Back to the history</a></p>`;
}

const int = (v: unknown): number | undefined => (typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : undefined);

export function registerConfigPages(app: Express, ctx: WebContext): void {
  const csrf = (res: Response) => ctx.principal(res).session?.csrf ?? '';

  app.get('/config/history', async (req, res) => {
    const before = int(req.query.before);
    const revs = await ctx.daemon.call('config.history', { limit: 50, ...(before ? { beforeId: before } : {}) });
    const current = revs.length && !before ? revs[0]!.id : undefined;
    const rows = revs.map(
      (r) => html`<tr data-revision="${r.id}" class="rev-${r.state}"><td data-label="Revision"><strong>${r.id}</strong>${r.id === current ? html` <span class="badge">running</span>` : ''}</td>
  <td data-label="When">${fmtTime(r.createdAt)}</td><td data-label="Author">${r.author}</td><td data-label="Comment">${r.comment}</td>
  <td data-label="State"><span class="badge state-${r.state}">${r.state}</span></td>
  <td data-label="">${r.id > 1 ? html`<a class="button small" href="${href('/config/diff', { from: r.id - 1, to: r.id })}">Changes</a>` : ''}
  ${r.id !== current ? html`<a class="button small" href="${href('/config/rollback', r.id)}">Roll back to this</a>` : ''}</td></tr>`,
    );
    const last = revs[revs.length - 1];
    await ctx.page(
      req,
      res,
      'Revision history',
      '/tunnels',
      html`<section class="card"><form method="get" action="/config/diff" class="inline-form">Compare revision <input name="from" size="5" inputmode="numeric"> with <input name="to" size="5" inputmode="numeric"> <button type="submit">Show diff</button></form></section>
<section class="card"><div class="table-wrap"><table class="list" id="history"><thead><tr><th>Revision</th><th>When</th><th>Author</th><th>Comment</th><th>State</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>
${last && revs.length === 50 ? html`<p><a href="${href('/config/history', { before: last.id })}">Older revisions</a></p>` : ''}</section>`,
    );
  });

  app.get('/config/diff', async (req, res) => {
    const from = int(req.query.from);
    const to = int(req.query.to);
    if (from === undefined || to === undefined) {
      await ctx.page(req, res, 'Diff', '/tunnels', html`<p>Give two revision numbers. <a href="/config/history">History</a></p>`, 400);
      return;
    }
    try {
      const d = await change(() => ctx.daemon.call('config.diff', { from, to }));
      await ctx.page(req, res, `Revision ${from} → ${to}`, '/tunnels', diffBody(d, from, to));
    } catch (e) {
      if (!(e instanceof ChangeRefused)) throw e;
      await ctx.page(req, res, 'Diff', '/tunnels', html`<div class="flash error">${e.message}</div>`, e.status);
    }
  });

  app.get('/config/rollback/:id', async (req, res) => {
    const id = int(req.params.id);
    if (id === undefined) {
      res.status(404).type('text').send('no such revision');
      return;
    }
    const cur = (await ctx.daemon.call('config.history', { limit: 1 }))[0]?.id ?? id;
    const d = await change(() => ctx.daemon.call('config.diff', { from: cur, to: id })).catch(() => undefined);
    await ctx.page(
      req,
      res,
      `Roll back to revision ${id}`,
      '/tunnels',
      html`${confirmBody({
        question: `Restore the configuration of revision ${id} as a new revision?`,
        detail: `It is applied on trial for ${DEFAULT_TRIAL_SEC} s: confirm it, or it rolls back by itself.`,
        action: href('/config/rollback', id),
        csrf: csrf(res),
        button: 'Roll back',
        cancel: '/config/history',
        fields: { trial: 'on', trial_sec: String(DEFAULT_TRIAL_SEC) },
      })}${d ? diffBody(d, cur, id) : ''}`,
    );
  });

  app.post('/config/rollback/:id', async (req, res) => {
    const id = int(req.params.id);
    const trial = trialSeconds((req.body ?? {}) as Record<string, unknown>);
    if (id === undefined) {
      res.status(404).type('text').send('no such revision');
      return;
    }
    try {
      const r = await change(() =>
        ctx.daemon.call('config.rollback', { revision: id, actor: ctx.actor(res), comment: `roll back to revision ${id} (web admin)`, ...(typeof trial === 'number' ? { confirmTimeoutSec: trial } : {}) }),
      );
      ctx.flash(res, 'ok', `Revision ${r.revision.id} restores revision ${id}${typeof trial === 'number' ? `; confirm it within ${trial} s` : ''}.`);
      res.redirect(303, '/');
    } catch (e) {
      if (!(e instanceof ChangeRefused)) throw e;
      ctx.flash(res, 'error', e.message);
      res.redirect(303, '/config/history');
    }
  });

  app.post('/config/confirm', async (req, res) => {
    try {
      const r = await change(() => ctx.daemon.call('config.confirm', { actor: ctx.actor(res) }));
      ctx.flash(res, 'ok', `Revision ${r.revision.id} confirmed: it stays.`);
    } catch (e) {
      if (!(e instanceof ChangeRefused)) throw e;
      ctx.flash(res, 'error', `Confirm: ${e.message}`);
    }
    res.redirect(303, '/');
  });

  app.post('/config/cancel', async (req, res) => {
    try {
      const r = await change(() => ctx.daemon.call('config.cancel', { actor: ctx.actor(res) }));
      ctx.flash(res, 'ok', `Rolled back: revision ${r.revision.id} restores the previous configuration.`);
    } catch (e) {
      if (!(e instanceof ChangeRefused)) throw e;
      ctx.flash(res, 'error', `Roll back: ${e.message}`);
    }
    res.redirect(303, '/');
  });
}
