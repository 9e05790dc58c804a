/**
 * The web admin as an express application (the HTTPS listener, privilege
 * drop and certificate handling are in server.ts).
 *
 * Request pipeline, in order:
 *   1. security headers (security.ts) on every response;
 *   2. static assets (/static/<name>: a fixed in-memory set, no file system
 *      lookups, so no path can escape it);
 *   3. authentication: a Bearer API token or the session cookie. Every path
 *      except PUBLIC_PATHS and /static/ is refused without one — before the
 *      body is even read;
 *   4. body parsers with size limits (forms, JSON, multipart uploads);
 *   5. cross-site checks (CSRF token + Origin) on every state-changing
 *      request authenticated by the cookie, the public login/setup forms
 *      included (they carry an anonymous session's token);
 *   6. the routes (pages/*.ts, api.ts), all registered directly on the app
 *      so the route table (app.router.stack) is the complete list a test
 *      can enumerate.
 */
import express, { type Express, type Request, type Response, type NextFunction } from 'express';
import { isConnectionError, type DaemonApi } from './daemon-client.js';
import { SessionStore, LoginGuard, type Session, type SessionOptions, type LoginGuardOptions } from './sessions.js';
import { ApiTokenStore } from './tokens.js';
import {
  securityHeaders, sessionCookieOf, setSessionCookie, clientIp, isStateChanging, originProblem, csrfOk,
} from './security.js';
import { parseMultipart, formOf, MultipartError } from './multipart.js';
import { frame } from './layout.js';
import { html, type SafeHtml } from './html.js';
import { pending as fetchPending, ChangeRefused, refusal } from './service.js';
import type { TlsInfo, TlsMaterial } from './tls-store.js';
import { registerAuthPages } from './pages/auth.js';
import { registerDashboardPages } from './pages/dashboard.js';
import { registerTunnelPages } from './pages/tunnels.js';
import { registerSystemPages } from './pages/system.js';
import { registerMaintenancePages } from './pages/maintenance.js';
import { registerAccountPages } from './pages/account.js';
import { registerApi } from './api.js';
import { registerUpgradeRoutes } from './pages/upgrade.js';
import { prepareAppState, STATIC_TYPES, type AppState } from './app-state.js';
import { STARTING_RETRY_SEC, startingBody, startingTitle } from './starting.js';

/** Reachable without a session (besides /static/*). */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/login', '/setup']);

export interface Principal {
  user: string;
  via: 'session' | 'token';
  session?: Session;
  tokenName?: string;
}

export interface TlsControl {
  info(): TlsInfo;
  replace(m: TlsMaterial): void;
}

export interface WebAppOptions {
  daemon: DaemonApi;
  /** Where api-tokens.json lives; undefined = in memory (tests). */
  dataDir?: string;
  sessions?: SessionOptions;
  loginGuard?: LoginGuardOptions;
  tls?: TlsControl;
  now?: () => number;
  log?: (msg: string, meta?: Record<string, unknown>) => void;
  limits?: Partial<Limits>;
  /** Called after a factory reset was accepted by the daemon (server.ts: nothing else to do; tests: observe). */
  onFactoryReset?: () => void;
  /** Firmware uploads are streamed here (the daemon reads them); default `<dataDir>/spool`, else a temporary directory. */
  spoolDir?: string;
  /** Spool, token store and assets prepared already (server.ts, before dropping privileges); default: prepared here. */
  state?: AppState;
}

export interface Limits {
  formBytes: number;
  jsonBytes: number;
  /** Backup restore upload. */
  backupBytes: number;
  /** Certificate + key upload. */
  certBytes: number;
  /** Firmware bundle upload (streamed to the spool directory). */
  firmwareBytes: number;
}

export interface WebContext {
  daemon: DaemonApi;
  sessions: SessionStore;
  guard: LoginGuard;
  tokens: ApiTokenStore;
  tls: TlsControl | undefined;
  now: () => number;
  log: (msg: string, meta?: Record<string, unknown>) => void;
  limits: Limits;
  onFactoryReset: () => void;
  /** Render a page in the frame (pending banner, flash) and send it. */
  page(req: Request, res: Response, title: string, active: string | null, body: SafeHtml, status?: number): Promise<void>;
  flash(res: Response, kind: 'ok' | 'error', text: string): void;
  principal(res: Response): Principal;
  actor(res: Response): string;
  /** The request's session, creating an anonymous one (and its cookie) if needed. */
  ensureSession(req: Request, res: Response): Session;
}

