/**
 * The dashboard's view of the daemon: one entry per configured tunnel with
 * every IKE SA and every Child SA, each classified up / degraded / down /
 * connecting / disabled. The classification is the "honest status": an
 * IKE SA that is ESTABLISHED is not "up" unless every Child SA under it is
 * installed and has received packets recently. A Child SA that receives
 * nothing while the IKE SA lives is how a broken tunnel usually looks
 * (wrong selectors, a peer that dropped its Child SA, a firewall eating
 * ESP), and one line per tunnel saying "up" hides it.
 *
 * Times: the daemon reports SA times on its monotonic clock; `now` in the
 * status reply (api.ts TunnelStatus.now) converts them to "ago" / "in".
 */
import type { TunnelStatus } from '../firmware/control/api.js';
import type { ChildSaStatus, IkeSaStatus } from '../firmware/ikev2/engine-types.js';
import type { TunnelHealth } from '../firmware/health/types.js';
import { isMethodMissing, type DaemonApi } from './daemon-client.js';

export type Health = 'up' | 'degraded' | 'down' | 'connecting' | 'disabled';

/** A Child SA may be silent this long after install before it counts as degraded. */
export const CHILD_GRACE_MS = 30_000;
/** Inbound silence that makes an installed Child SA degraded. */
export const INBOUND_SILENCE_MS = 60_000;

export interface ChildView {
  key: string;
  name: string;
  reqid: number;
  state: string;
  health: Health;
  reason: string;
  spiIn: string;
  spiOut: string;
  alg: string;
  keyExchanges: string[];
  localTs: string[];
  remoteTs: string[];
  encap: boolean;
  bytesIn: number | null;
  bytesOut: number | null;
  packetsIn: number | null;
  packetsOut: number | null;
  replayDrops: number | null;
  authFailures: number | null;
  lastInAgoMs: number | null;
  installedAgoMs: number | null;
  nextRekeyInMs: number | null;
  rekeys: number;
}

export interface IkeView {
  id: number;
  state: string;
  role: string;
  local: string;
  remote: string;
  localId: string | null;
  remoteId: string | null;
  algs: string;
  keyExchanges: string[];
  /** "ML-KEM-768", "ML-KEM-1024", another ML-KEM name, or "none". */
  pq: string;
  auth: string | null;
  nat: string;
  fragmentation: boolean;
  establishedAgoMs: number | null;
  nextRekeyInMs: number | null;
  rekeys: number;
  lastError: string | null;
  health: Health;
  reason: string;
  children: ChildView[];
}

/** The tunnel's health probes (daemon TunnelHealth) as the dashboard shows them. */
export interface ProbeView {
  /** Active probe verdict; 'unknown' without a probe or before its first verdict. */
  state: 'up' | 'down' | 'unknown';
  target: string | null;
  rttMs: number | null;
  lastOkAgoMs: number | null;
  failures: number | null;
  /** Peer's probes (Cloudflare-style) answered, and when the last one arrived. */
  probesAnswered: number;
  lastProbeAgoMs: number | null;
}

export interface TunnelView {
  name: string;
  /** null: the daemon reports no health for this tunnel (older daemon). */
  probe: ProbeView | null;
  configured: boolean;
  enabled: boolean;
  remote: string | null;
  health: Health;
  reason: string;
  sas: IkeView[];
  lastError: string | null;
  nextAttemptInMs: number | null;
}

export interface DashboardModel {
  /** Wall clock of the web server when the model was built (ms). */
  generatedAt: number;
  daemon: 'ok' | 'unreachable';
  daemonError?: string;
  tunnels: TunnelView[];
  summary: Record<Health, number>;
}

/** "ML_KEM_768" → "ML-KEM-768"; null → "none". */
export function pqBadge(pq: string | null | undefined): string {
  return pq ? pq.replace(/_/g, '-') : 'none';
}

const HINTS: [RegExp, string][] = [
  [/AUTHENTICATION_FAILED/, 'the peer rejected our authentication, or we rejected its: check the pre-shared key and both identities'],
  [/NO_PROPOSAL_CHOSEN/, 'no algorithm set in common with the peer: compare the IKE/ESP proposals on both sides'],
  [/TS_UNACCEPTABLE/, 'the peer does not accept our traffic selectors: compare local/remote subnets on both sides'],
  [/INVALID_KE_PAYLOAD/, 'the peer wants a different key exchange group first'],
  [/INVALID_SYNTAX|UNSUPPORTED_CRITICAL_PAYLOAD/, 'the peer could not parse our message (an interoperability problem)'],
  [/not responding|liveness|timed out|no reply/i, 'the peer does not answer: is it reachable (routing, firewall for UDP 500/4500) and running?'],
  [/FAILED_CP_REQUIRED|INTERNAL_ADDRESS_FAILURE/, 'the peer expects a configuration payload (virtual IP) that this gateway does not request'],
];

