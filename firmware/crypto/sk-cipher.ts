/**
 * SK / SKF payload protection (RFC 7296 §3.14, RFC 7383 §2.5) and the same
 * transform shape for ESP (RFC 4303 §2 with RFC 4106 / RFC 7634 AEADs).
 *
 *  AEAD (RFC 5282 §3 for IKEv2, RFC 4106 §4 / RFC 7634 §2 for ESP):
 *    encKey = key | salt(4)          nonce = salt | IV(8)
 *    seal(aad, iv, p) = AEAD-Encrypt(key, nonce, aad, p) = C | tag
 *    ICV = tag, 8/12/16 octets for AES_GCM_8/12/16, 16 for ChaCha20-Poly1305.
 *  Encrypt-then-MAC (RFC 7296 §3.14, RFC 3602 AES-CBC, RFC 4868 HMAC-SHA2):
 *    C = AES-CBC(key, IV(16), p)      (no cipher-level padding; the SK
 *                                      padding is the codec's)
 *    ICV = truncate(HMAC(integKey, aad | IV | C), icvSize)
 *    The MAC covers the IKE header through the end of the ciphertext
 *    (§3.14 "the Integrity Checksum Data ... computed over the entire
 *    message"); the codec passes that prefix as `aad`.
 *
 * Both run on one keyed OpenSSL context per direction in the native addon
 * when it is loaded (NativeAeadCipher, NativeCbcHmacCipher; native/sk.c):
 * keyed once when the IKE SA's keys are derived, cleansed and freed by
 * destroy() (or by the GC finalizer of a forgotten handle). AeadCipher and
 * CbcHmacCipher (node:crypto) are the fallback and the reference.
 *
 * open() never says *why* it failed: every length, tag and ICV problem is
 * one AuthTagError (silent drop, RFC 7296 §2.21.2), and the ICV comparison is
 * constant-time.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { AuthTagError } from '../util/errors.js';
import { Encr } from '../ikev2/constants.js';
import type { EncrInfo, IntegInfo, SkCipher } from './types.js';
import { INTEG_HASH } from './algorithms.js';
import { NativeAead, NativeHash, nativeCrypto, type NativeAeadHandle, type NativeCbcHandle, type PqCryptoAddon } from './native.js';

type AeadAlg = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

function checkBytes(name: string, v: unknown, len?: number): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`);
  if (len !== undefined && v.length !== len) throw new TypeError(`${name}: expected ${len} bytes, got ${v.length}`);
}

/**
 * seal() argument rules shared by every SK transform (node:crypto and addon):
 * programming errors, so TypeErrors. `block` is the cipher block size for
 * CBC (the plaintext is padded by the caller, RFC 7296 §3.14), 1 for AEADs.
 */
function checkSealArgs(aad: unknown, iv: unknown, plain: unknown, ivLen: number, block: number): asserts plain is Uint8Array {
  checkBytes('aad', aad);
  checkBytes('iv', iv, ivLen);
  checkBytes('plain', plain);
  if (plain.length % block !== 0) throw new TypeError(`plain: length ${plain.length} is not a multiple of the AES block size`);
}

/**
 * open() argument rules shared by every SK transform: wrong types are a
 * programming error (TypeError); a wrong IV or ciphertext length is what a
 * peer sent, so it fails like a bad tag (AuthTagError, the message is
 * dropped). Returns the ciphertext length (without the ICV).
 */
function checkOpenArgs(aad: unknown, iv: unknown, ctAndIcv: unknown, ivLen: number, block: number, icvSize: number): number {
  if (!(aad instanceof Uint8Array) || !(iv instanceof Uint8Array) || !(ctAndIcv instanceof Uint8Array)) {
    throw new TypeError('open: expected Uint8Array arguments');
  }
  const ctLen = ctAndIcv.length - icvSize;
  if (iv.length !== ivLen || ctLen < 0 || ctLen % block !== 0) throw new AuthTagError();
  return ctLen;
}

