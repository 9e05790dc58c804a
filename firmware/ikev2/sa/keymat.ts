/**
 * IKEv2 key derivation: pure functions of their inputs, no state.
 *
 *  - RFC 7296 §2.13 prf+ (crypto/prf.ts), §2.14 IKE SA keys, §2.17 Child SA
 *    KEYMAT, §2.18 IKE SA rekey, §2.15 AUTH octets and the PSK AUTH value.
 *  - RFC 9370 §2.2.2 (keys after each IKE_INTERMEDIATE key exchange) and
 *    §2.2.4 / §2.2.5 (rekeys with several key exchanges).
 *  - RFC 9242 §3.3.1 / §3.3.2 IntAuth chaining and its place in AUTH.
 *
 * Only HMAC PRFs are implemented, so the RFC 7296 §2.14 special case for
 * AES-XCBC-PRF-128 / AES-CMAC-PRF-128 (SKEYSEED keyed with the first 64 bits
 * of each nonce) does not arise.
 */
import type { EncrInfo, IntegInfo, Prf } from '../../crypto/types.js';
import { prfPlus } from '../../crypto/registry.js';
import { concat, ctEqual } from '../../util/bytes.js';

export { formatIkev2DecryptionTableLine, formatEspSaLine } from './wireshark.js';

/** The seven IKE SA secrets (RFC 7296 §2.14), in prf+ order. */
export interface IkeKeys {
  skD: Uint8Array;
  /** Empty for AEAD (no separate integrity key). */
  skAi: Uint8Array;
  skAr: Uint8Array;
  /** Encryption key including the salt for AEAD (GCM/ChaCha20: +4 octets, RFC 5282 §7.1). */
  skEi: Uint8Array;
  skEr: Uint8Array;
  skPi: Uint8Array;
  skPr: Uint8Array;
}

export interface IkeAlgorithms {
  /** PRF of the IKE SA being keyed (its key size sets |SK_d| = |SK_pi| = |SK_pr|). */
  prf: Prf;
  encr: EncrInfo;
  /** Absent (or ignored) for AEAD. */
  integ?: IntegInfo | undefined;
}

function encrKeyLen(encr: EncrInfo): number {
  return encr.keySize + encr.saltSize;
}

/** Total prf+ output an IKE SA needs: 3·|prf key| + 2·|SK_a| + 2·|SK_e|. */
export function ikeKeymatLength(a: IkeAlgorithms): number {
  const ai = a.encr.aead ? 0 : (a.integ?.keySize ?? 0);
  return 3 * a.prf.keySize + 2 * ai + 2 * encrKeyLen(a.encr);
}

/** SKEYSEED = prf(Ni | Nr, g^ir)   (RFC 7296 §2.14) */
export function initialSkeyseed(prf: Prf, ni: Uint8Array, nr: Uint8Array, sharedSecret: Uint8Array): Uint8Array {
  return prf.compute(concat(ni, nr), sharedSecret);
}

/**
 * SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)   (RFC 9370 §2.2.2)
 * after the n-th IKE_INTERMEDIATE key exchange; Ni/Nr are the IKE_SA_INIT
 * nonces, the PRF is the IKE SA's own.
 */
export function addKeSkeyseed(prf: Prf, prevSkD: Uint8Array, sharedSecret: Uint8Array, ni: Uint8Array, nr: Uint8Array): Uint8Array {
  return prf.compute(prevSkD, concat(sharedSecret, ni, nr));
}

/**
 * SKEYSEED = prf(SK_d(old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))
 *   RFC 7296 §2.18 (one KE: prf(SK_d(old), g^ir(new) | Ni | Nr)), extended by
 *   RFC 9370 §2.2.4 with the secrets of the IKE_FOLLOWUP_KE exchanges.
 * The nonces sit right after SK(0) (strongSwan keymat_v2.c derive_ike_keys
 * `chunk_cat("scc", secret, full_nonce, add_secret)`, libreswan agrees).
 * `oldPrf` is the OLD IKE SA's PRF: "Because the rekeying exchange belongs
 * to the old IKE SA, it is the old IKE SA's PRF that is used to generate
 * SKEYSEED" (§2.18).
 */
