/**
 * Account: change password (checked and stored by the daemon), the user's
 * sessions (revocable), and API tokens for the REST API (shown once when
 * created, stored hashed, revocable). A password change ends every other
 * session of the user and renews the current one.
 */
import type { Express, Request, Response } from 'express';
import { html, href, fmtTime, type SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';
import { refusal } from '../service.js';
import { logIn } from './auth.js';
import { clientIp } from '../security.js';
import type { WebContext } from '../app.js';

interface AccountState {
  passwordError?: string;
  newToken?: { name: string; token: string };
  tokenError?: string;
}

function body(ctx: WebContext, req: Request, res: Response, st: AccountState): SafeHtml {
  const p = ctx.principal(res);
  const csrf = p.session?.csrf ?? '';
  const sessions = ctx.sessions.list(p.user);
  const tokens = ctx.tokens.list(p.user);
  const current = p.session;
  return html`<section class="card" id="password"><h2>Change password</h2>
${st.passwordError ? html`<div class="flash error" role="alert">${st.passwordError}</div>` : ''}
<form method="post" action="/account/password" class="form" id="password-form">${csrfField(csrf)}
<label>Current password <input type="password" name="current" autocomplete="current-password" required></label>
<label>New password <input type="password" name="password" autocomplete="new-password" required minlength="10"></label>
<label>Repeat new password <input type="password" name="password2" autocomplete="new-password" required minlength="10"></label>
<button type="submit" class="primary">Change password</button>
<p class="help">Your other sessions are logged out.</p></form></section>
<section class="card" id="sessions"><h2>Sessions</h2><div class="table-wrap"><table class="list"><thead><tr><th>Session</th><th>Started</th><th>Last seen</th><th>From</th><th>Browser</th><th></th></tr></thead><tbody>
${sessions.map(
  (s) => html`<tr data-session="${s.handle}"><td data-label="Session" class="mono">${s.handle.slice(0, 8)}${s === current ? html` <span class="badge">this one</span>` : ''}</td>
<td data-label="Started">${fmtTime(s.createdAt)}</td><td data-label="Last seen">${fmtTime(s.lastSeenAt)}</td><td data-label="From">${s.ip}</td><td data-label="Browser" class="small">${s.userAgent}</td>
<td>${s === current ? '' : html`<form method="post" action="${href('/account/sessions', s.handle, 'revoke')}">${csrfField(csrf)}<button type="submit" class="small danger">Revoke</button></form>`}</td></tr>`,
)}
</tbody></table></div></section>
<section class="card" id="tokens"><h2>API tokens</h2>
<p>For scripts and curl: <code>curl -H "Authorization: Bearer &lt;token&gt;" https://${req.headers.host ?? 'gateway'}/api/v1/status</code>. The API is described at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
${st.newToken ? html`<div class="flash ok new-token" role="status"><p>Token <strong>${st.newToken.name}</strong> created. Copy it now: it is not shown again.</p><pre id="new-token">${st.newToken.token}</pre></div>` : ''}
${st.tokenError ? html`<div class="flash error" role="alert">${st.tokenError}</div>` : ''}
<form method="post" action="/account/tokens" class="inline-form">${csrfField(csrf)}<label>Name <input name="name" maxlength="64" required></label><button type="submit">Create token</button></form>
${tokens.length ? html`<div class="table-wrap"><table class="list"><thead><tr><th>Name</th><th>Created</th><th>Last used</th><th></th></tr></thead><tbody>
${tokens.map((t) => html`<tr data-token="${t.id}"><td data-label="Name">${t.name}</td><td data-label="Created">${fmtTime(t.createdAt)}</td><td data-label="Last used">${fmtTime(t.lastUsedAt)}</td>
<td><form method="post" action="${href('/account/tokens', t.id, 'revoke')}">${csrfField(csrf)}<button type="submit" class="small danger">Revoke</button></form></td></tr>`)}
</tbody></table></div>` : html`<p>No API tokens.</p>`}
</section>`;
}

export function registerAccountPages(app: Express, ctx: WebContext): void {
  const show = (req: Request, res: Response, st: AccountState = {}, status = 200) => ctx.page(req, res, 'Account', '/account', body(ctx, req, res, st), status);

  app.get('/account', (req, res) => show(req, res));

  app.post('/account/password', async (req, res) => {
    const p = ctx.principal(res);
    const b = (req.body ?? {}) as Record<string, unknown>;
    const current = typeof b.current === 'string' ? b.current : '';
    const next = typeof b.password === 'string' ? b.password : '';
    if (next !== b.password2) {
      await show(req, res, { passwordError: 'The two new passwords differ.' }, 400);
      return;
    }
    const verdict = ctx.guard.attempt(p.user, clientIp(req));
    if (!verdict.ok) {
      res.setHeader('Retry-After', String(verdict.retryAfterSec));
      await show(req, res, { passwordError: 'Too many wrong passwords: try again later.' }, 429);
      return;
    }
    try {
      await ctx.daemon.call('users.password', { name: p.user, currentPassword: current, newPassword: next, actor: ctx.actor(res) });
    } catch (e) {
      const r = refusal(e);
      if (r.code === 'ERR_STORE_AUTH') ctx.guard.failure(p.user);
      await show(req, res, { passwordError: r.code === 'ERR_STORE_AUTH' ? 'The current password is wrong.' : r.message }, r.status);
      return;
    }
    ctx.sessions.destroyUser(p.user, p.session);
    if (p.via === 'session') logIn(ctx, req, res, p.user);
    ctx.flash(res, 'ok', 'Password changed. Your other sessions were logged out.');
    res.redirect(303, '/account');
  });

  app.post('/account/sessions/:handle/revoke', (req, res) => {
    const p = ctx.principal(res);
    const ok = ctx.sessions.destroyHandle(req.params.handle, p.user);
    ctx.flash(res, ok ? 'ok' : 'error', ok ? 'Session revoked.' : 'No such session.');
    res.redirect(303, '/account');
  });

  app.post('/account/tokens', async (req, res) => {
    const p = ctx.principal(res);
    try {
      const { token, info } = ctx.tokens.create(p.user, typeof req.body?.name === 'string' ? req.body.name : '');
      ctx.log('API token created', { user: p.user, token: info.name });
      await show(req, res, { newToken: { name: info.name, token } }, 201);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
      await show(req, res, { tokenError: e.message }, 400);
    }
  });

  app.post('/account/tokens/:id/revoke', (req, res) => {
    const ok = ctx.tokens.revoke(req.params.id, ctx.principal(res).user);
    ctx.flash(res, ok ? 'ok' : 'error', ok ? 'Token revoked.' : 'No such token.');
    res.redirect(303, '/account');
  });
}

