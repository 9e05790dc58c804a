// esbuild plugin for the image's bundles (image/lib/esbuild.mjs): mime-types
// with its maps computed at build time.
//
// Why: mime-types (express, send, accepts, type-is) builds its extension ↔
// type maps from mime-db when it is loaded (populateMaps, ~2,500 types).
// That is ~7 ms on the build machine but 0.15-0.2 s of the web admin's start
// under QEMU TCG, on the boot's critical path (issue 7, docs/image.md). The
// maps depend on nothing but mime-db, so the bundle carries the maps the
// real module built on the build machine (JSON, which V8 parses far faster
// than it runs the loop) and skips the loop; everything else in the module
// is unchanged. Each patched statement must appear exactly once: a new
// mime-types version that changes them fails the build instead of being
// patched wrongly. test/appliance/image-mime-types.test.ts compares the
// patched module with the real one over all of mime-db.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/** Source of mime-types/index.js at `path` with the maps of `real` (the module loaded from the same file). */
export function patchMimeTypes(source, real) {
  const lit = (v) => `JSON.parse(${JSON.stringify(JSON.stringify(v))})`;
  const edits = [
    ['exports.extensions = Object.create(null)', `exports.extensions = Object.assign(Object.create(null), ${lit(real.extensions)})`],
    ['exports.types = Object.create(null)', `exports.types = Object.assign(Object.create(null), ${lit(real.types)})`],
    ['exports._extensionConflicts = []', `exports._extensionConflicts = ${lit(real._extensionConflicts)}`],
    ['populateMaps(exports.extensions, exports.types)', '/* maps computed at image build (image/lib/esbuild-mime-types.mjs) */'],
  ];
  let out = source;
  for (const [from, to] of edits) {
    const n = out.split(from).length - 1;
    if (n !== 1) throw new Error(`mime-types: expected "${from}" once in index.js, found it ${n} times (new version? update image/lib/esbuild-mime-types.mjs)`);
    out = out.replace(from, () => to);
  }
  return out;
}

export const mimeTypesPlugin = {
  name: 'pqgate-mime-types-maps',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]mime-types[\\/]index\.js$/ }, (a) => {
      const real = createRequire(a.path)(a.path);
      return { contents: patchMimeTypes(readFileSync(a.path, 'utf8'), real), loader: 'js', resolveDir: dirname(a.path) };
    });
  },
};