export function rekeySkeyseed(oldPrf: Prf, oldSkD: Uint8Array, secrets: readonly Uint8Array[], ni: Uint8Array, nr: Uint8Array): Uint8Array {
  if (secrets.length === 0) throw new TypeError('rekeySkeyseed: an IKE SA rekey needs at least one key exchange (RFC 7296 §2.18)');
  return oldPrf.compute(oldSkD, concat(secrets[0]!, ni, nr, ...secrets.slice(1)));
}

/**
 * {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
 *     = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)          (RFC 7296 §2.14)
 * `plusPrf` runs prf+; the key sizes come from `a` (the SA being keyed).
 */
export function splitIkeKeymat(
  a: IkeAlgorithms,
  plusPrf: Prf,
  skeyseed: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  spiI: Uint8Array,
  spiR: Uint8Array,
): IkeKeys {
  if (spiI.length !== 8 || spiR.length !== 8) throw new TypeError('IKE SPIs must be 8 octets');
  const p = a.prf.keySize;
  const ai = a.encr.aead ? 0 : (a.integ?.keySize ?? 0);
  if (!a.encr.aead && ai === 0) throw new TypeError('a non-AEAD IKE SA needs an integrity algorithm');
  const e = encrKeyLen(a.encr);
  const km = prfPlus(plusPrf, skeyseed, concat(ni, nr, spiI, spiR), 3 * p + 2 * ai + 2 * e);
  // The seven keys are views of one private buffer (not of prf+'s output,
  // which may sit in a shared pool): one allocation per IKE SA instead of
  // seven, which a hub with thousands of SAs notices. Wiping every key wipes
  // the whole buffer.
  const own = new Uint8Array(km.length);
  own.set(km);
  km.fill(0);
  let o = 0;
  const take = (n: number): Uint8Array => own.subarray(o, (o += n));
  return { skD: take(p), skAi: take(ai), skAr: take(ai), skEi: take(e), skEr: take(e), skPi: take(p), skPr: take(p) };
}

/** Initial IKE SA keys from IKE_SA_INIT (RFC 7296 §2.14). Give either the KE shared secret or a precomputed SKEYSEED. */
export function deriveIkeKeys(
  args: IkeAlgorithms & { sharedSecret?: Uint8Array; skeyseed?: Uint8Array; ni: Uint8Array; nr: Uint8Array; spiI: Uint8Array; spiR: Uint8Array },
): IkeKeys {
  const seed = args.skeyseed ?? (args.sharedSecret ? initialSkeyseed(args.prf, args.ni, args.nr, args.sharedSecret) : undefined);
  if (!seed) throw new TypeError('deriveIkeKeys: sharedSecret or skeyseed required');
  const keys = splitIkeKeymat(args, args.prf, seed, args.ni, args.nr, args.spiI, args.spiR);
  if (!args.skeyseed) seed.fill(0);
  return keys;
}

/**
 * Keys after one more IKE_INTERMEDIATE key exchange (RFC 9370 §2.2.2):
 *   SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
 *   {SK_d(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
 * Call once per completed round, in ADDKE order, with `prev` = keys (n-1).
 */
export function deriveAddKeKeys(
  args: IkeAlgorithms & { prev: IkeKeys; sharedSecret: Uint8Array; ni: Uint8Array; nr: Uint8Array; spiI: Uint8Array; spiR: Uint8Array },
): IkeKeys {
  const seed = addKeSkeyseed(args.prf, args.prev.skD, args.sharedSecret, args.ni, args.nr);
  const keys = splitIkeKeymat(args, args.prf, seed, args.ni, args.nr, args.spiI, args.spiR);
  seed.fill(0);
  return keys;
}

