import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { buildCertAuth, certsToSend, loadLocalCredentials, verifyPeerCertAuth, type LocalCredentials } from '../../firmware/auth/peer.js';
import { certFromPayload, certReqHashes, caMatchesCertReq } from '../../firmware/auth/certs.js';
import { encodeHashAlgorithms, decodeHashAlgorithms, SUPPORTED_HASHES } from '../../firmware/auth/signature.js';
import { encodeDn } from '../../firmware/auth/dn.js';
import { exportPrivateKeyPem, toPem, type KeyType } from '../../firmware/auth/keys.js';
import { signedOctets } from '../../firmware/ikev2/sa/keymat.js';
import { createPrf } from '../../firmware/crypto/prf.js';
import { AuthMethod, CertEncoding, IdType } from '../../firmware/ikev2/constants.js';
import { PqError } from '../../firmware/util/errors.js';
import { NOW, key, makeCert } from './helpers.js';
import type { Certificate } from '../../firmware/auth/x509.js';

const prf = createPrf(5); // PRF_HMAC_SHA2_256
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function pki(type: KeyType, slot: number, name: string): { root: Certificate; creds: LocalCredentials } {
  const root = makeCert({ dn: `O=pqgate, CN=${name} Root`, key: key(type, slot), ca: true });
  const int = makeCert({ dn: `O=pqgate, CN=${name} Int`, key: key(type, slot + 1), ca: true, issuer: { cert: root, key: key(type, slot) } });
  const ee = makeCert({ dn: `O=pqgate, CN=${name}`, key: key(type, slot + 2), issuer: { cert: int, key: key(type, slot + 1) }, san: [{ type: 'dns', value: `${name}.example` }] });
  const creds = loadLocalCredentials({ key: exportPrivateKeyPem(key(type, slot + 2)), cert: toPem('CERTIFICATE', ee.der), chain: toPem('CERTIFICATE', int.der) });
  return { root, creds };
}

/** One IKE_AUTH direction: the signer builds CERT + AUTH, the verifier checks them. */
function exchange(signer: LocalCredentials, anchors: Certificate[], peerHashes: number[] | undefined, idData: Uint8Array, opts: { idType?: number; tamper?: boolean } = {}) {
  const idType = opts.idType ?? IdType.FQDN;
  const idBody = new Uint8Array([idType, 0, 0, 0, ...idData]);
  const octets = signedOctets({ realMessage: randomBytes(300), peerNonce: randomBytes(32), prf, skP: randomBytes(32), idPayloadBody: idBody, intAuth: randomBytes(36) });
  const auth = buildCertAuth(signer, octets, peerHashes);
  if (opts.tamper) octets[10]! ^= 1;
  const received = certsToSend(signer).map((d) => certFromPayload(CertEncoding.X509_SIGNATURE, d));
  return { auth, result: verifyPeerCertAuth({ method: auth.method, authData: auth.authData, octets, idType, idData, certs: received, trustAnchors: anchors, now: NOW }) };
}

describe('certificate IKE_AUTH end to end (signedOctets → CERT/AUTH → verification)', () => {
  const ec = pki('ecdsa-p384', 0, 'gw-ec');
  const pq = pki('ml-dsa-65', 0, 'gw-pq');
  const ed = pki('ed25519', 0, 'gw-ed');
  const ours = decodeHashAlgorithms(encodeHashAlgorithms(SUPPORTED_HASHES));

  it('ECDSA P-384 initiator, method 14', () => {
    const { auth, result } = exchange(ec.creds, [ec.root], ours, enc('gw-ec.example'));
    expect(auth).toMatchObject({ method: AuthMethod.DIGITAL_SIGNATURE, scheme: 'ecdsa-p384-sha384' });
    expect(result).toMatchObject({ ok: true, scheme: 'ecdsa-p384-sha384' });
    if (result.ok) expect(result.chain.length).toBe(3);
  });

  it('ML-DSA-65 responder (experimental), method 14 with Identity', () => {
    const { auth, result } = exchange(pq.creds, [pq.root], ours, enc('gw-pq.example'));
    expect(auth.scheme).toBe('ml-dsa-65');
    expect(result).toMatchObject({ ok: true, scheme: 'ml-dsa-65' });
  });

  it('ECDSA key and a peer without SIGNATURE_HASH_ALGORITHMS → RFC 4754 method 10', () => {
    const { auth, result } = exchange(ec.creds, [ec.root], undefined, enc('gw-ec.example'));
    expect(auth.method).toBe(AuthMethod.ECDSA_384);
    expect(result.ok).toBe(true);
  });

  it('ML-DSA / Ed25519 key and a peer without Identity → no usable method', () => {
    expect(() => exchange(pq.creds, [pq.root], [2, 3, 4], enc('gw-pq.example'))).toThrow(PqError);
    expect(() => exchange(ed.creds, [ed.root], undefined, enc('gw-ed.example'))).toThrow(PqError);
  });

  it('failures are reported by stage', () => {
    expect(exchange(ec.creds, [pq.root], ours, enc('gw-ec.example')).result).toMatchObject({ ok: false, stage: 'chain', reason: 'no-issuer' });
    expect(exchange(ec.creds, [ec.root], ours, enc('gw-pq.example')).result).toMatchObject({ ok: false, stage: 'identity' });
    expect(exchange(ec.creds, [ec.root], ours, encodeDn('O=pqgate, CN=gw-ec'), { idType: IdType.DER_ASN1_DN }).result.ok).toBe(true);
    expect(exchange(ec.creds, [ec.root], ours, enc('gw-ec.example'), { tamper: true }).result).toMatchObject({ ok: false, stage: 'signature', reason: 'bad-signature' });
    expect(verifyPeerCertAuth({ method: 14, authData: new Uint8Array(3), octets: new Uint8Array(1), idType: 2, idData: enc('x'), certs: [], trustAnchors: [ec.root], now: NOW })).toMatchObject({
      ok: false,
      stage: 'certificate',
    });
  });

  it('a PQ-only policy refuses a valid classical signature', () => {
    const idData = enc('gw-ec.example');
    const idBody = new Uint8Array([IdType.FQDN, 0, 0, 0, ...idData]);
    const octets = signedOctets({ realMessage: randomBytes(100), peerNonce: randomBytes(32), prf, skP: randomBytes(32), idPayloadBody: idBody });
    const auth = buildCertAuth(ec.creds, octets, ours);
    const certs = certsToSend(ec.creds).map((d) => certFromPayload(4, d));
    const base = { method: auth.method, authData: auth.authData, octets, idType: IdType.FQDN, idData, certs, trustAnchors: [ec.root], now: NOW };
    expect(verifyPeerCertAuth({ ...base, allowedSchemes: ['ml-dsa-65'] })).toMatchObject({ ok: false, stage: 'policy' });
    expect(verifyPeerCertAuth(base).ok).toBe(true);
  });

  it('CERTREQ of our anchors selects the right peer CA', () => {
    const req = certReqHashes([pq.root, ec.root]);
    expect(caMatchesCertReq(ec.root, req)).toBe(true);
    expect(caMatchesCertReq(ed.root, req)).toBe(false);
  });

  it('loadLocalCredentials refuses a key that is not the certificate\'s', () => {
    expect(() => loadLocalCredentials({ key: exportPrivateKeyPem(key('ecdsa-p384', 0)), cert: toPem('CERTIFICATE', ec.creds.cert.der) })).toThrow(/does not match/);
  });
});
