/**
 * Child SA negotiation pieces shared by IKE_AUTH (and later CREATE_CHILD_SA):
 * ESP proposal offer/selection, traffic selector checks, KEYMAT
 * (RFC 7296 §2.17) and the install action for the data plane.
 *
 *   KEYMAT = prf+(SK_d, [SK(0) |] Ni | Nr [| SK(1) | ... | SK(n)])
 *   order: encr_i | integ_i | encr_r | integ_r
 */
import { PayloadType, ProtocolId, Notify } from '../constants.js';
import type { Proposal, SaPayload, TrafficSelector, TsPayload } from '../codec/types.js';
import type { IkeSa } from '../ike-sa.js';
import type { Endpoint, PolicySpec, SaSpec, Selector } from '../../dataplane/types.js';
import { encrInfo, integInfo, encrName, integName } from '../../crypto/registry.js';
import { toSaProposals, selectProposal, type ChosenAlgorithms, type ProposalSpec } from '../sa/proposal.js';
import { deriveChildKeys, formatEspSaLine } from '../sa/keymat.js';
import { tsToPayload } from '../sa/ts.js';
import { ChildSa } from '../child-sa.js';
import { ProtocolError } from '../payload-util.js';
import { u32be, wipe } from '../../util/bytes.js';

/** ESP proposals for IKE_AUTH: without KE transforms (keys come from SK_d; RFC 7296 §1.2). */
export function espOfferForAuth(specs: ProposalSpec[], spiIn: number): Proposal[] {
  return toSaProposals(specs, 'esp', u32be(spiIn), { skipKe: true });
}

export function spiFromProposal(p: Proposal): number {
  if (p.protocol !== ProtocolId.ESP || p.spi.length !== 4) throw new ProtocolError(Notify.INVALID_SYNTAX, 'ESP proposal needs a 4-octet SPI');
  const s = ((p.spi[0]! << 24) | (p.spi[1]! << 16) | (p.spi[2]! << 8) | p.spi[3]!) >>> 0;
  if (s < 256) throw new ProtocolError(Notify.INVALID_SYNTAX, `reserved ESP SPI ${s}`); // RFC 4303 §2.1
  return s;
}

/** Responder: pick one of the peer's ESP proposals; returns it with our SPI. */
export function selectEsp(sa: SaPayload, specs: ProposalSpec[]): { chosen: ChosenAlgorithms; peerSpi: number; proposal: Proposal } | undefined {
  const esp = sa.proposals.filter((p) => p.protocol === ProtocolId.ESP);
  const r = selectProposal(esp, specs, { skipKe: true });
  if (!r) return undefined;
  return { chosen: r.chosen, peerSpi: spiFromProposal(r.proposal), proposal: r.proposal };
}

export function tsPayload(type: 44 | 45, selectors: TrafficSelector[]): TsPayload {
  return { type, selectors };
}

function toSelector(ts: TrafficSelector): Selector {
  return {
    family: ts.tsType === 7 ? 4 : 6,
    startAddr: ts.startAddr,
    endAddr: ts.endAddr,
    ipProtocol: ts.ipProtocol,
    startPort: ts.startPort,
    endPort: ts.endPort,
  };
}

/** Is every selector in `inner` contained in some selector of `outer`? (initiator's check of the narrowed TS) */
export function tsWithin(inner: TrafficSelector[], outer: TrafficSelector[]): boolean {
  const cmp = (a: Uint8Array, b: Uint8Array): number => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return 0;
  };
  return inner.every((i) =>
    outer.some(
      (o) =>
        o.tsType === i.tsType &&
        (o.ipProtocol === 0 || o.ipProtocol === i.ipProtocol) &&
        o.startPort <= i.startPort &&
        o.endPort >= i.endPort &&
        cmp(o.startAddr, i.startAddr) <= 0 &&
        cmp(o.endAddr, i.endAddr) >= 0,
    ),
  );
}

export function configuredTs(sa: IkeSa): { local: TrafficSelector[]; remote: TrafficSelector[] } {
  return { local: tsToPayload(sa.tunnel.localTs), remote: tsToPayload(sa.tunnel.remoteTs) };
}

/**
 * Derive the Child SA keys, emit the install action and the esp_sa key log
 * lines, and record the Child SA on the IKE SA.
 */
/** The wiped keys of the ChildSa's records: one shared empty array (zero length, nothing to write). */
const NO_KEY = new Uint8Array(0);

