/**
 * Lifetimes and liveness of an established IKE SA and its Child SAs
 * (RFC 7296 §2.8 rekeying, §2.4 liveness; strongSwan rekey_time/life_time/
 * rand_time, dpd_delay): one deadline function and one runner, installed on
 * the IKE SA by the engine and driven by its timer.
 */
import type { IkeSa } from '../ike-sa.js';
import { rekeyChild, rekeyIke, deleteChild, type RekeyHooks } from './create-child.js';
import { deleteIke, liveness } from './informational.js';
import { jitter } from './child.js';

export interface LifecycleHooks extends RekeyHooks {
  /** Liveness check failed: the peer is gone (DPD action). */
  peerDead(sa: IkeSa): void;
}

/** Schedule the IKE SA's rekey (with jitter) and hard expiry from the tunnel's rekey_time. */
export function scheduleIkeLifetime(sa: IkeSa): void {
  const secs = sa.tunnel.rekeyTime;
  if (!secs) return;
  const ms = secs * 1000;
  const now = sa.ctx.clock.now();
  sa.rekeyAt = now + ms - jitter(sa, ms / 10);
  sa.expireAt = now + ms + ms / 10;
}

/** How long an unanswered `query-activity` holds the liveness check back (ms). */
export const ACTIVITY_GRACE_MS = 1000;

export function installLifecycle(sa: IkeSa, hooks: LifecycleHooks): void {
  let dpdPending = false;
  /** Periodic DPD: when the last liveness check went out (or the SA came up). */
  let lastDpdAt: number | undefined;
  /** On-idle DPD waiting for the data plane's answer: give up waiting at this time. */
  let activityUntil: number | undefined;
  const dpdDue = (): number | undefined => {
    const d = sa.tunnel.dpdDelay;
    if (!d || sa.state !== 'ESTABLISHED' || dpdPending) return undefined;
    if (activityUntil !== undefined) return activityUntil;
    // Cisco `dpd periodic`: every interval, whatever arrived meanwhile.
    if (sa.tunnel.dpdMode === 'periodic') return (lastDpdAt ?? sa.establishedAt ?? sa.lastInboundAt) + d * 1000;
    // On idle (strongSwan dpd_delay, FortiOS `dpd on-idle`): only after an
    // interval with nothing received from the peer, IKE or ESP (RFC 7296 §2.4).
    return sa.lastInboundAt + d * 1000;
  };
  const sendDpd = (now: number): void => {
    activityUntil = undefined;
    dpdPending = true;
    lastDpdAt = now;
    liveness(
      sa,
      () => {
        dpdPending = false;
        hooks.peerDead(sa);
      },
      () => (dpdPending = false),
    );
  };
  sa.lifecycle = {
    deadline: () => {
      if (sa.state !== 'ESTABLISHED') return undefined;
      let d: number | undefined;
      const take = (x: number | undefined): void => {
        if (x !== undefined && (d === undefined || x < d)) d = x;
      };
      if (!sa.successor) {
        take(sa.rekeyAt);
        take(sa.expireAt);
      }
      for (const c of sa.children) {
        if (c.state === 'INSTALLED') take(c.rekeyAt);
        if (c.state !== 'DELETED' && c.state !== 'DELETING') take(c.expireAt);
      }
      take(dpdDue());
      return d;
    },
    run: (now) => {
      if (sa.state !== 'ESTABLISHED') return;
      if (!sa.successor && sa.expireAt !== undefined && sa.expireAt <= now) {
        sa.expireAt = undefined;
        // Hard lifetime reached without a successful rekey (RFC 7296 §2.8).
        deleteIke(sa, 'hard lifetime expired');
        return;
      }
      if (!sa.successor && sa.rekeyAt !== undefined && sa.rekeyAt <= now) {
        sa.rekeyAt = undefined;
        // Busy (a peer's rekey or one of our Child SA rekeys in flight): retry in a second.
        if (sa.children.some((c) => c.state === 'REKEYING') || !rekeyIke(sa, hooks)) {
          if (!sa.successor && !sa.peerIkeRekey) sa.rekeyAt = now + 1000;
        }
      }
      for (const c of [...sa.children]) {
        if (c.expireAt !== undefined && c.expireAt <= now && c.state !== 'DELETED' && c.state !== 'DELETING') {
          c.expireAt = undefined;
          deleteChild(sa, c, 'hard lifetime expired');
          continue;
        }
        if (c.state === 'INSTALLED' && c.rekeyAt !== undefined && c.rekeyAt <= now) {
          c.rekeyAt = undefined;
          // One exchange at a time (window 1), not during an IKE rekey: retry shortly.
          if (sa.rekeyingIke || sa.busy || !rekeyChild(sa, c)) {
            if (c.state === 'INSTALLED' && !c.peerRekey) c.rekeyAt = now + 1000;
          }
        }
      }
      const due = dpdDue();
      if (due !== undefined && due <= now) {
        const spis = sa.children.filter((c) => c.state !== 'DELETED').map((c) => c.spiIn);
        if (activityUntil === undefined && sa.tunnel.dpdMode !== 'periodic' && sa.ctx.opts.dataPlaneActivity && spis.length > 0) {
          // ESP may have kept arriving while IKE was quiet: ask the data plane first.
          activityUntil = now + ACTIVITY_GRACE_MS;
          sa.ctx.emit({ kind: 'query-activity', tunnel: sa.tunnel.name, ikeSa: sa.uid, inboundSpis: spis });
        } else sendDpd(now);
      }
    },
    activity: (at, now) => {
      if (activityUntil === undefined || sa.state !== 'ESTABLISHED') return;
      activityUntil = undefined;
      if (at !== undefined && at > sa.lastInboundAt) sa.lastInboundAt = Math.min(at, now);
      const due = dpdDue();
      if (due !== undefined && due <= now) sendDpd(now);
    },
  };
}