export { staticDir, STATIC_TYPES } from './app-state.js';
export { STARTING_RETRY_SEC } from './starting.js';

/**
 * The body size the parsers below accept for a content type (undefined:
 * no global parser reads it). Keep in step with the express.* limits in
 * createApp.
 */
export function declaredBodyLimit(contentType: string | undefined, limits: Limits): number | undefined {
  const t = (contentType ?? '').toLowerCase();
  if (t.startsWith('application/x-www-form-urlencoded')) return limits.formBytes;
  if (t.startsWith('application/json') || /^application\/[a-z0-9.+-]*\+json/.test(t)) return limits.jsonBytes;
  if (t.startsWith('multipart/form-data')) return Math.max(limits.backupBytes, limits.certBytes) + 16 * 1024;
  return undefined;
}

export function createApp(opts: WebAppOptions): { app: Express; ctx: WebContext } {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const limits: Limits = { formBytes: 64 * 1024, jsonBytes: 1024 * 1024, backupBytes: 1024 * 1024, certBytes: 64 * 1024, firmwareBytes: 512 * 1024 * 1024, ...opts.limits };
  const state = opts.state ?? prepareAppState({ dataDir: opts.dataDir, spoolDir: opts.spoolDir, now: opts.now });
  const spoolDir = state.spoolDir;
  // Development image (its trust store accepts unsigned firmware): a property of the rootfs, asked once.
  let devBuild: boolean | undefined;
  const isDevBuild = async (): Promise<boolean> => {
    if (devBuild === undefined) devBuild = await opts.daemon.call('upgrade.status', {}).then((s) => s.dev, () => undefined);
    return devBuild ?? false;
  };
  const assets = state.assets;

  const ctx: WebContext = {
    daemon: opts.daemon,
    sessions: new SessionStore({ ...(opts.now ? { now: opts.now } : {}), ...opts.sessions }),
    guard: new LoginGuard({ ...(opts.now ? { now: opts.now } : {}), ...opts.loginGuard }),
    tokens: state.tokens,
    tls: opts.tls,
    now: opts.now ?? Date.now,
    log: opts.log ?? (() => {}),
    limits,
    onFactoryReset: opts.onFactoryReset ?? (() => {}),
    async page(req, res, title, active, body, status = 200) {
      const session = res.locals.session as Session | undefined;
      const p = res.locals.principal as Principal | undefined;
      const pend = p ? await fetchPending(ctx.daemon) : null;
      const flash = session ? session.flash.splice(0) : [];
      const dev = p ? await isDevBuild() : false;
      res.status(status).type('html').send(frame({ user: p?.user ?? null, csrf: session?.csrf ?? '', pending: pend, flash, serverNow: ctx.now(), devBuild: dev }, title, active, body));
    },
    flash(res, kind, text) {
      (res.locals.session as Session | undefined)?.flash.push({ kind, text });
    },
    principal(res) {
      const p = res.locals.principal as Principal | undefined;
      if (!p) throw new Error('no principal on an authenticated route');
      return p;
    },
    actor(res) {
      const p = ctx.principal(res);
      return p.via === 'token' ? `${p.user} (API token ${p.tokenName ?? ''})`.slice(0, 128) : `${p.user} (web)`;
    },
    ensureSession(req, res) {
      const existing = res.locals.session as Session | undefined;
      if (existing) return existing;
      const { cookie, session } = ctx.sessions.create(null, { ip: clientIp(req), userAgent: String(req.headers['user-agent'] ?? '') });
      setSessionCookie(res, cookie);
      res.locals.session = session;
      return session;
    },
  };

  // 1. headers
  app.use(securityHeaders);

  // 2. static assets (public)
  app.get('/static/:file', (req: Request, res: Response) => {
    const name = String(req.params.file);
    const body = Object.prototype.hasOwnProperty.call(STATIC_TYPES, name) ? assets.get(name) : undefined;
    if (!body) {
      res.status(404).type('text').send('not found');
      return;
    }
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.type(STATIC_TYPES[name]!).send(body);
  });

  // 3. authentication
  app.use((req: Request, res: Response, next: NextFunction) => {
    const isPublic = PUBLIC_PATHS.has(req.path) || req.path.startsWith('/static/');
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer ([A-Za-z0-9_-]{1,100})$/.exec(auth);
      const info = m ? ctx.tokens.verify(m[1]!) : undefined;
      if (!info) {
        // A wrong token counts against the address like a failed login (guessing tokens is rate-limited too).
        const verdict = ctx.guard.attempt('(api token)', clientIp(req));
        if (!verdict.ok) {
          res.status(429).setHeader('Retry-After', String(verdict.retryAfterSec));
          res.json({ error: { code: 'ERR_RATE_LIMITED', message: 'too many failed attempts from this address' } });
          return;
        }
        res.status(401).setHeader('WWW-Authenticate', 'Bearer realm="pqgate", error="invalid_token"');
        res.json({ error: { code: 'ERR_UNAUTHENTICATED', message: 'invalid API token' } });
        return;
      }
      res.locals.principal = { user: info.user, via: 'token', tokenName: info.name } satisfies Principal;
      next();
      return;
    }
    const session = ctx.sessions.get(sessionCookieOf(req));
    if (session) res.locals.session = session;
    if (session?.user) res.locals.principal = { user: session.user, via: 'session', session } satisfies Principal;
    if (isPublic || res.locals.principal) {
      next();
      return;
    }
    if (req.path.startsWith('/api/')) {
      res.status(401).setHeader('WWW-Authenticate', 'Bearer realm="pqgate"');
      res.json({ error: { code: 'ERR_UNAUTHENTICATED', message: 'log in or send an API token' } });
    } else if (req.method === 'GET' || req.method === 'HEAD') res.redirect(303, '/login');
    else res.status(401).type('text').send('not logged in');
  });

  // 4. bodies. A body whose declared length is over the limit is refused
  // before any of it is read: body-parser would first read (and discard)
  // all of it, so an attacker could make us swallow gigabytes before the 413
  // (RFC 9110 §15.5.14). The connection is closed after the answer so the
  // rest of the body is never read. A body without a length (chunked) is
  // counted as it arrives and answered the same way as soon as it passes the
  // limit (body-parser, reading alongside, stops keeping it at the limit too).
  app.use((req: Request, res: Response, next: NextFunction) => {
    const limit = declaredBodyLimit(req.headers['content-type'], limits);
    if (limit === undefined) {
      next();
      return;
    }
    const tooLarge = (): void => {
      res.setHeader('Connection', 'close');
      refuse(req, res, 413, 'ERR_TOO_LARGE', `request body too large (at most ${limit} bytes)`);
    };
    const len = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(len) && len > limit) {
      tooLarge();
      return;
    }
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined) {
      let seen = 0;
      const count = (chunk: Buffer): void => {
        seen += chunk.length;
        if (seen <= limit) return;
        req.off('data', count);
        if (!res.headersSent) tooLarge();
        // Stop reading: the rest of the body is the client's problem, not our memory or time.
        res.once('finish', () => req.socket.destroy());
      };
      req.on('data', count);
    }
    next();
  });
  app.use(express.urlencoded({ extended: false, limit: limits.formBytes, parameterLimit: 200 }));
  app.use(express.json({ limit: limits.jsonBytes }));
  app.use(express.raw({ type: 'multipart/form-data', limit: Math.max(limits.backupBytes, limits.certBytes) + 16 * 1024 }));
  app.use((req: Request, _res: Response, next: NextFunction) => {
    if (Buffer.isBuffer(req.body) && /^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) {
      const { fields, files } = formOf(parseMultipart(req.body, req.headers['content-type']));
      req.body = { ...fields, _files: files };
    }
    next();
  });

  // 5. cross-site checks
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!isStateChanging(req.method)) {
      next();
      return;
    }
    const p = res.locals.principal as Principal | undefined;
    const problem = originProblem(req);
    if (problem) {
      refuse(req, res, 403, 'ERR_CROSS_SITE', `refused: ${problem}`);
      return;
    }
    if (p?.via === 'token') {
      next();
      return;
    }
    const session = res.locals.session as Session | undefined;
    if (!session || !csrfOk(req, session.csrf)) {
      refuse(req, res, 403, 'ERR_CSRF', session ? 'refused: missing or wrong CSRF token (reload the page and try again)' : 'refused: no session (reload the page and try again)');
      return;
    }
    next();
  });

  // 6. routes
  registerAuthPages(app, ctx);
  registerDashboardPages(app, ctx);
  registerTunnelPages(app, ctx);
  registerSystemPages(app, ctx);
  registerMaintenancePages(app, ctx);
  registerUpgradeRoutes(app, ctx, spoolDir);
  registerAccountPages(app, ctx);
  registerApi(app, ctx);

  app.use((req: Request, res: Response) => {
    if (req.path.startsWith('/api/')) res.status(404).json({ error: { code: 'ERR_NOT_FOUND', message: 'no such API route' } });
    else void ctx.page(req, res, 'Not found', null, html`<p>There is no page at this address. <a href="/">Dashboard</a></p>`, 404);
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (isConnectionError(err) && !res.headersSent) {
      // The daemon is not answering: at boot the web admin is up first (docs/webui.md
      // "Start-up"). Pages say so and reload themselves; the API answers 503 + Retry-After.
      res.setHeader('Retry-After', String(STARTING_RETRY_SEC));
      if (!(req.path.startsWith('/api/') || (req.headers.accept ?? '').includes('application/json')) && (req.method === 'GET' || req.method === 'HEAD')) {
        startingPage(res, (err as Error).message);
        return;
      }
    }
    const e = err as { status?: number; type?: string; message?: string };
    let status = 500;
    let code = 'ERR_INTERNAL';
    let message = 'internal error';
    let issues;
    if (err instanceof ChangeRefused) [status, code, message, issues] = [err.status, err.code, err.message, err.issues];
    else if (err instanceof MultipartError) [status, code, message] = [err.status, 'ERR_UPLOAD', err.message];
    else if (e?.type === 'entity.too.large') [status, code, message] = [413, 'ERR_TOO_LARGE', 'request body too large'];
    else if (typeof e?.type === 'string' && typeof e.status === 'number' && e.status >= 400 && e.status < 500)
      [status, code, message] = [e.status, 'ERR_BAD_REQUEST', 'malformed request body']; // body-parser errors carry a `type`
    else {
      let r: ChangeRefused | undefined;
      try {
        r = refusal(err);
      } catch {
        r = undefined;
      }
      if (r) [status, code, message, issues] = [r.status, r.code, r.message, r.issues];
      else ctx.log('web request failed', { path: req.path, error: err instanceof Error ? err.stack ?? err.message : String(err) });
    }
    if (res.headersSent) return;
    refuse(req, res, status, code, message, issues);
  });

  /** 503 page while the daemon does not answer; no daemon calls (it would wait again). */
  function startingPage(res: Response, reason: string): void {
    const session = res.locals.session as Session | undefined;
    const p = res.locals.principal as Principal | undefined;
    const starting = opts.daemon.starting !== false;
    const body = startingBody(starting, reason);
    res
      .status(503)
      .setHeader('Cache-Control', 'no-store')
      .type('html')
      .send(frame({ user: p?.user ?? null, csrf: session?.csrf ?? '', serverNow: ctx.now(), refreshSec: STARTING_RETRY_SEC }, startingTitle(starting), null, body));
  }

  function refuse(req: Request, res: Response, status: number, code: string, message: string, issues?: unknown): void {
    if (req.path.startsWith('/api/') || (req.headers.accept ?? '').includes('application/json'))
      res.status(status).json({ error: { code, message, ...(issues ? { issues } : {}) } });
    else void ctx.page(req, res, status === 413 ? 'Too large' : status === 403 ? 'Refused' : 'Error', null, html`<div class="flash error" role="alert">${message}</div><p><a href="/">Back to the dashboard</a></p>`, status);
  }

  return { app, ctx };
}
