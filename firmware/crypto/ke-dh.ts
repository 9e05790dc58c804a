/**
 * Classical Diffie-Hellman key exchange methods (Transform Type 4), all on
 * node:crypto (OpenSSL):
 *
 *  - MODP 2048 / 3072 (ids 14/15): RFC 3526 §3, §4 groups, g = 2.
 *    KE data and g^ir are big-endian, zero-padded to the modulus length
 *    (RFC 7296 §3.4, §2.14). Peer value checked 1 < y < p-1 (RFC 6989 §2.2:
 *    for these safe-prime groups that is the whole check).
 *  - ECP 256/384/521 (ids 19/20/21): RFC 5903 §7: KE data = x | y, each
 *    field-length octets, no 0x04 prefix; §7 and §9 (change from RFC 4753): the shared secret is
 *    the x-coordinate of the shared point. The peer point must be on the
 *    curve (RFC 6989 §2.3; OpenSSL's EC_POINT_oct2point checks it, and the
 *    coordinates < p).
 *  - Curve25519 (id 31): RFC 8031 §2 (32-octet u-coordinate), RFC 7748 §5
 *    (X25519), §6.1 + RFC 8031 §2.3: an all-zero shared secret MUST be
 *    rejected (low-order peer point).
 *
 * X25519 runs in the native addon when it is loaded (crypto/native.ts: the
 * raw 32-octet scalar, one scalar multiplication per operation, no key
 * objects); node:crypto's JWK/KeyObject path is the fallback.
 *
 * The private key always comes from the injected Rng, so tests are
 * deterministic and the RFC 5903 / RFC 7748 vectors can be replayed by an Rng
 * that returns the vector's private key.
 */
import {
  createDiffieHellman,
  createECDH,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type DiffieHellman,
  type ECDH,
  type KeyObject,
} from 'node:crypto';
import { KeyExchangeError } from '../util/errors.js';
import { KeMethod } from '../ikev2/constants.js';
import type { Rng } from '../util/clock.js';
import type { KeyExchange } from './types.js';
import { keName } from './algorithms.js';
import { nativeCrypto, type PqCryptoAddon } from './native.js';

// ------------------------------------------------------------------ common

abstract class DhBase implements KeyExchange {
  readonly method: number;
  readonly name: string;
  readonly isKem = false;
  protected secret: Uint8Array | null = null;
  protected destroyed = false;
  constructor(method: number) {
    this.method = method;
    this.name = keName(method);
  }
  abstract getPublic(): Uint8Array;
  protected abstract derive(peer: Uint8Array): Uint8Array;
  protected abstract wipePrivate(): void;

  setPeerPublic(data: Uint8Array): void {
    this.alive();
    if (!(data instanceof Uint8Array)) throw new TypeError('setPeerPublic: expected Uint8Array');
    if (this.secret) throw new KeyExchangeError(`${this.name}: peer public value already set`);
    this.secret = this.derive(data);
  }
  getSharedSecret(): Uint8Array {
    this.alive();
    if (!this.secret) throw new KeyExchangeError(`${this.name}: no shared secret (peer public value not set)`);
    return this.secret.slice();
  }
  destroy(): void {
    this.secret?.fill(0);
    this.secret = null;
    this.wipePrivate();
    this.destroyed = true;
  }
  protected alive(): void {
    if (this.destroyed) throw new Error(`${this.name}: used after destroy()`);
  }
}

