/**
 * ML-KEM-512/768/1024 as IKEv2 key exchange methods 35/36/37
 * (draft-ietf-ipsecme-ikev2-mlkem §2-§3, FIPS 203), on firmware/crypto/mlkem.
 *
 *   initiator: getPublic()        -> ek  (ML-KEM.KeyGen_internal(d, z), d|z = rng 64 octets)
 *              setPeerPublic(ct)  -> K = ML-KEM.Decaps(dk, ct)
 *   responder: setPeerPublic(ek)  -> (K, ct) = ML-KEM.Encaps_internal(ek, m), m = rng 32 octets
 *              getPublic()        -> ct
 *   SK(n) = K, 32 octets, used as is (draft §3: no padding, no KDF).
 *
 * Input checks (draft §3 "Recipient Tests"):
 *  - FIPS 203 §7.2 encapsulation key check: length = 384k + 32 and the
 *    modulus check ByteEncode12(ByteDecode12(ek[0:384k])) = ek[0:384k],
 *    i.e. every 12-bit coefficient is < q = 3329.
 *  - FIPS 203 §7.3 decapsulation input check: ct length = 32(du·k + dv).
 *    A well-sized but tampered ct is NOT an error: decapsulation implicitly
 *    rejects it with K' = J(z | c), a key the peer cannot match, so the
 *    failure surfaces later as an AUTH / integrity failure.
 * Both failures raise KeyExchangeError (the engine answers INVALID_SYNTAX;
 * strongSwan answers NO_PROPOSAL_CHOSEN: see the spec digest).
 */
// The fast path: FIPS 203 in TypeScript with every hash on node:crypto
// (firmware/crypto/mlkem/, ~5x @noble per operation). @noble/post-quantum
// stays the oracle it is cross-tested against (test/crypto/mlkem-fast.test.ts).
import { mlkem1024 as ml_kem1024, mlkem512 as ml_kem512, mlkem768 as ml_kem768 } from './mlkem/index.js';
import { KeyExchangeError } from '../util/errors.js';
import { KeMethod } from '../ikev2/constants.js';
import type { Rng } from '../util/clock.js';
import type { KeyExchange } from './types.js';
import { keInfo } from './algorithms.js';

interface Kem {
  keygen(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array, msg: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

const KEMS: Record<number, { kem: Kem; k: number }> = {
  [KeMethod.ML_KEM_512]: { kem: ml_kem512, k: 2 },
  [KeMethod.ML_KEM_768]: { kem: ml_kem768, k: 3 },
  [KeMethod.ML_KEM_1024]: { kem: ml_kem1024, k: 4 },
};

const Q = 3329;

/**
 * FIPS 203 §7.2 modulus check, done here rather than trusting the library:
 * ByteDecode12 then ByteEncode12 is the identity exactly when every 12-bit
 * little-endian coefficient (two per three octets) is below q.
 */
export function mlkemModulusOk(ek: Uint8Array, k: number): boolean {
  const end = 384 * k;
  let bad = 0;
  for (let i = 0; i < end; i += 3) {
    const b0 = ek[i]!;
    const b1 = ek[i + 1]!;
    const b2 = ek[i + 2]!;
    const c0 = b0 | ((b1 & 0x0f) << 8);
    const c1 = (b1 >> 4) | (b2 << 4);
    // Accumulate without early exit: ek is public, but keep it branch-free anyway.
    bad |= ((Q - 1 - c0) | (Q - 1 - c1)) & 0x80000000;
  }
  return bad === 0;
}

class MlKemKe implements KeyExchange {
  readonly method: number;
  readonly name: string;
  readonly isKem = true;
  private readonly kem: Kem;
  private readonly k: number;
  private readonly ekSize: number;
  private readonly ctSize: number;
  private readonly rng: Rng;
  private role: 'initiator' | 'responder' | null = null;
  private ek: Uint8Array | null = null;
  private dk: Uint8Array | null = null;
  private ct: Uint8Array | null = null;
  private secret: Uint8Array | null = null;
  private destroyed = false;

  constructor(method: number, rng: Rng) {
    const info = keInfo(method);
    this.method = method;
    this.name = info.name;
    this.kem = KEMS[method]!.kem;
    this.k = KEMS[method]!.k;
    this.ekSize = info.initiatorPublicSize;
    this.ctSize = info.responderPublicSize;
    this.rng = rng;
  }

  private alive(): void {
    if (this.destroyed) throw new Error(`${this.name}: used after destroy()`);
  }

  /** Initiator: ek (key pair generated on first call). Responder: ct. */
  getPublic(): Uint8Array {
    this.alive();
    if (this.role === 'responder') return this.ct!.slice();
    if (!this.ek) {
      this.role = 'initiator';
      const seed = this.rng.bytes(64); // d | z (FIPS 203 Algorithm 16 inputs)
      const { publicKey, secretKey } = this.kem.keygen(seed);
      seed.fill(0);
      this.ek = publicKey;
      this.dk = secretKey;
    }
    return this.ek.slice();
  }

  /** Initiator: decapsulate the peer's ct. Responder: encapsulate to the peer's ek. */
  setPeerPublic(data: Uint8Array): void {
    this.alive();
    if (!(data instanceof Uint8Array)) throw new TypeError('setPeerPublic: expected Uint8Array');
    if (this.secret) throw new KeyExchangeError(`${this.name}: peer public value already set`);
    if (this.role === 'initiator') this.decapsulate(data);
    else this.encapsulate(data);
  }

  private encapsulate(ek: Uint8Array): void {
    if (ek.length !== this.ekSize) {
      throw new KeyExchangeError(`${this.name}: encapsulation key is ${ek.length} octets, expected ${this.ekSize}`);
    }
    if (!mlkemModulusOk(ek, this.k)) throw new KeyExchangeError(`${this.name}: encapsulation key fails the FIPS 203 modulus check`);
    const m = this.rng.bytes(32);
    let res: { cipherText: Uint8Array; sharedSecret: Uint8Array };
    try {
      res = this.kem.encapsulate(ek, m);
    } catch (e) {
      throw new KeyExchangeError(`${this.name}: ${(e as Error).message}`);
    } finally {
      m.fill(0);
    }
    this.role = 'responder';
    this.ct = res.cipherText;
    // noble returns a view into a 64-octet G() output: copy the 32-octet K out.
    this.secret = res.sharedSecret.slice();
    res.sharedSecret.fill(0);
  }

  private decapsulate(ct: Uint8Array): void {
    if (ct.length !== this.ctSize) throw new KeyExchangeError(`${this.name}: ciphertext is ${ct.length} octets, expected ${this.ctSize}`);
    let k: Uint8Array;
    try {
      k = this.kem.decapsulate(ct, this.dk!);
    } catch (e) {
      throw new KeyExchangeError(`${this.name}: ${(e as Error).message}`);
    }
    this.secret = k.slice();
    k.fill(0);
    // dk is single-use (ephemeral keys, draft §5): wipe it now.
    this.dk!.fill(0);
    this.dk = null;
  }

  getSharedSecret(): Uint8Array {
    this.alive();
    if (!this.secret) throw new KeyExchangeError(`${this.name}: no shared secret (peer data not set)`);
    return this.secret.slice();
  }

  destroy(): void {
    this.secret?.fill(0);
    this.dk?.fill(0);
    this.secret = this.dk = this.ek = this.ct = null;
    this.destroyed = true;
  }
}

export function createMlKemKeyExchange(method: number, rng: Rng): KeyExchange | undefined {
  return KEMS[method] ? new MlKemKe(method, rng) : undefined;
}
