/**
 * Security Association payload body (RFC 7296 §3.3): Proposal (§3.3.1),
 * Transform (§3.3.2) and Transform Attribute (§3.3.5) substructures.
 *
 *   Proposal:  Last(1: 0 last / 2 more) | RESERVED(1) | Length(2) |
 *              Num(1) | Protocol(1) | SPI Size(1) | #Transforms(1) | SPI | Transforms
 *   Transform: Last(1: 0 last / 3 more) | RESERVED(1) | Length(2) |
 *              Type(1) | RESERVED(1) | ID(2) | Attributes
 *   Attribute: AF(1 bit) | Type(15) | TV value(2)            when AF = 1
 *              AF(1 bit) | Type(15) | Length(2) | Value      when AF = 0
 *
 * Every length is checked against its container and the counts must add up
 * exactly; anything else is a ParseError carrying the offset.
 */
import { Reader, Writer } from '../../util/bytes.js';
import { ParseError } from '../../util/errors.js';
import { ATTR_KEY_LENGTH, ProtocolId } from '../constants.js';
import type { Attribute, Proposal, SaPayload, Transform } from './types.js';

const LAST = 0;
const MORE_PROPOSALS = 2; // §3.3.1
const MORE_TRANSFORMS = 3; // §3.3.2
const AF_TV = 0x8000;

/** SPI sizes per protocol (§3.3.1): IKE 0 (initial) or 8 (rekey); AH/ESP 4. */
const SPI_SIZES: Record<number, readonly number[]> = {
  [ProtocolId.IKE]: [0, 8],
  [ProtocolId.AH]: [4],
  [ProtocolId.ESP]: [4],
};

export function u8ok(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${name}: ${v} is not a u8`);
  return v;
}
export function u16ok(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${name}: ${v} is not a u16`);
  return v;
}

// ------------------------------------------------------------------ decode

export function decodeSaBody(r: Reader): Omit<SaPayload, 'type' | 'critical'> {
  const proposals: Proposal[] = [];
  if (r.remaining === 0) r.fail('SA payload without proposals');
  while (r.remaining > 0) {
    const start = r.pos;
    const last = r.u8('proposal last-substruc');
    r.u8('proposal reserved');
    const len = r.u16('proposal length');
    if (len < 8) throw at(r, start + 2, `proposal length ${len} < 8`);
    const pr = r.sub(len - 4, 'proposal');
    if (last !== LAST && last !== MORE_PROPOSALS) throw at(r, start, `proposal last-substruc ${last} not 0/2`);
    if (last === LAST && r.remaining > 0) throw at(r, start, 'proposal marked last but more data follows');
    if (last === MORE_PROPOSALS && r.remaining === 0) throw at(r, start, 'proposal announces more proposals but none follow');
    proposals.push(decodeProposal(pr, start, proposals));
  }
  return { proposals };
}

function decodeProposal(pr: Reader, start: number, prev: Proposal[]): Proposal {
  const num = pr.u8('proposal num');
  const protocol = pr.u8('protocol id');
  const spiSize = pr.u8('spi size');
  const nTransforms = pr.u8('#transforms');
  // §3.3.1: the first proposal is 1 and each further one is previous + 1. A
  // response carries the single accepted proposal with its original number.
  if (num === 0) throw at(pr, start + 4, 'proposal number 0');
  if (prev.length > 0 && num !== prev[prev.length - 1]!.num + 1) throw at(pr, start + 4, `proposal number ${num} does not follow ${prev[prev.length - 1]!.num}`);
  if (prev.length === 1 && prev[0]!.num !== 1) throw at(pr, start + 4, `first of several proposals is numbered ${prev[0]!.num}, not 1`);
  const sizes = SPI_SIZES[protocol];
  if (!sizes) throw at(pr, start + 5, `unknown protocol id ${protocol}`);
  if (!sizes.includes(spiSize)) throw at(pr, start + 6, `SPI size ${spiSize} invalid for protocol ${protocol}`);
  const spi = pr.bytes(spiSize, 'proposal spi');
  const transforms: Transform[] = [];
  while (pr.remaining > 0) {
    const tStart = pr.pos;
    const last = pr.u8('transform last-substruc');
    pr.u8('transform reserved');
    const len = pr.u16('transform length');
    if (len < 8) throw at(pr, tStart + 2, `transform length ${len} < 8`);
    const tr = pr.sub(len - 4, 'transform');
    if (last !== LAST && last !== MORE_TRANSFORMS) throw at(pr, tStart, `transform last-substruc ${last} not 0/3`);
    if (last === LAST && pr.remaining > 0) throw at(pr, tStart, 'transform marked last but more data follows');
    if (last === MORE_TRANSFORMS && pr.remaining === 0) throw at(pr, tStart, 'transform announces more transforms but none follow');
    transforms.push(decodeTransform(tr));
  }
  if (transforms.length !== nTransforms) throw at(pr, start + 7, `#transforms ${nTransforms} but ${transforms.length} present`);
  return { num, protocol, spi, transforms };
}

