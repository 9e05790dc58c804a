import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { getDiffieHellman } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { createKeyExchange } from '../../firmware/crypto/registry.js';
import { EC_CURVES, MODP_GROUPS } from '../../firmware/crypto/ke-dh.js';
import { KeMethod } from '../../firmware/ikev2/constants.js';
import { KeyExchangeError } from '../../firmware/util/errors.js';
import { TestRng, systemRng } from '../../firmware/util/rng.js';
import { ScriptedRng, flip, h, loadVectors, toHex } from './helpers.js';

function expectKeError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KeyExchangeError);
    expect((e as KeyExchangeError).code).toBe('ERR_KE');
    return;
  }
  throw new Error('expected KeyExchangeError');
}

// ------------------------------------------------------------------ ECP

interface EcpVec {
  group: number;
  section: string;
  i: string;
  gix: string;
  giy: string;
  r: string;
  grx: string;
  gry: string;
  girx: string;
}

const NOBLE: Record<number, typeof p256> = { 19: p256, 20: p384, 21: p521 };

describe('ECP groups 19/20/21 against RFC 5903 §8', () => {
  const { vectors } = loadVectors<{ vectors: EcpVec[] }>('ecp-rfc5903.json');
  for (const v of vectors) {
    it(`§${v.section} (group ${v.group}): KE data = gx | gy, shared secret = x(g^ir)`, () => {
      const ini = createKeyExchange(v.group, new ScriptedRng(h(v.i)));
      const res = createKeyExchange(v.group, new ScriptedRng(h(v.r)));
      expect(toHex(ini.getPublic())).toBe(v.gix + v.giy);
      expect(toHex(res.getPublic())).toBe(v.grx + v.gry);
      ini.setPeerPublic(res.getPublic());
      res.setPeerPublic(ini.getPublic());
      expect(toHex(ini.getSharedSecret())).toBe(v.girx);
      expect(toHex(res.getSharedSecret())).toBe(v.girx);
    });
  }

  it('curve orders match @noble/curves', () => {
    for (const [m, c] of Object.entries(EC_CURVES)) {
      expect(BigInt('0x' + toHex(c.n))).toBe(NOBLE[Number(m)]!.Point.Fn.ORDER);
    }
  });
});

describe('ECP: private scalar from the RNG by rejection sampling into [1, n-1]', () => {
  it('skips 0 and values >= n, masks P-521 to 521 bits', () => {
    const n256 = EC_CURVES[KeMethod.ECP_256]!.n;
    const good = h('C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433');
    const rng = new ScriptedRng(new Uint8Array(32), n256, new Uint8Array(32).fill(0xff), good);
    const ke = createKeyExchange(KeMethod.ECP_256, rng);
    expect(rng.remaining).toBe(0);
    expect(toHex(ke.getPublic()).slice(0, 16)).toBe('dad0b65394221cf9');
    // 0xff.. top octet is masked to 0x01 for P-521: the key then equals 01ff..ff - which is >= n, so it is redrawn.
    const rng521 = new ScriptedRng(new Uint8Array(66).fill(0xff), h('00' + '11'.repeat(65)));
    const k521 = createKeyExchange(KeMethod.ECP_521, rng521);
    const d = h('00' + '11'.repeat(65));
    expect(k521.getPublic()).toEqual(p521.getPublicKey(d, false).subarray(1));
  });
});

describe('ECP cross-check against @noble/curves', () => {
  for (const m of [KeMethod.ECP_256, KeMethod.ECP_384, KeMethod.ECP_521]) {
    it(`method ${m}: both directions`, () => {
      const noble = NOBLE[m]!;
      for (let k = 0; k < 4; k++) {
        const ours = createKeyExchange(m, systemRng);
        const sk = noble.utils.randomSecretKey();
        const theirPub = noble.getPublicKey(sk, false).subarray(1);
        ours.setPeerPublic(theirPub);
        const theirShared = noble.getSharedSecret(sk, new Uint8Array([4, ...ours.getPublic()]), false);
        const fieldLen = EC_CURVES[m]!.fieldBytes;
        expect(ours.getSharedSecret()).toEqual(theirShared.subarray(1, 1 + fieldLen));
        expect(noble.utils.isValidPublicKey(new Uint8Array([4, ...ours.getPublic()]), false)).toBe(true);
      }
    });
  }
});

