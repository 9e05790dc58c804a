/**
 * ESP transforms over node:crypto (OpenSSL), one object per SA direction
 * with the key objects created once.
 *
 *   RFC 4106 §3.1, §4, §5, §8.1  AES-GCM for ESP: KEYMAT = key || 4-byte salt,
 *                                nonce = salt || 8-byte explicit IV, AAD =
 *                                SPI || Seq (8 bytes) or SPI || SeqHi || SeqLo
 *                                with ESN (12 bytes); ICV = GCM tag (8/12/16).
 *   RFC 7634 §2, §2.1            ChaCha20-Poly1305 for ESP: same nonce and AAD
 *                                construction, 32-byte key + 4-byte salt, 16-byte tag.
 *   RFC 3602, RFC 4868           AES-CBC with a random IV + HMAC-SHA-256/384/512
 *                                truncated to half, encrypt-then-MAC.
 *   RFC 4303 §2.2.1, §3.3.2      with ESN, the high 32 sequence bits are included
 *                                in the ICV computation (after the payload for a
 *                                non-AEAD ICV; in the AAD for AEAD) but not sent.
 *
 * Packet layout shared by seal/open (offsets in the ESP packet):
 *   [0,4) SPI  [4,8) Seq  [8,8+iv) IV  [8+iv, 8+iv+n) payload/ciphertext  [.., +icv) ICV
 *
 * node:crypto has no "encrypt into this buffer" call and no reusable AEAD
 * context, so each packet creates one cipher object (about 5 µs, which is
 * where the time goes; see bench/esp-micro.ts). Everything else (AAD,
 * nonce, key objects) is reused. The AEAD algorithms therefore run on the
 * pqtun addon's per-SA OpenSSL contexts when it is built (native-aead.ts);
 * AeadTransform below is the reference implementation they are tested against.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { Encr, IntegId } from '../../ikev2/constants.js';
import { PqError } from '../../util/errors.js';
import { nativeAead, NativeAeadTransform } from './native-aead.js';

export interface EspTransform {
  readonly name: string;
  readonly ivSize: number;
  readonly icvSize: number;
  /** Alignment of payload||padding||padlen||nh: 4 for AEAD stream modes (RFC 4303 §2.4), 16 for CBC. */
  readonly blockSize: number;
  /**
   * Fill the IV at [8, 8+ivSize) (unless `iv` is given: tests replay
   * published vectors), encrypt [hdr, hdr+plainLen) in place and write the
   * ICV after it. SPI and Seq must already be at [0, 8).
   * `seqHi` is the high half of the 64-bit sequence number (ESN only, else -1).
   */
  seal(pkt: Uint8Array, plainLen: number, seq: number, seqHi: number, iv?: Uint8Array): void;
  /**
   * Verify the ICV of pkt[0, len) and decrypt. Returns the padded plaintext
   * (a fresh buffer), or null when the ICV does not verify.
   */
  open(pkt: Uint8Array, len: number, seqHi: number): Uint8Array | null;
  /** Wipe the raw key copies (KeyObjects live in OpenSSL until GC). */
  destroy(): void;
}

export class EspAlgorithmError extends PqError {
  constructor(message: string) {
    super('ERR_ESP_ALGORITHM', message);
  }
}

const GCM_ICV: Record<number, number> = { [Encr.AES_GCM_8]: 8, [Encr.AES_GCM_12]: 12, [Encr.AES_GCM_16]: 16 };

const INTEG: Record<number, { hash: string; keySize: number; icvSize: number; name: string }> = {
  [IntegId.HMAC_SHA2_256_128]: { hash: 'sha256', keySize: 32, icvSize: 16, name: 'HMAC_SHA2_256_128' },
  [IntegId.HMAC_SHA2_384_192]: { hash: 'sha384', keySize: 48, icvSize: 24, name: 'HMAC_SHA2_384_192' },
  [IntegId.HMAC_SHA2_512_256]: { hash: 'sha512', keySize: 64, icvSize: 32, name: 'HMAC_SHA2_512_256' },
};

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634): salt || IV nonce, 8-byte counter IV. */
export class AeadTransform implements EspTransform {
  readonly ivSize = 8;
  readonly blockSize = 4;
  private readonly key: KeyObject;
  private readonly raw: Uint8Array;
  /** salt || IV; the salt part is fixed for the SA. */
  private readonly nonce = Buffer.alloc(12);
  /** SPI || SeqHi || SeqLo for ESN (RFC 4106 §5). */
  private readonly aad12 = Buffer.alloc(12);
  private readonly opts: { authTagLength: number };

  constructor(
    readonly name: string,
    private readonly alg: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | 'chacha20-poly1305',
    keyAndSalt: Uint8Array,
    readonly icvSize: number,
  ) {
    const keyLen = keyAndSalt.length - 4;
    this.raw = new Uint8Array(keyAndSalt.subarray(0, keyLen)); // a copy, even when given a Buffer
    this.key = createSecretKey(this.raw);
    this.nonce.set(keyAndSalt.subarray(keyLen), 0);
    this.opts = { authTagLength: icvSize };
  }

