/**
 * Dashboard: every tunnel with its IKE SAs and every Child SA on its own row
 * (model.ts decides up / degraded / down), the post-quantum badge, counters
 * with a live traffic graph (app.js polls /api/v1/status every 2 s and draws
 * an SVG sparkline of the last minute per Child SA), last and next rekey,
 * last error in plain words, and the per-SA actions behind a confirmation
 * page.
 */
import type { Express } from 'express';
import { html, href, fmtBytes, fmtCount, fmtDuration, type SafeHtml } from '../html.js';
import { confirmBody, healthBadge, pqBadgeHtml } from '../layout.js';
import { dashboard, isSaAction, saAction, SA_ACTIONS, type SaAction } from '../service.js';
import type { ChildView, DashboardModel, IkeView, TunnelView } from '../model.js';
import type { WebContext } from '../app.js';

function actionLink(tunnel: string, a: SaAction): SafeHtml {
  return html`<a class="button small${a === 'down' || a === 'reset' ? ' danger' : ''}" href="${href('/sa', tunnel, a)}" data-action="${a}">${SA_ACTIONS[a].label}</a>`;
}

const dash = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? '\u2013' : v);

function childRow(t: TunnelView, c: ChildView): SafeHtml {
  return html`<tr class="child h-${c.health}" data-child="${c.key}">
  <td data-label="SA"><span class="indent">\u2514</span> Child <strong>${c.name}</strong> #${c.reqid}</td>
  <td data-label="Status">${healthBadge(c.health)} <span class="state">${c.state}</span><div class="reason" data-field="reason">${c.reason}</div></td>
  <td data-label="Selectors"><span class="ts">${c.localTs.join(', ') || '\u2013'}</span> \u21c4 <span class="ts">${c.remoteTs.join(', ') || '\u2013'}</span></td>
  <td data-label="Algorithms">ESP ${c.alg}${c.encap ? ' in UDP' : ''}${c.keyExchanges.length ? html`<div class="small">rekey KE ${c.keyExchanges.join(' + ')}</div>` : ''}<div class="small mono">SPI ${c.spiIn} / ${c.spiOut}</div></td>
  <td data-label="Traffic" class="traffic">
    <div>in <span data-field="bytesIn">${fmtBytes(c.bytesIn ?? undefined)}</span> (<span data-field="packetsIn">${fmtCount(c.packetsIn ?? undefined)}</span> pkts)</div>
    <div>out <span data-field="bytesOut">${fmtBytes(c.bytesOut ?? undefined)}</span> (<span data-field="packetsOut">${fmtCount(c.packetsOut ?? undefined)}</span> pkts)</div>
    <svg class="spark" data-spark="${c.key}" viewBox="0 0 120 28" width="120" height="28" role="img" aria-label="traffic of the last minute"><polyline class="in" points=""></polyline><polyline class="out" points=""></polyline></svg>
    ${c.replayDrops || c.authFailures ? html`<div class="small warn">replay drops ${fmtCount(c.replayDrops ?? 0)}, ICV failures ${fmtCount(c.authFailures ?? 0)}</div>` : ''}
  </td>
  <td data-label="Rekey">${c.rekeys ? 'last rekey' : 'installed'} <span data-field="installedAgo">${fmtDuration(c.installedAgoMs)}</span> ago${c.rekeys ? html` (rekeyed ${c.rekeys}\u00d7)` : ''}<div>next in <span data-field="nextRekey">${fmtDuration(c.nextRekeyInMs)}</span></div></td>
  <td data-label="Actions">${actionLink(t.name, 'rekey-child')}</td>
</tr>`;
}

function ikeRow(t: TunnelView, sa: IkeView): SafeHtml {
  return html`<tr class="ike h-${sa.health}" data-sa="${sa.id}">
  <td data-label="SA">IKE SA <strong>#${sa.id}</strong><div class="small">${sa.role}</div></td>
  <td data-label="Status">${healthBadge(sa.health)} <span class="state">${sa.state}</span><div class="reason">${sa.reason}</div>${sa.lastError ? html`<div class="error-text">Last error: ${sa.lastError}</div>` : ''}</td>
  <td data-label="Peer">${sa.remote}<div class="small">${dash(sa.localId)} \u21c4 ${dash(sa.remoteId)}</div><div class="small">${sa.nat}</div></td>
  <td data-label="Algorithms">${sa.algs}<div class="small">KE ${sa.keyExchanges.join(' + ') || '\u2013'}</div>${sa.auth ? html`<div class="small">auth ${sa.auth}</div>` : ''}</td>
  <td data-label="Post-quantum">${pqBadgeHtml(sa.pq)}</td>
  <td data-label="Rekey">${sa.rekeys ? 'last rekey' : 'up'} <span data-field="establishedAgo">${fmtDuration(sa.establishedAgoMs)}</span>${sa.rekeys ? html` ago (rekeyed ${sa.rekeys}\u00d7)` : ''}<div>next in <span data-field="nextRekey">${fmtDuration(sa.nextRekeyInMs)}</span></div></td>
  <td data-label="Actions">${actionLink(t.name, 'rekey-ike')} ${actionLink(t.name, 'reset')} ${actionLink(t.name, 'down')}</td>
</tr>
${sa.children.map((c) => childRow(t, c))}`;
}

