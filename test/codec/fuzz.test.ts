/**
 * Property tests (fast-check): mutated messages only ever raise the codec's
 * typed errors, and arbitrary well-formed payloads round-trip.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  decodeChain,
  decodePlain,
  decodeProtected,
  encodePayloads,
  encodePlain,
  encodeProtected,
  isCodecError,
  isFragment,
  Reassembler,
} from '../../firmware/ikev2/codec/index.js';
import type { Payload, TrafficSelector } from '../../firmware/ikev2/codec/types.js';
import type { SkCipher } from '../../firmware/crypto/types.js';
import { cbc256, counterIv, gcm256 } from './fake-cipher.js';
import { craft, pad } from './craft.js';
import { authRequest, everyPayload, initRequest, intermediateRequest } from './fixtures.js';

type Mutation = { kind: 'flip'; at: number; bit: number } | { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; bytes: Uint8Array } | { kind: 'delete'; at: number; n: number } | { kind: 'set'; at: number; v: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), v: fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 16, 0x80, 0xff) }),
);

function apply(b: Uint8Array, muts: Mutation[], fixLength: boolean): Uint8Array {
  let out = b.slice();
  for (const m of muts) {
    const at = out.length ? m.at % (out.length + (m.kind === 'insert' ? 1 : 0)) : 0;
    if (m.kind === 'flip' && out.length) out[at] = out[at]! ^ (1 << m.bit);
    else if (m.kind === 'set' && out.length) out[at] = m.v;
    else if (m.kind === 'truncate') out = out.slice(0, at);
    else if (m.kind === 'insert') out = Uint8Array.from([...out.subarray(0, at), ...m.bytes, ...out.subarray(at)]);
    else if (m.kind === 'delete') out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + m.n)]);
  }
  // Keeping the header length consistent lets mutations reach the payload parsers.
  if (fixLength && out.length >= 28) new DataView(out.buffer).setUint32(24, out.length);
  return out;
}

function mustBeCodecError(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!isCodecError(e)) throw e;
  }
}

const RUNS = Number(process.env.CODEC_FUZZ_RUNS ?? 1500);

describe('fuzz: mutations never raise anything but typed codec errors', () => {
  const plainInit = encodePlain(initRequest());
  const plainInitKem = encodePlain(initRequest(1184, 36));

  it('plain IKE_SA_INIT', () => {
    fc.assert(
      fc.property(fc.constantFrom(plainInit, plainInitKem), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.boolean(), (base, muts, fix, rules) => {
        mustBeCodecError(() => decodePlain(apply(base, muts, fix), { rules }));
      }),
      { numRuns: RUNS },
    );
  });

  for (const [name, mk] of [
    ['GCM', gcm256],
    ['CBC', cbc256],
  ] as const) {
    const c: SkCipher = mk();
    const whole = encodeProtected(authRequest(), c, counterIv()).datagrams[0]!;
    const frags = encodeProtected(intermediateRequest(1184), c, counterIv(), { fragmentSize: 576 }).datagrams;

    it(`protected messages and fragments (${name}) on the wire`, () => {
      fc.assert(
        fc.property(fc.constantFrom(whole, ...frags), fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean(), (base, muts, fix) => {
          mustBeCodecError(() => {
            const r = decodeProtected(apply(base, muts, fix), c);
            if (isFragment(r)) new Reassembler({ maxFragments: 4 }).add('', r);
          });
        }),
        { numRuns: RUNS },
      );
    });

    it(`mutated plaintext under a valid ICV (${name}) reaches the inner parsers`, () => {
      const inner = encodePayloads(authRequest().payloads);
      fc.assert(
        fc.property(
          fc.array(mutation, { minLength: 1, maxLength: 4 }),
          fc.constantFrom(35, 36, 37, 43, 44),
          fc.constantFrom(0, 35, 41, 33, 46, 99),
          fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
          fc.option(fc.record({ number: fc.integer({ min: 0, max: 70 }), total: fc.integer({ min: 0, max: 70 }) }), { nil: undefined }),
          (muts, exchange, skNext, padByte, frag) => {
            const mutated = apply(inner, muts, false);
            const b = craft({ exchange, plain: pad(mutated, c.blockSize, padByte), skNext, frag }, c);
            mustBeCodecError(() => {
              const r = decodeProtected(b, c);
              if (isFragment(r)) new Reassembler().add('', r);
            });
          },
        ),
        { numRuns: RUNS },
      );
    });
  }

  it('reassembly of fragments whose plaintext was mutated', () => {
    const c = gcm256();
    const p = encodePayloads(intermediateRequest(1184).payloads);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 4 }), fc.constantFrom(0, 34, 41, 53), (muts, total, first) => {
        const mutated = apply(p, muts, false);
        const size = Math.ceil(mutated.length / total) || 1;
        const ra = new Reassembler();
        mustBeCodecError(() => {
          for (let i = 0; i < total; i++) {
            const chunk = mutated.subarray(i * size, (i + 1) * size);
            const f = decodeProtected(craft({ exchange: 43, plain: pad(chunk, 1), skNext: i === 0 ? first : 0, frag: { number: i + 1, total } }, c), c);
            if (isFragment(f)) ra.add('', f);
          }
        });
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------- round trips of arbitrary payloads

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const critical = fc.option(fc.constant(true), { nil: undefined });
const withCrit = <T extends object>(a: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.tuple(a, critical).map(([p, c]) => (c ? { ...p, critical: true } : p));

const selector: fc.Arbitrary<TrafficSelector> = fc
  .tuple(fc.boolean(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), bytes(16, 16), bytes(16, 16))
  .map(([v6, ipProtocol, a, b, x, y]) => {
    const n = v6 ? 16 : 4;
    const [s, e] = [x.slice(0, n), y.slice(0, n)];
    const lo = Buffer.compare(Buffer.from(s), Buffer.from(e)) <= 0;
    return { tsType: v6 ? 8 : 7, ipProtocol, startPort: Math.min(a, b), endPort: Math.max(a, b), startAddr: lo ? s : e, endAddr: lo ? e : s };
  });

const transform = fc.record(
  {
    type: fc.integer({ min: 1, max: 12 }),
    id: fc.integer({ min: 0, max: 65535 }),
    keyLength: fc.integer({ min: 0, max: 65535 }),
    otherAttributes: fc.array(
      fc.record({ type: fc.integer({ min: 1, max: 0x7fff }).filter((t) => t !== 14), value: fc.oneof(fc.integer({ min: 0, max: 65535 }), bytes(0, 10)) }),
      { minLength: 1, maxLength: 3 },
    ),
  },
  { requiredKeys: ['type', 'id'] },
);

const payload: fc.Arbitrary<Payload> = fc.oneof(
  withCrit(
    fc.array(fc.tuple(fc.constantFrom(1, 2, 3), fc.array(transform, { maxLength: 6 })), { minLength: 1, maxLength: 4 }).map((ps) => ({
      type: 33 as const,
      proposals: ps.map(([protocol, transforms], i) => ({ num: i + 1, protocol, spi: new Uint8Array(protocol === 1 ? 0 : 4).fill(i + 1), transforms })),
    })),
  ),
  withCrit(fc.record({ type: fc.constant(34 as const), method: fc.integer({ min: 0, max: 65535 }), data: bytes(0, 1600) })),
  withCrit(fc.record({ type: fc.constantFrom(35 as const, 36 as const), idType: fc.constantFrom(2, 3, 9, 11), data: bytes(0, 64) })),
  withCrit(fc.record({ type: fc.constant(37 as const), encoding: fc.integer({ min: 0, max: 255 }), data: bytes(0, 100) })),
  withCrit(fc.record({ type: fc.constant(38 as const), encoding: fc.constant(4), data: fc.integer({ min: 0, max: 4 }).chain((n) => bytes(20 * n, 20 * n)) })),
  withCrit(fc.record({ type: fc.constant(39 as const), method: fc.integer({ min: 0, max: 255 }), data: bytes(0, 80) })),
  withCrit(fc.record({ type: fc.constant(40 as const), data: bytes(16, 256) })),
  withCrit(fc.record({ type: fc.constant(41 as const), protocol: fc.constantFrom(0, 1, 3), spi: fc.constantFrom(0, 4).chain((n) => bytes(n, n)), notifyType: fc.integer({ min: 0, max: 65535 }), data: bytes(0, 40) })),
  withCrit(fc.integer({ min: 1, max: 5 }).chain((n) => fc.record({ type: fc.constant(42 as const), protocol: fc.constant(3), spiSize: fc.constant(4), spis: fc.array(bytes(4, 4), { minLength: n, maxLength: n }) }))),
  withCrit(fc.record({ type: fc.constant(43 as const), data: bytes(0, 40) })),
  withCrit(fc.record({ type: fc.constantFrom(44 as const, 45 as const), selectors: fc.array(selector, { minLength: 1, maxLength: 5 }) })),
  withCrit(fc.record({ type: fc.constant(47 as const), cfgType: fc.integer({ min: 0, max: 255 }), attributes: fc.array(fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 20) }), { maxLength: 5 }) })),
  withCrit(bytes(0, 30).map((d) => ({ type: 48 as const, data: Uint8Array.from([1, 2, (d.length + 4) >> 8, (d.length + 4) & 0xff, ...d]) }))),
  withCrit(fc.record({ type: fc.integer({ min: 49, max: 255 }).filter((t) => t !== 53), unknown: fc.constant(true as const), data: bytes(0, 30) })),
);

describe('fuzz: arbitrary payload chains round-trip', () => {
  it('decode(encode(x)) == x', () => {
    fc.assert(
      fc.property(fc.array(payload, { maxLength: 8 }), (ps) => {
        const b = encodePayloads(ps);
        expect(decodeChain(b, 0, b.length, ps[0]?.type ?? 0, 0, false).payloads).toEqual(ps);
      }),
      { numRuns: 500 },
    );
  });

  it('through SK with random fragment sizes, in a random fragment order', () => {
    fc.assert(
      fc.property(fc.array(payload, { maxLength: 6 }), fc.integer({ min: 150, max: 1500 }), fc.boolean(), fc.integer(), (ps, size, cbc, seed) => {
        const c = cbc ? cbc256() : gcm256();
        const m = { ...intermediateRequest(), payloads: ps };
        const r = encodeProtected(m, c, counterIv(), { fragmentSize: size });
        const decoded = r.datagrams.map((d) => decodeProtected(d, c, { rules: false }));
        let msg;
        if (decoded.length === 1 && !isFragment(decoded[0]!)) msg = decoded[0];
        else {
          const ra = new Reassembler({ rules: false, maxFragments: 1000, maxBytes: 1 << 20 });
          const order = decoded.map((_, i) => i).sort((a, b) => ((a * 7919 + seed) % 13) - ((b * 7919 + seed) % 13));
          for (const i of order) msg = ra.add('', decoded[i] as never) ?? msg;
        }
        expect(msg?.payloads).toEqual(ps);
        expect(msg?.intAuthA).toEqual(r.intAuthA);
        expect(msg?.intAuthP).toEqual(r.intAuthP);
      }),
      { numRuns: 300 },
    );
  });

  it('the fixture set itself survives a CBC round trip inside one SK', () => {
    const c = cbc256();
    const m = { ...intermediateRequest(), payloads: everyPayload };
    const d = decodeProtected(encodeProtected(m, c, counterIv()).datagrams[0]!, c, { rules: false });
    expect(isFragment(d)).toBe(false);
    expect((d as { payloads: Payload[] }).payloads).toEqual(everyPayload);
  });
});