export function installChild(
  sa: IkeSa,
  args: {
    chosen: ChosenAlgorithms;
    spiIn: number;
    spiOut: number;
    tsLocal: TrafficSelector[];
    tsRemote: TrafficSelector[];
    ni: Uint8Array;
    nr: Uint8Array;
    secrets: Uint8Array[];
    keMethods: number[];
    ifId: number;
    /** Rekey: keep the predecessor's reqid (the data plane swaps the outbound SA in place). */
    reqid?: number;
    rekeys?: number;
  },
): ChildSa {
  const { chosen } = args;
  const encr = encrInfo(chosen.encr.id, chosen.encr.keyLength);
  const integ = chosen.integ ? integInfo(chosen.integ) : undefined;
  const k = deriveChildKeys({ prf: sa.prf!, skD: sa.keys!.skD, ni: args.ni, nr: args.nr, secrets: args.secrets, encr, integ });
  const mine = sa.isInitiator ? { encr: k.encrI, integ: k.integI } : { encr: k.encrR, integ: k.integR };
  const theirs = sa.isInitiator ? { encr: k.encrR, integ: k.integR } : { encr: k.encrI, integ: k.integI };
  const reqid = args.reqid ?? sa.ctx.nextReqid();
  const encap = sa.encap;
  const encrKeyBits = encr.keySize * 8;
  const integId = integ?.id ?? 0;
  const esn = !!chosen.esn;
  // One copy of each endpoint, shared by both directions and the policies (nothing writes to them).
  const localEp = { ...sa.local };
  const remoteEp = { ...sa.remote };
  // SaSpec literals written out (not `{ ...common, ... }` copies): one object
  // shape for every install on the hot path, and no generic property copy.
  const spec = (spi: number, direction: 'in' | 'out', src: Endpoint, dst: Endpoint, encrKey: Uint8Array, integKey: Uint8Array): SaSpec => {
    const s: SaSpec = { spi, direction, src, dst, encap, encrId: encr.id, encrKeyBits, encrKey, integId, integKey, esn, replayWindow: sa.tunnel.replayWindow, reqid, ifId: args.ifId, tunnel: sa.tunnel.name };
    addVolumeLimits(s, sa.tunnel.childRekeyBytes, sa.tunnel.childRekeyPackets);
    return s;
  };
  const outbound = spec(args.spiOut, 'out', localEp, remoteEp, mine.encr, mine.integ);
  const inbound = spec(args.spiIn, 'in', remoteEp, localEp, theirs.encr, theirs.integ);
  const local = args.tsLocal.map(toSelector);
  const remote = args.tsRemote.map(toSelector);
  const policies: PolicySpec[] = [
    { reqid, direction: 'out', local, remote, ifId: args.ifId, tunnel: sa.tunnel.name, src: outbound.src, dst: outbound.dst },
    { reqid, direction: 'in', local, remote, ifId: args.ifId, tunnel: sa.tunnel.name, src: inbound.src, dst: inbound.dst },
  ];
  sa.ctx.emit({ kind: 'install-child', tunnel: sa.tunnel.name, inbound, outbound, policies });
  for (const s of [outbound, inbound]) {
    const args = { spi: s.spi, src: s.src.address, dst: s.dst.address, encrId: encr.id, encrKeyBits, encrKey: s.encrKey.slice(), integId, integKey: s.integKey.slice() };
    sa.ctx.emit({
      kind: 'keylog',
      table: 'esp_sa',
      get line() {
        return formatEspSaLine(args); // formatted only when a key log is written
      },
      dispose() {
        wipe(args.encrKey, args.integKey);
      },
    });
  }
  // The data plane got its own references; the copies in `inbound`/`outbound`
  // recorded on the ChildSa are wiped so status objects never hold keys.
  const child = new ChildSa(
    sa.tunnel.name,
    reqid,
    args.spiIn,
    args.spiOut,
    encrName(encr.id, encrKeyBits),
    integ ? integName(integ.id) : null,
    args.keMethods,
    esn,
    args.tsLocal,
    args.tsRemote,
    encap,
    sa.ctx.clock.now(),
    spec(args.spiIn, 'in', remoteEp, localEp, NO_KEY, NO_KEY),
    spec(args.spiOut, 'out', localEp, remoteEp, NO_KEY, NO_KEY),
    policies,
  );
  child.rekeys = args.rekeys ?? 0;
  scheduleChildLifetime(sa, child);
  let owner = sa; // the IKE SA may have been rekeyed while this exchange ran
  while (owner.successor && owner.successor.alive) owner = owner.successor;
  owner.children.push(child);
  sa.log('info', `CHILD_SA ${sa.tunnel.name}{${reqid}} established, SPIs ${args.spiIn.toString(16)}_i ${args.spiOut.toString(16)}_o`);
  return child;
}

/**
 * Soft limit = the configured rekey volume, hard = +10 % (strongSwan's
 * life_bytes/life_packets default), so the rekey has room to finish before
 * the data plane must drop the SA (RFC 4301 §4.4.2.1).
 */
function addVolumeLimits(s: SaSpec, bytes?: number, packets?: number): void {
  if (bytes) {
    s.softBytes = bytes;
    s.hardBytes = Math.floor(bytes * 1.1);
  }
  if (packets) {
    s.softPackets = packets;
    s.hardPackets = Math.floor(packets * 1.1);
  }
}

export function removeChild(sa: IkeSa, child: ChildSa): void {
  if (child.state === 'DELETED') return;
  // A rekeyed Child SA leaves its policies to the other SA(s) of its reqid.
  const rekeyed = sa.children.some((c) => c !== child && c.reqid === child.reqid && c.state !== 'DELETED');
  child.state = 'DELETED';
  sa.children = sa.children.filter((c) => c !== child);
  sa.ctx.releaseEspSpi(child.spiIn);
  sa.ctx.emit({ kind: 'delete-child', tunnel: sa.tunnel.name, inboundSpi: child.spiIn, outboundSpi: child.spiOut, policies: child.policies, rekeyed });
}

/**
 * Soft and hard lifetimes (strongSwan rekey_time / life_time = rekey_time +
 * 10 %, rand_time = 10 %): the rekey is pulled forward by a random jitter so
 * the two peers rarely start it at the same time (RFC 7296 §2.8.1 advises it).
 */
export function scheduleChildLifetime(sa: IkeSa, child: ChildSa): void {
  const secs = sa.tunnel.childRekeyTime;
  if (!secs) return;
  const ms = secs * 1000;
  child.rekeyAt = child.installedAt + ms - jitter(sa, ms / 10);
  child.expireAt = child.installedAt + ms + ms / 10;
}

export function jitter(sa: IkeSa, maxMs: number): number {
  const b = sa.ctx.rng.bytes(2);
  return Math.floor((((b[0]! << 8) | b[1]!) / 65536) * maxMs);
}

export { PayloadType };
