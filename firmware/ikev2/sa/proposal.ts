/**
 * SA proposals: strongSwan proposal syntax, SA payload construction and
 * proposal selection.
 *
 *  - RFC 7296 §2.7 / §3.3: a proposal lists, per Transform Type, the
 *    acceptable transforms; the responder picks exactly one transform of
 *    every type in the proposal it accepts and echoes the proposal number.
 *    §3.3.6: a type the initiator wants to leave optional carries a
 *    transform with ID NONE (0).
 *  - RFC 9370 §2.2: Additional Key Exchange types 6..12 (ADDKE1..7). NONE in
 *    an ADDKE type makes that round optional. §2.2.1: "for the ADDKE
 *    Transform Types, the responder's choice MUST NOT contain duplicated
 *    algorithms (those with an identical Transform ID and attributes),
 *    except for the Transform ID of NONE".
 *  - RFC 5282 §8 / RFC 7296 §3.3: combined-mode (AEAD) ciphers need no
 *    integrity transform (or only INTEG NONE).
 *
 * Selection searches the whole space (depth-first with backtracking), so a
 * choice early on (e.g. ML-KEM-1024 in ADDKE1) is revisited when it makes a
 * later type unsatisfiable (ADDKE2 only ML-KEM-1024). strongSwan selects
 * each type in one pass and fails such cases (strongswan/strongswan issue
 * #2048).
 */
import type { Proposal, Transform } from '../codec/types.js';
import { ProtocolId, TransformType } from '../constants.js';
import { ConfigError } from '../../util/errors.js';
import { encrName, integName, keName, prfName } from '../../crypto/registry.js';
import { DEFAULT_PROPOSALS, INTEG_TO_PRF, KEYWORDS, UNSUPPORTED_KEYWORD, isAeadEncr } from './proposal-keywords.js';

export type SaProtocol = 'ike' | 'esp';

export interface TransformChoice {
  id: number;
  /** Key Length attribute in bits (AES); absent for fixed-size algorithms. */
  keyLength?: number;
}

/** One parsed proposal: per Transform Type (1..12), the acceptable transforms in preference order. */
export interface ProposalSpec {
  protocol: SaProtocol;
  transforms: Partial<Record<number, TransformChoice[]>>;
  /** The configured text (lower-cased), for logs. */
  text: string;
}

/** What a selected proposal negotiated. */
export interface ChosenAlgorithms {
  encr: TransformChoice;
  prf?: number;
  /** Absent for AEAD. */
  integ?: number;
  /** Type-4 method; absent when not negotiated (IKE_AUTH child, ESP without PFS). */
  ke?: number;
  /** Methods of ADDKE1..7 in type order, rounds with NONE left out. */
  addKe: number[];
  /** ESP only: Extended Sequence Numbers. */
  esn?: boolean;
}

export interface SelectOptions {
  /** Pick by our order of preference (default, strongSwan's behaviour) or by the peer's. */
  preferConfigured?: boolean;
  /** Ignore KE and ADDKE types (first Child SA, created inside IKE_AUTH: strongSwan PROPOSAL_SKIP_KE). */
  skipKe?: boolean;
}

export const ADDKE_TYPES: readonly number[] = [6, 7, 8, 9, 10, 11, 12];
/** Wire order of transform types inside a proposal (strongSwan's: ENCR, INTEG, PRF, KE, ESN, ADDKE1..7). */
const TYPE_ORDER: readonly number[] = [1, 3, 2, 4, 5, ...ADDKE_TYPES];

function isKeType(t: number): boolean {
  return t === TransformType.KE || (t >= TransformType.ADDKE1 && t <= TransformType.ADDKE7);
}

export function protocolId(p: SaProtocol): number {
  return p === 'ike' ? ProtocolId.IKE : ProtocolId.ESP;
}

function push(spec: ProposalSpec, type: number, choice: TransformChoice): void {
  const list = (spec.transforms[type] ??= []);
  if (!list.some((c) => sameChoice(c, choice))) list.push(choice);
}

