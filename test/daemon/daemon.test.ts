import { describe, it, expect, afterEach, beforeEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Daemon } from '../../firmware/daemon.js';
import { main, type CliIo } from '../../firmware/cli.js';
import { parseDaemonConfig, loadConfigFile } from '../../firmware/config/schema.js';
import { RecordingDataPlane } from '../../firmware/dataplane/recording.js';
import { Logger } from '../../firmware/log.js';
import { addNonEspMarker } from '../../firmware/net/natt.js';
import { systemClock } from '../../firmware/util/clock.js';
import type { Endpoint, SaSpec, PolicySpec } from '../../firmware/dataplane/types.js';
import type { Action } from '../../firmware/ikev2/engine-types.js';
import { StubEngine, sampleStatus } from './helpers/stub-engine.js';

const PSK = 'daemon-test-psk-0123456789';
let dir: string;
let daemons: Daemon[] = [];
let peers: Socket[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pqgate-daemon-'));
});
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('test end');
  for (const p of peers.splice(0)) p.close();
  rmSync(dir, { recursive: true, force: true });
});

function configDoc(extra: object = {}): any {
  return {
    listen: ['127.0.0.1'],
    ike_port: 0,
    natt_port: 0,
    control_socket: join(dir, 'run', 'ctl.sock'),
    log_level: 'debug',
    tunnels: [
      { name: 'cf1', local_addr: '127.0.0.1', remote_addr: '127.0.0.1', remote_port: 9, local_id: 'fqdn:branch.example', psk: PSK },
      { name: 'rw', remote_addr: '%any', local_id: '@gw.example', psk: PSK + 'x' },
    ],
    ...extra,
  };
}

interface Harness {
  d: Daemon;
  engine: StubEngine;
  dp: RecordingDataPlane;
  logs: string[];
  ike: Endpoint;
  natt: Endpoint;
  configPath: string;
  io: CliIo & { outText: () => string; errText: () => string; reset: () => void };
}

async function startDaemon(doc: any = configDoc(), env: NodeJS.ProcessEnv = {}): Promise<Harness> {
  const configPath = join(dir, 'pqgate.json');
  writeFileSync(configPath, JSON.stringify(doc), { mode: 0o600 });
  const config = loadConfigFile(configPath);
  let engine!: StubEngine;
  const dp = new RecordingDataPlane();
  const logs: string[] = [];
  const d = await Daemon.start({
    config,
    configPath,
    logger: new Logger({ level: 'trace', sink: (l) => logs.push(l) }),
    engineFactory: ({ clock }) => (engine = new StubEngine(clock)),
    dataPlane: dp,
    env,
  });
  daemons.push(d);
  const eps = (d as any).transport.endpoints('ike') as Endpoint[];
  const natts = (d as any).transport.endpoints('natt') as Endpoint[];
  let out = '';
  let err = '';
  const io = {
    out: (s: string) => void (out += s),
    err: (s: string) => void (err += s),
    env: { PQGATE_SOCKET: config.controlSocket },
    outText: () => out,
    errText: () => err,
    reset: () => {
      out = '';
      err = '';
    },
  };
  return { d, engine, dp, logs, ike: eps[0]!, natt: natts[0]!, configPath, io };
}

async function peer(): Promise<{ s: Socket; ep: Endpoint; next: () => Promise<Buffer> }> {
  const s = createSocket('udp4');
  peers.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const q: Buffer[] = [];
  const waiters: ((b: Buffer) => void)[] = [];
  s.on('message', (m) => {
    const w = waiters.shift();
    if (w) w(m);
    else q.push(m);
  });
  return { s, ep: { address: '127.0.0.1', port: s.address().port }, next: () => (q.length ? Promise.resolve(q.shift()!) : new Promise((r) => waiters.push(r))) };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await wait(5);
  }
}