/** Health probes: the active probe's verdict and the peer's probes answered (hidden when there is nothing to say). */
function probeLine(t: TunnelView): SafeHtml | string {
  const p = t.probe;
  if (!p || (p.target === null && p.probesAnswered === 0)) return '';
  const active =
    p.target === null
      ? ''
      : html`Health probe to <span class="mono">${p.target}</span>: <span class="badge h-${p.state === 'up' ? 'up' : p.state === 'down' ? 'down' : 'connecting'}" data-field="probeState">${p.state}</span>${p.rttMs !== null ? html` RTT ${p.rttMs} ms` : ''}${p.lastOkAgoMs !== null ? html`, last reply ${fmtDuration(p.lastOkAgoMs)} ago` : ''}${p.failures ? html`, ${p.failures} unanswered in a row` : ''}. `;
  const peer = p.probesAnswered || p.lastProbeAgoMs !== null ? html`Peer's probes answered: <span data-field="probesAnswered">${fmtCount(p.probesAnswered)}</span>${p.lastProbeAgoMs !== null ? html` (last ${fmtDuration(p.lastProbeAgoMs)} ago)` : ''}.` : '';
  return html`<p class="probe small" data-probe="${p.state}">${active}${peer}</p>`;
}

function tunnelCard(t: TunnelView): SafeHtml {
  return html`<section class="card tunnel h-${t.health}" data-tunnel="${t.name}" data-health="${t.health}">
  <header class="tunnel-head">
    <h2>${t.name}</h2> ${healthBadge(t.health)} <span class="reason">${t.reason}</span>
    <span class="spacer"></span>
    ${t.sas.length === 0 && t.enabled ? actionLink(t.name, 'up') : ''}
    ${t.configured ? html`<a class="button small" href="${href('/tunnels', t.name, 'edit')}">Edit</a>` : ''}
  </header>
  ${probeLine(t)}
  ${
    t.sas.length
      ? html`<div class="table-wrap"><table class="sas">
    <thead><tr><th>SA</th><th>Status</th><th>Peer / selectors</th><th>Algorithms</th><th>Post-quantum / traffic</th><th>Rekey</th><th>Actions</th></tr></thead>
    <tbody>${t.sas.map((sa) => ikeRow(t, sa))}</tbody></table></div>`
      : html`<p class="idle">No IKE SA${t.remote ? html` with ${t.remote}` : ''}.
      ${t.lastError && !t.reason.includes(t.lastError) ? html`<span class="error-text">Last error: ${t.lastError}</span>` : ''}
      ${t.nextAttemptInMs !== null ? html`Next attempt in ${fmtDuration(t.nextAttemptInMs)}.` : ''}</p>`
  }
</section>`;
}

export function dashboardBody(m: DashboardModel): SafeHtml {
  if (m.daemon === 'unreachable')
    return html`<div class="flash error" role="alert">The gateway daemon does not answer on its control socket: ${m.daemonError ?? ''}. Tunnel status is unknown.</div>`;
  const s = m.summary;
  return html`<p class="summary" id="summary">
  <span class="badge h-up">${s.up} up</span> <span class="badge h-degraded">${s.degraded} degraded</span> <span class="badge h-down">${s.down} down</span>
  ${s.connecting ? html`<span class="badge h-connecting">${s.connecting} connecting</span>` : ''} ${s.disabled ? html`<span class="badge h-disabled">${s.disabled} disabled</span>` : ''}
  <span class="small">Degraded = the IKE SA is up but a Child SA is missing or receives no traffic (or, with a health probe configured, the probe goes unanswered).</span>
</p>
<div id="dashboard" data-poll="/api/v1/status">
${m.tunnels.length ? m.tunnels.map(tunnelCard) : html`<p>No tunnels configured yet. <a class="button primary" href="/tunnels/new">Add a tunnel</a></p>`}
</div>`;
}

export function registerDashboardPages(app: Express, ctx: WebContext): void {
  app.get('/', async (req, res) => {
    const m = await dashboard(ctx.daemon, ctx.now());
    await ctx.page(req, res, 'Dashboard', '/', dashboardBody(m));
  });

  // Per-SA actions: a GET shows what will happen and asks; the POST does it.
  app.get('/sa/:tunnel/:action', async (req, res) => {
    const { tunnel, action } = req.params;
    if (!isSaAction(action)) {
      res.status(404).type('text').send('unknown action');
      return;
    }
    const a = SA_ACTIONS[action];
    await ctx.page(
      req,
      res,
      a.label,
      '/',
      confirmBody({
        question: `${a.question} ${tunnel}?`,
        detail: a.detail,
        action: href('/sa', tunnel, action),
        csrf: ctx.principal(res).session?.csrf ?? '',
        button: a.label,
        cancel: '/',
        danger: action === 'down' || action === 'reset',
      }),
    );
  });

  app.post('/sa/:tunnel/:action', async (req, res) => {
    const { tunnel, action } = req.params;
    if (!isSaAction(action)) {
      res.status(404).type('text').send('unknown action');
      return;
    }
    try {
      await saAction(ctx.daemon, tunnel, action, ctx.actor(res));
      ctx.flash(res, 'ok', `${SA_ACTIONS[action].label}: sent to ${tunnel}.`);
    } catch (e) {
      ctx.flash(res, 'error', `${SA_ACTIONS[action].label} ${tunnel}: ${(e as Error).message}`);
    }
    res.redirect(303, '/');
  });
}
