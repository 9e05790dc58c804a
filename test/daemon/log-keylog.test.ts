import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Logger, isSecretField } from '../../firmware/log.js';
import { KeylogWriter, resolveKeylogPath } from '../../firmware/keylog.js';
import { formatStatus, pqLabel, formatDuration } from '../../firmware/control/format.js';
import { sampleStatus } from './helpers/stub-engine.js';

const fixed = () => new Date('2026-11-27T10:00:00.000Z');

describe('log', () => {
  it('text format: timestamp, level, [tunnel], message, fields', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'info', sink: (l) => lines.push(l), now: fixed });
    log.info('IKE SA established', { tunnel: 'cf1', spi: 'ab12', n: 2, ok: true, text: 'two words' });
    log.debug('hidden');
    expect(lines).toEqual(['2026-11-27T10:00:00.000Z info  [cf1] IKE SA established spi=ab12 n=2 ok=true text="two words"']);
  });

  it('json format: one object per line', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'debug', format: 'json', sink: (l) => lines.push(l), now: fixed });
    log.child({ tunnel: 'cf1' }).warn('retransmit', { count: 3 });
    expect(JSON.parse(lines[0]!)).toEqual({ ts: '2026-11-27T10:00:00.000Z', level: 'warn', tunnel: 'cf1', msg: 'retransmit', count: 3 });
  });

  it('never prints secrets or raw bytes', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'trace', sink: (l) => lines.push(l), now: fixed });
    log.info('x', { psk: 'hunter2hunter2hunter2', encrKey: 'aabbcc', nested: { secret: 's3cr3t', skeyseed: 'zz' }, blob: new Uint8Array([1, 2, 3]), keyExchanges: ['ML_KEM_768'] });
    const l = lines[0]!;
    expect(l).not.toContain('hunter2');
    expect(l).not.toContain('aabbcc');
    expect(l).not.toContain('s3cr3t');
    expect(l).toContain('blob="<3 bytes>"');
    expect(l).toContain('ML_KEM_768');
    expect(isSecretField('psk')).toBe(true);
    expect(isSecretField('integKey')).toBe(true);
    expect(isSecretField('keyExchanges')).toBe(false);
    expect(isSecretField('tunnel')).toBe(false);
  });

  it('one record per line even if the message carries newlines', () => {
    const lines: string[] = [];
    const log = new Logger({ sink: (l) => lines.push(l), now: fixed });
    log.info('peer id evil\n2026-11-27T10:00:00.000Z error forged');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
  });

  it('children follow the parent level; a throwing sink is contained', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'info', sink: (l) => lines.push(l) });
    const c = log.child({ tunnel: 't' });
    c.debug('a');
    log.setLevel('debug');
    c.debug('b');
    expect(lines).toHaveLength(1);
    const bad = new Logger({
      sink: () => {
        throw new Error('EPIPE');
      },
    });
    expect(() => bad.error('x')).not.toThrow();
  });
});

describe('keylog', () => {
  it('PQGATE_KEYLOG overrides the configured path', () => {
    expect(resolveKeylogPath({ PQGATE_KEYLOG: '/tmp/a' }, '/tmp/b')).toBe('/tmp/a');
    expect(resolveKeylogPath({}, '/tmp/b')).toBe('/tmp/b');
    expect(resolveKeylogPath({ PQGATE_KEYLOG: '' }, undefined)).toBeUndefined();
  });

  it('appends records to PATH / PATH.esp_sa and tightens an existing file to 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqgate-keylog-'));
    try {
      const p = join(dir, 'k');
      writeFileSync(p, 'old,record\n');
      chmodSync(p, 0o644);
      const w = new KeylogWriter(p);
      w.write({ kind: 'keylog', table: 'ikev2_decryption_table', line: 'a,b' });
      w.write({ kind: 'keylog', table: 'esp_sa', line: '"IPv4","1","2"' });
      w.write({ kind: 'keylog', table: 'ikev2_decryption_table', line: 'c,d\r\n' });
      w.close();
      w.write({ kind: 'keylog', table: 'ikev2_decryption_table', line: 'after,close' });
      expect(readFileSync(p, 'utf8')).toBe('old,record\na,b\nc,d\n');
      expect(readFileSync(p + '.esp_sa', 'utf8')).toBe('"IPv4","1","2"\n');
      expect(statSync(p).mode & 0o777).toBe(0o600);
      expect(statSync(p + '.esp_sa').mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('status rendering', () => {
  it('labels and durations', () => {
    expect(pqLabel('ML_KEM_1024')).toBe('ML-KEM-1024');
    expect(pqLabel(null)).toBe('none');
    expect(formatDuration(59_999)).toBe('59s');
    expect(formatDuration(61_000)).toBe('1m1s');
    expect(formatDuration(3_600_000 * 25)).toBe('1d1h');
  });

  it('classical SA with CBC+HMAC: INTEG shown, post-quantum none, IPv6 endpoints bracketed', () => {
    const s = sampleStatus('legacy', { address: '2001:db8::1', port: 500 }, { address: '2001:db8::2', port: 500 });
    s.encr = 'AES_CBC_256';
    s.integ = 'HMAC_SHA2_256_128';
    s.keyExchanges = ['ECP_384'];
    s.postQuantum = null;
    s.children = [];
    const out = formatStatus([s], { now: 61_000 + 1000 });
    expect(out).toContain('legacy #1: ESTABLISHED, initiator, 1m1s');
    expect(out).toContain('[2001:db8::1]:500 -> [2001:db8::2]:500');
    expect(out).toContain('IKE: AES_CBC_256/PRF_HMAC_SHA2_384/HMAC_SHA2_256_128');
    expect(out).toContain('key exchanges: ECP_384');
    expect(out).toContain('post-quantum: none');
    expect(formatStatus([])).toBe('no IKE SAs\n');
  });
});
