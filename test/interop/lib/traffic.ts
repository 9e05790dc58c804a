/**
 * Traffic through IPsec gateways in namespaces: a site topology with a
 * client host behind each gateway, ping and iperf3 between them, a small
 * classic-pcap reader, re-injection of captured ESP-in-UDP datagrams, and
 * the ESP key table a pqgate daemon wrote.
 *
 *   cl (198.51.100.10/25) ─lan─ gwL (198.51.100.1 | 192.0.2.1) ══eth0══ gwR (192.0.2.2 | 198.51.100.129) ─lan─ cr (198.51.100.130/25)
 *
 * The gateways' inside /31 for route-based tunnels (health probes) comes
 * from 203.0.113.0/24, the only documentation range the direct topology
 * leaves free: `insideL`/`insideR`. Every address is a documentation address
 * (RFC 5737); namespaces and processes are registered with the cleanup
 * registry like every other interop resource.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createPair, Netns, vethLink, type Pair } from './netns.js';
import { type Spawned, sleep } from './proc.js';

export interface Site {
  pair: Pair;
  /** Gateways: left = 192.0.2.1, right = 192.0.2.2 (eth0). */
  gwL: Netns;
  gwR: Netns;
  /** Client hosts behind them. */
  cl: Netns;
  cr: Netns;
  outerL: string;
  outerR: string;
  /** LANs (traffic selectors) and the hosts' addresses. */
  lanL: string;
  lanR: string;
  clAddr: string;
  crAddr: string;
  /** Inside /31 of a route-based tunnel: insideL/31 on the left gateway, insideR the peer's end. */
  insideL: string;
  insideR: string;
  destroy(): Promise<void>;
}

/** Two gateways on one link, each with a client host on its own LAN; forwarding on, rp_filter off. */
export async function createSite(tag: string): Promise<Site> {
  const pair = await createPair({ tag });
  const created: Netns[] = [];
  const destroy = async (): Promise<void> => {
    for (const ns of created.reverse()) ns.destroySync();
    await pair.destroy();
  };
  try {
    const cl = await Netns.create(`${tag}-cl`);
    created.push(cl);
    const cr = await Netns.create(`${tag}-cr`);
    created.push(cr);
    await vethLink(pair.left, 'lan', '198.51.100.1/25', cl, 'eth0', '198.51.100.10/25');
    await vethLink(pair.right, 'lan', '198.51.100.129/25', cr, 'eth0', '198.51.100.130/25');
    await cl.defaultRoute('198.51.100.1');
    await cr.defaultRoute('198.51.100.129');
    for (const gw of [pair.left, pair.right]) {
      await gw.sysctl('net.ipv4.ip_forward', 1);
      // Decrypted packets arrive on a TUN device whose routes the kernel may not consider the reverse path.
      await gw.sysctl('net.ipv4.conf.all.rp_filter', 0);
      await gw.sysctl('net.ipv4.conf.default.rp_filter', 0);
    }
    return {
      pair,
      gwL: pair.left,
      gwR: pair.right,
      cl,
      cr,
      outerL: pair.leftAddr,
      outerR: pair.rightAddr,
      lanL: '198.51.100.0/25',
      lanR: '198.51.100.128/25',
      clAddr: '198.51.100.10',
      crAddr: '198.51.100.130',
      insideL: '203.0.113.0',
      insideR: '203.0.113.1',
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}

export interface PingResult {
  transmitted: number;
  received: number;
  output: string;
}

/** `ping -c count` (0.1 s apart) from `ns`, optionally from source address `src`. Never throws on loss. */
export async function ping(ns: Netns, dst: string, o: { src?: string; count?: number; size?: number; timeoutSec?: number } = {}): Promise<PingResult> {
  const args = ['-n', '-c', String(o.count ?? 3), '-i', '0.1', '-W', String(o.timeoutSec ?? 2)];
  if (o.src) args.push('-I', o.src);
  if (o.size) args.push('-s', String(o.size), '-M', 'do');
  args.push(dst);
  const r = await ns.exec('ping', args, { check: false, timeoutMs: 30_000 });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  return { transmitted: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, output: r.stdout + r.stderr };
}

/** Ping until one reply comes back (the first packets may trigger SA setup or ARP), at most `timeoutMs`. */
export async function pingUntilReply(ns: Netns, dst: string, o: { src?: string; timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  let last = '';
  for (;;) {
    const r = await ping(ns, dst, { src: o.src, count: 1, timeoutSec: 1 });
    if (r.received > 0) return;
    last = r.output;
    if (Date.now() > deadline) throw new Error(`no ping reply from ${dst}${o.src ? ` (source ${o.src})` : ''} in ${ns.name}:\n${last}`);
    await sleep(100);
  }
}

export interface IperfResult {
  /** Receiver-side throughput, bits/s. */
  bitsPerSecond: number;
  /** Bytes received by the receiver (by the time the sender stopped: iperf3 -n may report less than sent). */
  bytes: number;
  /** Bytes the sender sent. */
  sentBytes: number;
  retransmits: number;
}

/** An iperf3 server in `ns` on `addr` (port 5201); stop() ends it. */
export async function iperfServer(ns: Netns, addr: string, logFile: string): Promise<Spawned> {
  const p = ns.spawn(['iperf3', '-s', '-B', addr, '-p', '5201'], logFile, 'iperf3 -s');
  const deadline = Date.now() + 5000;
  // Ready when the port is bound.
  for (;;) {
    const r = await ns.exec('ss', ['-Htln', 'sport = :5201'], { check: false });
    if (r.stdout.includes('5201')) return p;
    if (p.hasExited() || Date.now() > deadline) {
      await p.stop(500);
      throw new Error(`iperf3 server did not start in ${ns.name}: ${readFileSync(logFile, 'utf8')}`);
    }
    await sleep(30);
  }
}

/** Run an iperf3 TCP test from `ns` to `server` for `seconds`, or `bytes` (`reverse`: the server sends). */
export async function iperfClient(ns: Netns, server: string, o: { seconds?: number; bytes?: number; reverse?: boolean; mss?: number } = {}): Promise<IperfResult> {
  const args = ['-c', server, '-p', '5201', '-J', '--connect-timeout', '5000'];
  if (o.bytes) args.push('-n', String(o.bytes));
  else args.push('-t', String(o.seconds ?? 3));
  if (o.reverse) args.push('-R');
  if (o.mss) args.push('-M', String(o.mss));
  const r = await ns.exec('iperf3', args, { check: false, timeoutMs: ((o.seconds ?? 3) + 20) * 1000 });
  let j: { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number }; sum_sent?: { bytes?: number; retransmits?: number } } };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new Error(`iperf3 -c ${server}: no JSON output (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 500)}`);
  }
  if (j.error || !j.end?.sum_received) throw new Error(`iperf3 -c ${server}: ${j.error ?? 'no result'}`);
  return { bitsPerSecond: j.end.sum_received.bits_per_second, bytes: j.end.sum_received.bytes, sentBytes: j.end.sum_sent?.bytes ?? 0, retransmits: j.end.sum_sent?.retransmits ?? 0 };
}

