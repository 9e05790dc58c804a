/**
 * Time and randomness are injected so the sans-IO engine can run under a fake
 * clock and deterministic randomness in tests (boringtun style).
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
};

export class FakeClock implements Clock {
  t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Rng {
  bytes(n: number): Uint8Array;
}
