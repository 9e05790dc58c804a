/**
 * The JSON REST API under /api/v1, behind the pages and for scripts
 * (`Authorization: Bearer <token>`, tokens from the Account page). Described
 * by the OpenAPI 3.1 document at /api/v1/openapi.json (openapi.ts; a test
 * checks that the document and this route table list the same operations).
 *
 * Errors are `{ "error": { "code", "message", "issues"? } }` with an HTTP
 * status from the daemon's error code (service.ts): 422 + issues for an
 * invalid configuration (nothing changed), 409 for a pending
 * commit-confirmed revision, 404, 400, 503 when the daemon is unreachable.
 * Responses never contain a secret: documents come back with "<set>" in
 * place of pre-shared keys.
 */
import type { Express, Request, Response } from 'express';
import { dashboard, getConfig, putTunnel, deleteTunnel, restore, saAction, isSaAction, scrubSecrets, ChangeRefused, change } from './service.js';
import { logFilter } from './pages/system.js';
import { FACTORY_RESET_PHRASE } from './pages/maintenance.js';
import { clearSessionCookie, clientIp } from './security.js';
import { openApiDocument } from './openapi.js';
import type { Part } from './multipart.js';
import type { WebContext } from './app.js';

type Obj = Record<string, unknown>;

export const int = (v: unknown, lo = 1, hi = 1e9): number | undefined => {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string' || !/^\d{1,10}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= lo && n <= hi ? n : undefined;
};

function bad(message: string, status = 400): ChangeRefused {
  return new ChangeRefused(status, 'ERR_BAD_REQUEST', message);
}

function bodyOf(req: Request): Obj {
  const b = req.body as unknown;
  return b && typeof b === 'object' && !Array.isArray(b) && !Buffer.isBuffer(b) ? (b as Obj) : {};
}

export function changeFields(b: Obj): { comment?: string; confirmTimeoutSec?: number } {
  const out: { comment?: string; confirmTimeoutSec?: number } = {};
  if (b.comment !== undefined) {
    if (typeof b.comment !== 'string' || b.comment.length > 2000) throw bad('comment must be a string of at most 2000 characters');
    out.comment = b.comment;
  }
  if (b.confirmTimeoutSec !== undefined) {
    const t = int(b.confirmTimeoutSec, 1, 7 * 86400);
    if (t === undefined) throw bad('confirmTimeoutSec must be an integer between 1 and 604800');
    out.confirmTimeoutSec = t;
  }
  return out;
}

