/**
 * reassembly: RFC 7383 fragment sets through decodeProtected (real keys,
 * fragments resealed so mutated Fragment Number / Total Fragments / inner
 * octets pass the ICV) into one Reassembler with small bounds. Input:
 *   [key set index][direction][count][count x ([u16 length][reseal form])]
 * Structure-aware mutators duplicate, drop and reorder fragments and set
 * Fragment Number / Total Fragments to edge values (0, 1, total+1, 0xffff),
 * producing overlaps, duplicates, inconsistent totals and huge numbers.
 * Invariants: a completed message has `fragments` equal to the total of the
 * set; the reassembler never holds more than maxMessages incomplete sets.
 */
import { decodeProtected, isCodecError, isFragment, Reassembler } from '../../firmware/ikev2/codec/index.js';
import { errSig, InvariantError, type FuzzTarget } from '../lib/target.js';
import { reseal } from './sk-common.js';
import { skSetup, type SkCtx } from './sk-decrypt.js';
import type { CustomMutator } from '../lib/mutate.js';

export function packFragmentSet(keyIdx: number, dir: number, frames: Uint8Array[]): Uint8Array {
  const len = 3 + frames.reduce((s, f) => s + 2 + f.length, 0);
  const out = new Uint8Array(len);
  out[0] = keyIdx;
  out[1] = dir;
  out[2] = frames.length;
  let o = 3;
  for (const f of frames) {
    out[o] = f.length >> 8;
    out[o + 1] = f.length & 0xff;
    out.set(f, o + 2);
    o += 2 + f.length;
  }
  return out;
}

export function unpackFragmentSet(input: Uint8Array): { keyIdx: number; dir: number; frames: Uint8Array[] } {
  const frames: Uint8Array[] = [];
  let o = 3;
  const n = input[2] ?? 0;
  for (let i = 0; i < n && o + 2 <= input.length; i++) {
    const l = (input[o]! << 8) | input[o + 1]!;
    frames.push(input.slice(o + 2, Math.min(input.length, o + 2 + l)));
    o += 2 + l;
  }
  return { keyIdx: input[0] ?? 0, dir: input[1] ?? 0, frames };
}

/** Offset of Fragment Number inside a reseal-form frame: the last 4 octets of the prefix. */
function fragFieldAt(frame: Uint8Array): number {
  if (frame.length < 2) return -1;
  const pLen = (frame[0]! << 8) | frame[1]!;
  const at = 2 + pLen - 4;
  return at >= 2 && at + 4 <= frame.length ? at : -1;
}

const structural: CustomMutator[] = [
  // duplicate a fragment
  (input, a, b) => {
    const s = unpackFragmentSet(input);
    if (!s.frames.length) return input;
    s.frames.splice(b % (s.frames.length + 1), 0, s.frames[a % s.frames.length]!);
    return packFragmentSet(s.keyIdx, s.dir, s.frames.slice(0, 255));
  },
  // drop a fragment
  (input, a) => {
    const s = unpackFragmentSet(input);
    if (s.frames.length < 2) return input;
    s.frames.splice(a % s.frames.length, 1);
    return packFragmentSet(s.keyIdx, s.dir, s.frames);
  },
  // swap two fragments
  (input, a, b) => {
    const s = unpackFragmentSet(input);
    if (s.frames.length < 2) return input;
    const i = a % s.frames.length;
    const j = b % s.frames.length;
    [s.frames[i], s.frames[j]] = [s.frames[j]!, s.frames[i]!];
    return packFragmentSet(s.keyIdx, s.dir, s.frames);
  },
  // Fragment Number / Total Fragments to an edge value
  (input, a, b) => {
    const s = unpackFragmentSet(input);
    if (!s.frames.length) return input;
    const f = s.frames[a % s.frames.length]!;
    const at = fragFieldAt(f);
    if (at < 0) return input;
    const dv = new DataView(f.buffer, f.byteOffset);
    const total = dv.getUint16(at + 2);
    const vals = [0, 1, 2, total, total + 1, total - 1, 64, 65, 0x7fff, 0xffff, s.frames.length, s.frames.length + 1];
    dv.setUint16(at + (b & 1 ? 2 : 0), vals[(b >> 1) % vals.length]! & 0xffff);
    return packFragmentSet(s.keyIdx, s.dir, s.frames);
  },
  // another message id for one fragment (interleaved sets)
  (input, a, b) => {
    const s = unpackFragmentSet(input);
    if (!s.frames.length) return input;
    const f = s.frames[a % s.frames.length]!;
    if (f.length >= 2 + 24) new DataView(f.buffer, f.byteOffset).setUint32(2 + 20, b % 5);
    return packFragmentSet(s.keyIdx, s.dir, s.frames);
  },
];

export const reassembly: FuzzTarget<SkCtx> = {
  name: 'reassembly',
  description: 'RFC 7383 fragment sets (real keys, resealed): overlaps, duplicates, inconsistent totals, huge numbers',
  setup: () => skSetup('reassembly'),
  run(input, ctx) {
    const s = unpackFragmentSet(input);
    const c = ctx.ciphers[s.keyIdx % ctx.ciphers.length]![s.dir & 1]!;
    const r = new Reassembler({ maxFragments: 32, maxBytes: 16 * 1024, maxMessages: 3 });
    const sigs: string[] = [];
    for (const f of s.frames) {
      let st;
      try {
        const d = decodeProtected(reseal(f, c, ++ctx.n), c);
        if (!isFragment(d)) {
          sigs.push('whole');
          continue;
        }
        st = r.addDetailed('q', d);
        if (st.status === 'complete') {
          if (st.message.fragments !== d.total) throw new InvariantError(`reassembled ${st.message.fragments} fragments for a set of ${d.total}`);
          sigs.push(`complete:${st.message.payloads.map((p) => p.type).join(',')}`);
        } else sigs.push(st.status === 'pending' ? 'pending' : `dropped:${st.reason}`);
      } catch (e) {
        if (!isCodecError(e)) throw e;
        sigs.push(errSig(e));
      }
      if (r.pending > r.maxMessages) throw new InvariantError(`reassembler holds ${r.pending} sets (max ${r.maxMessages})`);
    }
    return sigs.join('|');
  },
  mutators: structural,
  maxLen: 32768,
};
