'use strict';
// Runs one of the image's bundled programs (image/lib/esbuild.mjs) with its
// V8 code cache (docs/image.md "Node start-up"):
//
//   node /usr/lib/pqgate/lib/run.cjs NAME ARGS...     daemon | web | upgrade-boot | cli
//   node /usr/lib/pqgate/lib/run.cjs --write-cache NAME...   (image build only)
//
// The bundle NAME.cjs is compiled as a vm.Script with NAME.cjs.cache as V8
// cachedData: bytecode made at image build time by --write-cache, which
// loads the bundle under the board's own node (qemu-user for arm64) and
// saves V8's code cache after the module bodies ran, so the functions they
// called are in it too. V8 checks the cache against the source and its own
// version and flags and rejects it when they differ; then the script is
// compiled from source as usual (a warning on stderr, nothing else changes).
// Node's NODE_COMPILE_CACHE cannot do this: it keys entries by absolute path,
// so it cannot be made at build time, and Node 22 writes it only at exit,
// which the daemon never reaches.
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

function compile(name, { useCache = true } = {}) {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(name)) throw new Error(`run.cjs: bad program name '${name}'`);
  const file = path.join(__dirname, `${name}.cjs`);
  // latin1: the bundles are ASCII (image/lib/esbuild.mjs refuses any other
  // byte), so this is their text, without UTF-8 decoding (docs/image.md "Round 6").
  const source = readFileSync(file, 'latin1');
  let cachedData;
  try {
    if (useCache) cachedData = readFileSync(`${file}.cache`);
  } catch {
    cachedData = undefined;
  }
  // CommonJS's own wrapper, on the first line so line numbers stay those of the file.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  if (cachedData && script.cachedDataRejected) process.stderr.write(`run.cjs: ${name}.cjs.cache rejected by V8 (different node or flags?): compiling from source\n`);
  const module = { exports: {}, filename: file };
  script.runInThisContext()(module.exports, createRequire(file), module, file, __dirname);
  return { file, script, exports: module.exports };
}

async function writeCache(names) {
  for (const name of names) {
    const { file, script, exports } = compile(name, { useCache: false });
    // A bundle that loads parts of itself on first use (web: express after it
    // has bound its ports) evaluates them first, and runs what every start
    // runs (daemon: one throwaway start; web: its first pages), so that code
    // is compiled, and cached, too.
    let warm;
    if (typeof exports.prepareCodeCache === 'function') warm = await exports.prepareCodeCache();
    const data = script.createCachedData();
    writeFileSync(`${file}.cache`, data, { mode: 0o644 });
    process.stdout.write(`${name}.cjs.cache ${Math.round(data.length / 1024)} KiB${warm === undefined ? '' : ` (warm-up: ${JSON.stringify(warm)})`}\n`);
  }
}

/** Start program NAME: its main() reads process.argv.slice(2), as when run directly. */
function main(name) {
  return compile(name).exports.main();
}

module.exports = { main, compile };

if (require.main === module) {
  const [, , name, ...rest] = process.argv;
  if (name === '--write-cache')
    writeCache(rest).catch((e) => {
      process.stderr.write(`run.cjs --write-cache: ${(e && e.stack) || e}\n`);
      process.exit(1);
    });
  else if (name) {
    process.argv.splice(2, 1);
    main(name).catch((e) => {
      process.stderr.write(`${name}: ${(e && e.stack) || e}\n`);
      process.exit(1);
    });
  } else {
    process.stderr.write('usage: run.cjs daemon|web|upgrade-boot|cli ARGS...\n');
    process.exit(2);
  }
}
