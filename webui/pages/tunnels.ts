/**
 * Tunnels: list, create (optionally from a preset that pre-fills the form),
 * edit, delete. Every change goes to the daemon as one `config.tunnel.put` /
 * `config.tunnel.delete`, by default "on trial" (commit confirmed): the
 * daemon rolls it back unless it is confirmed before the deadline, which the
 * banner on every page counts down. Validation is the daemon's: its issues
 * are shown at the top with their paths exactly as the CLI prints them, and
 * next to the field each one concerns.
 */
import type { Express, Request, Response } from 'express';
import { html, href, type SafeHtml } from '../html.js';
import { csrfField, confirmBody, issuesBlock } from '../layout.js';
import { getConfig, putTunnel, deleteTunnel, ChangeRefused } from '../service.js';
import { FIELDS, GROUPS, DEFAULT_TRIAL_SEC, displayValue, formToTunnel, issuesByField, templateParams, trialSeconds, type FieldDef } from '../tunnel-form.js';
import type { Issue } from '../daemon-client.js';
import type { WebContext } from '../app.js';
import type { ControlResult } from '../../firmware/control/api.js';
import { registerConfigPages } from './config.js';

type Obj = Record<string, unknown>;
type Preset = ControlResult<'config.presets'>[number];

interface FormState {
  mode: 'new' | 'edit';
  name: string;
  preset?: Preset;
  /** Values shown in the inputs (field key → text), psk never. */
  values: Record<string, string>;
  params: Record<string, string>;
  issues: Issue[];
  error?: string;
  trial: boolean;
  trialSec: string;
  comment: string;
}

function fieldInput(def: FieldDef, st: FormState, errs: Issue[] | undefined): SafeHtml {
  const id = `f-${def.key}`;
  const v = st.values[def.key] ?? '';
  const invalid = errs?.length ? html` aria-invalid="true"` : '';
  const fromPreset = st.preset && st.preset.tunnel[def.key] !== undefined ? html` <span class="from-preset">from preset</span>` : '';
  let input: SafeHtml;
  switch (def.kind) {
    case 'checkbox':
      input = html`<input type="hidden" name="has_${def.key}" value="1"><input type="checkbox" id="${id}" name="${def.key}"${v === 'on' ? ' checked' : ''}${invalid}>`;
      break;
    case 'select':
      input = html`<select id="${id}" name="${def.key}"${invalid}>${(def.options ?? []).map((o) => html`<option value="${o}"${o === v ? ' selected' : ''}>${o === '' ? '(default)' : o}</option>`)}</select>`;
      break;
    case 'list':
      input = html`<textarea id="${id}" name="${def.key}" rows="${Math.max(2, v.split('\n').length)}"${invalid}>${v}</textarea>`;
      break;
    case 'password':
      input = html`<input type="password" id="${id}" name="psk" autocomplete="new-password" placeholder="${st.mode === 'edit' ? 'unchanged (a key is stored)' : ''}"${invalid}>`;
      break;
    case 'number':
      input = html`<input id="${id}" name="${def.key}" inputmode="numeric" value="${v}"${invalid}>`;
      break;
    default:
      input = html`<input id="${id}" name="${def.key}" value="${v}"${def.key === 'name' && st.mode === 'edit' ? ' readonly' : ''}${invalid}>`;
  }
  return html`<div class="field${errs?.length ? ' invalid' : ''}" data-field="${def.key}">
  <label for="${id}">${def.label}${fromPreset}</label>${input}
  <div class="help">${def.help}</div>
  ${(errs ?? []).map((e) => html`<div class="field-error" data-path="${e.path}">${e.message}</div>`)}
</div>`;
}

function tunnelForm(st: FormState, csrf: string): SafeHtml {
  const byField = issuesByField(st.issues, st.name);
  const action = st.mode === 'new' ? '/tunnels/new' : href('/tunnels', st.name, 'edit');
  const paramNames = st.preset ? Object.keys(st.preset.params ?? {}).length ? Object.keys(st.preset.params!) : templateParams(st.preset.tunnel) : [];
  const general = byField.get('') ?? [];
  return html`${issuesBlock(st.issues)}${st.error ? html`<div class="flash error" role="alert">${st.error}</div>` : ''}
<form method="post" action="${action}" class="form tunnel-form" id="tunnel-form" novalidate>
  ${csrfField(csrf)}
  ${st.preset ? html`<input type="hidden" name="preset" value="${st.preset.name}">
  <fieldset class="preset"><legend>Preset: ${st.preset.title ?? st.preset.name}</legend><p class="small">${st.preset.description}</p>
  ${paramNames.map((p) => {
    const errs = byField.get(`param_${p}`);
    return html`<div class="field${errs?.length ? ' invalid' : ''}" data-field="param_${p}"><label for="p-${p}">${p}</label>
    <input id="p-${p}" name="param_${p}" value="${st.params[p] ?? ''}">
    <div class="help">${st.preset?.params?.[p]?.description ?? 'preset template value'}</div>
    ${(errs ?? []).map((e) => html`<div class="field-error" data-path="${e.path}">${e.message}</div>`)}</div>`;
  })}</fieldset>` : ''}
  ${general.length ? html`<div class="field-error general">${general.map((g) => html`<div data-path="${g.path}"><code>${g.path}</code>: ${g.message}</div>`)}</div>` : ''}
  ${GROUPS.map(([g, legend]) => html`<fieldset class="group"><legend>${legend}</legend>${FIELDS.filter((f) => f.group === g).map((f) => fieldInput(f, st, byField.get(f.key)))}</fieldset>`)}
  <fieldset class="apply"><legend>Apply</legend>
    <label><input type="checkbox" name="trial"${st.trial ? ' checked' : ''}> Apply on trial: roll back automatically unless confirmed within</label>
    <label class="inline"><input name="trial_sec" value="${st.trialSec}" inputmode="numeric" size="5"> seconds</label>
    <label>Comment <input name="comment" value="${st.comment}" maxlength="200"></label>
    <button type="submit" class="primary" id="apply-tunnel">${st.mode === 'new' ? 'Create tunnel' : 'Save changes'}</button>
    <a class="button" href="/tunnels">Cancel</a>
  </fieldset>
</form>`;
}