/** The daemon's error text plus, for known causes, what it means in plain words. */
export function plainError(raw: string | null | undefined): string | null {
  if (!raw) return null;
  for (const [re, hint] of HINTS) if (re.test(raw)) return `${raw} — ${hint}`;
  return raw;
}

const ago = (now: number | undefined, t: number | null | undefined): number | null =>
  now === undefined || t === null || t === undefined || t <= 0 ? null : Math.max(0, now - t);
const until = (now: number | undefined, t: number | null | undefined): number | null =>
  now === undefined || t === null || t === undefined ? null : Math.max(0, t - now);
const num = (v: number | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function fmtS(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 120 ? `${Math.round(s / 60)} min` : `${s} s`;
}

/**
 * `probed`: an active health probe gives the verdict on traffic (ikeView),
 * so the "no inbound traffic" rules do not apply to this Child SA.
 */
function childView(tunnel: string, sa: IkeSaStatus, c: ChildSaStatus, now: number | undefined, probed = false): ChildView {
  const installedAgo = ago(now, c.installedAt);
  const lastInAgo = c.lastInAt ? ago(now, c.lastInAt) : null;
  let health: Health = 'up';
  let reason = 'installed, receiving traffic';
  if (c.state !== 'INSTALLED' && c.state !== 'REKEYING') {
    health = 'degraded';
    reason = `Child SA is ${c.state.toLowerCase()}`;
  } else if (c.packetsIn === undefined) {
    health = 'degraded';
    reason = 'the data plane reports no counters for this SA';
  } else if (probed) {
    reason = c.state === 'REKEYING' ? 'rekeying' : 'installed (traffic judged by the health probe)';
  } else if (installedAgo !== null && installedAgo > CHILD_GRACE_MS && c.packetsIn === 0) {
    health = 'degraded';
    reason = `no packet received since the Child SA came up ${fmtS(installedAgo)} ago`;
  } else if (lastInAgo !== null && lastInAgo > INBOUND_SILENCE_MS) {
    health = 'degraded';
    reason = `no packet received for ${fmtS(lastInAgo)}`;
  } else if (c.packetsIn === 0) {
    reason = 'installed, waiting for the first packet';
  } else if (c.state === 'REKEYING') reason = 'rekeying';
  return {
    key: `${tunnel}/${sa.id}/${c.reqid}/${c.spiIn}`,
    name: c.name,
    reqid: c.reqid,
    state: c.state,
    health,
    reason,
    spiIn: c.spiIn,
    spiOut: c.spiOut,
    alg: c.integ ? `${c.encr}/${c.integ}` : c.encr,
    keyExchanges: c.keyExchanges,
    localTs: c.localTs,
    remoteTs: c.remoteTs,
    encap: c.encap,
    bytesIn: num(c.bytesIn),
    bytesOut: num(c.bytesOut),
    packetsIn: num(c.packetsIn),
    packetsOut: num(c.packetsOut),
    replayDrops: num(c.replayDrops),
    authFailures: num(c.authFailures),
    lastInAgoMs: lastInAgo,
    installedAgoMs: installedAgo,
    nextRekeyInMs: until(now, c.rekeyAt),
    rekeys: c.rekeys,
  };
}

const CONNECTING = new Set(['CONNECTING', 'INTERMEDIATE', 'AUTHENTICATING']);

function ikeView(sa: IkeSaStatus, now: number | undefined, th?: TunnelHealth): IkeView {
  // An active probe with a verdict replaces the inbound-traffic heuristic (docs/webui.md).
  const probe = th?.target !== undefined && th.state !== 'unknown' ? th : undefined;
  const children = sa.children.map((c) => childView(sa.tunnel, sa, c, now, !!probe));
  let health: Health;
  let reason: string;
  if (sa.state === 'ESTABLISHED') {
    const bad = children.filter((c) => c.health !== 'up');
    if (children.length === 0) [health, reason] = ['degraded', 'IKE SA established but no Child SA: no traffic can flow'];
    else if (probe?.state === 'down') [health, reason] = ['degraded', `health probe to ${probe.target}: ${probe.failures ?? 0} probes in a row unanswered`];
    else if (probe && !bad.length) [health, reason] = ['up', `established, health probe to ${probe.target} answered${probe.rttMs !== undefined ? ` in ${probe.rttMs} ms` : ''}`];
    else if (bad.length) [health, reason] = ['degraded', `${bad.length} of ${children.length} Child SA${children.length === 1 ? '' : 's'} not passing traffic`];
    else [health, reason] = ['up', 'established, traffic flowing'];
  } else if (CONNECTING.has(sa.state)) [health, reason] = ['connecting', `negotiating (${sa.state.toLowerCase()})`];
  else [health, reason] = ['down', `IKE SA ${sa.state.toLowerCase()}`];
  const addr = (e: { address: string; port: number }) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);
  const nat = sa.natLocal || sa.natRemote ? `NAT ${sa.natLocal ? 'here' : ''}${sa.natLocal && sa.natRemote ? ' and ' : ''}${sa.natRemote ? 'at the peer' : ''}` : 'no NAT';
  return {
    id: sa.id,
    state: sa.state,
    role: sa.role,
    local: addr(sa.local),
    remote: addr(sa.remote),
    localId: sa.localId,
    remoteId: sa.remoteId,
    algs: [sa.encr ?? '?', sa.prf ?? '?', ...(sa.integ ? [sa.integ] : [])].join(' / '),
    keyExchanges: sa.keyExchanges,
    pq: pqBadge(sa.postQuantum),
    auth: sa.authLocal ?? null,
    nat: `${nat}${sa.encap ? ', ESP in UDP' : ''}`,
    fragmentation: sa.fragmentation,
    establishedAgoMs: ago(now, sa.establishedAt),
    nextRekeyInMs: until(now, sa.rekeyAt),
    rekeys: sa.rekeys,
    lastError: plainError(sa.lastError),
    health,
    reason,
    children,
  };
}

