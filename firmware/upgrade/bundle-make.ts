/**
 * Writing bundles (`pqgate bundle make`, image/lib/bundle.sh). Two passes
 * over each image: hash (the header needs every SHA-256 before the first
 * image byte is written), then copy. Output goes to a temporary file that
 * is renamed into place, so a failed build never leaves a half bundle.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync, fsyncSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { UpgradeError, type BundleImage } from './types.js';
import { BOARD_RE, VERSION_RE, encodeHeader, encodeSigBlock, layout, IMAGE_ORDER, HEADER_MAX, IMAGE_MAX, type BuildKind, type ParsedHeader } from './bundle.js';
import { signHybrid, type HybridSecretKey } from './keys.js';

const CHUNK = 1 << 20;

export interface MakeBundleOptions {
  out: string;
  board: string;
  version: string;
  securityVersion: number;
  created?: string;
  /** In bundle order rootfs, kernel, initrd (rootfs required). */
  images: { name: BundleImage['name']; path: string }[];
  /** Signing key (role 'signing'); absent = unsigned development bundle. */
  signer?: HybridSecretKey;
  /** The signed key list that admits the signer (keylist.ts), carried in the signature block. */
  keyList?: Uint8Array;
  /** Default: 'release' when signed, 'dev' when unsigned. */
  build?: BuildKind;
}

function hashFile(path: string): { size: number; sha256: Uint8Array } {
  const fd = openSync(path, 'r');
  try {
    if (!fstatSync(fd).isFile()) throw new UpgradeError('BAD_FILE', `${path} is not a regular file`);
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
    return { size, sha256: new Uint8Array(h.digest()) };
  } finally {
    closeSync(fd);
  }
}

export function makeBundle(o: MakeBundleOptions): ParsedHeader {
  if (!BOARD_RE.test(o.board)) throw new UpgradeError('BAD_FORMAT', `board ${JSON.stringify(o.board)}: lowercase letters, digits, - and _`);
  if (!VERSION_RE.test(o.version)) throw new UpgradeError('BAD_FORMAT', `version ${JSON.stringify(o.version)} malformed`);
  if (!Number.isInteger(o.securityVersion) || o.securityVersion < 0 || o.securityVersion > 0x7fffffff) throw new UpgradeError('BAD_FORMAT', 'securityVersion must be an integer 0..2^31-1');
  const names = o.images.map((i) => i.name);
  if (names[0] !== 'rootfs' || names.some((n, i) => i > 0 && IMAGE_ORDER.indexOf(n) <= IMAGE_ORDER.indexOf(names[i - 1]!)))
    throw new UpgradeError('BAD_FORMAT', 'images: rootfs first, then kernel, then initrd, each at most once');
  if (o.signer && o.signer.role !== 'signing') throw new UpgradeError('BAD_TRUST', `key ${o.signer.id} is a ${o.signer.role} key: bundles are signed with a signing key (roots sign key lists)`);
  if (o.signer && !o.keyList) throw new UpgradeError('BAD_TRUST', 'a signed bundle needs the key list that admits its signing key');
  const build = o.build ?? (o.signer ? 'release' : 'dev');
  const hashed = o.images.map((i) => ({ ...i, ...hashFile(i.path) }));
  for (const h of hashed) if (h.size < 1 || h.size > IMAGE_MAX) throw new UpgradeError('TOO_LARGE', `${h.path}: ${h.size} bytes (1..${IMAGE_MAX})`);
  const { offsets, sigStart } = layout(hashed.map((h) => h.size));
  const header: ParsedHeader = {
    format: 1,
    board: o.board,
    version: o.version,
    securityVersion: o.securityVersion,
    created: o.created ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    build,
    images: hashed.map((h, i) => ({ name: h.name, offset: offsets[i]!, size: h.size, sha256: h.sha256 })),
  };
  const hb = encodeHeader(header);
  if (hb.length > HEADER_MAX) throw new UpgradeError('TOO_LARGE', 'header too large');
  const sig = o.signer ? signHybrid(o.signer, 'pqgate-bundle-v1', hb) : undefined;
  const block = encodeSigBlock({ keyList: o.keyList, signature: sig });

  const tmp = join(dirname(o.out), `.${basename(o.out)}.${process.pid}.tmp`);
  const out = openSync(tmp, 'wx', 0o644);
  try {
    const head = Buffer.alloc(12);
    head.write('PQGBNDL1', 0, 'latin1');
    head.writeUInt32BE(hb.length, 8);
    writeSync(out, head, 0, 12, 0);
    writeSync(out, hb, 0, hb.length, 12);
    // Zero padding is implicit: positional writes leave holes that read as zeros.
    const buf = Buffer.allocUnsafe(CHUNK);
    for (const [i, h] of hashed.entries()) {
      const fd = openSync(h.path, 'r');
      try {
        let pos = offsets[i]!;
        let copied = 0;
        for (;;) {
          const n = readSync(fd, buf, 0, CHUNK, null);
          if (n === 0) break;
          writeSync(out, buf, 0, n, pos);
          pos += n;
          copied += n;
        }
        if (copied !== h.size) throw new UpgradeError('BAD_FILE', `${h.path} changed while the bundle was written`);
      } finally {
        closeSync(fd);
      }
    }
    writeSync(out, block, 0, block.length, sigStart);
    fsyncSync(out);
    closeSync(out);
    renameSync(tmp, o.out);
  } catch (e) {
    try {
      closeSync(out);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  return header;
}