function toU8(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function leftPad(b: Uint8Array, len: number): Uint8Array {
  if (b.length === len) return toU8(b);
  if (b.length > len) throw new Error(`value longer than ${len} octets`);
  const out = new Uint8Array(len);
  out.set(b, len - b.length);
  return out;
}

/** Big-endian unsigned compare of equal-length byte strings. */
function cmpBE(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

// ------------------------------------------------------------------ MODP

// RFC 3526 §3 (2048-bit, group 14) and §4 (3072-bit, group 15), generator 2.
// test/crypto/ke-dh.test.ts recomputes both from the RFC's pi formula.
const MODP_2048_HEX =
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74' +
  '020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437' +
  '4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED' +
  'EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05' +
  '98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB' +
  '9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B' +
  'E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718' +
  '3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF';
const MODP_3072_HEX =
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74' +
  '020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437' +
  '4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED' +
  'EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05' +
  '98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB' +
  '9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B' +
  'E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718' +
  '3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33' +
  'A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7' +
  'ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864' +
  'D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2' +
  '08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF';

interface ModpGroup {
  readonly p: Uint8Array; // big-endian modulus
  readonly pMinus1: Uint8Array;
  readonly expBytes: number;
}

/**
 * Private exponent length. RFC 3526 §8 estimates 320 / 420 bits at the top
 * of its ranges for 2048 / 3072; NIST SP 800-56A r3 §5.6.1.1.4 asks for at
 * least 2·s bits (s = 112 / 128). 384 and 512 bits exceed both while keeping
 * the modexp ~5x cheaper than a full-length exponent.
 */
function modpGroup(hex: string, expBytes: number): ModpGroup {
  const p = new Uint8Array(Buffer.from(hex, 'hex'));
  const pMinus1 = p.slice();
  pMinus1[pMinus1.length - 1]! -= 1; // p is odd: no borrow
  return { p, pMinus1, expBytes };
}

export const MODP_GROUPS: Record<number, ModpGroup> = {
  [KeMethod.MODP_2048]: modpGroup(MODP_2048_HEX, 48),
  [KeMethod.MODP_3072]: modpGroup(MODP_3072_HEX, 64),
};

class ModpKe extends DhBase {
  private readonly group: ModpGroup;
  private dh: DiffieHellman | null;
  private readonly pub: Uint8Array;
  constructor(method: number, rng: Rng) {
    super(method);
    this.group = MODP_GROUPS[method]!;
    // x in [2, 2^(8·expBytes)): redraw the (negligible) 0 / 1 cases.
    let x: Uint8Array;
    do x = rng.bytes(this.group.expBytes);
    while (x.every((b, i) => b === 0 || (i === x.length - 1 && b === 1)));
    // The prime is passed as bytes, so Node skips generating parameters;
    // g^x mod p is one modexp with the short exponent.
    this.dh = createDiffieHellman(this.group.p, 2);
    this.dh.setPrivateKey(x);
    x.fill(0);
    this.pub = leftPad(this.dh.generateKeys(), this.group.p.length);
  }
  getPublic(): Uint8Array {
    this.alive();
    return this.pub.slice();
  }
  protected derive(y: Uint8Array): Uint8Array {
    const len = this.group.p.length;
    if (y.length !== len) throw new KeyExchangeError(`${this.name}: public value is ${y.length} octets, expected ${len}`);
    // 1 < y < p-1 (RFC 6989 §2.2; y = 0, 1, p-1 would force the secret into {0, 1, p-1}).
    let gtOne = false;
    for (let i = 0; i < len - 1 && !gtOne; i++) if (y[i] !== 0) gtOne = true;
    if (!gtOne && y[len - 1]! <= 1) throw new KeyExchangeError(`${this.name}: public value y <= 1`);
    if (cmpBE(y, this.group.pMinus1) >= 0) throw new KeyExchangeError(`${this.name}: public value y >= p-1`);
    let z: Uint8Array;
    try {
      z = this.dh!.computeSecret(y);
    } catch (e) {
      throw new KeyExchangeError(`${this.name}: ${(e as Error).message}`);
    }
    // g^ir is zero-padded to the modulus length (RFC 7296 §2.14).
    const out = leftPad(z, len);
    z.fill(0);
    return out;
  }
  protected wipePrivate(): void {
    // The exponent lives in OpenSSL memory: drop the only reference.
    this.dh = null;
  }
}

// ------------------------------------------------------------------ ECP

interface EcCurve {
  readonly openssl: string;
  readonly fieldBytes: number;
  /** Group order n, big-endian, fieldBytes long. */
  readonly n: Uint8Array;
  /** Mask for the top octet of a candidate scalar (P-521: 521 bits in 66 octets). */
  readonly topMask: number;
}

// Group orders from FIPS 186-5 / SP 800-186 §3.2.1 (cross-checked against
// @noble/curves in the tests).
function curve(openssl: string, fieldBytes: number, nHex: string, topMask = 0xff): EcCurve {
  if (nHex.length !== fieldBytes * 2) throw new Error(`bad group order constant for ${openssl}`);
  return { openssl, fieldBytes, n: new Uint8Array(Buffer.from(nHex, 'hex')), topMask };
}

export const EC_CURVES: Record<number, EcCurve> = {
  [KeMethod.ECP_256]: curve('prime256v1', 32, 'FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551'),
  [KeMethod.ECP_384]: curve(
    'secp384r1',
    48,
    'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973',
  ),
  [KeMethod.ECP_521]: curve(
    'secp521r1',
    66,
    '01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF' +
      'FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409',
    0x01,
  ),
};

/**
 * Private scalar d in [1, n-1] by rejection sampling (FIPS 186-5 A.4.2):
 * draw fieldBytes octets, mask to the bit length of n, retry if out of range.
 * An Rng replaying a valid vector key thus yields exactly that key.
 */
function ecScalar(c: EcCurve, rng: Rng, name: string): Uint8Array {
  for (let tries = 0; tries < 128; tries++) {
    const d = rng.bytes(c.fieldBytes);
    d[0]! &= c.topMask;
    if (d.some((b) => b !== 0) && cmpBE(d, c.n) < 0) return d;
    d.fill(0);
  }
  throw new Error(`${name}: RNG failed to produce a private scalar`);
}

class EcpKe extends DhBase {
  private readonly curve: EcCurve;
  private ecdh: ECDH | null;
  private readonly pub: Uint8Array;
  constructor(method: number, rng: Rng) {
    super(method);
    this.curve = EC_CURVES[method]!;
    const d = ecScalar(this.curve, rng, this.name);
    this.ecdh = createECDH(this.curve.openssl);
    this.ecdh.setPrivateKey(d);
    d.fill(0);
    // Uncompressed SEC1 point 0x04 | x | y; IKE sends x | y (RFC 5903 §7).
    this.pub = toU8(this.ecdh.getPublicKey().subarray(1));
  }
  getPublic(): Uint8Array {
    this.alive();
    return this.pub.slice();
  }
  protected derive(peer: Uint8Array): Uint8Array {
    const len = 2 * this.curve.fieldBytes;
    if (peer.length !== len) throw new KeyExchangeError(`${this.name}: public value is ${peer.length} octets, expected ${len}`);
    const sec1 = new Uint8Array(len + 1);
    sec1[0] = 0x04;
    sec1.set(peer, 1);
    let z: Uint8Array;
    try {
      // Rejects points not on the curve and coordinates >= p; returns x of d·Q.
      z = this.ecdh!.computeSecret(sec1);
    } catch {
      throw new KeyExchangeError(`${this.name}: invalid peer point`);
    }
    const out = leftPad(z, this.curve.fieldBytes);
    z.fill(0);
    return out;
  }
  protected wipePrivate(): void {
    // The ECDH object's scalar lives in OpenSSL memory: drop it.
    this.ecdh = null;
  }
}

// ------------------------------------------------------------------ X25519

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
// Placeholder for the JWK "x" member: Node requires it to be a string but
// derives the public key from "d" when importing a private OKP key.
const JWK_X_PLACEHOLDER = b64u(new Uint8Array(32));
// RFC 8410 PKCS#8 prefix for an X25519 private key (fallback import path).
const X25519_PKCS8_PREFIX = new Uint8Array(Buffer.from('302e020100300506032b656e04220420', 'hex'));

/**
 * Import a raw X25519 private key. JWK import is ~9x faster than PKCS#8 DER
 * in Node 20 (no OpenSSL decoder chain); DER stays as the fallback.
 */
function x25519PrivateKey(d: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(d), x: JWK_X_PLACEHOLDER }, format: 'jwk' });
  } catch {
    const der = new Uint8Array(48);
    der.set(X25519_PKCS8_PREFIX, 0);
    der.set(d, 16);
    const k = createPrivateKey({ key: Buffer.from(der.buffer), format: 'der', type: 'pkcs8' });
    der.fill(0);
    return k;
  }
}

