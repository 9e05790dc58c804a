/**
 * Page frame shared by every page: navigation, the commit-confirmed banner
 * (on every page, because an unconfirmed change rolls itself back wherever
 * the operator happens to be), one-shot messages, and small building blocks
 * (status badges, CSRF field, validation issue lists).
 */
import { html, href, fmtTime, type SafeHtml } from './html.js';
import type { RevisionInfo } from '../firmware/control/api.js';
import type { Health } from './model.js';
import type { Issue } from './daemon-client.js';

export interface FrameContext {
  user: string | null;
  csrf: string;
  pending?: RevisionInfo | null;
  flash?: { kind: 'ok' | 'error'; text: string }[];
  /** Wall clock of the server (ms), so the countdown does not trust the browser's clock. */
  serverNow: number;
  /** Development image (accepts unsigned firmware, docs/upgrade.md): red banner on every page. */
  devBuild?: boolean;
  /** Reload the page after this many seconds (the "starting" page while the daemon is not answering). */
  refreshSec?: number;
}

const NAV: [string, string][] = [
  ['/', 'Dashboard'],
  ['/tunnels', 'Tunnels'],
  ['/system', 'System'],
  ['/logs', 'Logs'],
  ['/maintenance', 'Maintenance'],
  ['/account', 'Account'],
];

export function csrfField(csrf: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrf}">`;
}

const HEALTH_TEXT: Record<Health, string> = { up: 'up', degraded: 'degraded', down: 'down', connecting: 'connecting', disabled: 'disabled' };

export function healthBadge(h: Health, title?: string): SafeHtml {
  return html`<span class="badge h-${h}" data-health="${h}"${title ? html` title="${title}"` : ''}>${HEALTH_TEXT[h]}</span>`;
}

export function pqBadgeHtml(pq: string): SafeHtml {
  return html`<span class="badge ${pq === 'none' ? 'pq-none' : 'pq'}" data-pq="${pq}">${pq === 'none' ? 'PQ: none' : pq}</span>`;
}

export function issuesBlock(issues: readonly Issue[] | undefined, title = 'The configuration was not changed:'): SafeHtml {
  if (!issues?.length) return html``;
  return html`<div class="issues" role="alert"><p>${title}</p><ul>${issues.map(
    (i) => html`<li><code class="path">${i.path}</code>: <span class="msg">${i.message}</span></li>`,
  )}</ul></div>`;
}

export function errorBlock(text: string | undefined): SafeHtml {
  return text ? html`<div class="flash error" role="alert">${text}</div>` : html``;
}

function pendingBanner(p: RevisionInfo, csrf: string, serverNow: number): SafeHtml {
  return html`<div id="pending-banner" class="banner pending" role="status" data-deadline="${p.confirmDeadline ?? ''}" data-server-now="${serverNow}">
  <p><strong>Configuration on trial.</strong> Revision ${p.id} (${p.comment || 'no comment'}, by ${p.author}) rolls back automatically in
  <strong class="countdown">${p.confirmDeadline ? Math.max(0, Math.round((p.confirmDeadline - serverNow) / 1000)) + ' s' : '?'}</strong>
  unless you confirm it${p.confirmDeadline ? html` (deadline ${fmtTime(p.confirmDeadline)})` : ''}.</p>
  <div class="actions">
    <form method="post" action="/config/confirm">${csrfField(csrf)}<button type="submit" class="primary" id="confirm-revision">Confirm</button></form>
    <form method="post" action="/config/cancel">${csrfField(csrf)}<button type="submit" class="danger" id="rollback-now">Roll back now</button></form>
  </div>
</div>`;
}

export function frame(ctx: FrameContext, title: string, active: string | null, body: SafeHtml): string {
  const nav = ctx.user
    ? html`<nav aria-label="main"><ul>${NAV.map(([path, label]) => html`<li><a href="${path}"${path === active ? html` aria-current="page"` : ''}>${label}</a></li>`)}</ul>
  <form method="post" action="/logout" class="logout">${csrfField(ctx.csrf)}<button type="submit" class="link">Log out ${ctx.user}</button></form></nav>`
    : html``;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${ctx.csrf}">
${ctx.refreshSec ? html`<meta http-equiv="refresh" content="${String(ctx.refreshSec)}">
` : ''}<title>${title} \u00b7 pqgate</title>
<link rel="stylesheet" href="/static/app.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/app.js" defer></script>
</head>
<body>
<header><a class="brand" href="/">pqgate</a>${nav}</header>
${ctx.devBuild && ctx.user ? html`<div class="dev-build-banner" role="alert" id="dev-build-global"><strong>Development build \u2014 accepts unsigned firmware.</strong> <a href="/maintenance#firmware">Details</a></div>` : ''}
${ctx.pending && ctx.user ? pendingBanner(ctx.pending, ctx.csrf, ctx.serverNow) : ''}
<main>
${(ctx.flash ?? []).map((f) => html`<div class="flash ${f.kind}" role="status">${f.text}</div>`)}
<h1>${title}</h1>
${body}
</main>
</body>
</html>`.value;
}

/** A small confirmation page for a dangerous action (works without JavaScript). */
export function confirmBody(o: { question: string; detail?: string; action: string; csrf: string; button: string; cancel: string; danger?: boolean; fields?: Record<string, string> }): SafeHtml {
  return html`<section class="card confirm">
  <p class="question">${o.question}</p>
  ${o.detail ? html`<p>${o.detail}</p>` : ''}
  <form method="post" action="${o.action}">
    ${csrfField(o.csrf)}
    ${Object.entries(o.fields ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
    <button type="submit" class="${o.danger ? 'danger' : 'primary'}" id="confirm-action">${o.button}</button>
    <a class="button" href="${o.cancel}">Cancel</a>
  </form>
</section>`;
}

export { href };
