/**
 * INFORMATIONAL exchanges (RFC 7296 §1.4): Delete of the IKE SA or of Child
 * SAs, and the empty liveness check (§2.4), both roles.
 */
import { ExchangeType, PayloadType, ProtocolId } from '../constants.js';
import type { DecodedMessage, DeletePayload, Payload } from '../codec/types.js';
import type { IkeSa } from '../ike-sa.js';
import { u32be } from '../../util/bytes.js';
import { removeChild } from './child.js';

export function registerInformational(sa: IkeSa): void {
  sa.on(ExchangeType.INFORMATIONAL, onInformational);
}

function onInformational(sa: IkeSa, msg: DecodedMessage): void {
  const raw = sa.currentRequestRaw;
  const deletes = msg.payloads.filter((p): p is DeletePayload => p.type === PayloadType.DELETE);
  if (deletes.some((d) => d.protocol === ProtocolId.IKE)) {
    // RFC 7296 §1.4.1: answer with an empty INFORMATIONAL, then the SA is gone.
    sa.respond(msg, raw, []);
    sa.log('info', 'peer deleted the IKE SA');
    sa.closeReason ??= 'deleted by peer';
    sa.state = 'DELETING';
    teardown(sa);
    return;
  }
  const ours: Uint8Array[] = [];
  for (const d of deletes) {
    if (d.protocol !== ProtocolId.ESP && d.protocol !== ProtocolId.AH) continue;
    for (const spiBytes of d.spis) {
      if (spiBytes.length !== 4) continue;
      const spi = ((spiBytes[0]! << 24) | (spiBytes[1]! << 16) | (spiBytes[2]! << 8) | spiBytes[3]!) >>> 0;
      const child = sa.children.find((c) => c.spiOut === spi);
      if (!child) continue; // RFC 7296 §1.4.1: unknown SPIs are ignored
      ours.push(u32be(child.spiIn));
      sa.log('info', `peer deleted CHILD_SA {${child.reqid}}`);
      removeChild(sa, child);
    }
  }
  const out: Payload[] = ours.length ? [{ type: PayloadType.DELETE, protocol: ProtocolId.ESP, spiSize: 4, spis: ours } as DeletePayload] : [];
  sa.respond(msg, raw, out);
}

/** Remove every Child SA from the data plane and destroy the IKE SA. */
export function teardown(sa: IkeSa): void {
  for (const c of [...sa.children]) removeChild(sa, c);
  sa.destroy();
}

/** Delete the IKE SA (and with it all Child SAs): INFORMATIONAL { D(IKE) }. */
export function deleteIke(sa: IkeSa, reason = 'deleted'): void {
  if (sa.state === 'DELETING' || sa.state === 'DELETED' || sa.state === 'FAILED') return;
  if (sa.state !== 'ESTABLISHED') {
    // Nothing authenticated to send a protected Delete with: just drop it.
    sa.lastError = reason;
    teardown(sa);
    return;
  }
  sa.state = 'DELETING';
  sa.closeReason = reason;
  sa.log('info', `deleting IKE SA (${reason})`);
  const done = (): void => teardown(sa);
  sa.queueRequest({
    exchange: ExchangeType.INFORMATIONAL,
    build: () => [{ type: PayloadType.DELETE, protocol: ProtocolId.IKE, spiSize: 0, spis: [] } as DeletePayload],
    onResponse: done,
    onTimeout: done,
  }, true);
}

/** Liveness check (DPD): an empty INFORMATIONAL request. */
export function liveness(sa: IkeSa, onDead: () => void, onAlive?: () => void): void {
  sa.queueRequest({
    exchange: ExchangeType.INFORMATIONAL,
    build: () => [],
    onResponse: () => onAlive?.(),
    onTimeout: onDead,
  });
}