class X25519Ke extends DhBase {
  private priv: KeyObject | null;
  private readonly pub: Uint8Array;
  constructor(rng: Rng) {
    super(KeMethod.CURVE_25519);
    // RFC 7748 §5: any 32 octets are a valid scalar (clamped by X25519 itself).
    const d = rng.bytes(32);
    this.priv = x25519PrivateKey(d);
    d.fill(0);
    const x = (this.priv.export({ format: 'jwk' }) as { x?: string }).x;
    if (typeof x !== 'string') throw new Error('X25519: public key export failed');
    this.pub = new Uint8Array(Buffer.from(x, 'base64url'));
    if (this.pub.length !== 32) throw new Error('X25519: public key export failed');
  }
  getPublic(): Uint8Array {
    this.alive();
    return this.pub.slice();
  }
  protected derive(peer: Uint8Array): Uint8Array {
    if (peer.length !== 32) throw new KeyExchangeError(`${this.name}: public value is ${peer.length} octets, expected 32`);
    let z: Uint8Array;
    try {
      const pk = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(peer) }, format: 'jwk' });
      z = toU8(diffieHellman({ privateKey: this.priv!, publicKey: pk }));
    } catch {
      // OpenSSL refuses to return the all-zero output itself.
      throw new KeyExchangeError(`${this.name}: invalid peer public value (low-order point)`);
    }
    // RFC 7748 §6.1 / RFC 8031 §2.3: check for the all-zero value regardless.
    let acc = 0;
    for (const b of z) acc |= b;
    if (acc === 0) throw new KeyExchangeError(`${this.name}: all-zero shared secret (low-order point)`);
    return z;
  }
  protected wipePrivate(): void {
    this.priv = null;
  }
}

