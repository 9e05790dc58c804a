import { describe, it, expect } from 'vitest';
import { Reader, Writer, concat, fromHex, hex } from '../firmware/util/bytes.js';
import { ParseError } from '../firmware/util/errors.js';

describe('util/bytes', () => {
  it('round-trips integers through Writer and Reader', () => {
    const w = new Writer(2).u8(1).u16(0x0203).u32(0x04050607).bytes(fromHex('0809'));
    const b = w.finish();
    expect(hex(b)).toBe('010203040506070809');
    const r = new Reader(b);
    expect([r.u8(), r.u16(), r.u32()]).toEqual([1, 0x0203, 0x04050607]);
    expect(hex(r.rest())).toBe('0809');
  });
  it('throws a ParseError with the offset on overrun', () => {
    const r = new Reader(concat(fromHex('01')), 0, 1, 100);
    r.u8();
    try {
      r.u16('length');
      expect.fail('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(ParseError);
      expect((e as ParseError).offset).toBe(101);
    }
  });
});
