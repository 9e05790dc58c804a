/**
 * The web admin's building blocks in isolation: escaping, the tunnel form's
 * translation to `config.tunnel.put`, issue parsing and field mapping, the
 * dashboard's health classification, multipart parsing, sessions and login
 * throttling on a fake clock, API token storage, the HTTPS certificate.
 */
import { describe, expect, it } from 'vitest';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { html, esc, href, fmtBytes, fmtDuration } from '../../webui/html.js';
import { issuesFromError } from '../../webui/daemon-client.js';
import { ControlError } from '../../firmware/control/protocol.js';
import { ConfigValidationError } from '../../firmware/config/schema.js';
import { ConfigError } from '../../firmware/util/errors.js';
import { formToTunnel, fieldOfIssue, templateParams, trialSeconds, FIELDS } from '../../webui/tunnel-form.js';
import { buildDashboard, pqBadge, plainError, CHILD_GRACE_MS, INBOUND_SILENCE_MS } from '../../webui/model.js';
import { parseMultipart, checkFileName, MultipartError } from '../../webui/multipart.js';
import { SessionStore, LoginGuard } from '../../webui/sessions.js';
import { ApiTokenStore } from '../../webui/tokens.js';
import { selfSignedCertificate, checkTlsUpload, loadOrCreateTls, TlsUploadError } from '../../webui/tls.js';
import { scrubSecrets } from '../../webui/service.js';
import { parseHostPort, lookupIds } from '../../webui/server.js';
import { multipartBody } from './helpers.js';
import type { ChildSaStatus, IkeSaStatus } from '../../firmware/ikev2/engine-types.js';
import { generateKey, exportPrivateKeyPem, toPem } from '../../firmware/auth/keys.js';
import { encodeDn } from '../../firmware/auth/dn.js';
import { buildCertificate } from '../../firmware/pki/x509-writer.js';

describe('html escaping', () => {
  it('escapes every interpolation and composes templates without double escaping', () => {
    const evil = `<img src=x onerror="alert('1')">&`;
    expect(esc(evil)).toBe('&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;');
    const inner = html`<b>${evil}</b>`;
    expect(html`<p title="${evil}">${inner}${[evil, inner]}${null}${undefined}${false}${0}</p>`.value).toBe(
      `<p title="${esc(evil)}"><b>${esc(evil)}</b>${esc(evil)}<b>${esc(evil)}</b>0</p>`,
    );
  });
  it('builds our own URLs with encoded segments', () => {
    expect(href('/tunnels', 'a b/../c', 'edit')).toBe('/tunnels/a%20b%2F..%2Fc/edit');
    expect(href('/logs', { tunnel: 'x&y', level: undefined })).toBe('/logs?tunnel=x%26y');
    expect(fmtBytes(1536)).toBe('1.50 KiB');
    expect(fmtDuration(3_725_000)).toBe('1 h 2 min');
  });
});

describe('daemon validation issues', () => {
  it('parses the CLI text of a ConfigValidationError back into path + message', () => {
    const v = new ConfigValidationError([new ConfigError('tunnels[0].mss', 'must be 0 (off) or at least 536, got 100'), new ConfigError('params.tunnel_id', 'must match ^[a-z]+$ (id: x)')]);
    const issues = issuesFromError(new ControlError('ERR_CONFIG', v.message));
    expect(issues).toEqual([
      { path: 'tunnels[0].mss', message: 'must be 0 (off) or at least 536, got 100' },
      { path: 'params.tunnel_id', message: 'must match ^[a-z]+$ (id: x)' },
    ]);
    expect(issuesFromError(new ControlError('ERR_CONFIG', 'name: a tunnel named \'x\' already exists'))).toEqual([{ path: 'name', message: "a tunnel named 'x' already exists" }]);
    expect(issuesFromError(new ControlError('ERR_STORE_PENDING', 'x'))).toBeUndefined();
  });

  it('maps issue paths to form fields', () => {
    expect(fieldOfIssue('mss', 'cf1')).toBe('mss');
    expect(fieldOfIssue('proposals[1]', 'cf1')).toBe('proposals');
    expect(fieldOfIssue('tunnels[3].remote_ts[0]', 'cf1')).toBe('remote_ts');
    expect(fieldOfIssue('patch.tunnels.cf1.dpd_delay', 'cf1')).toBe('dpd_delay');
    expect(fieldOfIssue('params.account_id', 'cf1')).toBe('param_account_id');
    expect(fieldOfIssue('listen', 'cf1')).toBeUndefined();
    expect(fieldOfIssue('(tunnel)', 'cf1')).toBeUndefined();
  });
});

