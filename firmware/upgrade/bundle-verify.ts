/**
 * Bundle verification, complete before anything is written (issue 8):
 *
 *   1. structure: magic, header length and strict header (bundle.ts), file
 *      size = exactly the layout + signature block (TRUNCATED / BAD_FORMAT);
 *   2. signature: signed trust store → exactly one hybrid signature by a
 *      signing key of the newest key list (rootfs, device state, or the one
 *      carried in the bundle, whichever has the highest version: an older
 *      list replayed inside a bundle cannot un-revoke a key), both
 *      Ed25519 and ML-DSA-65 verifying over the header bytes;
 *      dev trust store → unsigned accepted (a signature, if present, is
 *      checked against the key list the bundle carries, not anchored);
 *   3. policy: board, downgrade floor (securityVersion), a dev build only on
 *      a dev image (a release image must never install firmware whose trust
 *      store accepts unsigned bundles);
 *   4. content: stream-hash every image and compare with the signed header;
 *      the padding must be zeros.
 *
 * The file is opened once with O_NOFOLLOW and must be a regular file; the
 * device side re-hashes what it wrote (SlotBackend.writeInactive), so a file
 * swapped after verification is caught there too.
 */
import { constants, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import type { VerifiedBundle, VerifyOptions } from './types.js';
import { UpgradeError } from './types.js';
import { BUNDLE_MAGIC, HEADER_MAX, IMAGE_START, SIGBLOCK_MAX, layout, parseHeader, parseSigBlock, type ParsedHeader } from './bundle.js';
import { verifyHybrid } from './keys.js';
import { openKeyList, parseKeyListFile, type SignedKeyList } from './keylist.js';
import { newestKeyList, storedKeyList, type LoadedTrust } from './trust.js';

/** Default limit on a whole bundle (rootfs + kernel + initrd are ~80 MiB today). */
export const DEFAULT_MAX_BUNDLE = 1024 * 1024 * 1024;
const CHUNK = 1 << 20;

export interface VerifyBundleOptions extends VerifyOptions {
  /** Directory of the device's upgrade state (newest key list). */
  stateDir?: string;
  maxBytes?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface VerifiedBundleEx extends VerifiedBundle {
  header: ParsedHeader;
  /** The key list used, if newer than the device's stored one (the service persists it). */
  newerKeyList: SignedKeyList | undefined;
}

async function readAt(fh: fsp.FileHandle, pos: number, len: number): Promise<Uint8Array> {
  const b = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(b, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === len ? b : b.subarray(0, got);
}

function checkSignature(h: ParsedHeader, hb: Uint8Array, sb: ReturnType<typeof parseSigBlock>, opts: VerifyBundleOptions): { signedBy: string | undefined; newer: SignedKeyList | undefined } {
  const trust = opts.trust as LoadedTrust;
  if (!sb.signature) {
    if (trust.dev) return { signedBy: undefined, newer: undefined };
    throw new UpgradeError('UNSIGNED', 'the bundle is not signed (a development build); this firmware accepts signed bundles only');
  }
  const sig = sb.signature;
  if (trust.dev && trust.roots.size === 0) {
    // No anchors on a dev image: check the signature against the key list it carries (catches corruption, proves nothing more).
    if (!sb.keyList) throw new UpgradeError('UNKNOWN_KEY', `signed by ${sig.keyId} but the bundle carries no key list`);
    const kl = parseKeyListFile(sb.keyList, 'key list in the bundle').list;
    const k = kl.keys.find((x) => x.id === sig.keyId);
    if (!k) throw new UpgradeError('UNKNOWN_KEY', `signing key ${sig.keyId} is not in the bundle's key list`);
    verifyHybrid(k, 'pqgate-bundle-v1', hb, sig, 'bundle header');
    return { signedBy: sig.keyId, newer: undefined };
  }
  const carried = sb.keyList ? openKeyList(sb.keyList, trust.roots, 'key list in the bundle') : undefined;
  const stored = opts.stateDir ? storedKeyList(opts.stateDir, trust.roots) : undefined;
  const best = newestKeyList([trust.shippedList, stored, carried]);
  if (!best) throw new UpgradeError('UNKNOWN_KEY', `signed by ${sig.keyId}, but this device has no key list naming any signing key`);
  if (best.list.revoked.includes(sig.keyId))
    throw new UpgradeError('REVOKED_KEY', `signing key ${sig.keyId} is revoked by key list version ${best.list.version}${carried && carried.list.version < best.list.version ? ` (the bundle carries the older version ${carried.list.version})` : ''}`);
  const k = best.list.keys.find((x) => x.id === sig.keyId);
  if (!k) throw new UpgradeError('UNKNOWN_KEY', `signing key ${sig.keyId} is not in key list version ${best.list.version}`);
  // Validity against the signed creation time: routers boot without a trustworthy clock, revocation covers compromise.
  if (h.created < k.notBefore || h.created >= k.notAfter)
    throw new UpgradeError('KEY_EXPIRED', `signing key ${sig.keyId} is valid ${k.notBefore} – ${k.notAfter}, the bundle was created ${h.created}`);
  verifyHybrid(k, 'pqgate-bundle-v1', hb, sig, 'bundle header');
  const newer = best === carried && (!stored || stored.list.version < best.list.version) ? best : undefined;
  return { signedBy: sig.keyId, newer };
}

export async function verifyBundleFile(path: string, opts: VerifyBundleOptions): Promise<VerifiedBundleEx> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    throw new UpgradeError('BAD_FILE', c === 'ELOOP' ? `${path} is a symbolic link: refused` : c === 'ENOENT' ? `${path}: no such file` : `${path}: cannot open (${c})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UpgradeError('BAD_FILE', `${path} is not a regular file`);
    const size = st.size;
    const max = opts.maxBytes ?? DEFAULT_MAX_BUNDLE;
    if (size > max) throw new UpgradeError('TOO_LARGE', `the bundle is ${size} bytes; the limit is ${max}`);
    const head = await readAt(fh, 0, 12);
    if (head.length >= 8 && new TextDecoder().decode(head.subarray(0, 8)) !== BUNDLE_MAGIC) throw new UpgradeError('BAD_FORMAT', 'not a pqgate update bundle (magic)');
    if (head.length < 12) throw new UpgradeError('TRUNCATED', `the file ends after ${head.length} bytes, inside the bundle header`);
    const hlen = new DataView(head.buffer).getUint32(8);
    if (hlen < 2 || hlen > HEADER_MAX) throw new UpgradeError('BAD_FORMAT', `header length ${hlen} (limit ${HEADER_MAX})`);
    const hb = await readAt(fh, 12, hlen);
    if (hb.length < hlen) throw new UpgradeError('TRUNCATED', `the file ends inside the bundle header (${12 + hb.length} of ${12 + hlen} bytes)`);
    const h = parseHeader(hb);
    const { sigStart } = layout(h.images.map((i) => i.size));
    if (size < sigStart) throw new UpgradeError('TRUNCATED', `the file ends at byte ${size}, inside the images (they end at ${sigStart})`);
    if (size - sigStart > SIGBLOCK_MAX + 12) throw new UpgradeError('BAD_FORMAT', `${size - sigStart} bytes after the last image: trailing data`);
    const sb = parseSigBlock(await readAt(fh, sigStart, size - sigStart));

    try {
      return await checkAll(fh, h, hb, hlen, sigStart, sb, size, opts);
    } catch (e) {
      if (e instanceof UpgradeError) e.header ??= h;
      throw e;
    }
  } finally {
    await fh.close();
  }
}

async function checkAll(fh: fsp.FileHandle, h: ParsedHeader, hb: Uint8Array, hlen: number, sigStart: number, sb: ReturnType<typeof parseSigBlock>, size: number, opts: VerifyBundleOptions): Promise<VerifiedBundleEx> {
  {
    const { signedBy, newer } = checkSignature(h, hb, sb, opts);
    if (h.board !== opts.board) throw new UpgradeError('WRONG_BOARD', `the bundle is for board ${h.board}; this device is ${opts.board}`);
    if (h.securityVersion < opts.securityFloor)
      throw new UpgradeError('DOWNGRADE', `security version ${h.securityVersion} is below this device's floor ${opts.securityFloor} (a downgrade to firmware with known vulnerabilities)`);
    if (h.build === 'dev' && !opts.trust.dev)
      throw new UpgradeError('DEV_MODE_REQUIRED', 'the bundle is a development build (its firmware accepts unsigned updates); only a development image may install it');

    // Content: every byte between the header and the signature block is either an image (hashed) or zero padding.
    const total = sigStart - IMAGE_START;
    const zeroCheck = (b: Uint8Array, at: number) => {
      for (let i = 0; i < b.length; i++) if (b[i] !== 0) throw new UpgradeError('BAD_FORMAT', `non-zero padding at byte ${at + i}`);
    };
    const padHead = await readAt(fh, 12 + hlen, IMAGE_START - 12 - hlen);
    zeroCheck(padHead, 12 + hlen);
    const buf = new Uint8Array(CHUNK);
    let pos = IMAGE_START;
    for (const im of h.images) {
      if (im.offset > pos) {
        const pad = await readAt(fh, pos, im.offset - pos);
        zeroCheck(pad, pos);
      }
      const hash = createHash('sha256');
      let left = im.size;
      pos = im.offset;
      while (left > 0) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, left), pos);
        if (bytesRead === 0) throw new UpgradeError('TRUNCATED', `the file shrank while being verified (${im.name})`);
        hash.update(buf.subarray(0, bytesRead));
        left -= bytesRead;
        pos += bytesRead;
        opts.onProgress?.(pos - IMAGE_START, total);
      }
      if (Buffer.compare(hash.digest(), Buffer.from(im.sha256)) !== 0)
        throw new UpgradeError('IMAGE_HASH', `the ${im.name} image does not match its signed SHA-256 (corrupted or tampered)`);
    }
    return { header: h, headerBytes: hb, signedBy, fileSize: size, newerKeyList: newer };
  }
}
