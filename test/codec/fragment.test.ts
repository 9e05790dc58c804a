import { describe, it, expect } from 'vitest';
import { decodeProtected, encodeProtected, FragmentLimitError, MessageRuleError, Reassembler, type FragmentInfo } from '../../firmware/ikev2/codec/index.js';
import type { Message } from '../../firmware/ikev2/codec/types.js';
import { ExchangeType } from '../../firmware/ikev2/constants.js';
import { counterIv, gcm256 } from './fake-cipher.js';
import { intermediateRequest } from './fixtures.js';

function frags(m: Message, fragmentSize: number): FragmentInfo[] {
  return encodeProtected(m, gcm256(), counterIv(), { fragmentSize }).datagrams.map((d) => decodeProtected(d, gcm256()) as FragmentInfo);
}

describe('Reassembler (RFC 7383 §2.6)', () => {
  const m = intermediateRequest(1184, 4);
  const two = frags(m, 1000); // 2 fragments
  const three = frags(m, 576); // 3 fragments

  it('sanity: the fixtures have 2 and 3 fragments', () => {
    expect(two.map((f) => f.total)).toEqual([2, 2]);
    expect(three.map((f) => f.total)).toEqual([3, 3, 3]);
  });

  it('ignores duplicates', () => {
    const ra = new Reassembler();
    expect(ra.addDetailed('', three[1]!)).toEqual({ status: 'pending', received: 1, total: 3 });
    expect(ra.addDetailed('', three[1]!)).toEqual({ status: 'dropped', reason: 'duplicate' });
    expect(ra.add('', three[0]!)).toBeUndefined();
    expect(ra.add('', three[2]!)?.payloads).toEqual(m.payloads);
  });

  it('a larger Total Fragments discards the set and restarts with the new fragment', () => {
    const ra = new Reassembler();
    ra.add('', two[0]!);
    expect(ra.addDetailed('', three[2]!)).toEqual({ status: 'pending', received: 1, total: 3 });
    // two[1] now belongs to a smaller set: dropped.
    expect(ra.addDetailed('', two[1]!)).toEqual({ status: 'dropped', reason: 'smaller-total' });
    ra.add('', three[0]!);
    const msg = ra.add('', three[1]!);
    expect(msg?.payloads).toEqual(m.payloads);
    expect(msg?.fragments).toBe(3);
  });

  it('a smaller Total Fragments is dropped while a larger set is collected', () => {
    const ra = new Reassembler();
    ra.add('', three[0]!);
    expect(ra.addDetailed('', two[0]!)).toEqual({ status: 'dropped', reason: 'smaller-total' });
    expect(ra.addDetailed('', two[1]!)).toEqual({ status: 'dropped', reason: 'smaller-total' });
    ra.add('', three[1]!);
    expect(ra.add('', three[2]!)?.payloads).toEqual(m.payloads);
  });

  it('keeps messages with different Message IDs or scopes apart', () => {
    const other = frags(intermediateRequest(1184, 5), 576);
    const ra = new Reassembler();
    ra.add('', three[0]!);
    ra.add('', other[0]!);
    ra.add('x', three[1]!);
    expect(ra.pending).toBe(3);
    ra.add('', three[1]!);
    expect(ra.add('', three[2]!)?.messageId).toBe(4);
    ra.add('', other[1]!);
    expect(ra.add('', other[2]!)?.messageId).toBe(5);
    expect(ra.pending).toBe(1);
  });

  it('enforces the fragment count limit with a typed error', () => {
    const ra = new Reassembler({ maxFragments: 2 });
    expect(() => ra.add('', three[0]!)).toThrow(FragmentLimitError);
    try {
      ra.add('', three[1]!);
    } catch (e) {
      expect((e as FragmentLimitError).code).toBe('ERR_FRAGMENT_LIMIT');
      expect((e as FragmentLimitError).limit).toBe('fragments');
    }
    expect(ra.pending).toBe(0);
  });

  it('enforces the byte limit and forgets the set', () => {
    const ra = new Reassembler({ maxBytes: 1000 });
    ra.add('', three[0]!);
    ra.add('', three[1]!);
    expect(() => ra.add('', three[2]!)).toThrow(FragmentLimitError);
    expect(ra.pending).toBe(0);
  });

  it('evicts the oldest incomplete message beyond maxMessages', () => {
    const ra = new Reassembler({ maxMessages: 2 });
    const a = frags(intermediateRequest(1184, 10), 576);
    const b = frags(intermediateRequest(1184, 11), 576);
    const c = frags(intermediateRequest(1184, 12), 576);
    ra.add('', a[0]!);
    ra.add('', b[0]!);
    ra.add('', c[0]!); // evicts a
    expect(ra.pending).toBe(2);
    ra.add('', a[1]!); // a restarts from scratch, evicting b
    expect(ra.add('', a[2]!)).toBeUndefined(); // a[0] was lost with the eviction
    ra.add('', c[1]!);
    expect(ra.add('', c[2]!)?.messageId).toBe(12);
  });

  it('applies the exchange rules to the reassembled message', () => {
    const bad: Message = { ...intermediateRequest(1184, 6), exchange: ExchangeType.IKE_AUTH }; // IKE_AUTH without IDi/AUTH
    const f = frags(bad, 576);
    const ra = new Reassembler();
    ra.add('', f[0]!);
    ra.add('', f[1]!);
    expect(() => ra.add('', f[2]!)).toThrow(MessageRuleError);
    const lax = new Reassembler({ rules: false });
    for (const x of f.slice(0, 2)) lax.add('', x);
    expect(lax.add('', f[2]!)?.payloads).toEqual(bad.payloads);
  });
});