describe('tunnel form → config.tunnel.put', () => {
  const preset = { remote_port: 500, local_id: 'fqdn:{tunnel_id}.{account_id}.x', proposals: ['p1'], mss: 1360, start_action: 'start' };
  const all = (o: Record<string, string>) => ({ has_enabled: '1', has_encap: '1', enabled: 'on', ...o });

  it('sends only what differs from the preset (templates stay with the daemon), cleared fields as null', () => {
    const r = formToTunnel(all({ name: 'cf1', remote_port: '500', local_id: preset.local_id, proposals: 'p1', mss: '1400', start_action: '', remote_addr: '198.51.100.7', psk: 'k'.repeat(20), param_tunnel_id: 't1' }), preset, { isNew: true });
    expect(r.tunnel).toEqual({ name: 'cf1', mss: 1400, start_action: null, remote_addr: '198.51.100.7', psk: 'k'.repeat(20) });
    expect(r.params).toEqual({ tunnel_id: 't1' });
  });

  it('types numbers and lists, passes a non-number through for the daemon to reject, keeps an empty PSK out', () => {
    const r = formToTunnel(all({ name: 'x', mss: '13a0', dpd_delay: ' 30 ', local_ts: '10.0.0.0/8\n 10.1.0.0/16 ,', psk: '', encap: 'on' }), undefined, { isNew: true });
    expect(r.tunnel).toEqual({ name: 'x', mss: '13a0', dpd_delay: 30, local_ts: ['10.0.0.0/8', '10.1.0.0/16'], encap: true });
    const edit = formToTunnel(all({ psk: '<set>', mss: '', enabled: '' }), { name: 'x', mss: 1360, psk: '<set>' }, { isNew: false, fixedName: 'x' });
    expect(edit.tunnel).toEqual({ name: 'x', mss: null, enabled: false });
  });

  it('finds template parameters and reads the trial period', () => {
    expect(templateParams(preset).sort()).toEqual(['account_id', 'tunnel_id']);
    expect(trialSeconds({})).toBeUndefined();
    expect(trialSeconds({ trial: 'on', trial_sec: '120' })).toBe(120);
    expect(trialSeconds({ trial: 'on', trial_sec: '5' })).toBe('invalid');
    expect(FIELDS.map((f) => f.key)).toContain('psk');
  });
});

function child(o: Partial<ChildSaStatus> = {}): ChildSaStatus {
  return {
    name: 't', state: 'INSTALLED', reqid: 1, spiIn: 'aa', spiOut: 'bb', encr: 'AES_GCM_16_256', integ: null, keyExchanges: [], esn: false,
    localTs: [], remoteTs: [], encap: true, installedAt: 1_000_000, rekeyAt: 2_000_000, rekeys: 0,
    bytesIn: 100, bytesOut: 100, packetsIn: 1, packetsOut: 1, lastInAt: 1_000_500, lastOutAt: 1_000_500, ...o,
  };
}
function ike(o: Partial<IkeSaStatus> = {}): IkeSaStatus {
  return {
    tunnel: 't', id: 1, state: 'ESTABLISHED', role: 'initiator', local: { address: '192.0.2.1', port: 4500 }, remote: { address: '198.51.100.1', port: 4500 },
    spiI: '1', spiR: '2', localId: 'a', remoteId: 'b', encr: 'AES_GCM_16_256', prf: 'PRF_HMAC_SHA2_384', integ: null,
    keyExchanges: ['CURVE_25519', 'ML_KEM_1024'], postQuantum: 'ML_KEM_1024', fragmentation: true, natLocal: false, natRemote: false, encap: true,
    establishedAt: 1_000_000, rekeyAt: 5_000_000, rekeys: 0, lastError: null, children: [child()], ...o,
  };
}

