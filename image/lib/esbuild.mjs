// Bundle the image's Node.js programs into one CommonJS file each
// (docs/image.md "Node start-up"): the daemon launcher, the web admin, the
// upgrade boot check and the `pqgate` CLI, from the compiled dist/.
//
//   node image/lib/esbuild.mjs --dist DIR --out DIR [--minify]
//
// Why: the unbundled daemon is ~420 ES modules; resolving, reading and
// linking them costs Node seconds under QEMU's TCG before any code runs. One
// file per program is read once, and a CommonJS script can be compiled by
// lib/run.cjs with a V8 code cache made at image build time (vm.Script
// cachedData), which ES modules cannot use before Node's own compile cache
// has been written at some process exit.
//
// Native addons stay external: node_modules and native/ keep them.
// better-sqlite3's JavaScript is bundled (so it is in the V8 code cache too)
// and its addon is required by a fixed path relative to lib/ instead of
// through the `bindings` package, which probes a dozen build directories and
// reads package.json files through node's resolver: under QEMU TCG loading
// better-sqlite3 that way cost ~0.3 s of the daemon's start (docs/image.md
// "Node start-up"). The image stages the addon at exactly that path
// (image/lib/node.sh); the dev workflow runs dist/ unbundled, unchanged.
// `import.meta.url` becomes the bundle's own file URL, so code that looks for
// package.json, native/ or webui/static by walking up from its module finds
// them from /usr/lib/pqgate/lib. No source maps: stack traces name the bundle
// and its (unminified, unless --minify) function names.
import { build } from 'esbuild';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mimeTypesPlugin } from './esbuild-mime-types.mjs';

const args = process.argv.slice(2);
const opt = (n) => {
  const i = args.indexOf(n);
  return i >= 0 ? args[i + 1] : undefined;
};
const dist = resolve(opt('--dist') ?? 'dist');
const out = resolve(opt('--out') ?? 'dist/image-bundles');
const minify = args.includes('--minify');

// name → [module under dist, entry code]. Every bundle exports main(): it reads
// process.argv.slice(2) like the program it replaces.
const ENTRIES = {
  // prepareCodeCache: run.cjs --write-cache runs one throwaway daemon start first, so its code is in the cache.
  daemon: ['firmware/appliance/image-daemon.js', (m) => `export { imageDaemonMain as main, prepareDaemonCodeCache as prepareCodeCache } from ${m};`],
  // The slot backend too: the QEMU upgrade scenario's test driver
  // (qemu/scenarios/upgrade/upgrade-driver.mjs) drives it from this bundle,
  // the code the device runs, instead of a second copy of dist/ in the image.
  'upgrade-boot': ['firmware/upgrade/image-boot.js', (m) => `export { upgradeBootMain as main } from ${m};\nexport { imageSlotBackend } from ${m.replace('image-boot.js', 'device-image.js')};`],
  // prepareCodeCache: run.cjs --write-cache evaluates the parts the web admin loads on first use.
  web: ['webui/server.js', (m) => `export { main, prepareCodeCache } from ${m};`],
  cli: [
    'firmware/cli.js',
    (m) => `import { main as cli } from ${m};
export async function main() {
  const code = await cli(process.argv.slice(2));
  process.exitCode = code;
  // As firmware/cli.ts does when run directly: do not hang on a leaked handle.
  setTimeout(() => process.exit(code), 2000).unref();
}`,
  ],
};

// From lib/NAME.cjs (the require() run.cjs gives a bundle resolves relative to it).
export const SQLITE_ADDON = '../node_modules/better-sqlite3/build/Release/better_sqlite3.node';

/** `require('bindings')('better_sqlite3.node')` inside better-sqlite3 → require(SQLITE_ADDON). */
const sqliteAddonPlugin = {
  name: 'pqgate-sqlite-addon',
  setup(b) {
    b.onResolve({ filter: /^bindings$/ }, (a) => {
      if (!/[\\/]better-sqlite3[\\/]/.test(a.importer)) throw new Error(`${a.importer}: 'bindings' outside better-sqlite3 is not handled by the bundle`);
      return { path: 'bindings', namespace: 'pqgate-sqlite-addon' };
    });
    b.onLoad({ filter: /^bindings$/, namespace: 'pqgate-sqlite-addon' }, () => ({
      loader: 'js',
      contents: `module.exports = function bindings(name) {
  if (name !== 'better_sqlite3.node') throw new Error('bindings: only better_sqlite3.node is bundled, not ' + name);
  return require(${JSON.stringify(SQLITE_ADDON)});
};`,
    }));
  },
};

const sizes = {};
for (const [name, [rel, entry]] of Object.entries(ENTRIES)) {
  const mod = join(dist, rel);
  if (!existsSync(mod)) {
    if (name === 'web') continue; // a build without the web admin
    throw new Error(`${mod} missing (the TypeScript build failed?)`);
  }
  const outfile = join(out, `${name}.cjs`);
  await build({
    stdin: { contents: entry(JSON.stringify(mod)), resolveDir: dist, sourcefile: `image-${name}-entry.js`, loader: 'js' },
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    outfile,
    external: ['*.node'],
    plugins: [sqliteAddonPlugin, mimeTypesPlugin],
    define: { 'import.meta.url': '__pqgate_bundle_url' },
    banner: { js: `'use strict';\nconst __pqgate_bundle_url = require('node:url').pathToFileURL(__filename).href;` },
    legalComments: 'eof',
    minify,
    keepNames: minify,
    logLevel: 'error',
  });
  // lib/run.cjs reads each bundle as latin1 (one byte, one character; no
  // UTF-8 decoding, and V8 keeps a one-byte source string): 40-60 ms less of
  // the web admin's start under QEMU TCG (docs/image.md "Round 6"). That is
  // the same text only for ASCII. esbuild escapes non-ASCII characters
  // everywhere except in tagged template literals (their raw text is
  // observable), so a character such as "·" in an html`...` template must be
  // written as \u00b7 in the source.
  const bytes = readFileSync(outfile);
  const at = bytes.findIndex((b) => b > 0x7f);
  if (at >= 0) {
    const context = bytes.subarray(Math.max(0, at - 60), at + 20).toString('utf8').replace(/\s+/g, ' ');
    throw new Error(`${name}.cjs: non-ASCII byte at offset ${at} (…${context}…): the image's runner reads bundles as latin1; write the character as a \\u escape in the source`);
  }
  sizes[name] = bytes.length;
}
process.stdout.write(Object.entries(sizes).map(([n, s]) => `${n}.cjs ${(s / 1024).toFixed(0)} KiB`).join(', ') + (minify ? ' (minified)' : '') + '\n');