function sameChoice(a: TransformChoice, b: TransformChoice): boolean {
  return a.id === b.id && a.keyLength === b.keyLength;
}

/**
 * Parse one proposal in strongSwan syntax (dash-separated keywords). Several
 * keywords of one type are alternatives. `default` yields the first default
 * proposal; use parseProposals() to expand it fully. Throws ConfigError.
 */
export function parseProposal(text: string, protocol: SaProtocol, path = 'proposals'): ProposalSpec {
  const src = text.trim().toLowerCase();
  if (src === 'default') return parseProposal(DEFAULT_PROPOSALS[protocol][0]!, protocol, path);
  const fail = (msg: string): never => {
    throw new ConfigError(path, `${msg} in ${protocol.toUpperCase()} proposal '${text}'`);
  };
  if (src === '') fail('empty proposal');
  const spec: ProposalSpec = { protocol, transforms: {}, text: src };
  for (const raw of src.split('-')) {
    const word = raw.trim();
    if (word === '') fail('empty keyword');
    const m = /^ke(\d+)_(.*)$/.exec(word);
    if (m) {
      const n = Number(m[1]);
      if (n < 1 || n > 7) fail(`'${word}': additional key exchange number must be 1..7`);
      const k = KEYWORDS[m[2]!];
      if (!k || k.type !== TransformType.KE) {
        fail(UNSUPPORTED_KEYWORD.test(m[2]!) ? `key exchange method '${m[2]}' in '${word}' is not supported` : `'${word}' is not a key exchange method`);
      }
      push(spec, TransformType.ADDKE1 + n - 1, { id: k!.id });
      continue;
    }
    const k = KEYWORDS[word];
    if (!k) fail(UNSUPPORTED_KEYWORD.test(word) ? `algorithm '${word}' is not supported` : `unknown algorithm keyword '${word}'`);
    push(spec, k!.type, k!.keyLength === undefined ? { id: k!.id } : { id: k!.id, keyLength: k!.keyLength });
  }
  check(spec, fail);
  return spec;
}

/** Consistency rules (after strongSwan's check_proposal(), stricter where it silently drops things). */
function check(spec: ProposalSpec, fail: (m: string) => never): void {
  const t = spec.transforms;
  const encr = t[TransformType.ENCR] ?? [];
  if (encr.length === 0) fail('an encryption algorithm is required');
  const aead = encr.filter((e) => isAeadEncr(e.id));
  if (aead.length && aead.length !== encr.length) fail('AEAD and classic encryption algorithms cannot be combined in one proposal (use two proposals)');
  const isAead = aead.length > 0;
  const integ = t[TransformType.INTEG] ?? [];

  if (spec.protocol === 'ike') {
    if (t[TransformType.ESN]) fail('esn/noesn are only valid in ESP proposals');
    if (!t[TransformType.PRF]) {
      // No explicit PRF: use the integrity algorithms' hashes (strongSwan).
      if (integ.length === 0) fail('a PRF is required (add prfsha256, prfsha384 or prfsha512)');
      for (const i of integ) push(spec, TransformType.PRF, { id: INTEG_TO_PRF[i.id]! });
      if (isAead) delete t[TransformType.INTEG]; // only there to name the PRF
    } else if (isAead && integ.length) {
      fail(`integrity algorithm '${integName(integ[0]!.id)}' is meaningless with AEAD encryption`);
    }
    // NONE is not a valid type-4 choice for the IKE SA (RFC 7296 §2.18: a KE is mandatory).
    const ke = (t[TransformType.KE] ?? []).filter((c) => c.id !== 0);
    if (ke.length === 0) fail('an IKE proposal needs a key exchange method');
    t[TransformType.KE] = ke;
  } else {
    if (t[TransformType.PRF]) fail('PRF keywords are not valid in ESP proposals');
    if (isAead && integ.length) fail(`integrity algorithm '${integName(integ[0]!.id)}' is meaningless with AEAD encryption`);
    if (!t[TransformType.ESN]) t[TransformType.ESN] = [{ id: 0 }]; // strongSwan: no ESN unless asked for
    if (ADDKE_TYPES.some((a) => t[a]) && !(t[TransformType.KE] ?? []).some((c) => c.id !== 0)) {
      fail('additional key exchanges (keN_) need a key exchange method');
    }
  }
  // RFC 7296 §3.3 (IKE) and RFC 8221 §5 (ESP): no encryption without integrity.
  if (!isAead && integ.length === 0) fail('classic encryption needs an integrity algorithm');
  // RFC 9370 §2.2.1 forbids the same method in two ADDKE rounds of one choice:
  // e.g. ke1_mlkem768-ke2_mlkem768 (both required) could never be selected.
  if (!distinctAddKePossible(ADDKE_TYPES.map((a) => t[a]).filter((l): l is TransformChoice[] => l !== undefined))) {
    fail('the additional key exchanges cannot use distinct methods (RFC 9370 §2.2.1); list another method or keN_none');
  }
}

