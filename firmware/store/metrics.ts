/**
 * Prometheus text exposition (format 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/) of the
 * engine's status snapshot (IkeSaStatus[], ikev2/engine-types.ts) plus the
 * daemon's cumulative counters. Gauges come from the snapshot; counters
 * (bytes, packets, rekeys, failures) must come from the daemon because SAs
 * and their per-SA numbers disappear when SAs are deleted or rekeyed.
 *
 * Every family has # HELP and # TYPE lines; label values are escaped
 * (backslash, double quote, newline) as the format requires.
 */
import type { IkeSaStatus } from '../ikev2/engine-types.js';

export interface DirectionCounts {
  in: number;
  out: number;
}

export interface MetricsCounters {
  /** Configured tunnel names: each gets a pqgate_tunnel_up series even when down. */
  tunnels?: readonly string[];
  /** Per tunnel: ESP payload bytes through its Child SAs since start. */
  childBytes?: Record<string, DirectionCounts>;
  /** Per tunnel: ESP packets through its Child SAs since start. */
  childPackets?: Record<string, DirectionCounts>;
  /** Completed rekeys since start. */
  rekeys?: { ike: number; child: number };
  /** Failed IKE handshakes since start, by reason (e.g. NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED, timeout). */
  handshakeFailures?: Record<string, number>;
  /** IKE_SA_INIT admission (DoS protection) counters from the engine. */
  admission?: {
    halfOpen: number;
    halfOpenSources: number;
    cookiesSent: number;
    cookieless: number;
    invalidCookies: number;
    blocked: number;
    limitDrops: number;
  };
}

const ESTABLISHED = 'ESTABLISHED';

/** Label value escaping: \ → \\, " → \", newline → \n. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escaping: \ → \\, newline → \n. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

type Labels = Record<string, string>;

class Family {
  readonly samples: { labels: Labels; value: number }[] = [];
  constructor(
    readonly name: string,
    readonly type: 'gauge' | 'counter',
    readonly help: string,
  ) {}
  add(labels: Labels, value: number): this {
    this.samples.push({ labels, value });
    return this;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const s of this.samples) {
      const keys = Object.keys(s.labels);
      const l = keys.length ? `{${keys.map((k) => `${k}="${escapeLabelValue(s.labels[k]!)}"`).join(',')}}` : '';
      lines.push(`${this.name}${l} ${formatValue(s.value)}`);
    }
    return lines.join('\n');
  }
}

/** True if the IKE SA ran an ML-KEM key exchange (RFC 9370 additional exchange or initial). */
export function usedMlKem(sa: IkeSaStatus): boolean {
  return sa.postQuantum !== null || sa.keyExchanges.some((k) => /ML_KEM/i.test(k));
}

export function formatMetrics(status: readonly IkeSaStatus[], counters: MetricsCounters = {}): string {
  const established = status.filter((s) => s.state === ESTABLISHED);
  const tunnelNames = [...new Set([...(counters.tunnels ?? []), ...status.map((s) => s.tunnel)])].sort();

  const up = new Family('pqgate_tunnel_up', 'gauge', 'Tunnel has an established IKE SA with at least one installed Child SA (1) or not (0).');
  for (const t of tunnelNames) up.add({ tunnel: t }, established.some((s) => s.tunnel === t && s.children.length > 0) ? 1 : 0);

  const ikeSas = new Family('pqgate_ike_sas', 'gauge', 'Established IKE SAs.').add({}, established.length);
  const childSas = new Family('pqgate_child_sas', 'gauge', 'Child SAs installed under established IKE SAs.').add(
    {},
    established.reduce((n, s) => n + s.children.length, 0),
  );

  const bytes = new Family('pqgate_child_bytes_total', 'counter', 'ESP payload bytes through Child SAs, per tunnel and direction.');
  for (const [t, c] of Object.entries(counters.childBytes ?? {}).sort(([a], [b]) => a.localeCompare(b)))
    bytes.add({ tunnel: t, direction: 'in' }, c.in).add({ tunnel: t, direction: 'out' }, c.out);
  const packets = new Family('pqgate_child_packets_total', 'counter', 'ESP packets through Child SAs, per tunnel and direction.');
  for (const [t, c] of Object.entries(counters.childPackets ?? {}).sort(([a], [b]) => a.localeCompare(b)))
    packets.add({ tunnel: t, direction: 'in' }, c.in).add({ tunnel: t, direction: 'out' }, c.out);

  const rekeys = new Family('pqgate_rekeys_total', 'counter', 'Completed rekeys, by SA kind.')
    .add({ kind: 'ike' }, counters.rekeys?.ike ?? 0)
    .add({ kind: 'child' }, counters.rekeys?.child ?? 0);

  const failures = new Family('pqgate_handshake_failures_total', 'counter', 'Failed IKE SA establishments, by reason.');
  for (const [reason, n] of Object.entries(counters.handshakeFailures ?? {}).sort(([a], [b]) => a.localeCompare(b))) failures.add({ reason }, n);

  // No established SA: 0 rather than NaN, so alerts on "share below X" stay quiet on an idle box only if they also check ike_sas.
  const pq = new Family('pqgate_pq_share', 'gauge', 'Fraction of established IKE SAs whose key exchange included ML-KEM (0 when none is established).').add(
    {},
    established.length ? established.filter(usedMlKem).length / established.length : 0,
  );

  const families = [up, ikeSas, childSas, bytes, packets, rekeys, failures, pq];
  const ad = counters.admission;
  if (ad) {
    families.push(
      new Family('pqgate_ike_half_open', 'gauge', 'Half-open (not yet authenticated) responder IKE SAs.').add({}, ad.halfOpen),
      new Family('pqgate_ike_half_open_sources', 'gauge', 'Source prefixes (IPv4 /32, IPv6 /64) holding half-open IKE SAs.').add({}, ad.halfOpenSources),
      new Family('pqgate_ike_cookies_sent_total', 'counter', 'COOKIE replies to IKE_SA_INIT (RFC 7296 §2.6).').add({}, ad.cookiesSent),
      new Family('pqgate_ike_init_dropped_total', 'counter', 'IKE_SA_INIT requests refused by admission control, by reason (cookieless and invalid_cookie got a COOKIE reply instead of key exchange).')
        .add({ reason: 'cookieless' }, ad.cookieless)
        .add({ reason: 'invalid_cookie' }, ad.invalidCookies)
        .add({ reason: 'block_threshold' }, ad.blocked)
        .add({ reason: 'init_limit_half_open' }, ad.limitDrops),
    );
  }
  return families.map((f) => f.render()).join('\n') + '\n';
}
