/**
 * IKE_AUTH with PSK (RFC 7296 §1.2, §2.15) creating the first Child SA
 * (§1.3, traffic selector narrowing §2.9), both roles.
 *
 * AUTH = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)
 *   InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi') [| IntAuth]
 *   ResponderSignedOctets = RealMessage2 | NonceIData | prf(SK_pr, IDr') [| IntAuth]
 *   IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH message ID   (RFC 9242 §3.3.2;
 *   the same blob, i-chain first, for both roles as strongSwan does)
 */
import { ExchangeType, Notify, PayloadType, AuthMethod, CertEncoding } from '../constants.js';
import { buildCertAuth, certsToSend, verifyPeerCertAuth } from '../../auth/peer.js';
import { certFromPayload, certReqHashes } from '../../auth/certs.js';
import type { Certificate } from '../../auth/x509.js';
import type { AuthPayload, CertPayload, CertReqPayload, DecodedMessage, IdPayload, Payload, SaPayload, TsPayload } from '../codec/types.js';
import type { TunnelConfig } from '../../config/types.js';
import type { IkeSa, RequestHandler } from '../ike-sa.js';
import { concat, u32be, ctEqual } from '../../util/bytes.js';
import { pskAuth } from '../sa/keymat.js';
import { authOctets, tunnelAccepts } from '../transcript.js';
import { identityMatches, formatIdentity } from '../sa/identity.js';
import { narrow } from '../sa/ts.js';
import { parseProposalsCached } from '../proposals-cache.js';
import { notify, errorNotify, notifyName, idBody, requirePayload, findNotify, P } from '../payload-util.js';
import { deleteIke } from './informational.js';
import { espOfferForAuth, selectEsp, installChild, configuredTs, tsWithin, spiFromProposal, tsPayload } from './child.js';

export interface AuthHooks {
  established(sa: IkeSa): void;
  /** Peer sent INITIAL_CONTACT: drop other IKE SAs with this peer identity (RFC 7296 §2.4). */
  initialContact(sa: IkeSa): void;
}

function intAuthBlob(sa: IkeSa, mid: number): Uint8Array {
  if (sa.intAuthI === undefined || sa.intAuthR === undefined) return new Uint8Array(0);
  return concat(sa.intAuthI, sa.intAuthR, u32be(mid));
}

function idPayloadFor(type: 35 | 36, t: TunnelConfig): IdPayload {
  return { type, idType: t.localId.idType, data: t.localId.data };
}

function octetsOf(sa: IkeSa, ofInitiator: boolean, id: IdPayload, mid: number): Uint8Array {
  return authOctets({
    ofInitiator,
    fullTranscript: sa.fullTranscript,
    realMessage1: sa.initRequest!,
    realMessage2: sa.initResponse!,
    nonceI: sa.ni!,
    nonceR: sa.nr!,
    prf: sa.prf!,
    skP: ofInitiator ? sa.skPi : sa.skPr,
    idPayloadBody: idBody(id),
    intAuth: intAuthBlob(sa, mid),
  });
}

function authValue(sa: IkeSa, psk: Uint8Array, ofInitiator: boolean, id: IdPayload, mid: number): Uint8Array {
  return pskAuth(sa.prf!, psk, octetsOf(sa, ofInitiator, id, mid));
}

/**
 * Our CERT payloads (end entity first, RFC 7296 §3.6) and AUTH payload:
 * PSK (method 2) or an RFC 7427 signature (method 14; RFC 4754 for ECDSA
 * when the peer announced no hash algorithms).
 */
function ourAuth(sa: IkeSa, t: TunnelConfig, ofInitiator: boolean, id: IdPayload, mid: number): Payload[] {
  if (t.auth === 'psk') return [{ type: PayloadType.AUTH, method: AuthMethod.PSK, data: authValue(sa, t.psk, ofInitiator, id, mid) } as AuthPayload];
  if (!t.localCreds) throw new Error(`tunnel ${t.name}: auth pubkey without a certificate and key`);
  const certs = certsToSend(t.localCreds).map((data) => ({ type: PayloadType.CERT, encoding: CertEncoding.X509_SIGNATURE, data }) as CertPayload);
  const a = buildCertAuth(t.localCreds, octetsOf(sa, ofInitiator, id, mid), sa.peerHashes);
  sa.localAuthScheme = a.scheme;
  return [...certs, { type: PayloadType.AUTH, method: a.method, data: a.authData } as AuthPayload];
}

