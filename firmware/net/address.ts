/**
 * IP address literals at the daemon's edges: validation and one canonical
 * text form per address (RFC 5952 for IPv6, via util/ip.ts) so that endpoints
 * from the config, from the socket layer and from the engine compare equal
 * as strings.
 */
import { ipToBytes, bytesToIp, isIPv4, isIPv6 } from '../util/ip.js';

/** Canonical text form of an IP literal; undefined if `addr` is not one. Zone ids and IPv4 with leading zeros (ambiguous octal) are rejected. */
export function canonicalIp(addr: string): string | undefined {
  if (isIPv4(addr)) return /(^|\.)0\d/.test(addr) ? undefined : addr;
  if (isIPv6(addr) && !addr.includes('%')) return bytesToIp(ipToBytes(addr));
  return undefined;
}

export function isWildcard(addr: string): boolean {
  return addr === '0.0.0.0' || canonicalIp(addr) === '::';
}

export function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || canonicalIp(addr) === '::1';
}

/** fe80::/10 needs a zone id to be usable, which endpoints here do not carry. */
export function isLinkLocalV6(addr: string): boolean {
  if (!isIPv6(addr)) return false;
  const b = ipToBytes(addr);
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}
