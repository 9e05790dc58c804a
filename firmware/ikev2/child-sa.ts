/**
 * A Child SA (RFC 7296 §1.3, §2.17): the pair of ESP SAs and the traffic
 * selectors negotiated for them. Key material is handed to the data plane
 * through an install-child action and wiped here right after.
 */
import type { TrafficSelector } from './codec/types.js';
import type { PolicySpec, SaSpec } from '../dataplane/types.js';

export type ChildState = 'INSTALLED' | 'REKEYING' | 'REKEYED' | 'DELETING' | 'DELETED';

export class ChildSa {
  state: ChildState = 'INSTALLED';
  /** Clock ms of the scheduled rekey / hard expiry (undefined = none). */
  rekeyAt: number | undefined;
  expireAt: number | undefined;
  /** Rekey generation of this reqid. */
  rekeys = 0;
  /** The Child SA that replaced this one (state REKEYED). */
  successor: ChildSa | undefined;
  /**
   * RFC 7296 §2.8.1 collision bookkeeping: the Child SA the peer created by
   * rekeying this one while our own rekey of it was in flight, with the
   * nonces of that exchange.
   */
  peerRekey: { child: ChildSa | undefined; nonces: Uint8Array[] } | undefined;
  /** Outcome once both rekeys of a collision are known: whose new Child SA survives. */
  collisionWinner: 'ours' | 'theirs' | undefined;
  constructor(
    readonly name: string,
    readonly reqid: number,
    /** Our inbound SPI (the peer sends with it). */
    readonly spiIn: number,
    /** The peer's inbound SPI (we send with it). */
    readonly spiOut: number,
    readonly encrName: string,
    readonly integName: string | null,
    /** Key exchange methods used for this child's keys (empty when derived from the IKE SA's SK_d only). */
    readonly keMethods: number[],
    readonly esn: boolean,
    readonly tsLocal: TrafficSelector[],
    readonly tsRemote: TrafficSelector[],
    readonly encap: boolean,
    readonly installedAt: number,
    /** What was handed to the data plane (keys already wiped). */
    readonly inbound: SaSpec,
    readonly outbound: SaSpec,
    readonly policies: PolicySpec[],
  ) {}
}

export function spiToHex(spi: number): string {
  return (spi >>> 0).toString(16).padStart(8, '0');
}
