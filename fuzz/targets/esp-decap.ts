/**
 * esp-decap: ESP decapsulation (RFC 4303) with the keys of Child SAs the
 * engines installed (sas.json): replay window incl. ESN inference, ICV,
 * padding and Next Header checks, then the inner IP parsing the data plane
 * does (parseFlow, MSS clamping, ICMP too-big generation). Input:
 *   [sa index][flags: bit 0 ESN][window choice][count][count x ([kind][u16 length][bytes])]
 *   kind 0: bytes are an ESP packet as received;
 *   kind 1: bytes are [u32 seq high][u32 seq low][next header][inner packet],
 *           sealed with the real key at that sequence number (so mutated inner
 *           packets, paddings and sequence numbers reach the checks behind a valid ICV).
 * Invariants: a raw packet that is not one the target sealed never
 * authenticates (no forgery); no sequence number is accepted twice; the
 * window's right edge never moves left; an accepted packet's padding and
 * Next Header are what was sealed.
 */
import { createHash } from 'node:crypto';
import { DecapStatus, EspSa } from '../../firmware/dataplane/esp/sa.js';
import { clampMss, icmpTooBig, newFlow, parseAddr, parseFlow, internetChecksum } from '../../firmware/dataplane/ip.js';
import { loadCorpus, loadCorpusJson } from '../lib/corpus.js';
import { InvariantError, type FuzzTarget } from '../lib/target.js';
import type { CustomMutator } from '../lib/mutate.js';

export interface EspSaRecord {
  spi: number;
  encrId: number;
  encrKeyBits: number;
  encrKey: string;
  integId: number;
  integKey: string;
}

const WINDOWS = [64, 0, 32, 1024, 128];

export function packEspInput(saIdx: number, esn: boolean, windowChoice: number, pkts: { kind: 0 | 1; bytes: Uint8Array }[]): Uint8Array {
  const len = 4 + pkts.reduce((s, p) => s + 3 + p.bytes.length, 0);
  const out = new Uint8Array(len);
  out[0] = saIdx;
  out[1] = esn ? 1 : 0;
  out[2] = windowChoice;
  out[3] = pkts.length;
  let o = 4;
  for (const p of pkts) {
    out[o] = p.kind;
    out[o + 1] = p.bytes.length >> 8;
    out[o + 2] = p.bytes.length & 0xff;
    out.set(p.bytes, o + 3);
    o += 3 + p.bytes.length;
  }
  return out;
}

function unpack(input: Uint8Array): { sa: number; esn: boolean; win: number; pkts: { kind: number; bytes: Uint8Array }[] } {
  const pkts: { kind: number; bytes: Uint8Array }[] = [];
  let o = 4;
  const n = input[3] ?? 0;
  for (let i = 0; i < n && o + 3 <= input.length; i++) {
    const l = (input[o + 1]! << 8) | input[o + 2]!;
    pkts.push({ kind: input[o]! & 1, bytes: input.slice(o + 3, Math.min(input.length, o + 3 + l)) });
    o += 3 + l;
  }
  return { sa: input[0] ?? 0, esn: ((input[1] ?? 0) & 1) === 1, win: WINDOWS[(input[2] ?? 0) % WINDOWS.length]!, pkts };
}

export function ipv4Packet(src: string, dst: string, proto: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = proto;
  p.set(parseAddr(src), 12);
  p.set(parseAddr(dst), 16);
  const c = internetChecksum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(payload, 20);
  return p;
}

export function ipv6Packet(src: string, dst: string, nh: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + payload.length);
  p[0] = 0x60;
  p[4] = payload.length >> 8;
  p[5] = payload.length & 0xff;
  p[6] = nh;
  p[7] = 64;
  p.set(parseAddr(src), 8);
  p.set(parseAddr(dst), 24);
  p.set(payload, 40);
  return p;
}

interface EspCtx {
  sas: EspSaRecord[];
  /** SHA-1 of every packet sealed by a corpus-generation sender (authentic raw packets). */
  authentic: Set<string>;
}

const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

function makeSa(r: EspSaRecord, esn: boolean, replayWindow: number): EspSa {
  // node:crypto transforms (native: false): the addon is not needed and results are the same (test/dataplane/native-aead.test.ts).
  return new EspSa({ spi: r.spi, encrId: r.encrId, encrKeyBits: r.encrKeyBits, encrKey: Buffer.from(r.encrKey, 'hex'), integId: r.integId, integKey: Buffer.from(r.integKey, 'hex'), esn, replayWindow, native: false });
}