function sa(dir: 'in' | 'out', spi: number, src: Endpoint, dst: Endpoint): SaSpec {
  return {
    spi,
    direction: dir,
    src,
    dst,
    encap: true,
    encrId: 20,
    encrKeyBits: 256,
    encrKey: new Uint8Array(36).fill(0xaa),
    integId: 0,
    integKey: new Uint8Array(0),
    esn: false,
    replayWindow: 0,
    reqid: 1,
    ifId: 1,
    tunnel: 'cf1',
  };
}

describe('daemon wiring (stub engine, real sockets)', () => {
  it('loads the configured tunnels into the engine and opens an owner-only control socket', async () => {
    const h = await startDaemon();
    expect(h.engine.calls[0]).toEqual({ fn: 'loadConfig', tunnels: ['cf1', 'rw'] });
    // local_addr stays as configured; the %any tunnel has no source address to probe
    expect(h.engine.tunnels.map((t) => t.localAddr)).toEqual(['127.0.0.1', undefined]);
    const sock = h.d.config.controlSocket;
    expect(statSync(sock).mode & 0o777).toBe(0o600);
  });

  it('fills a missing local_addr from the route to the peer', async () => {
    const doc = configDoc();
    delete doc.tunnels[0].local_addr;
    const h = await startDaemon(doc);
    expect(h.engine.tunnels[0]!.localAddr).toBe('127.0.0.1');
  });

  it('hands received datagrams to engine.receive with the right endpoints, marker stripped', async () => {
    const h = await startDaemon();
    const p = await peer();
    const msg = new Uint8Array(36).fill(0x21);
    p.s.send(msg, h.ike.port, h.ike.address);
    p.s.send(addNonEspMarker(msg), h.natt.port, h.natt.address);
    p.s.send(new Uint8Array([0xff]), h.natt.port, h.natt.address); // keepalive: not for the engine
    await until(() => h.engine.calls.filter((c) => c.fn === 'receive').length === 2);
    await wait(30);
    const rx = h.engine.calls.filter((c) => c.fn === 'receive');
    expect(rx).toEqual([
      { fn: 'receive', data: [...msg], from: p.ep, to: h.ike },
      { fn: 'receive', data: [...msg], from: p.ep, to: h.natt },
    ]);
  });

  it('carries out send actions, adding the marker from the NAT-T port', async () => {
    const h = await startDaemon();
    const p = await peer();
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    h.engine.next.command.push([
      { kind: 'send', from: h.ike, to: p.ep, data },
      { kind: 'send', from: h.natt, to: p.ep, data },
    ]);
    h.d.command({ kind: 'up', tunnel: 'cf1' });
    expect([...(await p.next())]).toEqual([...data]);
    expect([...(await p.next())]).toEqual([0, 0, 0, 0, ...data]);
  });

  it('drives engine timers with one re-armed setTimeout', async () => {
    const h = await startDaemon();
    const t0 = systemClock.now();
    h.engine.timer = t0 + 40;
    h.engine.next.tick.push([{ kind: 'event', level: 'info', tunnel: 'cf1', message: 'retransmit 1' }]);
    h.d.command({ kind: 'dpd', tunnel: 'cf1' }); // any engine call re-arms
    await until(() => h.engine.calls.some((c) => c.fn === 'tick'));
    const tick = h.engine.calls.find((c) => c.fn === 'tick') as { at: number };
    expect(tick.at).toBeGreaterThanOrEqual(t0 + 40);
    expect(h.logs.some((l) => /info  \[cf1\] retransmit 1/.test(l))).toBe(true);
    // no timer pending: no further ticks
    await wait(80);
    expect(h.engine.calls.filter((c) => c.fn === 'tick')).toHaveLength(1);
  });

  it('keeps an earlier timer when the deadline moves later, and ticks only once it is due', async () => {
    const h = await startDaemon();
    const t0 = systemClock.now();
    h.engine.timer = t0 + 40;
    h.d.command({ kind: 'dpd', tunnel: 'cf1' }); // arms for t0 + 40
    h.engine.timer = t0 + 140; // e.g. a response arrived and the retransmit moved on
    h.d.command({ kind: 'dpd', tunnel: 'cf1' }); // the t0 + 40 timer is kept, not replaced
    await until(() => h.engine.calls.some((c) => c.fn === 'tick'));
    const ticks = h.engine.calls.filter((c) => c.fn === 'tick') as { at: number }[];
    expect(ticks).toHaveLength(1);
    expect(ticks[0]!.at).toBeGreaterThanOrEqual(t0 + 140); // the early firing only looked again
    // A deadline moved earlier replaces a later timer.
    const t1 = systemClock.now();
    h.engine.timer = t1 + 1000;
    h.d.command({ kind: 'dpd', tunnel: 'cf1' });
    h.engine.timer = t1 + 30;
    h.d.command({ kind: 'dpd', tunnel: 'cf1' });
    await until(() => h.engine.calls.filter((c) => c.fn === 'tick').length === 2, 500);
    const second = (h.engine.calls.filter((c) => c.fn === 'tick') as { at: number }[])[1]!;
    expect(second.at).toBeGreaterThanOrEqual(t1 + 30);
    expect(second.at).toBeLessThan(t1 + 1000);
  });

  it('installs and deletes Child SAs in the data plane, in order', async () => {
    const h = await startDaemon();
    const a: Endpoint = { address: '127.0.0.1', port: 4500 };
    const b: Endpoint = { address: '198.51.100.9', port: 4500 };
    const pol: PolicySpec = { reqid: 1, direction: 'out', local: [], remote: [], ifId: 1, tunnel: 'cf1', src: a, dst: b };
    const actions: Action[] = [
      { kind: 'install-child', tunnel: 'cf1', inbound: sa('in', 0xc1000001, b, a), outbound: sa('out', 0xc2000002, a, b), policies: [pol] },
      { kind: 'delete-child', tunnel: 'cf1', inboundSpi: 0xc1000001, outboundSpi: 0xc2000002, policies: [pol] },
    ];
    h.engine.next.command.push(actions);
    h.d.command({ kind: 'up', tunnel: 'cf1' });
    await until(() => h.dp.ops.length === 6);
    expect(h.dp.ops.map((o) => o.op)).toEqual(['addSa', 'addSa', 'addPolicy', 'deletePolicy', 'deleteSa', 'deleteSa']);
    expect(h.dp.installedSas()).toEqual([]);
    // key bytes never kept by the recorder
    expect(JSON.stringify(h.dp.ops)).not.toContain('170,170');
  });

  it('turns data-plane expiries into engine commands', async () => {
    const h = await startDaemon();
    const a: Endpoint = { address: '127.0.0.1', port: 4500 };
    const b: Endpoint = { address: '198.51.100.9', port: 4500 };
    h.engine.next.command.push([{ kind: 'install-child', tunnel: 'cf1', inbound: sa('in', 0x1111, b, a), outbound: sa('out', 0x2222, a, b), policies: [] }]);
    h.d.command({ kind: 'up', tunnel: 'cf1' });
    await until(() => h.dp.ops.length === 2);
    h.dp.emit({ kind: 'expire', spi: 0x2222, direction: 'out', hard: false });
    h.dp.emit({ kind: 'expire', spi: 0x9999, direction: 'out', hard: true }); // unknown SPI: ignored
    expect(h.engine.calls.at(-1)).toEqual({ fn: 'command', cmd: { kind: 'rekey-child', tunnel: 'cf1' } });
  });

  it('writes key log lines to PATH and PATH.esp_sa, mode 0600 (PQGATE_KEYLOG wins)', async () => {
    const kl = join(dir, 'keys', 'ikev2_decryption_table');
    rmSync(join(dir, 'keys'), { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'keys'));
    const h = await startDaemon(configDoc({ keylog: join(dir, 'ignored') }), { PQGATE_KEYLOG: kl });
    h.engine.next.command.push([
      { kind: 'keylog', table: 'ikev2_decryption_table', line: '0123456789abcdef,fedcba9876543210,aa,bb,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"' },
      { kind: 'keylog', table: 'esp_sa', line: '"IPv4","127.0.0.1","198.51.100.9","0xc2000002","AES-GCM with 16 octet ICV [RFC4106]","0xaa","NULL",""\nINJECTED' },
    ]);
    h.d.command({ kind: 'up', tunnel: 'cf1' });
    expect(readFileSync(kl, 'utf8')).toBe('0123456789abcdef,fedcba9876543210,aa,bb,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"\n');
    const esp = readFileSync(kl + '.esp_sa', 'utf8');
    expect(esp.split('\n')).toHaveLength(2); // one record, newline-terminated: the embedded newline was removed
    expect(statSync(kl).mode & 0o777).toBe(0o600);
    expect(statSync(kl + '.esp_sa').mode & 0o777).toBe(0o600);
    expect(existsSync(join(dir, 'ignored'))).toBe(false);
    expect(h.logs.some((l) => l.includes('key log enabled'))).toBe(true);
  });

  it('keeps running when the engine throws', async () => {
    const h = await startDaemon();
    const p = await peer();
    h.engine.throwOnReceive = true;
    p.s.send(new Uint8Array(30), h.ike.port, h.ike.address);
    await until(() => h.d.stats.engineErrors === 1);
    h.engine.throwOnReceive = false;
    p.s.send(new Uint8Array(31), h.ike.port, h.ike.address);
    await until(() => h.engine.calls.filter((c) => c.fn === 'receive').length === 2);
    expect(h.logs.some((l) => /engine error \(bug\)/.test(l))).toBe(true);
  });

  it('never logs the PSK', async () => {
    const h = await startDaemon();
    await main(['status'], h.io);
    await h.d.stop();
    expect(h.logs.join('\n')).not.toContain(PSK);
  });
});