  private aad(pkt: Uint8Array, seqHi: number): Uint8Array {
    if (seqHi < 0) return pkt.subarray(0, 8);
    this.aad12.set(pkt.subarray(0, 4), 0);
    writeU32(this.aad12, 4, seqHi);
    this.aad12.set(pkt.subarray(4, 8), 8);
    return this.aad12;
  }

  /**
   * The AEAD core: nonce = salt || iv (8 bytes), encrypts `plain` and writes
   * ciphertext || tag at out[outOff..]. seal() is this with the ESP AAD.
   */
  encrypt(iv: Uint8Array, aad: Uint8Array, plain: Uint8Array, out: Uint8Array, outOff: number): void {
    this.nonce.set(iv, 4);
    const c = createCipheriv(this.alg as 'aes-128-gcm', this.key, this.nonce, this.opts);
    c.setAAD(aad);
    const ct = c.update(plain);
    c.final();
    out.set(ct, outOff);
    out.set(c.getAuthTag(), outOff + plain.length);
  }

  /** The AEAD core's inverse: the plaintext, or null if the tag does not verify. */
  decrypt(iv: Uint8Array, aad: Uint8Array, ct: Uint8Array, tag: Uint8Array): Uint8Array | null {
    this.nonce.set(iv, 4);
    const d = createDecipheriv(this.alg as 'aes-128-gcm', this.key, this.nonce, this.opts);
    d.setAAD(aad);
    d.setAuthTag(tag);
    const pt = d.update(ct);
    try {
      d.final(); // throws when the tag does not verify; `pt` is discarded then
    } catch {
      return null;
    }
    return pt;
  }

  seal(pkt: Uint8Array, plainLen: number, seq: number, seqHi: number, iv?: Uint8Array): void {
    // RFC 4106 §3.1 / RFC 7634 §2: the IV must never repeat under one key;
    // the 64-bit sequence number (which never repeats within an SA) is it.
    if (iv) pkt.set(iv, 8);
    else {
      writeU32(pkt, 8, Math.floor(seq / 0x1_0000_0000));
      writeU32(pkt, 12, seq >>> 0);
    }
    this.encrypt(pkt.subarray(8, 16), this.aad(pkt, seqHi), pkt.subarray(16, 16 + plainLen), pkt, 16);
  }

  open(pkt: Uint8Array, len: number, seqHi: number): Uint8Array | null {
    const ctEnd = len - this.icvSize;
    return this.decrypt(pkt.subarray(8, 16), this.aad(pkt, seqHi), pkt.subarray(16, ctEnd), pkt.subarray(ctEnd, len));
  }

  destroy(): void {
    this.raw.fill(0);
    this.nonce.fill(0);
  }
}

/**
 * IVs for CBC must be unpredictable (RFC 3602 §3): drawn from the CSPRNG in
 * 4 KiB batches so the per-packet cost is a copy, not a syscall.
 */
const ivPool = Buffer.alloc(4096);
let ivPoolPos = ivPool.length;
function randomIv(out: Uint8Array, off: number, n: number): void {
  if (ivPoolPos + n > ivPool.length) {
    randomFillSync(ivPool);
    ivPoolPos = 0;
  }
  out.set(ivPool.subarray(ivPoolPos, ivPoolPos + n), off);
  ivPoolPos += n; // each pool byte is handed out once
}

/** AES-CBC + HMAC-SHA2 (encrypt-then-MAC, RFC 4303 §3.3.2). */
class CbcHmacTransform implements EspTransform {
  readonly ivSize = 16;
  readonly blockSize = 16;
  readonly icvSize: number;
  private readonly encKey: KeyObject;
  private readonly macKey: KeyObject;
  private readonly raw: Uint8Array[];
  private readonly hiBuf = Buffer.alloc(4);

  constructor(
    readonly name: string,
    private readonly alg: 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc',
    encrKey: Uint8Array,
    private readonly hash: string,
    integKey: Uint8Array,
    icvSize: number,
  ) {
    this.icvSize = icvSize;
    this.raw = [new Uint8Array(encrKey), new Uint8Array(integKey)]; // copies, even of Buffers
    this.encKey = createSecretKey(this.raw[0]!);
    this.macKey = createSecretKey(this.raw[1]!);
  }

  private mac(pkt: Uint8Array, end: number, seqHi: number): Buffer {
    const h = createHmac(this.hash, this.macKey).update(pkt.subarray(0, end));
    if (seqHi >= 0) {
      // RFC 4303 §2.2.1: SeqHi is appended after the payload for the ICV only.
      writeU32(this.hiBuf, 0, seqHi);
      h.update(this.hiBuf);
    }
    return h.digest();
  }

