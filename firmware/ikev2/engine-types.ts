/**
 * The sans-IO engine's boundary (boringtun style): datagrams, time and
 * commands go in; actions come out. Sockets, timers and the data plane live
 * in the daemon (firmware/daemon.ts).
 */
import type { Endpoint, SaSpec, PolicySpec } from '../dataplane/types.js';

export type { Endpoint };

/** An IKE datagram to send. `data` never carries the non-ESP marker: the net layer adds it on port 4500. */
export interface SendAction {
  kind: 'send';
  from: Endpoint;
  to: Endpoint;
  data: Uint8Array;
}

export interface InstallChildAction {
  kind: 'install-child';
  tunnel: string;
  inbound: SaSpec;
  outbound: SaSpec;
  policies: PolicySpec[];
}

export interface DeleteChildAction {
  kind: 'delete-child';
  tunnel: string;
  inboundSpi: number;
  outboundSpi: number;
  policies: PolicySpec[];
  /**
   * The Child SA was replaced by a rekey: its successor (same reqid) already
   * owns the policies and the outbound path, so only these SAs go.
   */
  rekeyed?: boolean;
}

export interface EventAction {
  kind: 'event';
  level: 'error' | 'warn' | 'info' | 'debug';
  tunnel?: string;
  ikeSa?: string; // "spiI_spiR" hex
  message: string;
}

/** One line for the Wireshark key log (ikev2_decryption_table or esp_sa format). */
export interface KeylogAction {
  kind: 'keylog';
  table: 'ikev2_decryption_table' | 'esp_sa';
  line: string;
  /**
   * Wipe the key copies behind `line` (a lazy getter). The consumer calls it
   * once the action is handled, so keys that no key log asked for do not
   * wait for the garbage collector; `line` is unusable afterwards.
   */
  dispose?(): void;
}

/**
 * On-idle DPD is due: when did ESP last arrive on these inbound SAs? The
 * daemon asks the data plane (DataPlane.querySa lastUsed: no per-packet
 * event) and answers with EngineApi.activity(ikeSa, at). Unanswered, the
 * liveness check goes out after a short grace period anyway.
 */
export interface QueryActivityAction {
  kind: 'query-activity';
  tunnel: string;
  /** IkeSaStatus.id */
  ikeSa: number;
  inboundSpis: number[];
}

/**
 * Install or remove a tunnel's trap policies (ikev2/traps.ts): outbound
 * policies without an SA whose first matching packet raises an acquire.
 */
export interface TrapAction {
  kind: 'trap';
  tunnel: string;
  install: boolean;
  policies: PolicySpec[];
}

export type Action = SendAction | InstallChildAction | DeleteChildAction | EventAction | KeylogAction | QueryActivityAction | TrapAction;

/**
 * Operator commands per tunnel; `sa` narrows down/rekey/dpd to one IKE SA
 * (IkeSaStatus.id) and `child` a Child SA rekey to one reqid
 * (ChildSaStatus.reqid).
 */
export type Command =
  | { kind: 'up'; tunnel: string }
  | { kind: 'down'; tunnel: string; sa?: number }
  | { kind: 'rekey-ike'; tunnel: string; sa?: number }
  | { kind: 'rekey-child'; tunnel: string; sa?: number; child?: number }
  | { kind: 'dpd'; tunnel: string; sa?: number };

