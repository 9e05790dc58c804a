/**
 * ML-KEM (FIPS 203) key generation, encapsulation and decapsulation for one
 * parameter set, on node:crypto hashing (sample.ts) and typed-array
 * polynomial arithmetic (poly.ts, codec.ts).
 *
 *   keygen       ML-KEM.KeyGen_internal(d, z)   Algorithm 16 (K-PKE.KeyGen, Algorithm 13)
 *   encapsulate  ML-KEM.Encaps_internal(ek, m)  Algorithm 17 (K-PKE.Encrypt, Algorithm 14),
 *                after the §7.2 input checks (length, modulus)
 *   decapsulate  ML-KEM.Decaps_internal(dk, c)  Algorithm 18 (K-PKE.Decrypt, Algorithm 15),
 *                after the §7.3 input checks (ct length, dk length, hash check)
 *
 * All intermediate polynomials live in scratch buffers allocated once per
 * parameter set; operations are synchronous, so no two ever interleave on
 * them. Secret-bearing scratch (s, e, y, messages, G outputs) is zeroed
 * before each operation returns. Only the returned keys/ciphertext/secret
 * and node:crypto's digest Buffers are allocated per call.
 */
import { randomFillSync } from 'node:crypto';
import { KeyExchangeError } from '../../util/errors.js';
import { basemulAcc, canon, fromMont, invNtt, ntt, polyNative } from './poly.js';
import type { PqCryptoAddon } from '../native.js';
import { addMessage, compressEncode, compressMessage, decode12, decode12Checked, decodeDecompress, encode12, modulusOk } from './codec.js';
import { G, H, J, cbd, cbdAdd, hInto, prf, sampleNtt } from './sample.js';

const N = 256; // private copy (see poly.ts)

/** FIPS 203 Table 2. */
export interface MlKemParams {
  readonly name: string;
  readonly k: number;
  readonly eta1: number;
  readonly eta2: number;
  readonly du: number;
  readonly dv: number;
}

export interface MlKemLengths {
  readonly publicKey: number; // 384k + 32
  readonly secretKey: number; // 768k + 96
  readonly cipherText: number; // 32(du·k + dv)
  readonly seed: 64;
  readonly msg: 32;
  readonly sharedSecret: 32;
}

/** k polynomials back to back (what basemulAcc takes), plus a view of each. */
interface Vec {
  readonly flat: Int16Array;
  readonly p: readonly Int16Array[];
}

function vec(k: number): Vec {
  const flat = new Int16Array(k * N);
  const p: Int16Array[] = [];
  for (let i = 0; i < k; i++) p.push(flat.subarray(i * N, (i + 1) * N));
  return { flat, p };
}

type KemNative = Required<Pick<PqCryptoAddon, 'mlkemKeygen' | 'mlkemEncaps' | 'mlkemDecaps'>>;
/** Read once (process.env is a slow getter). PQGATE_MLKEM_NATIVE=0 keeps only the arithmetic native: the A/B switch of the benchmarks. */
const MLKEM_NATIVE_OFF = process.env.PQGATE_MLKEM_NATIVE === '0';

let kemForced: boolean | undefined;

/**
 * Tests only: the one-call native KEM off (false: the JS K-PKE on whatever
 * arithmetic nativeCrypto() gives), on if available (true), or the default.
 */
export function setNativeMlKem(on: boolean | undefined): void {
  kemForced = on;
}

/**
 * The addon's one-call ML-KEM (native/mlkem.c), or undefined: not built, too
 * old, PQGATE_CRYPTO_NATIVE=0 or PQGATE_MLKEM_NATIVE=0. polyNative() hands
 * the NTT tables over first; the C KEM runs on the same arithmetic.
 */
function kemNative(): KemNative | undefined {
  if (kemForced === false || (MLKEM_NATIVE_OFF && kemForced !== true)) return undefined;
  const lib = polyNative() as PqCryptoAddon | undefined;
  return lib && typeof lib.mlkemKeygen === 'function' ? (lib as KemNative) : undefined;
}

