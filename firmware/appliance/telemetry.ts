/**
 * What the metrics and the status page need beyond the engine's snapshot:
 * counters that outlive SAs (Prometheus counters must not go down when a
 * Child SA is rekeyed away), handshake failures by reason, rekeys, and the
 * last error of each tunnel in plain words (for tunnels with no SA left to
 * carry `lastError`).
 *
 * The engine reports these only as EventAction text (engine-types.ts has no
 * structured "handshake failed" / "rekeyed" action), so they are recognised
 * from the engine's messages (ike-sa.ts fail(), engine.ts onDead(),
 * exchanges/create-child.ts); Child SA rekeys are counted from delete-child
 * actions marked `rekeyed`, which is structured.
 *
 * Byte and packet counters per tunnel = bytes of Child SAs already deleted
 * + bytes of the live ones. A deleted SA's counters are taken over from the
 * last status snapshot the moment its delete-child action is seen, and
 * topped up with its final counters once the data plane removed it, so the
 * sum never decreases.
 */
import type { DeleteChildAction, EventAction, IkeSaStatus } from '../ikev2/engine-types.js';
import type { SaCounters } from '../dataplane/types.js';
import type { MetricsCounters, DirectionCounts } from '../store/metrics.js';

interface Seen {
  tunnel: string;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
}

/** Exchange and payload names that look like notify names but are not failure reasons. */
const NOT_REASONS = new Set(['IKE_SA_INIT', 'IKE_AUTH', 'IKE_INTERMEDIATE', 'CREATE_CHILD_SA', 'IKE_FOLLOWUP_KE', 'CHILD_SA', 'IKE_SA', 'NAT_DETECTION_SOURCE_IP', 'NAT_DETECTION_DESTINATION_IP']);

/** A bounded label for a failure message: the notify the peer or we sent, 'timeout', 'AUTHENTICATION_FAILED' or 'other'. */
export function failureReason(message: string): string {
  if (/not responding|timed out|retransmit/i.test(message)) return 'timeout';
  if (/authentication of .* failed|cannot authenticate ourselves/i.test(message)) return 'AUTHENTICATION_FAILED';
  for (const m of message.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)) if (!NOT_REASONS.has(m[0])) return m[0];
  return 'other';
}

