/**
 * The one loader of the in-tree N-API addon (native/: pqtun.c + pqcrypto.c,
 * built by `npm run build:native` into native/build/Release/pqtun.node).
 * Both the data plane (dataplane/tun/tun.ts: TUN, sendmmsg, ESP AEAD) and the
 * IKE crypto fast path (crypto/native.ts) get the module from here, so it is
 * found and loaded once.
 *
 * The file is searched upwards from this module, so the same code works from
 * firmware/ (vitest) and dist/firmware/ (compiled); PQGATE_TUN_ADDON overrides
 * the path (the name predates the crypto functions).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PqError } from './errors.js';

const ADDON_REL = join('native', 'build', 'Release', 'pqtun.node');

/** Where the addon would be loaded from (undefined if not built). */
export function findNativeAddon(): string | undefined {
  const env = process.env.PQGATE_TUN_ADDON;
  if (env) return existsSync(env) ? env : undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const p = join(dir, ADDON_REL);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

let loaded: unknown;

/**
 * The addon's exports (cached). Throws PqError ERR_NATIVE_ADDON when it is not
 * built or cannot be loaded; callers with a JS fallback catch that.
 */
export function loadNativeAddon(): unknown {
  if (loaded !== undefined) return loaded;
  const path = findNativeAddon();
  if (!path) throw new PqError('ERR_NATIVE_ADDON', 'pqtun addon not built: run `npm run build:native`');
  try {
    loaded = createRequire(import.meta.url)(path) as unknown;
  } catch (e) {
    throw new PqError('ERR_NATIVE_ADDON', `cannot load ${path}: ${(e as Error).message}`, { cause: e });
  }
  return loaded;
}
