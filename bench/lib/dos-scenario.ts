/**
 * The DoS scenario shared by test/interop/dos-flood.test.ts and
 * `npm run bench:dos`: a pqgate responder under a spoofed IKE_SA_INIT flood
 * while a legitimate hybrid (x25519 + ML-KEM-768, PSK) tunnel comes up.
 *
 *   gen (203.0.113.10-.249, flood generator) ─┐
 *                                              br0 in gw (203.0.113.1, pqgate responder)
 *   ini (203.0.113.2, pqgate initiator) ──────┘
 *
 * All three hosts share one /24 through a bridge in the responder's
 * namespace, so flood and legitimate requests reach the same socket on the
 * same address. Time to establish = from the initiator's `up` control call
 * to its status showing the IKE SA ESTABLISHED with its Child SA (polled
 * over the control socket every 10 ms). The responder's RSS is read from
 * /proc/PID/status every 250 ms.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns, vethLink, assertTestAddress } from '../../test/interop/lib/netns.js';
import { Pqgate } from '../../test/interop/lib/pqgate.js';
import { makeInstanceDir, peerMissingReason } from '../../test/interop/lib/rootfs.js';
import { Strongswan, pskConnections } from '../../test/interop/lib/strongswan.js';
import { controlCall } from '../../firmware/control/client.js';
import type { IkeSaStatus } from '../../firmware/ikev2/engine-types.js';
import type { AdmissionStatus } from '../../firmware/ikev2/admission.js';
import type { FloodSummary } from '../dos-flood.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root from bench/lib (TS under vitest) or dist/bench/lib (compiled). */
const REPO = here.includes(join('dist', 'bench')) ? resolve(here, '..', '..', '..') : resolve(here, '..', '..');
export const FLOOD_JS = join(REPO, 'dist', 'bench', 'dos-flood.js');

const PSK = 'pqgate-dos-test-psk-0123456789';
export const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const GW = '203.0.113.1';
const INI = '203.0.113.2';
const SS = '203.0.113.3';

/** `swanctl --initiate` (blocks until the Child SA is up or fails), then terminate; ms or undefined. */
async function ssEstablish(ss: Strongswan, log: (l: string) => void): Promise<number | undefined> {
  const t0 = performance.now();
  const r = await ss.initiate('k', 'c', 30, { check: false, timeoutMs: 40_000 });
  const ms = performance.now() - t0;
  const ok = r.code === 0 && (await ss.listSas()).some((s) => s.name === 'c' && s.state === 'ESTABLISHED');
  await ss.terminate({ ike: 'c' }, 30).catch(() => undefined);
  if (!ok) log(`strongSwan: not established (swanctl exit ${r.code}): ${r.stdout.split('\n').slice(-5).join(' | ')}`);
  return ok ? ms : undefined;
}

export interface DosOptions {
  /** Spoofed IKE_SA_INIT per second (default 6000). */
  rate?: number;
  /** Flood duration, seconds (default 20). */
  seconds?: number;
  /** Source addresses of the flood (default 240: 203.0.113.10 ..). */
  sources?: number;
  /** Legitimate establishments measured during the flood (default 5). */
  attempts?: number;
  /** Also measure a strongSwan 6.1 initiator (203.0.113.3), when its peer root is installed. */
  strongswan?: boolean;
  /** Extra top-level keys for the responder's configuration (e.g. cookie_threshold). */
  responderOptions?: Record<string, unknown>;
  /** Node options for the responder daemon (e.g. --cpu-prof for profiling). */
  responderNodeArgs?: string[];
  log?: (line: string) => void;
}

export interface RssSample {
  t: number;
  rssKiB: number;
  halfOpen: number;
  /** Responder CPU (user + system) since the previous sample, % of one core. */
  cpuPct: number;
}

