/**
 * Issue 9: key material is zeroed when SAs die. Two engines on the fake
 * network (test/ikev2/harness.ts); spies on the IkeSa and KeyExchange
 * objects keep references to every buffer a key lived in:
 *
 *   - every IKE SA key set installed (IKE_SA_INIT keys, the keys after each
 *     IKE_INTERMEDIATE round, rekeyed SAs): SK_d, SK_ai/ar, SK_ei/er, SK_pi/pr;
 *   - the IKE_SA_INIT nonces (key input of SKEYSEED and KEYMAT);
 *   - every key exchange: the DH/ECDH/X25519 shared secret, ML-KEM's
 *     decapsulation key dk and K, and every copy of a shared secret handed
 *     to the key schedule (getSharedSecret());
 *   - the AEAD salt copies of the SK payload ciphers.
 *
 * Then the SA goes away by each path (delete, rekey of the IKE SA and of
 * Child SAs, hard expiry with a rekey in flight, DPD clear, failed
 * handshakes) and every captured byte must be zero. What JavaScript cannot
 * wipe (node:crypto KeyObjects, OpenSSL-held DH private keys) is listed in
 * docs/design.md "Secrets"; the Child SA keys and the data plane's copies are
 * covered with two real daemons at the end of this file.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IkeSa } from '../../firmware/ikev2/ike-sa.js';
import type { KeyExchange } from '../../firmware/crypto/types.js';
import type { IkeKeys } from '../../firmware/ikev2/sa/keymat.js';
import { pair, up, type Host, type Lab } from '../ikev2/harness.js';
import { Daemon } from '../../firmware/daemon.js';
import { parseDaemonConfig } from '../../firmware/config/schema.js';
import { FakeNetwork, FakeTransport } from '../../firmware/net/fake.js';
import { MemoryLinks } from '../../firmware/dataplane/tun/memory.js';
import { UserspaceDataPlane } from '../../firmware/dataplane/userspace.js';
import { nativeAead, NativeAeadTransform } from '../../firmware/dataplane/esp/native-aead.js';
import type { SaSpec } from '../../firmware/dataplane/types.js';
import type { KeylogAction } from '../../firmware/ikev2/engine-types.js';

const HYBRID_IKE = ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768'];
const HYBRID_ESP = ['aes256gcm16-ecp384-ke1_mlkem768'];
const HYBRID_X = ['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem1024'];

interface Captured {
  what: string;
  sa: IkeSa;
  buf: Uint8Array;
}

/** Everything secret the spies saw, with the SA that held it. */
let captured: Captured[] = [];
let sas: Set<IkeSa>;
/** Every key exchange object, and whether it was destroyed (its private key released). */
let kes: { sa: IkeSa; ke: KeyExchange; destroyed: boolean }[] = [];

function grab(sa: IkeSa, what: string, buf: unknown): void {
  if (buf instanceof Uint8Array && buf.length > 0) captured.push({ what, sa, buf });
}

/** Wrap one key exchange so its private and shared values are captured as they appear. */
function spyKe(sa: IkeSa, ke: KeyExchange): KeyExchange {
  // priv: the native X25519 path keeps its scalar in a JS buffer (crypto/ke-dh.ts NativeX25519Ke).
  const inner = ke as unknown as { dk?: Uint8Array | null; secret?: Uint8Array | null; priv?: unknown };
  const getPublic = ke.getPublic.bind(ke);
  const setPeerPublic = ke.setPeerPublic.bind(ke);
  const getSharedSecret = ke.getSharedSecret.bind(ke);
  const destroy = ke.destroy.bind(ke);
  const rec = { sa, ke, destroyed: false };
  kes.push(rec);
  ke.destroy = () => {
    rec.destroyed = true;
    destroy();
  };
  ke.getPublic = () => {
    const r = getPublic();
    grab(sa, `${ke.name} dk`, inner.dk);
    grab(sa, `${ke.name} private key`, inner.priv);
    return r;
  };
  ke.setPeerPublic = (d) => {
    grab(sa, `${ke.name} dk`, inner.dk); // before a decapsulation wipes it
    setPeerPublic(d);
    grab(sa, `${ke.name} shared secret`, inner.secret);
  };
  ke.getSharedSecret = () => {
    const s = getSharedSecret();
    grab(sa, `${ke.name} shared secret copy`, s);
    return s;
  };
  return ke;
}

