/**
 * sk-decrypt: SK/SKF decryption with the real keys of recorded IKE SAs
 * (keys.json: every key generation of the corpus runs). Input:
 *   [key set index][flags][bytes]
 *   flags bit 0: direction (0 = sent by the original initiator, 1 = responder)
 *   flags bit 1: bytes are the reseal form (sk-common.ts): the target
 *                encrypts the (mutated) plaintext with the real key, so the
 *                inner payload parser and the rules see mutated plaintext
 *                behind a valid ICV; otherwise bytes are the wire datagram.
 *   flags bit 2: decode without the per-exchange rules (reaches more decoders)
 * Invariant: a wire datagram that is not byte-identical to a corpus
 * datagram never passes the ICV (no forgery).
 */
import { decodeProtected, isCodecError, isFragment } from '../../firmware/ikev2/codec/index.js';
import type { SkCipher } from '../../firmware/crypto/types.js';
import { loadCorpus, loadCorpusJson } from '../lib/corpus.js';
import type { RecordedIkeKeys } from '../lib/lab.js';
import { errSig, InvariantError, type FuzzTarget } from '../lib/target.js';
import { cipherTable, locateSk, reseal } from './sk-common.js';
import { mutateChain } from '../lib/chain.js';
import type { CustomMutator } from '../lib/mutate.js';

/**
 * Payload-aware mutations of the inner chain of a reseal-form input
 * ([key][flags][u16 prefix length][prefix][inner payloads, padding, pad length]);
 * the padding stays, the target fixes the outer lengths when it seals.
 */
export function innerChainMutator(op: number, headerLen: number): CustomMutator {
  return (input, a, b) => {
    if (input.length < headerLen + 2 + 28) return input;
    const pLen = (input[headerLen]! << 8) | input[headerLen + 1]!;
    const pStart = headerLen + 2;
    if (pStart + pLen >= input.length) return input;
    const prefix = input.subarray(pStart, pStart + pLen);
    const sk = locateSk(prefix);
    if (sk < 0) return input;
    const padLen = input[input.length - 1]!;
    const end = input.length - 1 - padLen;
    const start = pStart + pLen;
    if (end <= start) return input;
    return mutateChain(input, start, end, pStart + sk, op, a, b).out;
  };
}

const resealMutators: CustomMutator[] = [0, 1, 2, 3, 4].map((op) => {
  const m = innerChainMutator(op, 2);
  // Only reseal-form inputs (flags bit 1) have a plaintext chain.
  return (input, a, b) => (input.length > 2 && (input[1]! & 2) !== 0 ? m(input, a, b) : input);
});
import { createHash } from 'node:crypto';

export interface SkCtx {
  ciphers: SkCipher[][];
  /** SHA-1 of every authentic wire datagram of the corpus. */
  authentic: Set<string>;
  n: number;
}

const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

export function skSetup(target: string): SkCtx {
  const keys = loadCorpusJson<RecordedIkeKeys[]>(target, 'keys.json');
  const authentic = new Set<string>();
  if (target === 'sk-decrypt') for (const c of loadCorpus(target)) if (c.length > 2 && (c[1]! & 2) === 0) authentic.add(sha1(c.subarray(2)));
  return { ciphers: cipherTable(keys), authentic, n: 0 };
}

export function decodeOne(ctx: SkCtx, keyIdx: number, flags: number, bytes: Uint8Array): { sig: string; datagram: Uint8Array; result?: ReturnType<typeof decodeProtected> } {
  const c = ctx.ciphers[keyIdx % ctx.ciphers.length]![flags & 1]!;
  const resealed = (flags & 2) !== 0;
  const datagram = resealed ? reseal(bytes, c, ++ctx.n) : bytes;
  try {
    const r = decodeProtected(datagram, c, { rules: (flags & 4) === 0 });
    return { sig: isFragment(r) ? `frag:${r.number}/${r.total}:${r.firstPayload}` : `ok:${r.exchange}:${r.payloads.map((p) => p.type).join(',')}`, datagram, result: r };
  } catch (e) {
    if (!isCodecError(e)) throw e;
    return { sig: errSig(e), datagram };
  }
}

export const skDecrypt: FuzzTarget<SkCtx> = {
  name: 'sk-decrypt',
  description: 'SK/SKF verification + decryption with real keys, inner payload parser and rules (wire and resealed plaintext)',
  setup: () => skSetup('sk-decrypt'),
  run(input, ctx) {
    if (input.length < 3) return 'short';
    const flags = input[1]!;
    const bytes = input.subarray(2);
    const r = decodeOne(ctx, input[0]!, flags, bytes);
    if (r.result && (flags & 2) === 0 && !ctx.authentic.has(sha1(bytes))) {
      throw new InvariantError('a wire datagram that is not one of the recorded ones passed the ICV (forgery accepted)');
    }
    return r.sig;
  },
  mutators: resealMutators,
  maxLen: 8192,
};
