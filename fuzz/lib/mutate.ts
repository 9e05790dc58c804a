/**
 * fast-check-driven mutation (the fallback for Jazzer.js, see
 * docs/fuzzing.md): fast-check arbitraries generate, from a seed, which
 * corpus entry to start from and a short list of byte-level mutations
 * (AFL/libFuzzer's classic set: bit flips, interesting values, arithmetic,
 * truncation, insertion, deletion, chunk duplication, splicing with another
 * input). Targets add structure-aware mutations of their own on top.
 */
import fc from 'fast-check';
import { concat } from '../../firmware/util/bytes.js';

export type Mutation =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'byte'; at: number; v: number }
  | { k: 'u16'; at: number; v: number }
  | { k: 'u32'; at: number; v: number }
  | { k: 'add'; at: number; d: number }
  | { k: 'trunc'; at: number }
  | { k: 'ins'; at: number; bytes: Uint8Array }
  | { k: 'del'; at: number; n: number }
  | { k: 'dup'; at: number; n: number; to: number }
  | { k: 'splice'; other: number; at: number; from: number; n: number }
  | { k: 'custom'; which: number; a: number; b: number };

export const INTERESTING8 = [0, 1, 2, 3, 4, 7, 8, 16, 32, 33, 41, 46, 53, 64, 0x7f, 0x80, 0xfe, 0xff];
export const INTERESTING16 = [0, 1, 2, 4, 8, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x7fff, 0x8000, 0xfffe, 0xffff];
export const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x10000, 0xffff, 64, 1024];

const at = fc.nat({ max: 1 << 20 });
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('byte' as const), at, v: fc.oneof(fc.constantFrom(...INTERESTING8), fc.integer({ min: 0, max: 255 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('u16' as const), at, v: fc.constantFrom(...INTERESTING16) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('u32' as const), at, v: fc.constantFrom(...INTERESTING32) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('add' as const), at, d: fc.integer({ min: -16, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('trunc' as const), at }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('ins' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('del' as const), at, n: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('dup' as const), at, n: fc.integer({ min: 1, max: 64 }), to: at }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('splice' as const), other: fc.nat(), at, from: at, n: fc.integer({ min: 1, max: 256 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('custom' as const), which: fc.nat(), a: fc.nat(), b: fc.nat() }) },
);

export interface Plan {
  base: number;
  muts: Mutation[];
}

export const planArb: fc.Arbitrary<Plan> = fc.record({ base: fc.nat(), muts: fc.array(mutationArb, { minLength: 1, maxLength: 6 }) });

/**
 * A deterministic stream of plans: fast-check samples batches from (seed +
 * batch number). Sampling costs ~45 µs per plan, more than most targets
 * spend on an input, so each sampled mutation list is used `reuse` times on
 * different starting inputs (base index shifted by a prime): still every
 * mutation comes from fast-check, at a fraction of the cost.
 */
export class PlanStream {
  private buf: Plan[] = [];
  private i = 0;
  private j = 0;
  private batch = 0;
  constructor(
    private readonly seed: number,
    private readonly batchSize = 2000,
    private readonly reuse = 8,
  ) {}
  next(): Plan {
    if (this.j === 0) {
      if (this.i >= this.buf.length) {
        this.buf = fc.sample(planArb, { seed: (this.seed + this.batch * 7919) | 0, numRuns: this.batchSize });
        this.batch++;
        this.i = 0;
      }
      this.i++;
    }
    const p = this.buf[this.i - 1]!;
    const out = this.j === 0 ? p : { base: p.base + this.j * 7907, muts: p.muts };
    this.j = (this.j + 1) % this.reuse;
    return out;
  }
}

/** Structure-aware mutation a target offers: (input, a, b) -> new input. */
export type CustomMutator = (input: Uint8Array, a: number, b: number) => Uint8Array;

export function applyPlan(base: Uint8Array, muts: Mutation[], pool: readonly Uint8Array[], custom: readonly CustomMutator[], maxLen: number): Uint8Array {
  let out: Uint8Array = base.slice();
  for (const m of muts) {
    const n = out.length;
    const pos = (x: number, extra = 0) => (n + extra > 0 ? x % (n + extra) : 0);
    switch (m.k) {
      case 'flip':
        if (n) out[pos(m.at)] ^= 1 << m.bit;
        break;
      case 'byte':
        if (n) out[pos(m.at)] = m.v;
        break;
      case 'u16':
        if (n >= 2) {
          const q = Math.min(pos(m.at), n - 2);
          out[q] = m.v >>> 8;
          out[q + 1] = m.v & 0xff;
        }
        break;
      case 'u32':
        if (n >= 4) {
          const q = Math.min(pos(m.at), n - 4);
          new DataView(out.buffer, out.byteOffset).setUint32(q, m.v >>> 0);
        }
        break;
      case 'add':
        if (n) {
          const p = pos(m.at);
          out[p] = (out[p]! + m.d) & 0xff;
        }
        break;
      case 'trunc':
        out = out.slice(0, pos(m.at));
        break;
      case 'ins': {
        const p = pos(m.at, 1);
        out = concat(out.subarray(0, p), m.bytes, out.subarray(p));
        break;
      }
      case 'del': {
        const p = pos(m.at);
        out = concat(out.subarray(0, p), new Uint8Array(0), out.subarray(p + m.n));
        break;
      }
      case 'dup': {
        if (!n) break;
        const p = pos(m.at);
        const chunk = out.slice(p, p + m.n);
        const t = pos(m.to, 1);
        out = concat(out.subarray(0, t), chunk, out.subarray(t));
        break;
      }
      case 'splice': {
        if (!pool.length) break;
        const o = pool[m.other % pool.length]!;
        if (!o.length) break;
        const f = m.from % o.length;
        const p = pos(m.at, 1);
        out = concat(out.subarray(0, p), o.subarray(f, f + m.n), out.subarray(p));
        break;
      }
      case 'custom':
        if (custom.length) out = custom[m.which % custom.length]!(out, m.a, m.b);
        break;
    }
    if (out.length > maxLen) out = out.slice(0, maxLen);
  }
  return out;
}
