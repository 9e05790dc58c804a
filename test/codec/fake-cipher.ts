/**
 * Test-only SkCipher implementations on node:crypto, independent of
 * firmware/crypto, so the codec can be tested on its own:
 *   AEAD (RFC 5282): key = K | salt(4), nonce = salt | IV(8), ICV = tag.
 *   Encrypt-then-MAC (RFC 7296 §3.14): CBC without cipher padding,
 *   ICV = trunc(HMAC(integKey, aad | iv | ct)).
 */
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import type { SkCipher } from '../../firmware/crypto/types.js';
import { AuthTagError } from '../../firmware/util/errors.js';

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

export class FakeGcm implements SkCipher {
  readonly ivSize = 8;
  readonly blockSize = 1;
  readonly aead = true;
  private key: Uint8Array;
  private readonly salt: Uint8Array;
  constructor(
    keyWithSalt: Uint8Array,
    readonly icvSize = 16,
  ) {
    this.key = keyWithSalt.slice(0, keyWithSalt.length - 4);
    this.salt = keyWithSalt.slice(keyWithSalt.length - 4);
  }
  private alg(): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' {
    return `aes-${this.key.length * 8}-gcm` as 'aes-256-gcm';
  }
  private nonce(iv: Uint8Array): Uint8Array {
    const n = new Uint8Array(12);
    n.set(this.salt, 0);
    n.set(iv, 4);
    return n;
  }
  seal(aad: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array {
    const c = createCipheriv(this.alg(), this.key, this.nonce(iv), { authTagLength: this.icvSize });
    c.setAAD(aad);
    return u8(Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]));
  }
  open(aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array): Uint8Array {
    if (ctAndIcv.length < this.icvSize) throw new AuthTagError('short');
    const ct = ctAndIcv.subarray(0, ctAndIcv.length - this.icvSize);
    const d = createDecipheriv(this.alg(), this.key, this.nonce(iv), { authTagLength: this.icvSize });
    d.setAAD(aad);
    d.setAuthTag(ctAndIcv.subarray(ctAndIcv.length - this.icvSize));
    const out = d.update(ct);
    try {
      return u8(Buffer.concat([out, d.final()]));
    } catch {
      throw new AuthTagError();
    }
  }
  destroy(): void {
    this.key.fill(0);
  }
}

export class FakeCbcHmac implements SkCipher {
  readonly aead = false;
  readonly ivSize: number;
  readonly blockSize: number;
  constructor(
    private readonly alg: 'aes-128-cbc' | 'aes-256-cbc' | 'des-ede3-cbc',
    private readonly encKey: Uint8Array,
    private readonly hash: 'sha1' | 'sha256',
    private readonly integKey: Uint8Array,
    readonly icvSize: number,
  ) {
    this.blockSize = alg === 'des-ede3-cbc' ? 8 : 16;
    this.ivSize = this.blockSize;
  }
  private icv(aad: Uint8Array, iv: Uint8Array, ct: Uint8Array): Uint8Array {
    return u8(createHmac(this.hash, this.integKey).update(aad).update(iv).update(ct).digest()).subarray(0, this.icvSize);
  }
  seal(aad: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array {
    const c = createCipheriv(this.alg, this.encKey, iv).setAutoPadding(false);
    const ct = u8(Buffer.concat([c.update(plain), c.final()]));
    const out = new Uint8Array(ct.length + this.icvSize);
    out.set(ct, 0);
    out.set(this.icv(aad, iv, ct), ct.length);
    return out;
  }
  open(aad: Uint8Array, iv: Uint8Array, ctAndIcv: Uint8Array): Uint8Array {
    if (ctAndIcv.length < this.icvSize) throw new AuthTagError('short');
    const ct = ctAndIcv.subarray(0, ctAndIcv.length - this.icvSize);
    const got = ctAndIcv.subarray(ct.length);
    if (!timingSafeEqual(this.icv(aad, iv, ct), got)) throw new AuthTagError();
    const d = createDecipheriv(this.alg, this.encKey, iv).setAutoPadding(false);
    return u8(Buffer.concat([d.update(ct), d.final()]));
  }
  destroy(): void {
    this.encKey.fill(0);
    this.integKey.fill(0);
  }
}

/** Deterministic IV source: a counter, so tests can reproduce datagrams. */
export function counterIv(start = 1): (n: number) => Uint8Array {
  let c = start;
  return (n: number) => {
    const iv = new Uint8Array(n);
    let v = c++;
    for (let i = n - 1; i >= 0 && v > 0; i--) {
      iv[i] = v & 0xff;
      v = Math.floor(v / 256);
    }
    return iv;
  };
}

export const fixedKey = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

export function gcm256(seed = 1): FakeGcm {
  return new FakeGcm(fixedKey(36, seed));
}
export function cbc256(seed = 2): FakeCbcHmac {
  return new FakeCbcHmac('aes-256-cbc', fixedKey(32, seed), 'sha256', fixedKey(32, seed + 100), 16);
}