describe('CLI against the daemon (in process)', () => {
  it('status --json prints the engine status; status renders it for humans', async () => {
    const h = await startDaemon();
    h.engine.statusValue = [sampleStatus('cf1', { address: '127.0.0.1', port: 500 }, { address: '192.0.2.2', port: 4500 })];
    expect(await main(['status', '--json'], h.io)).toBe(0);
    expect(JSON.parse(h.io.outText())).toEqual(h.engine.statusValue);
    h.io.reset();
    expect(await main(['status'], h.io)).toBe(0);
    const out = h.io.outText();
    expect(out).toContain('cf1 #1: ESTABLISHED, initiator');
    expect(out).toContain('127.0.0.1:500 -> 192.0.2.2:4500');
    expect(out).toContain('SPIs: 0123456789abcdef_i fedcba9876543210_r');
    expect(out).toContain('IKE: AES_GCM_16_256/PRF_HMAC_SHA2_384');
    expect(out).toContain('key exchanges: CURVE_25519 + ML_KEM_768');
    expect(out).toContain('post-quantum: ML-KEM-768');
    expect(out).toContain('fragmentation: yes, NAT: local no / remote yes, UDP encap: yes');
    expect(out).toMatch(/child cf1 #1: INSTALLED, \S+, ESP in UDP AES_GCM_16_256/);
    expect(out).toContain('SPIs c1000001(in) c2000002(out)');
    expect(out).toContain('10.1.0.0/24 === 0.0.0.0/0');
    expect(out).toContain('configured tunnels without an IKE SA: rw');
  });

  it('up and down reach the engine; unknown tunnels and bad usage are errors', async () => {
    const h = await startDaemon();
    expect(await main(['up', 'cf1'], h.io)).toBe(0);
    expect(await main(['down', 'cf1'], h.io)).toBe(0);
    expect(h.engine.calls.filter((c) => c.fn === 'command').map((c) => (c as any).cmd)).toEqual([
      { kind: 'up', tunnel: 'cf1' },
      { kind: 'down', tunnel: 'cf1' },
    ]);
    expect(h.io.outText()).toBe('initiating cf1\ndeleting cf1\n');
    h.io.reset();
    expect(await main(['up', 'nope'], h.io)).toBe(1);
    expect(h.io.errText()).toMatch(/no tunnel named 'nope' \(configured: cf1, rw\)/);
    expect(await main(['up'], h.io)).toBe(2);
    expect(await main(['up', 'a', 'b'], h.io)).toBe(2);
    expect(await main(['status', '--frob'], h.io)).toBe(2);
    expect(await main(['frobnicate'], h.io)).toBe(2);
    expect(await main([], h.io)).toBe(2);
    expect(await main(['--help'], h.io)).toBe(0);
  });

  it('reload re-reads the file; an invalid file changes nothing', async () => {
    const h = await startDaemon();
    const doc = configDoc();
    doc.tunnels.push({ name: 'new1', remote_addr: '%any', local_id: '@n.example', psk: PSK + 'n' });
    doc.log_level = 'warn';
    writeFileSync(h.configPath, JSON.stringify(doc));
    expect(await main(['reload'], h.io)).toBe(0);
    expect(h.io.outText()).toContain('reloaded: 3 tunnels (cf1, rw, new1)');
    expect(h.engine.calls.filter((c) => c.fn === 'loadConfig').at(-1)).toEqual({ fn: 'loadConfig', tunnels: ['cf1', 'rw', 'new1'] });
    expect(h.d.log.getLevel()).toBe('warn');
    // restart-only field
    writeFileSync(h.configPath, JSON.stringify({ ...doc, listen: ['127.0.0.1', '127.0.0.2'] }));
    h.io.reset();
    expect(await main(['reload'], h.io)).toBe(0);
    expect(h.io.outText()).toContain('restart needed for: listen');
    // invalid
    doc.tunnels[0].proposals = ['aes999'];
    writeFileSync(h.configPath, JSON.stringify(doc));
    h.io.reset();
    const loads = h.engine.calls.filter((c) => c.fn === 'loadConfig').length;
    expect(await main(['reload'], h.io)).toBe(1);
    expect(h.io.errText()).toMatch(/tunnels\[0\]\.proposals\[0\]/);
    expect(h.io.errText()).not.toContain(PSK);
    expect(h.engine.calls.filter((c) => c.fn === 'loadConfig')).toHaveLength(loads);
    expect(await main(['up', 'new1'], h.io)).toBe(0);
  });

  it('version reports the daemon', async () => {
    const h = await startDaemon();
    expect(await main(['version', '--json'], h.io)).toBe(0);
    const v = JSON.parse(h.io.outText());
    expect(v.cli).toMatch(/^\d+\.\d+\.\d+/);
    expect(v.daemon).toMatchObject({ name: 'pqgate', version: v.cli, dataPlane: 'recording', tunnels: ['cf1', 'rw'] });
  });

  it('client commands fail cleanly without a daemon', async () => {
    let err = '';
    const io: CliIo = { out: () => {}, err: (s) => void (err += s), env: {} };
    expect(await main(['status', '--socket', join(dir, 'none.sock')], io)).toBe(1);
    expect(err).toMatch(/cannot connect .*none\.sock.*ENOENT/);
  });

  it('check-config validates files and prints every error', async () => {
    let out = '';
    let err = '';
    const io: CliIo = { out: (s) => void (out += s), err: (s) => void (err += s), env: {} };
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(configDoc()), { mode: 0o600 });
    expect(await main(['check-config', good], io)).toBe(0);
    expect(out).toContain('OK, 2 tunnels (cf1, rw)');
    const bad = join(dir, 'bad.json');
    const doc = configDoc();
    doc.tunnels[0].mode = 'x';
    doc.tunnels[1].psk = 'short';
    writeFileSync(bad, JSON.stringify(doc), { mode: 0o600 });
    expect(await main(['check-config', bad], io)).toBe(1);
    expect(err).toContain('tunnels[0].mode');
    expect(err).toContain('tunnels[1].psk');
    out = '';
    expect(await main(['check-config', '--json', bad], io)).toBe(1);
    expect(JSON.parse(out).errors.map((e: any) => e.path)).toEqual(['tunnels[0].mode', 'tunnels[1].psk']);
    expect(await main(['check-config'], io)).toBe(2);
  });
});

