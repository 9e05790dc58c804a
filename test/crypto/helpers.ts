/** Shared helpers for the crypto tests (vector loading, scripted randomness). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Rng } from '../../firmware/util/clock.js';

const VECTORS = fileURLToPath(new URL('../vectors/crypto/', import.meta.url));

export function loadVectors<T>(file: string): T {
  return JSON.parse(readFileSync(VECTORS + file, 'utf8')) as T;
}

export function h(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * An Rng that replays exactly the given byte strings, one per call, and
 * checks the requested length: lets a test inject a vector's private key
 * (or ML-KEM seed d|z, or encapsulation message m) through the public API.
 */
export class ScriptedRng implements Rng {
  private readonly queue: Uint8Array[];
  constructor(...chunks: Uint8Array[]) {
    this.queue = chunks.map((c) => c.slice());
  }
  bytes(n: number): Uint8Array {
    const next = this.queue.shift();
    if (!next) throw new Error(`ScriptedRng exhausted (asked for ${n} bytes)`);
    if (next.length !== n) throw new Error(`ScriptedRng: asked for ${n} bytes, scripted ${next.length}`);
    return next;
  }
  get remaining(): number {
    return this.queue.length;
  }
}

/** Flip one bit of a copy. */
export function flip(b: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const c = b.slice();
  c[index]! ^= mask;
  return c;
}
