/**
 * `pqgate bundle …` (also `pqgate-sign`): release tooling, no daemon needed.
 *
 *   keygen --dir DIR [--valid-days N]        root + signing pair, key list v1 (private keys 0600, never overwritten)
 *   sign-keylist --root root.key --out F --list-version N --key signing.pub… [--revoke ID…] [--valid-days N]
 *   trust --out DIR (--keys DIR | --dev)     write a trust store (what the image installs in /usr/share/pqgate/trust)
 *   make --board B --version V --security-version N (--from image/out/B | --rootfs F [--kernel F] [--initrd F])
 *        --out F.pqb [--keys DIR]            signed with DIR/signing.key + DIR/keylist.pqkl; unsigned (dev) without
 *   inspect [--json] F.pqb                   header, signer, key list carried (no trust decisions)
 *   verify F.pqb --trust DIR [--board B] [--floor N] [--state DIR]   the device's full check; exit 1 with the code
 */
import { parseArgs } from 'node:util';
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, readSync, fstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UpgradeError, type HybridPublicKey } from './types.js';
import { generateKey, encodePublicKey, encodeSecretKey, decodeSecretKey, decodePublicKey } from './keys.js';
import { signKeyList, parseKeyListFile } from './keylist.js';
import { makeBundle } from './bundle-make.js';
import { parseHeader, parseSigBlock, layout, HEADER_MAX } from './bundle.js';
import { verifyBundleFile } from './bundle-verify.js';
import { loadTrustStore } from './trust.js';

export interface BundleIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Wall clock (tests). */
  now?: () => number;
}

export const BUNDLE_USAGE = `usage: pqgate bundle <command>   (release tooling; docs/upgrade.md)
  keygen --dir DIR [--valid-days N]
  sign-keylist --root ROOT.key --out FILE --list-version N --key SIGNING.pub [--key …] [--revoke ID …] [--valid-days N]
  trust --out DIR (--keys DIR | --dev)
  make --board B --version V --security-version N (--from DIR | --rootfs F [--kernel F] [--initrd F]) --out FILE.pqb [--keys DIR]
  inspect [--json] FILE.pqb
  verify FILE.pqb --trust DIR [--board B] [--floor N] [--state DIR]
`;

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const DAY = 86_400_000;

function writeNew(path: string, text: string | Uint8Array, mode: number): void {
  // 'wx': never overwrite a key; mode applies at creation (and chmod in case the umask was odd).
  writeFileSync(path, text, { flag: 'wx', mode });
  chmodSync(path, mode);
}

function need(v: string | undefined, name: string): string {
  if (v === undefined || v === '') throw new UpgradeError('BAD_FORMAT', `--${name} is required`);
  return v;
}

function keylistFor(pubs: HybridPublicKey[], version: number, revoked: string[], now: number, days: number) {
  return { format: 1 as const, version, issued: iso(now), keys: pubs.map((p) => ({ ...p, notBefore: iso(now - DAY), notAfter: iso(now + days * DAY) })), revoked };
}

function inspect(path: string): Record<string, unknown> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(12);
    readSync(fd, head, 0, 12, 0);
    const hlen = head.readUInt32BE(8);
    if (head.subarray(0, 8).toString('latin1') !== 'PQGBNDL1' || hlen > HEADER_MAX) throw new UpgradeError('BAD_FORMAT', 'not a pqgate bundle');
    const hb = Buffer.alloc(hlen);
    readSync(fd, hb, 0, hlen, 12);
    const h = parseHeader(new Uint8Array(hb));
    const { sigStart } = layout(h.images.map((i) => i.size));
    if (size < sigStart) throw new UpgradeError('TRUNCATED', 'the file ends inside the images');
    const sb = Buffer.alloc(size - sigStart);
    readSync(fd, sb, 0, sb.length, sigStart);
    const s = parseSigBlock(new Uint8Array(sb));
    const kl = s.keyList ? parseKeyListFile(s.keyList).list : undefined;
    return {
      board: h.board, version: h.version, securityVersion: h.securityVersion, created: h.created, build: h.build,
      images: h.images.map((i) => ({ name: i.name, offset: i.offset, size: i.size, sha256: Buffer.from(i.sha256).toString('hex') })),
      signedBy: s.signature?.keyId ?? null,
      keyList: kl ? { version: kl.version, keys: kl.keys.map((k) => k.id), revoked: kl.revoked } : null,
      bytes: size,
    };
  } finally {
    closeSync(fd);
  }
}

