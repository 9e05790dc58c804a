/**
 * Update bundle format (docs/upgrade.md "Bundle format"), one file `.pqb`:
 *
 *   0       "PQGBNDL1"
 *   8       u32 headerLen (1..HEADER_MAX)
 *   12      header: canonical JSON (below), exactly headerLen bytes
 *   ...     zero padding up to IMAGE_START (64 KiB)
 *   65536   image 0 (rootfs), zero padding to a 4 KiB boundary, image 1, ...
 *   end of last image: signature block
 *           "PQGSIG01" | u32 blockLen | u32 keyListLen | key list | u8 n (0|1) | n × (u32 sigLen | hybrid signature)
 *   end of file exactly at the end of the block (trailing bytes are refused)
 *
 * The signatures cover the exact header bytes; the header carries each
 * image's offset, size and SHA-256. So verification is: parse, check the
 * signature over the header, then stream-hash every image and compare —
 * all before one byte is written (bundle-verify.ts). The layout is fully
 * determined by the image sizes (fixed start, 4 KiB alignment, zero
 * padding that is checked too), so no two valid files differ in bytes
 * outside the signature block.
 *
 * Header (canonical: this key order, no whitespace; parsing re-encodes and
 * compares, so duplicate keys or alternative spellings are refused):
 *   {"format":1,"board":"x86_64","version":"0.2.0","securityVersion":3,"created":"2026-…Z",
 *    "build":"release"|"dev","images":[{"name":"rootfs","offset":65536,"size":N,"sha256":"hex"},…]}
 */
import type { BundleHeader, BundleImage } from './types.js';
import { UpgradeError } from './types.js';
import { ISO_RE } from './keylist.js';
import { decodeSignature, type HybridSignature, encodeSignature } from './keys.js';

export const BUNDLE_MAGIC = 'PQGBNDL1';
export const SIG_MAGIC = 'PQGSIG01';
export const HEADER_MAX = 16 * 1024;
export const IMAGE_START = 64 * 1024;
export const IMAGE_ALIGN = 4096;
/** Largest single image (a rootfs partition is far smaller; this bounds arithmetic and allocation). */
export const IMAGE_MAX = 2 ** 31;
export const SIGBLOCK_MAX = 512 * 1024;
export const IMAGE_ORDER = ['rootfs', 'kernel', 'initrd'] as const;

export type BuildKind = 'release' | 'dev';
export interface ParsedHeader extends BundleHeader {
  build: BuildKind;
}

export const align = (n: number) => Math.ceil(n / IMAGE_ALIGN) * IMAGE_ALIGN;

/** Offsets of images of the given sizes (the only layout the parser accepts). */
export function layout(sizes: readonly number[]): { offsets: number[]; sigStart: number } {
  const offsets: number[] = [];
  let pos = IMAGE_START;
  for (const [i, s] of sizes.entries()) {
    if (i > 0) pos = align(pos);
    offsets.push(pos);
    pos += s;
  }
  return { offsets, sigStart: pos };
}

const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');

export function encodeHeader(h: ParsedHeader): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      format: 1,
      board: h.board,
      version: h.version,
      securityVersion: h.securityVersion,
      created: h.created,
      build: h.build,
      images: h.images.map((i) => ({ name: i.name, offset: i.offset, size: i.size, sha256: hex(i.sha256) })),
    }),
  );
}

export const BOARD_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
export const VERSION_RE = /^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$/;

function bad(m: string): never {
  throw new UpgradeError('BAD_FORMAT', `bundle header: ${m}`);
}

