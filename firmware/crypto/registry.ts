/**
 * IANA transform id -> implementation (RFC 7296 §3.3.2 Transform Types 1-4,
 * RFC 9370 ADDKE). The one place the rest of the firmware gets crypto from:
 * node:crypto (OpenSSL) for the classical primitives, @noble/post-quantum for
 * ML-KEM. See the per-family modules for the RFC sections each implements.
 */
import { PqError } from '../util/errors.js';
import type { Rng } from '../util/clock.js';
import type { KeyExchange } from './types.js';
import { keInfo } from './algorithms.js';
import { createDhKeyExchange } from './ke-dh.js';
import { createMlKemKeyExchange } from './ke-mlkem.js';

export { encrInfo, encrName, integInfo, integName, keInfo, keName, prfName, supportedKeMethods } from './algorithms.js';
export { createPrf, prfPlus } from './prf.js';
export { createSkCipher } from './sk-cipher.js';

/**
 * A fresh key exchange for `method`. All private randomness (DH private
 * value, ML-KEM keygen seed d|z, encapsulation message m) is drawn from
 * `rng`, so a TestRng makes a whole handshake reproducible. Throws
 * ERR_UNSUPPORTED for unknown methods.
 */
export function createKeyExchange(method: number, rng: Rng): KeyExchange {
  keInfo(method); // throws ERR_UNSUPPORTED
  const ke = createDhKeyExchange(method, rng) ?? createMlKemKeyExchange(method, rng);
  if (!ke) throw new PqError('ERR_UNSUPPORTED', `unsupported key exchange method ${method}`);
  return ke;
}