function distinctAddKePossible(rounds: TransformChoice[][], i = 0, used: Set<number> = new Set()): boolean {
  if (i === rounds.length) return true;
  for (const c of rounds[i]!) {
    if (c.id === 0) {
      if (distinctAddKePossible(rounds, i + 1, used)) return true;
    } else if (!used.has(c.id)) {
      used.add(c.id);
      const ok = distinctAddKePossible(rounds, i + 1, used);
      used.delete(c.id);
      if (ok) return true;
    }
  }
  return false;
}

/** Parse a list of proposals, expanding `default` to every default proposal. */
export function parseProposals(texts: readonly string[], protocol: SaProtocol, path = 'proposals'): ProposalSpec[] {
  const out: ProposalSpec[] = [];
  texts.forEach((text, i) => {
    if (text.trim().toLowerCase() === 'default') out.push(...defaultProposals(protocol));
    else out.push(parseProposal(text, protocol, `${path}[${i}]`));
  });
  if (out.length === 0) throw new ConfigError(path, 'at least one proposal is required');
  return out;
}

export function defaultProposals(protocol: SaProtocol): ProposalSpec[] {
  return DEFAULT_PROPOSALS[protocol].map((p) => parseProposal(p, protocol, 'default'));
}

/**
 * Build SA payload proposals, numbered from 1 (RFC 7296 §3.3.1). `spi` is
 * empty for IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP. With skipKe,
 * KE/ADDKE transforms are left out (Child SA in IKE_AUTH).
 */
export function toSaProposals(specs: readonly ProposalSpec[], protocol: SaProtocol, spi: Uint8Array, opts: { skipKe?: boolean } = {}): Proposal[] {
  return specs.map((spec, i) => {
    const transforms: Transform[] = [];
    for (const type of TYPE_ORDER) {
      if (opts.skipKe && isKeType(type)) continue;
      for (const c of spec.transforms[type] ?? []) {
        transforms.push(c.keyLength === undefined ? { type, id: c.id } : { type, id: c.id, keyLength: c.keyLength });
      }
    }
    return { num: i + 1, protocol: protocolId(protocol), spi: spi.slice(), transforms };
  });
}

// ---------------------------------------------------------------- selection

/** A transform with unknown attributes cannot be accepted (we would not honour them). */
function usable(t: Transform): boolean {
  return !t.otherAttributes || t.otherAttributes.length === 0;
}

function groupOffered(p: Proposal): Map<number, Transform[]> | undefined {
  const m = new Map<number, Transform[]>();
  for (const t of p.transforms) {
    // RFC 7296 §3.3.6: a proposal with a Transform Type we do not know is rejected.
    if (t.type < TransformType.ENCR || t.type > TransformType.ADDKE7) return undefined;
    let l = m.get(t.type);
    if (!l) m.set(t.type, (l = []));
    l.push(t);
  }
  return m;
}

interface Candidate {
  choice: TransformChoice;
  /** The peer's transform to echo, if the peer offered this type. */
  echo?: Transform;
}