describe('shutdown', () => {
  it('downs every tunnel with an SA, flushes the DELETEs, closes sockets and removes the control socket', async () => {
    const h = await startDaemon();
    const p = await peer();
    h.engine.statusValue = [sampleStatus('cf1', h.ike, p.ep), { ...sampleStatus('cf1', h.ike, p.ep), id: 2 }];
    const del = new Uint8Array([0xde, 0x1e, 0x7e, 0x00]);
    h.engine.next.command.push([{ kind: 'send', from: h.ike, to: p.ep, data: del }]);
    const sock = h.d.config.controlSocket;
    expect(existsSync(sock)).toBe(true);
    await h.d.stop('test');
    daemons = daemons.filter((d) => d !== h.d);
    expect(h.engine.calls.filter((c) => c.fn === 'command').map((c) => (c as any).cmd)).toEqual([{ kind: 'down', tunnel: 'cf1' }]);
    expect([...(await p.next())]).toEqual([...del]);
    expect(existsSync(sock)).toBe(false);
    // the ports are free again
    const s = createSocket('udp4');
    await new Promise<void>((r, j) => {
      s.once('error', j);
      s.bind(h.ike.port, '127.0.0.1', () => r());
    });
    s.close();
  });

  it('`pqgate daemon` stops on SIGTERM and exits 0 (real engine, in process)', async () => {
    const doc = configDoc();
    doc.tunnels = [{ name: 'rw', remote_addr: '%any', local_id: '@gw.example', psk: PSK }];
    const f = join(dir, 'd.json');
    writeFileSync(f, JSON.stringify(doc), { mode: 0o600 });
    const signals = new EventEmitter();
    let out = '';
    const io: CliIo = { out: (s) => void (out += s), err: (s) => void (out += s), env: {}, signals: signals as any };
    const done = main(['daemon', '--config', f, '--log-format', 'json'], io);
    const sock = parseDaemonConfig(doc).controlSocket;
    await until(() => existsSync(sock), 10_000);
    let o2 = '';
    expect(await main(['status', '--json', '--socket', sock], { out: (s) => void (o2 += s), err: () => {}, env: {} })).toBe(0);
    expect(JSON.parse(o2)).toEqual([]);
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await done).toBe(0);
    expect(existsSync(sock)).toBe(false);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.msg === 'SIGTERM received')).toBe(true);
    expect(lines.at(-1).msg).toBe('stopped');
    expect(signals.listenerCount('SIGTERM')).toBe(0);
  });

  it('`pqgate daemon` reports a bad config and a usage error', async () => {
    let err = '';
    const io: CliIo = { out: () => {}, err: (s) => void (err += s), env: {} };
    const f = join(dir, 'bad.json');
    writeFileSync(f, '{"tunnels": 3}');
    expect(await main(['daemon', '--config', f], io)).toBe(1);
    expect(err).toContain('tunnels: must be an array');
    expect(await main(['daemon'], io)).toBe(2);
    expect(await main(['daemon', '--config', f, '--default-config'], io)).toBe(2);
    expect(await main(['daemon', '--default-config', '--log-level', 'loud'], io)).toBe(2);
  });
});