/** Copy a node Buffer (possibly a pooled slab view) into `out` at `off`. */
function put(out: Uint8Array, b: Uint8Array, off: number): number {
  out.set(b, off);
  return off + b.length;
}

/**
 * The 12-octet AEAD nonce (salt | IV) is assembled in one scratch buffer
 * shared by every AeadCipher: seal/open are synchronous and node:crypto
 * copies the IV, so no cipher needs its own (a hub holds two per IKE SA).
 * The salt is wiped from it after each use.
 */
const NONCE = new Uint8Array(12);

class AeadCipher implements SkCipher {
  readonly ivSize = 8;
  readonly icvSize: number;
  readonly blockSize = 1;
  readonly aead = true;
  private key: KeyObject | null;
  /** RFC 5282 §3 / RFC 7634 §2 salt, the last 4 octets of the key material. */
  private salt: number;
  private readonly alg: AeadAlg;
  private readonly isChaCha: boolean;

  constructor(info: EncrInfo, encKey: Uint8Array) {
    this.icvSize = info.icvSize;
    this.isChaCha = info.id === Encr.CHACHA20_POLY1305;
    this.alg = this.isChaCha ? 'chacha20-poly1305' : (`aes-${info.keySize * 8}-gcm` as AeadAlg);
    // A KeyObject avoids re-importing the raw key on every packet (~15% faster).
    this.key = createSecretKey(encKey.subarray(0, info.keySize));
    const s = encKey.subarray(info.keySize, info.keySize + 4);
    this.salt = ((s[0]! << 24) | (s[1]! << 16) | (s[2]! << 8) | s[3]!) >>> 0;
  }

  /** The nonce for `iv` in the shared scratch buffer; call wipeNonce() once the cipher object holds it. */
  private nonce(iv: Uint8Array): Uint8Array {
    const s = this.salt;
    NONCE[0] = s >>> 24;
    NONCE[1] = (s >>> 16) & 0xff;
    NONCE[2] = (s >>> 8) & 0xff;
    NONCE[3] = s & 0xff;
    NONCE.set(iv, 4);
    return NONCE;
  }

  private live(): KeyObject {
    if (!this.key) throw new Error('SkCipher used after destroy()');
    return this.key;
  }

  seal(aad: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array {
    checkSealArgs(aad, iv, plain, 8, 1);
    const key = this.live();
    const c = createCipheriv(this.alg as 'aes-256-gcm', key, this.nonce(iv), { authTagLength: this.icvSize });
    NONCE.fill(0, 0, 4);
    c.setAAD(aad);
    const out = new Uint8Array(plain.length + this.icvSize);
    let off = put(out, c.update(plain), 0);
    off = put(out, c.final(), off);
    put(out, c.getAuthTag(), off);
    return out;
  }

  open(aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array): Uint8Array {
    const ctLen = checkOpenArgs(aad, iv, ctAndIcv, 8, 1, this.icvSize);
    const key = this.live();
    const d = createDecipheriv(this.alg as 'aes-256-gcm', key, this.nonce(iv), { authTagLength: this.icvSize });
    NONCE.fill(0, 0, 4);
    d.setAAD(aad);
    d.setAuthTag(ctAndIcv.subarray(ctLen));
    const out = new Uint8Array(ctLen);
    const off = put(out, d.update(ctAndIcv.subarray(0, ctLen)), 0);
    try {
      // final() verifies the tag (OpenSSL compares in constant time).
      put(out, d.final(), off);
    } catch {
      out.fill(0);
      throw new AuthTagError();
    }
    return out;
  }

  destroy(): void {
    // KeyObject memory is owned by OpenSSL/Node and freed on GC; dropping the
    // reference is the most we can do from JS. The salt copy is ours to wipe.
    this.key = null;
    this.salt = 0;
  }
}

/**
 * The same transform on the addon: the key schedule stays in one
 * EVP_CIPHER_CTX (keyed once), each message only sets the nonce, and no JS
 * copy of the key or salt is kept.
 */
class NativeAeadCipher implements SkCipher {
  readonly ivSize = 8;
  readonly icvSize: number;
  readonly blockSize = 1;
  readonly aead = true;
  private handle: NativeAeadHandle | null;
  private readonly lib: PqCryptoAddon;

