/**
 * Host side of the upgrade scenarios: v2 root filesystems made by repacking
 * the built v1 squashfs with a changed version (and, for the failing case, a
 * daemon that exits at once), bundle-like files (images at offsets plus a
 * manifest with their SHA-256), and a loopback HTTP server the VM fetches
 * them from through QEMU's user-mode gateway (10.0.2.2 = the host's
 * 127.0.0.1): pushing 40 MB through the test console would take minutes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readFileSync, rmSync, statSync, writeFileSync, openSync, closeSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, join } from 'node:path';

export interface Variant {
  version: string;
  squashfs: string;
}

function findmntEmpty(dir: string): boolean {
  try {
    return execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').every((t) => !t.startsWith(dir));
  } catch {
    return false;
  }
}

/** Write a regular file inside an unpacked tree, refusing symlinks (never write through an absolute link). */
function writeInTree(root: string, rel: string, content: string): void {
  const p = join(root, rel);
  const st = lstatSync(p);
  if (!st.isFile()) throw new Error(`${rel} in the unpacked rootfs is not a regular file`);
  writeFileSync(p, content);
}

/**
 * Repack `v1` with package.json's version set to `version`; with `brokenDaemon`
 * the daemon launcher exits 3 at once (the health gate cannot pass).
 */
export function makeVariant(v1: string, workDir: string, version: string, opts: { brokenDaemon?: boolean } = {}): Variant {
  const tree = join(workDir, `tree-${version}`);
  const out = join(workDir, `rootfs-${version}.squashfs`);
  if (existsSync(tree)) {
    if (!findmntEmpty(tree)) throw new Error(`something is mounted below ${tree}`);
    execFileSync('rm', ['-rf', '--one-file-system', tree]);
  }
  execFileSync('unsquashfs', ['-d', tree, '-no-xattrs', '-no-progress', v1], { stdio: 'ignore' });
  const pkgRel = 'usr/lib/pqgate/package.json';
  const pkg = JSON.parse(readFileSync(join(tree, pkgRel), 'utf8')) as { version: string };
  pkg.version = version;
  writeInTree(tree, pkgRel, JSON.stringify(pkg, null, 2) + '\n');
  if (opts.brokenDaemon) {
    // `service daemon` runs lib/run.cjs daemon: its bundle's main() exits at once
    // (without a code cache, which would not match the replaced bundle).
    writeInTree(tree, 'usr/lib/pqgate/lib/daemon.cjs', "exports.main = async () => {\n  process.stderr.write('upgrade test: this daemon is broken on purpose\\n');\n  process.exit(3);\n};\n");
    rmSync(join(tree, 'usr/lib/pqgate/lib/daemon.cjs.cache'), { force: true });
  }
  // Fast compression: the partition is 96 MiB, level 3 is ~45 MiB and packs in seconds.
  execFileSync('mksquashfs', [tree, out, '-comp', 'zstd', '-Xcompression-level', '3', '-b', '1M', '-all-root', '-no-xattrs', '-noappend', '-quiet', '-no-progress'], { stdio: 'ignore' });
  if (!findmntEmpty(tree)) throw new Error(`something is mounted below ${tree}`);
  execFileSync('rm', ['-rf', '--one-file-system', tree]);
  return { version, squashfs: out };
}

export interface TestBundle {
  file: string;
  manifest: string;
  size: number;
}

/** Concatenate rootfs, kernel and initrd after a 4 KiB pad; the manifest carries offsets, sizes and SHA-256. */
export function makeTestBundle(workDir: string, board: string, version: string, securityVersion: number, parts: { rootfs: string; kernel: string; initrd: string }): TestBundle {
  const file = join(workDir, `bundle-${version}.bin`);
  const fd = openSync(file, 'w');
  const images: { name: string; offset: number; size: number; sha256: string }[] = [];
  let off = 4096;
  writeSync(fd, Buffer.alloc(4096));
  for (const name of ['rootfs', 'kernel', 'initrd'] as const) {
    const data = readFileSync(parts[name]);
    writeSync(fd, data, 0, data.length, off);
    images.push({ name, offset: off, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    off += data.length;
  }
  closeSync(fd);
  const manifest = join(workDir, `bundle-${version}.json`);
  writeFileSync(manifest, JSON.stringify({ header: { format: 1, board, version, securityVersion, created: new Date().toISOString() }, images }));
  return { file, manifest, size: statSync(file).size };
}

/** Serve the given files by base name on 127.0.0.1 (guest URL: http://10.0.2.2:PORT/NAME). */
export function serveFiles(files: readonly string[]): Promise<{ server: Server; port: number }> {
  const byName = new Map(files.map((f) => [basename(f), f]));
  const server = createServer((req, res) => {
    const f = byName.get(decodeURIComponent((req.url ?? '/').slice(1)));
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': statSync(f).size });
    createReadStream(f).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

/** Seeded PRNG (mulberry32): the power-cut points are reproducible from the logged seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