describe('ECP rejects invalid peer points (RFC 6989 §2.3)', () => {
  for (const m of [KeMethod.ECP_256, KeMethod.ECP_384, KeMethod.ECP_521]) {
    it(`method ${m}`, () => {
      const len = 2 * EC_CURVES[m]!.fieldBytes;
      const peer = createKeyExchange(m, systemRng).getPublic();
      const fresh = () => createKeyExchange(m, systemRng);
      expectKeError(() => fresh().setPeerPublic(flip(peer, len - 1))); // y changed: off the curve
      expectKeError(() => fresh().setPeerPublic(new Uint8Array(len))); // (0, 0)
      expectKeError(() => fresh().setPeerPublic(new Uint8Array(len).fill(0xff))); // coordinates >= p
      expectKeError(() => fresh().setPeerPublic(new Uint8Array([4, ...peer]))); // SEC1 prefix: wrong length
      expectKeError(() => fresh().setPeerPublic(peer.subarray(0, len / 2))); // x only
      expectKeError(() => fresh().setPeerPublic(new Uint8Array(0)));
      // p256 point offered to P-384 etc.: wrong length.
      const other = createKeyExchange(m === KeMethod.ECP_256 ? KeMethod.ECP_384 : KeMethod.ECP_256, systemRng).getPublic();
      expectKeError(() => fresh().setPeerPublic(other));
    });
  }

  it('a non-canonical coordinate (x + p, still 32 octets) is rejected', () => {
    // Needs a point with x < 2^256 - p (about 2^224): take the first small x on
    // the curve, then encode x + p instead of x.
    const P = p256.Point.Fp.ORDER;
    for (let x = 1n; x < 100n; x++) {
      let pt;
      try {
        pt = p256.Point.fromHex('02' + x.toString(16).padStart(64, '0'));
      } catch {
        continue;
      }
      const xy = h(pt.toHex(false)).subarray(1);
      // sanity: the canonical encoding is accepted
      createKeyExchange(KeMethod.ECP_256, systemRng).setPeerPublic(xy);
      const bad = h((x + P).toString(16).padStart(64, '0') + toHex(xy.subarray(32)));
      expectKeError(() => createKeyExchange(KeMethod.ECP_256, systemRng).setPeerPublic(bad));
      return;
    }
    throw new Error('no small-x point found');
  });
});

// ------------------------------------------------------------------ X25519

interface X25519Vecs {
  scalarMult: { name: string; scalar: string; u: string; out: string }[];
  iterated: { start: string; after1: string; after1000: string };
  dh: { name: string; privA: string; pubA: string; privB: string; pubB: string; shared: string }[];
}

function x25519Via(scalar: Uint8Array, u: Uint8Array): Uint8Array {
  const ke = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(scalar));
  ke.setPeerPublic(u);
  return ke.getSharedSecret();
}

