/**
 * CPU per crypto operation of the IKE handshake, native fast path
 * (native/pqcrypto.c) vs node:crypto, through the firmware API, same process:
 *
 *   node dist/bench/crypto-micro.js [iterations]      (npm run bench:crypto)
 *
 * Sizes are those of a hybrid x25519 + ML-KEM-768 setup with PRF_HMAC_SHA2_384
 * and AES-GCM-16-256 (docs/benchmarks.md "native crypto" has the counts per
 * setup). CPU time (user + system) of this process, so the numbers hold on a
 * shared machine better than wall time; each case alternates both paths
 * three times and keeps each path's best round.
 */
import { createKeyExchange, createPrf, createSkCipher, encrInfo, integInfo, prfPlus } from '../firmware/crypto/registry.js';
import { sha1 } from '../firmware/crypto/hash.js';
import { nativeCrypto, setNativeCrypto } from '../firmware/crypto/native.js';
import { mlkem768 } from '../firmware/crypto/mlkem/index.js';
import { Encr, IntegId, KeMethod, PrfId } from '../firmware/ikev2/constants.js';
import { systemRng } from '../firmware/util/rng.js';

const N = Number(process.argv[2] ?? 20000);

function cpuUs(fn: () => void, n: number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const rand = (n: number) => systemRng.bytes(n);
const prf = createPrf(PrfId.HMAC_SHA2_384);
const k48 = rand(48);
const msg = rand(100);
const seed = rand(80);
const gcmInfo = encrInfo(Encr.AES_GCM_16, 256);
const skKey = rand(36);
const aad = rand(32);
const iv = rand(8);
const plain = rand(300);
const peer = (() => {
  const ke = createKeyExchange(KeMethod.CURVE_25519, systemRng);
  return ke.getPublic();
})();
const natd = [rand(8), rand(8), rand(4), rand(2)];
const cbcMacKey = rand(32);
const cbcIv = rand(16);
const cbcPlain = rand(304);

interface Case {
  name: string;
  n: number;
  setup: () => () => void;
}

const cases: Case[] = [
  { name: 'HMAC-SHA-384, 100 octets (Prf.compute)', n: N, setup: () => () => void prf.compute(k48, msg) },
  { name: 'prf+ SHA-384, 272 octets (IKE keys)', n: N / 4, setup: () => () => void prfPlus(prf, k48, seed, 272) },
  {
    name: 'SK AES-256-GCM seal + open, 300 octets',
    n: N,
    setup: () => {
      const c = createSkCipher(gcmInfo, skKey);
      return () => void c.open(aad, iv, c.seal(aad, iv, plain));
    },
  },
  {
    name: 'SK AES-256-CBC + HMAC-SHA-256 seal + open, 304 octets',
    n: N,
    setup: () => {
      const c = createSkCipher(encrInfo(Encr.AES_CBC, 256), skKey.subarray(0, 32), integInfo(IntegId.HMAC_SHA2_256_128), cbcMacKey);
      return () => void c.open(aad, cbcIv, c.seal(aad, cbcIv, cbcPlain));
    },
  },
  {
    name: 'SK cipher create + destroy (per IKE SA direction)',
    n: N / 2,
    setup: () => () => createSkCipher(gcmInfo, skKey).destroy(),
  },
  {
    name: 'X25519 key pair + shared secret',
    n: N / 50,
    setup: () => () => {
      const ke = createKeyExchange(KeMethod.CURVE_25519, systemRng);
      ke.getPublic();
      ke.setPeerPublic(peer);
      ke.destroy();
    },
  },
  { name: 'SHA-1 of 4 parts (NAT-D)', n: N, setup: () => () => void sha1(...natd) },
  {
    name: 'ML-KEM-768 keygen + encaps + decaps',
    n: N / 50,
    setup: () => () => {
      const { publicKey, secretKey } = mlkem768.keygen();
      const { cipherText } = mlkem768.encapsulate(publicKey);
      mlkem768.decapsulate(cipherText, secretKey);
    },
  },
];

const lib = nativeCrypto();
console.log(`native crypto: ${lib ? `loaded (X25519: ${lib.x25519Impl ?? '?'})` : 'NOT AVAILABLE (npm run build:native)'}; ${N} iterations`);
console.log('operation'.padEnd(52) + 'node:crypto µs'.padStart(15) + 'native µs'.padStart(12) + 'speed-up'.padStart(10));
for (const c of cases) {
  const best = { js: Infinity, native: Infinity };
  for (let round = 0; round < 3; round++) {
    for (const on of [false, true]) {
      setNativeCrypto(on);
      const fn = c.setup();
      for (let i = 0; i < Math.min(200, c.n); i++) fn(); // warm up this path
      const us = cpuUs(fn, c.n);
      if (on) best.native = Math.min(best.native, us);
      else best.js = Math.min(best.js, us);
    }
  }
  setNativeCrypto(undefined);
  const nat = lib ? best.native.toFixed(2) : '-';
  const up = lib ? `${(best.js / best.native).toFixed(2)}x` : '-';
  console.log(c.name.padEnd(52) + best.js.toFixed(2).padStart(15) + nat.padStart(12) + up.padStart(10));
}
