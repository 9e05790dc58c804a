/**
 * Static algorithm descriptions: key, IV, ICV and KE-data sizes per IANA
 * transform id, plus strongSwan-style display names.
 *
 * Sources:
 *  - RFC 7296 §3.3.2 (transform ids), §3.3.5 (Key Length attribute: required
 *    for variable-length ciphers such as AES, in bits).
 *  - RFC 3602 (AES-CBC: 16-octet IV, 16-octet block).
 *  - RFC 5282 / RFC 4106 (AES-GCM in IKEv2/ESP: 4-octet salt appended to the
 *    key, 8-octet explicit IV, ICV 8/12/16 for ids 18/19/20).
 *  - RFC 7634 (ChaCha20-Poly1305: 32-octet key + 4-octet salt, 8-octet IV,
 *    16-octet ICV; the Key Length attribute MUST NOT be sent).
 *  - RFC 4868 (HMAC-SHA2-*: key = hash output length, ICV = half of it).
 *  - RFC 3526 (MODP 2048/3072), RFC 5903 §7 (ECP KE data = x | y),
 *    RFC 8031 (Curve25519: 32 octets), draft-ietf-ipsecme-ikev2-mlkem and
 *    FIPS 203 Table 3 (ML-KEM ek / ct sizes).
 */
import { PqError } from '../util/errors.js';
import { Encr, IntegId, KeMethod, KeMethodName, PrfId } from '../ikev2/constants.js';
import type { EncrInfo, IntegInfo, KeInfo } from './types.js';

function unsupported(what: string): PqError {
  return new PqError('ERR_UNSUPPORTED', `unsupported ${what}`);
}

// ---------------------------------------------------------------- ENCR

const AES_KEY_BITS = [128, 192, 256] as const;

const GCM_ICV: Record<number, number> = {
  [Encr.AES_GCM_8]: 8,
  [Encr.AES_GCM_12]: 12,
  [Encr.AES_GCM_16]: 16,
};

const encrNames = new Map<string, string>();

/**
 * strongSwan's encryption_algorithm_names + key size suffix. One string per
 * algorithm, shared by every SA that records it (a name built per call is a
 * rope of pieces V8 keeps for the SA's lifetime).
 */
export function encrName(id: number, keyLengthBits?: number): string {
  const k = `${id}/${keyLengthBits}`;
  let n = encrNames.get(k);
  if (n === undefined) encrNames.set(k, (n = buildEncrName(id, keyLengthBits)));
  return n;
}

function buildEncrName(id: number, keyLengthBits?: number): string {
  switch (id) {
    case Encr.AES_CBC:
      return `AES_CBC_${keyLengthBits ?? '?'}`;
    case Encr.AES_GCM_8:
    case Encr.AES_GCM_12:
    case Encr.AES_GCM_16:
      return `AES_GCM_${GCM_ICV[id]}_${keyLengthBits ?? '?'}`;
    case Encr.CHACHA20_POLY1305:
      return 'CHACHA20_POLY1305';
    default:
      return `ENCR_${id}${keyLengthBits !== undefined ? `_${keyLengthBits}` : ''}`;
  }
}

const encrCache = new Map<string, EncrInfo>();

/**
 * Describe an ENCR transform. `keyLengthBits` is the Key Length attribute
 * (RFC 7296 §3.3.5): required for AES (128/192/256), and for ChaCha20-Poly1305
 * either absent (RFC 7634 §2) or 256 (what strongSwan's
 * `chacha20poly1305compat` keyword sends). Throws ERR_UNSUPPORTED otherwise.
 */
export function encrInfo(id: number, keyLengthBits?: number): EncrInfo {
  const cacheKey = `${id}/${keyLengthBits}`;
  const hit = encrCache.get(cacheKey);
  if (hit) return hit;
  let info: EncrInfo;
  if (id === Encr.AES_CBC || GCM_ICV[id] !== undefined) {
    if (keyLengthBits === undefined || !(AES_KEY_BITS as readonly number[]).includes(keyLengthBits)) {
      throw unsupported(`${encrName(id)} key length ${keyLengthBits ?? '(missing)'}`);
    }
    const aead = id !== Encr.AES_CBC;
    info = Object.freeze({
      id,
      name: encrName(id, keyLengthBits),
      aead,
      keySize: keyLengthBits / 8,
      saltSize: aead ? 4 : 0,
      ivSize: aead ? 8 : 16,
      icvSize: aead ? GCM_ICV[id]! : 0,
      // CBC needs whole blocks; GCM is a stream mode, so SK padding may be 0.
      blockSize: aead ? 1 : 16,
    });
  } else if (id === Encr.CHACHA20_POLY1305) {
    if (keyLengthBits !== undefined && keyLengthBits !== 256) {
      throw unsupported(`CHACHA20_POLY1305 key length ${keyLengthBits}`);
    }
    info = Object.freeze({
      id,
      name: encrName(id),
      aead: true,
      keySize: 32,
      saltSize: 4,
      ivSize: 8,
      icvSize: 16,
      blockSize: 1,
    });
  } else {
    throw unsupported(`encryption algorithm ${id}`);
  }
  encrCache.set(cacheKey, info);
  return info;
}

