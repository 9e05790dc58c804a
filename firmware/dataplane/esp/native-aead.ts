/**
 * ESP AEAD transforms on one OpenSSL context per SA, through the pqtun addon
 * (native/pqtun.c aeadNew/aeadSeal/aeadOpen): the fast path for
 *
 *   RFC 4106 (AES-GCM for ESP, ICV 8/12/16) and RFC 7634 (ChaCha20-Poly1305),
 *
 * with exactly the conventions of AeadTransform in transforms.ts (nonce =
 * salt || 8-byte IV, IV = the 64-bit sequence number, AAD = SPI || Seq or
 * SPI || SeqHi || SeqLo with ESN). AeadTransform (node:crypto) stays the
 * reference: test/dataplane/native-aead.test.ts compares the two byte for
 * byte. Why: node:crypto creates a cipher object per packet (~4 µs, more
 * than encrypting 1400 bytes); the addon keeps the key schedule and only
 * sets the nonce per packet.
 *
 * Used when the addon is built and has the AEAD functions, unless
 * PQGATE_ESP_NATIVE=0 (then everything runs on node:crypto).
 */
import type { EspTransform } from './transforms.js';
import { loadTunAddon, type PqTunAddon } from '../tun/tun.js';

let checked: PqTunAddon | null | undefined;

/** The addon if it offers the AEAD functions and native ESP crypto is not switched off. */
export function nativeAead(): PqTunAddon | undefined {
  if (process.env.PQGATE_ESP_NATIVE === '0') return undefined;
  if (checked === undefined) {
    try {
      const lib = loadTunAddon();
      checked = typeof lib.aeadNew === 'function' ? lib : null;
    } catch {
      checked = null; // not built: node:crypto only
    }
  }
  return checked ?? undefined;
}

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

export class NativeAeadTransform implements EspTransform {
  readonly ivSize = 8;
  readonly blockSize = 4;
  private enc: unknown;
  private dec: unknown;
  /** key | salt in one private copy (one allocation per SA; a hub holds thousands). */
  private readonly keySalt: Uint8Array;
  private readonly keyLen: number;
  private destroyed = false;

  constructor(
    readonly name: string,
    private readonly alg: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | 'chacha20-poly1305',
    keyAndSalt: Uint8Array,
    readonly icvSize: number,
    private readonly lib: PqTunAddon,
  ) {
    this.keyLen = keyAndSalt.length - 4;
    this.keySalt = new Uint8Array(keyAndSalt);
    // Validate now (throws on a bad combination), like the node:crypto transform does at construction.
    this.enc = this.context(true);
  }

  private context(encrypt: boolean): unknown {
    return this.lib.aeadNew(this.alg, this.keySalt.subarray(0, this.keyLen), this.keySalt.subarray(this.keyLen), this.icvSize, encrypt);
  }

  seal(pkt: Uint8Array, plainLen: number, seq: number, seqHi: number, iv?: Uint8Array): void {
    // RFC 4106 §3.1 / RFC 7634 §2: the 64-bit sequence number is the IV (never repeats under one key).
    if (iv) pkt.set(iv, 8);
    else {
      writeU32(pkt, 8, Math.floor(seq / 0x1_0000_0000));
      writeU32(pkt, 12, seq >>> 0);
    }
    // After destroy() the key is zero: never build a context from it (that would encrypt under an all-zero key).
    if (this.destroyed) throw new Error(`${this.name}: ESP transform used after destroy()`);
    this.enc ??= this.context(true);
    this.lib.aeadSeal(this.enc, pkt, plainLen, seqHi);
  }

  open(pkt: Uint8Array, len: number, seqHi: number): Uint8Array | null {
    if (this.destroyed) return null;
    // A context per direction: an SA is used one way, tests use one transform both ways.
    this.dec ??= this.context(false);
    const out = Buffer.allocUnsafe(len - 16 - this.icvSize);
    return this.lib.aeadOpen(this.dec, pkt, len, seqHi, out) ? out : null;
  }

  destroy(): void {
    this.destroyed = true;
    if (this.enc) this.lib.aeadFree(this.enc);
    if (this.dec) this.lib.aeadFree(this.dec);
    this.enc = this.dec = undefined;
    this.keySalt.fill(0);
  }
}
