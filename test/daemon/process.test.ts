/**
 * The real thing, as an operator runs it: two `pqgate daemon` processes
 * (real engine, real sockets on 127.0.0.1 / 127.0.0.2) negotiate a hybrid
 * IKE SA; `pqgate status --json`, `down`, `up` run as separate processes;
 * SIGTERM stops each daemon cleanly (DELETE sent, control socket removed,
 * exit code 0). The TypeScript sources run directly through a test-only
 * module hook (helpers/register.mjs), no build step.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { ControlClient } from '../../firmware/control/client.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';

const ROOT = resolve(__dirname, '../..');
const REGISTER = join(ROOT, 'test/daemon/helpers/register.mjs');
const CLI = join(ROOT, 'firmware/cli.ts');
const PSK = 'process-test-psk-0123456789';

interface Proc {
  child: ChildProcess;
  out: string[];
  exit: Promise<number | null>;
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, ['--import', REGISTER, CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  child.stdout!.on('data', (d) => out.push(d.toString()));
  child.stderr!.on('data', (d) => out.push(d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out, exit };
}

async function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawnCli(args);
  const code = await p.exit;
  return { code, out: p.out.join('') };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(f: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(50);
  }
}

/** Two consecutive free UDP ports on 127.0.0.1 (also free on 127.0.0.2, which nothing else uses). */
async function freePorts(): Promise<[number, number]> {
  for (;;) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const p = s.address().port;
    s.close();
    if (p >= 65535) continue;
    const t = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      t.once('error', () => r(false));
      t.bind(p + 1, '127.0.0.1', () => r(true));
    });
    t.close();
    if (ok) return [p, p + 1];
  }
}

async function status(sock: string): Promise<IkeSaStatus[]> {
  const c = await ControlClient.connect(sock);
  try {
    return await c.call<IkeSaStatus[]>('status');
  } finally {
    c.close();
  }
}

describe('pqgate daemon processes', () => {
  let dir: string;
  let a: Proc;
  let b: Proc;
  let sockA: string;
  let sockB: string;
  let keylog: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pqgate-proc-'));
    const [ike, natt] = await freePorts();
    sockA = join(dir, 'a', 'ctl.sock');
    sockB = join(dir, 'b', 'ctl.sock');
    keylog = join(dir, 'keys');
    const common = { ike_port: ike, natt_port: natt, log_level: 'info' };
    const ts = (l: string, r: string) => ({ local_ts: [l], remote_ts: [r] });
    writeFileSync(
      join(dir, 'a.json'),
      JSON.stringify({
        ...common,
        listen: ['127.0.0.1'],
        control_socket: sockA,
        tunnels: [{ name: 't1', local_addr: '127.0.0.1', remote_addr: '127.0.0.2', remote_port: ike, local_id: 'fqdn:a.example', remote_id: 'fqdn:b.example', psk: PSK, ...ts('10.1.0.0/24', '10.2.0.0/24') }],
      }),
      { mode: 0o600 },
    );
    writeFileSync(
      join(dir, 'b.json'),
      JSON.stringify({
        ...common,
        listen: ['127.0.0.2'],
        control_socket: sockB,
        tunnels: [{ name: 't1', local_addr: '127.0.0.2', remote_addr: '%any', local_id: 'fqdn:b.example', remote_id: 'fqdn:a.example', psk: PSK, ...ts('10.2.0.0/24', '10.1.0.0/24') }],
      }),
      { mode: 0o600 },
    );
    b = spawnCli(['daemon', '--config', join(dir, 'b.json')]);
    await until(() => (existsSync(sockB) ? true : undefined), 60_000, 'daemon b');
    a = spawnCli(['daemon', '--config', join(dir, 'a.json'), '--log-format', 'json'], { PQGATE_KEYLOG: keylog });
    await until(() => (existsSync(sockA) ? true : undefined), 60_000, 'daemon a');
  }, 60_000);

  afterAll(async () => {
    for (const p of [a, b]) if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('negotiates a hybrid IKE SA; status --json shows it', async () => {
    const sa = await until(async () => (await status(sockA)).find((s) => s.state === 'ESTABLISHED'), 20_000, 'IKE SA');
    expect(sa.keyExchanges.length).toBeGreaterThanOrEqual(2);
    expect(sa.postQuantum).toMatch(/^ML_KEM_/);
    expect(sa.children).toHaveLength(1);
    const r = await runCli(['status', '--json', '--socket', sockA]);
    expect(r.code).toBe(0);
    const viaCli = JSON.parse(r.out) as IkeSaStatus[];
    expect(viaCli.map((s) => [s.tunnel, s.state, s.spiI, s.spiR])).toEqual([['t1', 'ESTABLISHED', sa.spiI, sa.spiR]]);
    const human = await runCli(['status', '--socket', sockB]);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/t1 #\d+: ESTABLISHED, responder/);
    expect(human.out).toMatch(/post-quantum: ML-KEM-\d+/);
    // the key log got the IKE SA's keys, owner-only
    expect(readFileSync(keylog, 'utf8')).toContain(`${sa.spiI},${sa.spiR},`);
    expect(statSync(keylog).mode & 0o777).toBe(0o600);
  }, 40_000);

  it('down and up through the CLI', async () => {
    const d = await runCli(['down', 't1', '--socket', sockA]);
    expect(d).toEqual({ code: 0, out: 'deleting t1\n' });
    await until(async () => ((await status(sockB)).length === 0 ? true : undefined), 10_000, 'peer to drop the SA');
    const u = await runCli(['up', 't1', '--socket', sockA]);
    expect(u.code).toBe(0);
    await until(async () => (await status(sockB)).find((s) => s.state === 'ESTABLISHED'), 20_000, 'IKE SA again');
    const bad = await runCli(['up', 'nope', '--socket', sockA]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/no tunnel named 'nope'/);
  }, 60_000);

  it('SIGTERM: deletes the SA at the peer, removes the control socket, exits 0', async () => {
    a.child.kill('SIGTERM');
    expect(await a.exit).toBe(0);
    expect(existsSync(sockA)).toBe(false);
    const logA = a.out.join('').trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(logA.at(-1)!.msg).toBe('stopped');
    // the DELETE reached b before a went away
    await until(async () => ((await status(sockB)).length === 0 ? true : undefined), 5_000, 'peer to see the DELETE');
    expect(b.out.join('')).not.toContain(PSK);
    b.child.kill('SIGINT');
    expect(await b.exit).toBe(0);
    expect(existsSync(sockB)).toBe(false);
    expect(a.out.join('')).not.toContain(PSK);
  }, 180_000); // the daemons start from TypeScript source; slow on a loaded 2-core host
});
