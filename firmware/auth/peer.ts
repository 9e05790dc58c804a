/**
 * IKE_AUTH certificate authentication in one place, for the engine
 * (firmware/ikev2 tasks/ike-auth): what to send and how to check the peer.
 *
 * Sender side (RFC 7296 §2.15, §3.6-3.8; RFC 7427 §3-4):
 *   CERT payloads  = local end-entity certificate first, then intermediates
 *                    (encoding 4, DER);
 *   AUTH           = method 14 with the scheme chosen from the peer's
 *                    SIGNATURE_HASH_ALGORITHMS, or RFC 4754 method 9/10/11 for an
 *                    ECDSA key when the peer sent no such notify (RFC 7427 §4).
 * Receiver side, in this order: certificate chain to a trust anchor
 * (certs.ts validateChain), IKE identity vs. end-entity certificate
 * (RFC 4945 §3.1), then the AUTH signature with the certificate's key.
 * Every failure maps to AUTHENTICATION_FAILED (RFC 7296 §2.21.2); `stage` and
 * `reason` are for logs only.
 */
import { PqError } from '../util/errors.js';
import { equal } from '../util/bytes.js';
import { AuthMethod } from '../ikev2/constants.js';
import { loadPrivateKey, type PrivateKey } from './keys.js';
import { identityMatchesCert, loadCertificate, loadCertificates, validateChain, type ChainOptions } from './certs.js';
import type { Certificate } from './x509.js';
import { buildAuthData, buildLegacyEcdsaAuth, chooseScheme, verifyAuth, type ChooseOptions, type SignatureScheme } from './signature.js';

export interface LocalCredentials {
  key: PrivateKey;
  cert: Certificate;
  /** Intermediate CA certificates sent after the end-entity certificate. */
  chain: Certificate[];
}

/** Load key + certificate (+ intermediates) from PEM/DER data; the key must belong to the certificate. */
export function loadLocalCredentials(input: { key: Uint8Array | string; cert: Uint8Array | string; chain?: Uint8Array | string; passphrase?: string }): LocalCredentials {
  const key = loadPrivateKey(input.key, input.passphrase);
  const cert = loadCertificate(input.cert);
  if (!cert.publicKey || !equal(cert.publicKey.spki, key.publicKey.spki)) throw new PqError('ERR_CERT', 'private key does not match the certificate');
  return { key, cert, chain: input.chain ? loadCertificates(input.chain) : [] };
}

/** CERT payload bodies' certificate data, end entity first (RFC 7296 §3.6). */
export function certsToSend(creds: LocalCredentials): Uint8Array[] {
  return [creds.cert.der, ...creds.chain.map((c) => c.der)];
}

/**
 * AUTH payload for our side. `peerHashes` = decoded SIGNATURE_HASH_ALGORITHMS
 * of the peer (undefined if it sent none). Throws PqError when no method fits
 * (e.g. Ed25519 or ML-DSA key and a peer without Identity).
 */
export function buildCertAuth(
  creds: LocalCredentials,
  octets: Uint8Array,
  peerHashes: readonly number[] | undefined,
  opts: ChooseOptions = {},
): { method: number; authData: Uint8Array; scheme: SignatureScheme } {
  const pss = creds.key.publicKey.pssOnly ? { ...opts, pssOnly: true } : opts;
  const scheme = chooseScheme(creds.key.type, peerHashes, pss);
  if (scheme) return { method: AuthMethod.DIGITAL_SIGNATURE, authData: buildAuthData(scheme, creds.key, octets), scheme };
  if (!peerHashes && creds.key.type.startsWith('ecdsa-')) {
    const { method, data } = buildLegacyEcdsaAuth(creds.key, octets);
    const hash = creds.key.type === 'ecdsa-p256' ? 'sha256' : creds.key.type === 'ecdsa-p384' ? 'sha384' : 'sha512';
    return { method, authData: data, scheme: `${creds.key.type}-${hash}` as SignatureScheme };
  }
  throw new PqError('ERR_AUTH', `no signature scheme for a ${creds.key.type} key with peer hash algorithms ${JSON.stringify(peerHashes ?? null)}`);
}

export interface PeerAuthInput {
  method: number;
  authData: Uint8Array;
  /** The peer's InitiatorSignedOctets / ResponderSignedOctets (keymat.ts signedOctets). */
  octets: Uint8Array;
  /** The peer's ID payload: type and identification data. */
  idType: number;
  idData: Uint8Array;
  /** Certificates from the peer's CERT payloads in order (end entity first), or a locally configured peer certificate. */
  certs: readonly Certificate[];
  trustAnchors: readonly Certificate[];
  now: Date;
  /** Restrict the accepted schemes (e.g. only 'ml-dsa-65' for a PQ-only policy). */
  allowedSchemes?: readonly SignatureScheme[];
  chain?: ChainOptions;
}

export type PeerAuthResult =
  | { ok: true; cert: Certificate; chain: Certificate[]; scheme: SignatureScheme }
  | { ok: false; stage: 'certificate' | 'chain' | 'identity' | 'signature' | 'policy'; reason: string; detail: string };

/** Check the peer's certificate-based AUTH. Never throws. */
export function verifyPeerCertAuth(a: PeerAuthInput): PeerAuthResult {
  const leaf = a.certs[0];
  if (!leaf) return { ok: false, stage: 'certificate', reason: 'no-certificate', detail: 'peer sent no end-entity certificate' };
  if (!leaf.publicKey) return { ok: false, stage: 'certificate', reason: 'unsupported-algorithm', detail: 'end-entity public key algorithm not supported' };
  const chain = validateChain(leaf, a.certs.slice(1), a.trustAnchors, a.now, a.chain);
  if (!chain.ok) return { ok: false, stage: 'chain', reason: chain.reason, detail: chain.detail };
  if (!identityMatchesCert(a.idType, a.idData, leaf)) {
    return { ok: false, stage: 'identity', reason: 'identity-mismatch', detail: `ID type ${a.idType} does not name the end-entity certificate` };
  }
  const v = verifyAuth(a.method, leaf.publicKey, a.octets, a.authData);
  if (!v.ok) return { ok: false, stage: 'signature', reason: v.reason, detail: v.detail };
  if (a.allowedSchemes && !a.allowedSchemes.includes(v.scheme)) {
    return { ok: false, stage: 'policy', reason: 'scheme-not-allowed', detail: `${v.scheme} is not allowed by policy` };
  }
  return { ok: true, cert: leaf, chain: chain.chain, scheme: v.scheme };
}