/**
 * Keys of a new IKE SA from a CREATE_CHILD_SA rekey (plus IKE_FOLLOWUP_KE
 * rounds): SKEYSEED = prf_old(SK_d(old), SK(0) | Ni | Nr | SK(1) | ... | SK(n)),
 * then prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) with the NEW SPIs and nonces.
 *
 * Which PRF runs prf+ when the PRF changes on rekey:
 *  - RFC 7296 §2.18: "... computed from SKEYSEED as specified in
 *    Section 2.14 ... using the new IKE SA's PRF" → `prfPlusWith: 'new'`.
 *  - strongSwan keymat_v2.c derive_ike_keys: "use OLD SAs PRF functions for
 *    both prf_plus and prf" → `prfPlusWith: 'old'` (the default here, so a
 *    strongSwan peer derives the same keys).
 * Both agree whenever old and new PRF are the same algorithm; the key sizes
 * (|SK_d|, |SK_p|) are always those of the new SA's PRF.
 */
export function deriveRekeyedIkeKeys(
  args: IkeAlgorithms & {
    oldPrf: Prf;
    oldSkD: Uint8Array;
    /** SK(0) from the CREATE_CHILD_SA KE, then SK(1)..SK(n) from IKE_FOLLOWUP_KE, in order. */
    secrets: readonly Uint8Array[];
    ni: Uint8Array;
    nr: Uint8Array;
    spiI: Uint8Array;
    spiR: Uint8Array;
    prfPlusWith?: 'old' | 'new';
  },
): IkeKeys {
  const seed = rekeySkeyseed(args.oldPrf, args.oldSkD, args.secrets, args.ni, args.nr);
  const plus = (args.prfPlusWith ?? 'old') === 'old' ? args.oldPrf : args.prf;
  const keys = splitIkeKeymat(args, plus, seed, args.ni, args.nr, args.spiI, args.spiR);
  seed.fill(0);
  return keys;
}

export interface ChildKeys {
  encrI: Uint8Array;
  integI: Uint8Array;
  encrR: Uint8Array;
  integR: Uint8Array;
}

/** Seed of a Child SA's prf+: [SK(0) |] Ni | Nr [| SK(1) | ... | SK(n)]. */
export function childKeymatSeed(ni: Uint8Array, nr: Uint8Array, secrets: readonly Uint8Array[]): Uint8Array {
  return secrets.length === 0 ? concat(ni, nr) : concat(secrets[0]!, ni, nr, ...secrets.slice(1));
}

/**
 * Child SA keys (RFC 7296 §2.17, RFC 9370 §2.2.4):
 *   KEYMAT = prf+(SK_d, Ni | Nr)                                   no PFS
 *   KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))     PFS (+ IKE_FOLLOWUP_KE)
 * taken in the order encr_i, integ_i, encr_r, integ_r ("keys for the
 * initiator-to-responder direction first, encryption before integrity").
 * The encryption key includes the AEAD salt (RFC 4106 §8.1, RFC 7634 §3).
 * For the first Child SA (IKE_AUTH) pass the IKE_SA_INIT nonces and no secrets.
 */
export function deriveChildKeys(args: {
  prf: Prf;
  skD: Uint8Array;
  ni: Uint8Array;
  nr: Uint8Array;
  secrets?: readonly Uint8Array[];
  encr: EncrInfo;
  integ?: IntegInfo | undefined;
}): ChildKeys {
  const e = encrKeyLen(args.encr);
  const i = args.encr.aead ? 0 : (args.integ?.keySize ?? 0);
  if (!args.encr.aead && i === 0) throw new TypeError('deriveChildKeys: a non-AEAD Child SA needs an integrity algorithm');
  const seed = childKeymatSeed(args.ni, args.nr, args.secrets ?? []);
  const km = prfPlus(args.prf, args.skD, seed, 2 * (e + i));
  seed.fill(0);
  let o = 0;
  const take = (n: number): Uint8Array => km.slice(o, (o += n));
  const keys: ChildKeys = { encrI: take(e), integI: take(i), encrR: take(e), integR: take(i) };
  km.fill(0);
  return keys;
}