function decodeTransform(tr: Reader): Transform {
  const type = tr.u8('transform type');
  tr.u8('transform reserved');
  const id = tr.u16('transform id');
  const t: Transform = { type, id };
  const others: Attribute[] = [];
  while (tr.remaining > 0) {
    const aStart = tr.pos;
    const raw = tr.u16('attribute type');
    const atype = raw & 0x7fff;
    if (raw & AF_TV) {
      const value = tr.u16('attribute value');
      if (atype === ATTR_KEY_LENGTH) {
        if (t.keyLength !== undefined) throw at(tr, aStart, 'duplicate Key Length attribute');
        t.keyLength = value;
      } else others.push({ type: atype, value });
    } else {
      // §3.3.5: Key Length is only defined in TV form.
      if (atype === ATTR_KEY_LENGTH) throw at(tr, aStart, 'Key Length attribute in TLV form');
      const alen = tr.u16('attribute length');
      others.push({ type: atype, value: tr.bytes(alen, 'attribute value') });
    }
  }
  if (others.length) t.otherAttributes = others;
  return t;
}

/** A ParseError pointing at `pos` (a field already consumed) rather than at the reader's cursor. */
function at(r: Reader, pos: number, msg: string): ParseError {
  return new ParseError(msg, r.base + pos, r.payloadType);
}

// ------------------------------------------------------------------ encode

export function encodeSaBody(w: Writer, sa: SaPayload): void {
  if (!sa.proposals.length) throw new RangeError('SA payload needs at least one proposal');
  sa.proposals.forEach((p, i) => {
    const start = w.len;
    w.u8(i === sa.proposals.length - 1 ? LAST : MORE_PROPOSALS).u8(0).u16(0);
    w.u8(u8ok('proposal.num', p.num)).u8(u8ok('proposal.protocol', p.protocol)).u8(u8ok('spi size', p.spi.length)).u8(u8ok('#transforms', p.transforms.length));
    w.bytes(p.spi);
    p.transforms.forEach((t, j) => {
      const ts = w.len;
      w.u8(j === p.transforms.length - 1 ? LAST : MORE_TRANSFORMS).u8(0).u16(0);
      w.u8(u8ok('transform.type', t.type)).u8(0).u16(u16ok('transform.id', t.id));
      if (t.keyLength !== undefined) w.u16(AF_TV | ATTR_KEY_LENGTH).u16(u16ok('keyLength', t.keyLength));
      for (const a of t.otherAttributes ?? []) {
        if (a.type === ATTR_KEY_LENGTH) throw new RangeError('Key Length belongs in Transform.keyLength');
        if ((a.type & 0x7fff) !== a.type) throw new RangeError(`attribute type ${a.type} exceeds 15 bits`);
        if (typeof a.value === 'number') w.u16(AF_TV | a.type).u16(u16ok('attribute value', a.value));
        else w.u16(a.type).u16(u16ok('attribute length', a.value.length)).bytes(a.value);
      }
      w.setU16(ts + 2, u16ok('transform length', w.len - ts));
    });
    w.setU16(start + 2, u16ok('proposal length', w.len - start));
  });
}
