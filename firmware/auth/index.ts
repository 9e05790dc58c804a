/**
 * Certificate / digital-signature authentication for IKE_AUTH (RFC 7296 §2.15,
 * §3.6-3.8; RFC 7427; RFC 4754; RFC 8420; draft-ietf-ipsecme-ikev2-pqc-auth
 * for ML-DSA-65, experimental). See peer.ts for the engine-facing flow.
 */
export * from './peer.js';
export {
  buildAuthData,
  verifyAuthData,
  verifyAuth,
  parseAuthData,
  algorithmIdentifier,
  encodeHashAlgorithms,
  decodeHashAlgorithms,
  chooseScheme,
  schemeHash,
  schemeKeyType,
  buildLegacyEcdsaAuth,
  verifyLegacyEcdsaAuth,
  legacyEcdsaMethod,
  HashAlgorithm,
  SUPPORTED_HASHES,
  MIN_RSA_BITS,
  type SignatureScheme,
  type VerifyResult,
  type VerifyFailure,
  type ChooseOptions,
} from './signature.js';
export {
  loadCertificate,
  loadCertificates,
  validateChain,
  identityMatchesCert,
  certPayloadData,
  certFromPayload,
  certReqHashes,
  parseCertReq,
  caMatchesCertReq,
  spkiSha1,
  type ChainResult,
  type ChainFailure,
  type ChainOptions,
} from './certs.js';
export { parseCertificate, verifyCertificateSignature, type Certificate, type GeneralName } from './x509.js';
export {
  loadPrivateKey,
  loadPublicKey,
  publicKeyFromSpki,
  generateKey,
  exportPrivateKeyPem,
  exportPublicKeyPem,
  KeyError,
  type KeyType,
  type PrivateKey,
  type PublicKey,
} from './keys.js';
export { encodeDn, formatDn } from './dn.js';
