/**
 * HTTP-level protections of the web admin.
 *
 * Headers on every response (OWASP Secure Headers): a Content-Security-
 * Policy with no 'unsafe-inline' anywhere (pages carry no inline script,
 * style or event handler), HSTS (RFC 6797; the admin is HTTPS-only),
 * X-Frame-Options DENY plus frame-ancestors 'none' (clickjacking),
 * X-Content-Type-Options nosniff, Referrer-Policy same-origin (no Referer
 * leaves for other sites; `no-referrer` would make browsers send
 * `Origin: null` on our own form posts, Fetch §3.2.5), COOP/CORP
 * same-origin, and Cache-Control no-store on everything but static assets.
 *
 * Cookies: `__Host-` prefix (RFC 6265bis §4.1.3.2: Secure, Path=/, no
 * Domain), HttpOnly, SameSite=Strict.
 *
 * Cross-site request checks for every state-changing request authenticated
 * by the cookie: the synchronizer CSRF token (form field `_csrf` or header
 * `X-CSRF-Token`) must match the session's, and the request must come from
 * our own origin: Origin (RFC 6454) when present must equal
 * https://<Host>; without Origin, Sec-Fetch-Site must be same-origin (or
 * absent, for non-browser clients) and a Referer, if any, must be ours.
 * Bearer-token requests carry no ambient credential, so they need no CSRF
 * token, but a foreign Origin is still refused.
 */
import type { Request, Response, NextFunction } from 'express';
import { safeEqual } from './sessions.js';

export const SESSION_COOKIE = '__Host-pqgate-session';

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export function securityHeaders(req: Request, res: Response, next: NextFunction): void {
  setSecurityHeaders(res, req.path);
  next();
}

/** The headers of every response (securityHeaders; also the server's own "starting" answer before express is loaded). */
export function setSecurityHeaders(res: { setHeader(name: string, value: string): unknown }, path: string): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('Strict-Transport-Security', 'max-age=63072000');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()');
  if (!path.startsWith('/static/')) res.setHeader('Cache-Control', 'no-store');
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header || header.length > 8192) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (!(k in out)) out[k] = v; // first wins (RFC 6265 §5.4 orders longer paths first)
  }
  return out;
}

export function sessionCookieOf(req: Request): string | undefined {
  const v = parseCookies(req.headers.cookie)[SESSION_COOKIE];
  return v && /^[A-Za-z0-9_-]{20,100}$/.test(v) ? v : undefined;
}

export function setSessionCookie(res: Response, value: string): void {
  res.append('Set-Cookie', `${SESSION_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict`);
}

export function clearSessionCookie(res: Response): void {
  res.append('Set-Cookie', `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0`);
}

export function clientIp(req: Request): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export function isStateChanging(method: string): boolean {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase());
}

/** Same-origin check for a state-changing request; returns the reason when refused. */
export function originProblem(req: Request): string | undefined {
  const host = req.headers.host;
  if (!host) return 'no Host header';
  const own = `https://${host}`;
  const origin = req.headers.origin;
  if (origin !== undefined) return origin === own ? undefined : `cross-site request from ${String(origin).slice(0, 100)}`;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request (Sec-Fetch-Site: ${String(site).slice(0, 40)})`;
  const ref = req.headers.referer;
  if (ref !== undefined) {
    let refOrigin: string;
    try {
      refOrigin = new URL(ref).origin;
    } catch {
      return 'malformed Referer';
    }
    if (refOrigin !== own) return `cross-site request from ${refOrigin.slice(0, 100)}`;
  }
  return undefined;
}

/** The CSRF token the request carries (header first, then form/JSON field `_csrf`). */
export function csrfTokenOf(req: Request): string | undefined {
  const h = req.headers['x-csrf-token'];
  if (typeof h === 'string') return h;
  const b = req.body as Record<string, unknown> | undefined;
  if (b && typeof b === 'object' && typeof b._csrf === 'string') return b._csrf;
  return undefined;
}

export function csrfOk(req: Request, expected: string): boolean {
  const t = csrfTokenOf(req);
  return typeof t === 'string' && safeEqual(t, expected);
}
