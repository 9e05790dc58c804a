/**
 * firmware/util/ip.ts's isIPv4 / isIPv6 / isIP accept exactly what node:net's
 * do (they replace node's regular expressions, whose first compile was a
 * measurable part of the daemon's start under QEMU TCG): fixed edge cases of
 * RFC 4291 section 2.2 text forms and zones, then strings generated from the
 * characters that matter, compared with node's answer.
 */
import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { isIP, isIPv4, isIPv6, ipToBytes } from '../../firmware/util/ip.js';

const EDGE = [
  '', '::', ':', ':::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8',
  '1::2:3:4:5:6:7', '1:2:3:4:5:6::7:8', '1::2::3', '1:::2', ':1::', '::1:', '12345::', 'g::', 'ABCD:ef01::', 'fe80::1%eth0', 'fe80::1%',
  'fe80::1%a%b', 'fe80::1%en-0.1:2', 'fe80::1%a::b', 'fe80::1%a_b', '1:2:3:4:5:6:7:8%z', '::ffff:192.0.2.1', '::192.0.2.1', '::ffff:192.0.2.256',
  '::ffff:192.0.2.01', '1:2:3:4:5:6:192.0.2.1', '1:2:3:4:5:6:7:192.0.2.1', '1:2:3:4:5::192.0.2.1', '1:2:3:4:5:6::192.0.2.1',
  '192.0.2.1::', '1.2.3.4', '0.0.0.0', '255.255.255.255', '256.0.0.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1..2.3', '1.2.3.4 ', ' 1.2.3.4',
  '1.2.3.4\n', '::1\n', '::%1', '::1.2.3.4%x', '1:2:3:4:5:6:1.2.3.4%x', '::1.2.3', '::1.2.3.4.5', '::1.2.3.4:1', '0000:0:0:0:0:0:0:00000',
  '::0.0.0.0', '::255.255.255.255', '1::1.2.3.4', 'a:b:c:d:e:f:a:b', 'A:B:C:D:E:F:A:B', '::ffff:1.2.3.4:', '1.2.3.4%x', 'localhost', '::g',
];

// Characters that decide: hex digits on both sides of 'f', separators, zone characters and some that are never valid.
const ALPHABET = ['0', '1', '9', 'a', 'f', 'F', 'g', 'Z', ':', ':', ':', '.', '.', '%', '-', '_', '2', '5', ' '];

/** Deterministic generator (xorshift32): the same strings on every run. */
function* generated(n: number): Generator<string> {
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const pieces = ['::', ':', '.', '%eth0', 'ffff', '0', '192', '168.1.1', '255', '256', '01', '1:2:3:4', '5:6:7', '8', 'abcd', '12345'];
  for (let k = 0; k < n; k++) {
    const len = Math.floor(next() * 12);
    let s = '';
    for (let i = 0; i < len; i++) s += next() < 0.5 ? ALPHABET[Math.floor(next() * ALPHABET.length)]! : pieces[Math.floor(next() * pieces.length)]!;
    yield s;
    // And a dotted quad (or near miss) of decimal parts, alone or as an IPv6 tail.
    const parts = ['0', '1', '9', '25', '99', '199', '249', '255', '256', '260', '300', '01', '00', '007', '1000', ''];
    const count = 3 + Math.floor(next() * 3);
    let q = '';
    for (let i = 0; i < count; i++) q += (i ? '.' : '') + parts[Math.floor(next() * parts.length)]!;
    yield next() < 0.7 ? q : `::ffff:${q}`;
  }
}

describe('IP literal checks match node:net', () => {
  it('on the edge cases', () => {
    for (const s of EDGE) {
      expect([s, isIPv4(s)], 'isIPv4').toEqual([s, net.isIPv4(s)]);
      expect([s, isIPv6(s)], 'isIPv6').toEqual([s, net.isIPv6(s)]);
      expect([s, isIP(s)], 'isIP').toEqual([s, net.isIP(s)]);
    }
  });

  it('on 400000 generated strings, with both answers occurring', () => {
    let v4 = 0;
    let v6 = 0;
    for (const s of generated(200_000)) {
      const want = net.isIP(s);
      if (isIP(s) !== want || isIPv4(s) !== (want === 4) || isIPv6(s) !== (want === 6)) expect.fail(`disagrees with node:net on ${JSON.stringify(s)} (node: ${want})`);
      if (want === 4) v4++;
      if (want === 6) v6++;
    }
    // The generator must reach valid addresses of both families, else the comparison says little.
    expect(v4).toBeGreaterThan(1000);
    expect(v6).toBeGreaterThan(1000);
  });

  it('ipToBytes still parses what isIPv6 accepts', () => {
    expect([...ipToBytes('::ffff:192.0.2.1')]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
    expect([...ipToBytes('fe80::1%eth0')].slice(0, 2)).toEqual([0xfe, 0x80]);
    expect(() => ipToBytes('1::2::3')).toThrow(TypeError);
  });
});