describe('Curve25519 (group 31) against RFC 7748 / RFC 8031', () => {
  const { vectors } = loadVectors<{ vectors: X25519Vecs }>('x25519.json');

  for (const v of vectors.scalarMult) {
    it(v.name, () => {
      expect(toHex(x25519Via(h(v.scalar), h(v.u)))).toBe(v.out);
    });
  }

  for (const v of vectors.dh) {
    it(`${v.name}: public keys and shared secret`, () => {
      const a = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(h(v.privA)));
      const b = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(h(v.privB)));
      expect(toHex(a.getPublic())).toBe(v.pubA);
      expect(toHex(b.getPublic())).toBe(v.pubB);
      a.setPeerPublic(b.getPublic());
      b.setPeerPublic(a.getPublic());
      expect(toHex(a.getSharedSecret())).toBe(v.shared);
      expect(toHex(b.getSharedSecret())).toBe(v.shared);
    });
  }

  it('RFC 7748 §5.2 iterated test (1 and 1,000 iterations)', () => {
    let k = h(vectors.iterated.start);
    let u = h(vectors.iterated.start);
    for (let i = 1; i <= 1000; i++) {
      const out = x25519Via(k, u);
      u = k;
      k = out;
      if (i === 1) expect(toHex(k)).toBe(vectors.iterated.after1);
    }
    expect(toHex(k)).toBe(vectors.iterated.after1000);
  });

  it('cross-check against @noble/curves x25519', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (a, b) => {
        const ours = createKeyExchange(KeMethod.CURVE_25519, new ScriptedRng(a));
        expect(ours.getPublic()).toEqual(x25519.getPublicKey(a));
        const bPub = x25519.getPublicKey(b);
        ours.setPeerPublic(bPub);
        expect(ours.getSharedSecret()).toEqual(x25519.getSharedSecret(b, ours.getPublic()));
      }),
      { numRuns: 40 },
    );
  });

  it('rejects low-order points (all-zero shared secret, RFC 7748 §6.1, RFC 8031 §2.3) and wrong lengths', () => {
    const lowOrder = [
      '0000000000000000000000000000000000000000000000000000000000000000', // 0
      '0100000000000000000000000000000000000000000000000000000000000000', // 1
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', // order 8
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p - 1
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p (= 0)
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p + 1 (= 1)
    ];
    for (const u of lowOrder) {
      expectKeError(() => createKeyExchange(KeMethod.CURVE_25519, systemRng).setPeerPublic(h(u)));
    }
    expectKeError(() => createKeyExchange(KeMethod.CURVE_25519, systemRng).setPeerPublic(new Uint8Array(31).fill(9)));
    expectKeError(() => createKeyExchange(KeMethod.CURVE_25519, systemRng).setPeerPublic(new Uint8Array(33).fill(9)));
  });
});

// ------------------------------------------------------------------ MODP

/** pi to `bits` fractional bits as floor(pi * 2^bits), Machin's formula in BigInt. */
function piScaled(bits: number): bigint {
  const guard = 64n;
  const one = 1n << (BigInt(bits) + guard);
  const arctanInv = (x: bigint): bigint => {
    let sum = 0n;
    let term = one / x;
    const x2 = x * x;
    for (let n = 1n; term !== 0n; n += 2n) {
      sum += ((n - 1n) / 2n) % 2n === 0n ? term / n : -(term / n);
      term /= x2;
    }
    return sum;
  };
  return (4n * (4n * arctanInv(5n) - arctanInv(239n))) >> guard;
}

function modpow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

const big = (b: Uint8Array): bigint => BigInt('0x' + (toHex(b) || '0'));

