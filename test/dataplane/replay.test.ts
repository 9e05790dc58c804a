import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ReplayWindow } from '../../firmware/dataplane/esp/replay.js';
import { EspSa, DecapStatus } from '../../firmware/dataplane/esp/sa.js';
import { Encr } from '../../firmware/ikev2/constants.js';

const TWO32 = 2 ** 32;

/** encapsulate() returns a pooled Buffer, whose slice() is a view: copy explicitly. */
const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/** check + update, as the receive path does after a good ICV. */
function accept(w: ReplayWindow, seq: number): boolean {
  return w.check(seq) && w.update(seq);
}

describe('ReplayWindow (RFC 4303 §3.4.3, RFC 6479)', () => {
  it('accepts new numbers, rejects duplicates and sequence number 0', () => {
    const w = new ReplayWindow(64, false);
    expect(w.check(0)).toBe(false);
    expect(accept(w, 1)).toBe(true);
    expect(accept(w, 1)).toBe(false);
    expect(accept(w, 3)).toBe(true);
    expect(accept(w, 2)).toBe(true);
    expect(accept(w, 2)).toBe(false);
    expect(w.top).toBe(3);
  });

  it('window edges: top-size+1 is inside, top-size is outside', () => {
    const w = new ReplayWindow(64, false);
    expect(accept(w, 1000)).toBe(true);
    expect(w.check(1000 - 64)).toBe(false);
    expect(w.check(1000 - 63)).toBe(true);
    expect(accept(w, 1000 - 63)).toBe(true);
    expect(accept(w, 1000 - 63)).toBe(false);
    // Sliding by one pushes the left edge out.
    expect(accept(w, 1001)).toBe(true);
    expect(w.check(1001 - 64)).toBe(false);
  });

  it('a jump far ahead clears the whole bitmap', () => {
    const w = new ReplayWindow(128, false);
    for (let s = 1; s <= 200; s++) accept(w, s);
    expect(accept(w, 1_000_000)).toBe(true);
    // Everything within the new window except the top itself is unseen.
    for (let s = 1_000_000 - 127; s < 1_000_000; s++) expect(w.check(s), `seq ${s}`).toBe(true);
    expect(w.check(1_000_000 - 128)).toBe(false);
  });

  it('bits of recycled ring words are cleared (RFC 6479 word reuse)', () => {
    const w = new ReplayWindow(32, false); // 2 words
    for (let s = 1; s <= 31; s++) accept(w, s);
    expect(accept(w, 64)).toBe(true); // word index 2 % 2 == 0: reuses the word that held 1..31
    for (let s = 33; s < 64; s++) expect(w.check(s), `seq ${s}`).toBe(true);
    expect(accept(w, 40)).toBe(true);
    expect(accept(w, 40)).toBe(false);
  });

  it('sizes below 32 are raised to 32; 0 switches replay protection off', () => {
    expect(new ReplayWindow(5, false).size).toBe(32);
    const off = new ReplayWindow(0, false);
    expect(accept(off, 7)).toBe(true);
    expect(accept(off, 7)).toBe(true); // duplicates pass
    expect(accept(off, 1)).toBe(true); // so do old ones
    expect(off.top).toBe(7);
    expect(off.check(0)).toBe(false);
    expect(() => new ReplayWindow(-1, false)).toThrow(RangeError);
  });

  it('matches a set-based model of the RFC 4303 rules on random arrivals', () => {
    fc.assert(
      fc.property(fc.integer({ min: 32, max: 300 }), fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 400 }), (size, seqs) => {
        const w = new ReplayWindow(size, false);
        const seen = new Set<number>();
        let top = 0;
        for (const s of seqs) {
          const want = s > 0 && !seen.has(s) && s > top - size;
          expect(accept(w, s)).toBe(want);
          if (want) {
            seen.add(s);
            top = Math.max(top, s);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('ESN high-bit inference (RFC 4303 Appendix A2.2)', () => {
  it('case A (window inside one epoch): low numbers behind the window belong to the next epoch', () => {
    const w = new ReplayWindow(64, true);
    w.update(5 * TWO32 + 1000);
    expect(w.infer(1000)).toBe(5 * TWO32 + 1000);
    expect(w.infer(1000 - 63)).toBe(5 * TWO32 + 937);
    expect(w.infer(1000 - 64)).toBe(6 * TWO32 + 936);
    expect(w.infer(0xffff_ffff)).toBe(5 * TWO32 + 0xffff_ffff);
  });

  it('case B (window straddles the epoch boundary)', () => {
    const w = new ReplayWindow(64, true);
    w.update(3 * TWO32 + 10);
    expect(w.infer(5)).toBe(3 * TWO32 + 5);
    expect(w.infer(0xffff_fff0)).toBe(2 * TWO32 + 0xffff_fff0); // still in the window, previous epoch
    expect(w.infer(0xffff_ffc0)).toBe(3 * TWO32 + 0xffff_ffc0); // left of the window: ahead
  });

  it('wraps into the next epoch and keeps protecting the old one', () => {
    const w = new ReplayWindow(64, true);
    w.update(0xffff_ffe0);
    for (let lo = 0xffff_fff0; lo <= 0xffff_ffff; lo++) {
      expect(accept(w, w.infer(lo))).toBe(true);
    }
    for (let lo = 0; lo < 10; lo++) expect(accept(w, w.infer(lo))).toBe(true);
    expect(w.top).toBe(TWO32 + 9);
    // A replay from just before the wrap is recognised as a duplicate of epoch 0.
    expect(w.infer(0xffff_fffe)).toBe(0xffff_fffe);
    expect(accept(w, w.infer(0xffff_fffe))).toBe(false);
    expect(accept(w, w.infer(5))).toBe(false);
  });

  it('a fresh SA never infers epoch -1; window 0 infers the nearest epoch', () => {
    const w = new ReplayWindow(64, true);
    expect(w.infer(0xffff_fff0)).toBe(-1);
    expect(w.infer(1)).toBe(1);
    const off = new ReplayWindow(0, true);
    off.update(7 * TWO32 + 0x9000_0000);
    expect(off.infer(0x2000_0000)).toBe(7 * TWO32 + 0x2000_0000);
    expect(off.infer(0x0fff_0000)).toBe(8 * TWO32 + 0x0fff_0000);
  });

  it('without ESN the transmitted number is the sequence number', () => {
    const w = new ReplayWindow(64, false);
    w.update(0xffff_fff0);
    expect(w.infer(3)).toBe(3);
  });
});

describe('anti-replay in the ESP receive path', () => {
  const params = { spi: 0x2000, encrId: Encr.AES_GCM_16, encrKeyBits: 128, encrKey: new Uint8Array(20).fill(7), integId: 0, integKey: new Uint8Array(0), esn: false, replayWindow: 32 };

  it('an authentication failure does not advance or mark the window', () => {
    const tx = new EspSa(params);
    const rx = new EspSa(params);
    const p1 = copy(tx.encapsulate(new Uint8Array(40).fill(0x45), 4)!);
    tx.seq = 999;
    const p1000 = copy(tx.encapsulate(new Uint8Array(40).fill(0x45), 4)!);
    const forged = copy(p1000);
    forged[forged.length - 1]! ^= 1;
    expect(rx.decapsulate(forged).status).toBe(DecapStatus.AUTH);
    expect(rx.replay.top).toBe(0);
    // Had the forgery moved the window, seq 1 would now be too old.
    expect(rx.decapsulate(p1).status).toBe(DecapStatus.OK);
    expect(rx.decapsulate(p1000).status).toBe(DecapStatus.OK);
    expect(rx.decapsulate(p1000).status).toBe(DecapStatus.REPLAY);
    expect(rx.decapsulate(p1).status).toBe(DecapStatus.REPLAY); // now left of the window
  });

  it('the replay check happens before the ICV (a replayed forgery is a replay, not an auth failure)', () => {
    const tx = new EspSa(params);
    const rx = new EspSa(params);
    const p = copy(tx.encapsulate(new Uint8Array(40), 4)!);
    expect(rx.decapsulate(p).status).toBe(DecapStatus.OK);
    const bad = copy(p);
    bad[20]! ^= 1;
    expect(rx.decapsulate(bad).status).toBe(DecapStatus.REPLAY);
  });
});
