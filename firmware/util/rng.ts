import { randomBytes, createHash } from 'node:crypto';
import type { Rng } from './clock.js';

export const systemRng: Rng = {
  bytes: (n: number) => new Uint8Array(randomBytes(n)),
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
