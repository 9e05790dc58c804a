/**
 * IKEv2 transform IDs (RFC 7296 §3.3.2, IANA "Transform Type 1/3") to the
 * Linux crypto API names that XFRM states take (`ip xfrm state ... aead` /
 * `enc` / `auth-trunc`), as strongSwan's kernel_netlink maps them.
 *
 *   ENCR_AES_GCM_16/12/8      rfc4106(gcm(aes))              RFC 4106: key || 4-byte salt, ICV 128/96/64
 *   ENCR_CHACHA20_POLY1305    rfc7539esp(chacha20,poly1305)  RFC 7634: key || 4-byte salt, ICV 128
 *   ENCR_AES_CBC              cbc(aes)                       RFC 3602
 *   ENCR_AES_CTR              rfc3686(ctr(aes))              RFC 3686: key || 4-byte nonce
 *   AUTH_HMAC_SHA2_256_128    hmac(sha256), 128-bit ICV      RFC 4868
 *   AUTH_HMAC_SHA2_384_192    hmac(sha384), 192-bit ICV      RFC 4868
 *   AUTH_HMAC_SHA2_512_256    hmac(sha512), 256-bit ICV      RFC 4868
 *   AUTH_HMAC_SHA1_96         hmac(sha1), 96-bit ICV         RFC 2404
 *
 * The kernel needs the matching crypto modules (gcm, chacha20poly1305,
 * authenc/authencesn, ...): the image ships kernel/crypto whole.
 */
import { Encr, IntegId } from '../../ikev2/constants.js';
import { PqError } from '../../util/errors.js';

export class XfrmError extends PqError {}

/** Transform IDs not (yet) in ikev2/constants.ts. */
const ENCR_AES_CTR = 13;
const AUTH_HMAC_SHA1_96 = 2;

export type XfrmCrypto =
  | { kind: 'aead'; name: string; icvBits: number }
  | { kind: 'enc'; name: string; auth: { name: string; truncBits: number } };

const AEAD: Record<number, { name: string; icvBits: number }> = {
  [Encr.AES_GCM_16]: { name: 'rfc4106(gcm(aes))', icvBits: 128 },
  [Encr.AES_GCM_12]: { name: 'rfc4106(gcm(aes))', icvBits: 96 },
  [Encr.AES_GCM_8]: { name: 'rfc4106(gcm(aes))', icvBits: 64 },
  [Encr.CHACHA20_POLY1305]: { name: 'rfc7539esp(chacha20,poly1305)', icvBits: 128 },
};

const CIPHER: Record<number, string> = {
  [Encr.AES_CBC]: 'cbc(aes)',
  [ENCR_AES_CTR]: 'rfc3686(ctr(aes))',
};

const INTEG: Record<number, { name: string; truncBits: number }> = {
  [IntegId.HMAC_SHA2_256_128]: { name: 'hmac(sha256)', truncBits: 128 },
  [IntegId.HMAC_SHA2_384_192]: { name: 'hmac(sha384)', truncBits: 192 },
  [IntegId.HMAC_SHA2_512_256]: { name: 'hmac(sha512)', truncBits: 256 },
  [AUTH_HMAC_SHA1_96]: { name: 'hmac(sha1)', truncBits: 96 },
};

/** The XFRM algorithms for an SA; throws XfrmError (ERR_XFRM_ALGORITHM) for combinations the kernel path does not take. */
export function xfrmCrypto(encrId: number, integId: number): XfrmCrypto {
  const aead = AEAD[encrId];
  if (aead) {
    // RFC 4106 §8 / RFC 7634 §2: combined-mode ciphers carry their own ICV; an INTEG transform is a negotiation error.
    if (integId !== IntegId.NONE) throw new XfrmError('ERR_XFRM_ALGORITHM', `AEAD transform ${encrId} with integrity transform ${integId}`);
    return { kind: 'aead', ...aead };
  }
  const name = CIPHER[encrId];
  if (!name) throw new XfrmError('ERR_XFRM_ALGORITHM', `encryption transform ${encrId} is not supported by the kernel data plane`);
  const auth = INTEG[integId];
  if (!auth) throw new XfrmError('ERR_XFRM_ALGORITHM', `integrity transform ${integId} is not supported by the kernel data plane`);
  return { kind: 'enc', name, auth };
}
