/**
 * Test tooling for the downgrade attack of
 * draft-ietf-ipsecme-ikev2-downgrade-prevention §4 (the key-compromise
 * impersonation variant), played by an on-path attacker in the FakeNetwork:
 *
 *  1. strip the strong methods (RFC 9370 ADDKE transforms, i.e. ML-KEM)
 *     from the initiator's IKE_SA_INIT request            -> stripAddKe()
 *  2. "break" the classical key exchange in real time: here by replaying the
 *     initiator's recorded RNG draws until one reproduces KEi (a stand-in
 *     for a quantum computer)                              -> RecordingRng
 *  3. with the initiator's compromised credential (the PSK), re-MAC the
 *     initiator's AUTH over the modified request, since RFC 7296 §2.15
 *     already binds RealMessage1 into the initiator's AUTH  -> installKciDowngradeAttack()
 *
 * Without step 3 even plain RFC 7296 detects the change (the responder's
 * check of the initiator's AUTH fails). With the extension on both sides the
 * responder's AUTH also covers RealMessage1, which the attacker cannot
 * re-sign, so the initiator detects the downgrade.
 *
 * A helper module (not a *.test.ts) so several test files can import it.
 */
import type { Endpoint } from '../../firmware/dataplane/types.js';
import type { Rng } from '../../firmware/util/clock.js';
import type { AuthPayload, IdPayload, KePayload, NoncePayload, NotifyPayload, Payload, SaPayload } from '../../firmware/ikev2/codec/types.js';
import { decodeHeaderOnly, decodePlain, decodeProtected, encodePlain, encodeProtected, isFragment } from '../../firmware/ikev2/codec/index.js';
import { ExchangeType, Notify, PayloadType, TransformType } from '../../firmware/ikev2/constants.js';
import { createKeyExchange, createPrf, createSkCipher, encrInfo, integInfo } from '../../firmware/crypto/registry.js';
import { deriveIkeKeys, pskAuth, type IkeKeys } from '../../firmware/ikev2/sa/keymat.js';
import { authOctets } from '../../firmware/ikev2/transcript.js';
import { concat, equal } from '../../firmware/util/bytes.js';
import type { FakeNetwork } from '../../firmware/net/fake.js';

const MARKER_LEN = 4;

function isAddKeType(t: number): boolean {
  return t >= TransformType.ADDKE1 && t <= TransformType.ADDKE7;
}

/**
 * Rewrites an IKE_SA_INIT request so that its SA payload offers no
 * additional key exchange: every ADDKE1..7 transform with a non-NONE method
 * is removed (an ADDKEn type left with only NONE, or with nothing, means
 * "no round n", RFC 9370 §2.2.1). Optionally also drops the
 * INTERMEDIATE_EXCHANGE_SUPPORTED notify. Everything else is re-encoded
 * unchanged through the codec (decodePlain / encodePlain), so the IKE
 * header Length and the proposal lengths / transform counts are right.
 *
 * Returns the input array itself when there is nothing to do (not an
 * IKE_SA_INIT request, unparsable, or no ADDKE offered), so callers can test
 * `out !== datagram`. A leading 4-octet non-ESP marker is kept.
 */
export function stripAddKe(datagram: Uint8Array, opts: { dropIntermediateNotify?: boolean } = {}): Uint8Array {
  const marked = datagram.length >= MARKER_LEN && datagram[0] === 0 && datagram[1] === 0 && datagram[2] === 0 && datagram[3] === 0;
  const ike = marked ? datagram.subarray(MARKER_LEN) : datagram;
  let msg;
  try {
    msg = decodePlain(ike);
  } catch {
    return datagram;
  }
  if (msg.exchange !== ExchangeType.IKE_SA_INIT || msg.response) return datagram;
  let changed = false;
  const payloads: Payload[] = [];
  for (const p of msg.payloads) {
    if (p.type === PayloadType.SA) {
      const sa = p as SaPayload;
      const proposals = sa.proposals.map((pr) => {
        const transforms = pr.transforms.filter((t) => !(isAddKeType(t.type) && t.id !== 0));
        if (transforms.length !== pr.transforms.length) changed = true;
        return { ...pr, transforms };
      });
      payloads.push({ ...sa, proposals });
    } else if (opts.dropIntermediateNotify && p.type === PayloadType.NOTIFY && (p as NotifyPayload).notifyType === Notify.INTERMEDIATE_EXCHANGE_SUPPORTED) {
      changed = true;
    } else {
      payloads.push(p);
    }
  }
  if (!changed) return datagram;
  const out = encodePlain({ ...msg, encrypted: false, payloads });
  return marked ? concat(datagram.subarray(0, MARKER_LEN), out) : out;
}

