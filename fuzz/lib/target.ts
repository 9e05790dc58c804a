/** What a fuzz target provides to the loop (fuzz/lib/loop.ts). */
import type { CustomMutator } from './mutate.js';

/** An invariant the code under test broke (decoder accepted then re-encoding differs, a forged packet accepted, ...). */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export interface FuzzTarget<C = unknown> {
  name: string;
  /** One line for --list and the docs. */
  description: string;
  /** Build the context (keys from the recorded SA etc.) once per run. */
  setup(): C;
  /**
   * Run one input. Returns a short behaviour signature (e.g. the typed
   * error's code, or "ok:<payload types>"); the loop keeps mutated inputs
   * that show a behaviour not seen before as new starting points. Throws
   * only for bugs: anything but the target's typed errors, or InvariantError.
   */
  run(input: Uint8Array, ctx: C): string;
  /** Structure-aware mutations (optional). */
  mutators?: CustomMutator[];
  /** Largest input the mutator may produce. */
  maxLen?: number;
}

/** Signature of an expected, typed error: its stable code plus the first words of the message without numbers. */
export function errSig(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown; violation?: unknown };
  // The message up to its first digit or colon: the kind of problem without offsets and values.
  let msg = '';
  if (typeof err.message === 'string') {
    const m = err.message;
    let i = 0;
    while (i < m.length && i < 40) {
      const c = m.charCodeAt(i);
      if ((c >= 48 && c <= 57) || c === 58 || c === 40) break;
      i++;
    }
    msg = m.slice(0, i);
  }
  return `err:${String(err.code ?? (e as Error)?.name)}:${err.violation ? String(err.violation) + ':' : ''}${msg}`;
}