/** ID 0 is NONE for INTEG, KE and ADDKE (and "no ESN" for ESN); for ENCR and PRF it is reserved. */
function noneAllowed(type: number): boolean {
  return type !== TransformType.ENCR && type !== TransformType.PRF;
}

function candidates(type: number, offered: Transform[] | undefined, configured: TransformChoice[] | undefined, preferConfigured: boolean): Candidate[] {
  if (offered && configured) {
    const out: Candidate[] = [];
    if (preferConfigured) {
      for (const c of configured) {
        const o = offered.find((t) => usable(t) && t.id === c.id && t.keyLength === c.keyLength);
        if (o) out.push({ choice: c, echo: o });
      }
    } else {
      for (const o of offered) {
        if (!usable(o)) continue;
        const c = configured.find((x) => x.id === o.id && x.keyLength === o.keyLength);
        if (c && !out.some((x) => sameChoice(x.choice, c))) out.push({ choice: c, echo: o });
      }
    }
    return out;
  }
  if (!noneAllowed(type)) return [];
  if (offered) {
    // Only the peer has this type: acceptable if it offers NONE.
    const o = offered.find((t) => usable(t) && t.id === 0);
    return o ? [{ choice: { id: 0 }, echo: o }] : [];
  }
  // Only we have it: acceptable if we list NONE; nothing to echo.
  return configured?.some((c) => c.id === 0) ? [{ choice: { id: 0 } }] : [];
}

/** Bound on search steps per proposal pair: selection runs on unauthenticated input. */
const MAX_STEPS = 100_000;

function matchPair(offered: Proposal, spec: ProposalSpec, opts: SelectOptions): { proposal: Proposal; chosen: ChosenAlgorithms } | undefined {
  const preferConfigured = opts.preferConfigured ?? true;
  const groups = groupOffered(offered);
  if (!groups) return undefined;
  const types = TYPE_ORDER.filter((t) => (groups.has(t) || spec.transforms[t] !== undefined) && !(opts.skipKe && isKeType(t)));
  if (!types.includes(TransformType.ENCR)) return undefined;

  const picked = new Map<number, Candidate>();
  let steps = 0;

  const options = (type: number): Candidate[] => {
    if (type === TransformType.INTEG) {
      const encr = picked.get(TransformType.ENCR)!.choice.id;
      if (isAeadEncr(encr)) {
        // No integrity with AEAD: echo INTEG NONE if the peer included it, else leave the type out.
        const none = groups.get(TransformType.INTEG)?.find((t) => usable(t) && t.id === 0);
        return [{ choice: { id: 0 }, ...(none ? { echo: none } : {}) }];
      }
      // Classic cipher: a real integrity algorithm is required.
      return candidates(type, groups.get(type), spec.transforms[type], preferConfigured).filter((c) => c.choice.id !== 0);
    }
    const list = candidates(type, groups.get(type), spec.transforms[type], preferConfigured);
    if (type >= TransformType.ADDKE1) {
      const used = new Set<number>();
      for (const [t, c] of picked) if (t >= TransformType.ADDKE1 && c.choice.id !== 0) used.add(c.choice.id);
      return list.filter((c) => c.choice.id === 0 || !used.has(c.choice.id));
    }
    return list;
  };

  // Only ENCR/INTEG (AEAD needs no integrity) and the ADDKE types among
  // themselves (distinct methods) constrain each other, so each group is
  // searched on its own: the first solution of every group, in preference
  // order, is the preferred overall choice, and a dead end in one group never
  // re-enumerates the others.
  const groupsInOrder = [[TransformType.ENCR, TransformType.INTEG], [TransformType.PRF], [TransformType.KE], [TransformType.ESN], ADDKE_TYPES]
    .map((g) => g.filter((t) => types.includes(t)))
    .filter((g) => g.length > 0);
  const search = (g: readonly number[], i: number): boolean => {
    if (i === g.length) return true;
    if (++steps > MAX_STEPS) return false;
    const type = g[i]!;
    for (const c of options(type)) {
      picked.set(type, c);
      if (search(g, i + 1)) return true;
    }
    picked.delete(type);
    return false;
  };
  for (const g of groupsInOrder) if (!search(g, 0)) return undefined;

  const transforms: Transform[] = [];
  for (const type of types) {
    const c = picked.get(type)!;
    if (c.echo) transforms.push(c.echo.keyLength === undefined ? { type, id: c.echo.id } : { type, id: c.echo.id, keyLength: c.echo.keyLength });
  }
  const get = (t: number): number | undefined => {
    const c = picked.get(t);
    return c && c.choice.id !== 0 ? c.choice.id : undefined;
  };
  const encr = picked.get(TransformType.ENCR)!.choice;
  const chosen: ChosenAlgorithms = { encr: encr.keyLength === undefined ? { id: encr.id } : { id: encr.id, keyLength: encr.keyLength }, addKe: [] };
  const prf = get(TransformType.PRF);
  if (prf !== undefined) chosen.prf = prf;
  const integ = get(TransformType.INTEG);
  if (integ !== undefined) chosen.integ = integ;
  const ke = get(TransformType.KE);
  if (ke !== undefined) chosen.ke = ke;
  for (const t of ADDKE_TYPES) {
    const m = get(t);
    if (m !== undefined) chosen.addKe.push(m);
  }
  if (spec.protocol === 'esp') chosen.esn = picked.get(TransformType.ESN)?.choice.id === 1;
  return { proposal: { num: offered.num, protocol: offered.protocol, spi: offered.spi.slice(), transforms }, chosen };
}

