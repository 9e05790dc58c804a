/**
 * IKE_FOLLOWUP_KE (RFC 9370 §2.2.4): the additional key exchanges of a
 * CREATE_CHILD_SA, linked by the responder's ADDITIONAL_KEY_EXCHANGE data.
 *
 *   I: HDR(36) SK{SA, Ni, KEi(0), ...}                 R: SK{SA, Nr, KEr(0), N(ADDKE)(link1), ...}
 *   I: HDR(44) SK{KEi(1), N(ADDKE)(link1)}             R: SK{KEr(1) [, N(ADDKE)(link2)]}
 * Keys are derived once, after the last round.
 */
import { ExchangeType, Notify, PayloadType, KeMethodName } from '../constants.js';
import type { DecodedMessage, KePayload } from '../codec/types.js';
import type { KeyExchange } from '../../crypto/types.js';
import { hex, wipe } from '../../util/bytes.js';
import type { IkeSa } from '../ike-sa.js';
import { notify, findNotify, errorNotify, notifyName, P } from '../payload-util.js';

const LINK_LEN = 8;

/** Initiator: run the rounds for `methods`, then call done(secrets) with SK(0) first. */
export function runFollowups(
  sa: IkeSa,
  methods: number[],
  firstLink: Uint8Array,
  secrets: Uint8Array[],
  done: (secrets: Uint8Array[]) => void,
  failed: (why: string) => void,
): void {
  let link = firstLink;
  // SK(0..i) stay with the IKE SA until the last round: wiped with it if it dies first.
  sa.holdSecrets(secrets);
  const fail = (why: string): void => {
    sa.releaseSecrets(secrets);
    wipe(...secrets);
    failed(why);
  };
  const round = (i: number): void => {
    if (i === methods.length) {
      sa.releaseSecrets(secrets);
      done(secrets);
      return;
    }
    const method = methods[i]!;
    let ke: KeyExchange | undefined;
    sa.queueRequest(
      {
        exchange: ExchangeType.IKE_FOLLOWUP_KE,
        build: () => {
          ke?.destroy();
          ke = sa.newKe(method);
          return [{ type: PayloadType.KE, method, data: ke.getPublic() } as KePayload, notify(Notify.ADDITIONAL_KEY_EXCHANGE, link)];
        },
        onResponse: (msg) => {
          const err = errorNotify(msg);
          if (err) return fail(`peer answered ${notifyName(err.notifyType)} in IKE_FOLLOWUP_KE`);
          const keP = P.ke(msg);
          if (!keP || keP.method !== method) return fail(`IKE_FOLLOWUP_KE without ${KeMethodName[method]} KE payload`);
          try {
            ke!.setPeerPublic(keP.data);
          } catch (e) {
            // draft-ietf-ipsecme-ikev2-mlkem: a bad ciphertext here means the IKE SA must go.
            ke!.destroy();
            return fail(`invalid ${KeMethodName[method]} data in IKE_FOLLOWUP_KE: ${(e as Error).message}`);
          }
          secrets.push(ke!.getSharedSecret());
          ke!.destroy();
          if (i + 1 < methods.length) {
            const n = findNotify(msg, Notify.ADDITIONAL_KEY_EXCHANGE);
            if (!n) return fail('IKE_FOLLOWUP_KE response lacks ADDITIONAL_KEY_EXCHANGE for the next round');
            link = n.data;
          }
          round(i + 1);
        },
      },
      true,
    );
  };
  round(0);
}

export interface FollowupState {
  methods: number[];
  secrets: Uint8Array[];
  finish(secrets: Uint8Array[]): void;
  /** Clock ms after which the state is dropped. */
  expires: number;
}

export function newLink(sa: IkeSa): Uint8Array {
  return sa.ctx.rng.bytes(LINK_LEN);
}

export function storeFollowup(sa: IkeSa, link: Uint8Array, st: FollowupState): void {
  sa.followups.set(hex(link), st);
}

/** Responder: one IKE_FOLLOWUP_KE request. */
export function onFollowupRequest(sa: IkeSa, msg: DecodedMessage): void {
  const raw = sa.currentRequestRaw;
  const n = findNotify(msg, Notify.ADDITIONAL_KEY_EXCHANGE);
  const st = n ? (sa.followups.get(hex(n.data)) as FollowupState | undefined) : undefined;
  if (!n || !st || st.expires < sa.ctx.clock.now()) {
    // RFC 9370 §2.2.4: unknown link → STATE_NOT_FOUND.
    if (n) sa.followups.delete(hex(n.data));
    sa.respond(msg, raw, [notify(Notify.STATE_NOT_FOUND)]);
    return;
  }
  sa.followups.delete(hex(n.data));
  const method = st.methods[0]!;
  const keP = P.ke(msg);
  if (!keP || keP.method !== method) {
    wipe(...st.secrets);
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    return;
  }
  const ke = sa.newKe(method);
  try {
    ke.setPeerPublic(keP.data);
  } catch {
    ke.destroy();
    wipe(...st.secrets);
    sa.respond(msg, raw, [notify(Notify.INVALID_SYNTAX)]);
    return;
  }
  const pub = ke.getPublic();
  st.secrets.push(ke.getSharedSecret());
  ke.destroy();
  st.methods = st.methods.slice(1);
  if (st.methods.length > 0) {
    const link = newLink(sa);
    storeFollowup(sa, link, { ...st, expires: sa.ctx.clock.now() + 60_000 });
    sa.respond(msg, raw, [{ type: PayloadType.KE, method, data: pub } as KePayload, notify(Notify.ADDITIONAL_KEY_EXCHANGE, link)]);
    return;
  }
  // Keys before the response goes out, so the data plane is ready when the peer uses them.
  st.finish(st.secrets);
  sa.respond(msg, raw, [{ type: PayloadType.KE, method, data: pub } as KePayload]);
}