export async function bundleMain(argv: string[], io: BundleIo): Promise<number> {
  const [cmd, ...rest] = argv;
  const now = (io.now ?? Date.now)();
  try {
    const { values: v, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        dir: { type: 'string' }, 'valid-days': { type: 'string' }, root: { type: 'string' }, out: { type: 'string' }, 'list-version': { type: 'string' },
        key: { type: 'string', multiple: true }, revoke: { type: 'string', multiple: true }, keys: { type: 'string' }, dev: { type: 'boolean' },
        board: { type: 'string' }, version: { type: 'string' }, 'security-version': { type: 'string' }, from: { type: 'string' }, rootfs: { type: 'string' },
        kernel: { type: 'string' }, initrd: { type: 'string' }, json: { type: 'boolean' }, trust: { type: 'string' }, floor: { type: 'string' }, state: { type: 'string' },
      },
    });
    const int = (s: string | undefined, name: string, dflt?: number) => {
      if (s === undefined && dflt !== undefined) return dflt;
      if (s === undefined || !/^\d{1,10}$/.test(s)) throw new UpgradeError('BAD_FORMAT', `--${name} must be a non-negative integer`);
      return Number(s);
    };
    switch (cmd) {
      case 'keygen': {
        const dir = resolve(need(v.dir, 'dir'));
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        for (const f of ['root.key', 'signing.key', 'keylist.pqkl']) if (existsSync(join(dir, f))) throw new UpgradeError('BAD_FILE', `${join(dir, f)} exists: refusing to overwrite keys`);
        const root = generateKey('root');
        const signing = generateKey('signing');
        writeNew(join(dir, 'root.key'), encodeSecretKey(root.secret), 0o600);
        writeNew(join(dir, 'signing.key'), encodeSecretKey(signing.secret), 0o600);
        writeNew(join(dir, 'root.pub'), encodePublicKey(root.public, 'root'), 0o644);
        writeNew(join(dir, 'signing.pub'), encodePublicKey(signing.public, 'signing'), 0o644);
        writeNew(join(dir, 'keylist.pqkl'), signKeyList(keylistFor([signing.public], 1, [], now, int(v['valid-days'], 'valid-days', 1825)), root.secret), 0o644);
        io.out(`root key ${root.public.id}, signing key ${signing.public.id}, key list version 1 in ${dir}\nkeep root.key offline; signing.key signs releases\n`);
        return 0;
      }
      case 'sign-keylist': {
        const root = decodeSecretKey(readFileSync(need(v.root, 'root'), 'utf8'), v.root!);
        const pubs = (v.key ?? []).map((f) => decodePublicKey(readFileSync(f, 'utf8'), f).key);
        if (!pubs.length) throw new UpgradeError('BAD_FORMAT', 'at least one --key SIGNING.pub');
        const revoked = v.revoke ?? [];
        for (const r of revoked) if (!/^[0-9a-f]{16}$/.test(r)) throw new UpgradeError('BAD_FORMAT', `--revoke ${r}: key ids are 16 hex digits`);
        const out = need(v.out, 'out');
        writeFileSync(out, signKeyList(keylistFor(pubs, int(v['list-version'], 'list-version'), revoked, now, int(v['valid-days'], 'valid-days', 1825)), root));
        io.out(`key list version ${v['list-version']} (${pubs.map((p) => p.id).join(', ')}${revoked.length ? `; revoked ${revoked.join(', ')}` : ''}) → ${out}\n`);
        return 0;
      }
      case 'trust': {
        const out = resolve(need(v.out, 'out'));
        mkdirSync(join(out, 'roots'), { recursive: true });
        if (v.dev) {
          if (v.keys) throw new UpgradeError('BAD_FORMAT', '--dev or --keys, not both');
          writeFileSync(join(out, 'trust.json'), JSON.stringify({ format: 1, mode: 'dev' }) + '\n');
          io.out(`development trust store in ${out}: accepts UNSIGNED firmware\n`);
          return 0;
        }
        const keys = resolve(need(v.keys, 'keys'));
        const { key } = decodePublicKey(readFileSync(join(keys, 'root.pub'), 'utf8'), join(keys, 'root.pub'));
        writeFileSync(join(out, 'roots', `${key.id}.pub`), encodePublicKey(key, 'root'));
        writeFileSync(join(out, 'keylist.pqkl'), readFileSync(join(keys, 'keylist.pqkl')));
        writeFileSync(join(out, 'trust.json'), JSON.stringify({ format: 1, mode: 'signed' }) + '\n');
        loadTrustStore(out); // the list must verify against the root just written
        io.out(`signed trust store in ${out}: root ${key.id}\n`);
        return 0;
      }
      case 'make': {
        const from = v.from ? resolve(v.from) : undefined;
        const pick = (flagVal: string | undefined, file: string) => flagVal ?? (from && existsSync(join(from, file)) ? join(from, file) : undefined);
        const rootfs = need(pick(v.rootfs, 'rootfs.squashfs'), 'rootfs (or --from DIR with rootfs.squashfs)');
        const kernel = pick(v.kernel, 'vmlinuz');
        const initrd = pick(v.initrd, 'initrd.img');
        const keys = v.keys ? resolve(v.keys) : undefined;
        const h = makeBundle({
          out: resolve(need(v.out, 'out')),
          board: need(v.board, 'board'),
          version: need(v.version, 'version'),
          securityVersion: int(v['security-version'], 'security-version'),
          created: iso(now),
          images: [{ name: 'rootfs' as const, path: rootfs }, ...(kernel ? [{ name: 'kernel' as const, path: kernel }] : []), ...(initrd ? [{ name: 'initrd' as const, path: initrd }] : [])],
          ...(keys ? { signer: decodeSecretKey(readFileSync(join(keys, 'signing.key'), 'utf8'), join(keys, 'signing.key')), keyList: new Uint8Array(readFileSync(join(keys, 'keylist.pqkl'))) } : {}),
        });
        io.out(`${v.out}: ${h.board} ${h.version} (security version ${h.securityVersion}), ${h.images.map((i) => `${i.name} ${i.size}`).join(', ')}, ${keys ? 'signed' : 'UNSIGNED development build'}\n`);
        return 0;
      }
      case 'inspect': {
        if (positionals.length !== 1) throw new UpgradeError('BAD_FORMAT', 'inspect FILE.pqb');
        const r = inspect(positionals[0]!);
        if (v.json) io.out(JSON.stringify(r, null, 2) + '\n');
        else
          io.out(
            [
              `board ${String(r.board)}, version ${String(r.version)}, security version ${String(r.securityVersion)}, created ${String(r.created)}, build ${String(r.build)}`,
              ...(r.images as { name: string; offset: number; size: number; sha256: string }[]).map((i) => `  ${i.name.padEnd(6)} ${String(i.size).padStart(10)} bytes at ${i.offset}  sha256 ${i.sha256}`),
              r.signedBy ? `signed by ${String(r.signedBy)}` : 'UNSIGNED (development build)',
              r.keyList ? `carries key list version ${(r.keyList as { version: number }).version}` : 'carries no key list',
            ].join('\n') + '\n',
          );
        return 0;
      }
      case 'verify': {
        if (positionals.length !== 1) throw new UpgradeError('BAD_FORMAT', 'verify FILE.pqb --trust DIR');
        const trust = loadTrustStore(resolve(need(v.trust, 'trust')));
        const f = positionals[0]!;
        const h = inspect(f);
        const r = await verifyBundleFile(f, { trust, board: v.board ?? String(h.board), securityFloor: int(v.floor, 'floor', 0), ...(v.state ? { stateDir: resolve(v.state) } : {}) });
        io.out(`${f}: OK, ${r.header.board} ${r.header.version}, ${r.signedBy ? `signed by ${r.signedBy} (Ed25519 + ML-DSA-65)` : 'unsigned, accepted by this DEVELOPMENT trust store'}\n`);
        return 0;
      }
      default:
        io.err(BUNDLE_USAGE);
        return cmd === undefined || cmd === 'help' ? (cmd ? 0 : 2) : 2;
    }
  } catch (e) {
    if (e instanceof UpgradeError) {
      io.err(`pqgate bundle ${cmd}: ${e.message} [${e.code}]\n`);
      return 1;
    }
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`pqgate bundle: ${(e as Error).message}\n${BUNDLE_USAGE}`);
      return 2;
    }
    io.err(`pqgate bundle ${cmd}: ${(e as Error).message}\n`);
    return 1;
  }
}
