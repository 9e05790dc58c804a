/**
 * The engine's next timer without asking every IKE SA on every datagram.
 *
 * An IKE SA's next deadline (IkeSa.nextDeadline: retransmission, half-open
 * timeout, unauthenticated-error grace, lifecycle rekeys/expiry/DPD) is a
 * function of the SA's own state, which changes only while the engine works
 * on that SA. So the engine records which SAs an entry point touched and
 * recomputes only theirs; a min-heap (stale entries skipped lazily) gives the
 * earliest. A hub with 10,000 SAs otherwise spends O(SAs) per datagram in
 * nextTimer(), which made bringing up N tunnels O(N²).
 *
 * Conservative on purpose: exchanges that can change *other* SAs (a rekey
 * moves Child SAs to the new IKE SA, a collision marks the loser, a delete
 * may touch a successor) and every command other than `up`, every tick and
 * every configuration load invalidate the whole index, which then costs one
 * full pass, as before. Only IKE_SA_INIT, IKE_INTERMEDIATE and IKE_AUTH, the
 * exchanges of a new SA, are trusted to change their own SA alone (IKE_AUTH's
 * INITIAL_CONTACT deletes other SAs, which leave the index when they die).
 */
import { ExchangeType } from './constants.js';
import type { IkeSa } from './ike-sa.js';

const OWN_SA_EXCHANGES = new Set<number>([ExchangeType.IKE_SA_INIT, ExchangeType.IKE_INTERMEDIATE, ExchangeType.IKE_AUTH]);

interface Entry {
  at: number;
  sa: IkeSa;
}

export class DeadlineIndex {
  private readonly current = new Map<IkeSa, number>();
  private readonly dirty = new Set<IkeSa>();
  private all = true;
  private heap: Entry[] = [];

  /** The SA's state may have changed: recompute its deadline before the next earliest(). */
  touch(sa: IkeSa): void {
    if (!this.all) this.dirty.add(sa);
  }

  /** A datagram for `sa` (undefined: no SA) carrying `exchange`. */
  touchFor(sa: IkeSa | undefined, exchange: number): void {
    if (!OWN_SA_EXCHANGES.has(exchange)) this.all = true;
    else if (sa) this.touch(sa);
  }

  /** Anything may have changed: the next earliest() looks at every SA. */
  invalidateAll(): void {
    this.all = true;
    this.dirty.clear();
  }

  /** The SA is gone (its heap entries are now stale). */
  remove(sa: IkeSa): void {
    this.current.delete(sa);
    this.dirty.delete(sa);
  }

  /** Earliest deadline over `all` (every live SA of the engine). */
  earliest(all: Iterable<IkeSa>): number | undefined {
    if (this.all) {
      this.all = false;
      this.dirty.clear();
      this.current.clear();
      this.heap = [];
      for (const sa of all) this.update(sa);
    } else {
      for (const sa of this.dirty) this.update(sa);
      this.dirty.clear();
    }
    // Stale tops: the SA's deadline moved or the SA is gone.
    while (this.heap.length > 0 && this.current.get(this.heap[0]!.sa) !== this.heap[0]!.at) this.pop();
    // Bound the stale entries deeper in the heap.
    if (this.heap.length > 2 * this.current.size + 1024) this.rebuild();
    return this.heap[0]?.at;
  }

  private update(sa: IkeSa): void {
    const d = sa.alive ? sa.nextDeadline() : undefined;
    const old = this.current.get(sa);
    if (d === old) return;
    if (d === undefined) {
      this.current.delete(sa);
      return;
    }
    this.current.set(sa, d);
    this.push({ at: d, sa });
  }

  private rebuild(): void {
    this.heap = [];
    for (const [sa, at] of this.current) this.push({ at, sa });
  }

  private push(e: Entry): void {
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= e.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= last.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
