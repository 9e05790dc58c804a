/**
 * IKE_SA_INIT (RFC 7296 §1.2, §2.6 cookies, §2.23 NAT detection) and the
 * IKE_INTERMEDIATE key exchange rounds (RFC 9242, RFC 9370 §2.2.1,
 * draft-ietf-ipsecme-ikev2-mlkem), both roles.
 *
 * Key schedule (digest §3.1/§3.2):
 *   SKEYSEED    = prf(Ni | Nr, SK(0))                    after IKE_SA_INIT
 *   SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)         after round n
 *   {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
 * Both messages of round n are protected with keys (n-1); IntAuth for them
 * uses SK_pi(n-1)/SK_pr(n-1) (RFC 9242 §3.3.1).
 */
import { ExchangeType, Notify, PayloadType, TransformType, KeMethodName, CertEncoding } from '../constants.js';
import { encodeHashAlgorithms, decodeHashAlgorithms, SUPPORTED_HASHES } from '../../auth/signature.js';
import { certReqHashes } from '../../auth/certs.js';
import type { CertReqPayload, DecodedMessage, KePayload, NoncePayload, Payload, Proposal, SaPayload } from '../codec/types.js';
import { createPrf, encrInfo, integInfo } from '../../crypto/registry.js';
import { KeyExchangeError } from '../../util/errors.js';
import { equal } from '../../util/bytes.js';
import { spiIsZero, type IkeSa, type SentInfo, type RequestHandler } from '../ike-sa.js';
import { toSaProposals, selectProposal, type ChosenAlgorithms, type ProposalSpec } from '../sa/proposal.js';
import { deriveIkeKeys, deriveAddKeKeys, intAuthStep } from '../sa/keymat.js';
import { announces, carriesTranscriptNotify, negotiated, responderPolicy, transcriptNotify } from '../transcript.js';
import { notify, findNotify, notifies, errorNotify, notifyName, requirePayload, natdHash, ProtocolError, P } from '../payload-util.js';

export interface InitHooks {
  /** The IKE SA's keys are final (all key exchanges done): IKE_AUTH may start. */
  keysFinal(sa: IkeSa): void;
}

const NONCE_LEN = 32;
const MAX_INIT_RETRIES = 4;

/** All type-4 methods offered, in preference order (first = our KE guess). */
export function keMethodsOf(proposals: Proposal[]): number[] {
  const out: number[] = [];
  for (const p of proposals) for (const t of p.transforms) if (t.type === TransformType.KE && t.id !== 0 && !out.includes(t.id)) out.push(t.id);
  return out;
}

export function hasAddKe(proposals: Proposal[]): boolean {
  return proposals.some((p) => p.transforms.some((t) => t.type >= TransformType.ADDKE1 && t.type <= TransformType.ADDKE7 && t.id !== 0));
}

function setupAlgorithms(sa: IkeSa, chosen: ChosenAlgorithms): void {
  if (chosen.prf === undefined || chosen.ke === undefined) throw new ProtocolError(Notify.NO_PROPOSAL_CHOSEN, 'selected proposal lacks PRF or KE');
  sa.chosen = chosen;
  sa.prf = createPrf(chosen.prf);
  sa.encr = encrInfo(chosen.encr.id, chosen.encr.keyLength);
  sa.integ = chosen.integ ? integInfo(chosen.integ) : undefined;
  sa.keMethods = [chosen.ke];
}

function deriveInitial(sa: IkeSa, secret: Uint8Array): void {
  const keys = deriveIkeKeys({
    prf: sa.prf!,
    encr: sa.encr!,
    integ: sa.integ,
    sharedSecret: secret,
    ni: sa.ni!,
    nr: sa.nr!,
    spiI: sa.spiI,
    spiR: sa.spiR,
  });
  sa.setKeys(keys);
}

/**
 * RFC 7296 §2.23 NAT detection from the peer's NAT_DETECTION_* notifies. The
 * hashes cover the SPIs as they appear in that message's header: in the
 * IKE_SA_INIT request the responder SPI is still zero.
 */
function detectNat(sa: IkeSa, msg: DecodedMessage): void {
  const srcs = notifies(msg, Notify.NAT_DETECTION_SOURCE_IP);
  const dst = findNotify(msg, Notify.NAT_DETECTION_DESTINATION_IP);
  if (srcs.length > 0 && dst) {
    const expectSrc = natdHash(msg.spiI, msg.spiR, sa.remote.address, sa.remote.port);
    sa.natRemote = !srcs.some((n) => equal(n.data, expectSrc));
    sa.natLocal = !equal(dst.data, natdHash(msg.spiI, msg.spiR, sa.local.address, sa.local.port));
  }
  if (sa.ctx.opts.forceEncap || sa.tunnel.encap) sa.natLocal = true;
  sa.encap = sa.natLocal || sa.natRemote;
}

