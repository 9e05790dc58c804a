/**
 * `npm run bench:scale -- --tunnels N`: N branch tunnels against ONE hub
 * responder process, pqgate and strongSwan charon 6.1 in the same run with
 * the same load, and what each tunnel costs the responder in memory.
 *
 * Each tunnel: hybrid IKE SA (x25519 + ML-KEM-768 in IKE_INTERMEDIATE,
 * aes256gcm16-prfsha384, PSK) and one Child SA (aes256gcm16) created in
 * IKE_AUTH; its own IKE identity and its own traffic selector (the branch
 * net narrowed to one UDP port), from a handful of source addresses (the
 * load generators, bench/scale-initiator.ts, pqgate engines in their own
 * processes in the initiators' namespace). No rekeys, no DPD, no traffic.
 *
 * Responders, both with a userspace ESP data plane (the kernel here has no
 * ESP): pqgate's production daemon (bench/scale-responder.ts) with
 * `data_plane: userspace`, `mode: policy` (one shared TUN, an SPD entry per
 * direction and a userspace ESP SA per direction per tunnel); charon with
 * kernel-libipsec (one TUN, libipsec SAs and policies, routes in table 220).
 * Both get the same hub configuration (one connection, any identity, remote
 * selectors narrowed per tunnel) and the same admission relaxations (no
 * cookies, no per-source half-open limit), as bench:handshake does.
 *
 * Measured per responder: time from the first IKE_SA_INIT to the last Child
 * SA, the establishment rate, RSS before and after (after two full GCs for
 * pqgate, which also reports its V8 heap), and the per-tunnel RSS / heap
 * deltas. The count of established SAs is checked on the responder itself.
 *
 * Options: --tunnels N (1000) --procs P load generators (2) --concurrency C
 * handshakes in flight per generator (8) --skip-strongswan --skip-pqgate
 * --data-plane userspace|recording (pqgate only; default userspace)
 * --settle S (a second memory reading after S idle seconds, default 20)
 * --snapshot DIR (pqgate heap snapshots before/after) --profile DIR (pqgate
 * hub CPU profile) --json
 */
import { mkdtempSync, writeFileSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPair, sweepStale, type Pair } from '../test/interop/lib/netns.js';
import { cleanupAll, sleep, type Spawned } from '../test/interop/lib/proc.js';
import { peerMissingReason, sweepStaleDirs } from '../test/interop/lib/rootfs.js';
import { Strongswan } from '../test/interop/lib/strongswan.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..'); // dist/bench -> repo root
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
};
const tunnels = Number(opt('tunnels', '1000'));
const procs = Math.max(1, Number(opt('procs', '2')));
const concurrency = Math.max(1, Number(opt('concurrency', '8')));
const dataPlane = opt('data-plane', 'userspace');
const settle = Number(opt('settle', '20'));
const snapshot = argv.includes('--snapshot') ? resolve(opt('snapshot', 'bench-profiles')) : undefined;
const PROPOSAL = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const PSK = 'pqgate-scale-benchmark-psk-0123456789';
const HUB_ID = 'hub.scale.example';
const HUB_NET = '198.51.100.128/25';
const BRANCH_NET = '198.51.100.0/25';

interface Memory {
  rss: number;
  heapUsed?: number;
  external?: number;
}

export interface ScaleResult {
  implementation: string;
  tunnels: number;
  established: number;
  failed: number;
  attempts: number;
  seconds: number;
  rate: number;
  p50ms: number;
  p99ms: number;
  before: Memory;
  after: Memory;
  /** (after.rss - before.rss) / established, bytes. */
  rssPerTunnel: number;
  /** The same `--settle` seconds later (idle: V8's memory reducer may have returned free heap pages). */
  settled?: Memory;
  rssPerTunnelSettled?: number;
  /** pqgate only: V8 heap used delta / established, bytes. */
  heapPerTunnel?: number;
  externalPerTunnel?: number;
  /** The responder's own count of established IKE SAs with one Child SA each. */
  responderCount: number;
  errors: Record<string, number>;
}

