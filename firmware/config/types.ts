/**
 * Validated, internal form of a tunnel's configuration. The JSON document
 * (docs/config.md, snake_case keys) is parsed and validated by
 * config/schema.ts into these objects; the engine only ever sees these.
 */

/** An IKE identity (RFC 7296 §3.5) in strongSwan-like notation, already parsed. */
import type { LocalCredentials } from '../auth/peer.js';
import type { Certificate } from '../auth/x509.js';
import type { SignatureScheme } from '../auth/signature.js';

export interface Identity {
  idType: number; // IdType
  data: Uint8Array;
  /** Human form, e.g. "fqdn:gw.example.net", "192.0.2.1", "keyid:abc". */
  text: string;
}

/** One traffic selector in CIDR-ish form, already expanded to a range. */
export interface TsConfig {
  family: 4 | 6;
  startAddr: Uint8Array;
  endAddr: Uint8Array;
  ipProtocol: number; // 0 = any
  startPort: number;
  endPort: number;
  text: string;
}

export type FragmentationMode = 'yes' | 'accept' | 'no';
export type StartAction = 'none' | 'start' | 'trap';

export interface TunnelConfig {
  name: string;
  /** Local outer address; undefined = any (the daemon's bind address). */
  localAddr?: string;
  /** Peer outer address; undefined = accept any peer as responder (%any). */
  remoteAddr?: string;
  /** Peer IKE port (500 normally; 4500 to start directly on NAT-T). */
  remotePort: number;
  localId: Identity;
  /** undefined = accept any identity that has a matching PSK (%any). */
  remoteId?: Identity;
  /**
   * How both sides authenticate: a pre-shared key (RFC 7296 §2.15) or
   * certificates with RFC 7427 signatures ('pubkey').
   */
  auth: 'psk' | 'pubkey';
  /** auth 'psk': the key (empty for 'pubkey'). */
  psk: Uint8Array;
  /** auth 'pubkey': our certificate, intermediates and private key. */
  localCreds?: LocalCredentials;
  /** auth 'pubkey': CA certificates the peer's chain must lead to. */
  caCerts?: Certificate[];
  /** auth 'pubkey': signature schemes accepted from the peer (default: all supported), e.g. ['ml-dsa-65']. */
  allowedSchemes?: SignatureScheme[];
  /** IKE proposals, strongSwan syntax, in preference order. */
  ikeProposals: string[];
  /** ESP proposals, strongSwan syntax (KE parts used on rekey only). */
  espProposals: string[];
  localTs: TsConfig[];
  remoteTs: TsConfig[];
  mode: 'route' | 'policy';
  startAction: StartAction;
  fragmentation: FragmentationMode;
  /** Max IKE datagram size (IP header included) before RFC 7383 fragmentation. */
  fragmentSize: number;
  /** Force UDP encapsulation (fake NAT-D, as strongSwan's encap=yes). */
  encap: boolean;
  /** IKE SA rekey interval, seconds (0 = never). */
  rekeyTime: number;
  /** Child SA rekey interval, seconds (0 = never). */
  childRekeyTime: number;
  /**
   * Child SA volume limits (strongSwan rekey_bytes / rekey_packets; life =
   * +10 %): the data plane reports the soft limit and the Child SA is
   * rekeyed; at the hard limit the SA is gone. 0 / undefined = none.
   */
  childRekeyBytes?: number;
  childRekeyPackets?: number;
  /** DPD / liveness interval, seconds (0 = off). */
  dpdDelay: number;
  /**
   * What a dead peer (failed liveness check) leads to (strongSwan
   * dpd_action): 'restart' re-initiates at once and keeps retrying with
   * backoff; 'clear' only removes the SAs. Default: 'restart' for
   * start_action 'start' (always-on), else 'clear'.
   */
  dpdAction?: 'clear' | 'restart' | 'hold';
  /**
   * When liveness checks go out: 'on-idle' (default; strongSwan dpd_delay,
   * FortiOS `dpd on-idle`) only after dpd_delay seconds with nothing
   * received from the peer, IKE or ESP; 'periodic' (Cisco `dpd periodic`)
   * every dpd_delay seconds regardless of traffic.
   */
  dpdMode?: 'on-idle' | 'periodic';
  /** Active health probe through the tunnel (firmware/health). */
  healthCheck?: HealthCheckConfig;
  /** First retransmission timeout, seconds (default 4, strongSwan's); with the tries it bounds dead-peer detection. */
  retransmitTimeout?: number;
  /** Retransmissions before the peer is declared dead (default 5). */
  retransmitTries?: number;
  /** Anti-replay window in packets (0 = off). */
  replayWindow: number;
  /** Inside address for route-based tunnels, e.g. "10.100.0.9/31". */
  insideAddr?: string;
  /** TCP MSS clamp on SYNs entering the tunnel (0 = off). */
  mss: number;
  /** Tunnel interface MTU (userspace data plane); undefined = the data plane's default (1400). */
  mtu?: number;
  /** draft-ietf-ipsecme-ikev2-downgrade-prevention: 'off' | 'on' | 'required' (default 'on'). */
  fullTranscriptAuth?: import('../ikev2/transcript.js').TranscriptPolicy;
}

/**
 * An ICMP echo to `target` through the tunnel every `interval` seconds
 * (FortiOS link-monitor server/interval/probe-timeout/failtime, Cisco IP
 * SLA icmp-echo): `failures` consecutive misses → down, one reply → up.
 */
export interface HealthCheckConfig {
  /** Address inside the peer's traffic selectors (IPv4/IPv6 literal). */
  target: string;
  /** Source address (our side of the tunnel); default: the kernel's choice. */
  source?: string;
  /** Seconds between probes. */
  interval: number;
  /** Seconds to wait for a reply. */
  timeout: number;
  /** Consecutive misses before the state is down. */
  failures: number;
}

export interface DaemonConfig {
  /** Addresses to bind the IKE sockets to (default: 0.0.0.0). */
  listen: string[];
  ikePort: number; // 500
  nattPort: number; // 4500
  /** Path of the control socket. */
  controlSocket: string;
  tunnels: TunnelConfig[];
  /** Optional Wireshark key log (PQGATE_KEYLOG overrides). */
  keylog?: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** ESP data plane: userspace ESP over TUN (default) or record-only (tests, IKE-only use). */
  dataPlane?: 'userspace' | 'recording';
  /** IKE_SA_INIT admission limits (cookie_threshold, ...); unset keys take the engine's defaults. */
  admission?: AdmissionConfig;
}

/** Global DoS-protection options (docs/config.md; strongSwan charon.* names in the JSON document). */
export interface AdmissionConfig {
  /** cookie_threshold: half-open IKE SAs (all sources) from which a COOKIE is demanded; 0 = always. */
  cookieThreshold?: number;
  /** cookie_threshold_ip: half-open IKE SAs from one source (IPv4 /32, IPv6 /64) from which it must send a COOKIE. */
  cookieThresholdIp?: number;
  /** block_threshold: most half-open IKE SAs per source. */
  blockThreshold?: number;
  /** init_limit_half_open: most half-open IKE SAs in total; 0 = no cap. */
  initLimitHalfOpen?: number;
  /** half_open_timeout: seconds before a half-open IKE SA is dropped. */
  halfOpenTimeout?: number;
}
