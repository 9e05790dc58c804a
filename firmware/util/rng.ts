import { randomBytes, randomFillSync, createHash } from 'node:crypto';
import type { Rng } from './clock.js';

/**
 * The OS CSPRNG through a refilled pool: a handshake asks for a dozen small
 * values (SPIs, nonces, IVs, private keys), and one randomFillSync per 4 KiB
 * is much cheaper than one per value. Every value is copied out of the pool
 * and its bytes are zeroed there, so nothing is ever handed out twice.
 */
const POOL = 4096;
let pool = new Uint8Array(0);
let poolPos = 0;
export const systemRng: Rng = {
  bytes: (n: number) => {
    if (n > POOL / 4) return new Uint8Array(randomBytes(n));
    if (poolPos + n > pool.length) {
      pool = new Uint8Array(POOL);
      randomFillSync(pool);
      poolPos = 0;
    }
    const out = pool.slice(poolPos, poolPos + n);
    pool.fill(0, poolPos, poolPos + n);
    poolPos += n;
    return out;
  },
};

/** Deterministic RNG for tests: SHA-256 in counter mode over a seed string. Never use in production. */
export class TestRng implements Rng {
  private counter = 0;
  constructor(private readonly seed: string) {}
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const h = createHash('sha256').update(this.seed).update(String(this.counter++)).digest();
      const take = Math.min(h.length, n - o);
      out.set(h.subarray(0, take), o);
      o += take;
    }
    return out;
  }
}
