/**
 * CREATE_CHILD_SA (RFC 7296 §1.3, §2.8) with additional key exchanges
 * (RFC 9370 §2.2.4): Child SA rekeys (with PFS and ML-KEM rounds), new
 * Child SAs, and IKE SA rekeys repeating every key exchange, both roles,
 * including simultaneous-rekey collisions (RFC 7296 §2.8.1/§2.8.2).
 *
 *   Child:  KEYMAT   = prf+(SK_d, [SK(0) |] Ni | Nr [| SK(1) | ... | SK(n)])
 *   IKE:    SKEYSEED = prf(SK_d(old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))
 *           {SK_d | ...} = prf+(SKEYSEED, Ni | Nr | SPIi' | SPIr')
 */
import { ExchangeType, Notify, PayloadType, ProtocolId, KeMethodName } from '../constants.js';
import type { DecodedMessage, DeletePayload, KePayload, NoncePayload, Payload, SaPayload, TrafficSelector, TsPayload } from '../codec/types.js';
import type { KeyExchange } from '../../crypto/types.js';
import { createPrf, encrInfo, integInfo } from '../../crypto/registry.js';
import { u32be, wipe } from '../../util/bytes.js';
import type { IkeSa, RequestHandler } from '../ike-sa.js';
import type { ChildSa } from '../child-sa.js';
import { parseProposalsCached } from '../proposals-cache.js';
import { toSaProposals, verifySelectedProposal, keMethodsInOrder, initialKeMethod, type ChosenAlgorithms } from '../sa/proposal.js';
import { deriveRekeyedIkeKeys } from '../sa/keymat.js';
import { narrow } from '../sa/ts.js';
import { notify, findNotify, errorNotify, notifyName, P } from '../payload-util.js';
import { installChild, removeChild, selectEsp, spiFromProposal, tsWithin, jitter } from './child.js';
import { selectInit } from './ike-init.js';
import { deleteIke } from './informational.js';
import { runFollowups, newLink, storeFollowup, onFollowupRequest } from './followup.js';

export interface RekeyHooks {
  newIkeSpi(): Uint8Array;
  /** A registered, handler-equipped IKE SA next to `old` (same tunnel and endpoints). */
  spawnIkeSa(old: IkeSa, role: 'initiator' | 'responder', spiI: Uint8Array, spiR: Uint8Array): IkeSa;
  /** The new IKE SA is established (keys final): key log, lifetimes. */
  rekeyedIke(newSa: IkeSa): void;
}

const NONCE_LEN = 32;
const RETRY_MS = 10_000;

/**
 * Retry delay after a failed rekey: 10 s, but never more than a quarter of
 * the time left before the hard lifetime (short lifetimes must still rekey).
 */
function retryDelay(now: number, expireAt: number | undefined, base = RETRY_MS): number {
  if (expireAt === undefined) return base;
  return Math.max(200, Math.min(base, (expireAt - now) / 4));
}

function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** RFC 7296 §2.8.1: does the lowest of the four nonces belong to `ours`? */
function oursHasLowest(ours: Uint8Array[], theirs: Uint8Array[]): boolean {
  const all = [...ours.map((n) => ({ n, o: true })), ...theirs.map((n) => ({ n, o: false }))];
  all.sort((x, y) => cmpBytes(x.n, y.n));
  return all[0]!.o;
}

/** One handler per engine (hooks object), shared by its SAs: no closure per SA. */
const createChildHandlers = new WeakMap<RekeyHooks, RequestHandler>();

export function registerCreateChild(sa: IkeSa, hooks: RekeyHooks): void {
  let h = createChildHandlers.get(hooks);
  if (!h) createChildHandlers.set(hooks, (h = (s, m) => onCreateChildRequest(s, m, hooks)));
  sa.on(ExchangeType.CREATE_CHILD_SA, h);
  sa.on(ExchangeType.IKE_FOLLOWUP_KE, onFollowupRequest);
}

// ================================================================== deletes

/** Delete one Child SA: INFORMATIONAL { D(ESP, our inbound SPI) }. */
export function deleteChild(sa: IkeSa, child: ChildSa, why: string): void {
  if (child.state === 'DELETING' || child.state === 'DELETED') return;
  const prev = child.state;
  child.state = 'DELETING';
  sa.log('info', `deleting CHILD_SA {${child.reqid}} ${child.spiIn.toString(16)}_i (${why})`);
  void prev;
  sa.queueRequest({
    exchange: ExchangeType.INFORMATIONAL,
    build: () => [{ type: PayloadType.DELETE, protocol: ProtocolId.ESP, spiSize: 4, spis: [u32be(child.spiIn)] } as DeletePayload],
    onResponse: () => removeChild(sa, child),
  });
}

