/**
 * Two engines in one process over the fake network: the hybrid handshake for
 * every algorithm family, 1-3 additional key exchanges, INVALID_KE retry,
 * cookies, fragmentation, NAT, retransmissions under loss.
 */
import { describe, it, expect } from 'vitest';
import { pair, up, type Host, type Lab } from './harness.js';
import { equal, hex } from '../../firmware/util/bytes.js';

function established(lab: Lab, a: Host, b: Host) {
  const sa = lab.status(a);
  const sb = lab.status(b);
  expect(sa.map((s) => s.state)).toEqual(['ESTABLISHED']);
  expect(sb.map((s) => s.state)).toEqual(['ESTABLISHED']);
  return { sa: sa[0]!, sb: sb[0]! };
}

/** The initiator's outbound ESP SA must be the responder's inbound one, key for key. */
function expectMatchingChildren(a: Host, b: Host) {
  expect(a.installs).toHaveLength(1);
  expect(b.installs).toHaveLength(1);
  const ia = a.installs[0]!;
  const ib = b.installs[0]!;
  expect(ia.outbound.spi).toBe(ib.inbound.spi);
  expect(ib.outbound.spi).toBe(ia.inbound.spi);
  expect(equal(ia.outbound.encrKey, ib.inbound.encrKey)).toBe(true);
  expect(equal(ib.outbound.encrKey, ia.inbound.encrKey)).toBe(true);
  expect(equal(ia.outbound.integKey, ib.inbound.integKey)).toBe(true);
  expect(hex(ia.outbound.encrKey)).not.toBe(hex(ia.inbound.encrKey));
  expect(ia.outbound.encrKey.length).toBeGreaterThan(0);
}

