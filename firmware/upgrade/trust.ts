/**
 * The trust store: what this firmware believes about update signatures.
 *
 *   <trust dir> (read-only rootfs, default /usr/share/pqgate/trust/)
 *     trust.json        {"format":1,"mode":"signed"|"dev"}
 *     roots/*.pub       root public keys (keys.ts public key files)
 *     keylist.pqkl      the key list current when this image was built (optional)
 *   <state dir> (data partition, default /data/pqgate/upgrade/)
 *     keylist.pqkl      the newest key list accepted since (anti-replay)
 *
 * `mode: "dev"` is written only by an image built without signing keys
 * (docs/upgrade.md "Development mode"); such an image accepts unsigned
 * bundles and says so everywhere. There is no switch to turn verification
 * off on a signed image.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { HybridPublicKey, TrustStore } from './types.js';
import { UpgradeError } from './types.js';
import { decodePublicKey } from './keys.js';
import { openKeyList, type SignedKeyList } from './keylist.js';

export const DEFAULT_TRUST_DIR = '/usr/share/pqgate/trust';
export const DEFAULT_STATE_DIR = '/data/pqgate/upgrade';

export interface LoadedTrust extends TrustStore {
  dir: string;
  /** The key list shipped in the rootfs, if any (verified against the roots). */
  shippedList: SignedKeyList | undefined;
}

function readOpt(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export function loadTrustStore(dir = DEFAULT_TRUST_DIR): LoadedTrust {
  const meta = readOpt(join(dir, 'trust.json'));
  if (!meta) throw new UpgradeError('BAD_TRUST', `no trust store at ${dir} (trust.json missing): this firmware cannot verify updates`);
  let j: { format?: unknown; mode?: unknown };
  try {
    j = JSON.parse(meta.toString('utf8')) as typeof j;
  } catch {
    throw new UpgradeError('BAD_TRUST', `${dir}/trust.json is not JSON`);
  }
  if (j.format !== 1 || (j.mode !== 'signed' && j.mode !== 'dev')) throw new UpgradeError('BAD_TRUST', `${dir}/trust.json: expected {"format":1,"mode":"signed"|"dev"}`);
  const roots = new Map<string, HybridPublicKey>();
  let names: string[] = [];
  try {
    names = readdirSync(join(dir, 'roots')).filter((n) => n.endsWith('.pub')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const n of names) {
    const { key, role } = decodePublicKey(readFileSync(join(dir, 'roots', n), 'utf8'), `${dir}/roots/${n}`);
    if (role !== 'root') throw new UpgradeError('BAD_TRUST', `${dir}/roots/${n} is a ${role} key, not a root key`);
    roots.set(key.id, key);
  }
  const dev = j.mode === 'dev';
  if (!dev && roots.size === 0) throw new UpgradeError('BAD_TRUST', `${dir}: a signed trust store without root keys accepts nothing`);
  const kl = readOpt(join(dir, 'keylist.pqkl'));
  const shippedList = kl && roots.size ? openKeyList(new Uint8Array(kl), roots, `${dir}/keylist.pqkl`) : undefined;
  return { dir, dev, roots, shippedList };
}

/** The newest key list accepted on this device (state dir), or undefined. A list that no longer verifies is ignored. */
export function storedKeyList(stateDir: string, roots: ReadonlyMap<string, HybridPublicKey>): SignedKeyList | undefined {
  const b = readOpt(join(stateDir, 'keylist.pqkl'));
  if (!b) return undefined;
  try {
    return openKeyList(new Uint8Array(b), roots, 'stored key list');
  } catch {
    return undefined;
  }
}

/**
 * Pick the newest of the candidate lists. Two different lists with the
 * same version mean a root key signed conflicting lists: refused.
 */
export function newestKeyList(cands: (SignedKeyList | undefined)[]): SignedKeyList | undefined {
  let best: SignedKeyList | undefined;
  for (const c of cands) {
    if (!c) continue;
    if (!best || c.list.version > best.list.version) best = c;
    else if (c.list.version === best.list.version && Buffer.compare(Buffer.from(c.bytes), Buffer.from(best.bytes)) !== 0)
      throw new UpgradeError('BAD_TRUST', `two different key lists carry version ${c.list.version}`);
  }
  return best;
}

/** Persist a key list as the device's newest (atomic rename). Refuses a lower version: KEYLIST_REPLAY. */
export function storeKeyList(stateDir: string, l: SignedKeyList, roots: ReadonlyMap<string, HybridPublicKey>, shipped?: SignedKeyList): boolean {
  // The current list is the newest of the stored one and the one in the rootfs.
  const cur = newestKeyList([storedKeyList(stateDir, roots), shipped]);
  if (cur && l.list.version < cur.list.version)
    throw new UpgradeError('KEYLIST_REPLAY', `key list version ${l.list.version} is older than the version ${cur.list.version} this device already has: refused (replay)`);
  if (cur && l.list.version === cur.list.version) {
    if (Buffer.compare(Buffer.from(cur.bytes), Buffer.from(l.bytes)) !== 0) throw new UpgradeError('BAD_TRUST', `a different key list with version ${cur.list.version} is already installed`);
    return false;
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.keylist.${process.pid}.tmp`);
  writeFileSync(tmp, l.bytes, { mode: 0o644 });
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(stateDir, 'keylist.pqkl'));
  return true;
}