const structural: CustomMutator[] = [
  // replay: repeat a packet
  (input, a, b) => {
    const u = unpack(input);
    if (!u.pkts.length) return input;
    u.pkts.splice(b % (u.pkts.length + 1), 0, u.pkts[a % u.pkts.length]!);
    return packEspInput(u.sa, u.esn, u.win === 64 ? 0 : WINDOWS.indexOf(u.win), u.pkts.slice(0, 64) as { kind: 0 | 1; bytes: Uint8Array }[]);
  },
  // reorder
  (input, a, b) => {
    const u = unpack(input);
    if (u.pkts.length < 2) return input;
    const i = a % u.pkts.length;
    const j = b % u.pkts.length;
    [u.pkts[i], u.pkts[j]] = [u.pkts[j]!, u.pkts[i]!];
    return packEspInput(u.sa, u.esn, WINDOWS.indexOf(u.win), u.pkts as { kind: 0 | 1; bytes: Uint8Array }[]);
  },
  // sequence number of a resealed packet to an edge value (window edges, epoch boundaries)
  (input, a, b) => {
    const u = unpack(input);
    const p = u.pkts[a % Math.max(1, u.pkts.length)];
    if (!p || p.kind !== 1 || p.bytes.length < 8) return input;
    const dv = new DataView(p.bytes.buffer, p.bytes.byteOffset);
    const vals = [0, 1, 2, 63, 64, 65, 1023, 1024, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe];
    dv.setUint32(b & 1 ? 0 : 4, vals[(b >> 1) % vals.length]!);
    return packEspInput(u.sa, u.esn, WINDOWS.indexOf(u.win), u.pkts as { kind: 0 | 1; bytes: Uint8Array }[]);
  },
];

export const espDecap: FuzzTarget<EspCtx> = {
  name: 'esp-decap',
  description: 'ESP decapsulation with real Child SA keys: replay window/ESN, ICV, padding, next header, inner IP parsing',
  setup() {
    const sas = loadCorpusJson<EspSaRecord[]>('esp-decap', 'sas.json');
    const authentic = new Set<string>();
    for (const c of loadCorpus('esp-decap')) for (const p of unpack(c).pkts) if (p.kind === 0) authentic.add(sha1(p.bytes));
    return { sas, authentic };
  },
  run(input, ctx) {
    const u = unpack(input);
    const rec = ctx.sas[u.sa % ctx.sas.length]!;
    const rx = makeSa(rec, u.esn, u.win);
    const tx = makeSa(rec, u.esn, 0);
    const accepted = new Set<number>();
    const sealed = new Set<string>();
    const f = newFlow();
    const sigs: string[] = [];
    try {
      for (const p of u.pkts) {
        let pkt = p.bytes;
        let want: { nh: number; inner: Uint8Array } | undefined;
        if (p.kind === 1) {
          if (p.bytes.length < 9) continue;
          const dv = new DataView(p.bytes.buffer, p.bytes.byteOffset);
          const seq = dv.getUint32(0) * 0x1_0000_0000 + dv.getUint32(4);
          if (seq < 1 || seq > tx.seqLimit) continue;
          want = { nh: p.bytes[8]!, inner: p.bytes.subarray(9) };
          const out = tx.encapsulate(want.inner, want.nh, undefined, { seq });
          if (!out) continue;
          pkt = out.slice();
          sealed.add(sha1(pkt));
        }
        const topBefore = rx.replay.top;
        const r = rx.decapsulate(pkt);
        if (rx.replay.top < topBefore) throw new InvariantError(`replay window moved left: ${topBefore} -> ${rx.replay.top}`);
        sigs.push(String(r.status));
        // MALFORMED with a sequence number = failed a check after the ICV verified.
        const authenticated = r.status === DecapStatus.OK || (r.status === DecapStatus.MALFORMED && r.seq > 0);
        if (authenticated && p.kind === 0 && !ctx.authentic.has(sha1(pkt)) && !sealed.has(sha1(pkt))) throw new InvariantError('a raw ESP packet nobody sealed passed the ICV (forgery)');
        if (r.status !== DecapStatus.OK) continue;
        if (u.win !== 0 && accepted.has(r.seq)) throw new InvariantError(`sequence number ${r.seq} accepted twice (replay)`);
        accepted.add(r.seq);
        if (want && (r.nextHeader !== want.nh || Buffer.compare(r.payload, want.inner) !== 0)) throw new InvariantError('decapsulated payload or next header differs from what was sealed');
        // The data plane's inner path: flow parse, then MSS clamping and ICMP too-big on copies.
        if (parseFlow(r.payload, f)) {
          sigs.push(`ip${f.family}:${f.proto}`);
          const copy = r.payload.slice(0, f.length);
          const f2 = newFlow();
          if (parseFlow(copy, f2)) {
            clampMss(copy, f2, 1200);
            icmpTooBig(copy, f2, 1280);
          }
        }
      }
    } finally {
      rx.destroy();
      tx.destroy();
    }
    return sigs.join(',');
  },
  mutators: structural,
  maxLen: 16384,
};
