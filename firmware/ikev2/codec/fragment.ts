/**
 * RFC 7383 §2.6 reassembly of SKF fragments that decodeProtected() has
 * already verified and decrypted one by one.
 *
 *   - Fragments are collected per (IKE SA, Message ID, direction, exchange).
 *   - A fragment with a larger Total Fragments than the set being collected
 *     discards the set and starts over with it; a smaller one is dropped.
 *   - Duplicates are ignored (first copy wins; all copies passed the ICV).
 *   - Local bounds: fragments per message, bytes per message, concurrent
 *     messages (the oldest incomplete set is evicted).
 * The reassembled message carries RFC 9242 IntAuth_A / IntAuth_P computed as
 * if it had not been fragmented (§3.3.2 of RFC 9242): fragment 1's header
 * with Next Payload SKF -> SK, and an SK header of length 4 + |P|.
 */
import { concat, hex } from '../../util/bytes.js';
import { FragmentLimitError, markAuthenticated } from './errors.js';
import { ParseError } from '../../util/errors.js';
import { decoded, reassembledIntAuthA, type FragmentInfo } from './message.js';
import { decodeChain } from './payloads.js';
import { validateMessage } from './rules.js';
import type { DecodedMessage } from './types.js';

export interface ReassemblerOptions {
  /** Largest Total Fragments accepted (default 64). */
  maxFragments?: number;
  /** Largest reassembled plaintext in octets (default 64 KiB). */
  maxBytes?: number;
  /** Incomplete messages kept at once (default 8); the oldest is evicted. */
  maxMessages?: number;
  /** Apply rules.ts to the reassembled message (default true). */
  rules?: boolean;
}

export type ReassemblyResult =
  | { status: 'complete'; message: DecodedMessage }
  | { status: 'pending'; received: number; total: number }
  | { status: 'dropped'; reason: 'duplicate' | 'smaller-total' };

interface Entry {
  total: number;
  parts: (FragmentInfo | undefined)[];
  received: number;
  bytes: number;
}

export class Reassembler {
  readonly maxFragments: number;
  readonly maxBytes: number;
  readonly maxMessages: number;
  private readonly rules: boolean;
  private readonly sets = new Map<string, Entry>();

  constructor(opts: ReassemblerOptions = {}) {
    this.maxFragments = opts.maxFragments ?? 64;
    this.maxBytes = opts.maxBytes ?? 64 * 1024;
    this.maxMessages = opts.maxMessages ?? 8;
    this.rules = opts.rules !== false;
  }

  /** Incomplete messages currently held. */
  get pending(): number {
    return this.sets.size;
  }

  clear(): void {
    this.sets.clear();
  }

  /**
   * Adds a fragment; returns the message once complete, otherwise undefined.
   * `scope` narrows the key further (e.g. one IKE SA's direction); the key
   * always includes SPIs, Message ID, R/I flags and exchange from the header.
   */
  add(scope: string, frag: FragmentInfo): DecodedMessage | undefined {
    const r = this.addDetailed(scope, frag);
    return r.status === 'complete' ? r.message : undefined;
  }

  addDetailed(scope: string, frag: FragmentInfo): ReassemblyResult {
    const h = frag.header;
    // decodeProtected already enforces RFC 7383 §2.5 (1 <= number <= total); re-checked here because
    // a number outside the set would leave a hole that assemble() reads as a missing fragment.
    if (!Number.isInteger(frag.number) || !Number.isInteger(frag.total) || frag.total < 1 || frag.number < 1 || frag.number > frag.total)
      throw new ParseError(`SKF Fragment Number ${frag.number} outside 1..${frag.total}`, 0, 53);
    const key = `${scope}|${hex(h.spiI)}${hex(h.spiR)}|${h.messageId}|${h.response ? 'R' : ''}${h.initiator ? 'I' : ''}|${h.exchange}`;
    let e = this.sets.get(key);
    if (frag.total > this.maxFragments) {
      // A larger total restarts reassembly (RFC 7383 §2.6); this one is beyond our bound, so nothing survives.
      if (e && frag.total > e.total) this.sets.delete(key);
      throw new FragmentLimitError('fragments', `Total Fragments ${frag.total} exceeds the limit of ${this.maxFragments}`);
    }
    if (e && frag.total < e.total) return { status: 'dropped', reason: 'smaller-total' };
    if (e && frag.total > e.total) {
      this.sets.delete(key);
      e = undefined;
    }
    if (!e) {
      while (this.sets.size >= this.maxMessages) this.sets.delete(this.sets.keys().next().value!);
      e = { total: frag.total, parts: new Array<FragmentInfo | undefined>(frag.total), received: 0, bytes: 0 };
      this.sets.set(key, e);
    }
    if (e.parts[frag.number - 1]) return { status: 'dropped', reason: 'duplicate' };
    if (e.bytes + frag.plaintext.length > this.maxBytes) {
      this.sets.delete(key);
      throw new FragmentLimitError('bytes', `reassembled message would exceed ${this.maxBytes} octets`);
    }
    e.parts[frag.number - 1] = frag;
    e.received++;
    e.bytes += frag.plaintext.length;
    if (e.received < e.total) return { status: 'pending', received: e.received, total: e.total };
    this.sets.delete(key);
    return { status: 'complete', message: this.assemble(e.parts as FragmentInfo[]) };
  }

  private assemble(parts: FragmentInfo[]): DecodedMessage {
    const first = parts[0]!;
    const h = first.header;
    const p = concat(...parts.map((f) => f.plaintext));
    // Offsets in errors are relative to the reassembled plaintext.
    // Every fragment passed its integrity check: errors here are authenticated ones.
    const payloads = markAuthenticated(() => {
      const inner = decodeChain(p, 0, p.length, first.firstPayload, 0, false).payloads;
      return this.rules
        ? validateMessage({ exchange: h.exchange, response: h.response, encrypted: true, payloads: inner, unprotected: first.unprotected })
        : [...first.unprotected, ...inner];
    });
    return decoded(h, true, payloads, reassembledIntAuthA(first, p.length), p, undefined, parts.length);
  }
}
