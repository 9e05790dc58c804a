/**
 * The traffic test's capture pipeline on a crafted pcap: pqgate's UDP GSO
 * super-frame (equal-sized ESP segments, the last one shorter, as
 * native/pqtun.c sendBatch builds them) is split by `splitGsoPcap` into the
 * datagrams the wire carries, and tshark with the esp_sa table decrypts
 * every one of them, whatever the inner family: `espFrames` once reported an
 * ESP packet carrying IPv6 as undecrypted (it looked for a second `ip.src`),
 * which is how the kernel's router solicitations on a route-based TUN showed
 * up in test/interop/traffic-strongswan.test.ts (docs/testing.md). Needs
 * tshark; skipped without it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { EspSa } from '../../firmware/dataplane/esp/sa.js';
import { Encr } from '../../firmware/ikev2/constants.js';
import { icmpEcho, ipv6 } from '../dataplane/helpers.js';
import { espFrames } from '../interop/lib/tshark.js';
import { readPcapUdp, splitGsoPcap } from '../interop/lib/traffic.js';

const hasTshark = spawnSync('tshark', ['--version'], { encoding: 'utf8' }).status === 0;
const SPI = 0xa110d050;
const KEY = Uint8Array.from({ length: 36 }, (_, i) => (i * 37 + 11) & 0xff); // AES-256 key + 4-byte salt (RFC 4106 §8.1)

/** Ethernet + IPv4 + UDP 4500 -> 4500 from 192.0.2.1 to 192.0.2.2 around `payload` (checksums as a packet socket sees GSO: UDP left 0). */
function frame(payload: Uint8Array): Buffer {
  const f = Buffer.alloc(14 + 20 + 8 + payload.length);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(20 + 8 + payload.length, 16);
  f[22] = 64;
  f[23] = 17;
  f.set([192, 0, 2, 1], 26);
  f.set([192, 0, 2, 2], 30);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += f.readUInt16BE(14 + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(~sum & 0xffff, 24);
  f.writeUInt16BE(4500, 34);
  f.writeUInt16BE(4500, 36);
  f.writeUInt16BE(8 + payload.length, 38);
  f.set(payload, 42);
  return f;
}

function pcap(frames: Buffer[]): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(262144, 16);
  h.writeUInt32LE(1, 20);
  const parts = [h];
  frames.forEach((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1_800_000_000 + i, 0);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    parts.push(r, f);
  });
  return Buffer.concat(parts);
}

const dir = mkdtempSync(join(tmpdir(), 'pqg-esp-capture-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hasTshark)('ESP capture pipeline: GSO split + tshark decryption', () => {
  it('splits a super-frame with a short last segment and decrypts IPv4 and IPv6 inner packets alike', async () => {
    const sa = new EspSa({ spi: SPI, encrId: Encr.AES_GCM_16, encrKeyBits: 256, encrKey: KEY, integId: 0, integKey: new Uint8Array(0), esn: false, replayWindow: 0 });
    const seal = (inner: Uint8Array, nh: number): Uint8Array => new Uint8Array(sa.encapsulate(inner, nh)!);
    // Seq 1-3: equal-sized ESP (one GSO run), seq 4 shorter (the run's last segment).
    const run = [1, 2, 3].map((i) => seal(icmpEcho('198.51.100.10', '198.51.100.130', 7, i, 1000), 4));
    const tail = seal(icmpEcho('198.51.100.10', '198.51.100.130', 7, 4, 100), 4);
    expect(new Set(run.map((p) => p.length)).size).toBe(1);
    expect(tail.length).toBeLessThan(run[0]!.length);
    // Seq 5: the router solicitation the kernel sent from the TUN's fe80:: address (the captured plaintext).
    const rs = ipv6('fe80::db5:dbfa:dbf6:295d', 'ff02::2', 58, Uint8Array.from([0x85, 0, 0x8e, 0x33, 0, 0, 0, 0]));
    rs[7] = 255;
    const rsEsp = seal(rs, 41);
    const raw = join(dir, 'raw.pcap');
    const wire = join(dir, 'wire.pcap');
    writeFileSync(raw, pcap([frame(Buffer.concat([...run, tail])), frame(rsEsp)]));

    expect(splitGsoPcap(raw, wire)).toBe(1);
    const dgrams = readPcapUdp(wire);
    expect(dgrams.map((d) => d.payload.length)).toEqual([...run, tail, rsEsp].map((p) => p.length));
    expect(dgrams.map((d) => Buffer.from(d.payload).toString('hex'))).toEqual([...run, tail, rsEsp].map((p) => Buffer.from(p).toString('hex')));

    const table = `"IPv4","192.0.2.1","192.0.2.2","0x${SPI.toString(16)}","AES-GCM with 16 octet ICV [RFC4106]","0x${Buffer.from(KEY).toString('hex')}","NULL","0x"\n`;
    const frames = await espFrames(wire, table);
    expect(frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(frames.filter((f) => !f.decrypted)).toEqual([]);
    expect(frames.map((f) => f.inner)).toEqual([
      ...[1, 2, 3, 4].map(() => ({ family: 4, src: '198.51.100.10', dst: '198.51.100.130' })),
      { family: 6, src: 'fe80::db5:dbfa:dbf6:295d', dst: 'ff02::2' },
    ]);
    // A wrong key decrypts nothing (the check is not vacuous).
    const wrong = table.replace(/0x[0-9a-f]{72}/, `0x${'00'.repeat(36)}`);
    expect((await espFrames(wire, wrong)).some((f) => f.decrypted)).toBe(false);
  });
});
