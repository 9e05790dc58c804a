/**
 * ike-parse: the IKE message parser and every payload decoder. Each input is
 * a datagram; it goes through decodeHeaderOnly, decodePlain with and without
 * the per-exchange rules, and decodeChain allowing SK/SKF (the outer part of
 * protected messages). Invariant: whatever decodes re-encodes to bytes that
 * decode to the same message (encode . decode is a fixpoint after one round).
 */
import { decodeChain, decodeHeaderOnly, decodePlain, encodePlain, isCodecError } from '../../firmware/ikev2/codec/index.js';
import { errSig, InvariantError, type FuzzTarget } from '../lib/target.js';
import type { Message } from '../../firmware/ikev2/codec/types.js';
import { mutateChain } from '../lib/chain.js';
import type { CustomMutator } from '../lib/mutate.js';

/** Payload-aware mutations of the chain after the IKE header; the header's Length follows. */
const chainMutators: CustomMutator[] = [0, 1, 2, 3, 4].map((op) => (input, a, b) => {
  if (input.length < 32) return input;
  const { out } = mutateChain(input, 28, input.length, 16, op, a, b);
  if (out !== input) new DataView(out.buffer, out.byteOffset).setUint32(24, out.length);
  return out;
});

export function canon(v: unknown): string {
  return JSON.stringify(v, (k, x) => (k === 'raw' ? undefined : x instanceof Uint8Array ? `#${Buffer.from(x).toString('hex')}` : x));
}

function roundTrip(msg: Message): void {
  let again;
  let bytes;
  try {
    bytes = encodePlain({ ...msg, encrypted: false });
  } catch (e) {
    if (e instanceof RangeError || isCodecError(e)) return; // e.g. a field the encoder refuses (too long): not a decoder bug
    throw e;
  }
  try {
    again = decodePlain(bytes, { rules: false });
  } catch (e) {
    throw new InvariantError(`decoded message re-encodes to bytes the decoder refuses: ${(e as Error).message}`);
  }
  const a = canon(msg.payloads);
  const b = canon(again.payloads);
  if (a !== b) throw new InvariantError(`re-encoded message decodes differently:\n  first  ${a.slice(0, 400)}\n  second ${b.slice(0, 400)}`);
}

export const ikeParse: FuzzTarget<null> = {
  name: 'ike-parse',
  description: 'IKE header + payload chain + every payload decoder; decode/encode round trip',
  setup: () => null,
  run(input) {
    const sigs: string[] = [];
    try {
      decodeHeaderOnly(input);
      sigs.push('h');
    } catch (e) {
      if (!isCodecError(e)) throw e;
      return errSig(e);
    }
    for (const rules of [true, false]) {
      try {
        const m = decodePlain(input, { rules });
        sigs.push(`ok:${m.exchange}:${m.payloads.map((p) => p.type).join(',')}`);
        if (!rules) roundTrip(m);
      } catch (e) {
        if (!isCodecError(e)) throw e;
        sigs.push(errSig(e));
      }
    }
    try {
      const c = decodeChain(input, 28, input.length, input[16]!, 0, true, 16);
      sigs.push(`chain:${c.payloads.length}:${c.encrypted?.type ?? 0}`);
    } catch (e) {
      if (!isCodecError(e)) throw e;
      sigs.push(errSig(e));
    }
    return sigs.join('|');
  },
  mutators: chainMutators,
  maxLen: 16384,
};

