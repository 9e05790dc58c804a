/**
 * System (what the daemon reports in `system.info`) and Logs (the event log
 * with tunnel/level filters, live in the browser through /api/v1/logs, and
 * as a download; plus the audit log of who changed what).
 */
import type { Express } from 'express';
import { html, href, fmtBytes, fmtDuration, fmtTime, type SafeHtml } from '../html.js';
import { getConfig } from '../service.js';
import type { WebContext } from '../app.js';
import type { ControlResult, EventEntry, SystemInfo } from '../../firmware/control/api.js';

export const LEVELS = ['error', 'warn', 'info', 'debug'] as const;

function systemBody(s: SystemInfo, serverNow: number): SafeHtml {
  const used = s.memory.totalBytes - s.memory.freeBytes;
  return html`<section class="card"><h2>Device</h2><dl class="kv" id="device">
  <dt>Host name</dt><dd>${s.hostname}</dd><dt>Firmware version</dt><dd>${s.version}</dd>
  <dt>Time</dt><dd>${fmtTime(serverNow)}</dd>
  <dt>Uptime</dt><dd>${fmtDuration(s.uptimeSec * 1000)}</dd><dt>Daemon uptime</dt><dd>${fmtDuration(s.daemonUptimeSec * 1000)}</dd>
  <dt>Data plane</dt><dd>${s.dataPlane}</dd></dl></section>
<section class="card"><h2>CPU and memory</h2><dl class="kv">
  <dt>CPU</dt><dd>${s.cpu.model} (${s.cpu.cores} core${s.cpu.cores === 1 ? '' : 's'})</dd>
  <dt>Load (1/5/15 min)</dt><dd>${s.cpu.load.map((l) => l.toFixed(2)).join(' / ')}</dd>
  <dt>Memory</dt><dd><meter min="0" max="${s.memory.totalBytes}" value="${used}"></meter> ${fmtBytes(used)} of ${fmtBytes(s.memory.totalBytes)} used</dd>
  <dt>Daemon memory</dt><dd>${fmtBytes(s.memory.rssBytes)}</dd></dl></section>
<section class="card"><h2>Temperatures</h2>${
    s.temperaturesC.length
      ? html`<dl class="kv">${s.temperaturesC.map((t) => html`<dt>${t.label}</dt><dd>${t.value.toFixed(1)} \u00b0C</dd>`)}</dl>`
      : html`<p>This hardware reports no temperature sensors.</p>`
  }</section>
<section class="card"><h2>Interfaces and addresses</h2><div class="table-wrap"><table class="list" id="interfaces"><thead><tr><th>Interface</th><th>State</th><th>Addresses</th><th>MAC</th></tr></thead><tbody>
${s.interfaces.map((i) => html`<tr><td data-label="Interface">${i.name}</td><td data-label="State"><span class="badge ${i.up ? 'h-up' : 'h-down'}">${i.up ? 'up' : 'down'}</span></td><td data-label="Addresses">${i.addresses.join(', ') || '\u2013'}</td><td data-label="MAC" class="mono">${i.mac ?? '\u2013'}</td></tr>`)}
</tbody></table></div></section>`;
}

function eventRow(e: EventEntry): SafeHtml {
  return html`<tr data-id="${e.id}" class="lvl-${e.level}"><td data-label="Time" class="nowrap">${fmtTime(e.ts)}</td><td data-label="Level"><span class="badge lvl-${e.level}">${e.level}</span></td><td data-label="Tunnel">${e.tunnel ?? '\u2013'}</td><td data-label="Message">${e.message}</td></tr>`;
}

export function logFilter(q: Record<string, unknown>): { tunnel?: string; level?: string } {
  const tunnel = typeof q.tunnel === 'string' && /^[A-Za-z0-9_.-]{1,32}$/.test(q.tunnel) ? q.tunnel : undefined;
  const level = typeof q.level === 'string' && (LEVELS as readonly string[]).includes(q.level) ? q.level : undefined;
  return { ...(tunnel ? { tunnel } : {}), ...(level ? { level } : {}) };
}