export interface ChildSaStatus {
  name: string;
  state: string;
  reqid: number;
  spiIn: string; // hex
  spiOut: string;
  encr: string;
  integ: string | null;
  keyExchanges: string[]; // empty for the first child (keys from the IKE SA)
  esn: boolean;
  localTs: string[];
  remoteTs: string[];
  encap: boolean;
  installedAt: number;
  /** Scheduled rekey (clock ms), null if none. */
  rekeyAt: number | null;
  /** Times this Child SA (reqid) was rekeyed. */
  rekeys: number;
  /*
   * Data-plane counters, filled in by the daemon (DataPlane.querySa) for
   * `pqgate status`; absent when the data plane does not know the SA. The
   * engine never sets them. Bytes are inner (plaintext) packet bytes.
   */
  bytesIn?: number;
  bytesOut?: number;
  packetsIn?: number;
  packetsOut?: number;
  /** Inbound packets dropped by the anti-replay window (RFC 4303 §3.4.3). */
  replayDrops?: number;
  /** Inbound packets whose ICV did not verify (RFC 4303 §3.4.4). */
  authFailures?: number;
  /** Inbound packets dropped as malformed (bad length, padding, next header or inner IP packet); userspace data plane only. */
  malformedDrops?: number;
  /** Clock ms of the last inbound / outbound packet, 0 if none. */
  lastInAt?: number;
  lastOutAt?: number;
}

export interface IkeSaStatus {
  tunnel: string;
  id: number;
  state: string; // CONNECTING, INTERMEDIATE, AUTHENTICATING, ESTABLISHED, DELETING, ...
  role: 'initiator' | 'responder';
  local: Endpoint;
  remote: Endpoint;
  spiI: string; // hex
  spiR: string;
  localId: string | null;
  remoteId: string | null;
  encr: string | null;
  prf: string | null;
  integ: string | null;
  /** Every key exchange method in order, e.g. ["CURVE_25519","ML_KEM_768"]. */
  keyExchanges: string[];
  postQuantum: string | null; // e.g. "ML_KEM_768" or null
  /** How each side authenticated: "psk" or the signature scheme (e.g. "ecdsa-p256-sha256", "ml-dsa-65"). */
  authLocal?: string | null;
  authRemote?: string | null;
  fragmentation: boolean;
  natLocal: boolean;
  natRemote: boolean;
  encap: boolean;
  establishedAt: number | null;
  rekeyAt: number | null;
  /** Times this IKE SA lineage was rekeyed. */
  rekeys: number;
  lastError: string | null;
  /**
   * Inbound IKE messages for this SA dropped with no effect, by reason
   * (replayed / ICV failure / malformed / unexpected Message ID), and
   * byte-identical request retransmissions answered from the response cache.
   */
  drops?: { replay: number; auth: number; malformed: number; unexpected: number; retransmits: number };
  children: ChildSaStatus[];
  /** The tunnel's health (firmware/health/types.ts), filled in by the daemon like the counters; the engine never sets it. */
  health?: import('../health/types.js').TunnelHealth;
}

/**
 * What the daemon drives. All methods are synchronous and never do I/O;
 * they return the actions to carry out, in order.
 */
export interface EngineApi {
  /** An IKE datagram (non-ESP marker already stripped) received on `to` from `from`. */
  receive(data: Uint8Array, from: Endpoint, to: Endpoint): Action[];
  /** Run timers that are due at clock.now(). */
  tick(): Action[];
  /** Absolute clock time (ms) of the next timer, or undefined if none. */
  nextTimer(): number | undefined;
  command(cmd: Command): Action[];
  /** Replace the tunnel set (reconcile): new tunnels with start_action=start are initiated. */
  loadConfig(tunnels: import('../config/types.js').TunnelConfig[]): Action[];
  status(): IkeSaStatus[];
  /**
   * Whether the tunnel has an established IKE SA with an installed (or
   * rekeying) Child SA: what status() would say, without building the whole
   * status view (the health monitor asks per probe; a hub holds thousands of SAs).
   */
  hasInstalledChild?(tunnel: string): boolean;
  /** IKE_SA_INIT admission: half-open SAs, cookies, drops (firmware/ikev2/admission.ts). Optional for stub engines. */
  admissionStatus?(): import('./admission.js').AdmissionStatus;
  /**
   * Answer to a `query-activity` action: clock ms of the last ESP packet
   * received on the IKE SA's Child SAs (undefined: none / unknown).
   */
  activity?(ikeSa: number, lastInboundAt: number | undefined): Action[];
}