interface GenResult {
  established: number;
  failed: number;
  attempts: number;
  wallStart: number;
  wallEnd: number;
  p50ms: number;
  p99ms: number;
  errors: Record<string, number>;
  internalErrors: number;
}

function vmRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function waitForLine(path: string, re: RegExp, proc: Spawned | undefined, timeoutMs: number, what: string): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(readLog(path));
    if (m) return m;
    if (proc?.hasExited()) throw new Error(`${what} exited:\n${readLog(path).slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${timeoutMs} ms:\n${readLog(path).slice(-3000)}`);
    await sleep(200);
  }
}

/** Start the load generators against `remote`, wait until every tunnel is up or failed. Returns them still running. */
async function load(pair: Pair, dir: string, label: string, remote: string): Promise<{ gens: Spawned[]; res: GenResult[] }> {
  const per = Math.ceil(tunnels / procs);
  const gens: Spawned[] = [];
  const logs: string[] = [];
  for (let i = 0; i < procs; i++) {
    const count = Math.min(per, tunnels - i * per);
    if (count <= 0) break;
    const local = i === 0 ? pair.leftAddr : `192.0.2.${10 + i}`;
    const log = join(dir, `${label}-gen${i}.log`);
    const a = { local, remote, remoteId: HUB_ID, proposal: PROPOSAL, psk: PSK, first: i * per, count, concurrency };
    gens.push(pair.left.spawn(['node', join(root, 'dist/bench/scale-initiator.js'), JSON.stringify(a)], log, `scale generator ${i}`));
    logs.push(log);
  }
  const res: GenResult[] = [];
  for (let i = 0; i < gens.length; i++) {
    // Generous: 10,000 hybrid handshakes on a loaded 2-core machine.
    const m = await waitForLine(logs[i]!, /^result (.*)$/m, gens[i], 60 * 60_000, `generator ${i}`);
    res.push(JSON.parse(m[1]!) as GenResult);
  }
  return { gens, res };
}

function summarize(implementation: string, res: GenResult[], before: Memory, after: Memory, responderCount: number): ScaleResult {
  const established = res.reduce((n, r) => n + r.established, 0);
  const seconds = (Math.max(...res.map((r) => r.wallEnd)) - Math.min(...res.map((r) => r.wallStart))) / 1000;
  const errors: Record<string, number> = {};
  for (const r of res) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const per = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && established ? (a - b) / established : undefined);
  return {
    implementation,
    tunnels,
    established,
    failed: res.reduce((n, r) => n + r.failed, 0),
    attempts: res.reduce((n, r) => n + r.attempts, 0),
    seconds,
    rate: established / seconds,
    p50ms: Math.max(...res.map((r) => r.p50ms)),
    p99ms: Math.max(...res.map((r) => r.p99ms)),
    before,
    after,
    rssPerTunnel: per(after.rss, before.rss)!,
    ...(after.heapUsed !== undefined ? { heapPerTunnel: per(after.heapUsed, before.heapUsed)!, externalPerTunnel: per(after.external, before.external)! } : {}),
    responderCount,
    errors,
  };
}

function withSettled(r: ScaleResult, settled: Memory): ScaleResult {
  return { ...r, settled, rssPerTunnelSettled: (settled.rss - r.before.rss) / r.established };
}

