/**
 * Places lost pings against rekey events (docs/testing.md "Open items":
 * the zero-loss rekey test). Input: the output of `ping -D -n` (one
 * `[epoch.usec] ... icmp_seq=N ...` line per reply), pqgate's daemon log
 * (ISO timestamps) and charon's file log (`HH:MM:SS.mmm`, time_add_ms).
 * Output: one block per lost sequence number with the events of both
 * daemons within ±2 s of the moment it was sent.
 */

export interface TimedLine {
  at: number; // epoch ms
  who: 'pqgate' | 'charon';
  text: string;
}

/** Sequence number → reply time (epoch ms) from `ping -D` output. */
export function parsePingReplies(out: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const line of out.split('\n')) {
    const r = /^\[(\d+\.\d+)\].*icmp_seq=(\d+)/.exec(line);
    if (r && /bytes from/.test(line)) m.set(Number(r[2]), Math.round(Number(r[1]) * 1000));
  }
  return m;
}

/** The `n` replies with the longest round trip (`time=X ms`). */
export function slowestReplies(out: string, n: number): { seq: number; ms: number }[] {
  const all: { seq: number; ms: number }[] = [];
  for (const line of out.split('\n')) {
    const r = /icmp_seq=(\d+).*time=([\d.]+) ms/.exec(line);
    if (r) all.push({ seq: Number(r[1]), ms: Number(r[2]) });
  }
  return all.sort((a, b) => b.ms - a.ms).slice(0, n);
}

const PQ_EVENT = /CHILD_SA|Child SA|IKE SA|rekey|collision|delete|Delete|install|INFORMATIONAL|retransmit/;
const SS_EVENT = /CHILD_SA|IKE_SA|rekey|collision|delet|install|INFORMATIONAL|retransmit|SPIs/;

export function pqgateEvents(log: string): TimedLine[] {
  const out: TimedLine[] = [];
  for (const line of log.split('\n')) {
    const r = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)\s+(.*)$/.exec(line);
    if (r && PQ_EVENT.test(r[2]!)) out.push({ at: Date.parse(r[1]!), who: 'pqgate', text: r[2]!.slice(0, 200) });
  }
  return out;
}

/** charon's `HH:MM:SS.mmm` is local time of day: anchored on the day of `ref` (epoch ms). */
export function charonEvents(log: string, ref: number): TimedLine[] {
  const out: TimedLine[] = [];
  const day = new Date(ref);
  for (const line of log.split('\n')) {
    const r = /^(\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?\s+(.*)$/.exec(line);
    if (!r || !SS_EVENT.test(r[5]!)) continue;
    const d = new Date(day);
    d.setHours(Number(r[1]), Number(r[2]), Number(r[3]), Number(r[4] ?? 0));
    out.push({ at: d.getTime(), who: 'charon', text: r[5]!.slice(0, 200) });
  }
  return out;
}

/**
 * Lost sequence numbers with their estimated send time (interpolated from
 * the neighbouring replies, else start + (seq-1) × interval) and the events
 * of both daemons within `windowMs` of it.
 */
export function lostPingReport(pingOut: string, startMs: number, sent: number, pqLog: string, ssLog: string, intervalMs = 200, windowMs = 2000): string {
  const replies = parsePingReplies(pingOut);
  const events = [...pqgateEvents(pqLog), ...charonEvents(ssLog, startMs)].sort((a, b) => a.at - b.at);
  const lines: string[] = [`[lifecycle] lost pings (${sent - replies.size} of ${sent}):`];
  for (let seq = 1; seq <= sent; seq++) {
    if (replies.has(seq)) continue;
    let at = startMs + (seq - 1) * intervalMs;
    for (let d = 1; d < 20; d++) {
      const prev = replies.get(seq - d);
      if (prev !== undefined) {
        at = prev + d * intervalMs;
        break;
      }
    }
    lines.push(`  seq ${seq} sent ≈ ${new Date(at).toISOString()}`);
    for (const e of events) if (Math.abs(e.at - at) <= windowMs) lines.push(`    ${e.at - at >= 0 ? '+' : ''}${e.at - at} ms ${e.who}: ${e.text}`);
  }
  return lines.join('\n');
}
