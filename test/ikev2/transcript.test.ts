/**
 * draft-ietf-ipsecme-ikev2-downgrade-prevention (firmware/ikev2/transcript.ts):
 * the notify, the negotiation and policy rules, the signed octets byte by
 * byte against an expectation assembled by hand from §6, and the downgrade
 * attack of §4: on the octets alone, and against two real engines (which do
 * not implement the extension yet, so the attack must succeed there).
 */
import { describe, it, expect } from 'vitest';
import { createHmac } from 'node:crypto';
import {
  IKE_SA_INIT_FULL_TRANSCRIPT_AUTH,
  ZERO_PREFIX_LEN,
  announces,
  authOctets,
  carriesTranscriptNotify,
  describeAuthOctets,
  isTranscriptPolicy,
  negotiated,
  responderPolicy,
  transcriptNotify,
  transcriptSignedOctets,
  tunnelAccepts,
  type AuthOctetsInput,
  type TranscriptPolicy,
} from '../../firmware/ikev2/transcript.js';
import { decodePlain, encodePayloads, encodePlain } from '../../firmware/ikev2/codec/index.js';
import type { KePayload, NoncePayload, NotifyPayload, Payload, SaPayload } from '../../firmware/ikev2/codec/types.js';
import { ExchangeType, Notify, PayloadType, TransformType, KeMethod, Encr, PrfId } from '../../firmware/ikev2/constants.js';
import { createPrf } from '../../firmware/crypto/registry.js';
import { signedOctets, pskAuth, verifyAuth } from '../../firmware/ikev2/sa/keymat.js';
import { concat, fromHex, hex, u32be } from '../../firmware/util/bytes.js';
import { TestRng } from '../../firmware/util/rng.js';
import { stripAddKe, RecordingRng, installKciDowngradeAttack } from './downgrade-attacker.js';
import { pair, up, type Host } from './harness.js';

// ------------------------------------------------------------------ fixtures

const SPI_I = fromHex('8a1b2c3d4e5f6071');
const SPI_R = fromHex('1122334455667788');
const NI = new Uint8Array(32).map((_, i) => 0x10 + i);
const NR = new Uint8Array(32).map((_, i) => 0xc0 + i);
const KEI = new Uint8Array(32).fill(0x31);
const KER = new Uint8Array(32).fill(0x32);

function n(type: number, data: Uint8Array = new Uint8Array(0)): NotifyPayload {
  return { type: PayloadType.NOTIFY, protocol: 0, spi: new Uint8Array(0), notifyType: type, data };
}

/** IKE proposal x25519 + optional ML-KEM-768 round: ENCR AES-GCM-16/256, PRF SHA-384, KE 31, ADDKE1 {36, NONE}. */
function hybridSa(): SaPayload {
  return {
    type: PayloadType.SA,
    proposals: [
      {
        num: 1,
        protocol: 1,
        spi: new Uint8Array(0),
        transforms: [
          { type: TransformType.ENCR, id: Encr.AES_GCM_16, keyLength: 256 },
          { type: TransformType.PRF, id: PrfId.HMAC_SHA2_384 },
          { type: TransformType.KE, id: KeMethod.CURVE_25519 },
          { type: TransformType.ADDKE1, id: KeMethod.ML_KEM_768 },
          { type: TransformType.ADDKE1, id: KeMethod.NONE },
        ],
      },
    ],
  };
}

function request(payloadsOver?: Payload[], withNotify = true): Uint8Array {
  const payloads: Payload[] = payloadsOver ?? [
    hybridSa(),
    { type: PayloadType.KE, method: KeMethod.CURVE_25519, data: KEI } as KePayload,
    { type: PayloadType.NONCE, data: NI } as NoncePayload,
    n(Notify.INTERMEDIATE_EXCHANGE_SUPPORTED),
    ...(withNotify ? [transcriptNotify()] : []),
  ];
  return encodePlain({ spiI: SPI_I, spiR: new Uint8Array(8), exchange: ExchangeType.IKE_SA_INIT, response: false, initiator: true, messageId: 0, encrypted: false, payloads });
}