// ---------------------------------------------------------------- INTEG

const INTEG_TABLE: Record<number, IntegInfo> = {
  [IntegId.HMAC_SHA2_256_128]: Object.freeze({ id: IntegId.HMAC_SHA2_256_128, name: 'HMAC_SHA2_256_128', keySize: 32, icvSize: 16 }),
  [IntegId.HMAC_SHA2_384_192]: Object.freeze({ id: IntegId.HMAC_SHA2_384_192, name: 'HMAC_SHA2_384_192', keySize: 48, icvSize: 24 }),
  [IntegId.HMAC_SHA2_512_256]: Object.freeze({ id: IntegId.HMAC_SHA2_512_256, name: 'HMAC_SHA2_512_256', keySize: 64, icvSize: 32 }),
};

/** node:crypto hash name behind each INTEG id (RFC 4868). */
export const INTEG_HASH: Record<number, string> = {
  [IntegId.HMAC_SHA2_256_128]: 'sha256',
  [IntegId.HMAC_SHA2_384_192]: 'sha384',
  [IntegId.HMAC_SHA2_512_256]: 'sha512',
};

export function integInfo(id: number): IntegInfo {
  const info = INTEG_TABLE[id];
  if (!info) throw unsupported(`integrity algorithm ${id}`);
  return info;
}

export function integName(id: number): string {
  return INTEG_TABLE[id]?.name ?? (id === IntegId.NONE ? 'NONE' : `INTEG_${id}`);
}

// ---------------------------------------------------------------- PRF

/** RFC 4868 §2.1.1: PRF key size = output size = hash length. */
export const PRF_TABLE: Record<number, { name: string; hash: string; size: number }> = {
  [PrfId.HMAC_SHA2_256]: { name: 'PRF_HMAC_SHA2_256', hash: 'sha256', size: 32 },
  [PrfId.HMAC_SHA2_384]: { name: 'PRF_HMAC_SHA2_384', hash: 'sha384', size: 48 },
  [PrfId.HMAC_SHA2_512]: { name: 'PRF_HMAC_SHA2_512', hash: 'sha512', size: 64 },
};

export function prfName(id: number): string {
  return PRF_TABLE[id]?.name ?? `PRF_${id}`;
}

// ---------------------------------------------------------------- KE

function ke(method: number, initiatorPublicSize: number, responderPublicSize: number, isKem = false): KeInfo {
  return Object.freeze({
    method,
    name: KeMethodName[method]!,
    isKem,
    initiatorPublicSize,
    responderPublicSize,
    postQuantum: isKem,
  });
}

const KE_TABLE: Record<number, KeInfo> = {
  // RFC 7296 §3.4: MODP KE data is the modulus length, zero-padded.
  [KeMethod.MODP_2048]: ke(KeMethod.MODP_2048, 256, 256),
  [KeMethod.MODP_3072]: ke(KeMethod.MODP_3072, 384, 384),
  // RFC 5903 §7: x | y, each field-length octets, no 0x04 point-format prefix.
  [KeMethod.ECP_256]: ke(KeMethod.ECP_256, 64, 64),
  [KeMethod.ECP_384]: ke(KeMethod.ECP_384, 96, 96),
  [KeMethod.ECP_521]: ke(KeMethod.ECP_521, 132, 132),
  // RFC 8031 §2: the 32-octet u-coordinate.
  [KeMethod.CURVE_25519]: ke(KeMethod.CURVE_25519, 32, 32),
  // FIPS 203 Table 3: ek = 384k + 32, ct = 32(du·k + dv).
  [KeMethod.ML_KEM_512]: ke(KeMethod.ML_KEM_512, 800, 768, true),
  [KeMethod.ML_KEM_768]: ke(KeMethod.ML_KEM_768, 1184, 1088, true),
  [KeMethod.ML_KEM_1024]: ke(KeMethod.ML_KEM_1024, 1568, 1568, true),
};

export function keInfo(method: number): KeInfo {
  const info = KE_TABLE[method];
  if (!info) throw unsupported(`key exchange method ${method}`);
  return info;
}

export function keName(method: number): string {
  return KeMethodName[method] ?? `KE_${method}`;
}

/** Every KE method this build can run, in registry order. */
export function supportedKeMethods(): number[] {
  return Object.keys(KE_TABLE).map(Number);
}