/** Strict header parse: exact fields, types, limits, canonical encoding, the fixed layout. */
export function parseHeader(bytes: Uint8Array): ParsedHeader {
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    bad('not UTF-8 JSON');
  }
  const o = j as Record<string, unknown>;
  if (!o || typeof o !== 'object' || Array.isArray(o)) bad('not an object');
  if (o.format !== 1) bad(`unsupported format ${JSON.stringify(o.format)}`);
  if (typeof o.board !== 'string' || !BOARD_RE.test(o.board)) bad('board malformed');
  if (typeof o.version !== 'string' || !VERSION_RE.test(o.version)) bad('version malformed');
  if (typeof o.securityVersion !== 'number' || !Number.isInteger(o.securityVersion) || o.securityVersion < 0 || o.securityVersion > 0x7fffffff) bad('securityVersion must be an integer 0..2^31-1');
  if (typeof o.created !== 'string' || !ISO_RE.test(o.created)) bad('created must be an ISO 8601 UTC time');
  if (o.build !== 'release' && o.build !== 'dev') bad('build must be release or dev');
  if (!Array.isArray(o.images) || o.images.length < 1 || o.images.length > IMAGE_ORDER.length) bad('images must list 1 to 3 images');
  const images: BundleImage[] = [];
  for (const [i, v] of (o.images as unknown[]).entries()) {
    const e = v as Record<string, unknown>;
    if (!e || typeof e !== 'object') bad(`images[${i}] malformed`);
    if (!IMAGE_ORDER.includes(e.name as (typeof IMAGE_ORDER)[number])) bad(`images[${i}].name must be rootfs, kernel or initrd`);
    if (typeof e.offset !== 'number' || !Number.isSafeInteger(e.offset) || typeof e.size !== 'number' || !Number.isSafeInteger(e.size)) bad(`images[${i}] offset/size malformed`);
    if (e.size < 1 || e.size > IMAGE_MAX) bad(`images[${i}].size out of range`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) bad(`images[${i}].sha256 must be 64 lowercase hex digits`);
    images.push({ name: e.name as BundleImage['name'], offset: e.offset, size: e.size, sha256: new Uint8Array(Buffer.from(e.sha256, 'hex')) });
  }
  // Fixed order rootfs, kernel, initrd (each at most once; rootfs required): no ambiguity about what goes where.
  const order = images.map((i) => IMAGE_ORDER.indexOf(i.name));
  if (order[0] !== 0 || order.some((x, i) => i > 0 && x <= order[i - 1]!)) bad('images must be rootfs first, then kernel, then initrd, each at most once');
  const { offsets } = layout(images.map((i) => i.size));
  images.forEach((im, i) => {
    if (im.offset !== offsets[i]) bad(`images[${i}] (${im.name}) at offset ${im.offset}, expected ${offsets[i]} (overlapping or out-of-layout image)`);
  });
  const h: ParsedHeader = { format: 1, board: o.board, version: o.version, securityVersion: o.securityVersion, created: o.created, build: o.build, images };
  if (Buffer.compare(Buffer.from(encodeHeader(h)), Buffer.from(bytes)) !== 0) bad('not in canonical form');
  return h;
}

export interface SigBlock {
  keyList: Uint8Array | undefined;
  signature: HybridSignature | undefined;
}

export function encodeSigBlock(b: SigBlock): Uint8Array {
  const kl = b.keyList ?? new Uint8Array(0);
  const sig = b.signature ? encodeSignature(b.signature) : undefined;
  const bodyLen = 4 + kl.length + 1 + (sig ? 4 + sig.length : 0);
  const out = new Uint8Array(12 + bodyLen);
  const dv = new DataView(out.buffer);
  out.set(new TextEncoder().encode(SIG_MAGIC), 0);
  dv.setUint32(8, bodyLen);
  dv.setUint32(12, kl.length);
  out.set(kl, 16);
  let o = 16 + kl.length;
  out[o++] = sig ? 1 : 0;
  if (sig) {
    dv.setUint32(o, sig.length);
    out.set(sig, o + 4);
  }
  return out;
}

/** Parse the signature block (the bytes from its start to the end of the file). */
export function parseSigBlock(b: Uint8Array): SigBlock {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 12) throw new UpgradeError('TRUNCATED', 'bundle ends inside the signature block header');
  if (new TextDecoder().decode(b.subarray(0, 8)) !== SIG_MAGIC) throw new UpgradeError('BAD_FORMAT', 'signature block magic missing after the last image');
  const len = dv.getUint32(8);
  if (len > SIGBLOCK_MAX) throw new UpgradeError('TOO_LARGE', `signature block of ${len} bytes (limit ${SIGBLOCK_MAX})`);
  if (b.length < 12 + len) throw new UpgradeError('TRUNCATED', 'bundle ends inside the signature block');
  if (b.length > 12 + len) throw new UpgradeError('BAD_FORMAT', `${b.length - 12 - len} trailing bytes after the signature block`);
  const fmt = (m: string) => new UpgradeError('BAD_FORMAT', `signature block: ${m}`);
  if (len < 5) throw fmt('too short');
  const klLen = dv.getUint32(12);
  if (16 + klLen + 1 > b.length) throw fmt('key list length out of range');
  const keyList = klLen ? b.slice(16, 16 + klLen) : undefined;
  let o = 16 + klLen;
  const n = b[o++]!;
  if (n > 1) throw fmt(`${n} signatures (exactly one hybrid signature, or none for a development bundle)`);
  let signature: HybridSignature | undefined;
  if (n === 1) {
    if (o + 4 > b.length) throw fmt('signature length missing');
    const sl = dv.getUint32(o);
    if (o + 4 + sl !== b.length) throw fmt('signature length does not match the block');
    signature = decodeSignature(b.subarray(o + 4), 'bundle signature');
  } else if (o !== b.length) throw fmt('bytes after an empty signature list');
  return { keyList, signature };
}