function natdPayloads(sa: IkeSa): Payload[] {
  // encap=yes: a random source hash makes the peer believe we are behind a
  // NAT, so both sides float to 4500 and encapsulate ESP (RFC 3948).
  const forced = sa.ctx.opts.forceEncap || sa.tunnel.encap;
  const src = forced ? sa.ctx.rng.bytes(20) : natdHash(sa.spiI, sa.spiR, sa.local.address, sa.local.port);
  return [
    notify(Notify.NAT_DETECTION_SOURCE_IP, src),
    notify(Notify.NAT_DETECTION_DESTINATION_IP, natdHash(sa.spiI, sa.spiR, sa.remote.address, sa.remote.port)),
  ];
}

/** SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) and CERTREQ (RFC 7296 §3.7) of the peer. */
function noteAuthCapabilities(sa: IkeSa, msg: DecodedMessage): void {
  const sh = findNotify(msg, Notify.SIGNATURE_HASH_ALGORITHMS);
  if (sh) {
    try {
      sa.peerHashes = decodeHashAlgorithms(sh.data);
    } catch {
      sa.peerHashes = undefined; // malformed list: treat as absent
    }
  }
  if (msg.payloads.some((p) => p.type === PayloadType.CERTREQ)) sa.peerCertReq = true;
}

// ------------------------------------------------------------------ initiator

