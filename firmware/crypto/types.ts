/**
 * One crypto interface for the whole firmware (strongSwan's key_exchange_t /
 * prf_t / aead_t model). Implementations live in registry.ts: node:crypto
 * (OpenSSL) on the fast path, @noble where Node lacks the primitive (ML-KEM),
 * and @noble as a cross-check oracle in tests.
 */

/** Pseudo-random function (RFC 7296 §2.13). */
export interface Prf {
  readonly id: number; // IANA PRF transform id
  readonly name: string;
  /** Preferred key length in bytes (= SK_d, SK_pi, SK_pr length). */
  readonly keySize: number;
  /** Output length in bytes. */
  readonly outSize: number;
  compute(key: Uint8Array, data: Uint8Array): Uint8Array;
}

/**
 * Encryption + integrity for the SK / SKF payloads (RFC 7296 §3.14, RFC 5282
 * for AEAD). Built from keys (one direction). The same shape serves both
 * AEAD and encrypt-then-MAC:
 *   seal(aad, iv, plain) -> ciphertext || ICV
 *     AEAD:   nonce = salt || iv, AAD = aad, ICV = tag
 *     CBC+MAC: ciphertext = CBC(iv, plain); ICV = trunc(HMAC(aad || iv || ciphertext))
 *   open(aad, iv, ctAndIcv) -> plain, or throws AuthTagError
 * `plain` must already be padded to `blockSize` by the caller (SK padding
 * and pad-length octet are the codec's business).
 */
export interface SkCipher {
  readonly ivSize: number;
  readonly icvSize: number;
  /** Alignment for the plaintext (16 for CBC, 1 for AEAD stream modes). */
  readonly blockSize: number;
  readonly aead: boolean;
  seal(aad: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array;
  open(aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array): Uint8Array;
  /** Wipe key material. */
  destroy(): void;
}

/** Description of an encryption algorithm's key needs (for keymat sizing). */
export interface EncrInfo {
  readonly id: number;
  readonly name: string;
  readonly aead: boolean;
  /** Key bytes, excluding salt. */
  readonly keySize: number;
  /** Salt bytes appended to the key in KEYMAT (GCM/ChaCha: 4). */
  readonly saltSize: number;
  readonly ivSize: number;
  readonly icvSize: number; // 0 for non-AEAD (ICV comes from INTEG)
  readonly blockSize: number;
}

export interface IntegInfo {
  readonly id: number;
  readonly name: string;
  readonly keySize: number;
  readonly icvSize: number;
}

/**
 * A key exchange method, DH or KEM, behind one interface
 * (strongSwan key_exchange_t):
 *   DH:   both sides: getPublic(); setPeerPublic(peer); getSharedSecret().
 *   KEM initiator: getPublic() -> ek; setPeerPublic(ct) decapsulates.
 *   KEM responder: setPeerPublic(ek) encapsulates; getPublic() -> ct.
 * setPeerPublic validates its input (length, point on curve, FIPS 203 §7.2
 * modulus check / §7.3 ciphertext type check) and throws KeyExchangeError.
 */
export interface KeyExchange {
  readonly method: number;
  readonly name: string;
  readonly isKem: boolean;
  getPublic(): Uint8Array;
  setPeerPublic(data: Uint8Array): void;
  getSharedSecret(): Uint8Array;
  destroy(): void;
}

export interface KeInfo {
  readonly method: number;
  readonly name: string;
  readonly isKem: boolean;
  /** Length of the initiator's KE data (DH public value / ML-KEM ek). */
  readonly initiatorPublicSize: number;
  /** Length of the responder's KE data (DH public value / ML-KEM ct). */
  readonly responderPublicSize: number;
  readonly postQuantum: boolean;
}
