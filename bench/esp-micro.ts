/**
 * ESP micro-benchmark: in-process, no network.
 *
 *   npm run build && node dist/bench/esp-micro.js [--ms=800]
 *
 * Per algorithm, for 1400-byte inner packets: encapsulate only,
 * decapsulate only, and encapsulate+decapsulate (packets/s and Mbit/s of
 * inner payload, one core). To show where the time goes it also measures
 * the bare node:crypto cost of one AEAD operation per packet (the cipher
 * object node creates for every packet), the same at 64 bytes (per-packet
 * cost vs per-byte cost), and the whole pipeline: TUN batch -> parse -> SA ->
 * ESP -> "UDP" -> receiveEsp -> policy check -> TUN, with in-memory devices.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { EspSa, type EspSaParams } from '../firmware/dataplane/esp/sa.js';
import { Encr, IntegId } from '../firmware/ikev2/constants.js';
import { UserspaceDataPlane } from '../firmware/dataplane/userspace.js';
import { MemoryLinks } from '../firmware/dataplane/tun/memory.js';
import type { Endpoint, PolicySpec, SaSpec } from '../firmware/dataplane/types.js';

const MS = Number(process.argv.find((a) => a.startsWith('--ms='))?.slice(5) ?? 800);
const SIZE = 1400;

/**
 * Run `fn` repeatedly for about MS milliseconds; returns operations per
 * second of this process's CPU time (user + system), so other load on a
 * shared machine does not show up as slowness. Wall-clock rates would be
 * equal on an idle core.
 */
function rate(fn: () => void, batch = 256): number {
  for (let i = 0; i < 2000; i++) fn(); // warm-up (JIT, pools)
  let ops = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  while (performance.now() - t0 < MS) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
  }
  const c = process.cpuUsage(c0);
  return (ops * 1e6) / (c.user + c.system);
}

const fmt = (pps: number, size: number) => `${(pps / 1000).toFixed(1).padStart(7)} kpps ${((pps * size * 8) / 1e6).toFixed(0).padStart(6)} Mbit/s ${(1e6 / pps).toFixed(2).padStart(6)} µs`;

interface Suite {
  name: string;
  encrId: number;
  keyBits: number;
  integId: number;
  integKeyLen: number;
}

const SUITES: Suite[] = [
  { name: 'AES-GCM-16-128', encrId: Encr.AES_GCM_16, keyBits: 128, integId: 0, integKeyLen: 0 },
  { name: 'AES-GCM-16-256', encrId: Encr.AES_GCM_16, keyBits: 256, integId: 0, integKeyLen: 0 },
  { name: 'ChaCha20-Poly1305', encrId: Encr.CHACHA20_POLY1305, keyBits: 256, integId: 0, integKeyLen: 0 },
  { name: 'AES-CBC-128+SHA256', encrId: Encr.AES_CBC, keyBits: 128, integId: IntegId.HMAC_SHA2_256_128, integKeyLen: 32 },
  { name: 'AES-CBC-256+SHA256', encrId: Encr.AES_CBC, keyBits: 256, integId: IntegId.HMAC_SHA2_256_128, integKeyLen: 32 },
];

function params(s: Suite, replayWindow: number): EspSaParams {
  const aead = s.integId === 0;
  return {
    spi: 0x1000,
    encrId: s.encrId,
    encrKeyBits: s.keyBits,
    encrKey: new Uint8Array(randomBytes(s.keyBits / 8 + (aead ? 4 : 0))),
    integId: s.integId,
    integKey: new Uint8Array(randomBytes(s.integKeyLen)),
    esn: false,
    replayWindow,
  };
}

function micro(): void {
  console.log(`ESP micro-benchmark, ${SIZE}-byte inner packets, one core, node ${process.version}; rates per CPU-second\n`);
  console.log('algorithm              operation        rate');
  for (const s of SUITES) {
    const p = params(s, 0); // window 0: decapsulate may see the same packets again
    const tx = new EspSa(p);
    const rx = new EspSa(p);
    const inner = new Uint8Array(randomBytes(SIZE));
    inner[0] = 0x45;
    const out = Buffer.allocUnsafe(tx.espLength(SIZE));
    const pool = Array.from({ length: 512 }, () => new Uint8Array(tx.encapsulate(inner, 4)!));
    let k = 0;
    const enc = rate(() => tx.encapsulate(inner, 4, out));
    const dec = rate(() => rx.decapsulate(pool[k++ & 511]!));
    const both = rate(() => rx.decapsulate(tx.encapsulate(inner, 4)!));
    const small = new Uint8Array(64);
    small[0] = 0x45;
    const both64 = rate(() => rx.decapsulate(tx.encapsulate(small, 4)!));
    console.log(`${s.name.padEnd(22)} encap           ${fmt(enc, SIZE)}`);
    console.log(`${''.padEnd(22)} decap           ${fmt(dec, SIZE)}`);
    console.log(`${''.padEnd(22)} encap+decap     ${fmt(both, SIZE)}`);
    console.log(`${''.padEnd(22)} encap+decap 64B ${fmt(both64, 64)}`);
  }
}