export function startInitiator(sa: IkeSa, specs: ProposalSpec[], hooks: InitHooks): void {
  const proposals = toSaProposals(specs, 'ike', new Uint8Array(0));
  const methods = keMethodsOf(proposals);
  if (methods.length === 0) throw new ProtocolError(Notify.NO_PROPOSAL_CHOSEN, 'no key exchange method configured');
  sa.ni = sa.ctx.rng.bytes(NONCE_LEN);
  sa.ke = sa.newKe(methods[0]!);
  const addKe = hasAddKe(proposals);
  const request = {
    exchange: ExchangeType.IKE_SA_INIT,
    plain: true,
    build: (): Payload[] => {
      const p: Payload[] = [];
      // RFC 7296 §2.6: the COOKIE notify must be the first payload.
      if (sa.cookie) p.push(notify(Notify.COOKIE, sa.cookie));
      p.push({ type: PayloadType.SA, proposals } as SaPayload);
      p.push({ type: PayloadType.KE, method: sa.ke!.method, data: sa.ke!.getPublic() } as KePayload);
      p.push({ type: PayloadType.NONCE, data: sa.ni! });
      p.push(...natdPayloads(sa));
      if (sa.tunnel.fragmentation !== 'no') p.push(notify(Notify.IKEV2_FRAGMENTATION_SUPPORTED));
      if (addKe) p.push(notify(Notify.INTERMEDIATE_EXCHANGE_SUPPORTED));
      // RFC 7427 §4: announce the hashes we verify signatures with.
      p.push(notify(Notify.SIGNATURE_HASH_ALGORITHMS, encodeHashAlgorithms(SUPPORTED_HASHES)));
      if (announces(sa.tunnel.fullTranscriptAuth ?? 'on')) p.push(transcriptNotify());
      return p;
    },
    onResponse: (msg: DecodedMessage, sent: SentInfo) => onInitResponse(msg, sent),
  };

  const retry = (why: string): void => {
    if (++sa.initRetries > MAX_INIT_RETRIES) throw new Error(`too many IKE_SA_INIT retries (${why})`);
    sa.resetInitExchange();
    sa.queueRequest(request, true);
  };

  const onInitResponse = (msg: DecodedMessage, sent: SentInfo): void => {
    const cookie = findNotify(msg, Notify.COOKIE);
    if (cookie) {
      if (cookie.data.length < 1 || cookie.data.length > 64) throw new Error('invalid COOKIE length');
      sa.log('info', 'responder demands a COOKIE, retrying IKE_SA_INIT');
      sa.cookie = cookie.data;
      retry('cookie');
      return;
    }
    const invalidKe = findNotify(msg, Notify.INVALID_KE_PAYLOAD);
    if (invalidKe) {
      if (invalidKe.data.length !== 2) throw new Error('INVALID_KE_PAYLOAD without a 2-octet method');
      const want = (invalidKe.data[0]! << 8) | invalidKe.data[1]!;
      if (!methods.includes(want) || want === sa.ke!.method) throw new Error(`peer wants unacceptable KE method ${KeMethodName[want] ?? want}`);
      sa.log('info', `peer wants ${KeMethodName[want] ?? want} (INVALID_KE_PAYLOAD), retrying`);
      sa.ke!.destroy();
      sa.ke = sa.newKe(want);
      retry('invalid-ke');
      return;
    }
    const err = errorNotify(msg);
    if (err) throw new Error(`peer answered ${notifyName(err.notifyType)}`);
    // Validate everything before committing any state: this response is
    // unauthenticated and may be forged (then we keep waiting for the real one).
    if (spiIsZero(msg.spiR)) throw new Error('responder SPI is zero');
    const saP = requirePayload<SaPayload>(msg, PayloadType.SA, 'SA');
    if (saP.proposals.length !== 1) throw new Error('responder must choose exactly one proposal');
    const sel = selectProposal(saP.proposals, specs, {});
    if (!sel) throw new Error('responder chose a proposal we did not offer');
    const chosen = sel.chosen;
    const keP = requirePayload<KePayload>(msg, PayloadType.KE, 'KE');
    if (keP.method !== chosen.ke || keP.method !== sa.ke!.method) throw new Error('KE method does not match the chosen proposal');
    const nr = requirePayload<NoncePayload>(msg, PayloadType.NONCE, 'Nonce').data;
    const intermediate = !!findNotify(msg, Notify.INTERMEDIATE_EXCHANGE_SUPPORTED);
    if (chosen.addKe.length > 0 && !intermediate) throw new Error('additional key exchanges chosen without INTERMEDIATE_EXCHANGE_SUPPORTED');
    const policy = sa.tunnel.fullTranscriptAuth ?? 'on';
    const ft = negotiated(announces(policy), carriesTranscriptNotify(msg), policy);
    if (!ft.ok) throw new Error(ft.reason);
    sa.ke!.setPeerPublic(keP.data);
    const secret = sa.ke!.getSharedSecret();
    // Commit.
    sa.fullTranscript = ft.fullTranscript;
    sa.ke!.destroy();
    sa.ke = undefined;
    sa.spiR = msg.spiR.slice();
    setupAlgorithms(sa, chosen);
    sa.nr = nr;
    sa.intermediateSupported = intermediate;
    detectNat(sa, msg);
    sa.peerFragmentation = !!findNotify(msg, Notify.IKEV2_FRAGMENTATION_SUPPORTED);
    sa.fragmentation = sa.peerFragmentation && sa.tunnel.fragmentation !== 'no';
    noteAuthCapabilities(sa, msg);
    sa.initRequest = sent.raw;
    sa.initResponse = msg.raw;
    deriveInitial(sa, secret);
    secret.fill(0);
    // RFC 9242 §3.2 / RFC 7296 §2.23: float to 4500 before the first encrypted exchange.
    if (sa.encap) sa.floatToNatt();
    if (chosen.addKe.length > 0) {
      sa.state = 'INTERMEDIATE';
      chosen.addKe.forEach((m, i) => queueRound(sa, m, i === chosen.addKe.length - 1, hooks));
    } else {
      sa.state = 'AUTHENTICATING';
      hooks.keysFinal(sa);
    }
  };

  sa.queueRequest(request);
}

function queueRound(sa: IkeSa, method: number, last: boolean, hooks: InitHooks): void {
  sa.queueRequest({
    exchange: ExchangeType.IKE_INTERMEDIATE,
    build: () => {
      sa.ke?.destroy();
      sa.ke = sa.newKe(method);
      return [{ type: PayloadType.KE, method, data: sa.ke.getPublic() } as KePayload];
    },
    onResponse: (msg, sent) => {
      const err = errorNotify(msg);
      if (err) throw new Error(`peer answered ${notifyName(err.notifyType)} in IKE_INTERMEDIATE`);
      const keP = requirePayload<KePayload>(msg, PayloadType.KE, 'KE');
      if (keP.method !== method) throw new Error(`IKE_INTERMEDIATE KE method ${keP.method} != ${method}`);
      // draft-ietf-ipsecme-ikev2-mlkem: a ciphertext failing the FIPS 203 §7.3
      // type check fails the exchange; no further messages are sent.
      sa.ke!.setPeerPublic(keP.data);
      const secret = sa.ke!.getSharedSecret();
      sa.ke!.destroy();
      sa.ke = undefined;
      advanceIntAuth(sa, sent.intAuthA!, sent.intAuthP!, msg.intAuthA!, msg.intAuthP!);
      applyAddKe(sa, secret, method);
      if (last) {
        sa.state = 'AUTHENTICATING';
        hooks.keysFinal(sa);
      }
    },
  });
}

