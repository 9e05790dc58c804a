/**
 * IKE_SA_INIT admission (firmware/ikev2/admission.ts and the engine's
 * responder path): cookies past cookie_threshold / cookie_threshold_ip,
 * block_threshold per IPv4 /32 and IPv6 /64, the init_limit_half_open cap,
 * cookie secret rotation with a grace period, invalid cookies — and that no
 * key exchange is computed for a request before it passed admission: every
 * KeyExchange the engine creates goes through crypto/registry.ts
 * createKeyExchange, which is counted here.
 */
import { describe, it, expect, vi, beforeEach } from 'vitest';

const ke = vi.hoisted(() => ({ calls: [] as number[] }));
vi.mock('../../firmware/crypto/registry.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../firmware/crypto/registry.js')>();
  return {
    ...m,
    createKeyExchange: (method: number, rng: import('../../firmware/util/clock.js').Rng) => {
      ke.calls.push(method);
      return m.createKeyExchange(method, rng);
    },
  };
});

import { Admission, ADMISSION_DEFAULTS, encodeCookieReply, scanInitRequest, sourcePrefix } from '../../firmware/ikev2/admission.js';
import { Engine } from '../../firmware/ikev2/engine.js';
import type { Action } from '../../firmware/ikev2/engine-types.js';
import type { EngineOptions } from '../../firmware/ikev2/context.js';
import { decodePlain, encodePlain } from '../../firmware/ikev2/codec/index.js';
import { ExchangeType, KeMethod, Notify, PayloadType } from '../../firmware/ikev2/constants.js';
import { findNotify, notify } from '../../firmware/ikev2/payload-util.js';
import { FakeClock } from '../../firmware/util/clock.js';
import { TestRng } from '../../firmware/util/rng.js';
import { initRequest } from '../../bench/lib/dos-packets.js';
import { pair, tunnel, up, Lab } from './harness.js';

const GW = { address: '192.0.2.2', port: 500 };

function responder(opts: Partial<EngineOptions> = {}): { engine: Engine; clock: FakeClock } {
  const clock = new FakeClock(1_000_000);
  const engine = new Engine({ clock, rng: new TestRng('gw'), ikePort: 500, nattPort: 4500, ...opts });
  engine.loadConfig([tunnel({ name: 'hub', localAddr: GW.address, localId: 'gw.example', localTs: ['10.2.0.0/16'], remoteTs: ['0.0.0.0/0'] })]);
  return { engine, clock };
}

function sends(actions: Action[]): Uint8Array[] {
  return actions.flatMap((a) => (a.kind === 'send' ? [a.data] : []));
}

/** The reply's kind: 'cookie' (stateless COOKIE), 'answer' (SA/KE/Nonce: key exchange done), 'none' (dropped). */
function reply(actions: Action[]): { kind: 'cookie' | 'answer' | 'none'; cookie?: Uint8Array } {
  const s = sends(actions);
  if (s.length === 0) return { kind: 'none' };
  expect(s).toHaveLength(1);
  const m = decodePlain(s[0]!);
  expect(m.response).toBe(true);
  const c = findNotify(m, Notify.COOKIE);
  if (c) {
    expect(m.payloads).toHaveLength(1); // nothing but the cookie: no state, no KE
    return { kind: 'cookie', cookie: c.data };
  }
  expect(m.payloads.some((p) => p.type === PayloadType.KE)).toBe(true);
  return { kind: 'answer' };
}

function send(engine: Engine, src: string, pkt: Uint8Array, port = 500): Action[] {
  return engine.receive(pkt, { address: src, port }, GW);
}

/** A request answered with a cookie, then the same request again with it (an initiator that can receive). */
function withCookie(engine: Engine, src: string): Action[] {
  const spiI = new TestRng(`spi-${src}-${Math.random()}`).bytes(8);
  const nonce = new TestRng(`n-${src}-${Math.random()}`).bytes(32);
  const r = reply(send(engine, src, initRequest({ spiI, nonce })));
  if (r.kind !== 'cookie') throw new Error(`expected a COOKIE, got ${r.kind}`);
  return send(engine, src, initRequest({ spiI, nonce, cookie: r.cookie! }));
}