// ================================================================== child: initiator

/** Start a rekey of `child`; false if it cannot start now (the caller re-arms its timer). */
export function rekeyChild(sa: IkeSa, child: ChildSa): boolean {
  // Not while the peer is already rekeying it (its rekey will replace it).
  if (child.state !== 'INSTALLED' || sa.state !== 'ESTABLISHED' || sa.rekeyingIke || child.peerRekey) return false;
  child.state = 'REKEYING';
  sa.log('info', `rekeying CHILD_SA {${child.reqid}}`);
  createChild(sa, { rekey: child, tsLocal: child.tsLocal, tsRemote: child.tsRemote });
  return true;
}

export function createChild(sa: IkeSa, opts: { rekey?: ChildSa; tsLocal: TrafficSelector[]; tsRemote: TrafficSelector[]; keMethod?: number }): void {
  const specs = parseProposalsCached(sa.tunnel.espProposals, 'esp');
  const method = opts.keMethod ?? initialKeMethod(specs);
  let spiIn = 0;
  let ni: Uint8Array = new Uint8Array(0);
  let ke: KeyExchange | undefined;
  const old = opts.rekey;
  const abort = (why: string, retryMs?: number): void => {
    if (spiIn) sa.ctx.releaseEspSpi(spiIn);
    ke?.destroy();
    sa.lastError = `CHILD_SA ${old ? 'rekey' : 'creation'} failed: ${why}`;
    sa.log('warn', sa.lastError);
    if (old && old.state === 'REKEYING' && old.peerRekey) {
      // Our rekey failed but the peer's rekey of the same Child SA went through: it wins.
      old.collisionWinner = 'theirs';
      old.state = 'REKEYED';
      if (old.peerRekey.child) old.successor = old.peerRekey.child;
      return;
    }
    if (old && old.state === 'REKEYING') {
      old.state = 'INSTALLED';
      if (retryMs !== undefined) {
        const d = retryDelay(sa.ctx.clock.now(), old.expireAt, retryMs);
        old.rekeyAt = sa.ctx.clock.now() + d + jitter(sa, d);
      }
    }
  };
  sa.queueRequest({
    exchange: ExchangeType.CREATE_CHILD_SA,
    build: () => {
      if (!spiIn) spiIn = sa.ctx.allocateEspSpi();
      ni = sa.ctx.rng.bytes(NONCE_LEN);
      ke?.destroy();
      ke = method !== undefined ? sa.newKe(method) : undefined;
      const p: Payload[] = [];
      if (old) p.push(notify(Notify.REKEY_SA, new Uint8Array(0), ProtocolId.ESP, u32be(old.spiIn)));
      p.push({ type: PayloadType.SA, proposals: toSaProposals(specs, 'esp', u32be(spiIn)) } as SaPayload);
      p.push({ type: PayloadType.NONCE, data: ni } as NoncePayload);
      if (ke) p.push({ type: PayloadType.KE, method: ke.method, data: ke.getPublic() } as KePayload);
      p.push({ type: PayloadType.TSi, selectors: opts.tsLocal } as TsPayload, { type: PayloadType.TSr, selectors: opts.tsRemote } as TsPayload);
      return p;
    },
    onResponse: (msg) => {
      const err = errorNotify(msg);
      if (err) {
        if (err.notifyType === Notify.INVALID_KE_PAYLOAD && err.data.length === 2) {
          const want = (err.data[0]! << 8) | err.data[1]!;
          if (keMethodsInOrder(specs).includes(want) && want !== method) {
            if (spiIn) sa.ctx.releaseEspSpi(spiIn);
            ke?.destroy();
            createChild(sa, { ...opts, keMethod: want });
            return;
          }
        }
        if (err.notifyType === Notify.CHILD_SA_NOT_FOUND && old) {
          // The peer deleted it meanwhile (rekey vs. delete collision, RFC 7296 §2.8.1).
          abort('peer no longer has the Child SA');
          removeChild(sa, old);
          return;
        }
        const transient = err.notifyType === Notify.TEMPORARY_FAILURE;
        return abort(`peer answered ${notifyName(err.notifyType)}`, transient ? 2_000 : RETRY_MS);
      }
      const saP = P.sa(msg);
      const nonce = P.nonce(msg);
      const tsi = P.tsi(msg);
      const tsr = P.tsr(msg);
      if (!saP || !nonce || !tsi || !tsr) return abort('response lacks SA, Nonce or TS', RETRY_MS);
      const chosen = verifySelectedProposal(saP.proposals, specs);
      if (!chosen) return abort('peer selected a proposal we did not offer', RETRY_MS);
      const peerSpi = spiFromProposal(saP.proposals[0]!);
      if (!tsWithin(tsi.selectors, opts.tsLocal) || !tsWithin(tsr.selectors, opts.tsRemote)) return abort('peer widened the traffic selectors', RETRY_MS);
      const secrets: Uint8Array[] = [];
      if (chosen.ke !== undefined) {
        const keP = P.ke(msg);
        if (!keP || !ke || keP.method !== chosen.ke || ke.method !== chosen.ke) return abort('KE payload does not match the chosen proposal', RETRY_MS);
        try {
          ke.setPeerPublic(keP.data);
        } catch (e) {
          abort(`invalid KE data: ${(e as Error).message}`);
          return deleteIke(sa, 'invalid KE data in CREATE_CHILD_SA');
        }
        secrets.push(ke.getSharedSecret());
      }
      ke?.destroy();
      const nr = nonce.data;
      const finish = (s: Uint8Array[]): void => {
        if (!sa.alive) return wipe(...s);
        // Keys come from this SA's SK_d, but the Child SA belongs to whichever
        // IKE SA now holds its siblings (the IKE SA may have been rekeyed).
        const child = installChild(sa, {
          chosen,
          spiIn,
          spiOut: peerSpi,
          tsLocal: tsi.selectors,
          tsRemote: tsr.selectors,
          ni,
          nr,
          secrets: s,
          keMethods: kesOf(chosen),
          ifId: sa.ctx.ifIdFor(sa.tunnel.name),
          reqid: old?.reqid,
          rekeys: old ? old.rekeys + 1 : 0,
        });
        wipe(...s);
        if (old) completeChildRekey(sa, old, child, [ni, nr]);
      };
      if (chosen.addKe.length > 0) {
        const link = findNotify(msg, Notify.ADDITIONAL_KEY_EXCHANGE);
        if (!link) return abort('additional key exchanges chosen without ADDITIONAL_KEY_EXCHANGE', RETRY_MS);
        runFollowups(sa, chosen.addKe, link.data, secrets, finish, (why) => {
          abort(why);
          deleteIke(sa, why);
        });
      } else finish(secrets);
    },
  });
}

