// Page-cache prefetch list of the root filesystem (docs/image.md "Boot time",
// "Prefetch"): which parts of which files rcS reads in the background at the
// start of the boot, so that the squashfs blocks the daemon and the web admin
// need are decompressed while rcS mounts, loads modules and brings up the
// network, instead of on the services' critical path.
//
//   node image/lib/prefetch.mjs ROOT BLOCK FILE...   > ROOT/usr/lib/pqgate/prefetch.list
//
// FILE paths are relative to ROOT, in the order rcS should read them. Output:
// a first line "block BYTES", then one line per range: "/PATH SKIP COUNT" in
// units of BLOCK bytes (the squashfs block size, so that every read covers
// whole compressed blocks: dd bs=BLOCK skip=SKIP count=COUNT).
//
// A file is read whole, except an ELF executable's embedded ICU data
// (`icudt<N>_dat` in .dynsym; node's official binaries carry ~33 MB of it):
// node touches it only for Intl, and reading it would cost a third of the
// prefetch's CPU for nothing. Measured under QEMU TCG (x86_64): node maps
// ~57 MB of its 105 MB at start-up, all of it outside the ICU data.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';

const [root, blockArg, ...files] = process.argv.slice(2);
const block = Number(blockArg);
if (!root || !Number.isInteger(block) || block < 4096 || block & (block - 1) || !files.length) {
  process.stderr.write('usage: prefetch.mjs ROOT BLOCK FILE...\n');
  process.exit(2);
}

/** `readelf -W ARGS path`'s output, or undefined when the file is no ELF file (readelf fails). */
function readelf(args, path) {
  try {
    return execFileSync('readelf', ['-W', ...args, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 << 20 });
  } catch {
    return undefined;
  }
}

/** readelf prints small numbers in decimal, larger ones as 0x hex. */
const num = (s) => Number(s.startsWith('0x') ? BigInt(s) : s);

/**
 * File range [start, end) of the ICU data in an ELF file (the build
 * machine's readelf, a build requirement already, reads either board's
 * binaries), or undefined when it is no ELF file or has no such symbol.
 */
function icuRange(path) {
  const syms = readelf(['--dyn-syms'], path);
  // "  Num: Value Size Type Bind Vis Ndx Name"
  const m = syms && /^\s*\d+:\s+([0-9a-f]+)\s+(0x[0-9a-f]+|\d+)\s+\S+\s+\S+\s+\S+\s+\S+\s+icudt\d+[lbe]?_dat$/m.exec(syms);
  if (!m) return undefined;
  const value = Number(BigInt(`0x${m[1]}`));
  const size = num(m[2]);
  if (size === 0) return undefined;
  // Virtual address → file offset through the PT_LOAD segment that holds it:
  // "  LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align".
  for (const l of (readelf(['-l'], path) ?? '').split('\n')) {
    const p = /^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s/.exec(l);
    if (!p) continue;
    const [offset, vaddr, filesz] = [num(p[1]), num(p[2]), num(p[3])];
    if (value >= vaddr && value + size <= vaddr + filesz) {
      const start = offset + (value - vaddr);
      return { start, end: start + size };
    }
  }
  throw new Error(`ELF: ICU data at 0x${value.toString(16)} in ${path} is in no loadable segment`);
}

const lines = [`block ${block}`];
let total = 0;
for (const rel of files) {
  // rcS reads the list with `read -r path skip count`: no white space in paths.
  if (rel.startsWith('/') || rel.split('/').includes('..') || /\s/.test(rel)) throw new Error(`prefetch: '${rel}' is not a plain relative path inside the root`);
  const path = join(root, rel);
  const size = statSync(path).size;
  const blocks = Math.ceil(size / block);
  if (!blocks) continue;
  const icu = icuRange(path);
  // Whole blocks only: a block the ICU data shares with other data stays in.
  const ranges = icu
    ? [
        [0, Math.floor(icu.start / block)],
        [Math.ceil(icu.end / block), blocks],
      ]
    : [[0, blocks]];
  for (const [from, to] of ranges) {
    if (to <= from) continue;
    lines.push(`/${rel} ${from} ${to - from}`);
    total += to - from;
  }
}
process.stdout.write(lines.join('\n') + '\n');
process.stderr.write(`prefetch list: ${files.length} files, ${Math.round((total * block) / 1048576)} MiB\n`);