/**
 * RFC 9242 §3.3.1:
 *   IntAuth_i1 = prf(SK_pi1, IntAuth_i1_A | IntAuth_i1_P)
 *   IntAuth_iN = prf(SK_piN, IntAuth_i(N-1) | IntAuth_iN_A | IntAuth_iN_P)
 * (same for _r with SK_pr). SK_p is the key in force while that
 * IKE_INTERMEDIATE exchange was protected, i.e. before its own key update.
 */
export function intAuthStep(prf: Prf, skP: Uint8Array, prevIntAuth: Uint8Array | undefined, a: Uint8Array, p: Uint8Array): Uint8Array {
  return prf.compute(skP, prevIntAuth ? concat(prevIntAuth, a, p) : concat(a, p));
}

/** ID payload body as MACed in AUTH: ID Type (1) | RESERVED (3) | Identification Data (RFC 7296 §2.15). */
export function idPayloadBody(idType: number, data: Uint8Array): Uint8Array {
  return concat(new Uint8Array([idType, 0, 0, 0]), data);
}

/**
 * RFC 7296 §2.15 (with RFC 9242 §3.3.2):
 *   InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI [| IntAuth]
 *   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR [| IntAuth]
 *   MACedIDForX = prf(SK_px, IDType | RESERVED | IDData)
 *   IntAuth     = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID (4 octets, big endian)
 * RealMessage is this side's IKE_SA_INIT message as sent (no non-ESP marker);
 * peerNonce is the other side's nonce data. intAuth is empty when no
 * IKE_INTERMEDIATE took place. strongSwan uses the same IntAuth blob
 * (i-chain first) for both directions.
 */
export function signedOctets(args: {
  realMessage: Uint8Array;
  peerNonce: Uint8Array;
  prf: Prf;
  skP: Uint8Array;
  idPayloadBody: Uint8Array;
  intAuth?: Uint8Array;
}): Uint8Array {
  const maced = args.prf.compute(args.skP, args.idPayloadBody);
  return concat(args.realMessage, args.peerNonce, maced, args.intAuth ?? new Uint8Array(0));
}

/** The 17 ASCII octets of RFC 7296 §2.15, without a terminating NUL. */
export const KEY_PAD = new TextEncoder().encode('Key Pad for IKEv2');

/** AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)   (RFC 7296 §2.15) */
export function pskAuth(prf: Prf, psk: Uint8Array, octets: Uint8Array): Uint8Array {
  return prf.compute(paddedPsk(prf, psk), octets);
}

/**
 * prf(PSK, "Key Pad for IKEv2") depends only on the PSK and the PRF, so it is
 * kept per PSK object (a WeakMap: it lives exactly as long as the tunnel
 * configuration that holds the PSK, and is as secret as the PSK itself). A
 * responder checking several candidate tunnels, and every handshake of a
 * hub, saves one HMAC per AUTH value.
 */
const padCache = new WeakMap<Uint8Array, Map<number, Uint8Array>>();
function paddedPsk(prf: Prf, psk: Uint8Array): Uint8Array {
  let m = padCache.get(psk);
  if (!m) {
    m = new Map();
    padCache.set(psk, m);
  }
  let k = m.get(prf.id);
  if (!k) {
    k = prf.compute(psk, KEY_PAD);
    m.set(prf.id, k);
  }
  return k;
}

/** Constant-time comparison of a received AUTH value with the expected one. */
export function verifyAuth(expected: Uint8Array, received: Uint8Array): boolean {
  return ctEqual(expected, received);
}
