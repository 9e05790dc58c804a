/**
 * Per-tunnel health as the daemon reports it (status JSON, `pqgate status`,
 * the web dashboard, the boot health gate of firmware/upgrade). STABLE: the
 * field names are read by other components; add fields, never rename.
 *
 * Two sources (docs/dataplane.md "Health probes"):
 *  - probes *from the peer* (Cloudflare's tunnel health checks: ICMP echo
 *    inside the tunnel, answered back through the same tunnel): counted by
 *    the data plane;
 *  - an optional *active* probe per tunnel (`health_check`, FortiOS
 *    link-monitor / Cisco IP SLA style): an ICMP echo to `target` through the
 *    tunnel every `interval` seconds; `failures` consecutive misses → down,
 *    one reply → up.
 */
export type HealthState = 'up' | 'down' | 'unknown';

export interface TunnelHealth {
  /**
   * With an active probe: its verdict ('unknown' until the first reply or
   * until `failures` misses). Without one: always 'unknown' (the dashboard
   * falls back to its inbound-traffic rule).
   */
  state: HealthState;
  /** Echo replies the tunnel sent back for the peer's probes (Cloudflare-style health checks). */
  probesAnswered: number;
  /** Echo requests/replies from the peer seen inside the tunnel. */
  probesSeen?: number;
  /** Clock ms (the status snapshot's `now` clock) of the last probe from the peer. */
  lastProbeAt?: number;
  /** Active probe: the configured target address. */
  target?: string;
  /** Active probe: round-trip time of the last reply, ms. */
  rttMs?: number;
  /** Active probe: clock ms of the last reply. */
  lastOkAt?: number;
  /** Active probe: consecutive misses (0 after a reply). */
  failures?: number;
}