/** IntAuth_{i,r}(n) = prf(SK_p{i,r}(n-1), IntAuth_{i,r}(n-1) | A | P): before the key update. */
// Arguments: the initiator's message (the request) first, then the responder's.
function advanceIntAuth(sa: IkeSa, iA: Uint8Array, iP: Uint8Array, rA: Uint8Array, rP: Uint8Array): void {
  sa.intAuthI = intAuthStep(sa.prf!, sa.skPi, sa.intAuthI, iA, iP);
  sa.intAuthR = intAuthStep(sa.prf!, sa.skPr, sa.intAuthR, rA, rP);
}

function applyAddKe(sa: IkeSa, secret: Uint8Array, method: number): void {
  const keys = deriveAddKeKeys({
    prf: sa.prf!,
    encr: sa.encr!,
    integ: sa.integ,
    prev: sa.keys!,
    sharedSecret: secret,
    ni: sa.ni!,
    nr: sa.nr!,
    spiI: sa.spiI,
    spiR: sa.spiR,
  });
  secret.fill(0);
  sa.setKeys(keys);
  sa.keMethods.push(method);
  sa.intermediateDone++;
}

// ------------------------------------------------------------------ responder

export interface InitSelection {
  chosen: ChosenAlgorithms;
  proposal: Proposal;
}

/**
 * Proposal selection for an IKE_SA_INIT request: prefer a proposal whose KE
 * method is the one the initiator guessed, so INVALID_KE_PAYLOAD is only sent
 * when no acceptable proposal uses that method (RFC 7296 §1.2).
 */
export function selectInit(
  offered: Proposal[],
  specs: ProposalSpec[],
  keGuess: number,
): { ok: InitSelection } | { invalidKe: number } | { none: true } {
  const restricted = offered.map((p) => ({ ...p, transforms: p.transforms.filter((t) => t.type !== TransformType.KE || t.id === keGuess) }));
  const r = selectProposal(restricted, specs, {});
  if (r) return { ok: { chosen: r.chosen, proposal: r.proposal } };
  const any = selectProposal(offered, specs, {});
  if (any && any.chosen.ke !== undefined) return { invalidKe: any.chosen.ke };
  return { none: true };
}

/**
 * Respond to a (cookie-checked) IKE_SA_INIT request on a fresh responder SA.
 * Throws ProtocolError for errors that warrant a stateless error response.
 */
export function respondInit(sa: IkeSa, msg: DecodedMessage, raw: Uint8Array, sel: InitSelection, hooks: InitHooks): void {
  const keP = requirePayload<KePayload>(msg, PayloadType.KE, 'KE');
  const nonce = requirePayload<NoncePayload>(msg, PayloadType.NONCE, 'Nonce').data;
  const ftPolicy = responderPolicy(sa.candidates.map((t) => t.fullTranscriptAuth ?? 'on'));
  const ft = negotiated(announces(ftPolicy), carriesTranscriptNotify(msg), ftPolicy);
  if (!ft.ok) throw new ProtocolError(Notify.NO_PROPOSAL_CHOSEN, ft.reason);
  sa.fullTranscript = ft.fullTranscript;
  setupAlgorithms(sa, sel.chosen);
  const ke = sa.newKe(sel.chosen.ke!);
  try {
    ke.setPeerPublic(keP.data);
  } catch (e) {
    ke.destroy();
    if (e instanceof KeyExchangeError) throw new ProtocolError(Notify.INVALID_SYNTAX, `bad KE data: ${e.message}`);
    throw e;
  }
  sa.ni = nonce;
  sa.nr = sa.ctx.rng.bytes(NONCE_LEN);
  detectNat(sa, msg);
  sa.peerFragmentation = !!findNotify(msg, Notify.IKEV2_FRAGMENTATION_SUPPORTED);
  sa.fragmentation = sa.peerFragmentation && sa.tunnel.fragmentation !== 'no';
  sa.intermediateSupported = !!findNotify(msg, Notify.INTERMEDIATE_EXCHANGE_SUPPORTED);
  noteAuthCapabilities(sa, msg);
  const payloads: Payload[] = [
    { type: PayloadType.SA, proposals: [sel.proposal] } as SaPayload,
    { type: PayloadType.KE, method: ke.method, data: ke.getPublic() } as KePayload,
    { type: PayloadType.NONCE, data: sa.nr },
    ...natdPayloads(sa),
  ];
  if (sa.fragmentation) payloads.push(notify(Notify.IKEV2_FRAGMENTATION_SUPPORTED));
  if (sel.chosen.addKe.length > 0) payloads.push(notify(Notify.INTERMEDIATE_EXCHANGE_SUPPORTED));
  payloads.push(notify(Notify.SIGNATURE_HASH_ALGORITHMS, encodeHashAlgorithms(SUPPORTED_HASHES)));
  if (announces(ftPolicy)) payloads.push(transcriptNotify());
  // RFC 7296 §3.7: ask for the peer's certificate when it must authenticate with one.
  const cas = sa.candidates.filter((t) => t.auth === 'pubkey').flatMap((t) => t.caCerts ?? []);
  if (cas.length > 0) payloads.push({ type: PayloadType.CERTREQ, encoding: CertEncoding.X509_SIGNATURE, data: certReqHashes(cas) } as CertReqPayload);
  const secret = ke.getSharedSecret();
  ke.destroy();
  sa.nextRecvMid = 1;
  const sent = sa.respond(msg, raw, payloads, { plain: true });
  sa.initRequest = raw;
  sa.initResponse = sent.raw;
  deriveInitial(sa, secret);
  secret.fill(0);
  if (sel.chosen.addKe.length > 0) {
    sa.state = 'INTERMEDIATE';
  } else {
    sa.state = 'AUTHENTICATING';
    hooks.keysFinal(sa);
  }
  sa.on(ExchangeType.IKE_INTERMEDIATE, intermediateHandler(hooks));
}