beforeEach(() => {
  captured = [];
  kes = [];
  sas = new Set();
  const newKe = IkeSa.prototype.newKe;
  vi.spyOn(IkeSa.prototype, 'newKe').mockImplementation(function (this: IkeSa, method: number) {
    sas.add(this);
    return spyKe(this, newKe.call(this, method));
  });
  const setKeys = IkeSa.prototype.setKeys;
  vi.spyOn(IkeSa.prototype, 'setKeys').mockImplementation(function (this: IkeSa, keys: IkeKeys) {
    sas.add(this);
    setKeys.call(this, keys);
    for (const [k, v] of Object.entries(keys)) grab(this, k, v);
    const self = this as unknown as Record<string, { nonce?: Uint8Array } | undefined>;
    grab(this, 'SK_e salt (in)', self.cipherIn?.nonce);
    grab(this, 'SK_e salt (out)', self.cipherOut?.nonce);
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Nonces are read at the end: they are set before any key exists. */
function withNonces(): Captured[] {
  const out = [...captured];
  for (const sa of sas) {
    if (sa.ni) out.push({ what: 'Ni', sa, buf: sa.ni });
    if (sa.nr) out.push({ what: 'Nr', sa, buf: sa.nr });
  }
  return out;
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/** Every buffer of a dead SA is all zero; every ephemeral key-exchange value is zero whether or not its SA lives on. */
function expectWiped(label: string): { dead: number; checked: number } {
  const all = withNonces();
  const dead = [...sas].filter((s) => !s.alive);
  expect(dead.length, `${label}: some SA died`).toBeGreaterThan(0);
  let checked = 0;
  const bad: string[] = [];
  for (const c of all) {
    const ephemeral = c.what.includes('dk') || c.what.includes('shared secret') || c.what.includes('private key');
    if (c.sa.alive && !ephemeral) continue;
    checked++;
    if (!isZero(c.buf)) bad.push(`${c.what} of ${c.sa.role} SA ${c.sa.name} (${c.sa.state})`);
  }
  for (const k of kes) if (!k.sa.alive && !k.destroyed) bad.push(`${k.ke.name} of ${k.sa.role} SA ${k.sa.name} not destroyed`);
  expect(bad, `${label}: buffers not zeroed`).toEqual([]);
  return { dead: dead.length, checked };
}

function live(lab: Lab, h: Host) {
  return lab.status(h).filter((s) => s.state === 'ESTABLISHED');
}

describe('key material is zeroed when SAs die', () => {
  it('delete: both sides wipe every IKE key set, nonce and key exchange value (hybrid, two ML-KEM rounds)', () => {
    const { lab, a, b } = pair({ ikeProposals: HYBRID_X }, { ikeProposals: HYBRID_X });
    up(lab, a);
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    // Sanity: the spies saw the secrets, and they are not zero while the SA lives.
    const liveKeys = captured.filter((c) => c.what === 'skD' && c.sa.alive && !isZero(c.buf));
    expect(liveKeys.length).toBe(2);
    expect(captured.some((c) => c.what.startsWith('ML_KEM_1024 dk'))).toBe(true);
    // Intermediate key sets (after IKE_SA_INIT and after the first ADDKE) were replaced and are already zero.
    for (const c of captured.filter((x) => x.what === 'skD' && x.sa.alive && !liveKeys.includes(x))) expect(isZero(c.buf)).toBe(true);
    lab.apply(a, a.engine.command({ kind: 'down', tunnel: 't1' }));
    lab.run();
    expect(live(lab, a)).toHaveLength(0);
    expect(live(lab, b)).toHaveLength(0);
    const r = expectWiped('delete');
    expect(r.dead).toBe(2);
    expect(r.checked).toBeGreaterThan(40);
  });

  it('rekey: the old IKE SA and the key exchanges of IKE and Child SA rekeys (IKE_FOLLOWUP_KE) are wiped', () => {
    const { lab, a, b } = pair({ ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP }, { ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP });
    up(lab, a);
    lab.run();
    lab.apply(a, a.engine.command({ kind: 'rekey-child', tunnel: 't1' }));
    lab.run();
    lab.apply(b, b.engine.command({ kind: 'rekey-ike', tunnel: 't1' }));
    lab.run();
    lab.apply(a, a.engine.command({ kind: 'rekey-ike', tunnel: 't1' }));
    lab.run();
    expect(live(lab, a)).toHaveLength(1);
    expect(live(lab, a)[0]!.rekeys).toBe(2);
    expect(captured.filter((c) => c.what.startsWith('ML_KEM_768 shared secret copy')).length).toBeGreaterThanOrEqual(8);
    const r = expectWiped('rekey');
    expect(r.dead).toBe(4); // two generations on each side
    // The survivors still hold working keys (the check above skipped them).
    for (const sa of [...sas].filter((s) => s.alive)) expect(isZero(sa.keys!.skD)).toBe(false);
  });

  it('hard expiry with a rekey in flight: the pending key exchange dies with the SA', () => {
    const { lab, a } = pair(
      { ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP, rekeyTime: 20, startAction: 'none' },
      { ikeProposals: HYBRID_IKE, espProposals: HYBRID_ESP },
      {},
      { a: { retransmit: { timeout: 2000, tries: 8, base: 1, maxTimeout: 2000 } } },
    );
    up(lab, a);
    lab.run();
    lab.net.dropFilter = () => true; // the peer vanishes: the rekey never completes
    lab.advance(21_000);
    // The rekey's key exchange is in flight (created, never answered).
    const inFlight = kes.filter((k) => k.sa.alive && !k.destroyed);
    expect(inFlight.map((k) => k.ke.name)).toEqual(['ECP_384']);
    lab.advance(30_000);
    expect(inFlight[0]!.destroyed).toBe(true);
    expect(live(lab, a)).toHaveLength(0);
    expect(a.events.some((e) => e.includes('hard lifetime expired'))).toBe(true);
    expectWiped('hard expiry');
  });

  it('DPD clear: a dead peer’s SA is wiped', () => {
    const { lab, a } = pair({ ikeProposals: HYBRID_IKE, dpdDelay: 5, dpdAction: 'clear' }, { ikeProposals: HYBRID_IKE }, {}, { a: { retransmit: { timeout: 1000, tries: 2 } } });
    up(lab, a);
    lab.run();
    lab.net.dropFilter = (d) => d.to.address === '192.0.2.2';
    lab.advance(30_000);
    expect(live(lab, a)).toHaveLength(0);
    expect(a.events.some((e) => e.includes('peer is dead'))).toBe(true);
    expectWiped('dpd');
  });

  it('failed handshakes: wrong PSK (AUTH fails on both sides) and a responder that stops answering mid-IKE_INTERMEDIATE', () => {
    {
      const { lab, a, b } = pair({ ikeProposals: HYBRID_IKE }, { ikeProposals: HYBRID_IKE, psk: 'a-different-psk-that-does-not-match' });
      up(lab, a);
      lab.run();
      expect(live(lab, a)).toHaveLength(0);
      expect(live(lab, b)).toHaveLength(0);
      const r = expectWiped('wrong PSK');
      expect(r.dead).toBe(2);
    }
    captured = [];
    kes = [];
    sas = new Set();
    {
      const { lab, a } = pair({ ikeProposals: HYBRID_IKE }, { ikeProposals: HYBRID_IKE }, {}, { a: { retransmit: { timeout: 1000, tries: 2 } } });
      // Let IKE_SA_INIT through, then nothing from the responder: the initiator holds an ML-KEM key pair.
      let fromB = 0;
      lab.net.dropFilter = (d) => d.from.address === '192.0.2.2' && ++fromB > 1;
      up(lab, a);
      lab.advance(60_000);
      expect(captured.some((c) => c.what === 'ML_KEM_768 dk')).toBe(true);
      expect(a.engine.status().filter((s) => s.state !== 'FAILED' && s.state !== 'DELETED')).toHaveLength(0);
      expectWiped('timeout in IKE_INTERMEDIATE');
    }
  });
});

describe('Child SA keys in the daemon and the data plane', () => {
  it('the daemon wipes the keys it handed to the data plane, the ESP transforms wipe theirs (and free the OpenSSL contexts) on rekey and delete, key log copies are disposed', async () => {
    const net = new FakeNetwork();
    const pump = setInterval(() => net.deliverDue(), 1);
    const daemons: Daemon[] = [];
    const handed: Uint8Array[] = [];
    const transforms: { spi: number; t: Record<string, unknown> }[] = [];
    const keylog: { a: KeylogAction; first: string }[] = [];
    const addSa = UserspaceDataPlane.prototype.addSa;
    vi.spyOn(UserspaceDataPlane.prototype, 'addSa').mockImplementation(async function (this: UserspaceDataPlane, sa: SaSpec) {
      handed.push(sa.encrKey);
      await addSa.call(this, sa);
      const st = (this as unknown as { sadIn: Map<number, { esp: { transform: Record<string, unknown> } }>; sadOut: Map<number, { esp: { transform: Record<string, unknown> } }> })[sa.direction === 'in' ? 'sadIn' : 'sadOut'].get(sa.spi)!;
      transforms.push({ spi: sa.spi, t: st.esp.transform });
    });
    try {
      for (const [addr, peer] of [
        ['192.0.2.1', '192.0.2.2'],
        ['192.0.2.2', undefined],
      ] as const) {
        const config = parseDaemonConfig({
          listen: [addr],
          log_level: 'error',
          control_socket: '/nonexistent/ctl.sock',
          tunnels: [
            {
              name: 't1',
              local_addr: addr,
              remote_addr: peer ?? '%any',
              local_id: `fqdn:${peer ? 'a' : 'b'}.example`,
              remote_id: `fqdn:${peer ? 'b' : 'a'}.example`,
              psk: 'secrets-zeroed-psk-0123456789',
              proposals: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'],
              esp_proposals: ['aes256gcm16-x25519-ke1_mlkem768'],
              start_action: 'none',
            },
          ],
        });
        daemons.push(
          await Daemon.start({
            config,
            noControl: true,
            links: new MemoryLinks(),
            transportFactory: async () => new FakeTransport(net, { addresses: [addr] }),
            sourceAddressFor: null,
            observer: { action: (a) => void (a.kind === 'keylog' && keylog.push({ a, first: a.line })) },
          }),
        );
      }
      const [a] = daemons as [Daemon, Daemon];
      const ready = async (rekeys: number) => {
        for (let i = 0; i < 500; i++) {
          const sa = a.status().find((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED' && c.rekeys === rekeys));
          if (sa && transforms.length >= 4 * (rekeys + 1)) return;
          await new Promise((r) => setTimeout(r, 10));
        }
        throw new Error('tunnel not up');
      };
      a.command({ kind: 'up', tunnel: 't1' });
      await ready(0);
      a.command({ kind: 'rekey-child', tunnel: 't1' });
      await ready(1);
      await new Promise((r) => setTimeout(r, 100));
      // What the daemon handed over is wiped as soon as the data plane has its copy.
      expect(handed.length).toBeGreaterThanOrEqual(8);
      for (const k of handed) expect(isZero(k)).toBe(true);
      // The first generation (rekeyed, deleted) is wiped in the data plane already; the live one is not.
      // Native AEAD keeps key|salt in one buffer (keySalt); the node:crypto transforms keep raw key bytes + a nonce.
      const keyOf = (t: Record<string, unknown>) => (t.keySalt ?? (t.key instanceof Uint8Array && !('raw' in t) ? t.key : t.raw)) as Uint8Array;
      const saltOf = (t: Record<string, unknown>) => (t.keySalt ?? t.salt ?? t.nonce) as Uint8Array;
      expect(transforms.slice(0, 4).every(({ t }) => isZero(keyOf(t)) && isZero(saltOf(t)))).toBe(true);
      expect(transforms.slice(4).every(({ t }) => !isZero(keyOf(t)))).toBe(true);
      a.command({ kind: 'down', tunnel: 't1' });
      for (let i = 0; i < 300 && transforms.some(({ t }) => !isZero(keyOf(t))); i++) await new Promise((r) => setTimeout(r, 10));
      for (const { t } of transforms) {
        expect(isZero(keyOf(t))).toBe(true);
        expect(isZero(saltOf(t))).toBe(true);
        // Native AEAD: the per-SA EVP_CIPHER_CTX is freed (OpenSSL cleanses the key schedule): the handle is dead.
        if ('lib' in t) expect(t.enc === undefined && t.dec === undefined).toBe(true);
      }
      // Key log actions: read like a key log would read them, then disposed: their key copies are zero.
      expect(keylog.length).toBeGreaterThanOrEqual(6);
      for (const { a: act, first } of keylog) {
        expect(first).toMatch(/[1-9a-f]{8}/);
        const hexes = [...first.matchAll(/\b(?:0x)?([0-9a-f]{32,})\b/g)].map((m) => m[1]!);
        expect(hexes.length).toBeGreaterThan(0);
        const now = act.line;
        for (const h of hexes) expect(now.includes(h)).toBe(false);
      }
    } finally {
      clearInterval(pump);
      for (const d of daemons) await d.stop('test end');
    }
  });

  it('native AEAD: a freed context refuses further use (the C side released it)', () => {
    const lib = nativeAead();
    if (!lib) return; // addon not built: the node:crypto transforms are checked above
    const h = lib.aeadNew('aes-256-gcm', new Uint8Array(32).fill(7), new Uint8Array(4).fill(1), 16, true);
    lib.aeadFree(h);
    expect(() => lib.aeadSeal(h, new Uint8Array(64), 16, -1)).toThrow(/freed/);
    // The transform never rebuilds a context from its wiped (all-zero) key after destroy().
    const t = new NativeAeadTransform('AES_GCM_16_256', 'aes-256-gcm', new Uint8Array(36).fill(9), 16, lib);
    const pkt = new Uint8Array(16 + 32 + 16);
    t.seal(pkt, 32, 1, -1);
    t.destroy();
    expect(() => t.seal(new Uint8Array(64), 32, 2, -1)).toThrow(/after destroy/);
    expect(t.open(pkt, pkt.length, -1)).toBeNull();
  });
});