async function pqgateRun(pair: Pair, dir: string): Promise<ScaleResult> {
  const conf = {
    listen: [pair.rightAddr],
    control_socket: join(dir, 'control.sock'),
    log_level: 'warn',
    data_plane: dataPlane,
    tunnels: [
      {
        name: 'hub',
        local_addr: pair.rightAddr,
        local_id: HUB_ID,
        remote_id: '%any',
        auth: 'psk',
        psk: PSK,
        proposals: [PROPOSAL],
        esp_proposals: ['aes256gcm16'],
        local_ts: [HUB_NET],
        remote_ts: [BRANCH_NET],
        mode: 'policy',
        start_action: 'none',
        rekey_time: 0,
        child_rekey_time: 0,
        dpd_delay: 0,
      },
    ],
  };
  writeFileSync(join(dir, 'hub.json'), JSON.stringify(conf));
  const stats = join(dir, 'pqgate-mem.jsonl');
  const log = join(dir, 'pqgate-hub.log');
  if (snapshot) mkdirSync(snapshot, { recursive: true });
  const env = [`PQGATE_SCALE_STATS=${stats}`, ...(snapshot ? [`PQGATE_SCALE_SNAPSHOT=${snapshot}`] : [])];
  // --profile DIR: a CPU profile of the hub (node --cpu-prof), written when it stops.
  const prof = argv.includes('--profile') ? ['--cpu-prof', '--cpu-prof-dir', resolve(opt('profile', 'bench-profiles'))] : [];
  const resp = pair.right.spawn(['env', ...env, 'node', '--expose-gc', ...prof, join(root, 'dist/bench/scale-responder.js'), join(dir, 'hub.json')], log, 'pqgate hub');
  let gens: Spawned[] = [];
  try {
    await waitForLine(log, /scale responder ready/, resp, 30_000, 'pqgate hub');
    await sleep(1000);
    const memReport = async (n: number): Promise<Memory & { tag: string }> => {
      process.kill(resp.pid, 'SIGUSR2');
      const m = await waitForLine(stats, new RegExp(`^(\\{"tag":"r${n}".*)$`, 'm'), resp, 600_000, 'pqgate memory report');
      return JSON.parse(m[1]!) as Memory & { tag: string };
    };
    const before = await memReport(0);
    const run = await load(pair, dir, 'pqgate', pair.rightAddr);
    gens = run.gens;
    await sleep(3000); // data-plane installs run on their own chain
    const after = await memReport(1);
    await sleep(settle * 1000);
    const settled = await memReport(2);
    const st = JSON.parse((await pair.right.exec('node', [join(root, 'dist/firmware/cli.js'), 'status', '--json', '--socket', join(dir, 'control.sock')], { timeoutMs: 120_000 })).stdout) as { state: string; children: unknown[] }[];
    const count = st.filter((s) => s.state === 'ESTABLISHED' && s.children.length === 1).length;
    return withSettled(summarize('pqgate', run.res, before, after, count), settled);
  } finally {
    for (const g of gens) await g.stop(1000);
    await resp.stop(30_000);
  }
}

async function charonRun(pair: Pair, dir: string): Promise<ScaleResult & { version: string }> {
  const why = peerMissingReason('sid-strongswan');
  if (why) throw new Error(why);
  const ss = await Strongswan.start({
    ns: pair.right,
    label: 'scale',
    charon: {
      threads: 16,
      logLevels: { default: 0 },
      // As bench:handshake: no COOKIE round trips and no per-address
      // half-open limit for a load generator on a few addresses.
      settings: { block_threshold: 1 << 30, cookie_threshold: 1 << 30, cookie_threshold_ip: 1 << 30, init_limit_half_open: 0 },
    },
    connections: [
      {
        name: 'hub',
        localAddrs: [pair.rightAddr],
        proposals: [PROPOSAL],
        unique: 'never',
        rekeyTime: '0',
        reauthTime: '0',
        local: { auth: 'psk', id: HUB_ID },
        remote: { auth: 'psk' },
        children: [{ name: 'c', localTs: [HUB_NET], remoteTs: [BRANCH_NET], espProposals: ['aes256gcm16'], rekeyTime: '0', lifeTime: '0' }],
      },
    ],
    secrets: [{ type: 'ike', secret: PSK }],
  });
  let gens: Spawned[] = [];
  try {
    await sleep(1000);
    const before = { rss: vmRss(ss.pid) };
    const run = await load(pair, dir, 'charon', pair.rightAddr);
    gens = run.gens;
    await sleep(3000);
    const after = { rss: vmRss(ss.pid) };
    await sleep(settle * 1000);
    const settled = { rss: vmRss(ss.pid) };
    const stats = (await ss.swanctl(['--stats'], { timeoutMs: 60_000 })).stdout;
    const m = /IKE_SAs:\s+(\d+) total/.exec(stats);
    return { ...withSettled(summarize('strongSwan charon', run.res, before, after, m ? Number(m[1]) : -1), settled), version: ss.version };
  } finally {
    for (const g of gens) await g.stop(1000);
    await ss.stop().catch(() => undefined);
  }
}

