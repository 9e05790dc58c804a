/**
 * iproute2 command lines for the kernel's IPsec (XFRM) tables: pure functions
 * from the data-plane specs to `ip` arguments, so they can be checked without
 * a kernel. The lines that carry keys are fed to `ip -batch -` on stdin and
 * never appear in a process's argv (/proc/PID/cmdline is world-readable).
 *
 * RFC 4301 §4.4.1 (SPD) / §4.4.2 (SAD) as Linux models them:
 *  - a state is (dst, proto esp, spi) with mode tunnel, reqid, algorithms,
 *    replay window (ESN per RFC 4303 §2.2.1 / §3.3.3), lifetimes, optional
 *    UDP encapsulation (RFC 3948, `encap espinudp sport dport 0.0.0.0`) and
 *    an if_id for route-based tunnels (xfrm interfaces);
 *  - a policy is a selector (one prefix each way, protocol, single ports) with
 *    a direction and a template naming the outer addresses and reqid; traffic
 *    arriving through a tunnel and forwarded needs a `fwd` policy next to
 *    the `in` one.
 * Traffic selector ranges (RFC 7296 §3.13.1) become the fewest prefixes
 * covering them; one policy per (local prefix, remote prefix) pair.
 */
import type { PolicySpec, SaSpec, Selector } from '../types.js';
import { parseAddr, rangeToCidrs } from '../ip.js';
import { xfrmCrypto, XfrmError } from './algorithms.js';

const hex = (b: Uint8Array): string => '0x' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const spiHex = (spi: number): string => '0x' + (spi >>> 0).toString(16).padStart(8, '0');

/** Legacy XFRM replay state has a 32-bit bitmap; iproute2 switches to the ESN-style replay attribute above it. */
const MAX_REPLAY_WINDOW = 4096;
/** Linux 6.1 rejects an ESN state with replay window 0 even outbound (xfrm_init_replay). */
const ESN_OUTBOUND_WINDOW = 32;

/** `xfrm state add ...` (one `ip -batch` line; holds keys). */
export function stateAddLine(sa: SaSpec): string {
  const c = xfrmCrypto(sa.encrId, sa.integId);
  let window = sa.replayWindow;
  if (!Number.isInteger(window) || window < 0 || window > MAX_REPLAY_WINDOW) throw new XfrmError('ERR_XFRM_REPLAY', `replay window ${window}: expected 0..${MAX_REPLAY_WINDOW}`);
  if (sa.esn) {
    if (sa.direction === 'out') window = Math.max(window, ESN_OUTBOUND_WINDOW);
    else if (window === 0) throw new XfrmError('ERR_XFRM_REPLAY', 'the kernel requires an anti-replay window with ESN (replay_window 0 and ESN together are not supported)');
  } else if (sa.direction === 'out') window = 0; // outbound SAs check nothing
  const parts = [
    'xfrm state add',
    `src ${sa.src.address} dst ${sa.dst.address}`,
    `proto esp spi ${spiHex(sa.spi)} reqid ${sa.reqid >>> 0} mode tunnel`,
    `replay-window ${window}`,
  ];
  if (sa.esn) parts.push('flag esn');
  if (c.kind === 'aead') parts.push(`aead ${c.name} ${hex(sa.encrKey)} ${c.icvBits}`);
  else parts.push(`enc ${c.name} ${hex(sa.encrKey)}`, `auth-trunc ${c.auth.name} ${hex(sa.integKey)} ${c.auth.truncBits}`);
  // RFC 3948 §2: ESP in UDP on the IKE NAT-T ports; the original-address field is unused in tunnel mode.
  if (sa.encap) parts.push(`encap espinudp ${sa.src.port} ${sa.dst.port} 0.0.0.0`);
  if (sa.ifId) parts.push(`if_id ${sa.ifId >>> 0}`);
  const limits: string[] = [];
  if (sa.softBytes) limits.push(`byte-soft ${sa.softBytes}`);
  if (sa.hardBytes) limits.push(`byte-hard ${sa.hardBytes}`);
  if (sa.softPackets) limits.push(`packet-soft ${sa.softPackets}`);
  if (sa.hardPackets) limits.push(`packet-hard ${sa.hardPackets}`);
  if (limits.length) parts.push(`limit ${limits.join(' ')}`);
  return parts.join(' ');
}

/** `xfrm state delete ...` (one line). */
export function stateDeleteLine(sa: Pick<SaSpec, 'src' | 'dst' | 'spi'>): string {
  return `xfrm state delete src ${sa.src.address} dst ${sa.dst.address} proto esp spi ${spiHex(sa.spi)}`;
}

/** argv for `ip -s xfrm state get ...` (counters; no keys in the arguments). */
export function stateGetArgs(sa: Pick<SaSpec, 'src' | 'dst' | 'spi'>): string[] {
  return ['-s', 'xfrm', 'state', 'get', 'src', sa.src.address, 'dst', sa.dst.address, 'proto', 'esp', 'spi', spiHex(sa.spi)];
}

/** Prefixes covering a selector's address range. */
export function selectorCidrs(s: Selector): string[] {
  return rangeToCidrs(s.startAddr, s.endAddr);
}

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp', 132: 'sctp' };

/**
 * The upper-layer part of an XFRM selector. XFRM matches one port (or any)
 * per side; iproute2 cannot express a mask, so ranges other than a single
 * port or 0-65535 are refused rather than widened.
 */