/** Passes every draw through and keeps a copy: the attacker's window onto the victim's ephemeral keys. */
export class RecordingRng implements Rng {
  readonly draws: Uint8Array[] = [];
  constructor(private readonly inner: Rng) {}
  bytes(n: number): Uint8Array {
    const b = this.inner.bytes(n);
    this.draws.push(b.slice());
    return b;
  }
}

/**
 * Finds the classical shared secret g^ir from the recorded draws of the
 * initiator: the draw that, used as the private value, reproduces KEi.
 * Works for the DH methods that take their private value in one draw
 * (X25519/X448, ECP, MODP without a retry).
 */
export function breakClassicalKe(kei: KePayload, ker: KePayload, draws: readonly Uint8Array[]): Uint8Array | undefined {
  for (const d of draws) {
    let used = false;
    const replay: Rng = {
      bytes: (n: number) => {
        if (used || n !== d.length) throw new Error('not this draw');
        used = true;
        return d.slice();
      },
    };
    let ke;
    try {
      ke = createKeyExchange(kei.method, replay);
    } catch {
      continue;
    }
    try {
      if (!equal(ke.getPublic(), kei.data)) continue;
      ke.setPeerPublic(ker.data);
      return ke.getSharedSecret();
    } finally {
      ke.destroy();
    }
  }
  return undefined;
}

export interface KciAttackOptions {
  net: FakeNetwork;
  initiatorAddress: string;
  responderAddress: string;
  /** RecordingRng.draws of the initiator's engine: the "broken" classical key exchange. */
  initiatorDraws: readonly Uint8Array[];
  /** The compromised credential of the initiator (its PSK). */
  initiatorPsk: Uint8Array;
  /** Forge the initiator's AUTH with the draft §6 octets (both engines use the extension) or RFC 7296's. */
  fullTranscript: boolean;
  /** Re-MAC the initiator's AUTH (step 3). false = only strip the ADDKE offer. Default true. */
  forgeAuth?: boolean;
}

export interface KciAttack {
  /** What the attacker did, in order. */
  readonly log: string[];
  /** The IKE_SA_INIT request really was rewritten. */
  readonly stripped: boolean;
  /** The classical key exchange was broken (IKE SA keys known). */
  readonly keysKnown: boolean;
  /** An IKE_AUTH request was re-MACed and forwarded. */
  readonly forged: boolean;
  /** Put the network back to normal. */
  restore(): void;
}

interface AttackState {
  m1?: Uint8Array; // modified request as forwarded (what the responder saw)
  m2?: Uint8Array;
  keys?: IkeKeys;
  prf?: ReturnType<typeof createPrf>;
  cipherI?: ReturnType<typeof createSkCipher>;
  ni?: Uint8Array;
  nr?: Uint8Array;
}

/**
 * Installs the attacker on `net` by wrapping FakeNetwork.send (no firmware
 * hook needed). Only IKE on port 500 without NAT is handled, which is what
 * the harness' pair() sets up.
 */
