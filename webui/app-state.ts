/**
 * What the web admin application keeps on disk and in memory besides its
 * routes: the firmware upload spool, the API token store and the static
 * assets. server.ts prepares it before dropping privileges (the data
 * directory may be reachable only by root: the server hands it to the web
 * user, but a parent directory can still be closed to that user), and then
 * loads the application itself (express and the pages, app.ts) after the
 * drop (docs/webui.md "Start-up before the daemon"). Nothing here loads
 * express.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiTokenStore } from './tokens.js';
import { prepareSpool } from './pages/upgrade.js';

const here = dirname(fileURLToPath(import.meta.url));

/** webui/static next to this file (sources, tests), the repository's when running from dist/webui, or the image's next to its bundle (/usr/lib/pqgate/lib → ../webui/static). */
export function staticDir(): string {
  for (const d of [join(here, 'static'), resolve(here, '..', '..', 'webui', 'static'), resolve(here, '..', 'webui', 'static')]) if (existsSync(join(d, 'app.js'))) return d;
  throw new Error(`web admin static files not found next to ${here}`);
}

export const STATIC_TYPES: Readonly<Record<string, string>> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

export interface AppState {
  /** Firmware uploads are streamed here (the daemon reads them); prepared (leftovers removed), real path. */
  spoolDir: string;
  tokens: ApiTokenStore;
  /** /static/<name> bodies: a fixed in-memory set (STATIC_TYPES). */
  assets: ReadonlyMap<string, Buffer>;
}

export function prepareAppState(o: { dataDir?: string | undefined; spoolDir?: string | undefined; now?: (() => number) | undefined }): AppState {
  const spoolDir = prepareSpool(o.spoolDir ?? (o.dataDir ? join(o.dataDir, 'spool') : mkdtempSync(join(tmpdir(), 'pqgate-spool-'))));
  const tokens = new ApiTokenStore(o.dataDir, o.now ? { now: o.now } : {});
  const assets = new Map<string, Buffer>();
  const dir = staticDir();
  for (const f of Object.keys(STATIC_TYPES)) assets.set(f, readFileSync(join(dir, f)));
  return { spoolDir, tokens, assets };
}
