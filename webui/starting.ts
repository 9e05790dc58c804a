/**
 * The "starting" answer (503, reloads itself) while the daemon does not
 * answer yet (docs/webui.md "Start-up before the daemon"): one page for the
 * application (app.ts, through express) and for the server while it is
 * still loading the application (server.ts, plain node:http; express is
 * most of the web admin's start-up cost at boot, issue 7).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { html, type SafeHtml } from './html.js';
import { frame } from './layout.js';
import { setSecurityHeaders } from './security.js';

/** Reload interval of the "starting" page and Retry-After of a 503 while the daemon does not answer. */
export const STARTING_RETRY_SEC = 2;

/** The page body: the gateway is starting (the daemon never answered yet), or the daemon stopped answering. */
export function startingBody(starting: boolean, reason: string): SafeHtml {
  return starting
    ? html`<p id="daemon-starting">The gateway is starting: the web admin is up, the IPsec daemon is not answering yet. This page reloads by itself.</p>`
    : html`<p id="daemon-unreachable">The IPsec daemon is not answering (it may be restarting). This page reloads by itself.</p>
<p>${reason}</p>`;
}

export function startingTitle(starting: boolean): string {
  return starting ? 'Starting' : 'Daemon not answering';
}

/**
 * Before the application is loaded: answer a page request (GET/HEAD of a
 * page, not the API, not a static file, not asking for JSON) with the
 * "starting" page, exactly as the application answers it for a visitor
 * without a session, and return true; anything else (false) waits for the
 * application. Nothing is read from the request but its method, path and
 * Accept header.
 */
export function answerStarting(req: IncomingMessage, res: ServerResponse, serverNow: number): boolean {
  const path = (req.url ?? '/').split('?')[0]!;
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path.startsWith('/api/') || path.startsWith('/static/') || (req.headers.accept ?? '').includes('application/json')) return false;
  const body = Buffer.from(frame({ user: null, csrf: '', serverNow, refreshSec: STARTING_RETRY_SEC }, startingTitle(true), null, startingBody(true, '')), 'utf8');
  setSecurityHeaders(res, path);
  res.statusCode = 503;
  res.setHeader('Retry-After', String(STARTING_RETRY_SEC));
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', String(body.length));
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
