/**
 * strongSwan proposal keywords (the subset this build implements) and the
 * `default` proposals.
 *
 * Source of the spellings: strongSwan
 * src/libstrongswan/crypto/proposal/proposal_keywords_static.txt and the
 * strongswan-docs "Proposals" page (keX_ prefixes for RFC 9370 additional key
 * exchanges; mlkem512/768/1024 = KE methods 35/36/37).
 */
import { Encr, EsnId, IntegId, KeMethod, PrfId, TransformType } from '../constants.js';

export interface Keyword {
  type: number; // TransformType
  id: number;
  keyLength?: number;
}

const kw: Record<string, Keyword> = {};

function add(names: string[], type: number, id: number, keyLength?: number): void {
  for (const n of names) kw[n] = keyLength === undefined ? { type, id } : { type, id, keyLength };
}

// ENCR, AES-CBC (RFC 3602). "aes" alone is 128 bits, as in strongSwan.
add(['aes', 'aes128'], TransformType.ENCR, Encr.AES_CBC, 128);
add(['aes192'], TransformType.ENCR, Encr.AES_CBC, 192);
add(['aes256'], TransformType.ENCR, Encr.AES_CBC, 256);
// AES-GCM (RFC 4106/5282): ICV length as octets (8/12/16) or bits (64/96/128);
// no suffix means 16.
for (const bits of [128, 192, 256]) {
  add([`aes${bits}gcm8`, `aes${bits}gcm64`], TransformType.ENCR, Encr.AES_GCM_8, bits);
  add([`aes${bits}gcm12`, `aes${bits}gcm96`], TransformType.ENCR, Encr.AES_GCM_12, bits);
  add([`aes${bits}gcm16`, `aes${bits}gcm128`, `aes${bits}gcm`], TransformType.ENCR, Encr.AES_GCM_16, bits);
}
// ChaCha20-Poly1305 (RFC 7634): no Key Length attribute; the "compat" keyword
// sends 256 for old peers that insist on one.
add(['chacha20poly1305'], TransformType.ENCR, Encr.CHACHA20_POLY1305);
add(['chacha20poly1305compat'], TransformType.ENCR, Encr.CHACHA20_POLY1305, 256);
// INTEG (RFC 4868)
add(['sha256', 'sha2_256'], TransformType.INTEG, IntegId.HMAC_SHA2_256_128);
add(['sha384', 'sha2_384'], TransformType.INTEG, IntegId.HMAC_SHA2_384_192);
add(['sha512', 'sha2_512'], TransformType.INTEG, IntegId.HMAC_SHA2_512_256);
// PRF (RFC 4868)
add(['prfsha256'], TransformType.PRF, PrfId.HMAC_SHA2_256);
add(['prfsha384'], TransformType.PRF, PrfId.HMAC_SHA2_384);
add(['prfsha512'], TransformType.PRF, PrfId.HMAC_SHA2_512);
// KE (type 4; the same names are valid after a keN_ prefix)
add(['none', 'modpnone'], TransformType.KE, KeMethod.NONE);
add(['modp2048'], TransformType.KE, KeMethod.MODP_2048);
add(['modp3072'], TransformType.KE, KeMethod.MODP_3072);
add(['ecp256'], TransformType.KE, KeMethod.ECP_256);
add(['ecp384'], TransformType.KE, KeMethod.ECP_384);
add(['ecp521'], TransformType.KE, KeMethod.ECP_521);
add(['x25519', 'curve25519'], TransformType.KE, KeMethod.CURVE_25519);
add(['mlkem512'], TransformType.KE, KeMethod.ML_KEM_512);
add(['mlkem768'], TransformType.KE, KeMethod.ML_KEM_768);
add(['mlkem1024'], TransformType.KE, KeMethod.ML_KEM_1024);
// ESN (ESP only)
add(['esn'], TransformType.ESN, EsnId.YES);
add(['noesn'], TransformType.ESN, EsnId.NO);

export const KEYWORDS: Readonly<Record<string, Keyword>> = Object.freeze(kw);

/**
 * Keywords strongSwan knows but this build deliberately does not implement
 * (legacy or unimplemented primitives): reported as "not supported" rather
 * than "unknown", so a pasted strongSwan config gets a useful message.
 */
export const UNSUPPORTED_KEYWORD =
  /^(null|des|3des|blowfish\d*|cast128|serpent\d*|twofish\d*|camellia\w*|aes\d*(ctr|ccm\d*|gmac)|sha|sha1|sha1_160|sha256_96|sha2_256_96|md5\w*|aesxcbc|camelliaxcbc|aescmac|prf(sha1|md5|aesxcbc|camelliaxcbc|aescmac)|modpnull|modp(768|1024|1536|4096|6144|8192)|modp\d+s\d+|ecp(192|224)|ecp\d+bp|x448|curve448|ntru\w*|kyber\d|ntrup\d|ntrur\d|saber\d|bike\d|frodo\w*|hqc\d|sike\d)$/;

/** AEAD ENCR ids (RFC 5282 GCM 18-20, CCM 14-16; RFC 7634 ChaCha20-Poly1305 28). */
export function isAeadEncr(id: number): boolean {
  return id === 14 || id === 15 || id === 16 || id === 18 || id === 19 || id === 20 || id === 28;
}

/** Map an integrity algorithm to the PRF of the same hash (strongSwan check_proposal()). */
export const INTEG_TO_PRF: Readonly<Record<number, number>> = Object.freeze({
  [IntegId.HMAC_SHA2_256_128]: PrfId.HMAC_SHA2_256,
  [IntegId.HMAC_SHA2_384_192]: PrfId.HMAC_SHA2_384,
  [IntegId.HMAC_SHA2_512_256]: PrfId.HMAC_SHA2_512,
});

/**
 * `default`, modelled on strongSwan's proposal_create_default_aead() and
 * proposal_create_default() restricted to what this build implements: an AEAD
 * proposal first, then a classic one. KE order: ECC first, then MODP 3072,
 * then MODP 2048 (strongSwan's three rounds). No ML-KEM, like strongSwan's
 * default; hybrid needs an explicit proposal.
 */
const DEFAULT_KE = 'ecp256-ecp384-ecp521-x25519-modp3072-modp2048';
export const DEFAULT_PROPOSALS: Readonly<Record<'ike' | 'esp', readonly string[]>> = Object.freeze({
  ike: [
    `aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-aes128gcm12-aes192gcm12-aes256gcm12-aes128gcm8-aes192gcm8-aes256gcm8-prfsha256-prfsha384-prfsha512-${DEFAULT_KE}`,
    `aes128-aes192-aes256-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-${DEFAULT_KE}`,
  ],
  esp: ['aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-noesn', 'aes128-aes192-aes256-sha256-sha384-sha512-noesn'],
});