// ------------------------------------------------------------------ pcap

export interface UdpRecord {
  index: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload: Uint8Array;
}

/**
 * UDP datagrams (IPv4 over Ethernet) in a classic pcap file (dumpcap -P):
 * 24-byte file header, then per record 16 bytes (ts_sec, ts_usec, incl_len,
 * orig_len) and the frame. Either byte order; frames that are not complete
 * IPv4/UDP are skipped.
 */
export function readPcapUdp(file: string): UdpRecord[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${file}: not a classic pcap file`);
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`${file}: link type ${u32(20)}, expected Ethernet`);
  const out: UdpRecord[] = [];
  let off = 24;
  let index = 0;
  while (off + 16 <= b.length) {
    const incl = u32(off + 8);
    const f = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    index++;
    if (f.length < 14 + 20 + 8 || f.readUInt16BE(12) !== 0x0800) continue;
    const ip = f.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[0]! >> 4 !== 4 || ip[9] !== 17 || ip.length < ihl + 8) continue;
    if ((ip.readUInt16BE(6) & 0x3fff) !== 0) continue; // fragments
    const totalLen = ip.readUInt16BE(2);
    const udp = ip.subarray(ihl, totalLen);
    const ulen = udp.readUInt16BE(4);
    if (ulen < 8 || ulen > udp.length) continue;
    out.push({
      index,
      src: [...ip.subarray(12, 16)].join('.'),
      dst: [...ip.subarray(16, 20)].join('.'),
      sport: udp.readUInt16BE(0),
      dport: udp.readUInt16BE(2),
      payload: new Uint8Array(udp.subarray(8, ulen)),
    });
  }
  return out;
}

/**
 * Split UDP GSO super-frames of ESP-in-UDP into the datagrams they become on
 * the wire, writing a new classic pcap (Ethernet). A packet socket on the
 * sending host sees pqgate's UDP GSO messages (native/pqtun.c sendBatch)
 * before segmentation: one frame whose UDP payload is several ESP packets
 * back to back (the segment size is not in the headers). ESP gives it away:
 * the next segment starts with the same SPI and the next sequence number
 * (RFC 4303 §2), so the segment size is the offset of that pattern. Each
 * segment gets the original Ethernet/IP/UDP headers with corrected lengths
 * and IPv4 header checksum (UDP checksum 0, as RFC 3948 §2.1 allows).
 * Returns how many super-frames were split.
 */
export function splitGsoPcap(inFile: string, outFile: string): number {
  const b = readFileSync(inFile);
  const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const out: Buffer[] = [b.subarray(0, 24)];
  const rec = (hdr: Buffer, frame: Buffer): void => {
    const h = Buffer.from(hdr);
    if (le) {
      h.writeUInt32LE(frame.length, 8);
      h.writeUInt32LE(frame.length, 12);
    } else {
      h.writeUInt32BE(frame.length, 8);
      h.writeUInt32BE(frame.length, 12);
    }
    out.push(h, frame);
  };
  let split = 0;
  let off = 24;
  while (off + 16 <= b.length) {
    const hdr = b.subarray(off, off + 16);
    const incl = u32(off + 8);
    const f = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const ihl = f.length > 14 ? (f[14]! & 0x0f) * 4 : 0;
    const isEspUdp = f.length >= 14 + 20 + 16 && f.readUInt16BE(12) === 0x0800 && f[14]! >> 4 === 4 && f[23] === 17 && f.readUInt16BE(14 + ihl + 2) === 4500;
    const payOff = 14 + ihl + 8;
    const pay = f.subarray(payOff);
    let seg = 0;
    if (isEspUdp && pay.length >= 16 && pay.readUInt32BE(0) !== 0) {
      const spi = pay.readUInt32BE(0);
      const seq = pay.readUInt32BE(4);
      for (let k = 24; k + 8 <= pay.length; k++) {
        if (pay.readUInt32BE(k) === spi && pay.readUInt32BE(k + 4) === ((seq + 1) >>> 0)) {
          seg = k;
          break;
        }
      }
    }
    if (!seg) {
      rec(hdr, Buffer.from(f));
      continue;
    }
    split++;
    for (let p = 0; p < pay.length; p += seg) {
      const part = pay.subarray(p, Math.min(p + seg, pay.length));
      const fr = Buffer.concat([f.subarray(0, payOff), part]);
      fr.writeUInt16BE(ihl + 8 + part.length, 14 + 2); // IP total length
      fr.writeUInt16BE(0, 14 + 10);
      let sum = 0;
      for (let i = 0; i < ihl; i += 2) sum += fr.readUInt16BE(14 + i);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      fr.writeUInt16BE(~sum & 0xffff, 14 + 10);
      fr.writeUInt16BE(8 + part.length, 14 + ihl + 4); // UDP length
      fr.writeUInt16BE(0, 14 + ihl + 6); // UDP checksum: none
      rec(hdr, fr);
    }
  }
  writeFileSync(outFile, Buffer.concat(out));
  return split;
}

/** ESP-in-UDP datagrams (port 4500, non-zero SPI: RFC 3948 §2.2) of one SPI. */
export function espDatagrams(recs: readonly UdpRecord[], spi: number): UdpRecord[] {
  return recs.filter((r) => r.dport === 4500 && r.payload.length >= 8 && Buffer.from(r.payload).readUInt32BE(0) === spi >>> 0);
}

/**
 * Send `payload` as one UDP datagram from `ns`, source address `from`
 * (ephemeral port: the receiving data plane keys ESP on the SPI, RFC 4303
 * §3.4.2, and pqgate takes ESP-in-UDP from any source port), to `to:port`.
 */
export async function injectUdp(ns: Netns, from: string, to: string, port: number, payload: Uint8Array): Promise<void> {
  const script = [
    "const s = require('node:dgram').createSocket('udp4');",
    `s.bind(0, ${JSON.stringify(from)}, () => s.send(Buffer.from(${JSON.stringify(Buffer.from(payload).toString('hex'))}, 'hex'), ${port}, ${JSON.stringify(to)}, (e) => { if (e) { console.error(e.message); process.exitCode = 1; } s.close(); }));`,
  ].join('\n');
  await ns.exec('node', ['-e', script], { timeoutMs: 10_000 });
}

/** The esp_sa key table (Wireshark UAT) a pqgate daemon wrote next to its IKE key log. */
export function pqgateEspKeylog(ikeKeylogPath: string): string {
  try {
    return readFileSync(`${ikeKeylogPath}.esp_sa`, 'utf8');
  } catch {
    return '';
  }
}
