/**
 * UDP encapsulation demultiplexing on the NAT-T port.
 *
 * RFC 3948 §2.2: on port 4500 an IKE message is preceded by the 4-octet
 *   non-ESP marker (all zero); ESP packets start with their SPI, which is
 *   never 0 (RFC 4303 §2.1 reserves SPI 0), so the first four octets tell the
 *   two apart.
 * RFC 3948 §2.3: a NAT-keepalive packet is a single octet 0xFF; the
 *   receiver ignores it.
 * RFC 7296 §2.23: IKE messages sent from or to port 4500 carry the marker;
 *   on port 500 they never do.
 */
import { NON_ESP_MARKER_LEN } from '../ikev2/constants.js';

/** ESP header = SPI(4) + Sequence Number(4) (RFC 4303 §2). */
const ESP_MIN_LEN = 8;

export type NattDatagram =
  | { kind: 'ike'; data: Uint8Array }
  | { kind: 'esp'; data: Uint8Array }
  | { kind: 'keepalive' }
  | { kind: 'invalid'; reason: string };

/** Classify a datagram received on the NAT-T port. `ike.data` has the marker stripped (a view, no copy). */
export function classifyNattDatagram(d: Uint8Array): NattDatagram {
  if (d.length === 1 && d[0] === 0xff) return { kind: 'keepalive' };
  if (d.length < NON_ESP_MARKER_LEN) return { kind: 'invalid', reason: `datagram of ${d.length} bytes` };
  if (d[0] === 0 && d[1] === 0 && d[2] === 0 && d[3] === 0) {
    if (d.length === NON_ESP_MARKER_LEN) return { kind: 'invalid', reason: 'non-ESP marker without IKE message' };
    return { kind: 'ike', data: d.subarray(NON_ESP_MARKER_LEN) };
  }
  if (d.length < ESP_MIN_LEN) return { kind: 'invalid', reason: `ESP packet of ${d.length} bytes` };
  return { kind: 'esp', data: d };
}

/** Prefix an IKE message with the non-ESP marker (for sending from port 4500). */
export function addNonEspMarker(ike: Uint8Array): Uint8Array {
  const out = new Uint8Array(NON_ESP_MARKER_LEN + ike.length);
  out.set(ike, NON_ESP_MARKER_LEN);
  return out;
}

/** The NAT-keepalive payload (RFC 3948 §2.3). */
export const NAT_KEEPALIVE = new Uint8Array([0xff]);
