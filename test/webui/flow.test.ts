/**
 * The web admin end to end over HTTPS against the fake daemon (real control
 * socket, real configuration store): first-boot setup, login, a tunnel from
 * the Cloudflare preset with the daemon's validation messages on the form,
 * commit confirmed (countdown banner, confirm, roll back now, timeout),
 * history and diffs, backup and restore (an invalid backup is refused with
 * every path and changes nothing), factory reset back to setup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigValidationError } from '../../firmware/config/schema.js';
import { applyPreset, isPreset } from '../../firmware/presets/presets.js';
import { validateDocument } from '../../firmware/store/validate.js';
import { startHarness, formFields, CF_FORM, ADMIN, PASSWORD, type Harness, type WebClient } from './helpers.js';

let h: Harness;
let c: WebClient;

beforeAll(async () => {
  h = await startHarness();
  c = h.client();
});
afterAll(async () => {
  await h?.close();
});

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The messages the daemon (and so the CLI) prints for this preset input: "path: message". */
function expectedPresetIssues(overrides: Record<string, unknown>, params: Record<string, string>): string[] {
  try {
    applyPreset('cloudflare', overrides, { params, listen: ['0.0.0.0'] });
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.errors.map((x) => x.message);
    throw e;
  }
  return [];
}

describe('first boot', () => {
  it('has no default account: every page leads to the one-time setup', async () => {
    for (const p of ['/', '/tunnels', '/maintenance']) {
      const r = await c.get(p);
      expect(r.status).toBe(303);
      expect(r.headers.location).toBe('/login');
    }
    const r = await c.get('/login');
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/setup');
    expect((await c.get('/setup')).text).toContain('no default password');
    expect((await c.api('GET', '/api/v1/status')).status).toBe(401);
  });

  it('setup refuses mismatched and weak passwords with the store\'s message', async () => {
    let r = await c.post('/setup', { name: ADMIN, password: PASSWORD, password2: PASSWORD + 'x' });
    expect(r.status).toBe(400);
    expect(r.text).toContain('The two passwords differ.');
    r = await c.post('/setup', { name: ADMIN, password: 'short', password2: 'short' });
    expect(r.status).toBe(400);
    expect(r.text).toContain('password must have at least 10 characters');
    expect(h.daemon.store.listUsers()).toEqual([]);
  });

  it('creates the administrator, logs in with a new session id, and closes setup', async () => {
    const before = new Map(c.cookies);
    const r = await c.post('/setup', { name: ADMIN, password: PASSWORD, password2: PASSWORD });
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
    const cookie = [...c.cookies.values()][0];
    expect(cookie).toBeDefined();
    expect(cookie).not.toBe([...before.values()][0]);
    expect(h.daemon.store.listUsers().map((u) => u.name)).toEqual([ADMIN]);
    const dash = await c.get('/');
    expect(dash.status).toBe(200);
    expect(dash.text).toContain(`Administrator ${ADMIN} created`);
    // Setup is over: it leads to login, and a second setup cannot create a user.
    const other = h.client();
    expect((await other.get('/setup')).headers.location).toBe('/login');
    await other.get('/login');
    const again = await other.post('/setup', { name: 'mallory', password: 'mallory-password-1', password2: 'mallory-password-1' });
    expect(again.headers.location).toBe('/login');
    expect(h.daemon.store.listUsers().map((u) => u.name)).toEqual([ADMIN]);
  });

  it('logs out and back in; a wrong password is refused', async () => {
    expect((await c.post('/logout')).headers.location).toBe('/login');
    expect((await c.get('/')).headers.location).toBe('/login');
    const bad = await c.login(ADMIN, 'not the password');
    expect(bad.status).toBe(401);
    expect(bad.text).toContain('Wrong user name or password.');
    const ok = await c.login();
    expect(ok.status).toBe(303);
    expect((await c.get('/')).status).toBe(200);
  });
});