function upperSpec(local: Selector, remote: Selector, dir: 'out' | 'in'): string {
  if (local.ipProtocol !== remote.ipProtocol && local.ipProtocol !== 0 && remote.ipProtocol !== 0)
    throw new XfrmError('ERR_XFRM_SELECTOR', `selector protocols differ (${local.ipProtocol} vs ${remote.ipProtocol})`);
  const proto = local.ipProtocol || remote.ipProtocol;
  if (proto === 0) {
    if (!anyPort(local) || !anyPort(remote)) throw new XfrmError('ERR_XFRM_SELECTOR', 'port selectors need a protocol');
    return '';
  }
  const name = PROTO_NAMES[proto] ?? String(proto);
  const out = [`proto ${name}`];
  const port = (s: Selector, label: string): void => {
    if (anyPort(s)) return;
    if (s.startPort !== s.endPort) throw new XfrmError('ERR_XFRM_SELECTOR', `port range ${s.startPort}-${s.endPort} cannot be expressed as an XFRM selector (single port or any)`);
    if (proto === 6 || proto === 17 || proto === 132) out.push(`${label} ${s.startPort}`);
    else throw new XfrmError('ERR_XFRM_SELECTOR', `ports on protocol ${proto}`);
  };
  // Outbound: source = local side; inbound/forward: source = remote side.
  port(dir === 'out' ? local : remote, 'sport');
  port(dir === 'out' ? remote : local, 'dport');
  return out.join(' ');
}

function anyPort(s: Selector): boolean {
  return s.startPort === 0 && s.endPort === 65535;
}

/** One kernel policy: selector and direction; `key` identifies it for reference counting. */
export interface XfrmPolicyLine {
  key: string;
  dir: 'out' | 'in' | 'fwd';
  /** `xfrm policy update ...` (add or replace). */
  update: string;
  /** `xfrm policy delete ...`. */
  delete: string;
}

/**
 * Priority: more specific selectors first (lower value wins in XFRM), as
 * strongSwan's kernel_netlink orders them: longer prefixes, then a protocol,
 * then ports.
 */
export function policyPriority(srcPrefix: number, dstPrefix: number, proto: boolean, ports: number): number {
  return 200_000 - (srcPrefix + dstPrefix) * 256 - (proto ? 128 : 0) - ports * 32;
}

/** The kernel policies for one PolicySpec: `out`, or `in` + `fwd` (RFC 4301 §5.2: forwarded inbound traffic is checked too). */
export function policyLines(p: PolicySpec): XfrmPolicyLine[] {
  const dirs: ('out' | 'in' | 'fwd')[] = p.direction === 'out' ? ['out'] : ['in', 'fwd'];
  const out: XfrmPolicyLine[] = [];
  for (const l of p.local)
    for (const r of p.remote) {
      if (l.family !== r.family) continue; // RFC 7296 §2.9: selectors pair within a family
      const upperOut = upperSpec(l, r, 'out');
      const upperIn = upperSpec(l, r, 'in');
      for (const lc of selectorCidrs(l))
        for (const rc of selectorCidrs(r))
          for (const dir of dirs) {
            const [src, dst] = dir === 'out' ? [lc, rc] : [rc, lc];
            const upper = dir === 'out' ? upperOut : upperIn;
            const plen = (c: string) => Number(c.slice(c.indexOf('/') + 1));
            const nports = (upper.match(/port/g) ?? []).length;
            const sel = `src ${src} dst ${dst}${upper ? ' ' + upper : ''} dir ${dir}`;
            const ifId = p.ifId ? ` if_id ${p.ifId >>> 0}` : '';
            const tmpl = `tmpl src ${p.src.address} dst ${p.dst.address} proto esp reqid ${p.reqid >>> 0} mode tunnel`;
            out.push({
              key: `${sel}${ifId}`,
              dir,
              update: `xfrm policy update ${sel} priority ${policyPriority(plen(src), plen(dst), upper !== '', nports)}${ifId} ${tmpl}`,
              delete: `xfrm policy delete ${sel}${ifId}`,
            });
          }
    }
  return out;
}

/** Remote prefixes a route-based tunnel routes into its interface. */
export function remoteCidrs(p: PolicySpec): string[] {
  const out = new Set<string>();
  for (const r of p.remote) for (const c of selectorCidrs(r)) out.add(c);
  return [...out];
}

/** Does `cidr` contain `addr` (same family)? */
export function cidrContains(cidr: string, addr: Uint8Array): boolean {
  const slash = cidr.indexOf('/');
  const base = cidr.slice(0, slash);
  const len = Number(cidr.slice(slash + 1));
  const v6 = base.includes(':');
  if (v6 !== (addr.length === 16)) return false;
  const b = parseAddr(base);
  for (let bit = 0; bit < len; bit++) {
    const i = bit >> 3;
    const m = 0x80 >> (bit & 7);
    if ((b[i]! & m) !== (addr[i]! & m)) return false;
  }
  return true;
}

/** xfrm interface for route-based tunnels (Linux ≥ 4.19): `ip link add NAME type xfrm if_id N [dev DEV]`. */
export function linkAddLine(name: string, ifId: number, dev?: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new XfrmError('ERR_XFRM_IFNAME', `invalid interface name '${name}'`);
  if (!Number.isInteger(ifId) || ifId <= 0 || ifId > 0xffffffff) throw new XfrmError('ERR_XFRM_IFID', `if_id ${ifId}: expected 1..2^32-1`);
  return `link add ${name} type xfrm${dev ? ` dev ${dev}` : ''} if_id ${ifId >>> 0}`;
}

