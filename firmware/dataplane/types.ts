/**
 * The data-plane interface (strongSwan kernel_ipsec_t): the engine hands
 * negotiated Child SAs to it; implementations are the userspace ESP over
 * TUN (dataplane/esp) and, in the firmware image, the kernel's XFRM.
 * Everything here is plain data so the same calls fit netlink messages.
 */

export interface Endpoint {
  address: string; // IPv4 or IPv6 literal
  port: number;
}

export interface SaSpec {
  /** SPI as an unsigned 32-bit integer (host order). */
  spi: number;
  direction: 'in' | 'out';
  /** Outer addresses: for 'out' src=local dst=peer, for 'in' src=peer dst=local. */
  src: Endpoint;
  dst: Endpoint;
  /** UDP encapsulation (RFC 3948) on the ports in src/dst. */
  encap: boolean;
  encrId: number;
  encrKeyBits: number;
  /** Encryption key including the salt for AEAD (GCM/ChaCha: +4 bytes). */
  encrKey: Uint8Array;
  integId: number; // 0 for AEAD
  integKey: Uint8Array;
  esn: boolean;
  /** Anti-replay window in packets; 0 disables replay protection (RFC 4303 §3.4.3). */
  replayWindow: number;
  /** Child SA identity shared by both directions (strongSwan reqid). */
  reqid: number;
  /** Route-based tunnels: interface id (XFRM if_id / TUN index); 0 = policy-based. */
  ifId: number;
  tunnel: string;
  /** Volume limits; 0 = unlimited. */
  softBytes?: number;
  hardBytes?: number;
  softPackets?: number;
  hardPackets?: number;
}

export interface Selector {
  family: 4 | 6;
  startAddr: Uint8Array;
  endAddr: Uint8Array;
  ipProtocol: number;
  startPort: number;
  endPort: number;
}

export interface PolicySpec {
  reqid: number;
  direction: 'in' | 'out';
  local: Selector[];
  remote: Selector[];
  ifId: number;
  tunnel: string;
  /** Outer endpoints of the SA this policy uses. */
  src: Endpoint;
  dst: Endpoint;
}

export interface SaCounters {
  bytes: number;
  packets: number;
  replayDrops: number;
  authFailures: number;
  /** Malformed inbound packets (userspace data plane; the kernel does not report it). */
  malformedDrops?: number;
  /** ms timestamp of the last packet, 0 if none. */
  lastUsed: number;
}

export type DataPlaneEvent =
  | { kind: 'expire'; spi: number; direction: 'in' | 'out'; hard: boolean }
  | { kind: 'acquire'; reqid: number };

export interface DataPlane {
  readonly name: string;
  addSa(sa: SaSpec): Promise<void>;
  /** Re-point an SA's outer endpoints (NAT mapping change, MOBIKE). */
  updateSa(spi: number, direction: 'in' | 'out', src: Endpoint, dst: Endpoint): Promise<void>;
  deleteSa(spi: number, direction: 'in' | 'out'): Promise<void>;
  addPolicy(p: PolicySpec): Promise<void>;
  deletePolicy(p: PolicySpec): Promise<void>;
  querySa(spi: number, direction: 'in' | 'out'): Promise<SaCounters | undefined>;
  onEvent(cb: (e: DataPlaneEvent) => void): void;
  close(): Promise<void>;
  /**
   * The peer's health probes seen inside a tunnel (ICMP echo in) and
   * answered (ICMP echo reply out); absent when the data plane cannot see
   * them (kernel XFRM).
   */
  probeCounters?(tunnel: string): import('../health/monitor.js').ProbeCounters | undefined;
  /**
   * Clock of SaCounters.lastUsed: 'wall' = epoch ms (XFRM's `use` time);
   * default the daemon's clock (userspace).
   */
  readonly lastUsedClock?: 'wall';
}