/** Check the peer's AUTH against tunnel t's policy. `peerIsInitiator` selects the signed octets. */
function peerAuthOk(sa: IkeSa, t: TunnelConfig, msg: DecodedMessage, peerIsInitiator: boolean, id: IdPayload, auth: AuthPayload, mid: number): { ok: true } | { ok: false; why: string } {
  if (t.auth === 'psk') {
    if (auth.method !== AuthMethod.PSK) return { ok: false, why: `peer used AUTH method ${auth.method}, PSK required` };
    return ctEqual(auth.data, authValue(sa, t.psk, peerIsInitiator, id, mid)) ? { ok: true } : { ok: false, why: 'PSK mismatch' };
  }
  if (auth.method === AuthMethod.PSK) return { ok: false, why: 'peer used a PSK, certificate authentication required' };
  const certs: Certificate[] = [];
  for (const p of msg.payloads) {
    if (p.type !== PayloadType.CERT || (p as CertPayload).encoding !== CertEncoding.X509_SIGNATURE) continue;
    try {
      certs.push(certFromPayload(CertEncoding.X509_SIGNATURE, (p as CertPayload).data));
    } catch (e) {
      return { ok: false, why: `unparsable certificate: ${(e as Error).message}` };
    }
  }
  const r = verifyPeerCertAuth({
    method: auth.method,
    authData: auth.data,
    octets: octetsOf(sa, peerIsInitiator, id, mid),
    idType: id.idType,
    idData: id.data,
    certs,
    trustAnchors: t.caCerts ?? [],
    now: sa.ctx.wallClock(),
    allowedSchemes: t.allowedSchemes,
  });
  if (!r.ok) return { ok: false, why: `${r.stage}: ${r.reason} (${r.detail})` };
  sa.remoteAuthScheme = r.scheme;
  return { ok: true };
}

// ------------------------------------------------------------------ initiator