describe('tunnel from the Cloudflare preset', () => {
  it('pre-fills the form from the preset', async () => {
    const r = await c.get('/tunnels/new?preset=cloudflare');
    expect(r.status).toBe(200);
    const f = formFields(r.text, 'tunnel-form');
    expect(f.preset).toBe('cloudflare');
    expect(f.mss).toBe('1360');
    expect(f.replay_window).toBe('0');
    expect(f.proposals).toBe('aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_mlkem1024');
    expect(f.local_id).toBe('fqdn:{tunnel_id}.{account_id}.ipsec.cloudflare.com');
    expect(f.mode).toBe('route');
    expect(f).toHaveProperty('param_tunnel_id', '');
    expect(f.psk).toBe('');
  });

  it('shows the daemon\'s validation messages, with paths, at the top and next to each field', async () => {
    const page = await c.get('/tunnels/new?preset=cloudflare');
    const f = { ...formFields(page.text, 'tunnel-form'), name: 'cf1', mss: '100' };
    const r = await c.post('/tunnels/new', f);
    expect(r.status).toBe(422);
    // What the CLI / daemon say for the same input (fields the user did not change are not overrides).
    const expected = expectedPresetIssues({ name: 'cf1', mss: 100 }, {});
    expect(expected.length).toBeGreaterThanOrEqual(4);
    for (const line of expected) {
      const i = line.indexOf(': ');
      expect(r.text).toContain(`<code class="path">${esc(line.slice(0, i))}</code>: <span class="msg">${esc(line.slice(i + 2))}</span>`);
    }
    // Field-level: the mss message sits in the mss field, the params in theirs.
    const mssField = r.text.slice(r.text.indexOf('<div class="field invalid" data-field="mss">'), r.text.indexOf('data-field="replay_window"'));
    expect(mssField.length).toBeGreaterThan(0);
    expect(mssField).toMatch(/data-path="mss">must be 0 \(off\) or at least 536, got 100/);
    for (const p of ['remote_addr', 'psk', 'inside_addr', 'param_tunnel_id', 'param_account_id'])
      expect(r.text).toMatch(new RegExp(`class="field invalid" data-field="${p}"`));
    // The form keeps what was typed, and nothing was applied.
    expect(formFields(r.text, 'tunnel-form').mss).toBe('100');
    expect(h.daemon.store.getDocument().tunnels).toEqual([]);
  });

  it('applies a valid tunnel on trial and the dashboard shows its IKE SA and Child SA with the ML-KEM badge', async () => {
    const page = await c.get('/tunnels/new?preset=cloudflare');
    const form = { ...formFields(page.text, 'tunnel-form'), ...CF_FORM };
    const r = await c.post('/tunnels/new', form);
    expect(r.status).toBe(303);
    const doc = h.daemon.store.getDocument();
    expect(doc.tunnels.map((t) => t.name)).toEqual(['cf1']);
    // The template was filled by the daemon from the parameters, not sent literally.
    expect(doc.tunnels[0]!.local_id).toBe('fqdn:tun-0a1b2c.acct-9f8e7d.ipsec.cloudflare.com');
    expect(doc.tunnels[0]!.mss).toBe(1360);
    expect(h.daemon.store.getPresets()).toEqual({ cf1: 'cloudflare' });
    const pend = h.daemon.store.pending();
    expect(pend?.status).toBe('pending');

    const dash = await c.get('/');
    expect(dash.text).toContain(`Revision ${pend!.id} applied on trial`);
    expect(dash.text).toMatch(/<section class="card tunnel h-up" data-tunnel="cf1" data-health="up">/);
    expect(dash.text).toMatch(/<tr class="ike h-up" data-sa="\d+">/);
    expect(dash.text).toMatch(/<tr class="child h-up" data-child="cf1\/\d+\/\d+\/[0-9a-f]{8}">/);
    expect(dash.text).toContain('<span class="badge pq" data-pq="ML-KEM-768">ML-KEM-768</span>');
    expect(dash.text).toContain('ECP_384 + ML_KEM_768');
    // The commit-confirmed banner: deadline and server time for the countdown, confirm and roll back buttons.
    const m = /id="pending-banner" class="banner pending" role="status" data-deadline="(\d+)" data-server-now="(\d+)"/.exec(dash.text);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(pend!.confirmDeadline);
    const left = Number(m![1]) - Number(m![2]);
    expect(left).toBeGreaterThan(290_000);
    expect(left).toBeLessThanOrEqual(300_000);
    expect(dash.text).toContain('id="confirm-revision"');
    expect(dash.text).toContain('id="rollback-now"');
  });

  it('the JSON status behind the live graph has the counters and they move', async () => {
    const a = (await c.api('GET', '/api/v1/status')).json();
    await sleep(300);
    const b = (await c.api('GET', '/api/v1/status')).json();
    const ca = a.tunnels[0].sas[0].children[0];
    const cb = b.tunnels[0].sas[0].children[0];
    expect(a.tunnels[0].sas[0].pq).toBe('ML-KEM-768');
    expect(cb.key).toBe(ca.key);
    expect(cb.bytesIn).toBeGreaterThan(ca.bytesIn);
    expect(cb.bytesOut).toBeGreaterThan(ca.bytesOut);
  });

  it('confirm keeps the revision and removes the banner', async () => {
    const id = h.daemon.store.pending()!.id;
    const r = await c.post('/config/confirm');
    expect(r.status).toBe(303);
    const dash = await c.get('/');
    expect(dash.text).toContain(`Revision ${id} confirmed`);
    expect(dash.text).not.toContain('id="pending-banner"');
    expect(h.daemon.store.pending()).toBeUndefined();
    expect(h.daemon.store.getRevision(id).status).toBe('committed');
  });

  it('an edit applied on trial and rolled back now restores the previous configuration', async () => {
    const page = await c.get('/tunnels/cf1/edit');
    const f = formFields(page.text, 'tunnel-form');
    expect(f.psk).toBe(''); // never shown
    expect(f.mss).toBe('1360');
    const r = await c.post('/tunnels/cf1/edit', { ...f, mss: '1400' });
    expect(r.status).toBe(303);
    expect(h.daemon.store.getDocument().tunnels[0]!.mss).toBe(1400);
    expect((await c.get('/')).text).toContain('id="pending-banner"');
    const cancel = await c.post('/config/cancel');
    expect(cancel.status).toBe(303);
    expect(h.daemon.store.getDocument().tunnels[0]!.mss).toBe(1360);
    expect(h.daemon.store.pending()).toBeUndefined();
    expect((await c.get('/')).text).toMatch(/Rolled back: revision \d+ restores the previous configuration/);
  });

  it('an unconfirmed change rolls itself back at the deadline', async () => {
    const r = await c.api('PUT', '/api/v1/tunnels/cf1', { tunnel: { mss: 1300 }, confirmTimeoutSec: 1, comment: 'short trial' });
    expect(r.status).toBe(200);
    expect(r.json().revision.state).toBe('pending');
    expect(h.daemon.store.getDocument().tunnels[0]!.mss).toBe(1300);
    await sleep(1500);
    expect((await c.api('GET', '/api/v1/config/pending')).json().revision).toBeNull();
    expect(h.daemon.store.getDocument().tunnels[0]!.mss).toBe(1360);
    const hist = (await c.api('GET', '/api/v1/config/history?limit=2')).json();
    expect(hist[0].author).toBe('system (confirm timeout)');
    expect(hist[1].state).toBe('rolled-back');
  });

  it('a change while another is on trial is refused with the reason', async () => {
    await c.api('PUT', '/api/v1/tunnels/cf1', { tunnel: { mss: 1310 }, confirmTimeoutSec: 300 });
    const r = await c.api('PUT', '/api/v1/tunnels/cf1', { tunnel: { mss: 1320 } });
    expect(r.status).toBe(409);
    expect(r.json().error.message).toMatch(/awaits confirmation/);
    expect((await c.post('/config/confirm')).status).toBe(303);
  });
});

