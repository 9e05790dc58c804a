/**
 * Trap policies (strongSwan start_action = trap / dpd_action = trap, Cisco
 * on-demand, FortiOS auto-negotiate off): an outbound policy for the
 * tunnel's configured traffic selectors with no SA behind it. The first
 * packet that matches makes the data plane raise an acquire (userspace: a
 * TUN packet with no SA; XFRM: the kernel's XFRM_MSG_ACQUIRE), and the
 * daemon initiates the tunnel. Packets meanwhile are dropped and counted
 * (UserspaceDataPlane.stats.noSa), not queued: the sender retransmits.
 *
 * A trap stands while the tunnel has no Child SA; it is removed as soon as
 * one is installed and comes back when the tunnel closes.
 */
import type { TunnelConfig } from '../config/types.js';
import type { PolicySpec } from '../dataplane/types.js';
import type { Ctx } from './context.js';
import { IKE_PORT } from './constants.js';

export function trapPolicies(t: TunnelConfig, ctx: Ctx, reqid: number): PolicySpec[] {
  const sel = (l: TunnelConfig['localTs']) => l.map(({ family, startAddr, endAddr, ipProtocol, startPort, endPort }) => ({ family, startAddr, endAddr, ipProtocol, startPort, endPort }));
  const any = t.remoteAddr?.includes(':') ? '::' : '0.0.0.0';
  return [
    {
      reqid,
      direction: 'out',
      local: sel(t.localTs),
      remote: sel(t.remoteTs),
      ifId: ctx.ifIdFor(t.name),
      tunnel: t.name,
      src: { address: t.localAddr ?? any, port: IKE_PORT },
      dst: { address: t.remoteAddr ?? any, port: t.remotePort },
    },
  ];
}

/** Should a closed tunnel leave a trap behind? start_action trap always; dpd_action hold after a dead peer. */
export function wantsTrap(t: TunnelConfig, deadPeer: boolean): boolean {
  if (!t.remoteAddr) return false;
  return t.startAction === 'trap' || (deadPeer && t.dpdAction === 'hold');
}
