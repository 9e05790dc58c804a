/**
 * DeadlineIndex (firmware/ikev2/deadlines.ts): the earliest deadline it
 * reports must equal a full scan over the live SAs whenever the engine has
 * touched every SA whose deadline changed, whatever the order of changes,
 * removals, invalidations and stale heap entries.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeadlineIndex } from '../../firmware/ikev2/deadlines.js';
import { ExchangeType } from '../../firmware/ikev2/constants.js';
import type { IkeSa } from '../../firmware/ikev2/ike-sa.js';

interface FakeSa {
  alive: boolean;
  d: number | undefined;
  nextDeadline(): number | undefined;
}

function fake(d: number | undefined): FakeSa {
  return {
    alive: true,
    d,
    nextDeadline() {
      return this.d;
    },
  };
}

const asSa = (f: FakeSa): IkeSa => f as unknown as IkeSa;

function scan(sas: FakeSa[]): number | undefined {
  let m: number | undefined;
  for (const s of sas) if (s.alive && s.d !== undefined && (m === undefined || s.d < m)) m = s.d;
  return m;
}

type Op =
  | { k: 'set'; i: number; d: number | undefined }
  | { k: 'add'; d: number | undefined }
  | { k: 'kill'; i: number }
  | { k: 'all' }
  | { k: 'exchange'; i: number; x: number; d: number | undefined };

describe('DeadlineIndex', () => {
  it('tracks touched SAs, drops removed ones and skips stale entries', () => {
    const idx = new DeadlineIndex();
    const a = fake(100);
    const b = fake(50);
    const live = [a, b];
    expect(idx.earliest(live.map(asSa))).toBe(50);
    b.d = 200;
    idx.touch(asSa(b));
    expect(idx.earliest(live.map(asSa))).toBe(100);
    a.d = undefined;
    idx.touch(asSa(a));
    expect(idx.earliest(live.map(asSa))).toBe(200);
    b.alive = false;
    idx.remove(asSa(b));
    expect(idx.earliest([asSa(a)])).toBeUndefined();
  });

  it('an exchange that may touch other SAs forces a full pass', () => {
    const idx = new DeadlineIndex();
    const a = fake(100);
    const b = fake(300);
    expect(idx.earliest([asSa(a), asSa(b)])).toBe(100);
    // A rekey on `a` changes `b` (Child SAs moved): not trusted to be local.
    b.d = 10;
    idx.touchFor(asSa(a), ExchangeType.CREATE_CHILD_SA);
    expect(idx.earliest([asSa(a), asSa(b)])).toBe(10);
    // IKE_AUTH on `a` is trusted to change `a` only.
    a.d = 5;
    idx.touchFor(asSa(a), ExchangeType.IKE_AUTH);
    expect(idx.earliest([asSa(a), asSa(b)])).toBe(5);
  });

  it('equals a full scan after any sequence of changes (property)', () => {
    const dl = fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined });
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ k: fc.constant('set' as const), i: fc.nat(50), d: dl }),
      fc.record({ k: fc.constant('add' as const), d: dl }),
      fc.record({ k: fc.constant('kill' as const), i: fc.nat(50) }),
      fc.record({ k: fc.constant('all' as const) }),
      fc.record({ k: fc.constant('exchange' as const), i: fc.nat(50), x: fc.constantFrom(34, 35, 36, 37, 43, 44), d: dl }),
    );
    fc.assert(
      fc.property(fc.array(dl, { maxLength: 20 }), fc.array(op, { maxLength: 200 }), (init, ops) => {
        const idx = new DeadlineIndex();
        const sas = init.map(fake);
        const live = (): IkeSa[] => sas.filter((s) => s.alive).map(asSa);
        expect(idx.earliest(live())).toBe(scan(sas));
        for (const o of ops) {
          if (o.k === 'add') {
            const s = fake(o.d);
            sas.push(s);
            idx.touch(asSa(s)); // Engine.register
          } else if (o.k === 'all') idx.invalidateAll();
          else if (sas.length > 0) {
            const s = sas[o.i % sas.length]!;
            if (!s.alive) continue;
            if (o.k === 'kill') {
              s.alive = false;
              idx.remove(asSa(s)); // Engine.onDead
            } else if (o.k === 'set') {
              s.d = o.d;
              idx.touch(asSa(s));
            } else {
              // A datagram for `s`: the trusted exchanges change only `s`; the others may change any SA.
              if ([34, 35, 43].includes(o.x)) s.d = o.d;
              else {
                const other = sas[(o.i + 1) % sas.length]!;
                other.d = o.d;
              }
              idx.touchFor(asSa(s), o.x);
            }
          }
          expect(idx.earliest(live())).toBe(scan(sas));
        }
      }),
      { numRuns: 300 },
    );
  });
});
