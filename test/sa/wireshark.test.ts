import { describe, it, expect } from 'vitest';
import { formatEspSaLine, formatIkev2DecryptionTableLine } from '../../firmware/ikev2/sa/keymat.js';
import { wiresharkEspEncrName, wiresharkIkeEncrName } from '../../firmware/ikev2/sa/wireshark.js';
import { Encr, IntegId } from '../../firmware/ikev2/constants.js';
import { h, vector } from './helpers.js';

const uat = vector<{ ikev2: string[]; esp: string[] }>('wireshark-uat.json');

/** Split a UAT record (comma-separated, fields optionally double-quoted, no embedded commas in our data). */
function fields(line: string): string[] {
  return line.split(',').map((f) => f.replace(/^"(.*)"$/, '$1'));
}

describe('Wireshark ikev2_decryption_table records', () => {
  const ids: Record<string, [number, number, number]> = {
    'AES-GCM-256 with 16 octet ICV [RFC5282]': [Encr.AES_GCM_16, 256, IntegId.NONE],
    'AES-GCM-256 with 8 octet ICV [RFC5282]': [Encr.AES_GCM_8, 256, IntegId.NONE],
    'AES-CBC-256 [RFC3602]': [Encr.AES_CBC, 256, IntegId.HMAC_SHA2_256_128],
  };
  for (const line of uat.ikev2) {
    const f = fields(line);
    it(`reproduces the Wireshark test record for ${f[4]}`, () => {
      const [encrId, bits, integId] = ids[f[4]!]!;
      const out = formatIkev2DecryptionTableLine({
        spiI: h(f[0]!),
        spiR: h(f[1]!),
        skEi: h(f[2]!),
        skEr: h(f[3]!),
        encrId,
        encrKeyBits: bits,
        skAi: f[5] ? h(f[5]) : new Uint8Array(0),
        skAr: f[6] ? h(f[6]) : new Uint8Array(0),
        integId,
      });
      expect(out).toBe(line);
    });
  }
  it('names every AES size and GCM ICV length', () => {
    expect(wiresharkIkeEncrName(Encr.AES_CBC, 128)).toBe('AES-CBC-128 [RFC3602]');
    expect(wiresharkIkeEncrName(Encr.AES_GCM_12, 192)).toBe('AES-GCM-192 with 12 octet ICV [RFC5282]');
    expect(wiresharkIkeEncrName(Encr.AES_CBC, 100)).toBeUndefined();
  });
  it('writes a UAT comment for ChaCha20-Poly1305, which Wireshark cannot decrypt', () => {
    const out = formatIkev2DecryptionTableLine({
      spiI: h('0102030405060708'),
      spiR: h('1112131415161718'),
      skEi: new Uint8Array(36).fill(0xaa),
      skEr: new Uint8Array(36).fill(0xbb),
      encrId: Encr.CHACHA20_POLY1305,
      skAi: new Uint8Array(0),
      skAr: new Uint8Array(0),
    });
    expect(out.startsWith('#')).toBe(true);
    expect(out).toContain('0102030405060708,1112131415161718,' + 'aa'.repeat(36));
    expect(out).not.toContain('\n');
  });
});

describe('Wireshark esp_sa records', () => {
  it('uses the esp_sa.tmpl layout (protocol, addresses, SPI, encryption, key)', () => {
    const ref = fields(uat.esp[0]!);
    const out = formatEspSaLine({
      spi: 0x070883c2,
      src: '192.168.0.1',
      dst: '192.168.0.100',
      encrId: Encr.AES_CBC,
      encrKeyBits: 128,
      encrKey: h(ref[5]!.slice(2)),
      integId: IntegId.HMAC_SHA2_256_128,
      integKey: new Uint8Array(32).fill(0x11),
    });
    const got = fields(out);
    expect(got.slice(0, 6)).toEqual(ref.slice(0, 6));
    expect(got[6]).toBe('HMAC-SHA-256-128 [RFC4868]');
    expect(got[7]).toBe('0x' + '11'.repeat(32));
    // every field quoted, like the template
    expect(out.split(',').every((x) => x.startsWith('"') && x.endsWith('"'))).toBe(true);
  });
  it('AES-GCM: key with salt, ICV from the algorithm name, NULL authentication', () => {
    const out = formatEspSaLine({
      spi: 0xc0ffee01,
      src: '2001:0db8:0:0::1',
      dst: '2001:db8::2',
      encrId: Encr.AES_GCM_16,
      encrKeyBits: 256,
      encrKey: new Uint8Array(36).fill(0x42),
      integId: 0,
      integKey: new Uint8Array(0),
    });
    expect(out).toBe(`"IPv6","2001:db8::1","2001:db8::2","0xc0ffee01","AES-GCM with 16 octet ICV [RFC4106]","0x${'42'.repeat(36)}","NULL","0x"`);
    expect(wiresharkEspEncrName(Encr.AES_GCM_8)).toBe('AES-GCM with 8 octet ICV [RFC4106]');
  });
  it('writes a comment for ChaCha20-Poly1305', () => {
    const out = formatEspSaLine({ spi: 1, src: '192.0.2.1', dst: '192.0.2.2', encrId: Encr.CHACHA20_POLY1305, encrKey: new Uint8Array(36), integId: 0, integKey: new Uint8Array(0) });
    expect(out.startsWith('# ')).toBe(true);
    expect(out).toContain('0x00000001');
  });
});