function response(addKe: boolean, withNotify = true): Uint8Array {
  const transforms = [
    { type: TransformType.ENCR, id: Encr.AES_GCM_16, keyLength: 256 },
    { type: TransformType.PRF, id: PrfId.HMAC_SHA2_384 },
    { type: TransformType.KE, id: KeMethod.CURVE_25519 },
    ...(addKe ? [{ type: TransformType.ADDKE1, id: KeMethod.ML_KEM_768 }] : []),
  ];
  const payloads: Payload[] = [
    { type: PayloadType.SA, proposals: [{ num: 1, protocol: 1, spi: new Uint8Array(0), transforms }] } as SaPayload,
    { type: PayloadType.KE, method: KeMethod.CURVE_25519, data: KER } as KePayload,
    { type: PayloadType.NONCE, data: NR } as NoncePayload,
    ...(addKe ? [n(Notify.INTERMEDIATE_EXCHANGE_SUPPORTED)] : []),
    ...(withNotify ? [transcriptNotify()] : []),
  ];
  return encodePlain({ spiI: SPI_I, spiR: SPI_R, exchange: ExchangeType.IKE_SA_INIT, response: true, initiator: false, messageId: 0, encrypted: false, payloads });
}

const prf = createPrf(PrfId.HMAC_SHA2_384);
const SK_PI = new Uint8Array(48).fill(0x5a);
const SK_PR = new Uint8Array(48).fill(0xa5);
const ID_I = concat(new Uint8Array([2, 0, 0, 0]), new TextEncoder().encode('a.example')); // ID_FQDN
const ID_R = concat(new Uint8Array([2, 0, 0, 0]), new TextEncoder().encode('b.example'));

/** Independent HMAC-SHA-384 (node:crypto directly, not the firmware Prf). */
function hmac384(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha384', key).update(data).digest());
}

function input(ofInitiator: boolean, fullTranscript: boolean, m1: Uint8Array, m2: Uint8Array, intAuth?: Uint8Array): AuthOctetsInput {
  return {
    ofInitiator,
    fullTranscript,
    realMessage1: m1,
    realMessage2: m2,
    nonceI: NI,
    nonceR: NR,
    prf,
    skP: ofInitiator ? SK_PI : SK_PR,
    idPayloadBody: ofInitiator ? ID_I : ID_R,
    ...(intAuth ? { intAuth } : {}),
  };
}

// ------------------------------------------------------------------ notify

describe('IKE_SA_INIT_FULL_TRANSCRIPT_AUTH notify (draft §6, §10)', () => {
  it('is status type 16447 with Protocol ID 0, SPI Size 0 and no data', () => {
    expect(IKE_SA_INIT_FULL_TRANSCRIPT_AUTH).toBe(16447);
    // Generic header: next 0, flags 0, length 8; then proto 0, SPI size 0, type 0x403f.
    expect(hex(encodePayloads([transcriptNotify()]))).toBe('0000000800' + '00403f');
  });

  it('is found in a decoded IKE_SA_INIT message and its data is ignored', () => {
    expect(carriesTranscriptNotify(decodePlain(request()))).toBe(true);
    expect(carriesTranscriptNotify(decodePlain(request(undefined, false)))).toBe(false);
    expect(carriesTranscriptNotify(decodePlain(response(false)))).toBe(true);
    expect(carriesTranscriptNotify(decodePlain(response(false, false)))).toBe(false);
    // "MUST ignore the content of the notification data ... if it is not empty"
    expect(carriesTranscriptNotify({ payloads: [n(IKE_SA_INIT_FULL_TRANSCRIPT_AUTH, fromHex('deadbeef'))] })).toBe(true);
    // Only the notify type counts, not a neighbouring codepoint or another payload type.
    expect(carriesTranscriptNotify({ payloads: [n(IKE_SA_INIT_FULL_TRANSCRIPT_AUTH - 1), n(IKE_SA_INIT_FULL_TRANSCRIPT_AUTH + 1)] })).toBe(false);
    expect(carriesTranscriptNotify({ payloads: [{ type: PayloadType.VENDOR, data: u32be(IKE_SA_INIT_FULL_TRANSCRIPT_AUTH) } as Payload] })).toBe(false);
  });
});