describe('history and diffs', () => {
  it('lists every revision and shows a diff with field paths', async () => {
    const hist = await c.get('/config/history');
    expect(hist.status).toBe(200);
    const ids = [...hist.text.matchAll(/<tr data-revision="(\d+)"/g)].map((m) => Number(m[1]));
    expect(ids).toEqual(h.daemon.store.history().map((r) => r.id));
    expect(hist.text).toContain('system (confirm timeout)');
    const last = h.daemon.store.history()[0]!;
    const d = await c.get(`/config/diff?from=${last.id - 1}&to=${last.id}`);
    expect(d.status).toBe(200);
    expect(d.text).toContain(esc('~ tunnels[0].mss: 1360 → 1310'));
    const add = await c.get('/config/diff?from=1&to=2');
    expect(add.text).toContain(esc('+ tunnels[0] (cf1):'));
    expect(add.text).not.toContain(CF_FORM.psk);
  });

  it('rolls back to an older revision (on trial) from the history', async () => {
    const r = await c.post('/config/rollback/1', { trial: 'on', trial_sec: '300' });
    expect(r.status).toBe(303);
    expect(h.daemon.store.getDocument().tunnels).toEqual([]);
    expect((await c.get('/')).text).toContain('No tunnels configured yet');
    await c.post('/config/cancel');
    expect(h.daemon.store.getDocument().tunnels.map((t) => t.name)).toEqual(['cf1']);
  });
});

