/**
 * Builds protected messages by hand so tests can break rules the encoder
 * never breaks (bad inner lengths, oversized pad length, unprotected
 * payloads before SK, odd SKF numbers) while the ICV stays valid.
 */
import { Writer, concat } from '../../firmware/util/bytes.js';
import type { SkCipher } from '../../firmware/crypto/types.js';
import { encodeChain, encodeHeader, encodePayloads } from '../../firmware/ikev2/codec/index.js';
import type { Payload } from '../../firmware/ikev2/codec/types.js';
import { PayloadType } from '../../firmware/ikev2/constants.js';
import { SPI_I, SPI_R } from './fixtures.js';

export interface CraftSpec {
  exchange: number;
  response?: boolean;
  messageId?: number;
  unprotected?: Payload[];
  /** Plaintext to seal as is (inner payloads | padding | pad length). */
  plain: Uint8Array;
  /** SK/SKF Next Payload (first inner payload type). */
  skNext: number;
  frag?: { number: number; total: number };
}

/** inner | padding(zeros) | padLength, aligned to blockSize; `padByte` overrides the Pad Length octet. */
export function pad(inner: Uint8Array, blockSize: number, padByte?: number): Uint8Array {
  const padLen = (blockSize - ((inner.length + 1) % blockSize)) % blockSize;
  const out = new Uint8Array(inner.length + padLen + 1);
  out.set(inner);
  out[out.length - 1] = padByte ?? padLen;
  return out;
}

export const innerOf = (payloads: Payload[]): Uint8Array => encodePayloads(payloads);

export function craft(spec: CraftSpec, cipher: SkCipher): Uint8Array {
  const skType = spec.frag ? PayloadType.SKF : PayloadType.SK;
  const w = new Writer();
  encodeChain(w, spec.unprotected ?? [], skType);
  const unprot = w.finish();
  const extra = spec.frag ? 4 : 0;
  const skLen = 4 + extra + cipher.ivSize + spec.plain.length + cipher.icvSize;
  const total = 28 + unprot.length + skLen;
  const header = encodeHeader({
    spiI: SPI_I,
    spiR: SPI_R,
    nextPayload: spec.unprotected?.length ? spec.unprotected[0]!.type : skType,
    exchange: spec.exchange,
    response: spec.response ?? false,
    initiator: !(spec.response ?? false),
    messageId: spec.messageId ?? 1,
    length: total,
  });
  const skHdr = new Uint8Array(4 + extra);
  const v = new DataView(skHdr.buffer);
  skHdr[0] = spec.skNext;
  v.setUint16(2, skLen);
  if (spec.frag) {
    v.setUint16(4, spec.frag.number);
    v.setUint16(6, spec.frag.total);
  }
  const aad = concat(header, unprot, skHdr);
  const iv = new Uint8Array(cipher.ivSize).fill(7);
  return concat(aad, iv, cipher.seal(aad, iv, spec.plain));
}
