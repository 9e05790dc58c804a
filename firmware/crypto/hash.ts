/**
 * One-shot hashes used outside the PRF: SHA-1 for NAT detection
 * (RFC 7296 §2.23: NAT_DETECTION_*_IP = SHA-1(SPIi | SPIr | IP | Port)) and
 * SHA-256 for stateless cookies (RFC 7296 §2.6 suggests
 * Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)).
 */
import { createHash } from 'node:crypto';

function digest(alg: string, parts: readonly Uint8Array[]): Uint8Array {
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