describe('backup and restore', () => {
  let backup: any;

  it('downloads a backup without the pre-shared key', async () => {
    const r = await c.get('/maintenance/backup');
    expect(r.status).toBe(200);
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="pqgate-backup-.*\.json"$/);
    backup = r.json();
    expect(backup.schema_version).toBeGreaterThan(0);
    expect(backup.tunnels[0].name).toBe('cf1');
    expect(backup.tunnels[0]).not.toHaveProperty('psk');
    expect(backup.tunnel_presets).toEqual({ cf1: 'cloudflare' });
    expect(r.text).not.toContain(CF_FORM.psk);
  });

  it('refuses an invalid backup with every problem and its path, changing nothing', async () => {
    const broken = structuredClone(backup);
    broken.tunnels[0].mss = 100;
    broken.tunnels[0].remote_addr = 'not-an-address';
    broken.tunnels.push({ name: 'cf1' });
    const histBefore = h.daemon.store.history().length;
    const docBefore = JSON.stringify(h.daemon.store.getDocument());
    const r = await c.request('POST', '/maintenance/restore', { multipart: { files: { backup: { filename: 'backup.json', data: JSON.stringify(broken), type: 'application/json' } } } });
    expect(r.status).toBe(422);
    expect(r.text).toContain('The backup was refused; nothing was changed:');
    let expected: string[] = [];
    const names = new Set(['cf1']);
    try {
      validateDocument(broken, { hasStoredPsk: (n) => names.has(n), isPreset });
    } catch (e) {
      expected = (e as ConfigValidationError).errors.map((x) => x.message);
    }
    expect(expected.length).toBeGreaterThanOrEqual(3);
    for (const line of expected) {
      const i = line.indexOf(': ');
      expect(r.text).toContain(`<code class="path">${esc(line.slice(0, i))}</code>`);
      expect(r.text).toContain(esc(line.slice(i + 2)));
    }
    expect(r.text).toMatch(/tunnels\[0\]\.mss/);
    expect(h.daemon.store.history().length).toBe(histBefore);
    expect(JSON.stringify(h.daemon.store.getDocument())).toBe(docBefore);
  });

  it('refuses a file that is not JSON without quoting it', async () => {
    const r = await c.request('POST', '/maintenance/restore', { multipart: { files: { backup: { filename: 'b.json', data: '{"tunnels": [ secret-stuff', type: 'application/json' } } } });
    expect(r.status).toBe(422);
    expect(r.text).toContain('invalid JSON');
    expect(r.text).not.toContain('secret-stuff');
  });

  it('restores a valid backup as a new revision (keeping the stored key)', async () => {
    const edited = structuredClone(backup);
    edited.tunnels[0].mss = 1290;
    const r = await c.request('POST', '/maintenance/restore', { multipart: { fields: { comment: 'restore test' }, files: { backup: { filename: 'backup.json', data: JSON.stringify(edited) } } } });
    expect(r.status).toBe(303);
    const cur = h.daemon.store.current();
    expect(cur.comment).toBe('restore test');
    expect(cur.kind).toBe('import');
    expect(h.daemon.store.getDocument().tunnels[0]!.mss).toBe(1290);
    // The PSK survived the secret-free round trip.
    const withKeys = h.daemon.store.exportDocument({ includeSecrets: true, actor: 'test' });
    expect(withKeys.tunnels[0]!.psk).toBe(CF_FORM.psk);
  });
});

describe('SA actions and honest status', () => {
  it('asks before acting, then sends the action to the daemon', async () => {
    const ask = await c.get('/sa/cf1/rekey-ike');
    expect(ask.text).toContain('Rekey the IKE SA of cf1?');
    const before = h.daemon.sas.get('cf1')!.rekeys;
    expect((await c.post('/sa/cf1/rekey-ike')).status).toBe(303);
    expect(h.daemon.sas.get('cf1')!.rekeys).toBe(before + 1);
    expect((await c.get('/')).text).toContain('ago (rekeyed 1×)');
  });

  it('says degraded when the Child SA receives nothing while the IKE SA is up', async () => {
    h.daemon.silenceInbound('cf1');
    const dash = await c.get('/');
    expect(dash.text).toMatch(/<section class="card tunnel h-degraded" data-tunnel="cf1"/);
    expect(dash.text).toMatch(/<tr class="child h-degraded"/);
    expect(dash.text).toContain('no packet received for 90 s');
    expect(dash.text).toContain('1 of 1 Child SA not passing traffic');
  });

  it('says down with the last error in plain words when the peer is gone', async () => {
    h.daemon.peerDead('cf1');
    const dash = await c.get('/');
    expect(dash.text).toMatch(/<section class="card tunnel h-down" data-tunnel="cf1"/);
    expect(dash.text).toContain('peer not responding to liveness checks — the peer does not answer');
    expect(dash.text).toContain('href="/sa/cf1/up"');
    expect((await c.post('/sa/cf1/up')).status).toBe(303);
    expect((await c.get('/')).text).toMatch(/<section class="card tunnel h-up" data-tunnel="cf1"/);
  });
});