describe('honest status', () => {
  const now = 1_001_000;
  const health = (sas: IkeSaStatus[], idle: { tunnel: string; lastError: string | null; nextAttemptAt: number | null }[] = [], cfg = [{ name: 't', remote_addr: '198.51.100.1' }]) =>
    buildDashboard({ sas, idle, now }, cfg).tunnels[0]!;

  it('is up only with every Child SA installed and receiving', () => {
    const t = health([ike()]);
    expect(t.health).toBe('up');
    expect(t.sas[0]!.pq).toBe('ML-KEM-1024');
    expect(t.sas[0]!.nextRekeyInMs).toBe(5_000_000 - now);
  });

  it('is degraded when a Child SA receives nothing, is missing or lacks counters', () => {
    const late = now + CHILD_GRACE_MS + 1;
    expect(buildDashboard({ sas: [ike({ children: [child({ packetsIn: 0, bytesIn: 0, lastInAt: 0 })] })], idle: [], now: late }, []).tunnels[0]!.health).toBe('degraded');
    const silent = buildDashboard({ sas: [ike({ children: [child({ lastInAt: now })] })], idle: [], now: now + INBOUND_SILENCE_MS + 1000 }, []).tunnels[0]!;
    expect(silent.health).toBe('degraded');
    expect(silent.sas[0]!.children[0]!.reason).toBe('no packet received for 61 s');
    expect(health([ike({ children: [] })]).reason).toMatch(/no Child SA/);
    expect(health([ike({ children: [child(), child({ reqid: 2, packetsIn: undefined, bytesIn: undefined })] })]).reason).toBe('1 of 2 Child SAs not passing traffic');
    // A fresh Child SA that has not seen its first packet yet is not condemned.
    expect(health([ike({ children: [child({ packetsIn: 0, bytesIn: 0, lastInAt: 0, installedAt: now - 1000 })] })]).health).toBe('up');
  });

  it('is down with the last error in plain words, connecting while negotiating, disabled when switched off', () => {
    const down = health([], [{ tunnel: 't', lastError: 'peer sent AUTHENTICATION_FAILED', nextAttemptAt: now + 5000 }]);
    expect(down.health).toBe('down');
    expect(down.reason).toContain('check the pre-shared key');
    expect(down.nextAttemptInMs).toBe(5000);
    expect(health([ike({ state: 'AUTHENTICATING', children: [] })]).health).toBe('connecting');
    expect(health([], [], [{ name: 't', enabled: false } as never]).health).toBe('disabled');
    expect(health([], [], [{ name: 't', remote_addr: '%any' }]).reason).toMatch(/responder only/);
    expect(pqBadge(null)).toBe('none');
    expect(plainError('NO_PROPOSAL_CHOSEN')).toMatch(/no algorithm set in common/);
  });

  it('with an active health probe, the probe decides instead of the inbound-traffic rule', () => {
    const silentLate = now + INBOUND_SILENCE_MS + 1000;
    const sas = [ike({ children: [child({ lastInAt: now })] })];
    // Probe answered: up although nothing else came in for a minute.
    const up = buildDashboard({ sas, idle: [], now: silentLate, health: { t: { state: 'up', probesAnswered: 3, target: '10.2.0.1', rttMs: 1.5, lastOkAt: silentLate - 2000, failures: 0, lastProbeAt: silentLate - 4000 } } }, []).tunnels[0]!;
    expect(up.health).toBe('up');
    expect(up.reason).toBe('established, health probe to 10.2.0.1 answered in 1.5 ms');
    expect(up.probe).toEqual({ state: 'up', target: '10.2.0.1', rttMs: 1.5, lastOkAgoMs: 2000, failures: 0, probesAnswered: 3, lastProbeAgoMs: 4000 });
    // Probe unanswered: degraded although traffic flows.
    const down = buildDashboard({ sas: [ike()], idle: [], now, health: { t: { state: 'down', probesAnswered: 0, target: '10.2.0.1', failures: 3 } } }, []).tunnels[0]!;
    expect(down.health).toBe('degraded');
    expect(down.reason).toBe('health probe to 10.2.0.1: 3 probes in a row unanswered');
    // No verdict yet, or no probe configured: the inbound-traffic rule as before.
    for (const h of [{ state: 'unknown' as const, probesAnswered: 0, target: '10.2.0.1', failures: 1 }, { state: 'unknown' as const, probesAnswered: 5 }]) {
      const t = buildDashboard({ sas, idle: [], now: silentLate, health: { t: h } }, []).tunnels[0]!;
      expect(t.health).toBe('degraded');
      expect(t.sas[0]!.children[0]!.reason).toBe('no packet received for 61 s');
    }
    // Health per SA (status) works as well as the per-tunnel map (status.tunnels).
    expect(buildDashboard({ sas: [ike({ health: { state: 'down', probesAnswered: 0, target: '10.2.0.1', failures: 3 } })], idle: [], now }, []).tunnels[0]!.health).toBe('degraded');
    expect(health([ike()]).probe).toBeNull();
  });

  it('prefers the best established IKE SA of a tunnel (rekey overlap)', () => {
    const t = health([ike({ id: 1, children: [] }), ike({ id: 2 })]);
    expect(t.health).toBe('up');
    expect(t.sas).toHaveLength(2);
  });
});

