/**
 * `npm run bench:esp`: ESP tunnel throughput on this machine, in one run:
 *   (a) pqgate <-> pqgate: two daemons (userspace ESP over TUN, ESP in UDP),
 *   (b) strongSwan 6.1 <-> 6.1 with kernel-libipsec (encap = yes),
 *   (c) the bare veth between the two namespaces,
 * all AES-256-GCM (a, b). Each gateway is its own process in its own network
 * namespace on one veth pair; iperf3 (TCP, one stream) runs in the gateway
 * namespaces between inner addresses on `lo`, so the packets cross the
 * tunnel once each way. Per setup: `--runs` runs of `--seconds`, median
 * Mbit/s (receiver side), and the CPU the gateway processes used during the
 * runs (utime + stime from /proc/<pid>/stat, in % of one core). Prints a
 * table and the pqgate/strongSwan ratio; `--json` prints JSON.
 *
 * Options: --seconds N (10) --runs N (3) --only pqgate,strongswan,veth
 *          --mode route|policy (pqgate, default route)
 *          --profile DIR (node --cpu-prof of both pqgate daemons into DIR)
 *          --diag (print drop counters of the namespaces after each setup)
 *          --json
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPair, addInnerAddresses, sweepStale, type Netns, type Pair } from '../test/interop/lib/netns.js';
import { cleanupAll, sleep, type Spawned } from '../test/interop/lib/proc.js';
import { peerMissingReason, sweepStaleDirs } from '../test/interop/lib/rootfs.js';
import { CLI } from '../test/interop/lib/pqgate.js';
import type { IkeSaStatus } from '../firmware/ikev2/engine-types.js';
import { pskConnections, Strongswan } from '../test/interop/lib/strongswan.js';
import { iperfClient, iperfServer } from '../test/interop/lib/traffic.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
};
const SECONDS = Number(opt('seconds', '10'));
const RUNS = Number(opt('runs', '3'));
const ONLY = new Set(opt('only', 'pqgate,strongswan,veth').split(','));
const MODE = opt('mode', 'route') as 'route' | 'policy';
const PROFILE = opt('profile', '');
const JSON_OUT = argv.includes('--json');
const DIAG = argv.includes('--diag');
const PSK = 'pqgate-esp-benchmark-psk-0123456789';
const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts clock ticks of 1/100 s on Linux

interface Result {
  name: string;
  /** Median receiver-side throughput over the runs, Mbit/s. */
  mbps: number;
  runs: number[];
  /** CPU of the gateway processes during the runs, % of one core each (left, right). */
  cpu: number[];
  note?: string;
}

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** `runs` iperf3 runs from `pair.left` (src) to `dst` in `pair.right`; CPU of `pids` during them. */
async function measure(name: string, pair: Pair, dst: string, pids: number[], dir: string): Promise<Result> {
  const srv = await iperfServer(pair.right, dst, join(dir, `iperf-${name}.log`));
  try {
    // Warm-up: ARP, TCP slow start, JIT of the data path.
    await iperfClient(pair.left, dst, { seconds: 1 });
    const runs: number[] = [];
    const t0 = pids.map(cpuTicks);
    const w0 = performance.now();
    for (let i = 0; i < RUNS; i++) runs.push((await iperfClient(pair.left, dst, { seconds: SECONDS })).bitsPerSecond / 1e6);
    const wall = (performance.now() - w0) / 1000;
    const cpu = pids.map((p, i) => (((cpuTicks(p) - t0[i]!) / TICKS) * 100) / wall);
    return { name, mbps: median(runs), runs, cpu };
  } finally {
    await srv.stop();
  }
}

/** Where packets were lost: UDP socket buffer overflows and per-link drops in both namespaces. */
async function diag(pair: Pair): Promise<void> {
  for (const ns of [pair.left, pair.right]) {
    const udp = await ns.exec('nstat', ['-az', 'UdpRcvbufErrors', 'UdpSndbufErrors', 'UdpInErrors', 'TcpRetransSegs'], { check: false });
    const links = await ns.ip(['-s', '-o', 'link'], { check: false });
    console.error(`--- ${ns.name}\n${udp.stdout.trim()}\n${links.stdout.trim()}`);
  }
}

async function benchVeth(dir: string): Promise<Result> {
  const pair = await createPair({ tag: 'ev' });
  try {
    return await measure('veth', pair, pair.rightAddr, [], dir);
  } finally {
    await pair.destroy();
  }
}

/**
 * A pqgate daemon in `ns` started like test/interop/lib/pqgate.ts does, but
 * with node flags of our own (--cpu-prof is not allowed in NODE_OPTIONS).
 */
class Daemon {
  private constructor(
    readonly ns: Netns,
    readonly proc: Spawned,
    readonly socket: string,
  ) {}