// ------------------------------------------------------------------ policy

describe('negotiation and policy', () => {
  it('uses the full transcript exactly when both notifies were exchanged (§6)', () => {
    for (const policy of ['off', 'on', 'required'] as TranscriptPolicy[]) {
      for (const weSent of [false, true]) {
        for (const peerSent of [false, true]) {
          const d = negotiated(weSent, peerSent, policy);
          const both = weSent && peerSent;
          if (policy === 'required' && !both) {
            expect(d.ok, `${policy} ${weSent} ${peerSent}`).toBe(false);
            if (!d.ok) expect(d.reason).toContain(weSent ? 'the peer did not announce' : 'we did not announce');
          } else {
            expect(d, `${policy} ${weSent} ${peerSent}`).toEqual({ ok: true, fullTranscript: both });
          }
        }
      }
    }
  });

  it('announces unless off; validates the knob', () => {
    expect(announces('off')).toBe(false);
    expect(announces('on')).toBe(true);
    expect(announces('required')).toBe(true);
    expect(isTranscriptPolicy('required')).toBe(true);
    expect(isTranscriptPolicy('yes')).toBe(false);
    expect(isTranscriptPolicy(undefined)).toBe(false);
  });

  it('merges responder candidates and filters tunnels at IKE_AUTH', () => {
    expect(responderPolicy([])).toBe('off');
    expect(responderPolicy(['off', 'off'])).toBe('off');
    expect(responderPolicy(['off', 'required'])).toBe('on');
    expect(responderPolicy(['on', 'required'])).toBe('on');
    expect(responderPolicy(['required', 'required'])).toBe('required');
    expect(tunnelAccepts('required', false)).toBe(false);
    expect(tunnelAccepts('required', true)).toBe(true);
    expect(tunnelAccepts('on', false)).toBe(true);
    expect(tunnelAccepts('off', true)).toBe(true);
  });
});

// ------------------------------------------------------------------ octets