function kesOf(c: ChosenAlgorithms): number[] {
  return [...(c.ke !== undefined ? [c.ke] : []), ...c.addKe];
}

/** The live IKE SA that now holds this lineage's Child SAs (after IKE rekeys). */
export function currentOwner(sa: IkeSa): IkeSa {
  let o = sa;
  while (o.successor && o.successor.alive) o = o.successor;
  return o;
}

function completeChildRekey(origin: IkeSa, old: ChildSa, ours: ChildSa, nonces: Uint8Array[]): void {
  const sa = currentOwner(origin);
  const theirs = old.peerRekey;
  if (theirs) {
    // Simultaneous rekey: the SA created by the exchange with the lowest
    // nonce is redundant; its creator deletes it, and the creator of the
    // survivor deletes the old SA (RFC 7296 §2.8.1). The nonces of the peer's
    // exchange are known from its request even if its SA is not keyed yet.
    if (oursHasLowest(nonces, theirs.nonces)) {
      sa.log('info', `CHILD_SA {${old.reqid}} rekey collision: ours is redundant`);
      old.collisionWinner = 'theirs';
      old.state = 'REKEYED';
      if (theirs.child) old.successor = theirs.child;
      ours.successor = theirs.child;
      deleteChild(sa, ours, 'redundant after rekey collision');
      return;
    }
    sa.log('info', `CHILD_SA {${old.reqid}} rekey collision: ours survives`);
    old.collisionWinner = 'ours';
  }
  old.successor = ours;
  old.state = 'REKEYED';
  old.rekeyAt = undefined;
  deleteChild(sa, old, 'rekeyed');
}

// ================================================================== IKE: initiator

