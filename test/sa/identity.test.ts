import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { formatIdentity, identityMatches, parseIdentity } from '../../firmware/ikev2/sa/identity.js';
import { IdType } from '../../firmware/ikev2/constants.js';
import { ConfigError } from '../../firmware/util/errors.js';
import { hex } from '../../firmware/util/bytes.js';

const ascii = (s: string): string => hex(new TextEncoder().encode(s));

describe('parseIdentity', () => {
  const table: [string, number, string, string][] = [
    // input, type, data (hex), canonical text
    ['192.0.2.1', IdType.IPV4_ADDR, 'c0000201', '192.0.2.1'],
    ['2001:db8::1', IdType.IPV6_ADDR, '20010db8000000000000000000000001', '2001:db8::1'],
    ['ipv4:198.51.100.9', IdType.IPV4_ADDR, 'c6336409', '198.51.100.9'],
    ['gw.example.net', IdType.FQDN, ascii('gw.example.net'), 'gw.example.net'],
    ['fqdn:gw.example.net', IdType.FQDN, ascii('gw.example.net'), 'gw.example.net'],
    ['FQDN:Gw.Example.Net', IdType.FQDN, ascii('Gw.Example.Net'), 'Gw.Example.Net'],
    ['@gw', IdType.FQDN, ascii('gw'), 'gw'],
    ['branch7', IdType.FQDN, ascii('branch7'), 'branch7'],
    ['fqdn:192.0.2.1', IdType.FQDN, ascii('192.0.2.1'), 'fqdn:192.0.2.1'],
    ['user@example.net', IdType.RFC822_ADDR, ascii('user@example.net'), 'user@example.net'],
    ['email:user@example.net', IdType.RFC822_ADDR, ascii('user@example.net'), 'user@example.net'],
    ['@@user@example.net', IdType.RFC822_ADDR, ascii('user@example.net'), 'user@example.net'],
    ['keyid:branch-7', IdType.KEY_ID, ascii('branch-7'), 'keyid:branch-7'],
    ['keyid:#0102ff', IdType.KEY_ID, '0102ff', 'keyid:#0102ff'],
    ['@#c0ffee', IdType.KEY_ID, 'c0ffee', 'keyid:#c0ffee'],
    ['{11}:#abcd', IdType.KEY_ID, 'abcd', 'keyid:#abcd'],
    ['asn1dn:#300b3109', IdType.DER_ASN1_DN, '300b3109', 'asn1dn:#300b3109'],
    ['some:thing', IdType.KEY_ID, ascii('some:thing'), 'keyid:some:thing'],
  ];
  for (const [input, type, data, text] of table) {
    it(input, () => {
      const id = parseIdentity(input)!;
      expect([id.idType, hex(id.data), id.text]).toEqual([type, data, text]);
      const again = parseIdentity(id.text)!;
      expect([again.idType, hex(again.data)]).toEqual([type, data]);
    });
  }
  it('%any and its spellings mean "any identity"', () => {
    for (const s of ['%any', '*', '0.0.0.0', '::', '', '%any6']) expect(parseIdentity(s)).toBeUndefined();
  });
  const bad: [string, RegExp][] = [
    ['C=CH, O=strongSwan, CN=gw', /distinguished names/],
    ['keyid:#zz', /invalid hex/],
    ['@#', /invalid hex/],
    ['ipv4:gw.example.net', /not an IPv4 address/],
    ['ipv6:192.0.2.1', /not an IPv6 address/],
    ['fqdn:', /empty value/],
    ['@', /empty value/],
    ['@@', /empty value/],
    ['asn1dn:CN=gw', /only accepted as hex/],
    ['{999}:x', /out of range/],
    ['{1}:#0102', /IPV4_ADDR needs 4 octets/],
  ];
  for (const [input, re] of bad) {
    it(`rejects '${input}'`, () => {
      expect(() => parseIdentity(input, 'tunnels[2].remote_id')).toThrow(ConfigError);
      expect(() => parseIdentity(input, 'tunnels[2].remote_id')).toThrow(re);
    });
  }
});

describe('formatIdentity', () => {
  it('quotes ambiguous values with a prefix and non-text as hex', () => {
    expect(formatIdentity(IdType.FQDN, new TextEncoder().encode('a@b'))).toBe('fqdn:a@b');
    expect(formatIdentity(IdType.FQDN, new TextEncoder().encode('#abc'))).toBe('#abc'); // plain: re-parses as FQDN
    expect(formatIdentity(IdType.FQDN, new TextEncoder().encode('x:y'))).toBe('fqdn:x:y'); // plain would be a KEY_ID
    expect(formatIdentity(IdType.FQDN, new Uint8Array([0x67, 0x00, 0x77]))).toBe('fqdn:#670077');
    expect(formatIdentity(IdType.RFC822_ADDR, new TextEncoder().encode('nobody'))).toBe('email:nobody');
    expect(formatIdentity(IdType.KEY_ID, new Uint8Array([0, 1, 2]))).toBe('keyid:#000102');
    expect(formatIdentity(IdType.IPV4_ADDR, new Uint8Array([1, 2, 3]))).toBe('{1}:#010203');
    expect(formatIdentity(42, new Uint8Array([7]))).toBe('{42}:#07');
  });
  it('round-trips any type and data through parseIdentity', () => {
    const arbId = fc.oneof(
      fc.uint8Array({ minLength: 4, maxLength: 4 }).map((d) => [IdType.IPV4_ADDR, d] as const),
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((d) => [IdType.IPV6_ADDR, d] as const),
      fc.tuple(fc.constantFrom(IdType.FQDN, IdType.RFC822_ADDR, IdType.KEY_ID, IdType.DER_ASN1_DN, 200), fc.oneof(
        fc.string({ minLength: 1, maxLength: 24 }).map((s) => new TextEncoder().encode(s)),
        fc.uint8Array({ minLength: 1, maxLength: 24 }),
      )),
    );
    fc.assert(
      fc.property(arbId, ([type, data]) => {
        const text = formatIdentity(type, data);
        const back = parseIdentity(text);
        return back !== undefined && back.idType === type && hex(back.data) === hex(data) && back.text === text;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('identityMatches', () => {
  const recv = (s: string): { idType: number; data: Uint8Array } => {
    const id = parseIdentity(s)!;
    return { idType: id.idType, data: id.data };
  };
  const table: [string | undefined, string, boolean][] = [
    [undefined, 'gw.example.net', true],
    ['gw.example.net', 'gw.example.net', true],
    ['gw.example.net', 'GW.Example.NET', true],
    ['gw.example.net', 'gw2.example.net', false],
    ['gw.example.net', 'keyid:gw.example.net', false],
    ['*.example.net', 'gw.example.net', true],
    ['*.example.net', 'example.org', false],
    ['*@example.net', 'alice@example.net', true],
    ['*@example.net', 'alice@example.org', false],
    ['alice@example.net', 'Alice@Example.net', true],
    ['keyid:abc', 'keyid:abc', true],
    ['keyid:abc', 'keyid:ABC', false],
    ['192.0.2.1', '192.0.2.1', true],
    ['192.0.2.1', '192.0.2.2', false],
    ['192.0.2.1', 'fqdn:192.0.2.1', false],
  ];
  for (const [cfg, got, want] of table) {
    it(`${cfg ?? '%any'} vs ${got} → ${want}`, () => {
      expect(identityMatches(cfg === undefined ? undefined : parseIdentity(cfg), recv(got))).toBe(want);
    });
  }
});