export class Telemetry {
  private readonly retiredBytes = new Map<string, DirectionCounts>();
  private readonly retiredPackets = new Map<string, DirectionCounts>();
  /** Latest counters of each live Child SA, by inbound SPI (hex). */
  private seen = new Map<string, Seen>();
  /** Deleted SAs whose final counters are still to come: the part already counted. */
  private readonly retiring = new Map<string, Seen>();
  /** Recently removed SAs (a status snapshot taken before the removal may still list them). */
  private readonly gone = new Set<string>();
  readonly rekeys = { ike: 0, child: 0 };
  readonly handshakeFailures: Record<string, number> = {};
  /** IKE SAs (spiI_spiR) that got established: a later failure is not a handshake failure. */
  private readonly established = new Set<string>();
  private readonly lastErrors = new Map<string, { message: string; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  private add(map: Map<string, DirectionCounts>, tunnel: string, inn: number, out: number): void {
    const c = map.get(tunnel) ?? { in: 0, out: 0 };
    c.in += inn;
    c.out += out;
    map.set(tunnel, c);
  }

  onEvent(a: EventAction): void {
    const { message: msg, tunnel, ikeSa } = a;
    if (/^IKE SA (established|rekeyed)\b/.test(msg)) {
      if (ikeSa) this.established.add(ikeSa);
      if (tunnel) this.lastErrors.delete(tunnel);
      if (msg.startsWith('IKE SA rekeyed')) this.rekeys.ike++;
      return;
    }
    if (msg.startsWith('IKE SA failed: ') && a.level === 'error') {
      // ike-sa.ts fail(): counted once per SA (the info-level "IKE SA failed" from onDead repeats it).
      const why = msg.slice('IKE SA failed: '.length);
      if (!ikeSa || !this.established.has(ikeSa)) this.fail(failureReason(why));
      if (tunnel) this.lastErrors.set(tunnel, { message: why, at: this.now() });
    } else if (/sending NO_PROPOSAL_CHOSEN/.test(msg)) {
      this.fail('NO_PROPOSAL_CHOSEN'); // responder side: a peer whose proposals we refuse
    } else if (msg.startsWith('IKE SA closed: ') && tunnel && !this.lastErrors.has(tunnel)) {
      this.lastErrors.set(tunnel, { message: `closed: ${msg.slice('IKE SA closed: '.length)}`, at: this.now() });
    } else if ((a.level === 'error' || a.level === 'warn') && tunnel) {
      this.lastErrors.set(tunnel, { message: msg, at: this.now() });
    }
    if (ikeSa && /^IKE SA (closed|failed): /.test(msg)) this.established.delete(ikeSa);
  }

  private fail(reason: string): void {
    this.handshakeFailures[reason] = (this.handshakeFailures[reason] ?? 0) + 1;
  }

  /** The delete-child action was carried out by the engine: its counters so far move to the retired sums. */
  onDeleteChild(a: DeleteChildAction): void {
    if (a.rekeyed) this.rekeys.child++;
    const key = (a.inboundSpi >>> 0).toString(16).padStart(8, '0');
    const s = this.seen.get(key);
    const base: Seen = s ?? { tunnel: a.tunnel, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
    this.add(this.retiredBytes, a.tunnel, base.bytesIn, base.bytesOut);
    this.add(this.retiredPackets, a.tunnel, base.packetsIn, base.packetsOut);
    this.seen.delete(key);
    this.retiring.set(key, base);
  }

  /** The data plane removed the SA: add what it counted since the last snapshot. */
  onChildRetired(a: DeleteChildAction, cin: SaCounters | undefined, cout: SaCounters | undefined): void {
    const key = (a.inboundSpi >>> 0).toString(16).padStart(8, '0');
    const base = this.retiring.get(key) ?? { tunnel: a.tunnel, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
    this.retiring.delete(key);
    this.gone.add(key);
    if (this.gone.size > 1024) this.gone.delete(this.gone.values().next().value!);
    const d = (x: number | undefined, b: number) => Math.max(0, (x ?? b) - b);
    this.add(this.retiredBytes, a.tunnel, d(cin?.bytes, base.bytesIn), d(cout?.bytes, base.bytesOut));
    this.add(this.retiredPackets, a.tunnel, d(cin?.packets, base.packetsIn), d(cout?.packets, base.packetsOut));
  }

  /** Last error of a tunnel (plain words), if any since it was last established. */
  lastError(tunnel: string): string | null {
    return this.lastErrors.get(tunnel)?.message ?? null;
  }

  /** A tunnel was removed from the configuration. */
  forget(tunnel: string): void {
    this.lastErrors.delete(tunnel);
  }

  /** Counters for formatMetrics from a status snapshot with data-plane counters (statusWithCounters). */
  counters(status: readonly IkeSaStatus[], tunnels: readonly string[]): MetricsCounters {
    const bytes = new Map<string, DirectionCounts>();
    const packets = new Map<string, DirectionCounts>();
    for (const [t, c] of this.retiredBytes) bytes.set(t, { ...c });
    for (const [t, c] of this.retiredPackets) packets.set(t, { ...c });
    const seen = new Map<string, Seen>();
    for (const sa of status)
      for (const c of sa.children) {
        const s: Seen = { tunnel: sa.tunnel, bytesIn: c.bytesIn ?? 0, bytesOut: c.bytesOut ?? 0, packetsIn: c.packetsIn ?? 0, packetsOut: c.packetsOut ?? 0 };
        // An SA already being retired is counted there (its delete action came before this snapshot).
        if (this.retiring.has(c.spiIn) || this.gone.has(c.spiIn)) continue;
        seen.set(c.spiIn, s);
        this.add(bytes, sa.tunnel, s.bytesIn, s.bytesOut);
        this.add(packets, sa.tunnel, s.packetsIn, s.packetsOut);
      }
    this.seen = seen;
    for (const t of tunnels) {
      if (!bytes.has(t)) bytes.set(t, { in: 0, out: 0 });
      if (!packets.has(t)) packets.set(t, { in: 0, out: 0 });
    }
    return {
      tunnels,
      childBytes: Object.fromEntries(bytes),
      childPackets: Object.fromEntries(packets),
      rekeys: { ...this.rekeys },
      handshakeFailures: { ...this.handshakeFailures },
    };
  }
}