/** Start an IKE SA rekey; false if it cannot start now (the caller re-arms its timer). */
export function rekeyIke(sa: IkeSa, hooks: RekeyHooks, keMethod?: number): boolean {
  if (sa.state !== 'ESTABLISHED' || (sa.rekeyingIke && keMethod === undefined) || sa.successor || sa.peerIkeRekey) return false;
  const specs = parseProposalsCached(sa.tunnel.ikeProposals, 'ike');
  const method = keMethod ?? initialKeMethod(specs)!;
  const newSpiI = hooks.newIkeSpi();
  let ni: Uint8Array = new Uint8Array(0);
  let ke: KeyExchange | undefined;
  sa.rekeyingIke = { nonces: [] };
  sa.log('info', 'rekeying IKE SA');
  const abort = (why: string, retryMs: number): void => {
    ke?.destroy();
    sa.rekeyingIke = undefined;
    if (sa.peerIkeRekey) {
      // The peer's rekey of this IKE SA went through while ours failed: it wins.
      sa.ikeCollisionWinner = 'theirs';
      if (sa.peerIkeRekey.sa) completeIkeRekey(sa, sa.peerIkeRekey.sa, false);
      return;
    }
    sa.lastError = `IKE SA rekey failed: ${why}`;
    sa.log('warn', sa.lastError);
    const d = retryDelay(sa.ctx.clock.now(), sa.expireAt, retryMs);
    sa.rekeyAt = sa.ctx.clock.now() + d + jitter(sa, d);
  };
  sa.queueRequest({
    exchange: ExchangeType.CREATE_CHILD_SA,
    build: () => {
      ni = sa.ctx.rng.bytes(NONCE_LEN);
      ke?.destroy();
      ke = sa.newKe(method);
      return [
        { type: PayloadType.SA, proposals: toSaProposals(specs, 'ike', newSpiI) } as SaPayload,
        { type: PayloadType.NONCE, data: ni } as NoncePayload,
        { type: PayloadType.KE, method, data: ke.getPublic() } as KePayload,
      ];
    },
    onResponse: (msg) => {
      const err = errorNotify(msg);
      if (err) {
        if (err.notifyType === Notify.INVALID_KE_PAYLOAD && err.data.length === 2) {
          const want = (err.data[0]! << 8) | err.data[1]!;
          if (keMethodsInOrder(specs).includes(want) && want !== method) {
            ke?.destroy();
            void rekeyIke(sa, hooks, want);
            return;
          }
        }
        return abort(`peer answered ${notifyName(err.notifyType)}`, err.notifyType === Notify.TEMPORARY_FAILURE ? 2_000 : RETRY_MS);
      }
      const saP = P.sa(msg);
      const nonce = P.nonce(msg);
      const keP = P.ke(msg);
      if (!saP || !nonce || !keP) return abort('response lacks SA, Nonce or KE', RETRY_MS);
      const chosen = verifySelectedProposal(saP.proposals, specs);
      const newSpiR = saP.proposals[0]?.spi;
      if (!chosen || !newSpiR || newSpiR.length !== 8) return abort('peer selected a proposal we did not offer', RETRY_MS);
      if (keP.method !== chosen.ke || keP.method !== method) return abort('KE method does not match the chosen proposal', RETRY_MS);
      try {
        ke!.setPeerPublic(keP.data);
      } catch (e) {
        abort(`invalid KE data: ${(e as Error).message}`, RETRY_MS);
        return deleteIke(sa, 'invalid KE data in IKE rekey');
      }
      const secrets = [ke!.getSharedSecret()];
      ke!.destroy();
      const nr = nonce.data;
      const finish = (s: Uint8Array[]): void => {
        if (!sa.alive) return wipe(...s);
        const newSa = makeRekeyedSa(sa, hooks, 'initiator', newSpiI, newSpiR, chosen, s, ni, nr);
        wipe(...s);
        sa.rekeyingIke = { nonces: [ni, nr], result: newSa };
        const theirs = sa.peerIkeRekey;
        if (!theirs) return completeIkeRekey(sa, newSa, true);
        // RFC 7296 §2.8.2: lowest nonce of the four marks the redundant SA.
        if (oursHasLowest([ni, nr], theirs.nonces)) {
          sa.log('info', 'IKE SA rekey collision: ours is redundant');
          sa.ikeCollisionWinner = 'theirs';
          if (theirs.sa) completeIkeRekey(sa, theirs.sa, false);
          deleteIke(newSa, 'redundant after rekey collision');
        } else {
          sa.log('info', 'IKE SA rekey collision: ours survives');
          sa.ikeCollisionWinner = 'ours';
          completeIkeRekey(sa, newSa, true);
        }
      };
      if (chosen.addKe.length > 0) {
        const link = findNotify(msg, Notify.ADDITIONAL_KEY_EXCHANGE);
        if (!link) return abort('additional key exchanges chosen without ADDITIONAL_KEY_EXCHANGE', RETRY_MS);
        runFollowups(sa, chosen.addKe, link.data, secrets, finish, (why) => {
          abort(why, RETRY_MS);
          deleteIke(sa, why);
        });
      } else finish(secrets);
    },
  });
  return true;
}

