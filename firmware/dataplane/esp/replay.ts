/**
 * ESP anti-replay window.
 *
 *   RFC 4303 §3.4.3  sequence number verification: reject duplicates and
 *                    packets left of the window; the window advances only
 *                    for packets whose ICV verified. So the check (before the
 *                    ICV) and the update (after it) are separate calls.
 *   RFC 4303 App. A  extended (64-bit) sequence numbers: only the low 32 bits
 *                    travel; the receiver infers the high 32 bits from its
 *                    window (A2.2) and includes them in the ICV input.
 *   RFC 6479         the bitmap as a ring of 32-bit words with one spare word,
 *                    so advancing the window clears whole words instead of
 *                    shifting bits.
 *
 * Sequence numbers are JS numbers: exact up to 2^53, far beyond any SA's
 * life (2^53 packets at 10 Mpps is 28 years); the data plane hard-expires an
 * SA before that (see esp/sa.ts).
 */

const TWO32 = 0x1_0000_0000;
/** Bitmap sizes above this are a configuration error (it would be 128 KiB). */
export const MAX_REPLAY_WINDOW = 1 << 20;

export class ReplayWindow {
  /** Window size in packets; 0 = replay protection off. */
  readonly size: number;
  readonly esn: boolean;
  /** Highest authenticated sequence number seen (RFC 4303 "T"), 0 before the first packet. */
  top = 0;
  private readonly words: Uint32Array;
  private readonly nwords: number;

  constructor(size: number, esn: boolean) {
    if (!Number.isInteger(size) || size < 0 || size > MAX_REPLAY_WINDOW) throw new RangeError(`replayWindow: expected 0..${MAX_REPLAY_WINDOW}, got ${size}`);
    // RFC 4303 §3.4.3: a receiver SHOULD use a window of at least 32; smaller non-zero sizes are raised.
    this.size = size === 0 ? 0 : Math.max(32, size);
    this.esn = esn;
    // One spare word (RFC 6479 §2): the word holding `top` is only partly inside the window.
    this.nwords = this.size === 0 ? 0 : Math.ceil(this.size / 32) + 1;
    this.words = new Uint32Array(this.nwords);
  }

  /**
   * The full sequence number of a received packet from its 32 transmitted
   * bits (RFC 4303 Appendix A2.2). Without ESN that is just the low bits.
   * Returns -1 when the inference points below epoch 0 (cannot be valid).
   * With replay protection off the inference still needs a window; half the
   * 32-bit space is used, i.e. "the nearest epoch".
   */
  infer(seqLo: number): number {
    if (!this.esn) return seqLo;
    const w = this.size === 0 ? 0x8000_0000 : this.size;
    const th = Math.floor(this.top / TWO32);
    const tl = this.top % TWO32;
    let sh: number;
    if (tl >= w - 1) {
      // Case A: the window lies within one epoch.
      sh = seqLo >= tl - w + 1 ? th : th + 1;
    } else {
      // Case B: the window straddles the epoch boundary.
      sh = seqLo >= (tl - w + 1 + TWO32) % TWO32 ? th - 1 : th;
    }
    return sh < 0 ? -1 : sh * TWO32 + seqLo;
  }

  /** Would `seq` be accepted? No state change (RFC 4303 §3.4.3, before the ICV). */
  check(seq: number): boolean {
    if (seq <= 0) return false; // sequence numbers start at 1; 0 is never sent
    if (this.size === 0 || seq > this.top) return true;
    if (seq + this.size <= this.top) return false; // left of the window
    const idx = Math.floor(seq / 32) % this.nwords;
    return (this.words[idx]! & (1 << (seq & 31))) === 0;
  }

  /**
   * Record an authenticated `seq` (after its ICV verified). Returns false if
   * it is (now) a duplicate or too old, e.g. a copy that was verified
   * concurrently; the caller drops it then.
   */
  update(seq: number): boolean {
    if (seq <= 0) return false;
    if (this.size === 0) {
      if (seq > this.top) this.top = seq;
      return true;
    }
    if (seq > this.top) {
      // Clear the words the window slides over (at most all of them).
      const from = Math.floor(this.top / 32);
      const steps = Math.min(Math.floor(seq / 32) - from, this.nwords);
      for (let i = 1; i <= steps; i++) this.words[(from + i) % this.nwords] = 0;
      this.top = seq;
    } else if (seq + this.size <= this.top) {
      return false;
    }
    const idx = Math.floor(seq / 32) % this.nwords;
    const bit = 1 << (seq & 31);
    if (this.words[idx]! & bit) return false;
    this.words[idx] = this.words[idx]! | bit;
    return true;
  }
}
