/**
 * The appliance's pieces on their own: syslog through logger(1) in RFC 5424
 * form (a real unix datagram socket, bound by python3 since Node cannot),
 * the event log (batching, bounds, filters), failure reasons and monotonic
 * counters for the metrics, key capture (latest record per SA, wiped when
 * off), and the reply guard that withholds a reply carrying a PSK.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SyslogSink, syslogLine, syslogUnavailable } from '../../firmware/appliance/syslog.js';
import { Logger } from '../../firmware/log.js';
import { MemoryEventLog, StoreEventLog } from '../../firmware/appliance/events.js';
import { Telemetry, failureReason } from '../../firmware/appliance/telemetry.js';
import { KeyCapture } from '../../firmware/appliance/keys.js';
import { guardSecrets } from '../../firmware/appliance/guard.js';
import { imageSlot, groupId } from '../../firmware/appliance/system.js';
import { ConfigStore } from '../../firmware/store/store.js';
import { parseDaemonConfig } from '../../firmware/config/schema.js';
import { formatEspSaLine, formatIkev2DecryptionTableLine } from '../../firmware/ikev2/sa/wireshark.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

let dir: string;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const canSyslogTest = spawnSync('python3', ['-c', 'import socket'], { timeout: 5000 }).status === 0 && /--prio-prefix/.test(spawnSync('logger', ['--help'], { encoding: 'utf8' }).stdout ?? '');

describe('syslog (RFC 5424 through logger(1))', () => {
  it('formats <PRI> with facility daemon and the record text', () => {
    expect(syslogLine({ level: 'error', msg: 'IKE SA failed', tunnel: 'cf1', fields: { ikeSa: 'ab_cd' } })).toBe('<27>[cf1] IKE SA failed ikeSa=ab_cd\n');
    expect(syslogLine({ level: 'info', msg: 'two\nlines', fields: {} })).toBe('<30>two lines\n');
    expect(syslogLine({ level: 'trace', msg: 'x', fields: {} })).toBe('<31>x\n');
    expect(syslogUnavailable({ socket: '/nonexistent/log' })).toMatch(/not a socket/);
  });

  it.skipIf(!canSyslogTest)('sends every logged record as one RFC 5424 datagram, secrets redacted', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pqg-syslog-'));
    const sock = join(dir, 'log');
    const outFile = join(dir, 'got.txt');
    // A syslog daemon stand-in: a unix datagram socket writing what it receives, one datagram per line.
    const py: ChildProcess = spawn('python3', ['-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
f = open(sys.argv[2], 'a')
while True:
    f.write(s.recv(65536).decode() + '\\n'); f.flush()
`, sock, outFile], { stdio: 'ignore' });
    cleanups.push(() => py.kill('SIGKILL'));
    const t0 = Date.now();
    while (!existsSync(sock) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(syslogUnavailable({ socket: sock })).toBeUndefined();
    const sink = new SyslogSink({ socket: sock });
    const lines: string[] = [];
    const log = new Logger({ level: 'info', sink: (l) => lines.push(l), tap: (r) => sink.write(r) });
    log.info('daemon started', { tunnels: 2 });
    log.child({ tunnel: 'cf1' }).error('IKE SA failed: peer answered NO_PROPOSAL_CHOSEN', { psk: 'never-to-be-seen-0123' });
    log.debug('not at this level');
    await sink.close();
    const got = await (async () => {
      for (let i = 0; i < 100; i++) {
        const t = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
        if (t.split('\n').filter(Boolean).length >= 2) return t;
        await new Promise((r) => setTimeout(r, 20));
      }
      return readFileSync(outFile, 'utf8');
    })();
    const rec = got.split('\n').filter(Boolean);
    expect(rec).toHaveLength(2);
    // RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
    expect(rec[0]).toMatch(new RegExp(`^<30>1 \\d{4}-\\d\\d-\\d\\dT[\\d:.]+[+-]\\d\\d:\\d\\d \\S+ pqgate ${process.pid} - (\\[.*\\]|-) daemon started tunnels=2$`));
    expect(rec[1]).toMatch(/^<27>1 .* pqgate \d+ - .*\[cf1\] IKE SA failed: peer answered NO_PROPOSAL_CHOSEN psk="\[redacted\]"$/);
    expect(got).not.toContain('never-to-be-seen');
    expect(lines).toHaveLength(2); // stdout got the same records
  });
});

describe('event log', () => {
  it('memory ring: bounded, newest first, filters by level, tunnel, before/after id', () => {
    const ev = new MemoryEventLog(5, () => 1000);
    for (let i = 1; i <= 7; i++) ev.append({ level: i % 3 === 0 ? 'error' : 'info', tunnel: i % 2 ? 'a' : 'b', message: `m${i}\nsecond line` });
    const all = ev.list({});
    expect(all.map((e) => e.id)).toEqual([7, 6, 5, 4, 3]);
    expect(all[0]!.message).toBe('m7 second line');
    expect(ev.list({ level: 'error' }).map((e) => e.id)).toEqual([6, 3]);
    expect(ev.list({ tunnel: 'a' }).map((e) => e.id)).toEqual([7, 5, 3]);
    expect(ev.list({ afterId: 5 }).map((e) => e.id)).toEqual([7, 6]);
    expect(ev.list({ beforeId: 5, limit: 1 }).map((e) => e.id)).toEqual([4]);
  });

  it('store: batched into one transaction per flush, read-your-writes, overflow reported', () => {
    dir = mkdtempSync(join(tmpdir(), 'pqg-ev-'));
    const store = ConfigStore.open(join(dir, 'db', 's.db'));
    cleanups.push(() => store.close());
    const ev = new StoreEventLog(store);
    ev.append({ level: 'info', tunnel: 'a', message: 'one' });
    ev.append({ level: 'warn', message: 'two' });
    expect(store.events({}).length).toBe(0); // buffered
    expect(ev.list({}).map((e) => e.message)).toEqual(['two', 'one']); // a read flushes first
    for (let i = 0; i < 2100; i++) ev.append({ level: 'debug', message: `burst ${i}` });
    ev.flush();
    const rows = store.events({ limit: 3000 });
    expect(rows.some((r) => r.message === '100 events dropped (more than 2000 in 200 ms)')).toBe(true);
    expect(rows[0]!.message).toBe('burst 2099');
    expect(ev.list({ level: 'warn' }).map((e) => e.message)).toEqual(['100 events dropped (more than 2000 in 200 ms)', 'two']);
    expect(ev.list({ tunnel: 'a' }).map((e) => e.message)).toEqual(['one']);
  });
});

describe('telemetry', () => {
  it('failure reasons are bounded labels', () => {
    expect(failureReason('peer answered NO_PROPOSAL_CHOSEN')).toBe('NO_PROPOSAL_CHOSEN');
    expect(failureReason('processing IKE_AUTH response failed: peer answered AUTHENTICATION_FAILED')).toBe('AUTHENTICATION_FAILED');
    expect(failureReason("authentication of 'x' failed (no tunnel for this identity)")).toBe('AUTHENTICATION_FAILED');
    expect(failureReason('peer not responding (IKE_SA_INIT)')).toBe('timeout');
    expect(failureReason('negotiation timed out')).toBe('timeout');
    expect(failureReason('peer answered TS_UNACCEPTABLE in IKE_INTERMEDIATE')).toBe('TS_UNACCEPTABLE');
    expect(failureReason('something odd')).toBe('other');
  });

  it('counts handshake failures once, not failures of established SAs; byte counters never decrease across a delete', () => {
    const t = new Telemetry(() => 5);
    t.onEvent({ kind: 'event', level: 'error', tunnel: 'a', ikeSa: 'x_0', message: 'IKE SA failed: peer answered NO_PROPOSAL_CHOSEN' });
    t.onEvent({ kind: 'event', level: 'info', tunnel: 'a', ikeSa: 'x_0', message: 'IKE SA failed: peer answered NO_PROPOSAL_CHOSEN' });
    t.onEvent({ kind: 'event', level: 'info', tunnel: 'b', ikeSa: 'y_1', message: "IKE SA established with 'p' (2 key exchanges)" });
    t.onEvent({ kind: 'event', level: 'error', tunnel: 'b', ikeSa: 'y_1', message: 'IKE SA failed: peer not responding (INFORMATIONAL)' });
    t.onEvent({ kind: 'event', level: 'info', message: 'no acceptable IKE proposal from 198.51.100.1, sending NO_PROPOSAL_CHOSEN' });
    expect(t.handshakeFailures).toEqual({ NO_PROPOSAL_CHOSEN: 2 });
    expect(t.lastError('a')).toBe('peer answered NO_PROPOSAL_CHOSEN');
    const st = (bytes: number): IkeSaStatus[] => [{ tunnel: 'b', children: [{ spiIn: '0000abcd', bytesIn: bytes, bytesOut: 2 * bytes, packetsIn: 1, packetsOut: 2 }] } as unknown as IkeSaStatus];
    expect(t.counters(st(100), ['b']).childBytes).toEqual({ b: { in: 100, out: 200 } });
    const del = { kind: 'delete-child' as const, tunnel: 'b', inboundSpi: 0xabcd, outboundSpi: 1, policies: [], rekeyed: true };
    t.onDeleteChild(del);
    // Between the engine's delete and the data plane's removal: the last snapshot's numbers stand.
    expect(t.counters([], ['b']).childBytes).toEqual({ b: { in: 100, out: 200 } });
    t.onChildRetired(del, { bytes: 150, packets: 3, replayDrops: 0, authFailures: 0, lastUsed: 0 }, { bytes: 260, packets: 4, replayDrops: 0, authFailures: 0, lastUsed: 0 });
    // A stale snapshot still listing the deleted SA does not count it twice.
    expect(t.counters(st(150), ['b'])).toMatchObject({ childBytes: { b: { in: 150, out: 260 } }, childPackets: { b: { in: 3, out: 4 } }, rekeys: { ike: 0, child: 1 } });
  });
});

describe('key capture', () => {
  const ikeLine = (spiI: number, spiR: number) => formatIkev2DecryptionTableLine({ spiI: new Uint8Array(8).fill(spiI), spiR: new Uint8Array(8).fill(spiR), skEi: new Uint8Array(36).fill(1), skEr: new Uint8Array(36).fill(2), encrId: 20, encrKeyBits: 256, skAi: new Uint8Array(0), skAr: new Uint8Array(0), integId: 0 });
  const espLine = (spi: number) => formatEspSaLine({ spi, src: '192.0.2.1', dst: '192.0.2.2', encrId: 20, encrKeyBits: 256, encrKey: new Uint8Array(36).fill(3), integId: 0, integKey: new Uint8Array(0) });
  const status = (spiI: number, spiR: number) => [{ spiI: Buffer.alloc(8, spiI).toString('hex'), spiR: Buffer.alloc(8, spiR).toString('hex') } as IkeSaStatus];

  it('off: nothing kept (the key log getter is not even read); on: the latest record per SA; deletes and off wipe', () => {
    const k = new KeyCapture(false, () => 42);
    let read = 0;
    k.onKeylog({ kind: 'keylog', table: 'esp_sa', get line() { read++; return espLine(1); } });
    expect(read).toBe(0);
    expect(k.counts()).toEqual({ ike: 0, esp: 0 });
    k.setEnabled(true);
    expect(k.enabledSince).toBe(42);
    k.onKeylog({ kind: 'keylog', table: 'ikev2_decryption_table', line: ikeLine(0x11, 0x22) });
    k.onKeylog({ kind: 'keylog', table: 'ikev2_decryption_table', line: ikeLine(0x33, 0x44) });
    k.onKeylog({ kind: 'keylog', table: 'esp_sa', line: espLine(0xc0000001) });
    k.onKeylog({ kind: 'keylog', table: 'esp_sa', line: espLine(0xc0000002) });
    expect(k.counts()).toEqual({ ike: 2, esp: 2 });
    k.onDeleteChild({ kind: 'delete-child', tunnel: 't', inboundSpi: 0xc0000001, outboundSpi: 0x99, policies: [] });
    k.onEvent({ kind: 'event', level: 'info', ikeSa: `${'33'.repeat(8)}_${'44'.repeat(8)}`, message: 'IKE SA closed: rekeyed' });
    const out = k.export(status(0x11, 0x22));
    expect(out.ikev2_decryption_table).toBe(ikeLine(0x11, 0x22) + '\n');
    expect(out.esp_sa).toBe(espLine(0xc0000002) + '\n');
    expect(k.export(status(0x55, 0x66)).ikev2_decryption_table).toBe(''); // pruned: not in status any more
    k.setEnabled(false);
    expect(k.counts()).toEqual({ ike: 0, esp: 0 });
    expect(k.enabledSince).toBeNull();
  });
});

describe('reply guard and system helpers', () => {
  it('withholds a reply that carries a running PSK (text or hex), except the exempt methods', async () => {
    const cfg = parseDaemonConfig({ listen: ['192.0.2.1'], control_socket: '/x/c.sock', tunnels: [{ name: 't', remote_addr: '192.0.2.2', local_addr: '192.0.2.1', psk: 'guarded-psk-0123456789' }] });
    const logs: string[] = [];
    const m = guardSecrets(
      {
        leak: () => ({ doc: { psk: 'guarded-psk-0123456789' } }),
        leakHex: () => ({ x: Buffer.from('guarded-psk-0123456789').toString('hex').toUpperCase() }),
        fine: () => ({ psk: '<set>' }),
        'keys.export': () => ({ any: 'guarded-psk-0123456789' }),
        'config.export': () => ({ document: { psk: 'guarded-psk-0123456789' } }),
      },
      () => cfg.tunnels,
      new Logger({ sink: (l) => logs.push(l) }),
    );
    await expect(m.leak!({})).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    await expect(m.leakHex!({})).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    expect(await m.fine!({})).toEqual({ psk: '<set>' });
    expect(await m['keys.export']!({})).toBeTruthy();
    expect(await m['config.export']!({ includeSecrets: true })).toBeTruthy();
    await expect(m['config.export']!({})).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    expect(logs.join('\n')).not.toContain('guarded-psk');
  });

  it('recognises the appliance image by fw.slot and reads groups', () => {
    expect(imageSlot('console=ttyS0 fw.slot=b quiet')).toBe('b');
    expect(imageSlot('console=ttyS0 quiet')).toBeUndefined();
    expect(imageSlot('xfw.slot=a')).toBeUndefined();
    expect(groupId('pqgate-web', 'root:x:0:\npqgate-web:x:990:www\n')).toBe(990);
    expect(groupId('nope', 'root:x:0:\n')).toBeUndefined();
  });
});
