/**
 * Object identifiers used by the auth and PKI code, with their sources.
 */
export const OID = {
  // Public key algorithms
  rsaEncryption: '1.2.840.113549.1.1.1', // RFC 8017 A.1
  rsassaPss: '1.2.840.113549.1.1.10', // RFC 4055 §3.1 / RFC 8017 A.2.3
  mgf1: '1.2.840.113549.1.1.8', // RFC 8017 B.2.1
  ecPublicKey: '1.2.840.10045.2.1', // RFC 5480 §2.1.1
  ed25519: '1.3.101.112', // RFC 8410 §3
  mlDsa65: '2.16.840.1.101.3.4.3.18', // RFC 9881 §2 (id-ml-dsa-65; also its signature algorithm)
  // Named curves (RFC 5480 §2.1.1.1)
  secp256r1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
  // Signature algorithms
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11', // RFC 4055 §5
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  ecdsaWithSha256: '1.2.840.10045.4.3.2', // RFC 5758 §3.2
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  // Hash algorithms (RFC 5758 §2 / NIST CSOR)
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  // Certificate extensions (RFC 5280 §4.2.1)
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  policyConstraints: '2.5.29.36',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  inhibitAnyPolicy: '2.5.29.54',
  // Extended key usages
  ekuServerAuth: '1.3.6.1.5.5.7.3.1', // RFC 5280 §4.2.1.12
  ekuClientAuth: '1.3.6.1.5.5.7.3.2',
  ekuIkeIntermediate: '1.3.6.1.5.5.8.2.2', // RFC 4945 §5.1.3.12 (iKEIntermediate)
  ekuIpsecIke: '1.3.6.1.5.5.7.3.17', // RFC 4945 / RFC 4945bis id-kp-ipsecIKE
} as const;

/** keyUsage bits (RFC 5280 §4.2.1.3), as a mask where bit i = ASN.1 named bit i. */
export const KeyUsage = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
} as const;