/**
 * Choose one of the peer's proposals (RFC 7296 §2.7). The returned proposal
 * carries one transform per offered type, the peer's proposal number and the
 * peer's SPI (the caller replaces the SPI with its own when answering a
 * CREATE_CHILD_SA / ESP proposal). undefined = NO_PROPOSAL_CHOSEN.
 */
export function selectProposal(
  offered: readonly Proposal[],
  configured: readonly ProposalSpec[],
  opts: SelectOptions = {},
): { proposal: Proposal; chosen: ChosenAlgorithms } | undefined {
  const preferConfigured = opts.preferConfigured ?? true;
  const tryPair = (o: Proposal, c: ProposalSpec): { proposal: Proposal; chosen: ChosenAlgorithms } | undefined =>
    o.protocol === protocolId(c.protocol) ? matchPair(o, c, opts) : undefined;
  if (preferConfigured) {
    for (const c of configured) for (const o of offered) {
      const r = tryPair(o, c);
      if (r) return r;
    }
  } else {
    for (const o of offered) for (const c of configured) {
      const r = tryPair(o, c);
      if (r) return r;
    }
  }
  return undefined;
}

/**
 * Check a responder's answer against what we offered: exactly one proposal,
 * one transform per type, and that single-transform proposal must be
 * acceptable under one of our proposals (RFC 7296 §2.7: the response must be
 * a subset of one offer).
 */
export function verifySelectedProposal(
  answer: readonly Proposal[],
  ours: readonly ProposalSpec[],
  opts: { skipKe?: boolean } = {},
): ChosenAlgorithms | undefined {
  if (answer.length !== 1) return undefined;
  const a = answer[0]!;
  const seen = new Set<number>();
  for (const t of a.transforms) {
    if (seen.has(t.type)) return undefined;
    seen.add(t.type);
  }
  const spec = ours[a.num - 1];
  if (!spec) return undefined;
  return selectProposal([a], [spec], { preferConfigured: true, ...opts })?.chosen;
}

// ---------------------------------------------------------------- KE helpers

/** Type-4 method of a (selected) proposal, NONE excluded. */
export function proposalKeMethod(p: Proposal): number | undefined {
  return p.transforms.find((t) => t.type === TransformType.KE && t.id !== 0)?.id;
}