function makeRekeyedSa(
  old: IkeSa,
  hooks: RekeyHooks,
  role: 'initiator' | 'responder',
  spiI: Uint8Array,
  spiR: Uint8Array,
  chosen: ChosenAlgorithms,
  secrets: Uint8Array[],
  ni: Uint8Array,
  nr: Uint8Array,
): IkeSa {
  const prf = createPrf(chosen.prf!);
  const encr = encrInfo(chosen.encr.id, chosen.encr.keyLength);
  const integ = chosen.integ ? integInfo(chosen.integ) : undefined;
  // strongSwan uses the old PRF for both steps; RFC 7296 §2.18 the new one
  // for prf+. They agree unless the PRF changes (keymat.ts explains).
  const keys = deriveRekeyedIkeKeys({ prf, encr, integ, oldPrf: old.prf!, oldSkD: old.keys!.skD, secrets, ni, nr, spiI, spiR });
  const sa = hooks.spawnIkeSa(old, role, spiI, spiR);
  // Own copies: the exchange's arrays also decide collisions (rekeyingIke /
  // peerIkeRekey nonces) and this SA wipes its nonces when it dies.
  sa.ni = ni.slice();
  sa.nr = nr.slice();
  sa.adopt(old, chosen, prf, encr, integ, keys, kesOf(chosen));
  hooks.rekeyedIke(sa);
  sa.log('info', `IKE SA rekeyed (${sa.keMethods.map((m) => KeMethodName[m]).join(' + ')})`);
  return sa;
}

/** Move the Child SAs to the winner; the initiator of the winning exchange deletes the old IKE SA. */
function completeIkeRekey(old: IkeSa, winner: IkeSa, weInitiatedWinner: boolean): void {
  winner.children.push(...old.children);
  old.children = [];
  old.successor = winner;
  old.rekeyAt = undefined;
  old.expireAt = undefined;
  if (weInitiatedWinner) deleteIke(old, 'rekeyed');
}

// ================================================================== responder

function onCreateChildRequest(sa: IkeSa, msg: DecodedMessage, hooks: RekeyHooks): void {
  const raw = sa.currentRequestRaw;
  if (sa.state !== 'ESTABLISHED' || sa.successor) {
    // Being deleted or already replaced: RFC 7296 §2.25 TEMPORARY_FAILURE.
    sa.respond(msg, raw, [notify(Notify.TEMPORARY_FAILURE)]);
    return;
  }
  const saP = P.sa(msg);
  const nonce = P.nonce(msg);
  if (!saP || !nonce || saP.proposals.length === 0) {
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    return;
  }
  if (saP.proposals[0]!.protocol === ProtocolId.IKE) return onIkeRekeyRequest(sa, msg, raw, saP, nonce.data, hooks);
  onChildRequest(sa, msg, raw, saP, nonce.data);
}

