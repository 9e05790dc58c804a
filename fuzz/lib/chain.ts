/**
 * Payload-aware mutations for IKE payload chains (RFC 7296 §3.2 generic
 * payload headers): blind byte mutations rarely keep every length field
 * consistent, so decoders deep in a message (traffic selectors, CP
 * attributes, proposals) would mostly see "length exceeds message". These
 * operate on one payload of the chain and fix its Payload Length (and the
 * caller fixes the message length): mutate inside a body, grow a body by
 * repeating its tail while incrementing a count octet (TS count, number of
 * SPIs, proposal/transform numbers), duplicate or drop a payload.
 */
const GENERIC = 4;

interface Span {
  /** Offset of the generic header. */
  at: number;
  len: number;
  /** Offset of the octet that names this payload's type (previous header's Next Payload, or the first-type octet). */
  ptr: number;
}

export function walkChain(buf: Uint8Array, start: number, end: number, firstPtr: number): Span[] {
  const out: Span[] = [];
  let at = start;
  let ptr = firstPtr;
  for (let i = 0; i < 64 && at + GENERIC <= end; i++) {
    const len = (buf[at + 2]! << 8) | buf[at + 3]!;
    if (len < GENERIC || at + len > end) break;
    out.push({ at, len, ptr });
    if (buf[at] === 0) break;
    ptr = at;
    at += len;
  }
  return out;
}

function splice(buf: Uint8Array, at: number, del: number, ins: Uint8Array): Uint8Array {
  const out = new Uint8Array(buf.length - del + ins.length);
  out.set(buf.subarray(0, at), 0);
  out.set(ins, at);
  out.set(buf.subarray(at + del), at + ins.length);
  return out;
}

function setLen(buf: Uint8Array, at: number, len: number): void {
  buf[at + 2] = (len >> 8) & 0xff;
  buf[at + 3] = len & 0xff;
}

/**
 * One payload-level mutation of the chain in buf[start, end) whose first type
 * is named at buf[firstPtr]. Returns the new buffer and the length change.
 */
export function mutateChain(buf: Uint8Array, start: number, end: number, firstPtr: number, op: number, a: number, b: number): { out: Uint8Array; delta: number } {
  const spans = walkChain(buf, start, end, firstPtr);
  if (!spans.length) return { out: buf, delta: 0 };
  const s = spans[a % spans.length]!;
  const bodyLen = s.len - GENERIC;
  switch (op % 5) {
    case 0: {
      // set a body octet to an interesting value
      if (!bodyLen) return { out: buf, delta: 0 };
      const out = buf.slice();
      out[s.at + GENERIC + (b % bodyLen)] = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 16, 255][(b >> 8) % 10]!;
      return { out, delta: 0 };
    }
    case 1: {
      // grow: repeat the body's tail, increment the count octet at a small body offset
      const k = Math.min(bodyLen, [4, 8, 16, 24, 40][b % 5]!);
      if (!k) return { out: buf, delta: 0 };
      const tail = buf.slice(s.at + s.len - k, s.at + s.len);
      const out = splice(buf, s.at + s.len, 0, tail);
      setLen(out, s.at, s.len + k);
      const c = s.at + GENERIC + ((b >> 4) % Math.min(4, bodyLen));
      out[c] = (out[c]! + 1) & 0xff;
      return { out, delta: k };
    }
    case 2: {
      // duplicate the payload (the copy keeps the original's Next Payload; the original points to the copy)
      const copy = buf.slice(s.at, s.at + s.len);
      const out = splice(buf, s.at + s.len, 0, copy);
      out[s.at] = buf[s.ptr]!;
      return { out, delta: s.len };
    }
    case 3: {
      // drop the payload: whoever named it now names its successor
      const out = splice(buf, s.at, s.len, new Uint8Array(0));
      out[s.ptr] = buf[s.at]!;
      return { out, delta: -s.len };
    }
    default: {
      // shrink the body by a few octets (truncated substructure, lengths kept consistent)
      const k = Math.min(bodyLen, 1 + (b % 8));
      if (!k) return { out: buf, delta: 0 };
      const out = splice(buf, s.at + s.len - k, k, new Uint8Array(0));
      setLen(out, s.at, s.len - k);
      return { out, delta: -k };
    }
  }
}
