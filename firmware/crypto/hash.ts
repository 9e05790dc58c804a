/**
 * One-shot hashes used outside the PRF: SHA-1 for NAT detection
 * (RFC 7296 §2.23: NAT_DETECTION_*_IP = SHA-1(SPIi | SPIr | IP | Port)) and
 * SHA-256 for stateless cookies (RFC 7296 §2.6 suggests
 * Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)).
 *
 * One native call each when the addon is loaded (crypto/native.ts), else
 * node:crypto.
 */
import { createHash } from 'node:crypto';
import { NativeHash, nativeCrypto } from './native.js';

function digest(alg: string, parts: readonly Uint8Array[]): Uint8Array {
  const lib = nativeCrypto();
  // The addon takes 1-5 parts; more (never in the firmware) go through node:crypto.
  if (lib && parts.length >= 1 && parts.length <= 5) {
    const out = new Uint8Array(alg === 'sha1' ? 20 : 32);
    lib.hash(alg === 'sha1' ? NativeHash.SHA1 : NativeHash.SHA256, out, ...parts);
    return out;
  }
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  const d = h.digest();
  // Copy out of the Buffer so callers get a plain, unpooled Uint8Array.
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

/** SHA-1 over the concatenation of `parts` (no intermediate copy). */
export function sha1(...parts: Uint8Array[]): Uint8Array {
  return digest('sha1', parts);
}

/** SHA-256 over the concatenation of `parts` (no intermediate copy). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  return digest('sha256', parts);
}