function onChildRequest(sa: IkeSa, msg: DecodedMessage, raw: Uint8Array, saP: SaPayload, ni: Uint8Array): void {
  if (sa.rekeyingIke) {
    // RFC 7296 §2.25.1: our IKE SA rekey is in progress.
    sa.respond(msg, raw, [notify(Notify.TEMPORARY_FAILURE)]);
    return;
  }
  const rekeyN = findNotify(msg, Notify.REKEY_SA);
  let old: ChildSa | undefined;
  if (rekeyN) {
    const spi = rekeyN.spi.length === 4 ? ((rekeyN.spi[0]! << 24) | (rekeyN.spi[1]! << 16) | (rekeyN.spi[2]! << 8) | rekeyN.spi[3]!) >>> 0 : -1;
    old = sa.children.find((c) => c.spiOut === spi && c.state !== 'DELETED' && c.state !== 'DELETING');
    if (!old) {
      sa.respond(msg, raw, [notify(Notify.CHILD_SA_NOT_FOUND, new Uint8Array(0), ProtocolId.ESP, rekeyN.spi)]);
      return;
    }
  }
  const tsi = P.tsi(msg);
  const tsr = P.tsr(msg);
  if (!tsi || !tsr) {
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    return;
  }
  const specs = parseProposalsCached(sa.tunnel.espProposals, 'esp');
  const keP = P.ke(msg);
  // Prefer a proposal that uses the KE method the initiator sent (RFC 7296 §1.3).
  let sel = keP ? selectEsp({ ...saP, proposals: saP.proposals.map((p) => ({ ...p, transforms: p.transforms.filter((t) => t.type !== 4 || t.id === keP.method) })) }, specs) : undefined;
  if (!sel) sel = selectEsp(saP, specs);
  if (!sel) {
    sa.respond(msg, raw, [notify(Notify.NO_PROPOSAL_CHOSEN)]);
    return;
  }
  // selectEsp skips KE (IKE_AUTH semantics); re-select with KE for CREATE_CHILD_SA.
  const full = selectWithKe(saP, specs, keP?.method);
  if (full === 'invalid-ke') {
    const want = keMethodsInOrder(specs)[0]!;
    sa.respond(msg, raw, [notify(Notify.INVALID_KE_PAYLOAD, new Uint8Array([want >> 8, want & 0xff]))]);
    return;
  }
  if (!full) {
    sa.respond(msg, raw, [notify(Notify.NO_PROPOSAL_CHOSEN)]);
    return;
  }
  const chosen = full.chosen;
  const nTsi = narrow(tsi.selectors, sa.tunnel.remoteTs);
  const nTsr = narrow(tsr.selectors, sa.tunnel.localTs);
  if (nTsi.length === 0 || nTsr.length === 0) {
    sa.respond(msg, raw, [notify(Notify.TS_UNACCEPTABLE)]);
    return;
  }
  const secrets: Uint8Array[] = [];
  let kePub: Uint8Array | undefined;
  if (chosen.ke !== undefined) {
    const ke = sa.newKe(chosen.ke);
    try {
      ke.setPeerPublic(keP!.data);
    } catch {
      ke.destroy();
      sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
      return;
    }
    kePub = ke.getPublic();
    secrets.push(ke.getSharedSecret());
    ke.destroy();
  }
  const nr = sa.ctx.rng.bytes(NONCE_LEN);
  const spiIn = sa.ctx.allocateEspSpi();
  const peerSpi = spiFromProposal(full.proposal);
  // Remember the peer's rekey (with its nonces) from the request on: if our
  // own rekey of this Child SA is or gets in flight, it is a collision
  // (RFC 7296 §2.8.1) decided by these nonces.
  if (old) old.peerRekey = { child: undefined, nonces: [ni, nr] };
  const out: Payload[] = [
    { type: PayloadType.SA, proposals: [{ ...full.proposal, spi: u32be(spiIn) }] } as SaPayload,
    { type: PayloadType.NONCE, data: nr } as NoncePayload,
  ];
  if (kePub) out.push({ type: PayloadType.KE, method: chosen.ke!, data: kePub } as KePayload);
  out.push({ type: PayloadType.TSi, selectors: nTsi } as TsPayload, { type: PayloadType.TSr, selectors: nTsr } as TsPayload);
  const finish = (s: Uint8Array[]): void => {
    const child = installChild(sa, {
      chosen,
      spiIn,
      spiOut: peerSpi,
      tsLocal: nTsr,
      tsRemote: nTsi,
      ni,
      nr,
      secrets: s,
      keMethods: kesOf(chosen),
      ifId: sa.ctx.ifIdFor(sa.tunnel.name),
      reqid: old?.reqid,
      rekeys: old ? old.rekeys + 1 : 0,
    });
    wipe(...s);
    if (old) {
      if (old.peerRekey) old.peerRekey.child = child;
      if (old.state === 'INSTALLED') {
        // No rekey of ours: plain responder rekey; the peer deletes the old SA.
        old.successor = child;
        old.state = 'REKEYED';
        old.rekeyAt = undefined;
      } else if (old.collisionWinner === 'theirs') {
        old.successor = child;
      }
      // 'ours' won: the peer deletes this redundant SA. Undecided: our exchange decides.
    }
  };
  if (chosen.addKe.length > 0) {
    const link = newLink(sa);
    storeFollowup(sa, link, { methods: [...chosen.addKe], secrets, finish, expires: sa.ctx.clock.now() + 60_000 });
    out.push(notify(Notify.ADDITIONAL_KEY_EXCHANGE, link));
    sa.respond(msg, raw, out);
    return;
  }
  finish(secrets);
  sa.respond(msg, raw, out);
}