describe('multipart', () => {
  it('parses fields and files', () => {
    const m = multipartBody({ fields: { a: 'x y', _csrf: 't' }, files: { backup: { filename: 'b.json', data: Buffer.from('{"v":1}\r\n--not-a-boundary') } } });
    const parts = parseMultipart(m.body, m.type);
    expect(parts.map((p) => [p.name, p.filename, p.data.toString()])).toEqual([
      ['a', undefined, 'x y'],
      ['_csrf', undefined, 't'],
      ['backup', 'b.json', '{"v":1}\r\n--not-a-boundary'],
    ]);
  });
  it('refuses traversal file names, filename*, malformed bodies', () => {
    for (const n of ['../x', '..\\x', 'a/b', 'x\u0000y', '..']) expect(() => checkFileName(n)).toThrow(MultipartError);
    expect(checkFileName('backup 2024.json')).toBe('backup 2024.json');
    const b = Buffer.from('--B\r\nContent-Disposition: form-data; name="f"; filename*=UTF-8\'\'..%2Fx\r\n\r\nx\r\n--B--\r\n');
    expect(() => parseMultipart(b, 'multipart/form-data; boundary=B')).toThrow(/filename\*/);
    expect(() => parseMultipart(Buffer.from('--B\r\nno headers'), 'multipart/form-data; boundary=B')).toThrow(MultipartError);
    expect(() => parseMultipart(Buffer.from('x'), 'text/plain')).toThrow(/multipart/);
  });
});

describe('sessions and login throttling', () => {
  it('expires idle and old sessions', () => {
    let t = 0;
    const s = new SessionStore({ idleMs: 1000, absoluteMs: 5000, now: () => t });
    const a = s.create('admin', { ip: '1', userAgent: 'x' });
    t = 900;
    expect(s.get(a.cookie)?.user).toBe('admin');
    t = 1800;
    expect(s.get(a.cookie)).toBeDefined(); // touched at 900
    t = 2801;
    expect(s.get(a.cookie)).toBeUndefined();
    const b = s.create('admin', { ip: '1', userAgent: 'x' });
    for (t = 3000; t < 8000; t += 500) if (t - 2801 < 5000) expect(s.get(b.cookie)).toBeDefined();
    expect(s.get(b.cookie)).toBeUndefined();
    expect(s.get('bogus')).toBeUndefined();
  });

  it('keeps logged-in sessions when anonymous ones flood the table', () => {
    const s = new SessionStore({ maxSessions: 10 });
    const admin = s.create('admin', { ip: '1', userAgent: 'x' });
    for (let i = 0; i < 50; i++) s.create(null, { ip: '2', userAgent: 'y' });
    expect(s.size).toBeLessThanOrEqual(10);
    expect(s.get(admin.cookie)?.user).toBe('admin');
  });

  it('locks after N failures for the lockout time, per name', () => {
    let t = 0;
    const g = new LoginGuard({ maxFailures: 2, lockoutMs: 1000, ipMaxAttempts: 100, now: () => t });
    g.failure('Admin');
    expect(g.attempt('admin', 'ip').ok).toBe(true);
    g.failure('admin');
    expect(g.attempt('ADMIN', 'ip')).toEqual({ ok: false, reason: 'locked', retryAfterSec: 1 });
    expect(g.attempt('other', 'ip').ok).toBe(true);
    t = 1001;
    expect(g.attempt('admin', 'ip').ok).toBe(true);
  });
});