/** utime + stime of a process, seconds (/proc/PID/stat fields 14 and 15, USER_HZ 100). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

export interface DosResult {
  flood: FloodSummary;
  /** Time to establish without flood (one attempt before it starts), ms. */
  baselineMs: number;
  /** Times to establish during the flood, ms (successful attempts only). */
  underFloodMs: number[];
  /** Attempts during the flood that did not establish within the initiator's 30 s half-open timeout. */
  underFloodFailed: number;
  /** When each of those attempts completed, seconds after the flood started (compare with flood.seconds). */
  underFloodDoneAt: number[];
  /** strongSwan 6.1 initiator (swanctl --initiate until established), when requested and available. */
  strongswan?: { baselineMs: number; underFloodMs: number[]; underFloodFailed: number; skipped?: string };
  rss: RssSample[];
  admission: AdmissionStatus;
  /** Largest half-open count seen during the flood. */
  maxHalfOpen: number;
  responderIkeSas: number;
  /** The responder namespace's UDP counters (/proc/net/snmp): datagrams the kernel dropped before the daemon read them. */
  udp: { inDatagrams: number; rcvbufErrors: number; inErrors: number };
  /** 1-minute load average of the machine at the end (the numbers depend on it: shared CPUs). */
  loadavg: number;
}

async function udpCounters(ns: Netns): Promise<DosResult['udp']> {
  const lines = (await ns.exec('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const k = lines[0]!.split(/\s+/);
  const v = lines[1]!.split(/\s+/).map(Number);
  const get = (n: string): number => v[k.indexOf(n)] ?? 0;
  return { inDatagrams: get('InDatagrams'), rcvbufErrors: get('RcvbufErrors'), inErrors: get('InErrors') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN; // the process is gone
  }
}

function gwConfig(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    listen: [GW],
    data_plane: 'recording',
    log_level: 'info',
    ...extra,
    tunnels: [
      {
        name: 'branches',
        local_addr: GW,
        local_id: 'hub.dos.test',
        remote_id: '%any',
        auth: 'psk',
        psk: PSK,
        proposals: [HYBRID],
        esp_proposals: ['aes256gcm16'],
        local_ts: ['198.51.100.0/25'],
        remote_ts: ['198.51.100.128/25'],
        start_action: 'none',
      },
    ],
  };
}

function iniConfig(): Record<string, unknown> {
  return {
    listen: [INI],
    data_plane: 'recording',
    log_level: 'info',
    tunnels: [
      {
        name: 'hub',
        local_addr: INI,
        remote_addr: GW,
        local_id: 'branch.dos.test',
        remote_id: 'hub.dos.test',
        auth: 'psk',
        psk: PSK,
        proposals: [HYBRID],
        esp_proposals: ['aes256gcm16'],
        local_ts: ['198.51.100.128/25'],
        remote_ts: ['198.51.100.0/25'],
        start_action: 'none',
      },
    ],
  };
}

/** `up`, then poll the initiator's status until its IKE SA and Child SA are there; ms, or undefined on timeout. */
async function timeToEstablish(ini: Pqgate, timeoutMs = 32_000, log?: (l: string) => void): Promise<number | undefined> {
  const t0 = performance.now();
  await controlCall(ini.socket, 'up', { tunnel: 'hub' });
  for (;;) {
    const st = await controlCall<IkeSaStatus[]>(ini.socket, 'status');
    if (st.some((s) => s.tunnel === 'hub' && s.state === 'ESTABLISHED' && s.children.length > 0)) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) {
      if (!log) throw new Error(`legitimate tunnel not established within ${timeoutMs} ms: ${JSON.stringify(st)}\n--- initiator log ---\n${ini.log().split('\n').slice(-40).join('\n')}`);
      log(`not established within ${timeoutMs} ms; initiator log:\n${ini.log().split('\n').slice(-12).join('\n')}`);
      return undefined;
    }
    await sleep(10);
  }
}

/**
 * Delete the legitimate tunnel and wait until the initiator holds no SA for it (under the flood the
 * DELETE may need retransmissions). Gives up quietly after 40 s; the responder's copy may linger.
 */