function checkBytes(name: string, v: unknown, len: number): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`);
  if (v.length !== len) throw new TypeError(`${name}: expected ${len} bytes, got ${v.length}`);
}

export class MlKem {
  readonly params: MlKemParams;
  readonly lengths: MlKemLengths;
  private readonly k: number;
  // Scratch. The matrix (Â or Âᵀ, see expandMatrix), entry [i][j] at (k·i + j)·256.
  private readonly mat: Int16Array;
  private readonly matP: Int16Array[]; // a view of each entry
  private readonly vs: Vec; // ŝ (keygen, decrypt) / ŷ (encrypt)
  private readonly ve: Vec; // ê (keygen) / NTT(u') (decrypt)
  private readonly vt: Vec; // t̂
  private readonly p1 = new Int16Array(N);
  private readonly p2 = new Int16Array(N);
  private readonly seed34 = new Uint8Array(34); // ρ ‖ j ‖ i
  private readonly seed33 = new Uint8Array(33); // σ or r ‖ N
  private readonly gIn = new Uint8Array(64); // d ‖ k, or m ‖ H(ek)
  private readonly ctBuf: Uint8Array; // re-encryption c' in decapsulate
  private readonly expanded = new WeakMap<Uint8Array, { rho: Uint8Array; aT: Int16Array }>();

  constructor(params: MlKemParams) {
    const { k, du, dv } = params;
    this.params = params;
    this.k = k;
    this.lengths = Object.freeze({
      publicKey: 384 * k + 32,
      secretKey: 768 * k + 96,
      cipherText: 32 * (du * k + dv),
      seed: 64,
      msg: 32,
      sharedSecret: 32,
    });
    this.mat = new Int16Array(k * k * N);
    this.matP = [];
    for (let i = 0; i < k * k; i++) this.matP.push(this.mat.subarray(i * N, (i + 1) * N));
    this.vs = vec(k);
    this.ve = vec(k);
    this.vt = vec(k);
    this.ctBuf = new Uint8Array(this.lengths.cipherText);
  }

  /**
   * Â[i][j] = SampleNTT(ρ‖j‖i) (Algorithm 13 lines 3-7, Algorithm 14 lines 4-8).
   * With `transposed`, entry [i][j] = Â[j][i] = SampleNTT(ρ‖i‖j), so the Âᵀ·ŷ
   * of encryption is the same row-by-vector loop as keygen's Â·ŝ.
   * Expects ρ in seed34[0..32].
   */
  private expandMatrix(transposed: boolean): void {
    const { k, seed34, matP } = this;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        seed34[32] = transposed ? i : j;
        seed34[33] = transposed ? j : i;
        sampleNtt(seed34, matP[k * i + j]!);
      }
    }
  }

  /** f = SamplePolyCBD_η(PRF_η(seed33[0..32], n)), or f += that if `add`. */
  private noise(f: Int16Array, eta: number, n: number, add = false): void {
    this.seed33[32] = n;
    const b = prf(this.seed33, eta);
    if (add) cbdAdd(b, eta, f);
    else cbd(b, eta, f);
    b.fill(0);
  }

  /** ML-KEM.KeyGen_internal(d, z) with seed = d ‖ z (Algorithm 16); random seed if omitted. */
  keygen(seed?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
    const own = seed === undefined;
    const s64 = own ? randomFillSync(new Uint8Array(64)) : seed;
    checkBytes('seed', s64, 64);
    const { k, params, mat, vs, ve, vt, p1, gIn, seed33, seed34, lengths } = this;
    const lib = kemNative();
    if (lib) {
      const ek = new Uint8Array(lengths.publicKey);
      const dk = new Uint8Array(lengths.secretKey);
      const aT = new Int16Array(k * k * N);
      try {
        lib.mlkemKeygen(k, s64, ek, dk, aT);
      } finally {
        if (own) s64.fill(0);
      }
      this.expanded.set(dk, { rho: dk.slice(768 * k, 768 * k + 32), aT });
      return { publicKey: ek, secretKey: dk };
    }
    try {
      // (ρ, σ) = G(d ‖ k) (Algorithm 13 line 1; the k octet is FIPS 203's domain separator).
      gIn.set(s64.subarray(0, 32), 0);
      gIn[32] = k;
      const g = G(gIn.subarray(0, 33));
      seed34.set(g.subarray(0, 32), 0);
      seed33.set(g.subarray(32, 64), 0);
      g.fill(0);
      this.expandMatrix(false);
      for (let i = 0; i < k; i++) {
        this.noise(vs.p[i]!, params.eta1, i);
        ntt(vs.p[i]!);
      }
      for (let i = 0; i < k; i++) {
        this.noise(ve.p[i]!, params.eta1, k + i);
        ntt(ve.p[i]!);
      }
      const ek = new Uint8Array(lengths.publicKey);
      const dk = new Uint8Array(lengths.secretKey);
      // t̂ = Â∘ŝ + ê (line 18). basemulAcc leaves ·R^-1; fromMont undoes it.
      for (let i = 0; i < k; i++) {
        basemulAcc(p1, mat, k * N * i, vs.flat, k);
        const t = vt.p[i]!;
        const e = ve.p[i]!;
        for (let j = 0; j < N; j++) t[j] = canon(fromMont(p1[j]!) + e[j]!);
        encode12(t, ek, 384 * i);
      }
      ek.set(seed34.subarray(0, 32), 384 * k);
      // dk = ByteEncode12(ŝ) ‖ ek ‖ H(ek) ‖ z (Algorithm 16 line 3).
      for (let i = 0; i < k; i++) {
        const s = vs.p[i]!;
        for (let j = 0; j < N; j++) s[j] = canon(s[j]!);
        encode12(s, dk, 384 * i);
      }
      dk.set(ek, 384 * k);
      hInto(ek, dk, 768 * k + 32);
      dk.set(s64.subarray(32, 64), 768 * k + 64);
      this.rememberMatrix(dk);
      return { publicKey: ek, secretKey: dk };
    } finally {
      vs.flat.fill(0);
      ve.flat.fill(0);
      p1.fill(0);
      gIn.fill(0);
      seed33.fill(0);
      if (own) s64.fill(0);
    }
  }

  /**
   * K-PKE.Encrypt(ek, m, r) (Algorithm 14) into `out`. m is gIn[0..32],
   * r is seed33[0..32]. If `tDecoded`, vt already holds ByteDecode12(ek).
   * `aT`, if given, is Âᵀ for ek's ρ (from rememberMatrix), saving the
   * k^2 SampleNTT calls.
   */
  private encrypt(ek: Uint8Array, tDecoded: boolean, out: Uint8Array, aT?: Int16Array): void {
    const { k, params, vs, vt, p1, seed34 } = this;
    const { eta1, eta2, du, dv } = params;
    if (!tDecoded) for (let i = 0; i < k; i++) decode12(ek, 384 * i, vt.p[i]!);
    let mat = this.mat;
    if (aT) mat = aT;
    else {
      seed34.set(ek.subarray(384 * k, 384 * k + 32), 0);
      this.expandMatrix(true);
    }
    // ŷ = NTT(y), y[i] from PRF(r, i) (lines 9-12).
    for (let i = 0; i < k; i++) {
      this.noise(vs.p[i]!, eta1, i);
      ntt(vs.p[i]!);
    }
    // u[i] = NTT^-1((Âᵀ∘ŷ)[i]) + e1[i], e1[i] from PRF(r, k+i) (lines 13-16, 19),
    // compressed straight into c1 (line 22).
    for (let i = 0; i < k; i++) {
      basemulAcc(p1, mat, k * N * i, vs.flat, k);
      invNtt(p1);
      this.noise(p1, eta2, k + i, true);
      compressEncode(p1, du, out, 32 * du * i);
    }
    // v = NTT^-1(t̂ᵀ∘ŷ) + e2 + μ, e2 from PRF(r, 2k) (lines 17, 20-21, 23).
    basemulAcc(p1, vt.flat, 0, vs.flat, k);
    invNtt(p1);
    this.noise(p1, eta2, 2 * k, true);
    addMessage(p1, this.gIn, 0);
    compressEncode(p1, dv, out, 32 * du * k);
  }

  /** FIPS 203 §7.2 encapsulation key check: length and modulus. */
  checkEncapsulationKey(ek: Uint8Array): boolean {
    return ek instanceof Uint8Array && ek.length === this.lengths.publicKey && modulusOk(ek, 0, 384 * this.k);
  }

  /** FIPS 203 §7.3 decapsulation key check: length and H(ek) = h. */
  checkDecapsulationKey(dk: Uint8Array): boolean {
    if (!(dk instanceof Uint8Array) || dk.length !== this.lengths.secretKey) return false;
    const k = this.k;
    const h = H(dk.subarray(384 * k, 768 * k + 32));
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= h[i]! ^ dk[768 * k + 32 + i]!;
    return diff === 0;
  }

  /**
   * ML-KEM.Encaps_internal(ek, m) (Algorithm 17) after the §7.2 checks;
   * random m if omitted. Throws KeyExchangeError on a bad ek.
   */
  encapsulate(publicKey: Uint8Array, msg?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
    if (!(publicKey instanceof Uint8Array)) throw new TypeError('publicKey: expected Uint8Array');
    const { k, lengths, vt, gIn, seed33 } = this;
    if (publicKey.length !== lengths.publicKey) {
      throw new KeyExchangeError(`${this.params.name}: encapsulation key is ${publicKey.length} octets, expected ${lengths.publicKey}`);
    }
    if (msg !== undefined) checkBytes('msg', msg, 32);
    const lib = kemNative();
    if (lib) {
      const m = msg ?? randomFillSync(new Uint8Array(32));
      const cipherText = new Uint8Array(lengths.cipherText);
      const sharedSecret = new Uint8Array(32);
      const ok = lib.mlkemEncaps(k, publicKey, m, cipherText, sharedSecret);
      if (msg === undefined) m.fill(0);
      if (!ok) throw new KeyExchangeError(`${this.params.name}: encapsulation key fails the FIPS 203 modulus check`);
      return { cipherText, sharedSecret };
    }
    let ok = true;
    for (let i = 0; i < k; i++) ok = decode12Checked(publicKey, 384 * i, vt.p[i]!) && ok;
    if (!ok) throw new KeyExchangeError(`${this.params.name}: encapsulation key fails the FIPS 203 modulus check`);
    try {
      if (msg === undefined) randomFillSync(gIn, 0, 32);
      else gIn.set(msg, 0);
      // (K, r) = G(m ‖ H(ek)) (Algorithm 17 line 1).
      hInto(publicKey, gIn, 32);
      const g = G(gIn);
      const sharedSecret = new Uint8Array(g.subarray(0, 32));
      seed33.set(g.subarray(32, 64), 0);
      g.fill(0);
      const cipherText = new Uint8Array(lengths.cipherText);
      this.encrypt(publicKey, true, cipherText);
      return { cipherText, sharedSecret };
    } finally {
      this.wipeEncrypt();
    }
  }

  /**
   * ML-KEM.Decaps_internal(dk, c) (Algorithm 18) after the §7.3 checks.
   * Throws KeyExchangeError on a wrong ct/dk length or a failed dk hash check;
   * a well-formed but wrong ct yields the implicit-rejection key J(z ‖ c).
   */
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
    if (!(cipherText instanceof Uint8Array)) throw new TypeError('cipherText: expected Uint8Array');
    if (!(secretKey instanceof Uint8Array)) throw new TypeError('secretKey: expected Uint8Array');
    const { k, params, lengths, vs, ve, p1, p2, gIn, seed33, ctBuf } = this;
    const { du, dv } = params;
    if (cipherText.length !== lengths.cipherText) {
      throw new KeyExchangeError(`${params.name}: ciphertext is ${cipherText.length} octets, expected ${lengths.cipherText}`);
    }
    if (secretKey.length !== lengths.secretKey) {
      throw new KeyExchangeError(`${params.name}: decapsulation key is ${secretKey.length} octets, expected ${lengths.secretKey}`);
    }
    const lib = kemNative();
    if (lib) {
      const out = new Uint8Array(32);
      if (!lib.mlkemDecaps(k, cipherText, secretKey, out, this.recallMatrix(secretKey))) throw new KeyExchangeError(`${params.name}: decapsulation key fails the FIPS 203 hash check`);
      return out;
    }
    if (!this.checkDecapsulationKey(secretKey)) throw new KeyExchangeError(`${params.name}: decapsulation key fails the FIPS 203 hash check`);
    const ekOff = 384 * k;
    const hOff = 768 * k + 32;
    const zOff = 768 * k + 64;
    try {
      // K-PKE.Decrypt (Algorithm 15): w = v' - NTT^-1(ŝᵀ∘NTT(u')), m' = ByteEncode1(Compress1(w)).
      for (let i = 0; i < k; i++) {
        decodeDecompress(cipherText, 32 * du * i, du, ve.p[i]!);
        ntt(ve.p[i]!);
        decode12(secretKey, 384 * i, vs.p[i]!);
      }
      basemulAcc(p1, vs.flat, 0, ve.flat, k);
      invNtt(p1);
      decodeDecompress(cipherText, 32 * du * k, dv, p2);
      for (let j = 0; j < N; j++) p1[j] = p2[j]! - p1[j]!;
      compressMessage(p1, gIn, 0);
      // (K', r') = G(m' ‖ h) (Algorithm 18 line 7).
      gIn.set(secretKey.subarray(hOff, hOff + 32), 32);
      const g = G(gIn);
      seed33.set(g.subarray(32, 64), 0);
      // K̄ = J(z ‖ c) (line 8); c' = K-PKE.Encrypt(ek, m', r') (line 9).
      const kBar = J(secretKey.subarray(zOff, zOff + 32), cipherText);
      this.encrypt(secretKey.subarray(ekOff, ekOff + 384 * k + 32), false, ctBuf, this.recallMatrix(secretKey));
      // Lines 10-12: K' if c = c', else K̄; compare and select without branching on secrets.
      let diff = 0;
      for (let i = 0; i < ctBuf.length; i++) diff |= cipherText[i]! ^ ctBuf[i]!;
      const mask = (diff - 1) >> 31; // -1 if equal, 0 if not
      const out = new Uint8Array(32);
      for (let i = 0; i < 32; i++) out[i] = kBar[i]! ^ ((kBar[i]! ^ g[i]!) & mask);
      g.fill(0);
      kBar.fill(0);
      return out;
    } finally {
      this.wipeEncrypt();
      ve.flat.fill(0);
      ctBuf.fill(0);
    }
  }

  /**
   * Keep Âᵀ for a dk this instance generated, keyed by the dk object, so that
   * decapsulating with it skips the k^2 SampleNTT calls of the
   * re-encryption (Algorithm 18 line 9). This is the expanded-key idea of
   * OpenSSL's and BoringSSL's ML-KEM key structures, which hold Â; here the
   * key is a plain byte array, so the expansion lives beside it in a WeakMap
   * and goes away with the dk. Â is a function of the public ρ only: nothing
   * secret is retained. recallMatrix checks ρ inside the dk against the
   * remembered one, so a dk mutated after keygen falls back to expansion.
   */
  private rememberMatrix(dk: Uint8Array): void {
    const k = this.k;
    const aT = new Int16Array(k * k * N);
    // keygen left Â in mat ([i][j] = Â[i][j]); store its transpose.
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) aT.set(this.matP[k * j + i]!, (k * i + j) * N);
    }
    this.expanded.set(dk, { rho: dk.slice(768 * k, 768 * k + 32), aT });
  }

  private recallMatrix(dk: Uint8Array): Int16Array | undefined {
    const e = this.expanded.get(dk);
    if (!e) return undefined;
    const off = 768 * this.k;
    for (let i = 0; i < 32; i++) if (e.rho[i] !== dk[off + i]) return undefined;
    return e.aT;
  }

  private wipeEncrypt(): void {
    this.vs.flat.fill(0);
    this.p1.fill(0);
    this.p2.fill(0);
    this.gIn.fill(0);
    this.seed33.fill(0);
  }
}
