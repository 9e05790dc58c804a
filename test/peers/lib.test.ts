/**
 * Unit tests for the pure parts of the real-peer harness (test/interop/lib):
 * config rendering, swanctl/pluto output parsing, key extraction from charon
 * logs, Wireshark UAT tables, the VICI codec. Fixtures in ./fixtures are real
 * outputs captured on this machine (see fixtures/README.md). The capture
 * decryption test needs tshark and is skipped without it.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseListSasPretty, parseViciPretty } from '../interop/lib/swanctl-parse.js';
import { renderStrongswanConf, renderSwanctlConf, KEY_LOG_LEVELS } from '../interop/lib/swanctl-conf.js';
import {
  espTableFromCharon,
  ikeKeyGenerations,
  ikev2TablesFromCharon,
  parseDumps,
  wiresharkEspAlgs,
  wiresharkIkeAlgs,
} from '../interop/lib/charon-keys.js';
import {
  espFrames,
  formatEspUat,
  formatIkev2Uat,
  ikeDecryptionReport,
  parseEspUat,
  parseIkev2Uat,
  parseUatLine,
} from '../interop/lib/tshark.js';
import { decodeMessage, encodeMessage } from '../interop/lib/vici.js';
import { Libreswan, parseShowStates } from '../interop/lib/libreswan.js';
import { assertTestAddress } from '../interop/lib/netns.js';

const fx = (n: string): string => readFileSync(join(import.meta.dirname, 'fixtures', n), 'utf8');
const hasTshark = spawnSync('tshark', ['--version'], { encoding: 'utf8' }).status === 0;

describe('swanctl --list-sas --pretty parsing', () => {
  it('6.1 hybrid: agrees field by field with the text form printed by the same swanctl', () => {
    const [sa, ...rest] = parseListSasPretty(fx('list-sas-6.1-hybrid-initiator.pretty'));
    expect(rest).toEqual([]);
    const text = fx('list-sas-6.1-hybrid-initiator.txt').split('\n');
    // Line 1: "c: #1, ESTABLISHED, IKEv2, <spii>_i* <spir>_r"
    const head = /^(\S+): #(\d+), (\w+), IKEv(\d), ([0-9a-f]{16})_i\* ([0-9a-f]{16})_r$/.exec(text[0]!)!;
    expect(head).not.toBeNull();
    expect([sa!.name, sa!.uniqueId, sa!.state, sa!.version, sa!.spiI, sa!.spiR]).toEqual([
      head[1], Number(head[2]), head[3], Number(head[4]), head[5], head[6],
    ]);
    expect(sa!.initiator).toBe(true);
    expect(sa!.algorithms).toBe(text[3]!.trim());
    expect(sa!.additionalKe).toEqual(['ML_KEM_768']);
    const child = sa!.children[0]!;
    expect(text[5]!.trim()).toBe(`${child.name}: #${child.uniqueId}, reqid ${child.reqid}, ${child.state}, ${child.mode}-in-UDP, ${child.algorithms}`);
    expect(text[7]).toContain(`in  ${child.spiIn},`);
    expect(text[8]).toContain(`out ${child.spiOut},`);
    expect(text[7]).toMatch(new RegExp(`${child.bytesIn} bytes, +${child.packetsIn} packets`));
    expect(child.localTs).toEqual([text[9]!.trim().replace(/^local +/, '')]);
    expect(child.remoteTs).toEqual([text[10]!.trim().replace(/^remote +/, '')]);
  });

  it('6.1 responder sees the same SPIs with the roles swapped', () => {
    const [i] = parseListSasPretty(fx('list-sas-6.1-hybrid-initiator.pretty'));
    const [r] = parseListSasPretty(fx('list-sas-6.1-hybrid-responder.pretty'));
    expect(r!.initiator).toBe(false);
    expect([r!.spiI, r!.spiR]).toEqual([i!.spiI, i!.spiR]);
    expect(r!.children[0]!.spiIn).toBe(i!.children[0]!.spiOut);
    expect(r!.children[0]!.spiOut).toBe(i!.children[0]!.spiIn);
  });

  it('5.9.8 classical SA: no additional key exchanges, integrity algorithm shown', () => {
    const [sa] = parseListSasPretty(fx('list-sas-5.9.8-classic-responder.pretty'));
    expect(sa!.additionalKe).toEqual([]);
    expect(sa!.algorithms).toBe('AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048');
    expect(sa!.children[0]!.algorithms).toBe('ESP:AES_CBC-128/HMAC_SHA2_256_128');
  });

  it('a rekeyed Child SA carries its own key exchange, the IKE_AUTH one does not', () => {
    const [sa] = parseListSasPretty(fx('list-sas-6.1-child-rekeyed.pretty'));
    const [old, fresh] = sa!.children;
    expect(old!.dhGroup).toBeUndefined();
    expect(fresh!.dhGroup).toBe('MODP_2048');
    expect(fresh!.algorithms).toBe('ESP:AES_CBC-128/HMAC_SHA2_256_128/MODP_2048');
    expect(fresh!.uniqueId).toBeGreaterThan(old!.uniqueId);
  });

  it('generic pretty parser keeps lists, nested sections and the reply message', () => {
    const msgs = parseViciPretty('a event {\n  x {\n    l = [\n      1\n      2\n    ]\n    k = v w\n  }\n}\nlist-sas reply {\n}\n');
    expect(msgs).toEqual([
      { name: 'a event', body: { x: { l: ['1', '2'], k: 'v w' } } },
      { name: 'list-sas reply', body: {} },
    ]);
  });
});

describe('config rendering', () => {
  it('strongswan.conf: kernel-libipsec on, forecast off, fragment size, file log levels', () => {
    const conf = renderStrongswanConf({ fragmentSize: 576, threads: 64, logLevels: KEY_LOG_LEVELS }, { logFile: '/var/log/x.log' });
    expect(conf).toMatch(/kernel-libipsec \{\n\s+load = yes\n\s+\}/);
    expect(conf).toMatch(/forecast \{\n\s+load = no\n\s+\}/);
    expect(conf).toMatch(/^ {2}fragment_size = 576$/m);
    expect(conf).toMatch(/^ {2}threads = 64$/m);
    expect(conf).toMatch(/^ {6}ike = 4$/m);
    expect(conf).toMatch(/^ {6}chd = 4$/m);
    expect(conf).toMatch(/path = \/var\/log\/x\.log/);
    expect(conf.split('{').length).toBe(conf.split('}').length);
  });

  it('swanctl.conf: connection, children, secrets; values needing it are quoted', () => {
    const conf = renderSwanctlConf(
      [
        {
          name: 'c',
          localAddrs: ['192.0.2.1'],
          remoteAddrs: ['%any'],
          proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16-prfsha384-x25519'],
          unique: 'never',
          fragmentation: 'yes',
          dpdDelay: '10s',
          local: { auth: 'psk', id: 'C=CH, O=pqgate, CN=gw' },
          remote: { auth: 'pubkey', cacerts: ['ca.pem'] },
          children: [{ name: 'k', localTs: ['0.0.0.0/0'], remoteTs: ['198.51.100.0/25'], espProposals: ['aes256gcm16-x25519-ke1_mlkem768'], startAction: 'trap', rekeyTime: '1h' }],
        },
      ],
      [{ type: 'ike', secret: 'a "quoted" secret', ids: ['left', 'right'] }],
    );
    expect(conf).toContain('proposals = aes256gcm16-prfsha384-x25519-ke1_mlkem768,aes256gcm16-prfsha384-x25519');
    expect(conf).toMatch(/^ {4}encap = yes$/m);
    expect(conf).toMatch(/^ {4}unique = never$/m);
    expect(conf).toContain('id = "C=CH, O=pqgate, CN=gw"');
    expect(conf).toContain('cacerts = ca.pem');
    expect(conf).toContain('esp_proposals = aes256gcm16-x25519-ke1_mlkem768');
    expect(conf).toContain('start_action = trap');
    expect(conf).toContain('secret = "a \\"quoted\\" secret"');
    expect(conf).toMatch(/id-0 = left\n\s+id-1 = right/);
    expect(conf.split('{').length).toBe(conf.split('}').length);
  });

  it('libreswan ipsec.conf / ipsec.secrets', () => {
    const conf = Libreswan.renderConf({ conns: [{ name: 'c', left: '192.0.2.1', right: '%any', ike: 'aes_gcm256-sha2_384-dh31' }] });
    expect(conf).toMatch(/^conn c$/m);
    for (const kv of ['keyexchange=ikev2', 'left=192.0.2.1', 'right=%any', 'authby=secret', 'encapsulation=yes', 'fragmentation=yes', 'ike=aes_gcm256-sha2_384-dh31', 'auto=add']) {
      expect(conf).toContain(`\t${kv}\n`);
    }
    expect(Libreswan.renderSecrets([{ ids: ['@a', '@b'], psk: 'p' }])).toBe('@a @b : PSK "p"\n');
  });

  it('libreswan showstates: instance of a %any connection', () => {
    const [s] = parseShowStates(fx('libreswan-5.2-showstates.txt'));
    expect(s).toMatchObject({ serial: 1, conn: 'c', state: 'ESTABLISHED_IKE_SA' });
  });

  it('test addresses are limited to the three documentation /24s', () => {
    expect(() => assertTestAddress('192.0.2.7/24')).not.toThrow();
    expect(() => assertTestAddress('198.51.100.1')).not.toThrow();
    expect(() => assertTestAddress('203.0.113.254')).not.toThrow();
    for (const bad of ['10.0.0.1', '192.0.3.1', '8.8.8.8/32', '203.0.113.1.5']) expect(() => assertTestAddress(bad)).toThrow();
  });
});

describe('keys from charon logs and Wireshark UAT tables', () => {
  const log = fx('charon-6.1-responder-keys.log');
  const sas = parseListSasPretty(fx('list-sas-6.1-hybrid-responder.pretty'));

  it('hex dumps are reassembled per thread, lengths as announced', () => {
    const dumps = parseDumps(log).filter((d) => d.label.startsWith('Sk_'));
    expect(dumps.length).toBeGreaterThan(0);
    for (const d of dumps) expect(d.hex.length).toBe(d.len * 2);
  });

  it('two IKE key generations (after IKE_SA_INIT and after the ML-KEM round), AEAD so no SK_a*', () => {
    const gens = ikeKeyGenerations(log);
    expect(gens.map((g) => [g.uid, g.generation])).toEqual([[1, 0], [1, 1]]);
    for (const g of gens) {
      expect(g.skEi).toMatch(/^[0-9a-f]{72}$/); // AES-256 key + 4-octet salt (RFC 5282)
      expect(g.skEr).toMatch(/^[0-9a-f]{72}$/);
      expect(g.skAi + g.skAr).toBe('');
    }
    expect(gens[0]!.skEi).not.toBe(gens[1]!.skEi);
  });

  it('UAT lines round-trip; quoted fields may contain commas', () => {
    expect(parseUatLine('a,"b, c",,"d"')).toEqual(['a', 'b, c', '', 'd']);
    const tables = ikev2TablesFromCharon(log, sas);
    expect(tables).toHaveLength(2);
    const e = parseIkev2Uat(tables[1]!);
    expect(e).toHaveLength(1);
    expect(e[0]!.spiI).toBe(sas[0]!.spiI);
    expect(e[0]!.encAlg).toBe('AES-GCM-256 with 16 octet ICV [RFC5282]');
    expect(formatIkev2Uat(e)).toBe(tables[1]);
    const esp = parseEspUat(espTableFromCharon(log, sas));
    expect(esp.map((x) => x.spi).sort()).toEqual([sas[0]!.children[0]!.spiIn, sas[0]!.children[0]!.spiOut].sort());
    expect(formatEspUat(esp)).toBe(espTableFromCharon(log, sas));
  });

  it('algorithm names map to Wireshark 4.0 UAT values', () => {
    expect(wiresharkIkeAlgs('AES_CBC', 128, 'HMAC_SHA2_256_128')).toEqual({ enc: 'AES-CBC-128 [RFC3602]', integ: 'HMAC_SHA2_256_128 [RFC4868]' });
    expect(wiresharkEspAlgs('AES_GCM_16')).toEqual({ enc: 'AES-GCM with 16 octet ICV [RFC4106]', auth: 'NULL' });
    expect(() => wiresharkIkeAlgs('CAMELLIA_CBC', 128)).toThrow();
  });

  it.skipIf(!hasTshark)('the extracted keys decrypt the captured IKE_AUTH and ESP (tshark)', async () => {
    const pcap = join(import.meta.dirname, 'fixtures', 'hybrid-6.1.pcap');
    const tables = ikev2TablesFromCharon(log, sas);
    const esp = espTableFromCharon(log, sas);
    const rep = await ikeDecryptionReport(pcap, tables, esp);
    expect(rep.ikeAuth).toHaveLength(2);
    expect(rep.allIkeAuthDecrypted).toBe(true);
    expect(rep.intermediate.length).toBeGreaterThanOrEqual(2);
    expect(rep.intermediate.every((m) => m.decrypted)).toBe(true);
    // The pre-ML-KEM keys alone must not decrypt IKE_AUTH.
    const only0 = await ikeDecryptionReport(pcap, [tables[0]!]);
    expect(only0.ikeAuth.some((m) => m.decrypted)).toBe(false);
    const frames = await espFrames(pcap, esp);
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.every((f) => f.decrypted)).toBe(true);
    // Swapping the two ESP keys (wrong direction) must break decryption.
    const swapped = parseEspUat(esp);
    [swapped[0]!.encKey, swapped[1]!.encKey] = [swapped[1]!.encKey, swapped[0]!.encKey];
    expect((await espFrames(pcap, formatEspUat(swapped))).some((f) => f.decrypted)).toBe(false);
  });
});

describe('VICI codec', () => {
  it('round-trips sections, lists and key/values', () => {
    const msg = { a: 'b', sec: { k: 'v', inner: { l: ['x', 'y', ''] } }, empty: {} };
    expect(decodeMessage(encodeMessage(msg))).toEqual(msg);
  });

  it('encodes elements as in the VICI README (KEY_VALUE = 3, u8 name len, u16 value len)', () => {
    expect([...encodeMessage({ ab: 'xyz' })]).toEqual([3, 2, 0x61, 0x62, 0, 3, 0x78, 0x79, 0x7a]);
    expect([...encodeMessage({ s: {} })]).toEqual([1, 1, 0x73, 2]);
    expect([...encodeMessage({ l: ['z'] })]).toEqual([4, 1, 0x6c, 5, 0, 1, 0x7a, 6]);
  });

  it('rejects truncated or malformed input', () => {
    const b = encodeMessage({ key: 'value' });
    expect(() => decodeMessage(b.subarray(0, b.length - 1))).toThrow(/truncated/);
    expect(() => decodeMessage(Buffer.from([9]))).toThrow(/unknown element/);
    expect(() => decodeMessage(Buffer.from([2]))).toThrow(/unbalanced/);
  });
});