  seal(pkt: Uint8Array, plainLen: number, _seq: number, seqHi: number, iv?: Uint8Array): void {
    if (iv) pkt.set(iv, 8);
    else randomIv(pkt, 8, 16);
    const c = createCipheriv(this.alg, this.encKey, pkt.subarray(8, 24));
    c.setAutoPadding(false); // ESP padding is ours (RFC 4303 §2.4)
    const ct = c.update(pkt.subarray(24, 24 + plainLen));
    c.final();
    pkt.set(ct, 24);
    const end = 24 + plainLen;
    pkt.set(this.mac(pkt, end, seqHi).subarray(0, this.icvSize), end);
  }

  open(pkt: Uint8Array, len: number, seqHi: number): Uint8Array | null {
    const end = len - this.icvSize;
    const icv = this.mac(pkt, end, seqHi).subarray(0, this.icvSize);
    if (!timingSafeEqual(icv, pkt.subarray(end, len))) return null; // verify before decrypting
    const d = createDecipheriv(this.alg, this.encKey, pkt.subarray(8, 24));
    d.setAutoPadding(false);
    const pt = d.update(pkt.subarray(24, end));
    d.final();
    return pt;
  }

  destroy(): void {
    for (const r of this.raw) r.fill(0);
  }
}

/**
 * Build the transform for an SA. `encrKey` includes the 4-byte salt for
 * AEAD algorithms (SaSpec convention); `encrKeyBits` excludes it. AEAD
 * algorithms run on the addon's OpenSSL contexts (native-aead.ts) when it
 * is available, unless `native` is false; AeadTransform is the reference.
 */
const gcmNames = new Map<number, string>();
/** One shared name string per AES-GCM variant (not a fresh rope per SA). */
function gcmName(icv: number, bits: number): string {
  let n = gcmNames.get(icv * 1024 + bits);
  if (n === undefined) gcmNames.set(icv * 1024 + bits, (n = `AES_GCM_${icv}_${bits}`));
  return n;
}

export function createEspTransform(encrId: number, encrKeyBits: number, encrKey: Uint8Array, integId: number, integKey: Uint8Array, native = true): EspTransform {
  const lib = native ? nativeAead() : undefined;
  const keyBytes = encrKeyBits / 8;
  switch (encrId) {
    case Encr.AES_GCM_8:
    case Encr.AES_GCM_12:
    case Encr.AES_GCM_16: {
      if (![16, 24, 32].includes(keyBytes)) throw new EspAlgorithmError(`AES-GCM: unsupported key size ${encrKeyBits}`);
      if (encrKey.length !== keyBytes + 4) throw new EspAlgorithmError(`AES-GCM: key must be ${keyBytes}+4 salt bytes, got ${encrKey.length}`);
      if (integId !== IntegId.NONE) throw new EspAlgorithmError('AES-GCM: combined mode takes no integrity algorithm (RFC 4106 §5)');
      const icv = GCM_ICV[encrId]!;
      const name = gcmName(icv, encrKeyBits);
      const alg = `aes-${encrKeyBits}-gcm` as 'aes-128-gcm';
      return lib ? new NativeAeadTransform(name, alg, encrKey, icv, lib) : new AeadTransform(name, alg, encrKey, icv);
    }
    case Encr.CHACHA20_POLY1305: {
      if (encrKeyBits !== 256 || encrKey.length !== 36) throw new EspAlgorithmError(`ChaCha20-Poly1305: key must be 32+4 salt bytes, got ${encrKey.length}`);
      if (integId !== IntegId.NONE) throw new EspAlgorithmError('ChaCha20-Poly1305: combined mode takes no integrity algorithm (RFC 7634 §2)');
      return lib ? new NativeAeadTransform('CHACHA20_POLY1305', 'chacha20-poly1305', encrKey, 16, lib) : new AeadTransform('CHACHA20_POLY1305', 'chacha20-poly1305', encrKey, 16);
    }
    case Encr.AES_CBC: {
      if (![16, 24, 32].includes(keyBytes) || encrKey.length !== keyBytes) throw new EspAlgorithmError(`AES-CBC: unsupported key (${encrKeyBits} bits, ${encrKey.length} bytes)`);
      const integ = INTEG[integId];
      if (!integ) throw new EspAlgorithmError(`AES-CBC needs an integrity algorithm, got ${integId}`);
      if (integKey.length !== integ.keySize) throw new EspAlgorithmError(`${integ.name}: key must be ${integ.keySize} bytes, got ${integKey.length}`);
      return new CbcHmacTransform(`AES_CBC_${encrKeyBits}/${integ.name}`, `aes-${encrKeyBits}-cbc` as 'aes-128-cbc', encrKey, integ.hash, integKey, integ.icvSize);
    }
    default:
      throw new EspAlgorithmError(`unsupported ESP encryption algorithm ${encrId}`);
  }
}
