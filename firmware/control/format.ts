/**
 * Human rendering of the `status` reply for `pqgate status` (the --json form
 * prints the IkeSaStatus[] as is). One block per IKE SA, then each Child SA
 * on its own line(s), in the spirit of `swanctl --list-sas`.
 */
import type { IkeSaStatus, ChildSaStatus, Endpoint } from '../ikev2/engine-types.js';

function ep(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** "ML_KEM_768" → "ML-KEM-768"; null → "none". */
export function pqLabel(pq: string | null): string {
  if (!pq) return 'none';
  return pq.replace(/_/g, '-');
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function algs(sa: IkeSaStatus): string {
  // ENCR/PRF/INTEG; INTEG is absent with AEAD ciphers (RFC 5282).
  const parts = [sa.encr ?? '?', sa.prf ?? '?'];
  if (sa.integ) parts.push(sa.integ);
  return parts.join('/');
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(n || 0))} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** "rekeyed 2 times (last 5m ago), next rekey in 7h55m" from a start time (the last rekey if rekeyed) and the scheduled rekey. */
function rekeyLine(since: number | null | undefined, rekeys: number | undefined, rekeyAt: number | null | undefined, now: number | undefined): string {
  const parts: string[] = [];
  const n = rekeys ?? 0;
  // A rekeyed SA's start time is its last rekey (the engine restarts the lineage's clock on each rekey).
  if (n > 0) parts.push(`rekeyed ${n} time${n === 1 ? '' : 's'}${now !== undefined && since ? ` (last ${formatDuration(now - since)} ago)` : ''}`);
  else parts.push('not rekeyed yet');
  if (rekeyAt === null) parts.push('no rekey scheduled');
  else if (rekeyAt !== undefined && now !== undefined) parts.push(rekeyAt > now ? `next rekey in ${formatDuration(rekeyAt - now)}` : 'rekey due now');
  return parts.join(', ');
}

function child(c: ChildSaStatus, now: number | undefined): string[] {
  const ke = c.keyExchanges.length ? `  KE ${c.keyExchanges.join(' + ')}` : '';
  const age = now !== undefined && c.installedAt ? `, ${formatDuration(now - c.installedAt)}` : '';
  const alg = c.integ ? `${c.encr}/${c.integ}` : c.encr;
  const lines = [
    `  child ${c.name} #${c.reqid}: ${c.state}${age}, ESP${c.encap ? ' in UDP' : ''} ${alg}${c.esn ? '/ESN' : ''}${ke}`,
    `    SPIs ${c.spiIn}(in) ${c.spiOut}(out)`,
    `    ${c.localTs.join(' ') || '-'} === ${c.remoteTs.join(' ') || '-'}`,
  ];
  if (c.bytesIn !== undefined || c.bytesOut !== undefined) {
    const last = (t: number | undefined) => (t && now !== undefined ? `, last ${formatDuration(now - t)} ago` : '');
    lines.push(
      `    in  ${formatBytes(c.bytesIn ?? 0)}, ${c.packetsIn ?? 0} packets${last(c.lastInAt)}; replay drops ${c.replayDrops ?? 0}, ICV failures ${c.authFailures ?? 0}${c.malformedDrops !== undefined ? `, malformed ${c.malformedDrops}` : ''}`,
      `    out ${formatBytes(c.bytesOut ?? 0)}, ${c.packetsOut ?? 0} packets${last(c.lastOutAt)}`,
    );
  }
  lines.push(`    ${rekeyLine(c.installedAt, c.rekeys, c.rekeyAt, now)}`);
  return lines;
}

export interface IdleTunnel {
  tunnel: string;
  lastError: string | null;
}

/**
 * Render IKE SAs. `now` is the daemon's clock (the `version` or
 * `status.tunnels` reply's `now`), needed because establishedAt/installedAt
 * are on the daemon's monotonic clock. `configured` lists tunnel names, to
 * show those without any SA; `idle` (status.tunnels) adds their last error.
 */
/** `health: up (probe 10.2.0.1, 1.2 ms, last reply 3 s ago); peer probes answered 12 (last 2 s ago)`; '' when there is nothing to say. */
export function healthLine(h: IkeSaStatus['health'], now?: number): string {
  if (!h || (h.target === undefined && h.probesAnswered === 0 && h.lastProbeAt === undefined)) return '';
  const ago = (t: number | undefined) => (t !== undefined && now !== undefined ? ` ${formatDuration(now - t)} ago` : '');
  const parts: string[] = [];
  if (h.target !== undefined)
    parts.push(`${h.state} (probe ${h.target}${h.rttMs !== undefined ? `, ${h.rttMs} ms` : ''}${h.lastOkAt !== undefined ? `, last reply${ago(h.lastOkAt)}` : ''}${h.failures ? `, ${h.failures} unanswered` : ''})`);
  if (h.probesAnswered || h.lastProbeAt !== undefined) parts.push(`peer probes answered ${h.probesAnswered}${h.lastProbeAt !== undefined && now !== undefined ? ` (last${ago(h.lastProbeAt)})` : ''}`);
  return `health: ${parts.join('; ')}`;
}

export function formatStatus(sas: IkeSaStatus[], opts: { now?: number; configured?: string[]; idle?: IdleTunnel[] } = {}): string {
  const lines: string[] = [];
  for (const sa of sas) {
    const age = opts.now !== undefined && sa.establishedAt !== null ? `, ${formatDuration(opts.now - sa.establishedAt)}` : '';
    lines.push(`${sa.tunnel} #${sa.id}: ${sa.state}, ${sa.role}${age}`);
    lines.push(`  ${ep(sa.local)} -> ${ep(sa.remote)}`);
    lines.push(`  ids: ${sa.localId ?? '-'} -> ${sa.remoteId ?? '-'}`);
    lines.push(`  SPIs: ${sa.spiI}_i ${sa.spiR}_r`);
    lines.push(`  IKE: ${algs(sa)}`);
    lines.push(`  key exchanges: ${sa.keyExchanges.length ? sa.keyExchanges.join(' + ') : '-'}`);
    lines.push(`  post-quantum: ${pqLabel(sa.postQuantum)}`);
    if (sa.authLocal || sa.authRemote) lines.push(`  authentication: local ${sa.authLocal ?? '-'} / remote ${sa.authRemote ?? '-'}`);
    lines.push(`  fragmentation: ${yesNo(sa.fragmentation)}, NAT: local ${yesNo(sa.natLocal)} / remote ${yesNo(sa.natRemote)}, UDP encap: ${yesNo(sa.encap)}`);
    lines.push(`  ${rekeyLine(sa.establishedAt, sa.rekeys, sa.rekeyAt, opts.now)}`);
    if (sa.lastError) lines.push(`  last error: ${sa.lastError}`);
    const hl = healthLine(sa.health, opts.now);
    if (hl) lines.push(`  ${hl}`);
    const d = sa.drops;
    if (d && d.replay + d.auth + d.malformed + d.unexpected > 0)
      lines.push(`  dropped IKE messages: replayed ${d.replay}, ICV failures ${d.auth}, malformed ${d.malformed}, unexpected ${d.unexpected}`);
    for (const c of sa.children) lines.push(...child(c, opts.now));
  }
  if (sas.length === 0) lines.push('no IKE SAs');
  const idle = opts.idle ?? (opts.configured ?? []).filter((n) => !sas.some((s) => s.tunnel === n)).map((tunnel) => ({ tunnel, lastError: null }));
  if (idle.length) {
    lines.push(`configured tunnels without an IKE SA: ${idle.map((t) => t.tunnel).join(', ')}`);
    for (const t of idle) if (t.lastError) lines.push(`  ${t.tunnel}: last error: ${t.lastError}`);
  }
  return lines.join('\n') + '\n';
}