  static async start(ns: Netns, dir: string, label: string, config: object): Promise<Daemon> {
    const socket = join(dir, `${label}.sock`);
    const file = join(dir, `${label}.json`);
    writeFileSync(file, JSON.stringify({ ...config, control_socket: socket }), { mode: 0o600 });
    const flags = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`, `--cpu-prof-name=${label}.cpuprofile`] : [];
    const proc = ns.spawn(['node', ...flags, CLI, 'daemon', '--config', file], join(dir, `${label}.log`), `pqgate ${label}`);
    const deadline = Date.now() + 20_000;
    while (!existsSync(socket)) {
      if (proc.hasExited() || Date.now() > deadline) throw new Error(`pqgate ${label} did not start: ${readFileSync(join(dir, `${label}.log`), 'utf8')}`);
      await sleep(50);
    }
    return new Daemon(ns, proc, socket);
  }

  async cli(args: string[]): Promise<string> {
    return (await this.ns.exec('node', [CLI, ...args, '--socket', this.socket], { timeoutMs: 20_000 })).stdout;
  }

  async waitChild(): Promise<IkeSaStatus> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const st = JSON.parse(await this.cli(['status', '--json'])) as IkeSaStatus[];
      const sa = st.find((s) => s.state === 'ESTABLISHED' && s.children.length === 1);
      if (sa) return sa;
      if (Date.now() > deadline) throw new Error(`no Child SA: ${JSON.stringify(st)}`);
      await sleep(100);
    }
  }
}

async function benchPqgate(dir: string): Promise<Result> {
  const pair = await createPair({ tag: 'ep' });
  const gws: Daemon[] = [];
  try {
    await addInnerAddresses(pair);
    const tunnel = (local: string, remote: string | undefined, lts: string, rts: string, id: string, rid: string) => ({
      name: 'b',
      local_addr: local,
      remote_addr: remote ?? '%any',
      local_id: id,
      remote_id: rid,
      psk: PSK,
      proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'],
      esp_proposals: ['aes256gcm16'],
      local_ts: [lts],
      remote_ts: [rts],
      mode: MODE,
      start_action: 'none',
      dpd_delay: 0,
    });
    const conf = (addr: string, t: object) => ({ listen: [addr], log_level: 'warn', tunnels: [t] });
    const right = await Daemon.start(pair.right, dir, 'right', conf(pair.rightAddr, tunnel(pair.rightAddr, undefined, pair.rightInner.net, pair.leftInner.net, 'r.bench', 'l.bench')));
    gws.push(right);
    const left = await Daemon.start(pair.left, dir, 'left', conf(pair.leftAddr, tunnel(pair.leftAddr, pair.rightAddr, pair.leftInner.net, pair.rightInner.net, 'l.bench', 'r.bench')));
    gws.push(left);
    await left.cli(['up', 'b']);
    await left.waitChild();
    await right.waitChild();
    await sleep(200); // the responder's routes
    const r = await measure('pqgate', pair, pair.rightInner.addr, [left.proc.pid, right.proc.pid], dir);
    if (DIAG) await diag(pair);
    const c = (await left.waitChild()).children[0]!;
    r.note = `${MODE}-based; initiator's SA: ${c.packetsOut ?? '?'} packets out, ${c.packetsIn ?? '?'} in`;
    return r;
  } finally {
    // SIGTERM: graceful stop (and the CPU profile is written).
    for (const g of gws) await g.proc.stop(10_000);
    await pair.destroy();
  }
}

async function benchStrongswan(dir: string): Promise<Result> {
  const why = peerMissingReason('sid-strongswan');
  if (why) return { name: 'strongswan', mbps: NaN, runs: [], cpu: [], note: `skipped: ${why}` };
  const pair = await createPair({ tag: 'es' });
  const sss: Strongswan[] = [];
  try {
    await addInnerAddresses(pair);
    const o = { proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], espProposals: ['aes256gcm16'], psk: PSK, localTs: [pair.leftInner.net], remoteTs: [pair.rightInner.net] };
    const quiet = { logLevels: { default: 0 } as const };
    const r = await Strongswan.start({ ns: pair.right, label: 'bench-ssr', ...pskConnections(pair.rightAddr, pair.leftAddr, 'r.bench', 'l.bench', o, true), charon: quiet });
    sss.push(r);
    const l = await Strongswan.start({ ns: pair.left, label: 'bench-ssl', ...pskConnections(pair.leftAddr, pair.rightAddr, 'l.bench', 'r.bench', o), charon: quiet });
    sss.push(l);
    await l.initiate('k', 'c');
    await l.waitEstablished('c', 'k', 15_000);
    await r.waitEstablished('c', 'k', 15_000);
    const res = await measure('strongswan', pair, pair.rightInner.addr, [l.pid, r.pid], dir);
    if (DIAG) await diag(pair);
    return res;
  } finally {
    for (const s of sss) await s.stop();
    await pair.destroy();
  }
}

async function main(): Promise<void> {
  sweepStale();
  sweepStaleDirs();
  const dir = mkdtempSync(join(tmpdir(), 'pqg-bench-esp-'));
  const results: Result[] = [];
  try {
    if (ONLY.has('pqgate')) results.push(await benchPqgate(dir));
    if (ONLY.has('strongswan')) results.push(await benchStrongswan(dir));
    if (ONLY.has('veth')) results.push(await benchVeth(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    cleanupAll();
  }
  const pq = results.find((r) => r.name === 'pqgate');
  const ss = results.find((r) => r.name === 'strongswan');
  const ratio = pq && ss && ss.mbps > 0 ? pq.mbps / ss.mbps : undefined;
  if (JSON_OUT) {
    console.log(JSON.stringify({ seconds: SECONDS, runs: RUNS, results, ratio }, null, 2));
    return;
  }
  console.log(`ESP throughput, iperf3 TCP 1 stream, ${RUNS} x ${SECONDS} s, median (node ${process.version})`);
  console.log('setup        Mbit/s   runs                       gateway CPU (% of a core: initiator, responder)');
  for (const r of results) {
    const runs = r.runs.map((x) => x.toFixed(0)).join(', ');
    const cpu = r.cpu.length ? r.cpu.map((c) => `${c.toFixed(0)}%`).join(', ') : '-';
    console.log(`${r.name.padEnd(12)} ${Number.isNaN(r.mbps) ? '     -' : r.mbps.toFixed(0).padStart(6)}   ${runs.padEnd(26)} ${cpu}${r.note ? `   (${r.note})` : ''}`);
  }
  if (ratio !== undefined) console.log(`pqgate / strongSwan: ${ratio.toFixed(2)}x`);
}

main().catch((e) => {
  console.error(e);
  cleanupAll();
  process.exit(1);
});
