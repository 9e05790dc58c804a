/**
 * One ESP security association in tunnel mode: packet in, packet out.
 *
 *   RFC 4303 §2     packet format: SPI, Sequence Number, IV, payload, padding
 *                   (1, 2, 3, ...), Pad Length, Next Header, ICV.
 *   RFC 4303 §2.4   padding so that the ciphertext ends on a 4-byte boundary
 *                   (or the cipher block size); receivers MAY check the pad
 *                   bytes: we do, and drop packets whose padding is wrong.
 *   RFC 4303 §2.6   Next Header 4 (IPv4) / 41 (IPv6) in tunnel mode; 59 marks a
 *                   dummy packet (§2.6, TFC), which we never send.
 *   RFC 4303 §3.3.3 the sender's counter starts at 1 and never cycles: at the
 *                   limit the SA stops sending (the data plane raises a hard
 *                   expire; a soft one comes earlier, see SEQ_SOFT_*).
 *   RFC 4303 §3.4   inbound order: replay check, ICV, window update, decrypt
 *                   result check.
 *
 * No exceptions for bad input: decapsulate returns a status the pipeline counts.
 */
import { ReplayWindow } from './replay.js';
import { createEspTransform, type EspTransform } from './transforms.js';

export const DecapStatus = {
  OK: 0,
  /** Too short, misaligned, bad pad length or pad bytes. */
  MALFORMED: 1,
  /** Duplicate or left of the window (before or after the ICV check). */
  REPLAY: 2,
  /** ICV did not verify. */
  AUTH: 3,
} as const;
export type DecapStatus = (typeof DecapStatus)[keyof typeof DecapStatus];

export interface DecapResult {
  status: DecapStatus;
  /** The inner packet (tunnel mode: an IP packet, possibly followed by TFC padding). */
  payload: Uint8Array;
  nextHeader: number;
  /** Full (64-bit with ESN) sequence number; 0 if not determined. */
  seq: number;
}

export const ESP_HEADER_LEN = 8;
const TWO32 = 0x1_0000_0000;

/** Last sequence number an SA may use: 2^32-1 without ESN (RFC 4303 §3.3.3); ESN capped at 2^53-1 (JS number precision). */
export const SEQ_LIMIT_32 = TWO32 - 1;
export const SEQ_LIMIT_ESN = Number.MAX_SAFE_INTEGER;
/** Soft limits (rekey well before the counter runs out): 15/16 of the space. */
export const SEQ_SOFT_32 = 0xf000_0000;
export const SEQ_SOFT_ESN = Math.floor(SEQ_LIMIT_ESN / 16) * 15;

export interface EspSaParams {
  spi: number;
  encrId: number;
  encrKeyBits: number;
  encrKey: Uint8Array;
  integId: number;
  integKey: Uint8Array;
  esn: boolean;
  replayWindow: number;
  /** Use the addon's AEAD contexts when available (default true); false = node:crypto only. */
  native?: boolean;
}

const EMPTY = new Uint8Array(0);

export class EspSa {
  readonly spi: number;
  readonly esn: boolean;
  readonly transform: EspTransform;
  readonly replay: ReplayWindow;
  /** Outbound: the last sequence number used (0 = none yet). */
  seq = 0;
  readonly seqLimit: number;
  readonly seqSoft: number;

  constructor(p: EspSaParams) {
    if (!Number.isInteger(p.spi) || p.spi < 256 || p.spi > 0xffff_ffff) throw new RangeError(`spi: expected 256..2^32-1 (RFC 4303 §2.1), got ${p.spi}`);
    this.spi = p.spi;
    this.esn = p.esn;
    this.transform = createEspTransform(p.encrId, p.encrKeyBits, p.encrKey, p.integId, p.integKey, p.native ?? true);
    this.replay = new ReplayWindow(p.replayWindow, p.esn);
    this.seqLimit = p.esn ? SEQ_LIMIT_ESN : SEQ_LIMIT_32;
    this.seqSoft = p.esn ? SEQ_SOFT_ESN : SEQ_SOFT_32;
  }

  /** Bytes of payload||padding||padlen||nh for an inner packet of `innerLen` bytes. */
  paddedLength(innerLen: number): number {
    const b = this.transform.blockSize;
    return Math.ceil((innerLen + 2) / b) * b;
  }

  /** Total ESP packet length (header to ICV) for an inner packet of `innerLen` bytes. */
  espLength(innerLen: number): number {
    return ESP_HEADER_LEN + this.transform.ivSize + this.paddedLength(innerLen) + this.transform.icvSize;
  }

