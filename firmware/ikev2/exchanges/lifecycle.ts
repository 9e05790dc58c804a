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

export function installLifecycle(sa: IkeSa, hooks: LifecycleHooks): void {
  let dpdPending = false;
  const dpdDue = (): number | undefined => {
    const d = sa.tunnel.dpdDelay;
    if (!d || sa.state !== 'ESTABLISHED' || dpdPending) return undefined;
    return sa.lastInboundAt + d * 1000;
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
        dpdPending = true;
        liveness(
          sa,
          () => {
            dpdPending = false;
            hooks.peerDead(sa);
          },
          () => (dpdPending = false),
        );
      }
    },
  };
}