describe('signed octets (draft §6, §7.1)', () => {
  const m1 = request();
  const m2 = response(true);

  it('InitiatorSignedOctets = ZeroPrefix | RealMessage2 | RealMessage1 | NonceRData | MACedIDForI, byte by byte', () => {
    const mac = hmac384(SK_PI, ID_I);
    const exp = new Uint8Array(8 + m2.length + m1.length + NR.length + mac.length);
    let o = 8; // ZeroPrefix: the array starts zeroed
    exp.set(m2, o);
    o += m2.length;
    exp.set(m1, o);
    o += m1.length;
    exp.set(NR, o);
    o += NR.length;
    exp.set(mac, o);
    const got = authOctets(input(true, true, m1, m2));
    expect(hex(got)).toBe(hex(exp));
    expect(ZERO_PREFIX_LEN).toBe(8);
    expect(hex(got.subarray(0, 8))).toBe('0000000000000000');
    // RealMessage2 right after the prefix starts with SPIi then SPIr.
    expect(hex(got.subarray(8, 24))).toBe(hex(SPI_I) + hex(SPI_R));
  });

  it('ResponderSignedOctets = ZeroPrefix | RealMessage1 | RealMessage2 | NonceIData | MACedIDForR, byte by byte', () => {
    const mac = hmac384(SK_PR, ID_R);
    const exp = concat(new Uint8Array(8), m1, m2, NI, mac);
    expect(hex(authOctets(input(false, true, m1, m2)))).toBe(hex(exp));
    expect(hex(transcriptSignedOctets(input(false, true, m1, m2)))).toBe(hex(exp));
    // RealMessage1 right after the prefix: SPIi then a zero SPIr.
    expect(hex(exp.subarray(8, 24))).toBe(hex(SPI_I) + '0000000000000000');
  });

  it('appends the RFC 9242 IntAuth to the modified octets (§7.1)', () => {
    const intAuth = concat(new Uint8Array(48).fill(1), new Uint8Array(48).fill(2), u32be(2));
    for (const ofI of [true, false]) {
      const without = authOctets(input(ofI, true, m1, m2));
      const withIa = authOctets(input(ofI, true, m1, m2, intAuth));
      expect(hex(withIa)).toBe(hex(concat(without, intAuth)));
    }
  });

  it('without the extension is byte-identical to RFC 7296 §2.15 (keymat.signedOctets)', () => {
    const intAuth = concat(new Uint8Array(48).fill(7), new Uint8Array(48).fill(8), u32be(3));
    for (const ia of [undefined, intAuth]) {
      const i = authOctets(input(true, false, m1, m2, ia));
      const r = authOctets(input(false, false, m1, m2, ia));
      expect(hex(i)).toBe(hex(signedOctets({ realMessage: m1, peerNonce: NR, prf, skP: SK_PI, idPayloadBody: ID_I, ...(ia ? { intAuth: ia } : {}) })));
      expect(hex(r)).toBe(hex(signedOctets({ realMessage: m2, peerNonce: NI, prf, skP: SK_PR, idPayloadBody: ID_R, ...(ia ? { intAuth: ia } : {}) })));
      // Hand-built too: RealMessage1 | NonceRData | MACedIDForI.
      if (!ia) expect(hex(i)).toBe(hex(concat(m1, NR, hmac384(SK_PI, ID_I))));
    }
  });

  it('the ZeroPrefix separates the two constructions (§6)', () => {
    for (const ofI of [true, false]) {
      const classic = authOctets(input(ofI, false, m1, m2));
      const full = authOctets(input(ofI, true, m1, m2));
      expect(hex(classic.subarray(0, 8))).not.toBe('0000000000000000'); // starts with SPIi != 0
      expect(hex(full.subarray(0, 8))).toBe('0000000000000000');
      expect(hex(full)).not.toBe(hex(classic));
    }
    // Initiator and responder octets differ even with equal keys and IDs.
    const same = (ofI: boolean) => authOctets({ ...input(ofI, true, m1, m2), skP: SK_PI, idPayloadBody: ID_I });
    expect(hex(same(true))).not.toBe(hex(same(false)));
  });

  it('rejects swapped, foreign or marker-prefixed messages', () => {
    expect(() => authOctets(input(true, true, m2, m1))).toThrow(TypeError);
    expect(() => authOctets(input(false, false, m2, m1))).toThrow(/response/);
    const otherSa = response(true);
    otherSa[0] ^= 1;
    expect(() => authOctets(input(true, true, m1, otherSa))).toThrow(/different IKE SAs/);
    expect(() => authOctets(input(true, true, concat(new Uint8Array(4), m1), m2))).toThrow(/non-ESP marker|zero/);
    expect(() => authOctets(input(true, true, m1.subarray(0, 20), m2))).toThrow(TypeError);
    const auth = m1.slice();
    auth[18] = ExchangeType.IKE_AUTH;
    expect(() => authOctets(input(true, false, auth, m2))).toThrow(/IKE_SA_INIT/);
  });

  it('describes the construction for logs', () => {
    expect(describeAuthOctets(true, true)).toBe('ZeroPrefix | RealMessage2 (received) | RealMessage1 (sent) | NonceRData | MACedIDForI');
    expect(describeAuthOctets(false, false)).toBe('RealMessage2 (sent) | NonceIData | MACedIDForR');
  });
});