function valuesOf(t: Obj | undefined, isNew: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const def of FIELDS) out[def.key] = displayValue(def, t?.[def.key]);
  if (isNew && t?.enabled === undefined) out.enabled = 'on';
  return out;
}

/** Re-render values from a submitted form (never the PSK). */
function valuesFromForm(body: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const def of FIELDS) {
    if (def.kind === 'password') continue;
    const v = body[def.key];
    out[def.key] = def.kind === 'checkbox' ? (v === 'on' ? 'on' : '') : typeof v === 'string' ? v : '';
  }
  return out;
}

function paramsFromForm(body: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (k.startsWith('param_') && typeof v === 'string') out[k.slice(6)] = v;
  return out;
}

async function presets(ctx: WebContext): Promise<Preset[]> {
  try {
    return await ctx.daemon.call('config.presets', {});
  } catch {
    return [];
  }
}

export function registerTunnelPages(app: Express, ctx: WebContext): void {
  const csrf = (res: Response) => ctx.principal(res).session?.csrf ?? '';

  app.get('/tunnels', async (req, res) => {
    const [cfg, ps, pend] = await Promise.all([getConfig(ctx.daemon), presets(ctx), ctx.daemon.call('config.pending', {}).catch(() => ({ revision: null }))]);
    const rows = cfg.document.tunnels.map(
      (t) => html`<tr data-tunnel="${String(t.name)}"><td data-label="Name"><strong>${String(t.name)}</strong></td>
      <td data-label="Peer">${String(t.remote_addr ?? '%any')}</td><td data-label="Mode">${String(t.mode ?? 'route')}</td>
      <td data-label="Enabled">${t.enabled === false ? 'no' : 'yes'}</td>
      <td data-label="Actions"><a class="button small" href="${href('/tunnels', String(t.name), 'edit')}">Edit</a>
      <a class="button small danger" href="${href('/tunnels', String(t.name), 'delete')}">Delete</a></td></tr>`,
    );
    await ctx.page(
      req,
      res,
      'Tunnels',
      '/tunnels',
      html`<section class="card"><form method="get" action="/tunnels/new" class="inline-form" id="preset-picker">
  <label>New tunnel from <select name="preset" data-autosubmit><option value="">(no preset)</option>${ps.map((p) => html`<option value="${p.name}">${p.title ?? p.name}</option>`)}</select></label>
  <button type="submit" class="primary">New tunnel</button></form></section>
<section class="card"><p>Running configuration: revision ${cfg.revision}${pend.revision ? html` (on trial)` : ''}. <a href="/config/history">Revision history</a></p>
${rows.length ? html`<div class="table-wrap"><table class="list"><thead><tr><th>Name</th><th>Peer</th><th>Mode</th><th>Enabled</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>` : html`<p>No tunnels yet.</p>`}
</section>`,
    );
  });

  app.get('/tunnels/new', async (req, res) => {
    const name = typeof req.query.preset === 'string' ? req.query.preset : '';
    const preset = name ? (await presets(ctx)).find((p) => p.name === name) : undefined;
    if (name && !preset) ctx.flash(res, 'error', `There is no preset called ${name}.`);
    const st: FormState = { mode: 'new', name: '', values: valuesOf(preset?.tunnel, true), params: {}, issues: [], trial: true, trialSec: String(DEFAULT_TRIAL_SEC), comment: '', ...(preset ? { preset } : {}) };
    await ctx.page(req, res, preset ? `New tunnel from the ${preset.name} preset` : 'New tunnel', '/tunnels', tunnelForm(st, csrf(res)));
  });

  async function submit(req: Request, res: Response, mode: 'new' | 'edit', fixedName?: string): Promise<void> {
    const body = (req.body ?? {}) as Obj;
    let preset: Preset | undefined;
    let base: Obj | undefined;
    if (mode === 'new' && typeof body.preset === 'string' && body.preset) {
      preset = (await presets(ctx)).find((p) => p.name === body.preset);
      base = preset?.tunnel;
    } else if (mode === 'edit') {
      base = (await getConfig(ctx.daemon)).document.tunnels.find((t) => t.name === fixedName);
      if (!base) {
        ctx.flash(res, 'error', `There is no tunnel ${fixedName} any more.`);
        res.redirect(303, '/tunnels');
        return;
      }
    }
    const r = formToTunnel(body, base, { isNew: mode === 'new', ...(fixedName ? { fixedName } : {}) });
    const trial = trialSeconds(body);
    const st: FormState = {
      mode,
      name: r.name,
      values: valuesFromForm(body),
      params: paramsFromForm(body),
      issues: [],
      trial: trial !== undefined,
      trialSec: String(body.trial_sec ?? DEFAULT_TRIAL_SEC),
      comment: typeof body.comment === 'string' ? body.comment : '',
      ...(preset ? { preset } : {}),
    };
    if (mode === 'edit') st.values.name = fixedName!;
    const title = mode === 'new' ? 'New tunnel' : `Edit ${fixedName}`;
    if (trial === 'invalid') {
      st.error = 'The trial period must be a whole number of seconds between 10 and 86400.';
      await ctx.page(req, res, title, '/tunnels', tunnelForm(st, csrf(res)), 400);
      return;
    }
    try {
      const rev = await putTunnel(ctx.daemon, r.tunnel, {
        actor: ctx.actor(res),
        comment: st.comment || `${mode === 'new' ? 'add' : 'edit'} tunnel ${r.name} (web admin)`,
        ...(trial ? { confirmTimeoutSec: trial } : {}),
        ...(preset ? { preset: preset.name, params: r.params } : {}),
      });
      ctx.flash(res, 'ok', trial ? `Revision ${rev.id} applied on trial: confirm it within ${trial} s or it rolls back.` : `Revision ${rev.id} applied.`);
      res.redirect(303, '/');
    } catch (e) {
      if (!(e instanceof ChangeRefused)) throw e;
      st.issues = e.issues ?? [];
      if (!e.issues) st.error = e.message;
      await ctx.page(req, res, title, '/tunnels', tunnelForm(st, csrf(res)), e.status);
    }
  }

  app.post('/tunnels/new', (req, res) => submit(req, res, 'new'));

  app.get('/tunnels/:name/edit', async (req, res) => {
    const cfg = await getConfig(ctx.daemon);
    const t = cfg.document.tunnels.find((x) => x.name === req.params.name);
    if (!t) {
      await ctx.page(req, res, 'Not found', '/tunnels', html`<p>There is no tunnel ${req.params.name}. <a href="/tunnels">Tunnels</a></p>`, 404);
      return;
    }
    const st: FormState = { mode: 'edit', name: req.params.name, values: valuesOf(t, false), params: {}, issues: [], trial: true, trialSec: String(DEFAULT_TRIAL_SEC), comment: '' };
    if (t.enabled === undefined) st.values.enabled = 'on';
    await ctx.page(req, res, `Edit ${req.params.name}`, '/tunnels', tunnelForm(st, csrf(res)));
  });

  app.post('/tunnels/:name/edit', (req, res) => submit(req, res, 'edit', req.params.name));

  app.get('/tunnels/:name/delete', async (req, res) => {
    await ctx.page(
      req,
      res,
      `Delete ${req.params.name}`,
      '/tunnels',
      html`${confirmBody({
        question: `Delete tunnel ${req.params.name}?`,
        detail: 'Its SAs are deleted and traffic through it stops. The deletion is applied on trial: it rolls back unless confirmed.',
        action: href('/tunnels', req.params.name, 'delete'),
        csrf: csrf(res),
        button: 'Delete tunnel',
        cancel: '/tunnels',
        danger: true,
        fields: { trial: 'on', trial_sec: String(DEFAULT_TRIAL_SEC) },
      })}`,
    );
  });

  app.post('/tunnels/:name/delete', async (req, res) => {
    const trial = trialSeconds((req.body ?? {}) as Obj);
    try {
      const rev = await deleteTunnel(ctx.daemon, req.params.name, {
        actor: ctx.actor(res),
        comment: `delete tunnel ${req.params.name} (web admin)`,
        ...(typeof trial === 'number' ? { confirmTimeoutSec: trial } : {}),
      });
      ctx.flash(res, 'ok', `Tunnel ${req.params.name} deleted in revision ${rev.id}${typeof trial === 'number' ? ` (on trial for ${trial} s)` : ''}.`);
    } catch (e) {
      if (!(e instanceof ChangeRefused)) throw e;
      ctx.flash(res, 'error', `Deleting ${req.params.name}: ${e.issues ? e.issues.map((i) => `${i.path}: ${i.message}`).join('; ') : e.message}`);
    }
    res.redirect(303, '/tunnels');
  });

  registerConfigPages(app, ctx);
}