describe('system, logs, metrics, reboot, certificate', () => {
  it('shows what system.info reports', async () => {
    const r = await c.get('/system');
    expect(r.status).toBe(200);
    expect(r.text).toContain('userspace (simulated)');
    expect(r.text).toContain('This hardware reports no temperature sensors.');
    expect(r.text).toMatch(/<table class="list" id="interfaces">[\s\S]*<td data-label="Interface">lo<\/td>/);
  });

  it('filters the event log and downloads it', async () => {
    h.daemon.store.logEvent({ level: 'error', tunnel: 'cf1', message: 'flow test error <b>' });
    h.daemon.store.logEvent({ level: 'debug', tunnel: 'other', message: 'flow test debug' });
    const page = await c.get('/logs?tunnel=cf1&level=warn');
    expect(page.text).toContain('flow test error &lt;b&gt;');
    expect(page.text).not.toContain('flow test debug');
    const dl = await c.get('/logs/download?tunnel=cf1');
    expect(dl.headers['content-type']).toMatch(/^text\/plain/);
    expect(dl.headers['content-disposition']).toMatch(/^attachment; filename="pqgate-events-/);
    expect(dl.text).toMatch(/^\d{4}-\d\d-\d\dT.*Z error cf1 flow test error <b>$/m);
    expect(dl.text).not.toContain('flow test debug');
    const api = (await c.api('GET', '/api/v1/logs?level=error&limit=5')).json();
    expect(api.every((e: { level: string }) => e.level === 'error')).toBe(true);
  });

  it('serves Prometheus metrics', async () => {
    const m = await c.get('/api/v1/metrics');
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
    expect(m.text).toContain('pqgate_tunnel_up{tunnel="cf1"} 1');
    expect(m.text).toContain('pqgate_pq_share 1');
  });

  it('reboots after a confirmation', async () => {
    expect((await c.get('/maintenance/reboot')).text).toContain('Reboot the gateway now?');
    const r = await c.post('/maintenance/reboot');
    expect(r.status).toBe(202);
    expect(r.text).toContain('The gateway is rebooting.');
    expect(h.daemon.reboots).toBe(1);
  });

  it('replaces the HTTPS certificate by upload; new connections get the new one', async () => {
    const { selfSignedCertificate } = await import('../../webui/tls.js');
    const next = selfSignedCertificate(['localhost', '127.0.0.1']);
    const r = await c.request('POST', '/maintenance/tls', { multipart: { files: { cert: { filename: 'c.pem', data: next.cert }, key: { filename: 'k.pem', data: next.key } } } });
    expect(r.status).toBe(303);
    expect(h.server.certificate()).toBe(next.cert);
    // The client pins the served certificate: a fresh connection verifies against the new one only.
    const page = await c.get('/maintenance');
    expect(page.status).toBe(200);
    const { X509Certificate } = await import('node:crypto');
    expect(page.text).toContain(new X509Certificate(next.cert).fingerprint256);
    const wrong = await c.request('POST', '/maintenance/tls', { multipart: { files: { cert: { filename: 'c.pem', data: next.cert }, key: { filename: 'k.pem', data: selfSignedCertificate(['x']).key } } } });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('the private key does not belong to the certificate');
    expect(h.server.certificate()).toBe(next.cert);
  });
});

describe('factory reset', () => {
  it('needs the typed confirmation', async () => {
    const r = await c.post('/maintenance/factory-reset', { confirm: 'factory reset' });
    expect(r.status).toBe(400);
    expect(r.text).toContain('Nothing was erased.');
    expect(h.daemon.factoryResets).toBe(0);
  });

  it('erases everything and returns to first-boot setup; old sessions are gone', async () => {
    const other = h.client();
    await other.login();
    const r = await c.post('/maintenance/factory-reset', { confirm: 'FACTORY RESET' });
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/setup');
    expect(h.daemon.factoryResets).toBe(1);
    expect(h.daemon.store.listUsers()).toEqual([]);
    expect(h.daemon.store.getDocument().tunnels).toEqual([]);
    expect((await other.get('/')).headers.location).toBe('/login');
    expect((await c.get('/login')).headers.location).toBe('/setup');
    expect((await c.setup(ADMIN, 'another password 123')).status).toBe(303);
    expect((await c.get('/')).status).toBe(200);
  });
});
