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
import { openSync, readSync, fstatSync, closeSync } from 'node:fs';
import { join } from 'node:path';

const [root, blockArg, ...files] = process.argv.slice(2);
const block = Number(blockArg);
if (!root || !Number.isInteger(block) || block < 4096 || block & (block - 1) || !files.length) {
  process.stderr.write('usage: prefetch.mjs ROOT BLOCK FILE...\n');
  process.exit(2);
}

/** Read `len` bytes at `pos` (bounds-checked against the file size). */
function readAt(fd, size, pos, len) {
  if (pos < 0 || len < 0 || pos + len > size) throw new Error(`ELF: range ${pos}+${len} outside the file (${size} bytes)`);
  const b = Buffer.alloc(len);
  if (readSync(fd, b, 0, len, pos) !== len) throw new Error('ELF: short read');
  return b;
}

/**
 * File range [start, end) of the ICU data in a little-endian ELF64 file, or
 * undefined when it is no ELF64 or has no such symbol.
 */
function icuRange(path) {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 64) return undefined;
    const h = readAt(fd, size, 0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined; // ELF, 64-bit, little-endian
    const phoff = Number(h.readBigUInt64LE(32));
    const shoff = Number(h.readBigUInt64LE(40));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const shentsize = h.readUInt16LE(58);
    const shnum = h.readUInt16LE(60);
    if (phentsize < 56 || shentsize < 64) throw new Error('ELF: header entry sizes too small');
    const sections = [];
    for (let i = 0; i < shnum; i++) {
      const s = readAt(fd, size, shoff + i * shentsize, 64);
      sections.push({ type: s.readUInt32LE(4), offset: Number(s.readBigUInt64LE(24)), size: Number(s.readBigUInt64LE(32)), link: s.readUInt32LE(40), entsize: Number(s.readBigUInt64LE(56)) });
    }
    const dynsym = sections.find((s) => s.type === 11); // SHT_DYNSYM
    if (!dynsym || dynsym.entsize < 24 || !sections[dynsym.link]) return undefined;
    const strtab = sections[dynsym.link];
    const strs = readAt(fd, size, strtab.offset, strtab.size);
    const syms = readAt(fd, size, dynsym.offset, dynsym.size);
    let sym;
    for (let off = 0; off + 24 <= syms.length; off += dynsym.entsize) {
      const nameOff = syms.readUInt32LE(off);
      if (nameOff >= strs.length) continue;
      const end = strs.indexOf(0, nameOff);
      const name = strs.toString('latin1', nameOff, end < 0 ? strs.length : end);
      if (/^icudt\d+[lbe]?_dat$/.test(name)) {
        sym = { value: Number(syms.readBigUInt64LE(off + 8)), size: Number(syms.readBigUInt64LE(off + 16)) };
        break;
      }
    }
    if (!sym || sym.size === 0) return undefined;
    // Virtual address → file offset through the PT_LOAD segment that holds it.
    for (let i = 0; i < phnum; i++) {
      const p = readAt(fd, size, phoff + i * phentsize, 56);
      if (p.readUInt32LE(0) !== 1) continue; // PT_LOAD
      const offset = Number(p.readBigUInt64LE(8));
      const vaddr = Number(p.readBigUInt64LE(16));
      const filesz = Number(p.readBigUInt64LE(32));
      if (sym.value >= vaddr && sym.value + sym.size <= vaddr + filesz) {
        const start = offset + (sym.value - vaddr);
        return { start, end: start + sym.size };
      }
    }
    throw new Error(`ELF: ICU data at 0x${sym.value.toString(16)} is in no loadable segment`);
  } finally {
    closeSync(fd);
  }
}

const lines = [`block ${block}`];
let total = 0;
for (const rel of files) {
  // rcS reads the list with `read -r path skip count`: no white space in paths.
  if (rel.startsWith('/') || rel.split('/').includes('..') || /\s/.test(rel)) throw new Error(`prefetch: '${rel}' is not a plain relative path inside the root`);
  const path = join(root, rel);
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  closeSync(fd);
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
