/**
 * The image's bundled programs (image/lib/esbuild.mjs) and their runner
 * (image/overlay/usr/lib/pqgate/lib/run.cjs), on the build machine's node in
 * a directory laid out like /usr/lib/pqgate: every bundle loads (its module
 * graph is complete, only the native addons external: better-sqlite3's by a
 * fixed path instead of `bindings`), the code
 * cache --write-cache makes is accepted, a damaged cache is reported and the
 * program still runs, and the programs behave like their unbundled versions
 * (CLI check-config, web --help, the daemon launcher's usage error, the
 * version read from package.json next to them).
 *
 * Needs `npm run build` (dist/); skipped otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const skip = existsSync(join(REPO, 'dist', 'firmware', 'cli.js')) && existsSync(join(REPO, 'dist', 'webui', 'server.js')) ? undefined : 'dist/ missing: run npm run build';
const NAMES = ['daemon', 'web', 'upgrade-boot', 'cli'];
// image/lib/esbuild.mjs's SQLITE_ADDON: better-sqlite3's addon as the bundles require it.
const SQLITE_ADDON = '../node_modules/better-sqlite3/build/Release/better_sqlite3.node';

describe.skipIf(!!skip)(`image bundles${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let app: string;
  const run = (...args: string[]) => spawnSync(process.execPath, [join(app, 'lib', 'run.cjs'), ...args], { encoding: 'utf8', cwd: app, timeout: 60_000 });

  beforeAll(() => {
    app = mkdtempSync(join(tmpdir(), 'pqgate-app-'));
    mkdirSync(join(app, 'lib'));
    mkdirSync(join(app, 'webui'));
    const b = spawnSync(process.execPath, [join(REPO, 'image', 'lib', 'esbuild.mjs'), '--dist', join(REPO, 'dist'), '--out', join(app, 'lib'), '--minify'], { encoding: 'utf8', timeout: 120_000 });
    expect(b.status, b.stderr).toBe(0);
    copyFileSync(join(REPO, 'image', 'overlay', 'usr', 'lib', 'pqgate', 'lib', 'run.cjs'), join(app, 'lib', 'run.cjs'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pqgate', version: '9.8.7-bundletest', type: 'module' }));
    // What the image ships next to the bundles: the external package, the addon, the static files.
    symlinkSync(join(REPO, 'node_modules'), join(app, 'node_modules'));
    symlinkSync(join(REPO, 'native'), join(app, 'native'));
    symlinkSync(join(REPO, 'webui', 'static'), join(app, 'webui', 'static'));
  }, 180_000);

  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('bundles each program into one CommonJS file with only the addons external (better-sqlite3 by a fixed path)', () => {
    for (const n of NAMES) {
      const src = readFileSync(join(app, 'lib', `${n}.cjs`), 'utf8');
      const required = new Set([...src.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!));
      // supports-color: debug's optional colour support, required in a try (not installed).
      const external = [...required].filter((r) => !r.startsWith('node:') && !BUILTINS.has(r) && r !== 'supports-color').sort();
      // The web admin never opens the store: it talks to the daemon only. The others
      // carry better-sqlite3's JavaScript and load its addon without `bindings`.
      expect(external, n).toEqual(n === 'web' ? [] : [SQLITE_ADDON]);
    }
    // That path, from lib/, is where the image (and this layout) has the addon, and it opens a database.
    const r = spawnSync(process.execPath, ['-e', `const a = require('node:module').createRequire(${JSON.stringify(join(app, 'lib', 'daemon.cjs'))})(${JSON.stringify(SQLITE_ADDON)}); process.stdout.write(typeof a.Database)`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function');
  });

  it('writes code caches that V8 accepts, and the programs run from them', () => {
    const leftovers = () => readdirSync(tmpdir()).filter((f) => /^pqgate-(daemon-cache|code-cache|spool)-/.test(f)).length;
    const before = leftovers();
    const w = run('--write-cache', ...NAMES);
    expect(w.status, w.stderr).toBe(0);
    for (const n of NAMES) expect(statSync(join(app, 'lib', `${n}.cjs.cache`)).size).toBeGreaterThan(10_000);
    // The warm-ups ran: one throwaway daemon start that answered every call the
    // web admin's first pages make, and the web admin's first pages
    // (/login → /setup on a first boot, /setup, /login once users exist).
    expect(w.stdout).toMatch(/daemon\.cjs\.cache \d+ KiB \(warm-up: 7\)/);
    expect(w.stdout).toMatch(/web\.cjs\.cache \d+ KiB \(warm-up: \[303,200,200\]\)/);
    expect(leftovers()).toBe(before);
    const c = run('cli', 'check-config', join(REPO, 'image', 'overlay', 'etc', 'pqgate', 'default.json'));
    expect(c.status, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/OK, 0 tunnels/);
    expect(c.stderr).not.toMatch(/rejected/);
    const v = run('cli', '--help');
    expect(v.stdout + v.stderr).toMatch(/usage: pqgate/i);
    const web = run('web', '--help');
    expect(web.status).toBe(0);
    expect(web.stdout).toMatch(/--socket PATH/);
    expect(web.stderr).toBe('');
    const d = run('daemon');
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/usage: run\.cjs daemon --config FILE \| --db FILE/);
  });

  it('reads the version from the package.json next to the bundles (an upgrade variant changes only that file)', () => {
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(app, 'lib', 'run.cjs'))}).compile('cli')`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const v = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(join(app, 'lib', 'run.cjs'))}); process.argv = [process.argv[0], 'x', 'version', '--socket', '/nonexistent/pqgate.sock']; m.main('cli')`], { encoding: 'utf8' });
    expect(v.stdout).toContain('9.8.7-bundletest');
  });

  it('a cache that does not match its bundle is reported on stderr and the program still runs', () => {
    // V8 checks the cache's source hash, V8 version and flags (not a checksum of
    // the payload in release builds): the cache is as trustworthy as the bundle
    // next to it in the verified, read-only rootfs, and a stale one is refused.
    copyFileSync(join(app, 'lib', 'web.cjs.cache'), join(app, 'lib', 'cli.cjs.cache'));
    const c = run('cli', 'check-config', join(REPO, 'image', 'overlay', 'etc', 'pqgate', 'default.json'));
    expect(c.status).toBe(0);
    expect(c.stdout).toMatch(/OK, 0 tunnels/);
    expect(c.stderr).toMatch(/run\.cjs: cli\.cjs\.cache rejected by V8/);
  });

  it('refuses a program name that is not a plain word', () => {
    const r = run('../../etc/passwd');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad program name/);
  });
});

const BUILTINS = new Set(['assert', 'async_hooks', 'buffer', 'child_process', 'crypto', 'dgram', 'dns', 'events', 'fs', 'http', 'https', 'module', 'net', 'os', 'path', 'process', 'querystring', 'readline', 'stream', 'string_decoder', 'timers', 'tls', 'tty', 'url', 'util', 'vm', 'worker_threads', 'zlib', 'diagnostics_channel', 'perf_hooks', 'http2', 'v8', 'inspector', 'constants', 'punycode', 'sqlite']);
