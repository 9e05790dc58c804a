/**
 * What the engine lends to an IKE SA and its exchanges: time, randomness,
 * options and the action sink. Keeps ike-sa.ts and the exchange modules free
 * of any reference to the Engine class (no import cycle).
 */
import type { Clock, Rng } from '../util/clock.js';
import type { Action } from './engine-types.js';

export interface RetransmitPolicy {
  /** First timeout, ms (strongSwan retransmit_timeout 4 s). */
  timeout: number;
  /** Backoff base (strongSwan retransmit_base 1.8). */
  base: number;
  /** Retransmissions before giving up (strongSwan retransmit_tries 5). */
  tries: number;
  /** Cap for a single timeout, ms. */
  maxTimeout: number;
}

export interface EngineOptions {
  clock: Clock;
  rng: Rng;
  /** Wall-clock time for certificate validity checks (default: new Date()). */
  wallClock?: () => Date;
  /** Local IKE ports: used as the source port of initiated exchanges. */
  ikePort?: number;
  nattPort?: number;
  /**
   * Force UDP encapsulation on every tunnel (the userspace data plane cannot
   * receive raw ESP): fakes the NAT_DETECTION_SOURCE_IP hash like
   * strongSwan's encap=yes so both sides float to port 4500.
   */
  forceEncap?: boolean;
  /** Half-open IKE SAs from which the responder demands a COOKIE (RFC 7296 §2.6; config cookie_threshold). 0 = always. */
  cookieThreshold?: number;
  /** Half-open IKE SAs from one source prefix from which that source must send a COOKIE (cookie_threshold_ip). */
  cookieThresholdIp?: number;
  /** Half-open SAs per source prefix (IPv4 /32, IPv6 /64) before its IKE_SA_INIT requests are dropped (block_threshold). */
  halfOpenPerSource?: number;
  /** Global cap on half-open IKE SAs (init_limit_half_open); 0 = none. */
  halfOpenLimit?: number;
  /** Cookie secret lifetime and the grace period of the previous secret, ms. */
  cookieSecretLifetime?: number;
  cookieGrace?: number;
  retransmit?: Partial<RetransmitPolicy>;
  /** Half-open SA lifetime (ms) before it is dropped without notice. */
  halfOpenTimeout?: number;
  /** Delay (ms) before an initiator retries after a failed attempt; doubled per failure up to maxRetryDelay. */
  retryDelay?: number;
  maxRetryDelay?: number;
  /**
   * The data plane can say when ESP last arrived (the daemon answers
   * `query-activity` actions with Engine.activity()): on-idle DPD then
   * counts ESP as proof of life, not only IKE messages. Default false
   * (in-process tests without a data plane).
   */
  dataPlaneActivity?: boolean;
}

export interface Ctx {
  readonly clock: Clock;
  /** Wall-clock time, for certificate validity (the engine clock is monotonic). */
  wallClock(): Date;
  readonly rng: Rng;
  readonly opts: Required<Pick<EngineOptions, 'ikePort' | 'nattPort' | 'forceEncap' | 'halfOpenTimeout' | 'dataPlaneActivity'>> & {
    retransmit: RetransmitPolicy;
  };
  emit(a: Action): void;
  log(level: 'error' | 'warn' | 'info' | 'debug', msg: string, tunnel?: string, sa?: string): void;
  /** A fresh inbound ESP SPI, unique among live Child SAs. */
  allocateEspSpi(): number;
  releaseEspSpi(spi: number): void;
  nextReqid(): number;
  /** Route-based tunnels: the tunnel's interface id (XFRM if_id / TUN index); 0 for policy-based. */
  ifIdFor(tunnel: string): number;
}