  constructor(info: EncrInfo, encKey: Uint8Array, lib: PqCryptoAddon) {
    this.icvSize = info.icvSize;
    this.lib = lib;
    const alg =
      info.id === Encr.CHACHA20_POLY1305
        ? NativeAead.CHACHA20_POLY1305
        : info.keySize === 16
          ? NativeAead.AES_128_GCM
          : info.keySize === 24
            ? NativeAead.AES_192_GCM
            : NativeAead.AES_256_GCM;
    this.handle = lib.skAeadNew(alg, encKey.subarray(0, info.keySize), encKey.subarray(info.keySize, info.keySize + 4), info.icvSize);
  }

  private live(): NativeAeadHandle {
    if (!this.handle) throw new Error('SkCipher used after destroy()');
    return this.handle;
  }

  seal(aad: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array {
    checkSealArgs(aad, iv, plain, 8, 1);
    const out = new Uint8Array(plain.length + this.icvSize);
    this.lib.skAeadSeal(this.live(), aad, iv, plain, out);
    return out;
  }

  open(aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array): Uint8Array {
    const out = new Uint8Array(checkOpenArgs(aad, iv, ctAndIcv, 8, 1, this.icvSize));
    // The addon verifies the tag (OpenSSL, constant time) and wipes `out` on failure.
    if (!this.lib.skAeadOpen(this.live(), aad, iv, ctAndIcv, out)) throw new AuthTagError();
    return out;
  }

  destroy(): void {
    // Cleanses the key schedule and salt in C now, not at the next GC.
    if (this.handle) this.lib.skAeadFree(this.handle);
    this.handle = null;
  }
}

class CbcHmacCipher implements SkCipher {
  readonly ivSize = 16;
  readonly icvSize: number;
  readonly blockSize = 16;
  readonly aead = false;
  private key: KeyObject | null;
  private macKey: KeyObject | null;
  private readonly alg: 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc';
  private readonly hash: string;

  constructor(info: EncrInfo, encKey: Uint8Array, integ: IntegInfo, integKey: Uint8Array) {
    this.icvSize = integ.icvSize;
    this.alg = `aes-${info.keySize * 8}-cbc` as 'aes-256-cbc';
    this.hash = INTEG_HASH[integ.id]!;
    this.key = createSecretKey(encKey);
    this.macKey = createSecretKey(integKey);
  }

  private icv(aad: Uint8Array, iv: Uint8Array, ct: Uint8Array): Uint8Array {
    if (!this.macKey) throw new Error('SkCipher used after destroy()');
    return createHmac(this.hash, this.macKey).update(aad).update(iv).update(ct).digest().subarray(0, this.icvSize);
  }

