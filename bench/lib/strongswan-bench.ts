/**
 * strongSwan 6.1 <-> 6.1 handshake benchmark (the reference pqgate is compared with).
 *
 * Method. Debian does not build charon's load-tester plugin, so the
 * initiator is driven over VICI from this process (test/interop/lib/vici.ts),
 * which avoids a swanctl process per setup:
 *  - rate: `concurrency` workers, each with its own vici connection, loop
 *    "initiate IKE+Child SA, wait until established, terminate it, wait until
 *    deleted"; rate = established setups / wall time of the whole run
 *    (a short warm-up is excluded);
 *  - latency: one worker, sequential setups after the rate phase; the time of the `initiate`
 *    command alone (IKE_SA_INIT .. IKE_AUTH incl. Child SA install), p50;
 *  - wire: one extra setup captured on the initiator's veth; counts the IKE
 *    messages of the setup (IKE_SA_INIT, IKE_INTERMEDIATE, IKE_AUTH; no
 *    INFORMATIONAL) and their UDP payload bytes (incl. the 4-octet non-ESP
 *    marker on port 4500); `ipBytes` adds the 28 octets of IPv4+UDP headers.
 * Both charons run in their own network namespaces on one veth pair (PSK,
 * encap = yes, kernel-libipsec, `unique = never`, block/cookie thresholds
 * raised so concurrent setups from one address are not throttled), logging at
 * `default = 0` so file logging does not dominate.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPair, RUN_PREFIX, sweepStale } from '../../test/interop/lib/netns.js';
import { onCleanup, runSync } from '../../test/interop/lib/proc.js';
import { peerMissingReason, sweepStaleDirs } from '../../test/interop/lib/rootfs.js';
import { Strongswan, pskConnections, type CharonOptions } from '../../test/interop/lib/strongswan.js';
import { Capture, ikeMessages } from '../../test/interop/lib/tshark.js';
import { ViciClient, viciInitiate, viciTerminateIke } from '../../test/interop/lib/vici.js';
import { pidsCpuMs, selfCpuMs } from './cpu.js';

export const PROPOSALS = {
  hybrid: 'aes256gcm16-prfsha384-x25519-ke1_mlkem768',
  classic: 'aes256gcm16-prfsha384-x25519',
} as const;

export interface StrongswanBenchOptions {
  /** 'hybrid' (x25519 + ML-KEM-768), 'classic' (x25519), or an explicit IKE proposal. */
  kind?: keyof typeof PROPOSALS | (string & {});
  /** Concurrent initiations for the rate measurement (default 16). */
  concurrency?: number;
  /** Setups measured for the rate (default 400). */
  setups?: number;
  /** Untimed setups at the start of the rate phase (default 2 x concurrency). */
  warmup?: number;
  /** Sequential setups for the latency percentile (default 40). */
  latencySamples?: number;
  /** Capture one setup and count packets/bytes (default true; needs dumpcap + tshark). */
  wire?: boolean;
}