function probeView(h: TunnelHealth, now: number | undefined): ProbeView {
  return {
    state: h.state,
    target: h.target ?? null,
    rttMs: num(h.rttMs),
    lastOkAgoMs: h.lastOkAt !== undefined ? ago(now, h.lastOkAt) : null,
    failures: num(h.failures),
    probesAnswered: h.probesAnswered,
    lastProbeAgoMs: h.lastProbeAt !== undefined ? ago(now, h.lastProbeAt) : null,
  };
}

const RANK: Record<Health, number> = { down: 0, degraded: 1, connecting: 2, up: 3, disabled: 4 };

export interface ConfiguredTunnel {
  name: string;
  enabled?: boolean;
  remote_addr?: string;
}

export function buildDashboard(status: TunnelStatus, configured: readonly ConfiguredTunnel[], generatedAt = Date.now()): DashboardModel {
  const now = status.now;
  const names = [...new Set([...configured.map((t) => t.name), ...status.sas.map((s) => s.tunnel), ...status.idle.map((i) => i.tunnel)])];
  const tunnels = names.map((name): TunnelView => {
    const cfg = configured.find((t) => t.name === name);
    const enabled = cfg ? cfg.enabled !== false : true;
    const th = status.health?.[name] ?? status.sas.find((s) => s.tunnel === name && s.health)?.health;
    const sas = status.sas.filter((s) => s.tunnel === name).map((s) => ikeView(s, now, th));
    const idle = status.idle.find((i) => i.tunnel === name);
    let health: Health;
    let reason: string;
    const best = sas.filter((s) => s.state === 'ESTABLISHED');
    if (best.length) {
      // Several IKE SAs (a rekey in progress, duplicates): the tunnel is as good as its best established one.
      const top = best.sort((a, b) => RANK[b.health] - RANK[a.health])[0]!;
      [health, reason] = [top.health, top.reason];
    } else if (sas.some((s) => s.health === 'connecting')) [health, reason] = ['connecting', 'negotiating with the peer'];
    else if (!enabled) [health, reason] = ['disabled', 'disabled in the configuration'];
    else {
      health = 'down';
      const err = plainError(idle?.lastError ?? sas.find((s) => s.lastError)?.lastError);
      reason = err ? `down: ${err}` : cfg?.remote_addr && cfg.remote_addr !== '%any' ? 'down: no IKE SA' : 'waiting for the peer to connect (responder only)';
    }
    return {
      name,
      probe: th ? probeView(th, now) : null,
      configured: !!cfg,
      enabled,
      remote: cfg?.remote_addr ?? null,
      health,
      reason,
      sas,
      lastError: plainError(idle?.lastError ?? null),
      nextAttemptInMs: until(now, idle?.nextAttemptAt),
    };
  });
  const summary: Record<Health, number> = { up: 0, degraded: 0, down: 0, connecting: 0, disabled: 0 };
  for (const t of tunnels) summary[t.health]++;
  return { generatedAt, daemon: 'ok', tunnels, summary };
}

/**
 * `status.tunnels` from the daemon; an older daemon without it gets
 * `status` plus the `version` reply's clock, and the idle list is derived
 * from the configured names.
 */
export async function fetchTunnelStatus(d: DaemonApi, configured: readonly ConfiguredTunnel[]): Promise<TunnelStatus> {
  try {
    return await d.call('status.tunnels', {});
  } catch (e) {
    if (!isMethodMissing(e)) throw e;
  }
  const [sas, version] = await Promise.all([d.call('status', {}), d.call('version', {}).catch(() => undefined)]);
  const now = (version as { now?: unknown } | undefined)?.now;
  return {
    sas,
    idle: configured.filter((t) => !sas.some((s) => s.tunnel === t.name)).map((t) => ({ tunnel: t.name, lastError: null, nextAttemptAt: null })),
    ...(typeof now === 'number' ? { now } : {}),
  };
}
