/**
 * Shared by sk-decrypt and reassembly: SK ciphers from the recorded key
 * sets, and the "reseal" input form that lets mutations reach the inner
 * parser. A resealed input is [u16 prefix length][prefix][plaintext], where
 * prefix is the IKE header up to and including the SK/SKF generic header
 * (plus Fragment Number / Total Fragments for SKF) and plaintext is the inner
 * payloads, padding and Pad Length octet (RFC 7296 §3.14). The target fixes
 * the length fields, encrypts with the real key and an IV and hands the
 * datagram to decodeProtected, so a mutated plaintext passes the ICV.
 */
import { createSkCipher, encrInfo, integInfo } from '../../firmware/crypto/registry.js';
import type { SkCipher } from '../../firmware/crypto/types.js';
import { decodeChain, decodeHeaderOnly } from '../../firmware/ikev2/codec/index.js';
import { PayloadType } from '../../firmware/ikev2/constants.js';
import type { RecordedIkeKeys } from '../lib/lab.js';

const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** The cipher protecting messages sent by the original initiator (dir 0, SK_ei/SK_ai) or responder (dir 1). */
export function cipherFor(k: RecordedIkeKeys, dir: number): SkCipher {
  const e = encrInfo(k.encrId, k.encrKeyBits);
  const integ = k.integId ? integInfo(k.integId) : undefined;
  const ek = fromHex(dir === 0 ? k.skEi : k.skEr);
  const ak = fromHex(dir === 0 ? k.skAi : k.skAr);
  return createSkCipher(e, ek, integ, integ ? ak : undefined);
}

/** Both directions of every key set, built once. */
export function cipherTable(keys: RecordedIkeKeys[]): SkCipher[][] {
  return keys.map((k) => [cipherFor(k, 0), cipherFor(k, 1)]);
}

/** A recorded datagram -> reseal form (decrypts it; generation time only). */
export function packReseal(data: Uint8Array, k: RecordedIkeKeys, dir: number): Uint8Array {
  const c = cipherFor(k, dir);
  decodeHeaderOnly(data);
  const chain = decodeChain(data, 28, data.length, data[16]!, 0, true, 16);
  const sk = chain.encrypted;
  if (!sk) throw new Error('not a protected message');
  const bodyStart = sk.start + 4 + (sk.type === PayloadType.SKF ? 4 : 0);
  const ctStart = bodyStart + c.ivSize;
  const plain = c.open(data.subarray(0, bodyStart), data.subarray(bodyStart, ctStart), data.subarray(ctStart));
  const out = new Uint8Array(2 + bodyStart + plain.length);
  out[0] = bodyStart >> 8;
  out[1] = bodyStart & 0xff;
  out.set(data.subarray(0, bodyStart), 2);
  out.set(plain, 2 + bodyStart);
  return out;
}

/** Reseal form -> datagram, encrypted with `c` (lenient: any bytes give some datagram). */
export function reseal(input: Uint8Array, c: SkCipher, ivSeed: number): Uint8Array {
  if (input.length < 2) return input;
  const pLen = Math.min((input[0]! << 8) | input[1]!, input.length - 2);
  const prefix = input.slice(2, 2 + pLen);
  let plain = input.subarray(2 + pLen);
  if (plain.length % c.blockSize) {
    // CBC needs whole blocks: extend with zero octets (the Pad Length then reads 0).
    const p = new Uint8Array(plain.length + c.blockSize - (plain.length % c.blockSize));
    p.set(plain);
    plain = p;
  }
  const iv = new Uint8Array(c.ivSize);
  new DataView(iv.buffer).setUint32(iv.length - 4, ivSeed >>> 0);
  const total = prefix.length + iv.length + plain.length + c.icvSize;
  const dv = new DataView(prefix.buffer);
  if (prefix.length >= 28) dv.setUint32(24, total);
  // The SK/SKF generic header is the last 4 (SK) or 8 (SKF) octets of the prefix: which one, the
  // pointer to it says; without a walk we patch the SK position and, if that is not an SK type, SKF.
  const skAt = locateSk(prefix);
  if (skAt >= 0 && skAt + 4 <= prefix.length) dv.setUint16(skAt + 2, total - skAt);
  const ct = c.seal(prefix, iv, plain);
  const out = new Uint8Array(prefix.length + iv.length + ct.length);
  out.set(prefix, 0);
  out.set(iv, prefix.length);
  out.set(ct, prefix.length + iv.length);
  return out;
}

/** Offset of the SK/SKF payload in a prefix: follow the chain from the header (bounded). */
export function locateSk(prefix: Uint8Array): number {
  if (prefix.length < 28) return -1;
  let next = prefix[16]!;
  let at = 28;
  for (let i = 0; i < 32 && at + 4 <= prefix.length; i++) {
    if (next === PayloadType.SK || next === PayloadType.SKF) return at;
    const len = (prefix[at + 2]! << 8) | prefix[at + 3]!;
    if (len < 4) return -1;
    next = prefix[at]!;
    at += len;
  }
  return -1;
}