export async function readEvents(ctx: WebContext, f: { tunnel?: string; level?: string }, max: number): Promise<EventEntry[]> {
  const out: EventEntry[] = [];
  let beforeId: number | undefined;
  while (out.length < max) {
    const want = Math.min(500, max - out.length);
    const page = await ctx.daemon.call('logs.events', { limit: want, ...f, ...(beforeId ? { beforeId } : {}) });
    out.push(...page);
    if (page.length < want) break;
    beforeId = page[page.length - 1]!.id;
  }
  return out;
}

export function registerSystemPages(app: Express, ctx: WebContext): void {
  app.get('/system', async (req, res) => {
    const s = await ctx.daemon.call('system.info', {});
    await ctx.page(req, res, 'System', '/system', systemBody(s, ctx.now()));
  });

  app.get('/logs', async (req, res) => {
    const f = logFilter(req.query as Record<string, unknown>);
    const [events, audit, cfg] = await Promise.all([
      ctx.daemon.call('logs.events', { limit: 200, ...f }),
      ctx.daemon.call('logs.audit', { limit: 50 }).catch(() => [] as ControlResult<'logs.audit'>),
      getConfig(ctx.daemon).catch(() => undefined),
    ]);
    const names = (cfg?.document.tunnels ?? []).map((t) => String(t.name));
    await ctx.page(
      req,
      res,
      'Logs',
      '/logs',
      html`<section class="card"><form method="get" action="/logs" class="inline-form" id="log-filter">
  <label>Tunnel <select name="tunnel" data-autosubmit><option value="">all</option>${names.map((n) => html`<option value="${n}"${n === f.tunnel ? ' selected' : ''}>${n}</option>`)}</select></label>
  <label>Level <select name="level" data-autosubmit><option value="">all</option>${LEVELS.map((l) => html`<option value="${l}"${l === f.level ? ' selected' : ''}>${l}</option>`)}</select></label>
  <button type="submit">Filter</button>
  <label class="inline"><input type="checkbox" id="live-toggle" checked> live</label>
  <a class="button" href="${href('/logs/download', f)}" download>Download</a>
</form></section>
<section class="card"><div class="table-wrap"><table class="list log" id="event-log" data-poll="${href('/api/v1/logs', { ...f, limit: 100 })}"><thead><tr><th>Time</th><th>Level</th><th>Tunnel</th><th>Message</th></tr></thead>
<tbody>${events.map(eventRow)}</tbody></table></div>${events.length ? '' : html`<p class="empty">No events${f.tunnel || f.level ? ' match the filter' : ''}.</p>`}</section>
<section class="card"><h2>Audit log</h2><div class="table-wrap"><table class="list" id="audit-log"><thead><tr><th>Time</th><th>Who</th><th>What</th><th>Detail</th></tr></thead><tbody>
${audit.map((a) => html`<tr><td data-label="Time" class="nowrap">${fmtTime(a.ts)}</td><td data-label="Who">${a.actor}</td><td data-label="What">${a.action}</td><td data-label="Detail">${typeof a.detail === 'string' ? a.detail : JSON.stringify(a.detail)}</td></tr>`)}
</tbody></table></div></section>`,
    );
  });

  app.get('/logs/download', async (req, res) => {
    const f = logFilter(req.query as Record<string, unknown>);
    const events = await readEvents(ctx, f, 10_000);
    const lines = events
      .reverse()
      .map((e) => `${new Date(e.ts).toISOString()} ${e.level.padEnd(5)} ${e.tunnel ?? '-'} ${e.message.replace(/[\r\n]+/g, ' ')}`);
    const stamp = new Date(ctx.now()).toISOString().replace(/[:.]/g, '-');
    res.setHeader('Content-Disposition', `attachment; filename="pqgate-events-${stamp}.log"`);
    res.type('text/plain').send(lines.join('\n') + (lines.length ? '\n' : ''));
  });
}