  /** Largest inner packet whose ESP packet is at most `espBudget` bytes. */
  maxInner(espBudget: number): number {
    const t = this.transform;
    const room = espBudget - ESP_HEADER_LEN - t.ivSize - t.icvSize;
    return Math.floor(room / t.blockSize) * t.blockSize - 2;
  }

  /** Whether the outbound counter is exhausted (nothing more may be sent). */
  get exhausted(): boolean {
    return this.seq >= this.seqLimit;
  }

  /**
   * Build the ESP packet for `inner` (RFC 4303 §3.3). Writes into `out` when
   * given (it must hold espLength(inner.length) bytes), else allocates.
   * Returns null when the sequence counter is exhausted. `opts` fixes the IV
   * and sequence number, for replaying published vectors only.
   */
  encapsulate(inner: Uint8Array, nextHeader: number, out?: Uint8Array, opts?: { iv?: Uint8Array; seq?: number }): Uint8Array | null {
    if (opts?.seq !== undefined) this.seq = opts.seq - 1;
    if (this.seq >= this.seqLimit) return null;
    const seq = ++this.seq;
    const t = this.transform;
    const plainLen = this.paddedLength(inner.length);
    const len = ESP_HEADER_LEN + t.ivSize + plainLen + t.icvSize;
    const pkt = out ? out.subarray(0, len) : Buffer.allocUnsafe(len);
    if (pkt.length < len) throw new RangeError(`out: need ${len} bytes`);
    // SPI written from the number: no 4-byte array per SA (a hub holds thousands).
    const spi = this.spi;
    pkt[0] = spi >>> 24;
    pkt[1] = (spi >>> 16) & 0xff;
    pkt[2] = (spi >>> 8) & 0xff;
    pkt[3] = spi & 0xff;
    const lo = seq >>> 0;
    pkt[4] = lo >>> 24;
    pkt[5] = (lo >>> 16) & 0xff;
    pkt[6] = (lo >>> 8) & 0xff;
    pkt[7] = lo & 0xff;
    const p = ESP_HEADER_LEN + t.ivSize;
    pkt.set(inner, p);
    const padLen = plainLen - inner.length - 2;
    let o = p + inner.length;
    for (let i = 1; i <= padLen; i++) pkt[o++] = i; // RFC 4303 §2.4: 1, 2, 3, ...
    pkt[o++] = padLen;
    pkt[o] = nextHeader;
    t.seal(pkt, plainLen, seq, this.esn ? Math.floor(seq / TWO32) : -1, opts?.iv);
    return pkt;
  }

  /** Verify, replay-check and decrypt one ESP packet (RFC 4303 §3.4). Never throws on bad input. */
  decapsulate(pkt: Uint8Array): DecapResult {
    const t = this.transform;
    const len = pkt.length;
    const ctLen = len - ESP_HEADER_LEN - t.ivSize - t.icvSize;
    // Structure first: at least one block (2 trailer bytes), block-aligned ciphertext.
    if (ctLen < Math.max(2, t.blockSize) || ctLen % t.blockSize !== 0) return { status: DecapStatus.MALFORMED, payload: EMPTY, nextHeader: 0, seq: 0 };
    const seqLo = ((pkt[4]! << 24) | (pkt[5]! << 16) | (pkt[6]! << 8) | pkt[7]!) >>> 0;
    const seq = this.replay.infer(seqLo);
    if (seq < 0 || !this.replay.check(seq)) return { status: DecapStatus.REPLAY, payload: EMPTY, nextHeader: 0, seq: Math.max(seq, 0) };
    const pt = t.open(pkt, len, this.esn ? Math.floor(seq / TWO32) : -1);
    if (!pt) return { status: DecapStatus.AUTH, payload: EMPTY, nextHeader: 0, seq };
    // Only an authenticated packet moves the window (RFC 4303 §3.4.3).
    if (!this.replay.update(seq)) return { status: DecapStatus.REPLAY, payload: EMPTY, nextHeader: 0, seq };
    const n = pt.length;
    const padLen = pt[n - 2]!;
    const nextHeader = pt[n - 1]!;
    if (padLen > n - 2) return { status: DecapStatus.MALFORMED, payload: EMPTY, nextHeader, seq };
    const payloadLen = n - 2 - padLen;
    for (let i = 0; i < padLen; i++) if (pt[payloadLen + i] !== i + 1) return { status: DecapStatus.MALFORMED, payload: EMPTY, nextHeader, seq };
    return { status: DecapStatus.OK, payload: pt.subarray(0, payloadLen), nextHeader, seq };
  }

  destroy(): void {
    this.transform.destroy();
  }
}