export function startAuth(sa: IkeSa, hooks: AuthHooks): void {
  const t = sa.tunnel;
  const espSpecs = parseProposalsCached(t.espProposals, 'esp');
  let spiIn = 0;
  const ts = configuredTs(sa);
  sa.queueRequest({
    exchange: ExchangeType.IKE_AUTH,
    build: (mid) => {
      const idi = idPayloadFor(PayloadType.IDi, t);
      const p: Payload[] = [idi];
      if (t.remoteId) p.push({ type: PayloadType.IDr, idType: t.remoteId.idType, data: t.remoteId.data } as IdPayload);
      p.push(...ourAuth(sa, t, true, idi, mid));
      if (t.auth === 'pubkey' && t.caCerts?.length) {
        p.push({ type: PayloadType.CERTREQ, encoding: CertEncoding.X509_SIGNATURE, data: certReqHashes(t.caCerts) } as CertReqPayload);
      }
      if (sa.sendInitialContact) p.push(notify(Notify.INITIAL_CONTACT));
      if (spiIn === 0) spiIn = sa.ctx.allocateEspSpi();
      p.push({ type: PayloadType.SA, proposals: espOfferForAuth(espSpecs, spiIn) } as SaPayload);
      p.push(tsPayload(PayloadType.TSi, ts.local), tsPayload(PayloadType.TSr, ts.remote));
      sa.localIdText = t.localId.text;
      return p;
    },
    onResponse: (msg, sent) => {
      const err = errorNotify(msg);
      const idr = P.idr(msg);
      const auth = P.auth(msg);
      if (!idr || !auth) {
        sa.ctx.releaseEspSpi(spiIn);
        throw new Error(err ? `peer answered ${notifyName(err.notifyType)}` : 'IKE_AUTH response without IDr/AUTH');
      }
      if (!identityMatches(t.remoteId, { idType: idr.idType, data: idr.data })) {
        sa.ctx.releaseEspSpi(spiIn);
        throw new Error(`peer identity ${formatIdentity(idr.idType, idr.data)} does not match ${t.remoteId?.text}`);
      }
      const v = peerAuthOk(sa, t, msg, false, idr, auth, sent.mid);
      if (!v.ok) {
        sa.ctx.releaseEspSpi(spiIn);
        throw new Error(`authentication of the responder failed: ${v.why}`);
      }
      sa.remoteIdText = formatIdentity(idr.idType, idr.data);
      sa.state = 'ESTABLISHED';
      sa.establishedAt = sa.ctx.clock.now();
      sa.log('info', `IKE SA established (${sa.keMethods.length} key exchanges)`);
      hooks.established(sa);
      // First Child SA (RFC 7296 §1.2). A child error leaves the IKE SA up.
      if (err) {
        sa.ctx.releaseEspSpi(spiIn);
        sa.lastError = `CHILD_SA not created: peer answered ${notifyName(err.notifyType)}`;
        sa.log('warn', sa.lastError);
        return;
      }
      const saP = P.sa(msg);
      const tsi = P.tsi(msg);
      const tsr = P.tsr(msg);
      if (!saP || !tsi || !tsr) {
        sa.ctx.releaseEspSpi(spiIn);
        sa.log('warn', 'peer created no CHILD_SA (childless)');
        return;
      }
      const sel = saP.proposals.length === 1 ? selectEsp(saP, espSpecs) : undefined;
      if (!sel) return childFailed(sa, spiIn, 'peer selected an ESP proposal we did not offer');
      if (!tsWithin(tsi.selectors, ts.local) || !tsWithin(tsr.selectors, ts.remote)) return childFailed(sa, spiIn, 'peer narrowed traffic selectors outside our configuration');
      installChild(sa, {
        chosen: sel.chosen,
        spiIn,
        spiOut: sel.peerSpi,
        tsLocal: tsi.selectors,
        tsRemote: tsr.selectors,
        ni: sa.ni!,
        nr: sa.nr!,
        secrets: [],
        keMethods: [],
        ifId: sa.ctx.ifIdFor(t.name),
      });
    },
  });
}

function childFailed(sa: IkeSa, spiIn: number, why: string): void {
  sa.ctx.releaseEspSpi(spiIn);
  sa.lastError = why;
  sa.log('warn', `CHILD_SA failed: ${why}; deleting IKE SA`);
  // We cannot tell the peer which SA failed other than by deleting the IKE SA
  // (strongSwan does the same for an unacceptable IKE_AUTH child).
  deleteIke(sa, why);
}

// ------------------------------------------------------------------ responder

/** One handler per engine (hooks object), shared by its SAs: no closure per SA. */
const authHandlers = new WeakMap<AuthHooks, RequestHandler>();

export function registerAuthResponder(sa: IkeSa, hooks: AuthHooks): void {
  let h = authHandlers.get(hooks);
  if (!h) authHandlers.set(hooks, (h = (s, msg) => onAuthRequest(s, msg, hooks)));
  sa.on(ExchangeType.IKE_AUTH, h);
}

