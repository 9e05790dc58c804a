/**
 * On-idle DPD counts ESP as proof of life (strongSwan asks the kernel for
 * the inbound SA's use time before sending a DPD; RFC 7296 §2.4 "only when
 * no cryptographically protected traffic has been received"). The engine
 * emits `query-activity`; this reads the inbound SAs' last-use times
 * (DataPlane.querySa, no per-packet event) and converts them to the
 * engine's clock.
 */
import type { DataPlane } from '../dataplane/types.js';
import type { Clock } from '../util/clock.js';

/** Latest inbound ESP time of these SAs on `clock`, undefined if none or unknown. */
export async function lastInboundAt(dp: DataPlane, spis: readonly number[], clock: Clock, wallNow: () => number = Date.now): Promise<number | undefined> {
  let last = 0;
  for (const spi of spis) {
    const c = await dp.querySa(spi, 'in').catch(() => undefined);
    if (c && c.lastUsed > last) last = c.lastUsed;
  }
  if (last <= 0) return undefined;
  // XFRM reports wall-clock seconds: age it on the wall clock, place it on ours.
  return dp.lastUsedClock === 'wall' ? clock.now() - Math.max(0, wallNow() - last) : last;
}
