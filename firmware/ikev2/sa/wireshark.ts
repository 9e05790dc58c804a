/**
 * Wireshark key-log records (UAT files), so captures of pqgate traffic can
 * be decrypted.
 *
 * ikev2_decryption_table — wireshark/wireshark epan/dissectors/packet-isakmp.c,
 * `ikev2_uat_flds`: Initiator's SPI, Responder's SPI, SK_ei, SK_er,
 * Encryption algorithm (vs_ikev2_encr_algs), SK_ai, SK_ar, Integrity
 * algorithm (vs_ikev2_auth_algs). Buffers are written as bare hex, the
 * algorithm enums as quoted strings; example records in
 * test/config/ikev2_decryption_table.tmpl, and strongSwan's save-keys plugin
 * (src/libcharon/plugins/save_keys/save_keys_listener.c) writes
 *   "%.16"PRIx64",%.16"PRIx64",%+B,%+B,\"%s\",%+B,%+B,\"%s\""
 * SK_e of AEAD algorithms includes the salt; their SK_a fields are empty and
 * the integrity algorithm is "NONE [RFC4306]".
 *
 * esp_sa — wireshark/wireshark epan/dissectors/packet-ipsec.c (the ESP
 * dissector), UAT fields protocol ("IPv4"/"IPv6"), src IP, dst IP, SPI
 * ("0x%08x"), encryption (esp_encryption_type_vals), encryption key ("0x" +
 * hex; AES-GCM key + 4-octet salt as in RFC 4106), authentication
 * (esp_authentication_type_vals), authentication key. All fields are quoted
 * (test/config/esp_sa.tmpl).
 *
 * Not decryptable by Wireshark: ChaCha20-Poly1305 (neither table lists it).
 * For those SAs a '#' comment line is produced instead (UAT files accept
 * comments), so the table still loads and the keys are still on record.
 */
import { Encr, IntegId } from '../constants.js';
import { bytesToIp, ipFamily, ipToBytes } from '../../util/ip.js';

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const GCM_ICV: Record<number, number> = { [Encr.AES_GCM_8]: 8, [Encr.AES_GCM_12]: 12, [Encr.AES_GCM_16]: 16 };

/** vs_ikev2_encr_algs name, or undefined if Wireshark cannot decrypt it. */
export function wiresharkIkeEncrName(encrId: number, keyBits: number): string | undefined {
  if (![128, 192, 256].includes(keyBits)) return undefined;
  if (encrId === Encr.AES_CBC) return `AES-CBC-${keyBits} [RFC3602]`;
  const icv = GCM_ICV[encrId];
  if (icv !== undefined) return `AES-GCM-${keyBits} with ${icv} octet ICV [RFC5282]`;
  return undefined;
}

/** vs_ikev2_auth_algs name; 0 (AEAD) is "NONE [RFC4306]". */
export function wiresharkIkeIntegName(integId: number): string | undefined {
  switch (integId) {
    case IntegId.NONE:
      return 'NONE [RFC4306]';
    case IntegId.HMAC_SHA2_256_128:
      return 'HMAC_SHA2_256_128 [RFC4868]';
    case IntegId.HMAC_SHA2_384_192:
      return 'HMAC_SHA2_384_192 [RFC4868]';
    case IntegId.HMAC_SHA2_512_256:
      return 'HMAC_SHA2_512_256 [RFC4868]';
  }
  return undefined;
}

/** esp_encryption_type_vals name (AES key size is implied by the key length there). */
export function wiresharkEspEncrName(encrId: number): string | undefined {
  if (encrId === Encr.AES_CBC) return 'AES-CBC [RFC3602]';
  const icv = GCM_ICV[encrId];
  if (icv !== undefined) return `AES-GCM with ${icv} octet ICV [RFC4106]`;
  return undefined;
}

/** esp_authentication_type_vals name; 0 (AEAD, ICV given by the cipher) is "NULL". */
export function wiresharkEspIntegName(integId: number): string | undefined {
  switch (integId) {
    case IntegId.NONE:
      return 'NULL';
    case IntegId.HMAC_SHA2_256_128:
      return 'HMAC-SHA-256-128 [RFC4868]';
    case IntegId.HMAC_SHA2_384_192:
      return 'HMAC-SHA-384-192 [RFC4868]';
    case IntegId.HMAC_SHA2_512_256:
      return 'HMAC-SHA-512-256 [RFC4868]';
  }
  return undefined;
}

/**
 * One ikev2_decryption_table record for an IKE SA. For algorithms
 * Wireshark lacks, a comment line carrying the same data is returned.
 */
export function formatIkev2DecryptionTableLine(a: {
  spiI: Uint8Array;
  spiR: Uint8Array;
  skEi: Uint8Array;
  skEr: Uint8Array;
  encrId: number;
  /** Key Length attribute in bits (AES); ignored for fixed-size ciphers. */
  encrKeyBits?: number;
  skAi: Uint8Array;
  skAr: Uint8Array;
  /** 0 / undefined for AEAD. */
  integId?: number;
}): string {
  const enc = wiresharkIkeEncrName(a.encrId, a.encrKeyBits ?? 0);
  const integ = wiresharkIkeIntegName(a.integId ?? 0);
  const fields = [hex(a.spiI), hex(a.spiR), hex(a.skEi), hex(a.skEr)];
  if (enc === undefined || integ === undefined) {
    return `# not decryptable by Wireshark (ENCR ${a.encrId}, INTEG ${a.integId ?? 0}): ${[...fields, hex(a.skAi), hex(a.skAr)].join(',')}`;
  }
  return `${fields.join(',')},"${enc}",${hex(a.skAi)},${hex(a.skAr)},"${integ}"`;
}

/**
 * One esp_sa record for one direction of a Child SA: the SA with `spi`
 * carries packets from `src` to `dst` (outer addresses).
 */
export function formatEspSaLine(a: {
  spi: number;
  src: string;
  dst: string;
  encrId: number;
  encrKeyBits?: number;
  /** Including the AEAD salt. */
  encrKey: Uint8Array;
  integId: number;
  integKey: Uint8Array;
}): string {
  const fam = ipFamily(a.src);
  const spi = `0x${(a.spi >>> 0).toString(16).padStart(8, '0')}`;
  const enc = wiresharkEspEncrName(a.encrId);
  const integ = wiresharkEspIntegName(a.integId);
  // Wireshark matches the addresses textually against its own formatting: use the canonical form.
  const src = fam ? canonical(a.src) : a.src;
  const dst = fam ? canonical(a.dst) : a.dst;
  if (fam === 0 || enc === undefined || integ === undefined) {
    return `# not decryptable by Wireshark (ENCR ${a.encrId}, INTEG ${a.integId}): ${src},${dst},${spi},0x${hex(a.encrKey)},0x${hex(a.integKey)}`;
  }
  const q = (s: string): string => `"${s}"`;
  return [q(fam === 4 ? 'IPv4' : 'IPv6'), q(src), q(dst), q(spi), q(enc), q(`0x${hex(a.encrKey)}`), q(integ), q(`0x${hex(a.integKey)}`)].join(',');
}

function canonical(addr: string): string {
  return bytesToIp(ipToBytes(addr));
}