export interface StrongswanHandshakeResult {
  /** Established setups per second with `concurrency` in flight (setup + delete loop). */
  rate: number;
  /** Median single-setup time in milliseconds. */
  p50ms: number;
  /** UDP payload bytes of one setup's IKE messages (both directions). */
  bytes: number;
  /** Number of UDP datagrams of one setup (fragments counted separately). */
  packets: number;
  /** bytes + 28 per packet (IPv4 + UDP headers). */
  ipBytes: number;
  p90ms: number;
  concurrency: number;
  setups: number;
  failures: number;
  proposal: string;
  version: string;
  /** Per exchange: messages and UDP payload bytes of the captured setup. */
  exchanges: Record<string, { packets: number; bytes: number }>;
  /**
   * CPU milliseconds per setup (incl. its delete) during the rate phase:
   * the initiator charon, the responder charon (all threads; bench/lib/cpu.ts),
   * and this process driving the initiator over VICI (not part of charon).
   */
  cpuMsPerSetup: { initiator: number; responder: number; driver: number };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const BENCH_CHARON: CharonOptions = {
  threads: 32,
  logLevels: { default: 0 },
  // Concurrent IKE_SA_INITs all come from one address: lift the per-peer
  // half-open limit (block_threshold, default 5) and the cookie thresholds
  // (cookie_threshold 30, cookie_threshold_ip 3): a COOKIE round trip would
  // otherwise be added to most concurrent setups.
  // reuse_ikesa = no: otherwise charon runs concurrent initiates of the same
  // config as extra Child SAs inside the first (still connecting) IKE SA.
  settings: { block_threshold: 100000, cookie_threshold: 100000, cookie_threshold_ip: 100000, init_limit_half_open: 0, reuse_ikesa: false },
};

/** One setup + delete over `c`; returns the setup time in ms. */
async function setupAndDelete(c: ViciClient): Promise<number> {
  const t0 = performance.now();
  const uid = await viciInitiate(c, 'k', 'c');
  const dt = performance.now() - t0;
  if (!uid) throw new Error('initiate succeeded but no IKE SA id was reported');
  await viciTerminateIke(c, uid);
  return dt;
}

export async function strongswanHandshakeBench(o: StrongswanBenchOptions = {}): Promise<StrongswanHandshakeResult> {
  const why = peerMissingReason('sid-strongswan');
  if (why) throw new Error(why);
  const kind = o.kind ?? 'hybrid';
  const proposal = kind in PROPOSALS ? PROPOSALS[kind as keyof typeof PROPOSALS] : kind;
  const concurrency = o.concurrency ?? 16;
  const setups = o.setups ?? 400;
  const latencySamples = o.latencySamples ?? 40;
  sweepStale();
  sweepStaleDirs();

  const pair = await createPair({ tag: 'bench' });
  const clients: ViciClient[] = [];
  let ini: Strongswan | undefined;
  let resp: Strongswan | undefined;
  try {
    const common = { proposals: [proposal], unique: 'never' as const, localTs: ['198.51.100.0/25'], remoteTs: ['198.51.100.128/25'] };
    resp = await Strongswan.start({
      ns: pair.right,
      label: 'bresp',
      charon: BENCH_CHARON,
      ...pskConnections(pair.rightAddr, pair.leftAddr, 'responder.pqgate.test', 'initiator.pqgate.test', common, true),
    });
    ini = await Strongswan.start({
      ns: pair.left,
      label: 'binit',
      charon: BENCH_CHARON,
      ...pskConnections(pair.leftAddr, pair.rightAddr, 'initiator.pqgate.test', 'responder.pqgate.test', common),
    });
    for (let i = 0; i < Math.max(concurrency, 1); i++) clients.push(await ViciClient.connect(ini.viciPath));

    // Wire: one captured setup.
    let bytes = NaN;
    let packets = NaN;
    const exchanges: Record<string, { packets: number; bytes: number }> = {};
    if (o.wire ?? true) {
      const dir = mkdtempSync(join(tmpdir(), `${RUN_PREFIX}cap-`));
      onCleanup(() => runSync('rm', ['-rf', '--one-file-system', '--', dir], { check: false }), `capture ${dir}`);
      const cap = await Capture.start(pair.left, 'eth0', join(dir, 'setup.pcap'));
      const uid = await viciInitiate(clients[0]!, 'k', 'c');
      const pcap = await cap.stop();
      await viciTerminateIke(clients[0]!, uid);
      const msgs = (await ikeMessages(pcap)).filter((m) => [34, 35, 43].includes(m.exchangeType));
      packets = msgs.length;
      bytes = msgs.reduce((s, m) => s + m.udpBytes, 0);
      for (const m of msgs) {
        const e = (exchanges[m.exchange] ??= { packets: 0, bytes: 0 });
        e.packets++;
        e.bytes += m.udpBytes;
      }
      runSync('rm', ['-rf', '--one-file-system', '--', dir], { check: false });
    }

    // Rate: `concurrency` workers loop until `setups` setups completed after a
    // warm-up of 2 x concurrency; throughput = completions / time between the
    // end of the warm-up and the last completion.
    const warmup = o.warmup ?? concurrency * 2;
    let claimed = 0;
    let completed = 0;
    let failures = 0;
    let tStart = 0;
    let tEnd = 0;
    let firstError: string | undefined;
    const iniPids = pair.left.pids();
    const respPids = pair.right.pids();
    let cpu0 = { ini: 0, resp: 0, self: 0 };
    const worker = async (c: ViciClient): Promise<void> => {
      while (claimed < setups + warmup) {
        claimed++;
        try {
          await setupAndDelete(c);
          completed++;
          if (completed === warmup) {
            tStart = performance.now();
            cpu0 = { ini: pidsCpuMs(iniPids), resp: pidsCpuMs(respPids), self: selfCpuMs() };
          }
          tEnd = performance.now();
        } catch (e) {
          failures++;
          firstError ??= (e as Error).message;
          if (failures > setups / 10) throw new Error(`too many failed setups (${failures}); first: ${firstError}`);
        }
      }
    };
    await Promise.all(clients.slice(0, concurrency).map(worker));
    const done = completed - warmup;
    const elapsed = (tEnd - tStart) / 1000;
    const cpuMsPerSetup = {
      initiator: (pidsCpuMs(iniPids) - cpu0.ini) / done,
      responder: (pidsCpuMs(respPids) - cpu0.resp) / done,
      driver: (selfCpuMs() - cpu0.self) / done,
    };
    // Latency: sequential setups after the rate phase (as for pqgate, whose
    // JIT-compiled code is only warm by then; the first few are still skipped).
    const lat: number[] = [];
    for (let i = 0; i < latencySamples + 3; i++) {
      const dt = await setupAndDelete(clients[0]!);
      if (i >= 3) lat.push(dt);
    }
    lat.sort((a, b) => a - b);

    return {
      rate: done / elapsed,
      p50ms: percentile(lat, 50),
      p90ms: percentile(lat, 90),
      bytes,
      packets,
      ipBytes: bytes + 28 * packets,
      concurrency,
      setups: done,
      failures,
      proposal,
      version: ini.version,
      exchanges,
      cpuMsPerSetup,
    };
  } finally {
    for (const c of clients) c.close();
    await ini?.stop().catch(() => undefined);
    await resp?.stop().catch(() => undefined);
    await pair.destroy();
  }
}