// ------------------------------------------------------------------ stripAddKe

describe('stripAddKe (on-path attacker tool)', () => {
  it('removes every non-NONE ADDKE transform and nothing else', () => {
    const m1 = request();
    const out = stripAddKe(m1);
    expect(out).not.toBe(m1);
    const before = decodePlain(m1);
    const after = decodePlain(out);
    const sa = after.payloads.find((p) => p.type === PayloadType.SA) as SaPayload;
    expect(sa.proposals).toHaveLength(1);
    expect(sa.proposals[0]!.num).toBe(1);
    expect(sa.proposals[0]!.transforms).toEqual([
      { type: TransformType.ENCR, id: Encr.AES_GCM_16, keyLength: 256 },
      { type: TransformType.PRF, id: PrfId.HMAC_SHA2_384 },
      { type: TransformType.KE, id: KeMethod.CURVE_25519 },
      { type: TransformType.ADDKE1, id: KeMethod.NONE },
    ]);
    // Header Length follows the shorter SA payload (one 8-octet transform less).
    expect(out.length).toBe(m1.length - 8);
    expect(new DataView(out.buffer, out.byteOffset).getUint32(24)).toBe(out.length);
    // Every other payload is unchanged, in order.
    const others = (m: typeof before) => hex(encodePayloads(m.payloads.filter((p) => p.type !== PayloadType.SA)));
    expect(others(after)).toBe(others(before));
    expect(hex(out.subarray(0, 16))).toBe(hex(m1.subarray(0, 16)));
    expect(stripAddKe(out)).toBe(out); // nothing left to strip
  });

  it('handles several proposals and ADDKE types, keeps a non-ESP marker, optionally drops the IKE_INTERMEDIATE notify', () => {
    const sa: SaPayload = {
      type: PayloadType.SA,
      proposals: [
        { ...hybridSa().proposals[0]!, transforms: [...hybridSa().proposals[0]!.transforms, { type: TransformType.ADDKE2, id: KeMethod.ML_KEM_1024 }] },
        { num: 2, protocol: 1, spi: new Uint8Array(0), transforms: [{ type: TransformType.ENCR, id: Encr.AES_CBC, keyLength: 128 }, { type: TransformType.PRF, id: PrfId.HMAC_SHA2_256 }, { type: TransformType.INTEG, id: 12 }, { type: TransformType.KE, id: KeMethod.ECP_256 }, { type: TransformType.ADDKE3, id: KeMethod.ML_KEM_512 }] },
      ],
    };
    const m1 = request([sa, { type: PayloadType.KE, method: KeMethod.CURVE_25519, data: KEI } as KePayload, { type: PayloadType.NONCE, data: NI } as NoncePayload, n(Notify.INTERMEDIATE_EXCHANGE_SUPPORTED)]);
    const out = stripAddKe(concat(new Uint8Array(4), m1), { dropIntermediateNotify: true });
    expect(hex(out.subarray(0, 4))).toBe('00000000');
    const after = decodePlain(out.subarray(4));
    const props = (after.payloads.find((p) => p.type === PayloadType.SA) as SaPayload).proposals;
    expect(props.map((p) => p.transforms.filter((t) => t.type >= TransformType.ADDKE1).map((t) => t.id))).toEqual([[0], []]);
    expect(props[1]!.transforms.map((t) => t.type)).toEqual([TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE]);
    expect(after.payloads.some((p) => p.type === PayloadType.NOTIFY)).toBe(false);
  });

  it('leaves responses, other exchanges and garbage alone', () => {
    const m2 = response(true);
    expect(stripAddKe(m2)).toBe(m2);
    const junk = fromHex('0102030405');
    expect(stripAddKe(junk)).toBe(junk);
    const classical = request([{ ...hybridSa(), proposals: [{ ...hybridSa().proposals[0]!, transforms: hybridSa().proposals[0]!.transforms.slice(0, 3) }] }, { type: PayloadType.KE, method: KeMethod.CURVE_25519, data: KEI } as KePayload, { type: PayloadType.NONCE, data: NI } as NoncePayload]);
    expect(stripAddKe(classical)).toBe(classical);
  });
});

