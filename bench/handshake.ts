/**
 * `npm run bench:handshake`: hybrid (x25519 + ML-KEM-768, PSK) IKEv2
 * establishments per second, pqgate <-> pqgate and strongSwan 6.1 <->
 * strongSwan 6.1, on this machine in the same run, measured the same way
 * (see bench/pqgate-initiator.ts and bench/lib/strongswan-bench.ts):
 * N concurrent setup+delete loops, sequential single-setup p50, and the
 * datagrams/bytes of one setup. Each side of each pair is its own process in
 * its own network namespace. Prints a table and the ratio; `--json` prints JSON.
 *
 * Options: --concurrency N (16) --setups N (5000) --warmup N (1500) --kind hybrid|classic --procs N (initiator processes on extra addresses; default 1)
 *          --skip-strongswan --json --profile
 *          PQGATE_BENCH_NODE_FLAGS="..." adds node/V8 flags to both pqgate processes (experiments only)
 *
 * Warm-up: the first `warmup` setups of the rate phase are not timed, for
 * both implementations alike. pqgate runs on V8, which compiles the hot
 * paths with TurboFan only after they ran for a while; with a warm-up of 32
 * setups the CPU per setup measured over 400 setups was ~1.7x the
 * steady-state value (compiler threads count as process CPU), so the rate
 * mostly measured JIT warm-up, which a gateway pays once per boot.
 * Timed setups: 5000 (it was 1000). At ~1,000 setups/s a 1000-setup phase
 * lasts about one second, so one scheduling hiccup on this 2-core machine
 * moved a run's ratio by up to 30 % (1.21-1.90x over six quiet runs); five
 * seconds per implementation gave 1.76x and 2.03x.
 */
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPair, sweepStale } from '../test/interop/lib/netns.js';
import { cleanupAll, sleep } from '../test/interop/lib/proc.js';
import { strongswanHandshakeBench, PROPOSALS } from './lib/strongswan-bench.js';
import { cpus } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..'); // dist/bench -> repo root
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
};
const concurrency = Number(opt('concurrency', '16'));
const setups = Number(opt('setups', '5000'));
const kind = opt('kind', 'hybrid') as keyof typeof PROPOSALS;
const procs = Math.max(1, Number(opt('procs', '1')));
const warmup = Math.max(1, Number(opt('warmup', '1500')));
const proposal = PROPOSALS[kind] ?? kind;

interface Result {
  rate: number;
  p50ms: number;
  packets: number;
  bytes: number;
  ipBytes: number;
  /** CPU ms per setup (incl. delete) in the rate phase, per side (bench/lib/cpu.ts). */
  cpuMsPerSetup?: { initiator: number; responder: number };
}