describe('API tokens', () => {
  it('stores only hashes, survives a restart, revokes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqg-tokens-'));
    try {
      const a = new ApiTokenStore(dir);
      const { token, info } = a.create('admin', 'ci');
      expect(token).toMatch(/^pqg_[A-Za-z0-9_-]{43}$/);
      const file = readFileSync(join(dir, 'api-tokens.json'), 'utf8');
      expect(file).not.toContain(token);
      expect(file).toContain(createHash('sha256').update(token).digest('hex'));
      expect(statSync(join(dir, 'api-tokens.json')).mode & 0o777).toBe(0o600);
      const b = new ApiTokenStore(dir);
      expect(b.verify(token)?.user).toBe('admin');
      expect(b.verify(token + 'x')).toBeUndefined();
      expect(b.revoke(info.id, 'someone-else')).toBe(false);
      expect(b.revoke(info.id, 'admin')).toBe(true);
      expect(new ApiTokenStore(dir).verify(token)).toBeUndefined();
      expect(() => b.create('admin', '<script>')).toThrow(TypeError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('HTTPS certificate', () => {
  it('generates a self-signed server certificate for the device names, stored 0600 in a 0700 directory, once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqg-tls-'));
    try {
      const a = loadOrCreateTls(dir, ['gw.example', 'localhost', '127.0.0.1', '0.0.0.0']);
      expect(a.generated).toBe(true);
      const x = new X509Certificate(a.cert);
      expect(x.checkHost('gw.example')).toBe('gw.example');
      expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(x.checkIP('0.0.0.0')).toBeUndefined();
      expect(x.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
      expect(x.verify(x.publicKey)).toBe(true);
      expect(statSync(join(dir, 'tls')).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, 'tls', 'key.pem')).mode & 0o777).toBe(0o600);
      const b = loadOrCreateTls(dir, ['other']);
      expect(b.generated).toBe(false);
      expect(b.cert).toBe(a.cert);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts a matching server certificate and refuses the rest', () => {
    const ok = selfSignedCertificate(['localhost']);
    expect(checkTlsUpload(ok.cert, ok.key).cert).toContain('BEGIN CERTIFICATE');
    const other = selfSignedCertificate(['localhost']);
    expect(() => checkTlsUpload(ok.cert, other.key)).toThrow(/does not belong/);
    expect(() => checkTlsUpload('garbage', ok.key)).toThrow(TlsUploadError);
    expect(() => checkTlsUpload(ok.cert, 'garbage')).toThrow(/private key does not parse/);
    const key = generateKey('ecdsa-p256');
    const dn = encodeDn('CN=old');
    const expired = toPem('CERTIFICATE', buildCertificate({ subject: dn, issuer: dn, subjectKey: key.publicKey, issuerKey: key, notBefore: new Date('2020-01-01'), notAfter: new Date('2021-01-01'), san: [{ type: 'dns', value: 'x' }] }));
    expect(() => checkTlsUpload(expired, exportPrivateKeyPem(key))).toThrow(/expired/);
    try {
      checkTlsUpload(ok.cert, other.key);
    } catch (e) {
      expect((e as Error).message).not.toContain('PRIVATE');
    }
  });
});

describe('misc', () => {
  it('scrubs secret-named keys deeply', () => {
    expect(scrubSecrets({ tunnels: [{ name: 'a', psk: 'hunter2-hunter2-x' }], privateKeyPem: 'k', nested: { password: 'p', ok: 1 } })).toEqual({
      tunnels: [{ name: 'a', psk: '<set>' }],
      privateKeyPem: '<set>',
      nested: { password: '<set>', ok: 1 },
    });
  });
  it('parses listen addresses and looks up users', () => {
    expect(parseHostPort('[::1]:8443', 'x')).toEqual({ host: '::1', port: 8443 });
    expect(parseHostPort('0.0.0.0:443', 'x')).toEqual({ host: '0.0.0.0', port: 443 });
    expect(() => parseHostPort('8443', 'x')).toThrow();
    expect(lookupIds('root')).toEqual({ uid: 0, gid: 0 });
    expect(() => lookupIds('no-such-user-pqg')).toThrow(/no user/);
  });
});