// ------------------------------------------------------------------ the attack on the octets

describe('downgrade attack of §4 on the AUTH octets (PSK)', () => {
  const psk = new TextEncoder().encode('initiator-psk-known-to-the-attacker');
  const m1 = request(); // what the initiator sent
  const m1x = stripAddKe(m1); // what the responder received
  const m2 = response(false); // the responder's (classical) choice, passed through untouched

  const auth = (ofI: boolean, full: boolean, rm1: Uint8Array) => pskAuth(prf, psk, authOctets(input(ofI, full, rm1, m2)));

  it('RFC 7296 alone: the stripped request breaks the honest initiator AUTH, but a forged one passes and the responder AUTH still verifies', () => {
    // Honest initiator AUTH covers m1; the responder checks against m1x.
    expect(verifyAuth(auth(true, false, m1x), auth(true, false, m1))).toBe(false);
    // KCI: the attacker knows the initiator's PSK (and SK_pi from the broken KE) and re-MACs over m1x.
    const forged = auth(true, false, m1x);
    expect(verifyAuth(auth(true, false, m1x), forged)).toBe(true); // responder accepts
    // The responder's AUTH does not cover m1: the initiator accepts it: downgrade undetected.
    expect(verifyAuth(auth(false, false, m1), auth(false, false, m1x))).toBe(true);
  });

  it('full transcript: the responder AUTH covers the stripped request, so the initiator detects the downgrade', () => {
    const forged = auth(true, true, m1x);
    expect(verifyAuth(auth(true, true, m1x), forged)).toBe(true); // the forged initiator AUTH still passes
    const fromResponder = auth(false, true, m1x);
    const initiatorExpects = auth(false, true, m1);
    expect(verifyAuth(initiatorExpects, fromResponder)).toBe(false); // detected (§5: an ordinary AUTH failure)
  });

  it('stripping the notify from either message makes the peers compute different octets (§6 Aside)', () => {
    const m1plain = request(undefined, false);
    const m2plain = response(false, false);
    // Request notify stripped: responder saw none -> RFC 7296 octets; initiator got the responder's -> full transcript.
    const iUses = negotiated(true, carriesTranscriptNotify(decodePlain(m2)), 'on');
    const rUses = negotiated(announces('on'), carriesTranscriptNotify(decodePlain(m1plain)), 'on');
    expect(iUses).toEqual({ ok: true, fullTranscript: true });
    expect(rUses).toEqual({ ok: true, fullTranscript: false });
    const iAuth = pskAuth(prf, psk, authOctets({ ...input(true, true, m1, m2) }));
    const rExpects = pskAuth(prf, psk, authOctets({ ...input(true, false, m1plain, m2) }));
    expect(verifyAuth(rExpects, iAuth)).toBe(false);
    // Response notify stripped: initiator uses RFC 7296 octets, responder the full transcript.
    expect(negotiated(true, carriesTranscriptNotify(decodePlain(m2plain)), 'on')).toEqual({ ok: true, fullTranscript: false });
    const rAuth = pskAuth(prf, psk, authOctets(input(false, true, m1, m2)));
    const iExpects = pskAuth(prf, psk, authOctets(input(false, false, m1, m2plain)));
    expect(verifyAuth(iExpects, rAuth)).toBe(false);
    // And 'required' turns the stripped notify into an immediate refusal instead.
    expect(negotiated(true, false, 'required').ok).toBe(false);
  });
});

// ------------------------------------------------------------------ two engines