/** One IKE_INTERMEDIATE handler per engine (hooks object), shared by its SAs: no closure per SA. */
const intermediateHandlers = new WeakMap<InitHooks, RequestHandler>();
function intermediateHandler(hooks: InitHooks): RequestHandler {
  let h = intermediateHandlers.get(hooks);
  if (!h) intermediateHandlers.set(hooks, (h = (s, m) => onIntermediateRequest(s, m, hooks)));
  return h;
}

function onIntermediateRequest(sa: IkeSa, msg: DecodedMessage, hooks: InitHooks): void {
  const raw = sa.currentRequestRaw;
  if (sa.state !== 'INTERMEDIATE' && sa.state !== 'AUTHENTICATING') {
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    sa.fail('IKE_INTERMEDIATE after IKE_AUTH');
    return;
  }
  const method = sa.chosen!.addKe[sa.intermediateDone];
  const keP = P.ke(msg);
  if (method === undefined) {
    // RFC 9242 allows IKE_INTERMEDIATE for other purposes; without a KE round
    // pending it only feeds IntAuth.
    if (keP) {
      sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
      sa.fail('unexpected KE in IKE_INTERMEDIATE');
      return;
    }
    const sent = sa.respond(msg, raw, []);
    advanceIntAuth(sa, msg.intAuthA!, msg.intAuthP!, sent.intAuthA!, sent.intAuthP!);
    return;
  }
  const bad = (why: string): void => {
    // draft-ietf-ipsecme-ikev2-mlkem: reject and SHOULD answer INVALID_SYNTAX
    // (strongSwan answers NO_PROPOSAL_CHOSEN; initiators must accept both).
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    sa.fail(why);
  };
  if (!keP) return bad('IKE_INTERMEDIATE without KE payload');
  if (keP.method !== method) return bad(`IKE_INTERMEDIATE KE method ${KeMethodName[keP.method] ?? keP.method}, expected ${KeMethodName[method] ?? method}`);
  const ke = sa.newKe(method);
  try {
    ke.setPeerPublic(keP.data); // FIPS 203 §7.2 encapsulation-key checks for ML-KEM
  } catch (e) {
    ke.destroy();
    return bad(`invalid ${KeMethodName[method]} public value: ${(e as Error).message}`);
  }
  const sent = sa.respond(msg, raw, [{ type: PayloadType.KE, method, data: ke.getPublic() } as KePayload]);
  const secret = ke.getSharedSecret();
  ke.destroy();
  advanceIntAuth(sa, msg.intAuthA!, msg.intAuthP!, sent.intAuthA!, sent.intAuthP!);
  applyAddKe(sa, secret, method);
  if (sa.intermediateDone === sa.chosen!.addKe.length) {
    sa.state = 'AUTHENTICATING';
    hooks.keysFinal(sa);
  }
}
