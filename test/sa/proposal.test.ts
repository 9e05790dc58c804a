import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  acceptsKeMethod,
  defaultProposals,
  formatChosen,
  formatProposal,
  initialKeMethod,
  keMethodsInOrder,
  parseProposal,
  parseProposals,
  promoteKeMethod,
  proposalKeMethod,
  selectProposal,
  toSaProposals,
  verifySelectedProposal,
  type ProposalSpec,
  type SaProtocol,
  type TransformChoice,
} from '../../firmware/ikev2/sa/proposal.js';
import type { Proposal, Transform } from '../../firmware/ikev2/codec/types.js';
import { ConfigError } from '../../firmware/util/errors.js';
import { ProtocolId } from '../../firmware/ikev2/constants.js';

// Transform types
const ENCR = 1, PRF = 2, INTEG = 3, KE = 4, ESN = 5, AKE1 = 6, AKE2 = 7, AKE3 = 8, AKE4 = 9, AKE5 = 10, AKE6 = 11, AKE7 = 12;
// ids
const CBC = 12, GCM8 = 18, GCM12 = 19, GCM16 = 20, CHACHA = 28;
const SHA256 = 12, SHA384 = 13, SHA512 = 14;
const P256 = 5, P384 = 6, P512 = 7;
const MODP2048 = 14, MODP3072 = 15, ECP256 = 19, ECP384 = 20, ECP521 = 21, X25519 = 31, MLKEM512 = 35, MLKEM768 = 36, MLKEM1024 = 37;

type Expect = Partial<Record<number, (number | [number, number])[]>>;
const c = (x: number | [number, number]): TransformChoice => (Array.isArray(x) ? { id: x[0], keyLength: x[1] } : { id: x });

function expectSpec(spec: ProposalSpec, want: Expect): void {
  const got: Record<number, TransformChoice[]> = {};
  for (const [t, l] of Object.entries(spec.transforms)) if (l) got[Number(t)] = l;
  const exp: Record<number, TransformChoice[]> = {};
  for (const [t, l] of Object.entries(want)) exp[Number(t)] = l!.map(c);
  expect(got).toEqual(exp);
}

