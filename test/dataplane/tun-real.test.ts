/**
 * The kernel TUN device through the pqtun addon, inside network namespaces
 * created for the test (addresses from 192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24 only). Needs root and /dev/net/tun; skipped otherwise.
 * Every namespace, device and child process is removed even on failure.
 */
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { KernelTun, findTunAddon, loadTunAddon } from '../../firmware/dataplane/tun/tun.js';
import { IpLinks } from '../../firmware/dataplane/links.js';
import { newFlow, parseFlow } from '../../firmware/dataplane/ip.js';
import { MemoryNet, gateway, installChild, udp, A_OUTER, B_OUTER, type ChildParams, type Gateway } from './helpers.js';

const root = process.getuid?.() === 0;
const haveTun = existsSync('/dev/net/tun');
const haveIp = (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const runnable = root && haveTun && haveIp;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  // Reverse order: devices and processes before the namespaces that hold them.
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch {
      /* keep cleaning */
    }
  }
});

/** Poll `cond` every 5 ms for up to `ms` (children in other namespaces take real time). */
async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tag = () => randomBytes(3).toString('hex');

function netns(): string {
  const ns = `pqdp-${process.pid}-${tag()}`;
  execFileSync('ip', ['netns', 'add', ns]);
  cleanups.push(() => execFileSync('ip', ['netns', 'del', ns]));
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** Run a node script inside a namespace; resolves with its stdout once it exits 0. */
function inNs(ns: string, script: string): { proc: ChildProcess; done: Promise<string>; output: () => string } {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  cleanups.push(() => {
    if (proc.exitCode === null && proc.pid) process.kill(proc.pid, 'SIGKILL');
  });
  const done = new Promise<string>((resolve, reject) => {
    proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
  });
  done.catch(() => {}); // a test that fails earlier never awaits it
  return { proc, done, output: () => out };
}

describe.skipIf(!runnable)('kernel TUN device (root, /dev/net/tun)', () => {
  beforeAll(() => {
    if (!findTunAddon()) execFileSync(process.execPath, ['native/build.mjs'], { stdio: 'inherit', timeout: 180_000 });
    loadTunAddon();
  }, 200_000);

  it('reads a datagram the namespace routes into the device and delivers the reply written to it', async () => {
    const ns = netns();
    const tun = KernelTun.open(`pqt${tag()}`);
    cleanups.push(() => tun.close());
    expect(tun.name).toMatch(/^pqt[0-9a-f]{6}$/);
    execFileSync('ip', ['link', 'set', 'dev', tun.name, 'netns', ns]);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', tun.name]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'dev', tun.name, 'up']);

    const seen: Uint8Array[] = [];
    tun.start((pkts, n) => {
      for (let i = 0; i < n; i++) seen.push(new Uint8Array(pkts[i]!)); // copy: buffers are reused after the callback
    });

    // The namespace side: send 20 datagrams to 192.0.2.2:7777 (routed into the TUN), wait for one reply.
    const child = inNs(
      ns,
      `const s = require('dgram').createSocket('udp4');
       s.bind(5555, '192.0.2.1', () => { for (let i = 0; i < 20; i++) s.send('ping' + i, 7777, '192.0.2.2'); });
       s.on('message', (m) => { console.log(m.toString()); process.exit(0); });
       setTimeout(() => process.exit(3), 8000);`,
    );
    const f = newFlow();
    const isPing = (p: Uint8Array) => parseFlow(p, f) && f.family === 4 && f.proto === 17 && f.dport === 7777;
    await waitFor(() => seen.filter(isPing).length === 20);
    const first = seen.find(isPing)!;
    expect(Buffer.from(first.subarray(28)).toString()).toBe('ping0');
    expect(tun.stats.rxPackets).toBeGreaterThanOrEqual(20);

    // A garbage "packet" the kernel refuses (EINVAL) must not stop the rest of the batch.
    const reply = udp('192.0.2.2', '192.0.2.1', 7777, 5555, Buffer.from('pong'));
    tun.write([new Uint8Array([0x00, 0x01, 0x02]), reply], 2);
    expect(tun.stats.writeErrors).toBe(1);
    expect((tun.lastError as { code?: string }).code).toBe('EINVAL');
    expect(await child.done).toBe('pong\n');
  }, 30_000);

  it('a device deleted under the reader stops the poll instead of spinning on it', async () => {
    const ns = netns();
    const tun = KernelTun.open(`pqt${tag()}`);
    cleanups.push(() => tun.close());
    execFileSync('ip', ['link', 'set', 'dev', tun.name, 'netns', ns]);
    tun.start(() => {});
    execFileSync('ip', ['-n', ns, 'link', 'del', 'dev', tun.name]);
    await waitFor(() => tun.stats.readErrors === 1);
    // Either the poll reports the error or the read does (EBADFD from a detached TUN fd).
    expect(['EBADFD', 'EBADF', 'EIO']).toContain((tun.lastError as { code?: string }).code);
    await new Promise((r) => setTimeout(r, 100));
    expect(tun.stats.readErrors).toBe(1);
  });

  it('open() errors carry errno codes', () => {
    expect(() => KernelTun.open('x'.repeat(16))).toThrow(/at most 15/);
    try {
      loadTunAddon().readBatch(987654, [Buffer.alloc(10)], new Int32Array(1));
      expect.fail('no throw');
    } catch (e) {
      expect((e as { code: string; errno: number }).code).toBe('EBADF');
      expect((e as { errno: number }).errno).toBe(9);
    }
  });

  it('two data planes on real TUN devices in two namespaces: UDP echo through the ESP tunnel', async () => {
    const nsA = netns();
    const nsB = netns();
    const net = new MemoryNet();
    const t = tag();
    const mk = (outer: typeof A_OUTER, ns: string): Gateway => {
      const g = gateway(net, outer, { links: new IpLinks({ netns: ns }), mss: 1300 });
      cleanups.push(() => g.dp.close());
      return g;
    };
    const a = mk(A_OUTER, nsA);
    const b = mk(B_OUTER, nsB);
    await a.dp.setTunnelOptions('site', { ifName: `pqa${t}`, insideAddr: '198.51.100.1/32' });
    await b.dp.setTunnelOptions('site', { ifName: `pqb${t}`, insideAddr: '203.0.113.1/32' });
    const child: ChildParams = { reqid: 1, ifId: 3, tunnel: 'site', spiAB: 0xa1000001, spiBA: 0xb1000001, aNet: ['198.51.100.0/24'], bNet: ['203.0.113.0/24'] };
    await installChild(a, b, child);
    const routes = execFileSync('ip', ['-n', nsA, 'route', 'show', 'dev', `pqa${t}`]).toString();
    expect(routes).toContain('203.0.113.0/24');

    const server = inNs(
      nsB,
      `const s = require('dgram').createSocket('udp4');
       s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
       s.bind(7777, '203.0.113.1', () => console.log('ready'));
       setTimeout(() => process.exit(0), 20000);`,
    );
    await waitFor(() => server.output().includes('ready'));
    const client = inNs(
      nsA,
      `const s = require('dgram').createSocket('udp4');
       const big = Buffer.alloc(1200, 0x61);
       let got = 0;
       s.bind(0, '198.51.100.1', () => { s.send('hello', 7777, '203.0.113.1'); s.send(big, 7777, '203.0.113.1'); });
       s.on('message', (m) => { console.log(m.length, m.subarray(0, 10).toString()); if (++got === 2) process.exit(0); });
       setTimeout(() => process.exit(3), 10000);`,
    );
    const out = await client.done;
    expect(out).toContain('10 echo:hello');
    expect(out).toContain('1205 echo:aaaaa');
    expect((await a.dp.querySa(child.spiAB, 'out'))!.packets).toBe(2);
    expect((await b.dp.querySa(child.spiAB, 'in'))!.packets).toBe(2);
    expect((await a.dp.querySa(child.spiBA, 'in'))!.packets).toBe(2);
  }, 60_000);
});