async function pqgate(): Promise<Result & { internalErrors: number }> {
  const pair = await createPair({ tag: 'bh' });
  const dir = mkdtempSync(join(tmpdir(), 'pqg-bench-'));
  try {
    const psk = 'pqgate-benchmark-psk-0123456789';
    const conf = {
      listen: [pair.rightAddr],
      control_socket: join(dir, 'control.sock'),
      log_level: 'warn',
      data_plane: process.env.PQGATE_BENCH_DATAPLANE ?? 'recording',
      // Many concurrent setups from one address: lift the DoS limits (docs/dos.md) as the charon side does.
      cookie_threshold: 100000,
      cookie_threshold_ip: 100000,
      block_threshold: 100000,
      tunnels: [
        {
          name: 'hub',
          local_addr: pair.rightAddr,
          local_id: 'responder.bench.example',
          remote_id: '%any',
          auth: 'psk',
          psk,
          proposals: [proposal],
          esp_proposals: ['aes256gcm16'],
          local_ts: ['10.2.0.0/16'],
          remote_ts: ['10.1.0.0/16'],
          start_action: 'none',
        },
      ],
    };
    writeFileSync(join(dir, 'resp.json'), JSON.stringify(conf));
    // --profile: CPU profiles of both pqgate processes (node --cpu-prof) into bench-profiles/.
    const prof = argv.includes('--profile') ? ['--cpu-prof', '--cpu-prof-dir', join(root, 'bench-profiles')] : [];
    // PQGATE_BENCH_NODE_FLAGS: extra node/V8 flags for both pqgate processes, for
    // experiments only (e.g. GC sizes, --trace-deopt); the reported runs use none.
    const nodeFlags = (process.env.PQGATE_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
    const resp = pair.right.spawn(['env', ...(process.env.PQGATE_ESP_NATIVE !== undefined ? [`PQGATE_ESP_NATIVE=${process.env.PQGATE_ESP_NATIVE}`] : []), 'node', ...nodeFlags, ...prof, join(root, 'dist/firmware/cli.js'), 'daemon', '--config', join(dir, 'resp.json')], join(dir, 'resp.log'), 'pqgate responder');
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      try {
        if (readFileSync(join(dir, 'resp.log'), 'utf8').includes('control socket ready')) break;
      } catch {
        /* not yet */
      }
    }
    // Load generators: one initiator process per CPU (Node runs one thread per
    // process; strongSwan's charon uses threads on every core), each on its
    // own address, splitting the concurrency and the setups between them.
    const addrs = Array.from({ length: procs }, (_, i) => (i === 0 ? pair.leftAddr : `192.0.2.${10 + i}`));
    for (const a of addrs.slice(1)) await pair.left.addAddr('eth0', `${a}/24`);
    const runs = await Promise.all(
      addrs.map((local, i) =>
        pair.left.exec(
          'node',
          [
            ...nodeFlags,
            ...(argv.includes('--profile') ? ['--cpu-prof', '--cpu-prof-dir', join(root, 'bench-profiles')] : []),
            join(root, 'dist/bench/pqgate-initiator.js'),
            JSON.stringify({ local, remote: pair.rightAddr, proposal, psk, concurrency: Math.ceil(concurrency / procs), setups: Math.ceil(setups / procs), warmup: Math.ceil(warmup / procs), measureLatency: i === 0, responderPids: pair.right.pids() }),
          ],
          { timeoutMs: 600_000 },
        ),
      ),
    );
    await resp.stop();
    if (process.env.PQGATE_BENCH_TRACE === '1') writeFileSync(join(root, 'bench-profiles', 'trace.log'), runs.map((r) => r.stderr).join('\n'));
    const res = runs.map((r) => JSON.parse(r.stdout.trim().split('\n').pop()!) as Result & { internalErrors: number; setups: number; wallStart: number; wallEnd: number; cpuMs: number; respCpuMs: number });
    if (process.env.PQGATE_BENCH_DEBUG) console.error(JSON.stringify(res));
    const total = res.reduce((n, r) => n + r.setups, 0);
    const span = (Math.max(...res.map((r) => r.wallEnd)) - Math.min(...res.map((r) => r.wallStart))) / 1000;
    // Each initiator reads the responder's CPU over its own rate phase; with
    // several initiators the longest window is the closest to the whole phase.
    const cpuMsPerSetup = { initiator: res.reduce((n, r) => n + r.cpuMs, 0) / total, responder: Math.max(...res.map((r) => r.respCpuMs)) / total };
    return { ...res[0]!, rate: total / span, cpuMsPerSetup, internalErrors: res.reduce((n, r) => n + r.internalErrors, 0) };
  } finally {
    await pair.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:handshake needs root (network namespaces)');
  sweepStale();
  const ours = await pqgate();
  const theirs = argv.includes('--skip-strongswan') ? undefined : await strongswanHandshakeBench({ kind, concurrency, setups, warmup });
  const out = { kind, proposal, concurrency, setups, warmup, pqgate: ours, strongswan: theirs ?? null, ratio: theirs ? ours.rate / theirs.rate : null };
  if (argv.includes('--json')) {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  const row = (name: string, r: Result | undefined) =>
    r ? `${name.padEnd(22)} ${r.rate.toFixed(0).padStart(8)}/s ${r.p50ms.toFixed(2).padStart(8)} ms ${String(r.packets).padStart(5)} ${String(r.bytes).padStart(7)} B ${String(r.ipBytes).padStart(7)} B` : `${name.padEnd(22)} (skipped)`;
  console.log(`IKEv2 handshake benchmark: ${proposal}, PSK, ${concurrency} concurrent, ${setups} setups after ${warmup} warm-up setups`);
  console.log(`${''.padEnd(22)} ${'rate'.padStart(10)} ${'p50 single'.padStart(11)} ${'pkts'.padStart(5)} ${'UDP bytes'.padStart(9)} ${'IP bytes'.padStart(9)}`);
  console.log(row('pqgate <-> pqgate', ours));
  console.log(row('strongSwan <-> strongSwan', theirs));
  if (theirs) console.log(`ratio (pqgate / strongSwan): ${(ours.rate / theirs.rate).toFixed(2)}x rate, ${(theirs.p50ms / ours.p50ms).toFixed(2)}x faster single setup`);
  // CPU per setup is what the rate converges to when the machine is saturated
  // (cores x 1000 / total ms), and it moves much less with other load than the rate.
  const cpuRow = (name: string, c: { initiator: number; responder: number; driver?: number } | undefined) => {
    if (!c) return;
    const tot = c.initiator + c.responder;
    console.log(`${name.padEnd(26)} initiator ${c.initiator.toFixed(2)} ms + responder ${c.responder.toFixed(2)} ms = ${tot.toFixed(2)} ms${c.driver !== undefined ? ` (+ VICI driver ${c.driver.toFixed(2)} ms)` : ''}; ${cores} cores => ${((cores * 1000) / tot).toFixed(0)}/s if CPU-bound`);
  };
  const cores = cpus().length;
  console.log('CPU per setup+delete (rate phase):');
  cpuRow('  pqgate', ours.cpuMsPerSetup);
  cpuRow('  strongSwan (charons)', theirs?.cpuMsPerSetup);
  if (theirs && ours.cpuMsPerSetup) {
    const o = ours.cpuMsPerSetup.initiator + ours.cpuMsPerSetup.responder;
    const t = theirs.cpuMsPerSetup.initiator + theirs.cpuMsPerSetup.responder;
    console.log(`CPU efficiency ratio (strongSwan ms / pqgate ms): ${(t / o).toFixed(2)}x`);
  }
}

main()
  .catch((e) => {
    console.error((e as Error).stack ?? e);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