beforeEach(() => {
  ke.calls.length = 0;
});

describe('Admission (pure)', () => {
  it('aggregates sources by IPv4 /32 and IPv6 /64 (IPv4-mapped IPv6 counts as IPv4)', () => {
    expect(sourcePrefix('203.0.113.7')).toBe('203.0.113.7');
    expect(sourcePrefix('2001:db8:1:2::a')).toBe(sourcePrefix('2001:db8:1:2:ffff:1:2:3'));
    expect(sourcePrefix('2001:db8:1:2::a')).not.toBe(sourcePrefix('2001:db8:1:3::a'));
    expect(sourcePrefix('::ffff:198.51.100.9')).toBe('198.51.100.9');
  });

  it('rotates the cookie secret; the previous generation is valid for the grace period only', () => {
    const clock = new FakeClock(0);
    const a = new Admission(new TestRng('s'), clock.now(), { cookieThreshold: 0, cookieSecretLifetime: 60_000, cookieGrace: 5_000 });
    const ni = new Uint8Array(32).fill(7);
    const spi = new Uint8Array(8).fill(1);
    const v1 = a.check(clock.now(), ni, '198.51.100.1', spi, undefined);
    expect(v1.kind).toBe('cookie');
    const c1 = (v1 as { cookie: Uint8Array }).cookie;
    expect(c1).toHaveLength(33);
    expect(a.check(clock.now(), ni, '198.51.100.1', spi, c1).kind).toBe('admit');
    // Bound to the source address and the SPI.
    expect(a.check(clock.now(), ni, '198.51.100.2', spi, c1).kind).toBe('cookie');
    expect(a.check(clock.now(), ni, '198.51.100.1', new Uint8Array(8).fill(2), c1).kind).toBe('cookie');
    clock.advance(60_000); // the next check switches secrets
    const v2 = a.check(clock.now(), ni, '198.51.100.1', spi, c1);
    expect(v2.kind).toBe('admit'); // old generation, inside the grace period
    expect(a.stats.secretRotations).toBe(1);
    const c2 = a.currentCookie(ni, '198.51.100.1', spi);
    expect(c2[0]).not.toBe(c1[0]);
    clock.advance(5_000);
    const v3 = a.check(clock.now(), ni, '198.51.100.1', spi, c1);
    expect(v3.kind).toBe('cookie'); // grace over: a fresh cookie of the new generation
    expect((v3 as { cookie: Uint8Array }).cookie).toEqual(c2);
    expect(a.check(clock.now(), ni, '198.51.100.1', spi, c2).kind).toBe('admit');
    expect(a.stats.invalidCookies).toBe(3);
  });

  it('counts opened/closed per prefix and never goes below zero', () => {
    const a = new Admission(new TestRng('s'), 0, {});
    a.opened('2001:db8::1');
    a.opened('2001:db8::2');
    expect(a.halfOpenFrom('2001:db8::ffff')).toBe(2);
    a.closed('2001:db8::1');
    a.closed('2001:db8::1');
    a.closed('2001:db8::1');
    expect(a.halfOpen).toBe(0);
    expect(a.status()).toMatchObject({ halfOpen: 0, halfOpenSources: 0, admitted: 2, limits: ADMISSION_DEFAULTS });
  });
});