function selectWithKe(saP: SaPayload, specs: ReturnType<typeof parseProposalsCached>, keMethod: number | undefined): { chosen: ChosenAlgorithms; proposal: SaPayload['proposals'][number] } | 'invalid-ke' | undefined {
  const esp = saP.proposals.filter((p) => p.protocol === ProtocolId.ESP);
  const r = selectInit(esp, specs, keMethod ?? 0);
  if ('ok' in r) {
    if (r.ok.chosen.ke !== undefined && r.ok.chosen.ke !== keMethod) return 'invalid-ke';
    return r.ok;
  }
  if ('invalidKe' in r) return 'invalid-ke';
  return undefined;
}

function onIkeRekeyRequest(sa: IkeSa, msg: DecodedMessage, raw: Uint8Array, saP: SaPayload, ni: Uint8Array, hooks: RekeyHooks): void {
  const keP = P.ke(msg);
  if (!keP) {
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    return;
  }
  if (sa.children.some((c) => c.state === 'REKEYING')) {
    // RFC 7296 §2.25.2: a Child SA rekey of ours is in flight; the peer retries.
    sa.respond(msg, raw, [notify(Notify.TEMPORARY_FAILURE)]);
    return;
  }
  const specs = parseProposalsCached(sa.tunnel.ikeProposals, 'ike');
  const r = selectInit(saP.proposals, specs, keP.method);
  if ('invalidKe' in r) {
    sa.respond(msg, raw, [notify(Notify.INVALID_KE_PAYLOAD, new Uint8Array([r.invalidKe >> 8, r.invalidKe & 0xff]))]);
    return;
  }
  if (!('ok' in r)) {
    sa.respond(msg, raw, [notify(Notify.NO_PROPOSAL_CHOSEN)]);
    return;
  }
  const newSpiI = r.ok.proposal.spi;
  if (newSpiI.length !== 8) {
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    return;
  }
  const chosen = r.ok.chosen;
  const ke = sa.newKe(chosen.ke!);
  try {
    ke.setPeerPublic(keP.data);
  } catch {
    ke.destroy();
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    return;
  }
  const pub = ke.getPublic();
  const secrets = [ke.getSharedSecret()];
  ke.destroy();
  const nr = sa.ctx.rng.bytes(NONCE_LEN);
  const newSpiR = hooks.newIkeSpi();
  // Recorded from the request on: a rekey of ours in flight now or started
  // later is a collision (RFC 7296 §2.8.2) decided by these nonces.
  sa.peerIkeRekey = { sa: undefined, nonces: [ni, nr] };
  const out: Payload[] = [
    { type: PayloadType.SA, proposals: [{ ...r.ok.proposal, spi: newSpiR }] } as SaPayload,
    { type: PayloadType.NONCE, data: nr } as NoncePayload,
    { type: PayloadType.KE, method: chosen.ke!, data: pub } as KePayload,
  ];
  const finish = (s: Uint8Array[]): void => {
    if (!sa.alive) return wipe(...s);
    const newSa = makeRekeyedSa(sa, hooks, 'responder', newSpiI, newSpiR, chosen, s, ni, nr);
    wipe(...s);
    sa.peerIkeRekey!.sa = newSa;
    if (!sa.rekeyingIke) return completeIkeRekey(sa, newSa, false);
    // Decided when our exchange completed (or failed); undecided: it decides later.
    if (sa.ikeCollisionWinner === 'theirs') completeIkeRekey(sa, newSa, false);
  };
  if (chosen.addKe.length > 0) {
    const link = newLink(sa);
    storeFollowup(sa, link, { methods: [...chosen.addKe], secrets, finish, expires: sa.ctx.clock.now() + 60_000 });
    out.push(notify(Notify.ADDITIONAL_KEY_EXCHANGE, link));
    sa.respond(msg, raw, out);
    return;
  }
  finish(secrets);
  sa.respond(msg, raw, out);
}
