/**
 * Per-tunnel health (types.ts): the peer's probes counted by the data plane,
 * and the optional active probe (`health_check`) run here.
 *
 * The active probe pings `target` through the tunnel with the system's ping
 * (iputils): the kernel routes it into the tunnel like any other packet, so
 * the same code works with the userspace data plane (TUN) and the kernel's
 * XFRM. No Child SA → no ping (it could leave in clear by the default route)
 * and the round counts as a miss. `failures` consecutive misses → down, one
 * reply → up (FortiOS link-monitor failtime; recovery after one reply rather
 * than recoverytime: an operator watching a repaired tunnel wants it green).
 */
import { execFile } from 'node:child_process';
import type { HealthCheckConfig, TunnelConfig } from '../config/types.js';
import type { Clock } from '../util/clock.js';
import type { HealthState, TunnelHealth } from './types.js';

/** Counters the data plane keeps per tunnel for the peer's probes (DataPlane.probeCounters). */
export interface ProbeCounters {
  probesSeen: number;
  probesAnswered: number;
  /** Clock ms of the last probe from the peer, 0 if none. */
  lastProbeAt: number;
}

/** One ICMP echo: round-trip ms, or undefined when no reply came within the timeout. */
export type Pinger = (target: string, source: string | undefined, timeoutMs: number) => Promise<number | undefined>;

/** The active probe's state machine, pure (tests drive it with a fake clock). */
export class ActiveProbe {
  state: HealthState = 'unknown';
  failures = 0;
  rttMs: number | undefined;
  lastOkAt: number | undefined;
  /** A probe is in flight (never two at once for a tunnel). */
  busy = false;
  nextAt: number;
  readonly cfg: HealthCheckConfig;

  // No parameter properties: the sources also run under Node's type stripping (test/daemon/process.test.ts).
  constructor(cfg: HealthCheckConfig, now: number) {
    this.cfg = cfg;
    this.nextAt = now;
  }

  /** Record one round: rtt in ms, or undefined for a miss. */
  result(now: number, rtt: number | undefined): HealthState {
    this.busy = false;
    this.nextAt = now + this.cfg.interval * 1000;
    if (rtt !== undefined) {
      this.failures = 0;
      this.rttMs = Math.round(rtt * 1000) / 1000;
      this.lastOkAt = now;
      this.state = 'up';
    } else {
      this.failures++;
      if (this.failures >= this.cfg.failures) this.state = 'down';
    }
    return this.state;
  }
}

export interface HealthMonitorOptions {
  clock: Clock;
  /** Default: the system's ping (systemPinger). */
  pinger?: Pinger;
  /** The data plane's counters for the peer's probes (undefined: it keeps none, e.g. XFRM). */
  counters?: (tunnel: string) => ProbeCounters | undefined;
  /** Does the tunnel have an installed Child SA right now? */
  hasChildSa: (tunnel: string) => boolean;
  /** A state change (up ↔ down) worth an event. */
  onChange?: (tunnel: string, state: HealthState, detail: string) => void;
  /** Timer hooks (tests). Default setTimeout/clearTimeout. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export class HealthMonitor {
  private readonly probes = new Map<string, ActiveProbe>();
  private timer: unknown;
  private closed = false;
  private readonly pinger: Pinger;
  private readonly o: HealthMonitorOptions;

  constructor(o: HealthMonitorOptions) {
    this.o = o;
    this.pinger = o.pinger ?? systemPinger;
  }

  /** Start, keep or stop active probes for the new tunnel set (a changed health_check restarts its state). */
  configure(tunnels: readonly TunnelConfig[]): void {
    const now = this.o.clock.now();
    const want = new Map(tunnels.filter((t) => t.healthCheck).map((t) => [t.name, t.healthCheck!]));
    for (const [name, p] of this.probes) if (JSON.stringify(want.get(name)) !== JSON.stringify(p.cfg)) this.probes.delete(name);
    for (const [name, cfg] of want) if (!this.probes.has(name)) this.probes.set(name, new ActiveProbe(cfg, now + cfg.interval * 1000));
    this.arm();
  }