describe('cheap pre-parse of IKE_SA_INIT (scanInitRequest, encodeCookieReply)', () => {
  it('finds the same Nonce and COOKIE as the strict decoder, and refuses what is truncated or inconsistent', () => {
    const nonce = new TestRng('n').bytes(32);
    const cookie = new TestRng('c').bytes(33);
    for (const pkt of [initRequest({ nonce }), initRequest({ nonce, cookie })]) {
      const m = decodePlain(pkt);
      const s = scanInitRequest(pkt)!;
      expect(s.nonce).toEqual((m.payloads.find((p) => p.type === PayloadType.NONCE) as { data: Uint8Array }).data);
      expect(s.cookie).toEqual(findNotify(m, Notify.COOKIE)?.data);
      for (let cut = 0; cut < pkt.length; cut += 7) expect(scanInitRequest(pkt.subarray(0, cut))).toBeUndefined();
      const lying = pkt.slice();
      new DataView(lying.buffer).setUint16(30, 0xfff0); // first payload length beyond the message
      expect(scanInitRequest(lying)).toBeUndefined();
    }
  });

  it('writes the COOKIE reply octet for octet as the message encoder does', () => {
    const spiI = new TestRng('spi').bytes(8);
    const cookie = new TestRng('c').bytes(33);
    const viaCodec = encodePlain({ spiI, spiR: new Uint8Array(8), exchange: ExchangeType.IKE_SA_INIT, response: true, initiator: false, messageId: 0, encrypted: false, payloads: [notify(Notify.COOKIE, cookie)] });
    expect(encodeCookieReply(spiI, cookie)).toEqual(viaCodec);
  });
});