export function registerApi(app: Express, ctx: WebContext): void {
  const json = (res: Response, v: unknown, status = 200) => res.status(status).json(scrubSecrets(v));

  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });

  app.get('/api/v1/session', (_req, res) => {
    const p = ctx.principal(res);
    res.json({ user: p.user, via: p.via, ...(p.session ? { csrfToken: p.session.csrf } : {}) });
  });

  app.get('/api/v1/status', async (_req, res) => {
    json(res, await dashboard(ctx.daemon, ctx.now()));
  });

  app.get('/api/v1/config', async (_req, res) => {
    json(res, await getConfig(ctx.daemon));
  });

  app.post('/api/v1/config/validate', async (req, res) => {
    const b = bodyOf(req);
    if (!('document' in b)) throw bad('body must be {"document": ...}');
    json(res, await change(() => ctx.daemon.call('config.validate', { document: b.document })));
  });

  app.get('/api/v1/presets', async (_req, res) => {
    json(res, await ctx.daemon.call('config.presets', {}));
  });

  app.get('/api/v1/tunnels', async (_req, res) => {
    json(res, (await getConfig(ctx.daemon)).document.tunnels);
  });

  app.put('/api/v1/tunnels/:name', async (req, res) => {
    const b = bodyOf(req);
    const tunnel = b.tunnel;
    if (!tunnel || typeof tunnel !== 'object' || Array.isArray(tunnel)) throw bad('body must be {"tunnel": {...fields}, "preset"?, "params"?, "comment"?, "confirmTimeoutSec"?}');
    const t = { ...(tunnel as Obj), name: req.params.name };
    if ((tunnel as Obj).name !== undefined && (tunnel as Obj).name !== req.params.name) throw bad('tunnel.name must equal the name in the path (rename = delete + create)');
    const params = b.params;
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params) || Object.values(params).some((v) => typeof v !== 'string')))
      throw bad('params must be an object of strings');
    if (b.preset !== undefined && typeof b.preset !== 'string') throw bad('preset must be a string');
    const rev = await putTunnel(ctx.daemon, t, {
      actor: ctx.actor(res),
      ...changeFields(b),
      ...(typeof b.preset === 'string' ? { preset: b.preset } : {}),
      ...(params ? { params: params as Record<string, string> } : {}),
    });
    json(res, { revision: rev });
  });

  app.delete('/api/v1/tunnels/:name', async (req, res) => {
    const b = { ...(req.query as Obj), ...bodyOf(req) };
    json(res, { revision: await deleteTunnel(ctx.daemon, req.params.name, { actor: ctx.actor(res), ...changeFields(b) }) });
  });

  app.post('/api/v1/tunnels/:name/actions/:action', async (req, res) => {
    const { name, action } = req.params;
    if (!isSaAction(action)) throw bad(`unknown action '${action.slice(0, 32)}' (up, down, rekey-ike, rekey-child, reset)`, 404);
    await saAction(ctx.daemon, name, action, ctx.actor(res));
    json(res, { ok: true });
  });

  app.get('/api/v1/config/history', async (req, res) => {
    const limit = int(req.query.limit, 1, 1000) ?? 50;
    const beforeId = int(req.query.beforeId);
    json(res, await ctx.daemon.call('config.history', { limit, ...(beforeId ? { beforeId } : {}) }));
  });

  app.get('/api/v1/config/diff', async (req, res) => {
    const from = int(req.query.from);
    const to = int(req.query.to);
    if (from === undefined || to === undefined) throw bad('from and to must be revision numbers');
    json(res, await change(() => ctx.daemon.call('config.diff', { from, to })));
  });

  app.get('/api/v1/config/pending', async (_req, res) => {
    json(res, await ctx.daemon.call('config.pending', {}));
  });

  app.post('/api/v1/config/confirm', async (_req, res) => {
    json(res, await change(() => ctx.daemon.call('config.confirm', { actor: ctx.actor(res) })));
  });

  app.post('/api/v1/config/cancel', async (_req, res) => {
    json(res, await change(() => ctx.daemon.call('config.cancel', { actor: ctx.actor(res) })));
  });

  app.post('/api/v1/config/rollback', async (req, res) => {
    const b = bodyOf(req);
    const revision = int(b.revision);
    if (revision === undefined) throw bad('revision must be a revision number');
    json(res, await change(() => ctx.daemon.call('config.rollback', { revision, actor: ctx.actor(res), ...changeFields(b) })));
  });

  app.get('/api/v1/config/backup', async (_req, res) => {
    const r = await ctx.daemon.call('config.export', { includeSecrets: false, actor: ctx.actor(res) });
    json(res, r.document);
  });

  app.post('/api/v1/config/restore', async (req, res) => {
    const b = bodyOf(req);
    const file = (b._files as Record<string, Part> | undefined)?.backup;
    let text: string;
    if (file) {
      if (file.data.length > ctx.limits.backupBytes) throw bad(`backup larger than ${ctx.limits.backupBytes} bytes`, 413);
      text = file.data.toString('utf8');
    } else if ('document' in b) text = JSON.stringify(b.document);
    else throw bad('send {"document": ...} as JSON or a multipart form with a "backup" file');
    const comment = typeof b.comment === 'string' ? b.comment.slice(0, 2000) : undefined;
    json(res, { revision: await restore(ctx.daemon, text, ctx.actor(res), comment) });
  });

  app.get('/api/v1/system', async (_req, res) => {
    json(res, await ctx.daemon.call('system.info', {}));
  });

  app.post('/api/v1/system/reboot', async (_req, res) => {
    json(res, await change(() => ctx.daemon.call('system.reboot', { actor: ctx.actor(res) })), 202);
  });

  app.post('/api/v1/system/factory-reset', async (req, res) => {
    if (bodyOf(req).confirm !== FACTORY_RESET_PHRASE) throw bad(`body must be {"confirm": "${FACTORY_RESET_PHRASE}"}`);
    await change(() => ctx.daemon.call('system.factoryReset', { confirm: FACTORY_RESET_PHRASE, actor: ctx.actor(res) }));
    ctx.sessions.clear();
    ctx.tokens.clear();
    ctx.guard.clear();
    ctx.onFactoryReset();
    clearSessionCookie(res);
    json(res, { ok: true });
  });

  app.get('/api/v1/logs', async (req, res) => {
    const limit = int(req.query.limit, 1, 1000) ?? 100;
    const beforeId = int(req.query.beforeId);
    json(res, await ctx.daemon.call('logs.events', { limit, ...logFilter(req.query as Obj), ...(beforeId ? { beforeId } : {}) }));
  });

  app.get('/api/v1/logs/audit', async (req, res) => {
    const limit = int(req.query.limit, 1, 1000) ?? 100;
    const beforeId = int(req.query.beforeId);
    json(res, await ctx.daemon.call('logs.audit', { limit, ...(beforeId ? { beforeId } : {}) }));
  });

  app.get('/api/v1/certs', async (_req, res) => {
    json(res, await ctx.daemon.call('certs.list', {}));
  });

  app.get('/api/v1/metrics', async (_req, res) => {
    res.type('text/plain; version=0.0.4').send((await ctx.daemon.call('metrics', {})).text);
  });

  app.get('/api/v1/account/sessions', (_req, res) => {
    const p = ctx.principal(res);
    res.json(
      ctx.sessions.list(p.user).map((s) => ({ id: s.handle, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, ip: s.ip, userAgent: s.userAgent, current: s === p.session })),
    );
  });

  app.delete('/api/v1/account/sessions/:id', (req, res) => {
    if (!ctx.sessions.destroyHandle(req.params.id, ctx.principal(res).user)) throw bad('no such session', 404);
    res.json({ ok: true });
  });

  app.get('/api/v1/account/tokens', (_req, res) => {
    res.json(ctx.tokens.list(ctx.principal(res).user));
  });

  app.post('/api/v1/account/tokens', (req, res) => {
    const p = ctx.principal(res);
    let r;
    try {
      r = ctx.tokens.create(p.user, typeof bodyOf(req).name === 'string' ? (bodyOf(req).name as string) : '');
    } catch (e) {
      if (e instanceof TypeError) throw bad(e.message);
      throw e;
    }
    // The one response that carries the token text: it is never retrievable again.
    res.status(201).json({ token: r.token, ...r.info });
  });

  app.delete('/api/v1/account/tokens/:id', (req, res) => {
    if (!ctx.tokens.revoke(req.params.id, ctx.principal(res).user)) throw bad('no such token', 404);
    res.json({ ok: true });
  });

  app.post('/api/v1/account/password', async (req, res) => {
    const p = ctx.principal(res);
    const b = bodyOf(req);
    if (typeof b.currentPassword !== 'string' || typeof b.newPassword !== 'string') throw bad('body must be {"currentPassword": "...", "newPassword": "..."}');
    const verdict = ctx.guard.attempt(p.user, clientIp(req));
    if (!verdict.ok) throw new ChangeRefused(429, 'ERR_RATE_LIMITED', 'too many wrong passwords: try again later');
    try {
      await change(() => ctx.daemon.call('users.password', { name: p.user, currentPassword: b.currentPassword as string, newPassword: b.newPassword as string, actor: ctx.actor(res) }));
    } catch (e) {
      if (e instanceof ChangeRefused && e.code === 'ERR_STORE_AUTH') ctx.guard.failure(p.user);
      throw e;
    }
    ctx.sessions.destroyUser(p.user, p.session);
    res.json({ ok: true });
  });
}
