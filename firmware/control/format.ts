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

function child(c: ChildSaStatus, now: number | undefined): string[] {
  const ke = c.keyExchanges.length ? `  KE ${c.keyExchanges.join(' + ')}` : '';
  const age = now !== undefined && c.installedAt ? `, ${formatDuration(now - c.installedAt)}` : '';
  const alg = c.integ ? `${c.encr}/${c.integ}` : c.encr;
  return [
    `  child ${c.name} #${c.reqid}: ${c.state}${age}, ESP${c.encap ? ' in UDP' : ''} ${alg}${c.esn ? '/ESN' : ''}${ke}`,
    `    SPIs ${c.spiIn}(in) ${c.spiOut}(out)`,
    `    ${c.localTs.join(' ') || '-'} === ${c.remoteTs.join(' ') || '-'}`,
  ];
}

/**
 * Render IKE SAs. `now` is the daemon's clock (the `version` reply's `now`),
 * needed because establishedAt/installedAt are on the daemon's monotonic clock.
 * `configured` lists tunnel names, to show those without any SA.
 */
export function formatStatus(sas: IkeSaStatus[], opts: { now?: number; configured?: string[] } = {}): string {
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
    lines.push(`  fragmentation: ${yesNo(sa.fragmentation)}, NAT: local ${yesNo(sa.natLocal)} / remote ${yesNo(sa.natRemote)}, UDP encap: ${yesNo(sa.encap)}`);
    for (const c of sa.children) lines.push(...child(c, opts.now));
  }
  if (sas.length === 0) lines.push('no IKE SAs');
  if (opts.configured) {
    const idle = opts.configured.filter((n) => !sas.some((s) => s.tunnel === n));
    if (idle.length) lines.push(`configured tunnels without an IKE SA: ${idle.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}