/** The floor: one node:crypto AEAD object per packet, nothing else. */
function bare(): void {
  console.log('\nnode:crypto alone (one cipher object per packet, as ESP needs a fresh nonce each time)');
  const key = createSecretKey(randomBytes(16));
  const nonce = Buffer.alloc(12);
  const aad = Buffer.alloc(8);
  for (const size of [64, SIZE]) {
    const pt = randomBytes(size);
    const seal = rate(() => {
      const c = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
      c.setAAD(aad);
      c.update(pt);
      c.final();
      c.getAuthTag();
    });
    const c = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const ct = c.update(pt);
    c.final();
    const tag = c.getAuthTag();
    const open = rate(() => {
      const d = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
      d.setAAD(aad);
      d.setAuthTag(tag);
      d.update(ct);
      d.final();
    });
    console.log(`aes-128-gcm ${String(size).padStart(4)} B      seal            ${fmt(seal, size)}`);
    console.log(`${''.padEnd(22)} open            ${fmt(open, size)}`);
  }
}

/** Two data planes, in-memory TUN devices, UDP as a direct function call. */
async function pipeline(): Promise<void> {
  console.log('\nfull pipeline A -> B (TUN batch of 64, parse, SA lookup, ESP, receiveEsp, policy check, TUN write)');
  const A: Endpoint = { address: '192.0.2.1', port: 4500 };
  const B: Endpoint = { address: '192.0.2.2', port: 4500 };
  const la = new MemoryLinks();
  const lb = new MemoryLinks();
  let b: UserspaceDataPlane | undefined;
  const a = new UserspaceDataPlane({ links: la, sendUdp: (f, t, d) => b!.receiveEsp(d, f, t) });
  b = new UserspaceDataPlane({ links: lb, sendUdp: () => {} });
  const key = new Uint8Array(randomBytes(20));
  const sa = (direction: 'in' | 'out'): SaSpec => ({ spi: 0xabc0001, direction, src: A, dst: B, encap: true, encrId: Encr.AES_GCM_16, encrKeyBits: 128, encrKey: key, integId: 0, integKey: new Uint8Array(0), esn: false, replayWindow: 128, reqid: 1, ifId: 1, tunnel: 't' });
  const v4 = (a: number[], b: number[]) => ({ family: 4 as const, startAddr: new Uint8Array(a), endAddr: new Uint8Array(b), ipProtocol: 0, startPort: 0, endPort: 0xffff });
  const pol = (direction: 'in' | 'out'): PolicySpec => ({ reqid: 1, direction, local: [v4([198, 51, 100, 0], [198, 51, 100, 255])], remote: [v4([203, 0, 113, 0], [203, 0, 113, 255])], ifId: 1, tunnel: 't', src: A, dst: B });
  await a.addSa(sa('out'));
  await a.addPolicy(pol('out'));
  await b.addSa(sa('in'));
  await b.addPolicy({ ...pol('in'), local: pol('in').remote, remote: pol('in').local });
  const pkt = new Uint8Array(SIZE);
  pkt.set([0x45, 0, SIZE >> 8, SIZE & 0xff, 0, 0, 0, 0, 64, 17, 0, 0, 198, 51, 100, 10, 203, 0, 113, 20, 0x13, 0x88, 0x17, 0x70]);
  const batch = Array.from({ length: 64 }, () => pkt);
  const ta = la.device('pqt');
  const tb = lb.device('pqt');
  let delivered = 0;
  tb.onDeliver = () => delivered++;
  tb.write = (_p, n) => void (delivered += n); // count without copying
  const pps = rate(() => {
    ta.inject(...batch);
    b!.flush();
  }, 4) * 64;
  console.log(`AES-GCM-16-128 route-based       ${fmt(pps, SIZE)}   (delivered ${delivered}, drops ${b.stats.policyDrops + b.stats.unknownSpi})`);
  await a.close();
  await b.close();
}

micro();
bare();
await pipeline();