type Pol = TranscriptPolicy;
/**
 * The TunnelConfig knob `fullTranscriptAuth` the integration adds (see
 * docs/downgrade-prevention.md). Typed as a plain object so this file
 * compiles before the field exists; before integration the engines ignore it.
 */
function knob(p?: Pol): object {
  return p ? { fullTranscriptAuth: p } : {};
}

/** Feature probe: does an engine configured 'on' put notify 16447 in its IKE_SA_INIT request? */
function engineAnnounces(): boolean {
  const { lab: l, a } = pair({ ...knob('on') }, { ...knob('on') });
  let seen = false;
  const send = l.net.send.bind(l.net);
  l.net.send = (from, to, data) => {
    try {
      const m = decodePlain(data);
      if (m.exchange === ExchangeType.IKE_SA_INIT && !m.response) seen ||= carriesTranscriptNotify(m);
    } catch {
      /* not a plain IKE message */
    }
    send(from, to, data);
  };
  up(l, a);
  return seen;
}
const INTEGRATED = engineAnnounces();

// Both sides allow the classical fallback (draft §4 precondition 2) but prefer ML-KEM-768.
const PROPOSALS = ['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none'];
const PSK = 'a-long-enough-test-psk-0123456789';

function engines(pi?: Pol, pr?: Pol) {
  const rng = new RecordingRng(new TestRng('rng-a'));
  const p = pair({ ikeProposals: PROPOSALS, psk: PSK, ...knob(pi) }, { ikeProposals: PROPOSALS, psk: PSK, ...knob(pr) }, {}, { a: { rng } });
  return { ...p, rng };
}

function attack(l: ReturnType<typeof engines>, fullTranscript: boolean, forgeAuth = true) {
  return installKciDowngradeAttack({
    net: l.lab.net,
    initiatorAddress: '192.0.2.1',
    responderAddress: '192.0.2.2',
    initiatorDraws: l.rng.draws,
    initiatorPsk: new TextEncoder().encode(PSK),
    fullTranscript,
    forgeAuth,
  });
}

const states = (l: ReturnType<typeof engines>, h: Host) => l.lab.status(h).map((s) => [s.state, s.keyExchanges]);
const established = (l: ReturnType<typeof engines>, h: Host) => l.lab.status(h).some((s) => s.state === 'ESTABLISHED');

/** Removes N(IKE_SA_INIT_FULL_TRANSCRIPT_AUTH) from the IKE_SA_INIT request or response on the wire. */
function stripNotify(l: ReturnType<typeof engines>, fromResponse: boolean): void {
  const send = l.lab.net.send.bind(l.lab.net);
  l.lab.net.send = (from, to, data) => {
    let out = data;
    try {
      const m = decodePlain(data);
      if (m.exchange === ExchangeType.IKE_SA_INIT && m.response === fromResponse && carriesTranscriptNotify(m)) {
        out = encodePlain({ ...m, encrypted: false, payloads: m.payloads.filter((p) => !(p.type === PayloadType.NOTIFY && (p as NotifyPayload).notifyType === IKE_SA_INIT_FULL_TRANSCRIPT_AUTH)) });
      }
    } catch {
      /* not a plain IKE message */
    }
    send(from, to, out);
  };
}

