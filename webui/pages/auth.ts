/**
 * First-boot setup, login, logout.
 *
 * There is no default password (ETSI EN 303 645 provision 5.1-1, as the UK
 * PSTI regulations and the EU CRA expect): until the daemon reports a user
 * (`users.setupRequired`), /setup creates the first administrator and every
 * other page leads there. Passwords are checked by the daemon
 * (`users.verify`, scrypt in the store); the web process never stores one.
 * A successful login or setup replaces the session the browser came with by
 * a new one (new id, new CSRF token): no session fixation.
 */
import type { Express, Request, Response } from 'express';
import { html } from '../html.js';
import { csrfField, errorBlock } from '../layout.js';
import { clientIp, clearSessionCookie, sessionCookieOf, setSessionCookie } from '../security.js';
import { refusal } from '../service.js';
import type { WebContext } from '../app.js';

const str = (v: unknown) => (typeof v === 'string' ? v : '');

async function setupRequired(ctx: WebContext): Promise<boolean> {
  return (await ctx.daemon.call('users.setupRequired', {})).setupRequired;
}

/** Replace the request's session by a fresh, logged-in one. */
export function logIn(ctx: WebContext, req: Request, res: Response, user: string): void {
  ctx.sessions.destroy(sessionCookieOf(req));
  const { cookie, session } = ctx.sessions.create(user, { ip: clientIp(req), userAgent: String(req.headers['user-agent'] ?? '') });
  setSessionCookie(res, cookie);
  res.locals.session = session;
}

function setupForm(csrf: string, name: string, error?: string) {
  return html`<section class="card narrow">
<p>Welcome. This gateway has no administrator yet and no default password: choose the administrator's name and password now.
The password needs at least 10 characters; it is stored only as a scrypt hash.</p>
${errorBlock(error)}
<form method="post" action="/setup" class="form" id="setup-form">
  ${csrfField(csrf)}
  <label>Administrator name <input name="name" value="${name}" autocomplete="username" required pattern="[a-z_][a-z0-9_.\\-]{0,31}"></label>
  <label>Password <input type="password" name="password" autocomplete="new-password" required minlength="10"></label>
  <label>Repeat password <input type="password" name="password2" autocomplete="new-password" required minlength="10"></label>
  <button type="submit" class="primary">Create administrator</button>
</form></section>`;
}

function loginForm(csrf: string, name: string, error?: string) {
  return html`<section class="card narrow">
${errorBlock(error)}
<form method="post" action="/login" class="form" id="login-form">
  ${csrfField(csrf)}
  <label>User <input name="name" value="${name}" autocomplete="username" required autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit" class="primary">Log in</button>
</form></section>`;
}

export function registerAuthPages(app: Express, ctx: WebContext): void {
  app.get('/setup', async (req, res) => {
    if (!(await setupRequired(ctx))) {
      res.redirect(303, '/login');
      return;
    }
    const s = ctx.ensureSession(req, res);
    await ctx.page(req, res, 'First-time setup', null, setupForm(s.csrf, 'admin'));
  });

  app.post('/setup', async (req, res) => {
    const s = ctx.ensureSession(req, res);
    if (!(await setupRequired(ctx))) {
      res.redirect(303, '/login');
      return;
    }
    const name = str(req.body?.name).trim();
    const password = str(req.body?.password);
    if (password !== str(req.body?.password2)) {
      await ctx.page(req, res, 'First-time setup', null, setupForm(s.csrf, name, 'The two passwords differ.'), 400);
      return;
    }
    try {
      await ctx.daemon.call('users.create', { name, password });
    } catch (e) {
      const r = refusal(e);
      await ctx.page(req, res, 'First-time setup', null, setupForm(s.csrf, name, r.message), r.status === 409 ? 409 : 400);
      return;
    }
    ctx.log('administrator created at first-boot setup', { user: name });
    logIn(ctx, req, res, name);
    ctx.flash(res, 'ok', `Administrator ${name} created. You are logged in.`);
    res.redirect(303, '/');
  });

  app.get('/login', async (req, res) => {
    if (await setupRequired(ctx)) {
      res.redirect(303, '/setup');
      return;
    }
    if (res.locals.principal) {
      res.redirect(303, '/');
      return;
    }
    const s = ctx.ensureSession(req, res);
    await ctx.page(req, res, 'Log in', null, loginForm(s.csrf, ''));
  });

  app.post('/login', async (req, res) => {
    const s = ctx.ensureSession(req, res);
    const name = str(req.body?.name).trim().slice(0, 64);
    const password = str(req.body?.password);
    const verdict = ctx.guard.attempt(name, clientIp(req));
    if (!verdict.ok) {
      res.setHeader('Retry-After', String(verdict.retryAfterSec));
      const msg =
        verdict.reason === 'locked'
          ? `Too many failed attempts for this user: locked for ${Math.ceil(verdict.retryAfterSec / 60)} more minute(s).`
          : `Too many login attempts from your address: wait ${verdict.retryAfterSec} s.`;
      ctx.log('login refused', { user: name, ip: clientIp(req), reason: verdict.reason });
      await ctx.page(req, res, 'Log in', null, loginForm(s.csrf, name, msg), 429);
      return;
    }
    const ok = name !== '' && password !== '' && (await ctx.daemon.call('users.verify', { name, password })).ok;
    if (!ok) {
      ctx.guard.failure(name);
      ctx.log('login failed', { user: name, ip: clientIp(req) });
      await ctx.page(req, res, 'Log in', null, loginForm(s.csrf, name, 'Wrong user name or password.'), 401);
      return;
    }
    ctx.guard.success(name);
    logIn(ctx, req, res, name);
    ctx.log('login', { user: name, ip: clientIp(req) });
    res.redirect(303, '/');
  });

  app.post('/logout', (req, res) => {
    ctx.sessions.destroy(sessionCookieOf(req));
    clearSessionCookie(res);
    res.redirect(303, '/login');
  });
}