describe('responder admission in the engine', () => {
  it('a spoofed flood past cookie_threshold costs one X25519 per admitted SA and nothing more; state stays at the threshold', () => {
    const { engine } = responder();
    let answers = 0;
    let cookies = 0;
    for (let i = 0; i < 1000; i++) {
      const src = `203.0.113.${(i % 250) + 1}`;
      const r = reply(send(engine, src, initRequest(), 1024 + i));
      if (r.kind === 'answer') answers++;
      if (r.kind === 'cookie') cookies++;
    }
    const t = ADMISSION_DEFAULTS.cookieThreshold;
    expect(answers).toBe(t);
    expect(cookies).toBe(1000 - t);
    // Exactly one key exchange object per admitted SA, all classical: no ML-KEM for anyone unauthenticated.
    expect(ke.calls).toEqual(new Array(t).fill(KeMethod.CURVE_25519));
    const st = engine.admissionStatus();
    expect(st).toMatchObject({ halfOpen: t, halfOpenSources: t, cookiesSent: 1000 - t, cookieless: 1000 - t, admitted: t, cookiesRequired: true });
    expect(engine.status()).toHaveLength(t);
    expect(engine.stats.cookiesSent).toBe(1000 - t);
  });

  it('half-open SAs of spoofed sources expire after half_open_timeout and the counters return to zero', () => {
    const { engine, clock } = responder({ halfOpenTimeout: 10_000 });
    for (let i = 0; i < 50; i++) send(engine, `198.51.100.${i + 1}`, initRequest());
    expect(engine.admissionStatus().halfOpen).toBe(ADMISSION_DEFAULTS.cookieThreshold);
    clock.advance(10_001);
    engine.tick();
    expect(engine.admissionStatus()).toMatchObject({ halfOpen: 0, halfOpenSources: 0, halfOpenMaxPerSource: 0, cookiesRequired: false });
    expect(engine.status()).toHaveLength(0);
  });

  it('a legitimate hybrid initiator gets through a full half-open table with one COOKIE round trip', () => {
    const { lab, a, b } = pair();
    for (let i = 0; i < 200; i++) b.engine.receive(initRequest(), { address: `203.0.113.${(i % 200) + 1}`, port: 500 }, { address: '192.0.2.2', port: 500 });
    expect(b.engine.admissionStatus().halfOpen).toBe(ADMISSION_DEFAULTS.cookieThreshold);
    const before = b.engine.admissionStatus().cookiesSent;
    ke.calls.length = 0;
    up(lab, a);
    lab.run();
    expect(lab.status(a).find((s) => s.tunnel === 't1')?.state).toBe('ESTABLISHED');
    expect(b.engine.status().find((s) => s.remote.address === '192.0.2.1')).toMatchObject({ state: 'ESTABLISHED', keyExchanges: ['CURVE_25519', 'ML_KEM_768'] });
    expect(b.engine.admissionStatus().cookiesSent).toBe(before + 1);
    // Initiator: X25519 + ML-KEM; responder: X25519 (after the cookie) + ML-KEM. Nothing else.
    expect(ke.calls.filter((m) => m === KeMethod.CURVE_25519)).toHaveLength(2);
    expect(ke.calls.filter((m) => m === KeMethod.ML_KEM_768)).toHaveLength(2);
    // lab.run() ran fake time until every SA settled: the spoofed half-open SAs expired (half_open_timeout)
    // and the legitimate one left the table when it was established.
    expect(b.engine.admissionStatus()).toMatchObject({ halfOpen: 0, admitted: ADMISSION_DEFAULTS.cookieThreshold + 1 });
  });

  it('cookie_threshold_ip, then block_threshold per IPv4 address: a host answering cookies holds at most block_threshold half-open SAs', () => {
    const { engine } = responder();
    const src = '198.51.100.77';
    // Below cookie_threshold_ip: answered directly.
    for (let i = 0; i < ADMISSION_DEFAULTS.cookieThresholdIp; i++) expect(reply(send(engine, src, initRequest(), 2000 + i)).kind).toBe('answer');
    // From cookie_threshold_ip on, this source needs a cookie (others do not).
    expect(reply(send(engine, src, initRequest())).kind).toBe('cookie');
    expect(reply(send(engine, '198.51.100.78', initRequest())).kind).toBe('answer');
    while (engine.admissionStatus().halfOpenMaxPerSource < ADMISSION_DEFAULTS.blockThreshold) expect(reply(withCookie(engine, src)).kind).toBe('answer');
    const callsBefore = ke.calls.length;
    for (let i = 0; i < 20; i++) expect(reply(withCookie(engine, src)).kind).toBe('none');
    expect(ke.calls.length).toBe(callsBefore); // no key exchange for a blocked source
    expect(engine.admissionStatus()).toMatchObject({ blocked: 20, halfOpenMaxPerSource: ADMISSION_DEFAULTS.blockThreshold, halfOpen: ADMISSION_DEFAULTS.blockThreshold + 1 });
  });

  it('block_threshold counts an IPv6 /64 as one source', () => {
    const clock = new FakeClock(1_000_000);
    const engine = new Engine({ clock, rng: new TestRng('gw6'), cookieThresholdIp: 1000 });
    const gw6 = { address: '2001:db8:ffff::1', port: 500 };
    engine.loadConfig([tunnel({ name: 'hub6', localAddr: gw6.address, localId: 'gw.example', localTs: ['2001:db8:ffff::/48'], remoteTs: ['::/0'] })]);
    const kinds: string[] = [];
    for (let i = 1; i <= 8; i++) kinds.push(reply(engine.receive(initRequest(), { address: `2001:db8:1:2::${i.toString(16)}`, port: 500 }, gw6)).kind);
    expect(kinds).toEqual(['answer', 'answer', 'answer', 'answer', 'answer', 'none', 'none', 'none']);
    // Another /64 of the same /48 is another source.
    expect(reply(engine.receive(initRequest(), { address: '2001:db8:1:3::1', port: 500 }, gw6)).kind).toBe('answer');
    expect(engine.admissionStatus()).toMatchObject({ halfOpen: 6, halfOpenSources: 2, blocked: 3 });
  });

  it('init_limit_half_open caps half-open SAs whatever the number of sources', () => {
    const { engine } = responder({ cookieThreshold: 100_000, cookieThresholdIp: 100_000, halfOpenLimit: 10 });
    const kinds = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const k = reply(send(engine, `203.0.113.${i + 1}`, initRequest())).kind;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    expect(Object.fromEntries(kinds)).toEqual({ answer: 10, none: 30 });
    expect(ke.calls).toHaveLength(10);
    expect(engine.admissionStatus()).toMatchObject({ halfOpen: 10, limitDrops: 30 });
  });

  it('an invalid or foreign cookie gets a fresh COOKIE and no key exchange', () => {
    const { engine } = responder({ cookieThreshold: 0 });
    const spiI = new Uint8Array(8).fill(9);
    const nonce = new Uint8Array(32).fill(3);
    const c = reply(send(engine, '198.51.100.5', initRequest({ spiI, nonce }))).cookie!;
    const bad = c.slice();
    bad[bad.length - 1]! ^= 1;
    for (const cookie of [bad, c.subarray(0, 20), new Uint8Array(64)]) expect(reply(send(engine, '198.51.100.5', initRequest({ spiI, nonce, cookie }))).kind).toBe('cookie');
    // Someone else's cookie (same SPI and nonce, other address).
    expect(reply(send(engine, '198.51.100.6', initRequest({ spiI, nonce, cookie: c }))).kind).toBe('cookie');
    expect(ke.calls).toHaveLength(0);
    expect(engine.admissionStatus()).toMatchObject({ invalidCookies: 4, cookieless: 1, cookiesSent: 5, halfOpen: 0 });
    // The genuine one is accepted.
    expect(reply(send(engine, '198.51.100.5', initRequest({ spiI, nonce, cookie: c }))).kind).toBe('answer');
    expect(ke.calls).toEqual([KeMethod.CURVE_25519]);
  });

  it('a cookie survives a secret switch for the grace period (engine clock)', () => {
    const { engine, clock } = responder({ cookieThreshold: 0, cookieSecretLifetime: 30_000, cookieGrace: 2_000 });
    const spiI = new Uint8Array(8).fill(4);
    const nonce = new Uint8Array(32).fill(5);
    const c = reply(send(engine, '198.51.100.5', initRequest({ spiI, nonce }))).cookie!;
    clock.advance(30_500);
    expect(reply(send(engine, '198.51.100.5', initRequest({ spiI, nonce, cookie: c }))).kind).toBe('answer');
    const spi2 = new Uint8Array(8).fill(6);
    const c2 = reply(send(engine, '198.51.100.5', initRequest({ spiI: spi2, nonce }))).cookie!;
    expect(c2[0]).not.toBe(c[0]);
    clock.advance(31_000);
    reply(send(engine, '198.51.100.7', initRequest())); // the next request switches secrets again: c2's generation is the previous one
    clock.advance(2_500); // ... and its grace is over
    expect(reply(send(engine, '198.51.100.5', initRequest({ spiI: spi2, nonce, cookie: c2 }))).kind).toBe('cookie');
  });

  it('IKE_INTERMEDIATE needs a completed IKE_SA_INIT: unknown SPIs and garbage for a half-open SA cost no ML-KEM', () => {
    const { engine } = responder();
    const r = send(engine, '198.51.100.9', initRequest({ spiI: new Uint8Array(8).fill(0x11) }));
    const resp = decodePlain(sends(r)[0]!);
    expect(ke.calls).toEqual([KeMethod.CURVE_25519]);
    const inter = (spiI: Uint8Array, spiR: Uint8Array): Uint8Array => {
      // IKE header (RFC 7296 §3.1) + an SK payload of random bytes: IKE_INTERMEDIATE, message ID 1.
      const body = new TestRng('junk').bytes(1200);
      const out = new Uint8Array(28 + 4 + body.length);
      out.set(spiI, 0);
      out.set(spiR, 8);
      out[16] = PayloadType.SK;
      out[17] = 0x20;
      out[18] = ExchangeType.IKE_INTERMEDIATE;
      out[19] = 0x08; // Initiator
      new DataView(out.buffer).setUint32(20, 1);
      new DataView(out.buffer).setUint32(24, out.length);
      out[28] = 0;
      new DataView(out.buffer).setUint16(30, 4 + body.length);
      out.set(body, 32);
      return out;
    };
    const unknown = send(engine, '198.51.100.9', inter(new Uint8Array(8).fill(0x22), new Uint8Array(8).fill(0x33)));
    const garbage = send(engine, '198.51.100.9', inter(resp.spiI, resp.spiR));
    expect(sends(unknown)).toHaveLength(0);
    expect(sends(garbage)).toHaveLength(0);
    expect(ke.calls).toEqual([KeMethod.CURVE_25519]);
    expect(engine.stats.internalErrors).toBe(0);
  });
});

// Lab is imported for its type in harness helpers; keep the import used.
void Lab;
