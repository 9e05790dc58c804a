/**
 * Crash-safe file primitives for the slot writer: write to a temporary name,
 * fsync the file, rename over the final name, fsync the directory (rename is
 * only durable once the directory is; on FAT the directory entry update is a
 * single sector write, which is as atomic as that file system gets), and
 * chunked copy with read-back verification.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, renameSync, writeSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export const TMP_SUFFIX = '.pqgate-tmp';
const CHUNK = 1 << 20;

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    // Some file systems refuse fsync on a directory (EINVAL); the data itself was synced.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeFileDurable(dir: string, name: string, data: Uint8Array | string): void {
  const tmp = join(dir, name + TMP_SUFFIX);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  fsyncDir(dir);
}

export function renameDurable(dir: string, from: string, to: string): void {
  renameSync(join(dir, from), join(dir, to));
  fsyncDir(dir);
}

export function removeDurable(dir: string, names: readonly string[]): void {
  let any = false;
  for (const n of names) {
    if (existsSync(join(dir, n))) {
      rmSync(join(dir, n), { force: true });
      any = true;
    }
  }
  if (any) fsyncDir(dir);
}

/** Temp files left by an interrupted write (never referenced by a boot entry): remove them. Returns the names removed. */
export function removeTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const tmp = names.filter((n) => n.endsWith(TMP_SUFFIX));
  removeDurable(dir, tmp);
  return tmp;
}

export interface CopyProgress {
  (bytes: number): void;
}

/**
 * Copy `size` bytes from `srcFd` at `srcOffset` to `dstFd` at `dstOffset`,
 * fsync, then read the destination back and return its SHA-256 (what is on
 * the medium, not what we meant to write).
 */
export function copyAndHash(srcFd: number, srcOffset: number, dstFd: number, dstOffset: number, size: number, progress?: CopyProgress): Uint8Array {
  const buf = Buffer.allocUnsafe(CHUNK);
  let done = 0;
  while (done < size) {
    const want = Math.min(CHUNK, size - done);
    const n = readSync(srcFd, buf, 0, want, srcOffset + done);
    if (n <= 0) throw new Error(`source ended after ${done} of ${size} bytes`);
    let w = 0;
    while (w < n) w += writeSync(dstFd, buf, w, n - w, dstOffset + done + w);
    done += n;
    progress?.(n);
  }
  fsyncSync(dstFd);
  return hashRange(dstFd, dstOffset, size, progress);
}

export function hashRange(fd: number, offset: number, size: number, progress?: CopyProgress): Uint8Array {
  const buf = Buffer.allocUnsafe(CHUNK);
  const h = createHash('sha256');
  let done = 0;
  while (done < size) {
    const n = readSync(fd, buf, 0, Math.min(CHUNK, size - done), offset + done);
    if (n <= 0) throw new Error(`read-back ended after ${done} of ${size} bytes`);
    h.update(buf.subarray(0, n));
    done += n;
    progress?.(n);
  }
  return new Uint8Array(h.digest());
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