describe('parseProposal: valid strings', () => {
  const table: [string, SaProtocol, Expect][] = [
    ['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_mlkem1024', 'ike', { [ENCR]: [[GCM16, 256]], [PRF]: [P384], [KE]: [X25519], [AKE1]: [MLKEM768, MLKEM1024] }],
    ['aes256-sha256-modp2048', 'ike', { [ENCR]: [[CBC, 256]], [INTEG]: [SHA256], [PRF]: [P256], [KE]: [MODP2048] }],
    ['aes128gcm16-aes256gcm16-prfsha256-ecp256-ke1_mlkem768-ke2_mlkem1024', 'ike', { [ENCR]: [[GCM16, 128], [GCM16, 256]], [PRF]: [P256], [KE]: [ECP256], [AKE1]: [MLKEM768], [AKE2]: [MLKEM1024] }],
    ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke1_none', 'ike', { [ENCR]: [[GCM16, 256]], [PRF]: [P384], [KE]: [ECP384], [AKE1]: [MLKEM768, 0] }],
    ['chacha20poly1305-prfsha256-x25519', 'ike', { [ENCR]: [CHACHA], [PRF]: [P256], [KE]: [X25519] }],
    ['aes256gcm-prfsha512-curve25519', 'ike', { [ENCR]: [[GCM16, 256]], [PRF]: [P512], [KE]: [X25519] }],
    ['aes128gcm8-aes192gcm12-aes256gcm128-prfsha256-ecp521', 'ike', { [ENCR]: [[GCM8, 128], [GCM12, 192], [GCM16, 256]], [PRF]: [P256], [KE]: [ECP521] }],
    // strongSwan testing/tests/ikev2/rw-mlkem gateway proposal
    ['aes256-aes128-sha384-sha256-ecp384-x25519-ke1_mlkem768-ke1_mlkem1024-ke1_mlkem512-ke1_none', 'ike',
      { [ENCR]: [[CBC, 256], [CBC, 128]], [INTEG]: [SHA384, SHA256], [PRF]: [P384, P256], [KE]: [ECP384, X25519], [AKE1]: [MLKEM768, MLKEM1024, MLKEM512, 0] }],
    // AEAD + integrity keyword, no prf: the integrity algorithm names the PRF, then goes away
    ['aes256gcm16-sha384-ecp384', 'ike', { [ENCR]: [[GCM16, 256]], [PRF]: [P384], [KE]: [ECP384] }],
    // keyword order does not matter; gaps between rounds are allowed
    ['x25519-ke7_mlkem768-aes256gcm16-prfsha256', 'ike', { [ENCR]: [[GCM16, 256]], [PRF]: [P256], [KE]: [X25519], [AKE7]: [MLKEM768] }],
    ['mlkem512-aes256gcm16-prfsha256', 'ike', { [ENCR]: [[GCM16, 256]], [PRF]: [P256], [KE]: [MLKEM512] }],
    ['AES256-SHA256-MODP3072', 'ike', { [ENCR]: [[CBC, 256]], [INTEG]: [SHA256], [PRF]: [P256], [KE]: [MODP3072] }],
    // explicit PRF: no derivation from the integrity algorithm; NONE dropped from IKE KE
    ['aes-sha512-prfsha256-modp2048-none', 'ike', { [ENCR]: [[CBC, 128]], [INTEG]: [SHA512], [PRF]: [P256], [KE]: [MODP2048] }],
    ['aes256-sha256-sha256-modp2048-modp2048', 'ike', { [ENCR]: [[CBC, 256]], [INTEG]: [SHA256], [PRF]: [P256], [KE]: [MODP2048] }],
    ['aes256gcm16', 'esp', { [ENCR]: [[GCM16, 256]], [ESN]: [0] }],
    ['aes256gcm16-ecp384-ke1_mlkem768-esn', 'esp', { [ENCR]: [[GCM16, 256]], [KE]: [ECP384], [AKE1]: [MLKEM768], [ESN]: [1] }],
    ['aes128-sha256-esn-noesn', 'esp', { [ENCR]: [[CBC, 128]], [INTEG]: [SHA256], [ESN]: [1, 0] }],
    ['aes256gcm16-modp2048-none', 'esp', { [ENCR]: [[GCM16, 256]], [KE]: [MODP2048, 0], [ESN]: [0] }],
    ['chacha20poly1305compat-noesn', 'esp', { [ENCR]: [[CHACHA, 256]], [ESN]: [0] }],
  ];
  for (const [text, proto, want] of table) {
    it(`${proto}: ${text}`, () => expectSpec(parseProposal(text, proto), want));
  }
  it('default expands to an AEAD and a classic proposal', () => {
    const d = parseProposals(['default'], 'ike');
    expect(d).toHaveLength(2);
    expect(d[0]!.transforms[ENCR]![0]).toEqual({ id: GCM16, keyLength: 128 });
    expect(d[1]!.transforms[INTEG]).toBeDefined();
    expect(parseProposal('default', 'ike')).toEqual(d[0]);
    expect(defaultProposals('esp').every((p) => p.transforms[ESN]![0]!.id === 0)).toBe(true);
    // default can be mixed with explicit proposals
    expect(parseProposals(['aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'default'], 'ike')).toHaveLength(3);
  });
});

describe('parseProposal: invalid strings', () => {
  const table: [string, SaProtocol, RegExp][] = [
    ['aes256-sha256-foo', 'ike', /unknown algorithm keyword 'foo'/],
    ['aes512-sha256-x25519', 'ike', /unknown algorithm keyword 'aes512'/],
    ['aes256-sha1-modp2048', 'ike', /algorithm 'sha1' is not supported/],
    ['3des-sha256-modp2048', 'ike', /algorithm '3des' is not supported/],
    ['aes256gcm16-aes256-sha256-modp2048', 'ike', /AEAD and classic/],
    ['sha256-prfsha256-modp2048', 'ike', /encryption algorithm is required/],
    ['aes256-sha256', 'ike', /needs a key exchange method/],
    ['aes256gcm16-prfsha256-none', 'ike', /needs a key exchange method/],
    ['aes256gcm16-x25519', 'ike', /PRF is required/],
    ['aes256-prfsha256-x25519', 'ike', /classic encryption needs an integrity algorithm/],
    ['aes256gcm16-prfsha256-sha256-x25519', 'ike', /'HMAC_SHA2_256_128' is meaningless with AEAD/],
    ['aes256gcm16-prfsha256-x25519-ke8_mlkem768', 'ike', /'ke8_mlkem768'.*1\.\.7/],
    ['aes256gcm16-prfsha256-x25519-ke0_mlkem768', 'ike', /'ke0_mlkem768'.*1\.\.7/],
    ['aes256gcm16-prfsha256-x25519-ke1_aes256', 'ike', /'ke1_aes256' is not a key exchange method/],
    ['aes256gcm16-prfsha256-x25519-ke1_', 'ike', /'ke1_' is not a key exchange method/],
    ['aes256gcm16-prfsha256-x25519-ke1_kyber3', 'ike', /'kyber3' in 'ke1_kyber3' is not supported/],
    ['aes256gcm16-prfsha256-x25519-esn', 'ike', /esn\/noesn are only valid in ESP/],
    ['aes256gcm16-prfsha256--x25519', 'ike', /empty keyword/],
    ['', 'ike', /empty proposal/],
    ['aes256gcm16-prfsha256', 'esp', /PRF keywords are not valid in ESP/],
    ['aes256gcm16-sha256', 'esp', /meaningless with AEAD/],
    ['aes256', 'esp', /classic encryption needs an integrity algorithm/],
    ['aes256gcm16-ke1_mlkem768', 'esp', /need a key exchange method/],
    ['aes256gcm16-none-ke1_mlkem768', 'esp', /need a key exchange method/],
    ['aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem768', 'ike', /cannot use distinct methods/],
  ];
  for (const [text, proto, re] of table) {
    it(`${proto}: '${text}' → ${re.source}`, () => {
      let err: unknown;
      try {
        parseProposal(text, proto, 'tunnels[0].ike_proposals[0]');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('ERR_CONFIG');
      expect((err as ConfigError).path).toBe('tunnels[0].ike_proposals[0]');
      expect((err as Error).message).toMatch(re);
    });
  }
});

// ---------------------------------------------------------------- SA payloads

const offer = (texts: string[], proto: SaProtocol = 'ike', spi = new Uint8Array(0)): Proposal[] =>
  toSaProposals(texts.map((t) => parseProposal(t, proto)), proto, spi);
const conf = (texts: string[], proto: SaProtocol = 'ike'): ProposalSpec[] => texts.map((t) => parseProposal(t, proto));
/** A proposal as a peer might send it, including things our parser refuses. */
function raw(num: number, protocol: number, transforms: [number, number, number?][], spi = new Uint8Array(0)): Proposal {
  return { num, protocol, spi, transforms: transforms.map(([type, id, keyLength]) => (keyLength === undefined ? { type, id } : { type, id, keyLength })) };
}
function manualSpec(protocol: SaProtocol, t: Partial<Record<number, number[]>>): ProposalSpec {
  const transforms: Partial<Record<number, TransformChoice[]>> = {};
  for (const [k, v] of Object.entries(t)) transforms[Number(k)] = v!.map((id) => (Number(k) === ENCR ? { id, keyLength: 256 } : { id }));
  return { protocol, transforms, text: 'manual' };
}
const pick = (p: Proposal): [number, number][] => p.transforms.map((t) => [t.type, t.id]);

describe('toSaProposals', () => {
  it('numbers proposals from 1, keeps key lengths, copies the SPI, orders types like strongSwan', () => {
    const spi = new Uint8Array([1, 2, 3, 4]);
    const ps = toSaProposals(conf(['aes256gcm16-ecp384-ke1_mlkem768-esn', 'aes128-sha256'], 'esp'), 'esp', spi);
    expect(ps.map((p) => p.num)).toEqual([1, 2]);
    expect(ps[0]!.protocol).toBe(ProtocolId.ESP);
    expect(ps[0]!.spi).toEqual(spi);
    expect(ps[0]!.spi).not.toBe(spi);
    expect(ps[0]!.transforms).toEqual([
      { type: ENCR, id: GCM16, keyLength: 256 },
      { type: KE, id: ECP384 },
      { type: ESN, id: 1 },
      { type: AKE1, id: MLKEM768 },
    ]);
    expect(pick(ps[1]!)).toEqual([[ENCR, CBC], [INTEG, SHA256], [ESN, 0]]);
  });
  it('skipKe leaves out KE and ADDKE (Child SA in IKE_AUTH)', () => {
    const ps = toSaProposals(conf(['aes256gcm16-ecp384-ke1_mlkem768'], 'esp'), 'esp', new Uint8Array(4), { skipKe: true });
    expect(pick(ps[0]!)).toEqual([[ENCR, GCM16], [ESN, 0]]);
  });
});

// ---------------------------------------------------------------- selection

describe('selectProposal', () => {
  it('matches a hybrid proposal and echoes one transform per type', () => {
    const r = selectProposal(offer(['aes256gcm16-prfsha384-x25519-ke1_mlkem768']), conf(['aes256gcm16-prfsha384-x25519-ke1_mlkem768']))!;
    expect(r.chosen).toEqual({ encr: { id: GCM16, keyLength: 256 }, prf: P384, ke: X25519, addKe: [MLKEM768] });
    expect(r.proposal.num).toBe(1);
    expect(r.proposal.transforms).toEqual([
      { type: ENCR, id: GCM16, keyLength: 256 },
      { type: PRF, id: P384 },
      { type: KE, id: X25519 },
      { type: AKE1, id: MLKEM768 },
    ]);
    expect(formatChosen(r.chosen)).toBe('AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/ML_KEM_768');
  });

  // RFC 9370 optional rounds: [offered, configured, expected addKe (undefined = no match), echoed ADDKE1]
  const rfc9370: [string, string, string, number[] | undefined, number | undefined][] = [
    ['peer lacks ADDKE, we list ke1_none', 'aes256gcm16-prfsha384-x25519', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none', [], undefined],
    ['peer lacks ADDKE, we require it', 'aes256gcm16-prfsha384-x25519', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', undefined, undefined],
    ['peer optional round, we have none', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none', 'aes256gcm16-prfsha384-x25519', [], 0],
    ['peer requires a round we lack', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16-prfsha384-x25519', undefined, undefined],
    ['both optional, only NONE in common', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none', 'aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_none', [], 0],
    ['both optional, method in common wins over NONE', 'aes256gcm16-prfsha384-x25519-ke1_none-ke1_mlkem768', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none', [MLKEM768], MLKEM768],
    ['no overlap in a required round', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16-prfsha384-x25519-ke1_mlkem1024', undefined, undefined],
    ['two rounds', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem1024', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem1024', [MLKEM768, MLKEM1024], MLKEM768],
    ['second round optional on our side', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem1024-ke2_none', [MLKEM768], MLKEM768],
  ];
  for (const [name, o, cfg, addKe, echo1] of rfc9370) {
    it(`RFC 9370: ${name}`, () => {
      const r = selectProposal(offer([o]), conf([cfg]));
      if (addKe === undefined) {
        expect(r).toBeUndefined();
        return;
      }
      expect(r!.chosen.addKe).toEqual(addKe);
      expect(r!.proposal.transforms.find((t) => t.type === AKE1)?.id).toBe(echo1);
    });
  }

  it('alternatives inside one ADDKE slot: our order, or the peer\'s with preferConfigured=false', () => {
    const o = offer(['aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_mlkem768']);
    const cf = conf(['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_mlkem1024']);
    expect(selectProposal(o, cf)!.chosen.addKe).toEqual([MLKEM768]);
    expect(selectProposal(o, cf, { preferConfigured: false })!.chosen.addKe).toEqual([MLKEM1024]);
  });

  it('backtracks when the preferred choice of one round makes a later round impossible', () => {
    // Round 1 prefers ML-KEM-1024, but round 2 can only be ML-KEM-1024 and ADDKE choices must be distinct.
    const r = selectProposal(
      offer(['aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_mlkem768-ke2_mlkem1024']),
      conf(['aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_mlkem768-ke2_mlkem1024-ke2_mlkem768']),
    )!;
    expect(r.chosen.addKe).toEqual([MLKEM768, MLKEM1024]);
    // An optional round falls back to NONE when its only method is taken by a required later round.
    const r2 = selectProposal(offer(['aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_none-ke4_mlkem1024']), conf(['aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_none-ke4_mlkem1024']))!;
    expect(r2.chosen.addKe).toEqual([MLKEM1024]);
    expect(pick(r2.proposal).filter(([t]) => t >= AKE1)).toEqual([[AKE1, 0], [AKE4, MLKEM1024]]);
  });

  it('strongswan/strongswan#2048: finds the combination one-pass selection misses', () => {
    // The proposals from the issue, with KYBER_L1/L3/L5 standing as ML-KEM-512/768/1024 and MODP ids as in IANA.
    const [MODP1024, MODP1536, MODP4096, MODP6144, MODP8192, SHA1_96, PRF_SHA1] = [2, 5, 16, 17, 18, 2, 2];
    const received = raw(1, ProtocolId.IKE, [
      [ENCR, CBC, 256], [INTEG, SHA1_96], [PRF, PRF_SHA1],
      [KE, ECP256], [KE, MODP1536], [KE, MODP1024],
      [AKE1, MLKEM1024], [AKE1, MLKEM768], [AKE1, 0],
      [AKE2, MLKEM768], [AKE3, MLKEM512], [AKE4, MLKEM1024],
      [AKE5, MLKEM1024], [AKE5, 0], [AKE6, MODP6144], [AKE6, MODP4096],
    ]);
    const legacy = raw(2, ProtocolId.IKE, [[ENCR, CBC, 256], [INTEG, SHA1_96], [PRF, PRF_SHA1], [KE, MODP1024]]);
    const configured = manualSpec('ike', {
      [ENCR]: [CBC], [INTEG]: [SHA1_96], [PRF]: [PRF_SHA1], [KE]: [MODP1024, MODP1536, MODP2048],
      [AKE1]: [MLKEM1024, 0], [AKE2]: [MLKEM768, MODP2048], [AKE3]: [MLKEM512], [AKE4]: [MLKEM1024],
      [AKE5]: [MLKEM512, 0], [AKE6]: [MODP3072, MODP4096, MODP6144, MODP8192],
    });
    // One pass per type (first common entry in our order) would take ML-KEM-1024 twice (ADDKE1 and ADDKE4).
    const onePass = [AKE1, AKE4].map((t) => configured.transforms[t]!.find((x) => received.transforms.some((y) => y.type === t && y.id === x.id))!.id);
    expect(onePass).toEqual([MLKEM1024, MLKEM1024]);
    const r = selectProposal([received, legacy], [configured])!;
    expect(r).toBeDefined();
    expect(r.proposal.num).toBe(1);
    expect(r.chosen.ke).toBe(MODP1024);
    expect(r.chosen.addKe).toEqual([MLKEM768, MLKEM512, MLKEM1024, MODP4096]);
    expect(pick(r.proposal).filter(([t]) => t >= AKE1)).toEqual([[AKE1, 0], [AKE2, MLKEM768], [AKE3, MLKEM512], [AKE4, MLKEM1024], [AKE5, 0], [AKE6, MODP4096]]);
  });

  it('stays fast on a hostile, unsatisfiable proposal (7 rounds, 3 methods, no NONE)', () => {
    const rounds: [number, number][] = [];
    for (let t = AKE1; t <= AKE7; t++) for (const m of [MLKEM512, MLKEM768, MLKEM1024]) rounds.push([t, m]);
    const encrs: [number, number, number][] = [128, 192, 256].flatMap((k) => [GCM8, GCM12, GCM16].map((e): [number, number, number] => [ENCR, e, k]));
    const hostile = raw(1, ProtocolId.IKE, [...encrs, [PRF, P256], [PRF, P384], [PRF, P512], [KE, X25519], [KE, ECP256], [KE, ECP384], ...rounds]);
    const spec = manualSpec('ike', { [ENCR]: [GCM16], [PRF]: [P256, P384, P512], [KE]: [X25519, ECP256, ECP384], [AKE1]: [35, 36, 37], [AKE2]: [35, 36, 37], [AKE3]: [35, 36, 37], [AKE4]: [35, 36, 37], [AKE5]: [35, 36, 37], [AKE6]: [35, 36, 37], [AKE7]: [35, 36, 37] });
    const t0 = performance.now();
    expect(selectProposal(Array.from({ length: 50 }, (_, i) => ({ ...hostile, num: i + 1 })), [spec])).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('rejects ENCR / KE / key-length mismatches', () => {
    expect(selectProposal(offer(['aes128gcm16-prfsha384-x25519']), conf(['aes256gcm16-prfsha384-x25519']))).toBeUndefined();
    expect(selectProposal(offer(['aes256gcm16-prfsha384-ecp256']), conf(['aes256gcm16-prfsha384-x25519']))).toBeUndefined();
    expect(selectProposal(offer(['aes128-sha256-x25519']), conf(['aes256-sha256-x25519']))).toBeUndefined();
    expect(selectProposal(offer(['aes256-sha256-prfsha256-x25519']), conf(['aes256-sha384-prfsha256-x25519']))).toBeUndefined();
  });

  it('AEAD: echoes the peer\'s INTEG NONE; a classic cipher never accepts INTEG NONE', () => {
    const aead = raw(1, ProtocolId.IKE, [[ENCR, GCM16, 256], [INTEG, 0], [PRF, P256], [KE, X25519]]);
    const r = selectProposal([aead], conf(['aes256gcm16-prfsha256-x25519']))!;
    expect(pick(r.proposal)).toEqual([[ENCR, GCM16], [INTEG, 0], [PRF, P256], [KE, X25519]]);
    expect(r.chosen.integ).toBeUndefined();
    const classic = raw(1, ProtocolId.IKE, [[ENCR, CBC, 256], [INTEG, 0], [PRF, P256], [KE, X25519]]);
    expect(selectProposal([classic], conf(['aes256-sha256-prfsha256-x25519']))).toBeUndefined();
  });

  it('skips proposals with unknown transform types or attributes, and other protocols', () => {
    const unknownType = raw(1, ProtocolId.IKE, [[ENCR, GCM16, 256], [PRF, P256], [KE, X25519], [13, 1]]);
    const good = raw(2, ProtocolId.IKE, [[ENCR, GCM16, 256], [PRF, P256], [KE, X25519]]);
    expect(selectProposal([unknownType, good], conf(['aes256gcm16-prfsha256-x25519']))!.proposal.num).toBe(2);
    const attr: Proposal = { ...good, num: 1, transforms: good.transforms.map((t): Transform => (t.type === ENCR ? { ...t, otherAttributes: [{ type: 99, value: 1 }] } : t)) };
    expect(selectProposal([attr], conf(['aes256gcm16-prfsha256-x25519']))).toBeUndefined();
    expect(selectProposal(offer(['aes256gcm16'], 'esp'), conf(['aes256gcm16-prfsha256-x25519']))).toBeUndefined();
  });

  it('prefers our proposal order by default, the peer\'s on request', () => {
    const o = offer(['aes128gcm16-prfsha256-x25519', 'aes256gcm16-prfsha384-ecp384']);
    const cf = conf(['aes256gcm16-prfsha384-ecp384', 'aes128gcm16-prfsha256-x25519']);
    const a = selectProposal(o, cf)!;
    expect([a.proposal.num, a.chosen.encr.keyLength]).toEqual([2, 256]);
    const b = selectProposal(o, cf, { preferConfigured: false })!;
    expect([b.proposal.num, b.chosen.encr.keyLength]).toEqual([1, 128]);
  });

  describe('ESP', () => {
    const spi = new Uint8Array([0xc0, 0xff, 0xee, 0x01]);
    it('echoes proposal number and SPI', () => {
      const o = toSaProposals(conf(['aes128-sha256', 'aes256gcm16'], 'esp'), 'esp', spi);
      const r = selectProposal(o, conf(['aes256gcm16'], 'esp'))!;
      expect(r.proposal.num).toBe(2);
      expect(r.proposal.spi).toEqual(spi);
      expect(r.chosen).toEqual({ encr: { id: GCM16, keyLength: 256 }, addKe: [], esn: false });
    });
    it('skipKe: the first Child SA ignores KE on both sides', () => {
      const cf = conf(['aes256gcm16-ecp384-ke1_mlkem768'], 'esp');
      expect(selectProposal(offer(['aes256gcm16'], 'esp'), cf)).toBeUndefined();
      const r = selectProposal(offer(['aes256gcm16'], 'esp'), cf, { skipKe: true })!;
      expect(r.chosen.ke).toBeUndefined();
      // the peer may still include KE transforms; they are not echoed
      const r2 = selectProposal(offer(['aes256gcm16-ecp256-ke1_mlkem1024'], 'esp'), cf, { skipKe: true })!;
      expect(pick(r2.proposal)).toEqual([[ENCR, GCM16], [ESN, 0]]);
      expect(r2.chosen.addKe).toEqual([]);
    });
    it('PFS optional with "none"; PFS chosen when offered', () => {
      const cf = conf(['aes256gcm16-modp2048-none'], 'esp');
      expect(selectProposal(offer(['aes256gcm16'], 'esp'), cf)!.chosen.ke).toBeUndefined();
      expect(selectProposal(offer(['aes256gcm16-modp2048'], 'esp'), cf)!.chosen.ke).toBe(MODP2048);
    });
    it('ESN must be agreed', () => {
      expect(selectProposal(offer(['aes256gcm16-esn'], 'esp'), conf(['aes256gcm16'], 'esp'))).toBeUndefined();
      const r = selectProposal(offer(['aes256gcm16-esn-noesn'], 'esp'), conf(['aes256gcm16'], 'esp'))!;
      expect(r.chosen.esn).toBe(false);
      expect(pick(r.proposal)).toContainEqual([ESN, 0]);
      expect(selectProposal(offer(['aes256gcm16-esn-noesn'], 'esp'), conf(['aes256gcm16-esn'], 'esp'))!.chosen.esn).toBe(true);
    });
  });
});

describe('verifySelectedProposal (initiator side)', () => {
  const ours = conf(['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none', 'aes256-sha256-ecp256']);
  const answer = (num: number, t: [number, number, number?][]): Proposal[] => [raw(num, ProtocolId.IKE, t)];
  it('accepts a proper single-transform answer, with or without an echoed NONE round', () => {
    expect(verifySelectedProposal(answer(1, [[ENCR, GCM16, 256], [PRF, P384], [KE, X25519], [AKE1, MLKEM768]]), ours)!.addKe).toEqual([MLKEM768]);
    expect(verifySelectedProposal(answer(1, [[ENCR, GCM16, 256], [PRF, P384], [KE, X25519], [AKE1, 0]]), ours)!.addKe).toEqual([]);
    expect(verifySelectedProposal(answer(1, [[ENCR, GCM16, 256], [PRF, P384], [KE, X25519]]), ours)!.addKe).toEqual([]);
    expect(verifySelectedProposal(answer(2, [[ENCR, CBC, 256], [INTEG, SHA256], [PRF, P256], [KE, ECP256]]), ours)!.integ).toBe(SHA256);
  });
  it('rejects answers that are not a subset of the numbered offer', () => {
    expect(verifySelectedProposal(answer(1, [[ENCR, GCM16, 256], [PRF, P384], [KE, X25519], [KE, ECP256]]), ours)).toBeUndefined();
    expect(verifySelectedProposal(answer(1, [[ENCR, GCM16, 256], [PRF, P256], [KE, X25519]]), ours)).toBeUndefined();
    expect(verifySelectedProposal(answer(2, [[ENCR, GCM16, 256], [PRF, P384], [KE, X25519]]), ours)).toBeUndefined();
    expect(verifySelectedProposal(answer(3, [[ENCR, GCM16, 256], [PRF, P384], [KE, X25519]]), ours)).toBeUndefined();
    expect(verifySelectedProposal([...answer(1, [[ENCR, GCM16, 256], [PRF, P384], [KE, X25519]]), ...answer(2, [])], ours)).toBeUndefined();
  });
});

describe('KE helpers', () => {
  const specs = conf(['aes256gcm16-prfsha384-x25519-ecp384-ke1_mlkem768', 'aes256-sha256-ecp384-modp3072']);
  it('lists distinct type-4 methods in preference order', () => {
    expect(keMethodsInOrder(specs)).toEqual([X25519, ECP384, MODP3072]);
    expect(initialKeMethod(specs)).toBe(X25519);
  });
  it('INVALID_KE_PAYLOAD: accept only methods we proposed, and move them first', () => {
    expect(acceptsKeMethod(specs, MODP3072)).toBe(true);
    expect(acceptsKeMethod(specs, MLKEM768)).toBe(false); // only an ADDKE method, not type 4
    const p = promoteKeMethod(specs, ECP384);
    expect(p[0]!.transforms[KE]).toEqual([{ id: ECP384 }, { id: X25519 }]);
    expect(p[1]!.transforms[KE]).toEqual([{ id: ECP384 }, { id: MODP3072 }]);
    expect(initialKeMethod(p)).toBe(ECP384);
    expect(specs[0]!.transforms[KE]).toEqual([{ id: X25519 }, { id: ECP384 }]); // input untouched
  });
  it('proposalKeMethod reads the selected KE', () => {
    const r = selectProposal(offer(['aes256-sha256-ecp384-modp3072']), specs)!;
    expect(proposalKeMethod(r.proposal)).toBe(ECP384);
  });
  it('formatProposal lists everything strongSwan-style', () => {
    expect(formatProposal(specs[0]!)).toBe('IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/ECP_384/KE1_ML_KEM_768');
    expect(formatProposal(offer(['aes128-sha256-esn'], 'esp')[0]!)).toBe('ESP:AES_CBC_128/HMAC_SHA2_256_128/EXT_SEQ');
  });
});

// ---------------------------------------------------------------- exhaustive oracle

/**
 * Brute force over every combination of one transform per type, in our
 * preference order (types ENCR, INTEG, PRF, KE, ADDKE1..3): the first valid
 * combination is what selectProposal must return with preferConfigured.
 */
function oracle(o: Proposal, s: ProposalSpec): number[] | undefined {
  const types = [ENCR, INTEG, PRF, KE, AKE1, AKE2, AKE3];
  const opts = types.map((t) => {
    const off = o.transforms.filter((x) => x.type === t);
    const cfg = s.transforms[t];
    if (off.length && cfg) return cfg.filter((c2) => off.some((x) => x.id === c2.id && x.keyLength === c2.keyLength)).map((c2) => c2.id * 1000 + (c2.keyLength ?? 0));
    if (t === ENCR || t === PRF) return off.length || cfg ? [] : [-1];
    if (off.length) return off.some((x) => x.id === 0) ? [0] : [];
    if (cfg) return cfg.some((x) => x.id === 0) ? [0] : [];
    return [-1]; // type absent on both sides
  });
  const isAead = (v: number): boolean => [GCM16 * 1000 + 256, GCM16 * 1000 + 128].includes(v);
  const rec = (i: number, acc: number[]): number[] | undefined => {
    if (i === types.length) return acc;
    let list = opts[i]!;
    if (types[i] === INTEG) {
      // AEAD: integrity decided by the cipher; classic: a real algorithm is needed
      if (isAead(acc[0]!)) list = [0];
      else list = list.filter((v) => v > 0);
    }
    for (const v of list) {
      if (types[i]! >= AKE1 && v > 0 && acc.slice(4).includes(v)) continue;
      const r = rec(i + 1, [...acc, v]);
      if (r) return r;
    }
    return undefined;
  };
  return rec(0, []);
}

describe('selectProposal against an exhaustive oracle', () => {
  // Small pools, so that random pairs overlap often enough to exercise both outcomes.
  const addKe = [0, MLKEM512, MLKEM768, MLKEM1024];
  const kw: Record<number, string> = { 0: 'none', 35: 'mlkem512', 36: 'mlkem768', 37: 'mlkem1024' };
  const side = fc.record({
    encr: fc.subarray([0, 1], { minLength: 1 }),
    integ: fc.subarray(['sha256', 'sha384'], { minLength: 1 }),
    prf: fc.subarray(['prfsha256', 'prfsha384'], { minLength: 1 }),
    ke: fc.subarray(['x25519', 'ecp256'], { minLength: 1 }),
    rounds: fc.array(fc.uniqueArray(fc.constantFrom(...addKe), { maxLength: 3 }), { minLength: 3, maxLength: 3 }),
  });
  const tryParse = (t: string): ProposalSpec | undefined => {
    try {
      return parseProposal(t, 'ike');
    } catch (e) {
      // only the RFC 9370 distinctness rule can reject these generated strings
      expect((e as Error).message).toMatch(/distinct methods/);
      return undefined;
    }
  };
  const text = (x: { encr: number[]; integ: string[]; prf: string[]; ke: string[]; rounds: number[][] }, aead: boolean): string => {
    const parts = [...x.encr.map((i) => (aead ? ['aes128gcm16', 'aes256gcm16'] : ['aes128', 'aes256'])[i]!), ...(aead ? [] : x.integ), ...x.prf, ...x.ke];
    x.rounds.forEach((r, i) => r.forEach((m) => parts.push(`ke${i + 1}_${kw[m]}`)));
    return parts.join('-');
  };
  // Mostly the same cipher family on both sides.
  const families = fc.tuple(fc.boolean(), fc.nat(9)).map(([a, n]) => [a, n === 0 ? !a : a] as const);
  let outcomes = { match: 0, none: 0 };
  it('finds a match exactly when one exists, and the most preferred one', () => {
    fc.assert(
      fc.property(side, side, families, (a, b, [aeadA, aeadB]) => {
        const sa = tryParse(text(a, aeadA));
        const s = tryParse(text(b, aeadB));
        fc.pre(sa !== undefined && s !== undefined);
        const o = toSaProposals([sa!], 'ike', new Uint8Array(0))[0]!;
        const want = oracle(o, s!);
        const got = selectProposal([o], [s!]);
        outcomes[want ? 'match' : 'none']++;
        if (!want) return got === undefined;
        if (!got) return false;
        // Same encoding as the oracle: id*1000 + key length; 0 = NONE; -1 = type absent on both sides.
        const ch = got.chosen;
        const rounds = [AKE1, AKE2, AKE3].map((t) => {
          const tr = got.proposal.transforms.find((x) => x.type === t);
          return tr ? tr.id * 1000 : s!.transforms[t] ? 0 : -1;
        });
        const gotVec = [ch.encr.id * 1000 + (ch.encr.keyLength ?? 0), (ch.integ ?? 0) * 1000, (ch.prf ?? 0) * 1000, (ch.ke ?? 0) * 1000, ...rounds];
        expect(gotVec).toEqual(want);
        return true;
      }),
      { numRuns: 2000 },
    );
    // the generator must produce both outcomes in quantity for this test to mean anything
    expect(outcomes.match).toBeGreaterThan(75); // about 250 expected
    expect(outcomes.none).toBeGreaterThan(75);
    outcomes = { match: 0, none: 0 };
  });
  it('every proposal we build is accepted by the same configuration (self-match)', () => {
    fc.assert(
      fc.property(side, fc.boolean(), (a, aead) => {
        const s = tryParse(text(a, aead));
        fc.pre(s !== undefined);
        const r = selectProposal(toSaProposals([s!], 'ike', new Uint8Array(0)), [s!]);
        return r !== undefined && verifySelectedProposal([r.proposal], [s!]) !== undefined;
      }),
      { numRuns: 300 },
    );
  });
});