describe('IKEv2 handshake between two engines', () => {
  it('x25519 + ML-KEM-768 with PSK establishes IKE and the first Child SA', () => {
    const { lab, a, b } = pair();
    up(lab, a);
    lab.run();
    const { sa, sb } = established(lab, a, b);
    expect(sa.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
    expect(sb.keyExchanges).toEqual(['CURVE_25519', 'ML_KEM_768']);
    expect(sa.postQuantum).toBe('ML_KEM_768');
    expect(sa.spiI).toBe(sb.spiI);
    expect(sa.spiR).toBe(sb.spiR);
    expect(sa.encr).toBe(sb.encr);
    expect(sa.role).toBe('initiator');
    expect(sb.role).toBe('responder');
    expect(sa.remoteId).toBe(sb.localId);
    expectMatchingChildren(a, b);
    expect(sa.children[0]!.localTs).toEqual(['10.1.0.0/16']);
    expect(sb.children[0]!.localTs).toEqual(['10.2.0.0/16']);
    // 7 datagrams: SA_INIT x2, INTERMEDIATE x2 (the request fragmented at 1280), AUTH x2
    expect(lab.net.stats.delivered).toBeGreaterThanOrEqual(6);
    // Both wrote a key log line for the same SPIs.
    expect(a.keylog.some((l) => l.toLowerCase().includes(sa.spiI))).toBe(true);
  });

  const families: [string, string[], string[]][] = [
    ['AES-GCM-128 / ECP-256', ['aes128gcm16-prfsha256-ecp256'], ['CURVE_25519'].slice(0, 0).concat(['ECP_256'])],
    ['AES-CBC-256 + HMAC-SHA2-256 / MODP-2048', ['aes256-sha256-modp2048'], ['MODP_2048']],
    ['ChaCha20-Poly1305 / ECP-521', ['chacha20poly1305-prfsha512-ecp521'], ['ECP_521']],
    ['AES-CBC-128 + SHA-384 / MODP-3072 + ML-KEM-512', ['aes128-sha384-modp3072-ke1_mlkem512'], ['MODP_3072', 'ML_KEM_512']],
    ['AES-GCM-256 / ECP-384 + ML-KEM-1024 (Cisco 8000 / Cloudflare)', ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'], ['ECP_384', 'ML_KEM_1024']],
    ['ECP-256 + ML-KEM-768 + ML-KEM-1024 (two ADDKEs)', ['aes256gcm16-prfsha256-ecp256-ke1_mlkem768-ke2_mlkem1024'], ['ECP_256', 'ML_KEM_768', 'ML_KEM_1024']],
    ['x25519 + three ADDKE rounds', ['aes256gcm16-prfsha512-x25519-ke1_mlkem512-ke2_mlkem768-ke3_mlkem1024'], ['CURVE_25519', 'ML_KEM_512', 'ML_KEM_768', 'ML_KEM_1024']],
    ['AES-CBC-256 + SHA-512 / x25519 + ML-KEM-768', ['aes256-sha512-x25519-ke1_mlkem768'], ['CURVE_25519', 'ML_KEM_768']],
  ];
  for (const [name, proposals, kes] of families) {
    it(`negotiates ${name}`, () => {
      const { lab, a, b } = pair(
        { ikeProposals: proposals, espProposals: ['aes128gcm16', 'aes256-sha256'] },
        { ikeProposals: proposals, espProposals: ['aes256-sha256', 'aes128gcm16'] },
      );
      up(lab, a);
      lab.run();
      const { sa, sb } = established(lab, a, b);
      expect(sa.keyExchanges).toEqual(kes);
      expect(sb.keyExchanges).toEqual(kes);
      expectMatchingChildren(a, b);
    });
  }

  it('retries with the KE method the responder asks for (INVALID_KE_PAYLOAD)', () => {
    const { lab, a, b } = pair(
      { ikeProposals: ['aes256gcm16-prfsha384-x25519-ecp384-ke1_mlkem768'] },
      { ikeProposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768'] },
    );
    up(lab, a);
    lab.run();
    const { sa } = established(lab, a, b);
    expect(sa.keyExchanges).toEqual(['ECP_384', 'ML_KEM_768']);
    expect(b.engine.stats.invalidKeSent).toBe(1);
    expect(a.events.some((e) => e.includes('INVALID_KE_PAYLOAD'))).toBe(true);
  });

  it('answers a COOKIE challenge when the responder is under load (RFC 7296 §2.6)', () => {
    const { lab, a, b } = pair({}, {}, {}, { b: { cookieThreshold: 0 } });
    up(lab, a);
    lab.run();
    established(lab, a, b);
    expect(b.engine.stats.cookiesSent).toBe(1);
    expectMatchingChildren(a, b);
  });

  it('skips an optional ADDKE round the responder does not support (keN_none)', () => {
    const { lab, a, b } = pair(
      { ikeProposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none'] },
      { ikeProposals: ['aes256gcm16-prfsha384-x25519'] },
    );
    up(lab, a);
    lab.run();
    const { sa, sb } = established(lab, a, b);
    expect(sa.keyExchanges).toEqual(['CURVE_25519']);
    expect(sa.postQuantum).toBeNull();
    expect(sb.keyExchanges).toEqual(['CURVE_25519']);
  });

  it('refuses a classical-only peer when ML-KEM is required', () => {
    const { lab, a, b } = pair({ ikeProposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'] }, { ikeProposals: ['aes256gcm16-prfsha384-x25519'] });
    up(lab, a);
    lab.run();
    expect(lab.status(a)).toEqual([]);
    expect(lab.status(b)).toEqual([]);
    expect(a.events.some((e) => e.includes('NO_PROPOSAL_CHOSEN'))).toBe(true);
    expect(a.installs).toHaveLength(0);
  });

  it('fragments IKE_INTERMEDIATE and IKE_AUTH at a small fragment size (RFC 7383)', () => {
    const { lab, a, b } = pair(
      { ikeProposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'], fragmentSize: 576 },
      { ikeProposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'], fragmentSize: 576 },
      { mtu: 576 },
    );
    up(lab, a);
    lab.run();
    const { sa } = established(lab, a, b);
    expect(sa.fragmentation).toBe(true);
    // ek and ct of ML-KEM-1024 are 1568 bytes each: at least 3 fragments per direction.
    const sent = (h: Host) => h.actions.filter((x) => x.kind === 'send').length;
    expect(sent(a)).toBeGreaterThanOrEqual(1 + 3 + 1);
    expect(sent(b)).toBeGreaterThanOrEqual(1 + 3 + 1);
    expect(lab.net.stats.tooBig).toBe(0);
    expectMatchingChildren(a, b);
  });

  it('fails without fragmentation when the path MTU is too small for ML-KEM', () => {
    const { lab, a } = pair(
      { ikeProposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'], fragmentation: 'no' },
      { ikeProposals: ['aes256gcm16-prfsha384-ecp384-ke1_mlkem1024'], fragmentation: 'no' },
      { mtu: 1280 },
      { a: { retransmit: { timeout: 500, tries: 2 } }, b: { halfOpenTimeout: 5_000 } },
    );
    up(lab, a);
    lab.run(120_000);
    expect(lab.status(a)).toEqual([]);
    expect(lab.net.stats.tooBig).toBeGreaterThan(0);
    expect(a.events.some((e) => /not responding|timed out/.test(e))).toBe(true);
  });

  it('survives 30% loss, duplication and reordering through retransmissions', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { lab, a, b } = pair({}, {}, { seed, lossRate: 0.3, duplicateRate: 0.2, reorderRate: 0.3, delayMs: 5, jitterMs: 20 }, { a: { retransmit: { tries: 10 } } });
      up(lab, a);
      lab.run(600_000);
      established(lab, a, b);
      expectMatchingChildren(a, b);
    }
  });

  it('detects a NAT in front of the initiator and floats to port 4500', () => {
    const { lab, a, b } = pair({}, {}, {});
    // Re-home "a" behind a NAT: its traffic to b appears from 203.0.113.1.
    lab.net.addNat('192.0.2.1', '203.0.113.1');
    up(lab, a);
    lab.run();
    const { sa, sb } = established(lab, a, b);
    expect(sa.natLocal).toBe(true);
    expect(sb.natRemote).toBe(true);
    expect(sa.encap).toBe(true);
    expect(sa.local.port).toBe(4500);
    expect(sa.remote.port).toBe(4500);
    expect(sb.remote.address).toBe('203.0.113.1');
    expect(a.installs[0]!.outbound.encap).toBe(true);
  });

  it('sees no NAT and no encapsulation on a direct path', () => {
    const { lab, a, b } = pair();
    up(lab, a);
    lab.run();
    const { sa, sb } = established(lab, a, b);
    for (const s of [sa, sb]) {
      expect(s.natLocal).toBe(false);
      expect(s.natRemote).toBe(false);
      expect(s.encap).toBe(false);
      expect(s.local.port).toBe(500);
    }
    expect(a.installs[0]!.outbound.encap).toBe(false);
  });

  it('forces UDP encapsulation (encap=yes) without a NAT', () => {
    const { lab, a, b } = pair({ encap: true });
    up(lab, a);
    lab.run();
    const { sa, sb } = established(lab, a, b);
    expect(sa.encap).toBe(true);
    expect(sb.natRemote).toBe(true);
    expect(sb.local.port).toBe(4500);
    expect(b.installs[0]!.inbound.encap).toBe(true);
  });
});