describe('MODP groups 14/15 (RFC 3526)', () => {
  it('primes equal the RFC 3526 formula p = 2^N - 2^(N-64) - 1 + 2^64 * ([2^(N-130) pi] + c)', () => {
    const cases: [number, number, bigint][] = [
      [KeMethod.MODP_2048, 2048, 124476n],
      [KeMethod.MODP_3072, 3072, 1690314n],
    ];
    for (const [m, n, c] of cases) {
      const N = BigInt(n);
      const p = (1n << N) - (1n << (N - 64n)) - 1n + (1n << 64n) * (piScaled(n - 130) + c);
      expect(big(MODP_GROUPS[m]!.p)).toBe(p);
    }
    // and they are the groups Node knows as modp14 / modp15
    expect(MODP_GROUPS[14]!.p).toEqual(new Uint8Array(getDiffieHellman('modp14').getPrime()));
    expect(MODP_GROUPS[15]!.p).toEqual(new Uint8Array(getDiffieHellman('modp15').getPrime()));
  });

  it('public value = 2^x mod p from the RNG exponent, zero-padded; shared secret padded to the modulus', () => {
    const x = h('00' + '13'.repeat(47)); // leading zero octet in the exponent
    const y = h('0102030405060708090a0b0c0d0e0f10111213141516171819'.padEnd(96, '7'));
    const a = createKeyExchange(KeMethod.MODP_2048, new ScriptedRng(x));
    const b = createKeyExchange(KeMethod.MODP_2048, new ScriptedRng(y));
    const p = big(MODP_GROUPS[14]!.p);
    expect(a.getPublic().length).toBe(256);
    expect(big(a.getPublic())).toBe(modpow(2n, big(x), p));
    a.setPeerPublic(b.getPublic());
    b.setPeerPublic(a.getPublic());
    expect(a.getSharedSecret()).toEqual(b.getSharedSecret());
    expect(big(a.getSharedSecret())).toBe(modpow(2n, big(x) * big(y), p));
    expect(a.getSharedSecret().length).toBe(256);
  });

  it('a peer value that makes g^xy short still yields a 256-octet secret', () => {
    // y = 2 (a legal 1 < y < p-1 value): g^ir = 2^x; choose x = 8 so the secret is 0x0100 (2 octets unpadded).
    const ke = createKeyExchange(KeMethod.MODP_2048, new ScriptedRng(h('00'.repeat(47) + '08')));
    const y = new Uint8Array(256);
    y[255] = 2;
    ke.setPeerPublic(y);
    const s = ke.getSharedSecret();
    expect(s.length).toBe(256);
    expect(big(s)).toBe(256n);
  });

  it('rejects y <= 1, y >= p-1 and wrong lengths (RFC 6989 §2.2)', () => {
    for (const m of [KeMethod.MODP_2048, KeMethod.MODP_3072]) {
      const g = MODP_GROUPS[m]!;
      const len = g.p.length;
      const val = (v: bigint) => h(v.toString(16).padStart(len * 2, '0'));
      const p = big(g.p);
      for (const y of [0n, 1n, p - 1n, p, p + 1n, (1n << BigInt(len * 8)) - 1n]) {
        expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(val(y)));
      }
      expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(val(2n).subarray(1))); // 255/383 octets
      expectKeError(() => createKeyExchange(m, systemRng).setPeerPublic(new Uint8Array(len + 1).fill(1)));
      // 2 and p-2 are the extremes that are accepted
      createKeyExchange(m, systemRng).setPeerPublic(val(2n));
      createKeyExchange(m, systemRng).setPeerPublic(val(p - 2n));
    }
  });
});

describe('DH object semantics', () => {
  for (const m of [KeMethod.MODP_2048, KeMethod.ECP_256, KeMethod.CURVE_25519]) {
    it(`method ${m}: deterministic from the Rng, one peer value, copies out, destroy`, () => {
      const a1 = createKeyExchange(m, new TestRng('det'));
      const a2 = createKeyExchange(m, new TestRng('det'));
      expect(a1.getPublic()).toEqual(a2.getPublic());
      expect(a1.isKem).toBe(false);
      expectKeError(() => a1.getSharedSecret()); // no peer yet
      const b = createKeyExchange(m, new TestRng('peer'));
      a1.setPeerPublic(b.getPublic());
      expectKeError(() => a1.setPeerPublic(b.getPublic())); // twice
      const s = a1.getSharedSecret();
      s.fill(0);
      expect(a1.getSharedSecret().some((x) => x !== 0)).toBe(true); // caller got a copy
      const pub = a1.getPublic();
      pub.fill(0);
      expect(a1.getPublic()).toEqual(a2.getPublic());
      a1.destroy();
      expect(() => a1.getSharedSecret()).toThrow();
      expect(() => a1.getPublic()).toThrow();
    });
  }
});
