/**
 * IKEv2 codepoints. Sources: RFC 7296 §3, RFC 7383, RFC 9242, RFC 9370,
 * draft-ietf-ipsecme-ikev2-mlkem, IANA "IKEv2 Parameters".
 */

export const ExchangeType = {
  IKE_SA_INIT: 34,
  IKE_AUTH: 35,
  CREATE_CHILD_SA: 36,
  INFORMATIONAL: 37,
  IKE_INTERMEDIATE: 43, // RFC 9242
  IKE_FOLLOWUP_KE: 44, // RFC 9370
} as const;
export type ExchangeType = (typeof ExchangeType)[keyof typeof ExchangeType];

export const PayloadType = {
  NONE: 0,
  SA: 33,
  KE: 34,
  IDi: 35,
  IDr: 36,
  CERT: 37,
  CERTREQ: 38,
  AUTH: 39,
  NONCE: 40,
  NOTIFY: 41,
  DELETE: 42,
  VENDOR: 43,
  TSi: 44,
  TSr: 45,
  SK: 46,
  CP: 47,
  EAP: 48,
  SKF: 53, // RFC 7383
} as const;
export type PayloadType = (typeof PayloadType)[keyof typeof PayloadType];

/** Header flag bits (RFC 7296 §3.1). */
export const HeaderFlag = {
  INITIATOR: 0x08,
  VERSION: 0x10,
  RESPONSE: 0x20,
} as const;

export const ProtocolId = {
  IKE: 1,
  AH: 2,
  ESP: 3,
} as const;

export const TransformType = {
  ENCR: 1,
  PRF: 2,
  INTEG: 3,
  KE: 4,
  ESN: 5,
  ADDKE1: 6,
  ADDKE2: 7,
  ADDKE3: 8,
  ADDKE4: 9,
  ADDKE5: 10,
  ADDKE6: 11,
  ADDKE7: 12,
} as const;

export const Encr = {
  AES_CBC: 12,
  AES_GCM_8: 18,
  AES_GCM_12: 19,
  AES_GCM_16: 20,
  CHACHA20_POLY1305: 28,
} as const;

export const PrfId = {
  HMAC_SHA2_256: 5,
  HMAC_SHA2_384: 6,
  HMAC_SHA2_512: 7,
} as const;

export const IntegId = {
  NONE: 0,
  HMAC_SHA2_256_128: 12,
  HMAC_SHA2_384_192: 13,
  HMAC_SHA2_512_256: 14,
} as const;

/** Key exchange methods (Transform Type 4 registry). */
export const KeMethod = {
  NONE: 0,
  MODP_2048: 14,
  MODP_3072: 15,
  ECP_256: 19,
  ECP_384: 20,
  ECP_521: 21,
  CURVE_25519: 31,
  ML_KEM_512: 35,
  ML_KEM_768: 36,
  ML_KEM_1024: 37,
} as const;

/** Names as shown by `pqgate status` (strongSwan's enum names). */
export const KeMethodName: Record<number, string> = {
  0: 'NONE',
  14: 'MODP_2048',
  15: 'MODP_3072',
  19: 'ECP_256',
  20: 'ECP_384',
  21: 'ECP_521',
  31: 'CURVE_25519',
  35: 'ML_KEM_512',
  36: 'ML_KEM_768',
  37: 'ML_KEM_1024',
};

export const EsnId = { NO: 0, YES: 1 } as const;

/** Transform attribute type for key length (RFC 7296 §3.3.5), always TV form. */
export const ATTR_KEY_LENGTH = 14;

export const IdType = {
  IPV4_ADDR: 1,
  FQDN: 2,
  RFC822_ADDR: 3,
  IPV6_ADDR: 5,
  DER_ASN1_DN: 9,
  DER_ASN1_GN: 10,
  KEY_ID: 11,
} as const;

export const AuthMethod = {
  RSA: 1,
  PSK: 2,
  ECDSA_256: 9,
  ECDSA_384: 10,
  ECDSA_521: 11,
  NULL: 13,
  DIGITAL_SIGNATURE: 14, // RFC 7427
} as const;

export const TsType = {
  IPV4_ADDR_RANGE: 7,
  IPV6_ADDR_RANGE: 8,
} as const;

export const CertEncoding = {
  X509_SIGNATURE: 4,
  CRL: 7,
} as const;

export const CfgType = { REQUEST: 1, REPLY: 2, SET: 3, ACK: 4 } as const;

export const Notify = {
  // errors
  UNSUPPORTED_CRITICAL_PAYLOAD: 1,
  INVALID_IKE_SPI: 4,
  INVALID_MAJOR_VERSION: 5,
  INVALID_SYNTAX: 7,
  INVALID_MESSAGE_ID: 9,
  INVALID_SPI: 11,
  NO_PROPOSAL_CHOSEN: 14,
  INVALID_KE_PAYLOAD: 17,
  AUTHENTICATION_FAILED: 24,
  SINGLE_PAIR_REQUIRED: 34,
  NO_ADDITIONAL_SAS: 35,
  INTERNAL_ADDRESS_FAILURE: 36,
  FAILED_CP_REQUIRED: 37,
  TS_UNACCEPTABLE: 38,
  INVALID_SELECTORS: 39,
  TEMPORARY_FAILURE: 43,
  CHILD_SA_NOT_FOUND: 44,
  STATE_NOT_FOUND: 47,
  // status
  INITIAL_CONTACT: 16384,
  SET_WINDOW_SIZE: 16385,
  ADDITIONAL_TS_POSSIBLE: 16386,
  IPCOMP_SUPPORTED: 16387,
  NAT_DETECTION_SOURCE_IP: 16388,
  NAT_DETECTION_DESTINATION_IP: 16389,
  COOKIE: 16390,
  USE_TRANSPORT_MODE: 16391,
  HTTP_CERT_LOOKUP_SUPPORTED: 16392,
  REKEY_SA: 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED: 16394,
  NON_FIRST_FRAGMENTS_ALSO: 16395,
  MOBIKE_SUPPORTED: 16396,
  MULTIPLE_AUTH_SUPPORTED: 16404,
  EAP_ONLY_AUTHENTICATION: 16417,
  CHILDLESS_IKEV2_SUPPORTED: 16418,
  IKEV2_FRAGMENTATION_SUPPORTED: 16430,
  SIGNATURE_HASH_ALGORITHMS: 16431,
  INTERMEDIATE_EXCHANGE_SUPPORTED: 16438,
  ADDITIONAL_KEY_EXCHANGE: 16441,
  IKE_SA_INIT_FULL_TRANSCRIPT_AUTH: 16447, // draft-ietf-ipsecme-ikev2-downgrade-prevention
} as const;

export const NotifyName: Record<number, string> = Object.fromEntries(Object.entries(Notify).map(([k, v]) => [v, k]));

/** Error notifies are < 16384 (RFC 7296 §3.10.1). */
export function isErrorNotify(type: number): boolean {
  return type < 16384;
}

export const IKE_HEADER_LEN = 28;
export const NON_ESP_MARKER_LEN = 4;
export const IKE_PORT = 500;
export const NATT_PORT = 4500;