  health(tunnel: string): TunnelHealth {
    const c = this.o.counters?.(tunnel);
    const p = this.probes.get(tunnel);
    const h: TunnelHealth = { state: p?.state ?? 'unknown', probesAnswered: c?.probesAnswered ?? 0 };
    if (c) h.probesSeen = c.probesSeen;
    if (c && c.lastProbeAt > 0) h.lastProbeAt = c.lastProbeAt;
    if (p) {
      h.target = p.cfg.target;
      if (p.rttMs !== undefined) h.rttMs = p.rttMs;
      if (p.lastOkAt !== undefined) h.lastOkAt = p.lastOkAt;
      h.failures = p.failures;
    }
    return h;
  }

  /** Run every probe that is due (the timer calls it; tests may call it directly). */
  runDue(): Promise<void>[] {
    const now = this.o.clock.now();
    const runs: Promise<void>[] = [];
    for (const [name, p] of this.probes) {
      if (p.busy || p.nextAt > now) continue;
      p.busy = true;
      runs.push(this.probeOnce(name, p));
    }
    this.arm();
    return runs;
  }

  private async probeOnce(name: string, p: ActiveProbe): Promise<void> {
    const before = p.state;
    let rtt: number | undefined;
    let why = 'no reply';
    if (!this.o.hasChildSa(name)) why = 'no Child SA';
    else {
      try {
        rtt = await this.pinger(p.cfg.target, p.cfg.source, p.cfg.timeout * 1000);
      } catch (e) {
        why = `ping failed: ${(e as Error).message}`;
      }
    }
    if (this.closed || this.probes.get(name) !== p) return;
    const after = p.result(this.o.clock.now(), rtt);
    if (after !== before && after !== 'unknown') this.o.onChange?.(name, after, after === 'up' ? `reply from ${p.cfg.target} in ${p.rttMs} ms` : `${p.failures} probes to ${p.cfg.target} unanswered (${why})`);
    this.arm();
  }

  private arm(): void {
    if (this.closed) return;
    if (this.timer !== undefined) (this.o.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout)))(this.timer);
    this.timer = undefined;
    let next: number | undefined;
    for (const p of this.probes.values()) if (!p.busy && (next === undefined || p.nextAt < next)) next = p.nextAt;
    if (next === undefined) return;
    const ms = Math.max(0, Math.ceil(next - this.o.clock.now()));
    const set = this.o.setTimer ?? ((fn, d) => setTimeout(fn, d).unref());
    this.timer = set(() => {
      this.timer = undefined;
      void Promise.all(this.runDue());
    }, ms);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) (this.o.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout)))(this.timer);
    this.timer = undefined;
    this.probes.clear();
  }
}

/** `rtt min/avg/max/mdev = 0.045/0.045/0.045/0.000 ms` → 0.045 (one probe: all equal). */
export function parsePingRtt(out: string): number | undefined {
  const m = /=\s*([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(out);
  if (!m || !/\b1 (?:packets )?received/.test(out)) return undefined;
  return Number(m[2]);
}

/** One echo with iputils ping (numeric, quiet, one packet, timeout in whole seconds ≥ 1). */
export const systemPinger: Pinger = (target, source, timeoutMs) =>
  new Promise((resolve, reject) => {
    const args = ['-n', '-q', '-c', '1', '-W', String(Math.max(1, Math.ceil(timeoutMs / 1000))), ...(source ? ['-I', source] : []), target];
    execFile('ping', args, { timeout: timeoutMs + 2000 }, (err, stdout) => {
      // Exit 1 = no reply (a miss, not an error); anything else without output is an error.
      if (err && (err as { code?: unknown }).code !== 1 && !stdout) return reject(err);
      resolve(parsePingRtt(stdout));
    });
  });
