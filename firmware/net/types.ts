/**
 * What the daemon needs from the network: IKE datagrams in and out (marker
 * handling is the transport's business, RFC 3948 §2.2), ESP-in-UDP handed to
 * the data plane. Implemented by UdpTransport (node:dgram) and FakeTransport
 * (in-memory, for tests).
 */
import type { Endpoint } from '../dataplane/types.js';

export type { Endpoint };

/** `from` is the peer, `to` the local endpoint the datagram arrived on. */
export type DatagramHandler = (data: Uint8Array, from: Endpoint, to: Endpoint) => void;

export interface IkeTransport {
  /** Send an IKE message. `data` never carries the non-ESP marker; it is added when from.port is the NAT-T port. */
  send(from: Endpoint, to: Endpoint, data: Uint8Array): void;
  /** Send raw bytes (ESP-in-UDP or a NAT keepalive) from the NAT-T socket of `from.address`. */
  sendRaw(from: Endpoint, to: Endpoint, data: Uint8Array): void;
  /** IKE messages (marker already stripped). */
  onIke(handler: DatagramHandler): void;
  /** UDP-encapsulated ESP packets received on the NAT-T port (RFC 3948). */
  onEsp(handler: DatagramHandler): void;
  /** Local endpoints currently bound (IKE and NAT-T ports). */
  localEndpoints(): Endpoint[];
  /** The IKE and NAT-T ports in use (the bound ones when ephemeral ports were asked for; first address's if they differ). */
  boundPorts(): { ike: number; natt: number };
  close(): Promise<void>;
}

export function endpointKey(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.address === b.address && a.port === b.port;
}