describe('KCI downgrade attack against two engines using RFC 7296 octets', () => {
  it('baseline: without an attacker they agree on x25519 + ML-KEM-768', () => {
    const l = engines('off', 'off');
    up(l.lab, l.a);
    l.lab.run();
    expect(states(l, l.a)).toEqual([['ESTABLISHED', ['CURVE_25519', 'ML_KEM_768']]]);
    expect(states(l, l.b)).toEqual([['ESTABLISHED', ['CURVE_25519', 'ML_KEM_768']]]);
  });

  it('stripping the ML-KEM offer alone is caught by RFC 7296 (the initiator AUTH covers RealMessage1)', () => {
    const l = engines('off', 'off');
    const atk = attack(l, false, false);
    up(l.lab, l.a);
    l.lab.run(10_000);
    expect(atk.stripped).toBe(true);
    expect(atk.forged).toBe(false);
    expect(established(l, l.a)).toBe(false);
    expect(established(l, l.b)).toBe(false);
    expect(l.a.events.some((e) => e.includes('AUTHENTICATION_FAILED'))).toBe(true);
    atk.restore();
  });

  it('with the initiator credential and the broken classical KE the downgrade succeeds', () => {
    const l = engines('off', 'off');
    const atk = attack(l, false);
    up(l.lab, l.a);
    l.lab.run();
    expect(atk.log).toEqual(['stripped ADDKE from IKE_SA_INIT request', 'broke key exchange 31; IKE SA keys known', "re-MACed the initiator's AUTH (RFC 7296 octets)"]);
    // Both peers think all is well, on a classical-only IKE SA whose keys the attacker holds.
    expect(states(l, l.a)).toEqual([['ESTABLISHED', ['CURVE_25519']]]);
    expect(states(l, l.b)).toEqual([['ESTABLISHED', ['CURVE_25519']]]);
    expect(l.a.installs).toHaveLength(1);
    expect(l.b.installs).toHaveLength(1);
    atk.restore();
  });
});

// Runs once the engine announces notify 16447 (integration steps in docs/downgrade-prevention.md).
describe.runIf(INTEGRATED)('with the extension integrated in the engine', () => {
  const ok: [Pol, Pol][] = [['on', 'on'], ['off', 'on'], ['on', 'off'], ['required', 'on'], ['on', 'required'], ['required', 'required'], ['off', 'off']];
  for (const [pi, pr] of ok) {
    it(`initiator ${pi} / responder ${pr}: hybrid IKE SA (IntAuth appended to the octets when both announce)`, () => {
      const l = engines(pi, pr);
      up(l.lab, l.a);
      l.lab.run();
      expect(states(l, l.a)).toEqual([['ESTABLISHED', ['CURVE_25519', 'ML_KEM_768']]]);
      expect(states(l, l.b)).toEqual([['ESTABLISHED', ['CURVE_25519', 'ML_KEM_768']]]);
    });
  }

  it("'required' refuses a peer without the extension, in either role (draft §8)", () => {
    const i = engines('required', 'off');
    up(i.lab, i.a);
    i.lab.run(10_000);
    expect(established(i, i.a) || established(i, i.b)).toBe(false);
    expect(i.a.events.some((e) => e.includes('is required but the peer did not announce it'))).toBe(true);
    const r = engines('off', 'required');
    up(r.lab, r.a);
    r.lab.run(10_000);
    expect(established(r, r.a) || established(r, r.b)).toBe(false);
    expect(r.a.events.some((e) => e.includes('NO_PROPOSAL_CHOSEN'))).toBe(true);
  });

  it('the same KCI downgrade is detected by the initiator (responder AUTH covers RealMessage1)', () => {
    const l = engines('on', 'on');
    const atk = attack(l, true);
    up(l.lab, l.a);
    l.lab.run(10_000);
    expect(atk.forged).toBe(true);
    expect(established(l, l.a)).toBe(false);
    expect(l.a.events.some((e) => e.includes('authentication of the responder failed'))).toBe(true);
    // The responder accepted the forged initiator AUTH and cannot tell; only the initiator detects (§5).
    atk.restore();
  });

  for (const fromResponse of [false, true]) {
    it(`stripping the notify from the ${fromResponse ? 'response' : 'request'} fails IKE_AUTH (§6 Aside)`, () => {
      const l = engines('on', 'on');
      stripNotify(l, fromResponse);
      up(l.lab, l.a);
      l.lab.run(10_000);
      expect(established(l, l.a)).toBe(false);
      expect(established(l, l.b)).toBe(false);
      expect(l.a.events.some((e) => e.includes('AUTHENTICATION_FAILED'))).toBe(true);
    });
  }
});
