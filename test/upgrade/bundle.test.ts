import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync, truncateSync, statSync, symlinkSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyBundleFile, type VerifyBundleOptions } from '../../firmware/upgrade/bundle-verify.js';
import { loadTrustStore, storeKeyList } from '../../firmware/upgrade/trust.js';
import { signKeyList, openKeyList } from '../../firmware/upgrade/keylist.js';
import { generateKey, signHybrid, encodeSignature } from '../../firmware/upgrade/keys.js';
import { IMAGE_START, encodeSigBlock, layout } from '../../firmware/upgrade/bundle.js';
import { UpgradeError } from '../../firmware/upgrade/types.js';
import { makeKeySet, makeTrustDir, makeImages, bundle, tmp, cleanup, keyListOf, type KeySet } from './helpers.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (e instanceof UpgradeError) return e.code;
    throw e;
  }
}

describe('update bundles: format, hybrid signature, trust', () => {
  let ks: KeySet;
  let dir: string;
  let trustDir: string;
  let devTrustDir: string;
  let stateDir: string;
  let images: ReturnType<typeof makeImages>;
  let good: string;
  const opts = (o: Partial<VerifyBundleOptions> = {}): VerifyBundleOptions => ({ trust: loadTrustStore(trustDir), board: 'x86_64', securityFloor: 1, stateDir, ...o });

  beforeAll(() => {
    ks = makeKeySet();
    dir = tmp();
    stateDir = join(dir, 'state');
    trustDir = makeTrustDir(ks);
    devTrustDir = makeTrustDir(undefined);
    images = makeImages(dir);
    good = bundle(dir, { images, signer: ks.signer, keyList: ks.keyList, name: 'good.pqb' });
  });
  afterAll(() => cleanup(dir, trustDir, devTrustDir));

  it('round trip: make then verify gives the header back with the image hashes', async () => {
    const v = await verifyBundleFile(good, opts());
    expect(v.signedBy).toBe(ks.signerPub.id);
    expect(v.header).toMatchObject({ board: 'x86_64', version: '0.2.0', securityVersion: 2, build: 'release' });
    expect(v.header.images.map((i) => i.name)).toEqual(['rootfs', 'kernel', 'initrd']);
    expect(v.header.images[0]!.offset).toBe(IMAGE_START);
    const raw = readFileSync(good);
    for (const [i, im] of v.header.images.entries()) expect(raw.subarray(im.offset, im.offset + im.size).equals(readFileSync(images[i]!.path))).toBe(true);
    // Exact size: layout + signature block, nothing else.
    expect(statSync(good).size).toBeGreaterThan(layout(v.header.images.map((i) => i.size)).sigStart);
  });

  it('a flipped byte anywhere in the header is refused', async () => {
    const raw = readFileSync(good);
    const hlen = raw.readUInt32BE(8);
    for (const at of [12, 12 + Math.floor(hlen / 2), 12 + hlen - 2]) {
      const f = join(dir, `th-${at}.pqb`);
      const b = Buffer.from(raw);
      b[at]! ^= 0x01;
      writeFileSync(f, b);
      expect(['BAD_FORMAT', 'BAD_SIGNATURE']).toContain(await code(verifyBundleFile(f, opts())));
    }
    // A header edit that stays well-formed (version string) fails on the signature precisely.
    const f = join(dir, 'th-version.pqb');
    writeFileSync(f, Buffer.from(raw.toString('latin1').replace('"version":"0.2.0"', '"version":"0.2.9"'), 'latin1'));
    expect(await code(verifyBundleFile(f, opts()))).toBe('BAD_SIGNATURE');
  });

  it('a flipped byte in any image is IMAGE_HASH; in padding BAD_FORMAT', async () => {
    const v = await verifyBundleFile(good, opts());
    const raw = readFileSync(good);
    for (const im of v.header.images) {
      const f = join(dir, `ti-${im.name}.pqb`);
      const b = Buffer.from(raw);
      b[im.offset + im.size - 1]! ^= 0x80;
      writeFileSync(f, b);
      expect(await code(verifyBundleFile(f, opts()))).toBe('IMAGE_HASH');
    }
    const f = join(dir, 'tpad.pqb');
    const b = Buffer.from(raw);
    b[IMAGE_START - 1] = 1;
    writeFileSync(f, b);
    expect(await code(verifyBundleFile(f, opts()))).toBe('BAD_FORMAT');
  });

  it('truncated at several offsets: TRUNCATED; trailing garbage: BAD_FORMAT', async () => {
    const size = statSync(good).size;
    const hlen = readFileSync(good).readUInt32BE(8);
    for (const at of [0, 5, 11, 12 + Math.floor(hlen / 2), IMAGE_START + 10, size - 4000, size - 100, size - 1]) {
      const f = join(dir, `tr-${at}.pqb`);
      writeFileSync(f, readFileSync(good));
      truncateSync(f, at);
      expect([at, await code(verifyBundleFile(f, opts()))]).toEqual([at, 'TRUNCATED']);
    }
    const f = join(dir, 'trail.pqb');
    writeFileSync(f, readFileSync(good));
    appendFileSync(f, Buffer.from([0]));
    expect(await code(verifyBundleFile(f, opts()))).toBe('BAD_FORMAT');
  });

  it('structure: wrong magic, oversize header length, symlink, non-regular file', async () => {
    const raw = readFileSync(good);
    const m = Buffer.from(raw);
    m[0] = 0x58;
    writeFileSync(join(dir, 'magic.pqb'), m);
    expect(await code(verifyBundleFile(join(dir, 'magic.pqb'), opts()))).toBe('BAD_FORMAT');
    const h = Buffer.from(raw);
    h.writeUInt32BE(1 << 20, 8);
    writeFileSync(join(dir, 'hlen.pqb'), h);
    expect(await code(verifyBundleFile(join(dir, 'hlen.pqb'), opts()))).toBe('BAD_FORMAT');
    symlinkSync(good, join(dir, 'link.pqb'));
    expect(await code(verifyBundleFile(join(dir, 'link.pqb'), opts()))).toBe('BAD_FILE');
    expect(await code(verifyBundleFile(dir, opts()))).toBe('BAD_FILE');
    expect(await code(verifyBundleFile(good, opts({ maxBytes: 1000 })))).toBe('TOO_LARGE');
  });

  it('policy: wrong board, downgrade, unsigned on a signed image, dev build on a signed image', async () => {
    expect(await code(verifyBundleFile(good, opts({ board: 'arm64' })))).toBe('WRONG_BOARD');
    expect(await code(verifyBundleFile(good, opts({ securityFloor: 3 })))).toBe('DOWNGRADE');
    expect(await code(verifyBundleFile(good, opts({ securityFloor: 2 })))).toBe('OK');
    const unsigned = bundle(dir, { images });
    expect(await code(verifyBundleFile(unsigned, opts()))).toBe('UNSIGNED');
    const devSigned = bundle(dir, { images, signer: ks.signer, keyList: ks.keyList, build: 'dev' });
    expect(await code(verifyBundleFile(devSigned, opts()))).toBe('DEV_MODE_REQUIRED');
  });

  it('hybrid: only-Ed25519-valid and only-ML-DSA-valid bundles are both refused', async () => {
    const raw = readFileSync(good);
    const hlen = raw.readUInt32BE(8);
    const hb = raw.subarray(12, 12 + hlen);
    const v = await verifyBundleFile(good, opts());
    const { sigStart } = layout(v.header.images.map((i) => i.size));
    const real = signHybrid(ks.signer, 'pqgate-bundle-v1', hb);
    const other = signHybrid(ks.signer, 'pqgate-bundle-v1', Buffer.concat([hb, Buffer.from('x')]));
    for (const [name, sig] of [
      ['ed-only', { ...real, mldsa65: other.mldsa65 }],
      ['ml-only', { ...real, ed25519: other.ed25519 }],
    ] as const) {
      const f = join(dir, `${name}.pqb`);
      writeFileSync(f, Buffer.concat([raw.subarray(0, sigStart), encodeSigBlock({ keyList: ks.keyList, signature: sig })]));
      await expect(verifyBundleFile(f, opts())).rejects.toThrow(name === 'ed-only' ? /ML-DSA-65 signature/ : /Ed25519 signature/);
      expect(await code(verifyBundleFile(f, opts()))).toBe('BAD_SIGNATURE');
    }
    // A keylist signature cannot be replayed as a bundle signature (domain separation): sign the header bytes as a key list.
    const cross = signHybrid(ks.signer, 'pqgate-keylist-v1', hb);
    const f = join(dir, 'cross.pqb');
    writeFileSync(f, Buffer.concat([raw.subarray(0, sigStart), encodeSigBlock({ keyList: ks.keyList, signature: cross })]));
    expect(await code(verifyBundleFile(f, opts()))).toBe('BAD_SIGNATURE');
    expect(encodeSignature(real).length).toBeGreaterThan(3309);
  });

  it('unknown key: a signing key no key list admits, or a key list signed by a foreign root', async () => {
    const stranger = generateKey('signing');
    const b1 = bundle(dir, { images, signer: stranger.secret, keyList: ks.keyList });
    expect(await code(verifyBundleFile(b1, opts()))).toBe('UNKNOWN_KEY');
    const foreignRoot = generateKey('root');
    const foreignList = signKeyList(keyListOf([stranger.public], 9), foreignRoot.secret);
    const b2 = bundle(dir, { images, signer: stranger.secret, keyList: foreignList });
    expect(await code(verifyBundleFile(b2, opts()))).toBe('UNKNOWN_KEY');
    // Key validity is checked against the signed creation time.
    const expired = signKeyList(keyListOf([ks.signerPub], 2, [], { notBefore: '2020-01-01T00:00:00Z', notAfter: '2021-01-01T00:00:00Z' }), ks.root);
    const b3 = bundle(dir, { images, signer: ks.signer, keyList: expired });
    const st2 = tmp();
    expect(await code(verifyBundleFile(b3, opts({ stateDir: st2 })))).toBe('KEY_EXPIRED');
    cleanup(st2);
  });

  it('key rotation: a new signing key is admitted by a newer signed key list; the old one revoked; old list replay refused', async () => {
    const st = tmp();
    const k2 = generateKey('signing');
    const b2 = bundle(dir, { images, signer: k2.secret, keyList: ks.keyList });
    expect(await code(verifyBundleFile(b2, opts({ stateDir: st })))).toBe('UNKNOWN_KEY'); // not yet admitted
    const v2list = signKeyList(keyListOf([k2.public], 2, [ks.signerPub.id]), ks.root);
    const b2new = bundle(dir, { images, signer: k2.secret, keyList: v2list });
    const v = await verifyBundleFile(b2new, opts({ stateDir: st }));
    expect(v.signedBy).toBe(k2.public.id);
    expect(v.newerKeyList?.list.version).toBe(2);
    // The device keeps it (the service does this after a successful verification).
    const trust = loadTrustStore(trustDir);
    storeKeyList(st, v.newerKeyList!, trust.roots);
    // The old key is revoked now, even for a bundle that carries the old list (replay).
    expect(await code(verifyBundleFile(good, opts({ stateDir: st })))).toBe('REVOKED_KEY');
    // Installing the old list directly: KEYLIST_REPLAY.
    expect(() => storeKeyList(st, openKeyList(ks.keyList, trust.roots), trust.roots)).toThrow(expect.objectContaining({ code: 'KEYLIST_REPLAY' }));
    // Same version, different content: refused.
    const fork = signKeyList(keyListOf([k2.public, ks.signerPub], 2), ks.root);
    expect(() => storeKeyList(st, openKeyList(fork, trust.roots), trust.roots)).toThrow(expect.objectContaining({ code: 'BAD_TRUST' }));
    // A signing key cannot sign key lists (its list is UNKNOWN_KEY at the roots).
    expect(() => signKeyList(keyListOf([k2.public], 3), k2.secret)).toThrow(/root key/);
    cleanup(st);
  });

  it('revoked key via a key list carried in the bundle itself', async () => {
    const st = tmp();
    const revoking = signKeyList(keyListOf([ks.signerPub], 5, [ks.signerPub.id]), ks.root);
    const b = bundle(dir, { images, signer: ks.signer, keyList: revoking });
    expect(await code(verifyBundleFile(b, opts({ stateDir: st })))).toBe('REVOKED_KEY');
    cleanup(st);
  });

  it('development mode: a dev image accepts unsigned bundles and still checks everything else', async () => {
    const dev = (o: Partial<VerifyBundleOptions> = {}) => opts({ trust: loadTrustStore(devTrustDir), ...o });
    const unsigned = bundle(dir, { images });
    const v = await verifyBundleFile(unsigned, dev());
    expect(v.signedBy).toBeUndefined();
    expect(v.header.build).toBe('dev');
    expect(await code(verifyBundleFile(good, dev()))).toBe('OK'); // signed release bundle: fine on a dev image
    expect(await code(verifyBundleFile(unsigned, dev({ board: 'arm64' })))).toBe('WRONG_BOARD');
    expect(await code(verifyBundleFile(unsigned, dev({ securityFloor: 5 })))).toBe('DOWNGRADE');
    const raw = readFileSync(unsigned);
    raw[IMAGE_START + 7]! ^= 1;
    writeFileSync(join(dir, 'dev-tampered.pqb'), raw);
    expect(await code(verifyBundleFile(join(dir, 'dev-tampered.pqb'), dev()))).toBe('IMAGE_HASH');
    // A signed bundle whose signature is broken is refused on a dev image too.
    const g = readFileSync(good);
    const last = Buffer.from(g);
    last[last.length - 10]! ^= 1;
    writeFileSync(join(dir, 'dev-badsig.pqb'), last);
    expect(await code(verifyBundleFile(join(dir, 'dev-badsig.pqb'), dev()))).toBe('BAD_SIGNATURE');
    // And the signed image refuses the unsigned one.
    expect(await code(verifyBundleFile(unsigned, opts()))).toBe('UNSIGNED');
  });

  it('trust store: missing, malformed, or signed without roots is BAD_TRUST', () => {
    const d = tmp();
    expect(() => loadTrustStore(d)).toThrow(expect.objectContaining({ code: 'BAD_TRUST' }));
    writeFileSync(join(d, 'trust.json'), '{"format":1,"mode":"signed"}');
    expect(() => loadTrustStore(d)).toThrow(/without root keys/);
    writeFileSync(join(d, 'trust.json'), '{"format":1,"mode":"off"}');
    expect(() => loadTrustStore(d)).toThrow(expect.objectContaining({ code: 'BAD_TRUST' }));
    cleanup(d);
  });
});