async function takeDown(ini: Pqgate, log: (l: string) => void): Promise<void> {
  await controlCall(ini.socket, 'down', { tunnel: 'hub' });
  const deadline = Date.now() + 40_000;
  for (;;) {
    const a = await controlCall<IkeSaStatus[]>(ini.socket, 'status');
    if (!a.some((s) => s.tunnel === 'hub')) return;
    if (Date.now() > deadline) return log('the initiator still holds the tunnel 40 s after down');
    await sleep(50);
  }
}

export async function runDosScenario(o: DosOptions = {}): Promise<DosResult> {
  const log = o.log ?? (() => {});
  const rate = o.rate ?? 6000;
  const seconds = o.seconds ?? 20;
  const nSources = Math.min(o.sources ?? 240, 240);
  const attempts = o.attempts ?? 5;
  if (!existsSync(FLOOD_JS)) throw new Error(`${FLOOD_JS} missing: run npm run build first`);

  const created: Netns[] = [];
  const stops: (() => Promise<void>)[] = [];
  const { dir: work, release } = makeInstanceDir('dos');
  try {
    const gwNs = await Netns.create('dos-gw');
    created.push(gwNs);
    const iniNs = await Netns.create('dos-ini');
    created.push(iniNs);
    const genNs = await Netns.create('dos-gen');
    created.push(genNs);
    await gwNs.ip(['link', 'add', 'br0', 'type', 'bridge']);
    await gwNs.addAddr('br0', `${GW}/24`);
    await gwNs.ip(['link', 'set', 'br0', 'up']);
    await vethLink(gwNs, 'vini', undefined, iniNs, 'eth0', `${INI}/24`);
    await vethLink(gwNs, 'vgen', undefined, genNs, 'eth0', undefined);
    await gwNs.ip(['link', 'set', 'vini', 'master', 'br0']);
    await gwNs.ip(['link', 'set', 'vgen', 'master', 'br0']);
    const sources = Array.from({ length: nSources }, (_, i) => `203.0.113.${10 + i}`);
    for (const s of sources) assertTestAddress(s);
    // One `ip -batch` instead of 240 processes.
    await genNs.ip(['-batch', '-'], { input: sources.map((s) => `addr add ${s}/24 dev eth0`).join('\n') + '\n' });
    // 240 neighbours stay below the kernel's default neighbour-table limits (gc_thresh3 1024, global).

    const gw = await Pqgate.start({ ns: gwNs, label: 'dos-gw', config: gwConfig(o.responderOptions ?? {}), ...(o.responderNodeArgs ? { nodeArgs: o.responderNodeArgs } : {}) });
    stops.push(() => gw.stop());
    const ini = await Pqgate.start({ ns: iniNs, label: 'dos-ini', config: iniConfig() });
    stops.push(() => ini.stop());
    const gwPid = gw.proc.pid;
    let ss: Strongswan | undefined;
    let ssResult: DosResult['strongswan'];
    if (o.strongswan) {
      const missing = peerMissingReason('sid-strongswan');
      if (missing) ssResult = { baselineMs: NaN, underFloodMs: [], underFloodFailed: 0, skipped: missing };
      else {
        const ssNs = await Netns.create('dos-ss');
        created.push(ssNs);
        await vethLink(gwNs, 'vss', undefined, ssNs, 'eth0', `${SS}/24`);
        await gwNs.ip(['link', 'set', 'vss', 'master', 'br0']);
        const conn = pskConnections(SS, GW, 'ss.dos.test', 'hub.dos.test', { proposals: [HYBRID], psk: PSK, localTs: ['198.51.100.128/25'], remoteTs: ['198.51.100.0/25'] });
        ss = await Strongswan.start({ ns: ssNs, label: 'dos-ss', ...conn });
        const s = ss;
        stops.push(() => s.stop());
        const b = await ssEstablish(ss, log);
        ssResult = { baselineMs: b ?? NaN, underFloodMs: [], underFloodFailed: 0 };
        log(`strongSwan baseline: ${b === undefined ? 'failed' : `established in ${b.toFixed(0)} ms`}`);
      }
    }

    // Baseline: no flood.
    const baselineMs = (await timeToEstablish(ini))!;
    log(`baseline: established in ${baselineMs.toFixed(0)} ms`);
    await takeDown(ini, log);

    const out = join(work, 'flood.json');
    const flood = genNs.spawn(['node', FLOOD_JS, JSON.stringify({ target: GW, sources, rate, seconds, out })], join(work, 'flood.log'), 'dos-flood');
    stops.push(() => flood.stop(3000));
    const t0 = performance.now();
    const rss: RssSample[] = [];
    let maxHalfOpen = 0;
    let sampling = true;
    stops.unshift(async () => {
      sampling = false;
    });
    let lastCpu = cpuSeconds(gwPid);
    let lastT = performance.now();
    const sampler = (async () => {
      while (sampling) {
        const ad = await controlCall<AdmissionStatus | null>(gw.socket, 'status.admission').catch(() => null);
        const h = ad?.halfOpen ?? 0;
        maxHalfOpen = Math.max(maxHalfOpen, h);
        const kib = rssKiB(gwPid);
        const cpu = cpuSeconds(gwPid);
        const now = performance.now();
        const cpuPct = (100 * (cpu - lastCpu)) / ((now - lastT) / 1000);
        lastCpu = cpu;
        lastT = now;
        if (Number.isFinite(kib)) rss.push({ t: (now - t0) / 1000, rssKiB: kib, halfOpen: h, cpuPct });
        await sleep(250);
      }
    })();

    // Let the flood fill the half-open table and switch the responder to cookies.
    await sleep(2000);
    const underFloodMs: number[] = [];
    const underFloodDoneAt: number[] = [];
    let underFloodFailed = 0;
    for (let i = 0; i < attempts && performance.now() - t0 < (seconds - 2) * 1000; i++) {
      const ms = await timeToEstablish(ini, 32_000, log);
      if (ms === undefined) underFloodFailed++;
      else {
        underFloodMs.push(ms);
        underFloodDoneAt.push((performance.now() - t0) / 1000);
        log(`under flood: established in ${ms.toFixed(0)} ms`);
      }
      await takeDown(ini, log);
      await sleep(500);
    }
    if (ss && ssResult) {
      for (let i = 0; i < attempts && performance.now() - t0 < (seconds - 2) * 1000; i++) {
        const ms = await ssEstablish(ss, log);
        if (ms === undefined) ssResult.underFloodFailed++;
        else {
          ssResult.underFloodMs.push(ms);
          log(`strongSwan under flood: established in ${ms.toFixed(0)} ms`);
        }
        await sleep(500);
      }
    }
    const code = await flood.exited;
    sampling = false;
    await sampler;
    if (code !== 0 || !existsSync(out)) throw new Error(`flood generator failed (exit ${code}): ${readFileSync(join(work, 'flood.log'), 'utf8').slice(-2000)}`);
    const summary = JSON.parse(readFileSync(out, 'utf8')) as FloodSummary;
    log(`flood: ${summary.sent} datagrams in ${summary.seconds.toFixed(1)} s = ${summary.rate.toFixed(0)}/s from ${summary.sources} sources; ${summary.cookieReplies} COOKIE replies`);
    const admission = (await controlCall<AdmissionStatus>(gw.socket, 'status.admission'))!;
    const responderIkeSas = (await controlCall<IkeSaStatus[]>(gw.socket, 'status')).length;
    const udp = await udpCounters(gwNs);
    const loadavg = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    log(`responder UDP: ${udp.inDatagrams} datagrams read, ${udp.rcvbufErrors} dropped (receive buffer full), ${udp.inErrors} in errors; load average ${loadavg}`);
    return { flood: summary, baselineMs, underFloodMs, underFloodFailed, underFloodDoneAt, ...(ssResult ? { strongswan: ssResult } : {}), rss, admission, maxHalfOpen, responderIkeSas, udp, loadavg };
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    for (const ns of created.reverse()) ns.destroySync();
    release();
  }
}