function onAuthRequest(sa: IkeSa, msg: DecodedMessage, hooks: AuthHooks): void {
  const raw = sa.currentRequestRaw;
  if (sa.state !== 'AUTHENTICATING') {
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    sa.fail(`IKE_AUTH in state ${sa.state}`);
    return;
  }
  let idi: IdPayload;
  let auth: AuthPayload;
  try {
    idi = requirePayload<IdPayload>(msg, PayloadType.IDi, 'IDi');
    auth = requirePayload<AuthPayload>(msg, PayloadType.AUTH, 'AUTH');
  } catch {
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    sa.fail('IKE_AUTH request without IDi/AUTH');
    return;
  }
  const idrReq = P.idr(msg);
  const peerId = { idType: idi.idType, data: idi.data };
  const peerIdText = formatIdentity(idi.idType, idi.data);
  // Peer config selection by identity (strongSwan: IKE config by address, peer config by ID + auth).
  let tunnel: TunnelConfig | undefined;
  const why: string[] = [];
  for (const t of sa.candidates) {
    if (!identityMatches(t.remoteId, peerId)) continue;
    if (idrReq && !identityMatches(t.localId, { idType: idrReq.idType, data: idrReq.data })) continue;
    if (!tunnelAccepts(t.fullTranscriptAuth ?? 'on', sa.fullTranscript)) {
      why.push(`${t.name}: full IKE_SA_INIT transcript authentication required`);
      continue;
    }
    const v = peerAuthOk(sa, t, msg, true, idi, auth, msg.messageId);
    if (v.ok) {
      tunnel = t;
      break;
    }
    why.push(`${t.name}: ${v.why}`);
  }
  if (!tunnel) {
    sa.respond(msg, raw, [notify(Notify.AUTHENTICATION_FAILED)]);
    sa.fail(`authentication of '${peerIdText}' failed (${why.length ? why.join('; ') : 'no tunnel for this identity'})`);
    return;
  }
  sa.tunnel = tunnel;
  sa.remoteIdText = peerIdText;
  sa.localIdText = tunnel.localId.text;
  const idr = idPayloadFor(PayloadType.IDr, tunnel);
  let out: Payload[];
  try {
    out = [idr, ...ourAuth(sa, tunnel, false, idr, msg.messageId)];
  } catch (e) {
    sa.respond(msg, raw, [notify(Notify.AUTHENTICATION_FAILED)]);
    sa.fail(`cannot authenticate ourselves: ${(e as Error).message}`);
    return;
  }

  // First Child SA.
  const saP = P.sa(msg);
  const tsi = P.tsi(msg);
  const tsr = P.tsr(msg);
  let install: (() => void) | undefined;
  if (saP && tsi && tsr) {
    const espSpecs = parseProposalsCached(tunnel.espProposals, 'esp');
    const sel = selectEsp(saP, espSpecs);
    const ts = configuredTs(sa);
    const nTsi = sel ? narrow(tsi.selectors, tunnel.remoteTs) : [];
    const nTsr = sel ? narrow(tsr.selectors, tunnel.localTs) : [];
    if (!sel) {
      out.push(notify(Notify.NO_PROPOSAL_CHOSEN));
      sa.lastError = 'CHILD_SA: no acceptable ESP proposal';
    } else if (nTsi.length === 0 || nTsr.length === 0) {
      out.push(notify(Notify.TS_UNACCEPTABLE));
      sa.lastError = `CHILD_SA: traffic selectors unacceptable (ours: ${tunnel.localTs.map((x) => x.text).join(',')} === ${tunnel.remoteTs.map((x) => x.text).join(',')})`;
    } else {
      void ts;
      const spiIn = sa.ctx.allocateEspSpi();
      const proposal = { ...sel.proposal, spi: u32be(spiIn) };
      out.push({ type: PayloadType.SA, proposals: [proposal] } as SaPayload);
      out.push({ type: PayloadType.TSi, selectors: nTsi } as TsPayload, { type: PayloadType.TSr, selectors: nTsr } as TsPayload);
      install = () =>
        installChild(sa, {
          chosen: sel.chosen,
          spiIn,
          spiOut: spiFromProposal(sel.proposal),
          tsLocal: nTsr,
          tsRemote: nTsi,
          ni: sa.ni!,
          nr: sa.nr!,
          secrets: [],
          keMethods: [],
          ifId: sa.ctx.ifIdFor(tunnel!.name),
        });
    }
  }
  sa.state = 'ESTABLISHED';
  sa.establishedAt = sa.ctx.clock.now();
  sa.log('info', `IKE SA established with '${peerIdText}' (${sa.keMethods.length} key exchanges)`);
  hooks.established(sa);
  if (findNotify(msg, Notify.INITIAL_CONTACT)) hooks.initialContact(sa);
  // Install before answering: the initiator may send ESP as soon as it has our response.
  install?.();
  if (sa.lastError && !install) sa.log('warn', sa.lastError);
  sa.respond(msg, raw, out);
}