export function installKciDowngradeAttack(o: KciAttackOptions): KciAttack {
  const net = o.net;
  const original = net.send.bind(net);
  const st: AttackState = {};
  const result = { log: [] as string[], stripped: false, keysKnown: false, forged: false, restore: () => void (net.send = original) };

  const learnKeys = (m1: Uint8Array, m2: Uint8Array): void => {
    const req = decodePlain(m1);
    const res = decodePlain(m2);
    const kei = req.payloads.find((p) => p.type === PayloadType.KE) as KePayload | undefined;
    const ker = res.payloads.find((p) => p.type === PayloadType.KE) as KePayload | undefined;
    const sa = res.payloads.find((p) => p.type === PayloadType.SA) as SaPayload | undefined;
    if (!kei || !ker || !sa || sa.proposals.length !== 1) return; // an error response (COOKIE, INVALID_KE...)
    const chosen = sa.proposals[0]!.transforms;
    if (chosen.some((t) => isAddKeType(t.type) && t.id !== 0)) {
      result.log.push('responder still chose an additional key exchange: downgrade failed');
      return;
    }
    const secret = breakClassicalKe(kei, ker, o.initiatorDraws);
    if (!secret) {
      result.log.push('could not reproduce KEi from the recorded draws');
      return;
    }
    const tf = (type: number) => chosen.find((t) => t.type === type);
    const encrT = tf(TransformType.ENCR)!;
    const prf = createPrf(tf(TransformType.PRF)!.id);
    const encr = encrInfo(encrT.id, encrT.keyLength);
    const integId = tf(TransformType.INTEG)?.id ?? 0;
    const integ = integId !== 0 ? integInfo(integId) : undefined;
    const ni = (req.payloads.find((p) => p.type === PayloadType.NONCE) as NoncePayload).data;
    const nr = (res.payloads.find((p) => p.type === PayloadType.NONCE) as NoncePayload).data;
    const keys = deriveIkeKeys({ prf, encr, integ, sharedSecret: secret, ni, nr, spiI: res.spiI, spiR: res.spiR });
    Object.assign(st, { keys, prf, ni, nr, cipherI: createSkCipher(encr, keys.skEi, integ, integ ? keys.skAi : undefined) });
    result.keysKnown = true;
    result.log.push(`broke key exchange ${kei.method}; IKE SA keys known`);
  };

  const forge = (data: Uint8Array): Uint8Array => {
    const dec = decodeProtected(data, st.cipherI!);
    if (isFragment(dec)) {
      result.log.push('IKE_AUTH request is fragmented: not handled');
      return data;
    }
    const idi = dec.payloads.find((p) => p.type === PayloadType.IDi) as IdPayload | undefined;
    const auth = dec.payloads.find((p) => p.type === PayloadType.AUTH) as AuthPayload | undefined;
    if (!idi || !auth) return data;
    const octets = authOctets({
      ofInitiator: true,
      fullTranscript: o.fullTranscript,
      realMessage1: st.m1!,
      realMessage2: st.m2!,
      nonceI: st.ni!,
      nonceR: st.nr!,
      prf: st.prf!,
      skP: st.keys!.skPi,
      idPayloadBody: concat(new Uint8Array([idi.idType, 0, 0, 0]), idi.data),
    });
    const payloads = dec.payloads.map((p) => (p === auth ? ({ ...auth, data: pskAuth(st.prf!, o.initiatorPsk, octets) } as AuthPayload) : p));
    const msg = { spiI: dec.spiI, spiR: dec.spiR, exchange: dec.exchange, response: dec.response, initiator: dec.initiator, messageId: dec.messageId, encrypted: true, payloads };
    const out = encodeProtected(msg, st.cipherI!, (n) => new Uint8Array(n).fill(0xa5)).datagrams;
    if (out.length !== 1) throw new Error('re-encoded IKE_AUTH request needs fragmentation');
    result.forged = true;
    result.log.push(`re-MACed the initiator's AUTH (${o.fullTranscript ? 'full transcript' : 'RFC 7296'} octets)`);
    return out[0]!;
  };

  net.send = (from: Endpoint, to: Endpoint, data: Uint8Array): void => {
    let out = data;
    let h;
    try {
      h = decodeHeaderOnly(data);
    } catch {
      h = undefined; // ESP, keepalives, marker-prefixed datagrams: pass through
    }
    if (h && h.exchange === ExchangeType.IKE_SA_INIT && !h.response && from.address === o.initiatorAddress) {
      out = stripAddKe(data);
      if (out !== data) {
        result.stripped = true;
        result.log.push('stripped ADDKE from IKE_SA_INIT request');
      }
      st.m1 = out.slice();
    } else if (h && h.exchange === ExchangeType.IKE_SA_INIT && h.response && from.address === o.responderAddress && st.m1) {
      st.m2 = data.slice();
      learnKeys(st.m1, st.m2);
    } else if (h && h.exchange === ExchangeType.IKE_AUTH && !h.response && from.address === o.initiatorAddress && st.cipherI && (o.forgeAuth ?? true)) {
      out = forge(data);
    }
    original(from, to, out);
  };
  return result;
}