async function withPair<T>(tag: string, fn: (pair: Pair, dir: string) => Promise<T>): Promise<T> {
  const pair = await createPair({ tag });
  const dir = mkdtempSync(join(tmpdir(), 'pqg-scale-'));
  try {
    for (let i = 1; i < procs; i++) await pair.left.addAddr('eth0', `192.0.2.${10 + i}/24`);
    return await fn(pair, dir);
  } catch (e) {
    (e as Error).message += `\n(logs in ${dir})`;
    throw e;
  } finally {
    await pair.destroy();
    if (!process.env.PQGATE_SCALE_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

const kib = (b: number | undefined): string => (b === undefined ? '-' : (b / 1024).toFixed(1));
const mib = (b: number): string => (b / 1048576).toFixed(1);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:scale needs root (network namespaces)');
  if (procs > 20) throw new Error('--procs: at most 20 load generators');
  sweepStale();
  sweepStaleDirs();
  const results: ScaleResult[] = [];
  if (!argv.includes('--skip-pqgate')) results.push(await withPair('sp', pqgateRun));
  if (!argv.includes('--skip-strongswan')) results.push(await withPair('ss', charonRun));
  const out = { tunnels, procs, concurrency, proposal: PROPOSAL, dataPlane, results };
  if (argv.includes('--json')) {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  console.log(`bench:scale: ${tunnels} tunnels (${PROPOSAL}, PSK, one Child SA each) against one responder; ${procs} load generators x ${concurrency} in flight`);
  console.log(`${'responder'.padEnd(20)} ${'up'.padStart(6)} ${'fail'.padStart(5)} ${'time s'.padStart(7)} ${'rate/s'.padStart(7)} ${'RSS MiB before'.padStart(15)} ${'after'.padStart(7)} ${'RSS KiB/tunnel'.padStart(15)} ${'heap KiB/tunnel'.padStart(16)} ${'ext KiB/tunnel'.padStart(15)} ${'counted'.padStart(8)}`);
  for (const r of results) {
    console.log(
      `${r.implementation.padEnd(20)} ${String(r.established).padStart(6)} ${String(r.failed).padStart(5)} ${r.seconds.toFixed(1).padStart(7)} ${r.rate.toFixed(0).padStart(7)} ${mib(r.before.rss).padStart(15)} ${mib(r.after.rss).padStart(7)} ${kib(r.rssPerTunnel).padStart(15)} ${kib(r.heapPerTunnel).padStart(16)} ${kib(r.externalPerTunnel).padStart(15)} ${String(r.responderCount).padStart(8)}`,
    );
    if (r.settled) console.log(`  ${r.implementation} after ${settle} s idle: RSS ${mib(r.settled.rss)} MiB, ${kib(r.rssPerTunnelSettled)} KiB/tunnel${r.settled.heapUsed !== undefined ? `, heap ${kib((r.settled.heapUsed - r.before.heapUsed!) / r.established)} KiB/tunnel` : ''}`);
    if (Object.keys(r.errors).length) console.log(`  ${r.implementation} retried/failed attempts: ${JSON.stringify(r.errors)}`);
  }
  const [a, b] = results;
  if (a && b) console.log(`memory per tunnel, pqgate / charon: ${(a.rssPerTunnel / b.rssPerTunnel).toFixed(2)}x (after ${settle} s idle: ${(a.rssPerTunnelSettled! / b.rssPerTunnelSettled!).toFixed(2)}x); establishment rate: ${(a.rate / b.rate).toFixed(2)}x`);
}

main()
  .catch((e) => {
    console.error((e as Error).stack ?? e);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
