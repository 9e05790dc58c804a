/**
 * XFRM command generation (firmware/dataplane/xfrm/commands.ts) and the
 * iproute2 output parsers: the exact `ip` lines for states (AEAD/CBC+HMAC,
 * ESN, replay window, UDP encapsulation, if_id, limits) and policies
 * (out / in + fwd, selectors to prefixes, ports, priorities). The real
 * kernel check runs in QEMU (test/image/site-to-site.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { Encr, IntegId } from '../../../firmware/ikev2/constants.js';
import type { PolicySpec, SaSpec, Selector } from '../../../firmware/dataplane/types.js';
import { parseAddr } from '../../../firmware/dataplane/ip.js';
import { cidrContains, linkAddLine, policyLines, remoteCidrs, stateAddLine, stateDeleteLine, stateGetArgs } from '../../../firmware/dataplane/xfrm/commands.js';
import { xfrmCrypto, XfrmError } from '../../../firmware/dataplane/xfrm/algorithms.js';
import { MonitorParser, parseMonitorBlock, parseStateCounters, type MonitorEvent } from '../../../firmware/dataplane/xfrm/parse.js';
import { redactKeys, udpInodesForPort } from '../../../firmware/dataplane/xfrm/system.js';

const bytes = (n: number, start = 1) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

function sa(over: Partial<SaSpec> = {}): SaSpec {
  return {
    spi: 0xc0ffee01,
    direction: 'out',
    src: { address: '192.0.2.1', port: 4500 },
    dst: { address: '192.0.2.2', port: 4500 },
    encap: false,
    encrId: Encr.AES_GCM_16,
    encrKeyBits: 256,
    encrKey: bytes(36),
    integId: IntegId.NONE,
    integKey: new Uint8Array(0),
    esn: false,
    replayWindow: 64,
    reqid: 7,
    ifId: 0,
    tunnel: 'hq',
    ...over,
  };
}

function sel(cidrStart: string, cidrEnd: string, proto = 0, startPort = 0, endPort = 65535): Selector {
  const s = parseAddr(cidrStart);
  return { family: s.length === 4 ? 4 : 6, startAddr: s, endAddr: parseAddr(cidrEnd), ipProtocol: proto, startPort, endPort };
}

const keyHex = (b: Uint8Array) => '0x' + Buffer.from(b).toString('hex');

describe('states', () => {
  it('AES-GCM-16 outbound: aead with salt, no replay window outbound, tunnel mode, reqid', () => {
    const s = sa();
    expect(stateAddLine(s)).toBe(
      `xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0xc0ffee01 reqid 7 mode tunnel replay-window 0 aead rfc4106(gcm(aes)) ${keyHex(s.encrKey)} 128`,
    );
  });

  it('inbound keeps the window; ESN flag; UDP encapsulation with both ports; if_id; limits', () => {
    const s = sa({ direction: 'in', src: { address: '192.0.2.2', port: 4501 }, dst: { address: '192.0.2.1', port: 4500 }, encap: true, esn: true, replayWindow: 128, ifId: 42, softBytes: 1000, hardBytes: 2000, hardPackets: 50 });
    expect(stateAddLine(s)).toBe(
      `xfrm state add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0xc0ffee01 reqid 7 mode tunnel replay-window 128 flag esn aead rfc4106(gcm(aes)) ${keyHex(s.encrKey)} 128` +
        ' encap espinudp 4501 4500 0.0.0.0 if_id 42 limit byte-soft 1000 byte-hard 2000 packet-hard 50',
    );
  });

  it('ChaCha20-Poly1305 (RFC 7634) and GCM ICV lengths', () => {
    expect(stateAddLine(sa({ encrId: Encr.CHACHA20_POLY1305 }))).toContain('aead rfc7539esp(chacha20,poly1305) 0x');
    expect(stateAddLine(sa({ encrId: Encr.AES_GCM_12 }))).toMatch(/rfc4106\(gcm\(aes\)\) 0x[0-9a-f]+ 96$/);
    expect(stateAddLine(sa({ encrId: Encr.AES_GCM_8 }))).toMatch(/rfc4106\(gcm\(aes\)\) 0x[0-9a-f]+ 64$/);
  });

  it('AES-CBC + HMAC-SHA2: enc and auth-trunc with the RFC 4868 truncations', () => {
    const s = sa({ encrId: Encr.AES_CBC, encrKey: bytes(32), integId: IntegId.HMAC_SHA2_256_128, integKey: bytes(32, 100) });
    expect(stateAddLine(s)).toContain(`enc cbc(aes) ${keyHex(s.encrKey)} auth-trunc hmac(sha256) ${keyHex(s.integKey)} 128`);
    expect(stateAddLine({ ...s, integId: IntegId.HMAC_SHA2_384_192, integKey: bytes(48) })).toContain('auth-trunc hmac(sha384) 0x');
    expect(stateAddLine({ ...s, integId: IntegId.HMAC_SHA2_512_256, integKey: bytes(64) })).toMatch(/auth-trunc hmac\(sha512\) 0x[0-9a-f]{128} 256/);
  });

  it('ESN outbound gets a non-zero window (Linux 6.1 rejects ESN with window 0); inbound ESN without a window is refused', () => {
    expect(stateAddLine(sa({ esn: true, replayWindow: 0 }))).toContain('replay-window 32 flag esn');
    expect(() => stateAddLine(sa({ direction: 'in', esn: true, replayWindow: 0 }))).toThrow(XfrmError);
    expect(() => stateAddLine(sa({ direction: 'in', replayWindow: 5000 }))).toThrow(/replay window/);
  });

  it('rejects what the kernel path cannot do', () => {
    expect(() => xfrmCrypto(Encr.AES_GCM_16, IntegId.HMAC_SHA2_256_128)).toThrow(XfrmError);
    expect(() => xfrmCrypto(3, IntegId.HMAC_SHA2_256_128)).toThrow(/encryption transform 3/);
    expect(() => xfrmCrypto(Encr.AES_CBC, IntegId.NONE)).toThrow(/integrity transform 0/);
    try {
      xfrmCrypto(99, 0);
    } catch (e) {
      expect((e as XfrmError).code).toBe('ERR_XFRM_ALGORITHM');
    }
  });

  it('delete and get identify the state by (src, dst, esp, spi); get carries no keys', () => {
    const s = sa({ spi: 0x1 });
    expect(stateDeleteLine(s)).toBe('xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00000001');
    expect(stateGetArgs(s)).toEqual(['-s', 'xfrm', 'state', 'get', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x00000001']);
  });

  it('redacts keys from command lines used in error messages', () => {
    const line = stateAddLine(sa({ encrId: Encr.AES_CBC, encrKey: bytes(16), integId: IntegId.HMAC_SHA2_256_128, integKey: bytes(32) }));
    const r = redactKeys(line);
    expect(r).toContain('enc cbc(aes) 0x<key> auth-trunc hmac(sha256) 0x<key> 128');
    expect(r).not.toMatch(/0x0102/);
  });
});

describe('policies', () => {
  const base: PolicySpec = {
    reqid: 7,
    direction: 'out',
    local: [sel('198.51.100.0', '198.51.100.255')],
    remote: [sel('203.0.113.0', '203.0.113.255')],
    ifId: 0,
    tunnel: 'hq',
    src: { address: '192.0.2.1', port: 500 },
    dst: { address: '192.0.2.2', port: 500 },
  };

  it('outbound: one policy, template with the outer addresses and reqid', () => {
    const [p, ...rest] = policyLines(base);
    expect(rest).toEqual([]);
    expect(p!.dir).toBe('out');
    expect(p!.update).toBe('xfrm policy update src 198.51.100.0/24 dst 203.0.113.0/24 dir out priority 187712 tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 7 mode tunnel');
    expect(p!.delete).toBe('xfrm policy delete src 198.51.100.0/24 dst 203.0.113.0/24 dir out');
  });

  it('inbound: in and fwd with swapped selectors; route-based policies carry if_id', () => {
    const lines = policyLines({ ...base, direction: 'in', ifId: 9, src: { address: '192.0.2.2', port: 500 }, dst: { address: '192.0.2.1', port: 500 } });
    expect(lines.map((l) => l.dir)).toEqual(['in', 'fwd']);
    expect(lines[0]!.update).toMatch(/^xfrm policy update src 203\.0\.113\.0\/24 dst 198\.51\.100\.0\/24 dir in priority \d+ if_id 9 tmpl src 192\.0\.2\.2 dst 192\.0\.2\.1 proto esp reqid 7 mode tunnel$/);
    expect(lines[1]!.delete).toBe('xfrm policy delete src 203.0.113.0/24 dst 198.51.100.0/24 dir fwd if_id 9');
  });

  it('ranges become prefixes (RFC 7296 §3.13.1 ranges vs XFRM prefixes); one policy per pair; families pair only with themselves', () => {
    const p: PolicySpec = {
      ...base,
      local: [sel('198.51.100.0', '198.51.100.255'), sel('2001:db8::', '2001:db8::ffff')],
      remote: [sel('203.0.113.1', '203.0.113.6'), sel('2001:db8:1::', '2001:db8:1::ffff')],
    };
    const lines = policyLines(p);
    const sels = lines.map((l) => /src (\S+) dst (\S+)/.exec(l.update)!.slice(1).join(' '));
    expect(sels).toEqual([
      '198.51.100.0/24 203.0.113.1/32',
      '198.51.100.0/24 203.0.113.2/31',
      '198.51.100.0/24 203.0.113.4/31',
      '198.51.100.0/24 203.0.113.6/32',
      '2001:db8::/112 2001:db8:1::/112',
    ]);
    expect(new Set(lines.map((l) => l.key)).size).toBe(lines.length);
  });

  it('protocol and single ports: sport/dport follow the direction; more specific gets a lower priority value', () => {
    const p: PolicySpec = { ...base, local: [sel('198.51.100.0', '198.51.100.255', 6, 0, 65535)], remote: [sel('203.0.113.0', '203.0.113.255', 6, 443, 443)] };
    const out = policyLines(p)[0]!;
    expect(out.update).toContain('dir out');
    expect(out.update).toMatch(/src 198\.51\.100\.0\/24 dst 203\.0\.113\.0\/24 proto tcp dport 443 dir out/);
    const inb = policyLines({ ...p, direction: 'in' });
    expect(inb[0]!.update).toMatch(/src 203\.0\.113\.0\/24 dst 198\.51\.100\.0\/24 proto tcp sport 443 dir in/);
    const prio = (l: string) => Number(/priority (\d+)/.exec(l)![1]);
    expect(prio(out.update)).toBeLessThan(prio(policyLines(base)[0]!.update));
  });

  it('refuses port ranges XFRM cannot express and mismatched protocols', () => {
    expect(() => policyLines({ ...base, remote: [sel('203.0.113.0', '203.0.113.255', 6, 1000, 2000)] })).toThrow(/port range 1000-2000/);
    expect(() => policyLines({ ...base, local: [sel('198.51.100.0', '198.51.100.255', 17)], remote: [sel('203.0.113.0', '203.0.113.255', 6)] })).toThrow(/protocols differ/);
  });

  it('remote prefixes for routes, and whether one covers the peer', () => {
    expect(remoteCidrs({ ...base, remote: [sel('0.0.0.0', '255.255.255.255')] })).toEqual(['0.0.0.0/0']);
    expect(cidrContains('0.0.0.0/0', parseAddr('192.0.2.2'))).toBe(true);
    expect(cidrContains('203.0.113.0/24', parseAddr('192.0.2.2'))).toBe(false);
    expect(cidrContains('192.0.2.0/25', parseAddr('192.0.2.2'))).toBe(true);
    expect(cidrContains('2001:db8::/32', parseAddr('192.0.2.2'))).toBe(false);
    expect(cidrContains('2001:db8::/32', parseAddr('2001:db8:5::1'))).toBe(true);
  });

  it('xfrm interface line; names and if_ids validated', () => {
    expect(linkAddLine('pqhq', 9)).toBe('link add pqhq type xfrm if_id 9');
    expect(linkAddLine('pqhq', 9, 'eth0')).toBe('link add pqhq type xfrm dev eth0 if_id 9');
    expect(() => linkAddLine('a name with spaces', 9)).toThrow(XfrmError);
    expect(() => linkAddLine('pqhq', 0)).toThrow(/if_id 0/);
  });
});

describe('iproute2 output', () => {
  // `ip -s xfrm state get` as printed by iproute2 6.1 (keys shortened).
  const dump = `src 192.0.2.2 dst 192.0.2.1
	proto esp spi 0xc0ffee01(3237998081) reqid 7(0x00000007) mode tunnel
	replay-window 0 seq 0x00000000 flag  (0x00000000)
	aead rfc4106(gcm(aes)) 0x0102 (288 bits) 128
	encap type espinudp sport 4500 dport 4500 addr 0.0.0.0
	anti-replay esn context:
	 seq-hi 0x0, seq 0x2a, oseq-hi 0x0, oseq 0x0
	 replay_window 64, bitmap-length 2
	 00000000 ffffffff
	if_id 0x9
	lifetime config:
	  limit: soft (INF)(bytes), hard (INF)(bytes)
	  limit: soft (INF)(packets), hard (INF)(packets)
	  expire add: soft 0(sec), hard 0(sec)
	  expire use: soft 0(sec), hard 0(sec)
	lifetime current:
	  36120(bytes), 42(packets)
	  add 2026-11-27 01:00:00 use 2026-11-27 01:00:05
	stats:
	  replay-window 3 replay 2 failed 5
`;

  it('counters: bytes, packets, replay drops (out of window + duplicates), ICV failures, last use', () => {
    expect(parseStateCounters(dump)).toEqual({ bytes: 36120, packets: 42, replayDrops: 5, authFailures: 5, lastUsed: new Date('2026-11-27T01:00:05').getTime() });
  });

  it('an unused SA has lastUsed 0; garbage yields undefined', () => {
    expect(parseStateCounters(dump.replace(/use 2026-11-27 01:00:05/, 'use -'))!.lastUsed).toBe(0);
    expect(parseStateCounters('Error: No such process')).toBeUndefined();
  });

  it('monitor: expire (soft and hard) and acquire, across arbitrary chunking', () => {
    const text = `Expired src 192.0.2.1 dst 192.0.2.2
	proto esp spi 0xc0ffee01(3237998081) reqid 7(0x00000007) mode tunnel
	replay-window 0 flag af-unspec
	hard 0
acquire proto esp 
  sel src 198.51.100.7/32 dst 203.0.113.9/32 proto icmp type 8 code 0 dev eth1 
  policy src 198.51.100.0/24 dst 203.0.113.0/24 
	dir out priority 187712 ptype main 
	tmpl src 192.0.2.1 dst 192.0.2.2
		proto esp spi 0x00000000(0) reqid 7(0x00000007) mode tunnel
Expired src 192.0.2.2 dst 192.0.2.1
	proto esp spi 0x00000abc(2748) reqid 7(0x00000007) mode tunnel
	hard 1
`;
    const events: MonitorEvent[] = [];
    const p = new MonitorParser((e) => events.push(e));
    for (let i = 0; i < text.length; i += 7) p.push(text.slice(i, i + 7));
    p.end();
    expect(events).toEqual([
      { kind: 'expire', src: '192.0.2.1', dst: '192.0.2.2', spi: 0xc0ffee01, hard: false },
      { kind: 'acquire', reqid: 7 },
      { kind: 'expire', src: '192.0.2.2', dst: '192.0.2.1', spi: 0xabc, hard: true },
    ]);
    expect(parseMonitorBlock('Updated src 192.0.2.1 dst 192.0.2.2')).toBeUndefined();
  });

  it('finds the NAT-T socket inodes in /proc/net/udp', () => {
    const procNetUdp = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  112: 0F02000A:01F4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17811 2 0000000000000000 0
  113: 0F02000A:1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17812 2 0000000000000000 0
  114: 0100007F:1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17814 2 0000000000000000 0
`;
    expect(udpInodesForPort(procNetUdp, 4500)).toEqual(['17812', '17814']);
    expect(udpInodesForPort(procNetUdp, 500)).toEqual(['17811']);
    expect(udpInodesForPort(procNetUdp, 4501)).toEqual([]);
  });
});