/** Distinct type-4 methods over our proposals, in preference order (NONE excluded). */
export function keMethodsInOrder(specs: readonly ProposalSpec[]): number[] {
  const out: number[] = [];
  for (const s of specs) for (const c of s.transforms[TransformType.KE] ?? []) if (c.id !== 0 && !out.includes(c.id)) out.push(c.id);
  return out;
}

/** The initiator's KEi guess: the first method of the first proposal (strongSwan). */
export function initialKeMethod(specs: readonly ProposalSpec[]): number | undefined {
  return keMethodsInOrder(specs)[0];
}

/**
 * INVALID_KE_PAYLOAD with method M (RFC 7296 §1.2): retry with M only if it
 * is in our proposals (otherwise the peer is asking for something we never
 * offered, and we give up).
 */
export function acceptsKeMethod(specs: readonly ProposalSpec[], method: number): boolean {
  return keMethodsInOrder(specs).includes(method);
}

/** Move `method` to the front of the KE list of every proposal containing it (strongSwan promote_dh_group). */
export function promoteKeMethod(specs: readonly ProposalSpec[], method: number): ProposalSpec[] {
  return specs.map((s) => {
    const ke = s.transforms[TransformType.KE];
    if (!ke || !ke.some((c) => c.id === method)) return s;
    return { ...s, transforms: { ...s.transforms, [TransformType.KE]: [{ id: method }, ...ke.filter((c) => c.id !== method)] } };
  });
}

// ---------------------------------------------------------------- formatting

/** e.g. "AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/ML_KEM_768" (strongSwan names, ADDKE rounds in order). */
export function formatChosen(c: ChosenAlgorithms): string {
  const parts = [encrName(c.encr.id, c.encr.keyLength)];
  if (c.integ !== undefined) parts.push(integName(c.integ));
  if (c.prf !== undefined) parts.push(prfName(c.prf));
  if (c.ke !== undefined) parts.push(keName(c.ke));
  for (const m of c.addKe) parts.push(keName(m));
  if (c.esn !== undefined) parts.push(c.esn ? 'EXT_SEQ' : 'NO_EXT_SEQ');
  return parts.join('/');
}

/** strongSwan-style listing of a proposal, e.g. "IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256/KE1_ML_KEM_768". */
export function formatProposal(p: Proposal | ProposalSpec): string {
  const byType = new Map<number, TransformChoice[]>();
  let proto: string;
  if ('num' in p) {
    proto = p.protocol === ProtocolId.IKE ? 'IKE' : p.protocol === ProtocolId.ESP ? 'ESP' : `PROTO_${p.protocol}`;
    for (const t of p.transforms) {
      const l = byType.get(t.type) ?? [];
      l.push(t.keyLength === undefined ? { id: t.id } : { id: t.id, keyLength: t.keyLength });
      byType.set(t.type, l);
    }
  } else {
    proto = p.protocol.toUpperCase();
    for (const [t, l] of Object.entries(p.transforms)) if (l) byType.set(Number(t), l);
  }
  const names: string[] = [];
  for (const type of [...TYPE_ORDER, ...[...byType.keys()].filter((t) => !TYPE_ORDER.includes(t))]) {
    for (const c of byType.get(type) ?? []) {
      switch (type) {
        case TransformType.ENCR:
          names.push(encrName(c.id, c.keyLength));
          break;
        case TransformType.INTEG:
          names.push(integName(c.id));
          break;
        case TransformType.PRF:
          names.push(prfName(c.id));
          break;
        case TransformType.KE:
          names.push(keName(c.id));
          break;
        case TransformType.ESN:
          names.push(c.id === 1 ? 'EXT_SEQ' : c.id === 0 ? 'NO_EXT_SEQ' : `ESN_${c.id}`);
          break;
        default:
          names.push(isKeType(type) ? `KE${type - TransformType.ADDKE1 + 1}_${keName(c.id)}` : `UNKNOWN_${type}_${c.id}`);
      }
    }
  }
  return `${proto}:${names.join('/')}`;
}