  seal(aad: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array {
    checkSealArgs(aad, iv, plain, 16, 16);
    if (!this.key) throw new Error('SkCipher used after destroy()');
    const c = createCipheriv(this.alg, this.key, iv);
    c.setAutoPadding(false);
    const out = new Uint8Array(plain.length + this.icvSize);
    let off = put(out, c.update(plain), 0);
    off = put(out, c.final(), off);
    put(out, this.icv(aad, iv, out.subarray(0, off)), off);
    return out;
  }

  open(aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array): Uint8Array {
    const ctLen = checkOpenArgs(aad, iv, ctAndIcv, 16, 16, this.icvSize);
    if (!this.key) throw new Error('SkCipher used after destroy()');
    const ct = ctAndIcv.subarray(0, ctLen);
    // Verify before decrypting (encrypt-then-MAC): no padding oracle.
    const want = this.icv(aad, iv, ct);
    if (!timingSafeEqual(want, ctAndIcv.subarray(ctLen))) throw new AuthTagError();
    const d = createDecipheriv(this.alg, this.key, iv);
    d.setAutoPadding(false);
    const out = new Uint8Array(ctLen);
    const off = put(out, d.update(ct), 0);
    put(out, d.final(), off);
    return out;
  }

  destroy(): void {
    this.key = null;
    this.macKey = null;
  }
}

const CBC_MAC_ALG: Record<string, number> = { sha256: NativeHash.SHA256, sha384: NativeHash.SHA384, sha512: NativeHash.SHA512 };

/** AES-CBC + HMAC on the addon: the AES key schedule and the HMAC ipad/opad states are kept per direction. */
class NativeCbcHmacCipher implements SkCipher {
  readonly ivSize = 16;
  readonly icvSize: number;
  readonly blockSize = 16;
  readonly aead = false;
  private handle: NativeCbcHandle | null;
  private readonly lib: Required<Pick<PqCryptoAddon, 'skCbcNew' | 'skCbcSeal' | 'skCbcOpen' | 'skCbcFree'>>;

  constructor(encKey: Uint8Array, integ: IntegInfo, integKey: Uint8Array, lib: PqCryptoAddon) {
    this.icvSize = integ.icvSize;
    this.lib = lib as NativeCbcHmacCipher['lib'];
    this.handle = this.lib.skCbcNew(encKey, CBC_MAC_ALG[INTEG_HASH[integ.id]!]!, integKey, integ.icvSize);
  }

  private live(): NativeCbcHandle {
    if (!this.handle) throw new Error('SkCipher used after destroy()');
    return this.handle;
  }

  seal(aad: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array {
    checkSealArgs(aad, iv, plain, 16, 16);
    const out = new Uint8Array(plain.length + this.icvSize);
    this.lib.skCbcSeal(this.live(), aad, iv, plain, out);
    return out;
  }

  open(aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array): Uint8Array {
    const ctLen = checkOpenArgs(aad, iv, ctAndIcv, 16, 16, this.icvSize);
    const out = new Uint8Array(ctLen);
    if (!this.lib.skCbcOpen(this.live(), aad, iv, ctAndIcv, out)) throw new AuthTagError();
    return out;
  }

  destroy(): void {
    if (this.handle) this.lib.skCbcFree(this.handle);
    this.handle = null;
  }
}

/**
 * Build one direction's SK/ESP transform. For AEAD `encKey` is key | salt
 * (keySize + saltSize octets) and `integ` must be absent; for AES-CBC both
 * `integ` and `integKey` are required. Key lengths are checked (TypeError:
 * a keymat sizing bug, not peer input). The keys are copied.
 */
export function createSkCipher(encr: EncrInfo, encKey: Uint8Array, integ?: IntegInfo, integKey?: Uint8Array): SkCipher {
  checkBytes('encKey', encKey, encr.keySize + encr.saltSize);
  if (encr.aead) {
    if (integ || integKey) throw new TypeError(`${encr.name} is an AEAD: no INTEG transform allowed`);
    const lib = nativeCrypto();
    return lib ? new NativeAeadCipher(encr, encKey, lib) : new AeadCipher(encr, encKey);
  }
  if (!integ || !integKey) throw new TypeError(`${encr.name} needs an INTEG transform and key`);
  if (!INTEG_HASH[integ.id]) throw new TypeError(`unknown INTEG ${integ.id}`);
  checkBytes('integKey', integKey, integ.keySize);
  const lib = nativeCrypto();
  if (lib && typeof lib.skCbcNew === 'function') return new NativeCbcHmacCipher(encKey, integ, integKey, lib);
  return new CbcHmacCipher(encr, encKey, integ, integKey);
}