/**
 * X25519 on the addon. The scalar stays in a JS buffer that wipePrivate()
 * zeroes (unlike a KeyObject, whose copy only the GC frees); the addon's
 * copies live on the C stack or in EVP keys it cleanses.
 */
class NativeX25519Ke extends DhBase {
  private priv: Uint8Array | null;
  private readonly pub = new Uint8Array(32);
  private readonly lib: PqCryptoAddon;
  constructor(rng: Rng, lib: PqCryptoAddon) {
    super(KeMethod.CURVE_25519);
    this.lib = lib;
    // RFC 7748 §5: any 32 octets are a valid scalar (clamped by X25519 itself).
    this.priv = rng.bytes(32);
    lib.x25519Public(this.priv, this.pub);
  }
  getPublic(): Uint8Array {
    this.alive();
    return this.pub.slice();
  }
  protected derive(peer: Uint8Array): Uint8Array {
    if (peer.length !== 32) throw new KeyExchangeError(`${this.name}: public value is ${peer.length} octets, expected 32`);
    const z = new Uint8Array(32);
    // RFC 7748 §6.1 / RFC 8031 §2.3: false for the all-zero value (low-order peer point).
    if (!this.lib.x25519Derive(this.priv!, peer, z)) throw new KeyExchangeError(`${this.name}: all-zero shared secret (low-order point)`);
    return z;
  }
  protected wipePrivate(): void {
    this.priv?.fill(0);
    this.priv = null;
  }
}

export function createDhKeyExchange(method: number, rng: Rng): KeyExchange | undefined {
  if (MODP_GROUPS[method]) return new ModpKe(method, rng);
  if (EC_CURVES[method]) return new EcpKe(method, rng);
  if (method === KeMethod.CURVE_25519) {
    const lib = nativeCrypto();
    return lib ? new NativeX25519Ke(rng, lib) : new X25519Ke(rng);
  }
  return undefined;
}
