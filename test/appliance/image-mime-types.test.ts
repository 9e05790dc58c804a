/**
 * The image bundles' mime-types with its maps computed at build time
 * (image/lib/esbuild-mime-types.mjs): the patched module, bundled by
 * esbuild as the image does, answers exactly as the real one over all of
 * mime-db (every type, every extension, every file name express and send
 * would ask for), and a mime-types whose statements changed fails the build.
 */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a build script in JavaScript, no declarations
import { mimeTypesPlugin, patchMimeTypes } from '../../image/lib/esbuild-mime-types.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(REPO, 'package.json'));

interface MimeTypes {
  lookup(p: string): string | false;
  contentType(s: string): string | false;
  extension(t: string): string | false;
  charset(t: string): string | false;
  types: Record<string, string>;
  extensions: Record<string, string[]>;
  _extensionConflicts: unknown[];
}

async function bundled(): Promise<MimeTypes> {
  const r = await build({
    stdin: { contents: "module.exports = require('mime-types');", resolveDir: REPO, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    plugins: [mimeTypesPlugin],
    logLevel: 'silent',
  });
  const code = r.outputFiles[0]!.text;
  // The plugin ran: no populate loop at load, the maps are JSON in the bundle.
  // (esbuild renames a CommonJS module's `exports`.)
  expect(code).not.toMatch(/populateMaps\(exports\d*\.extensions, exports\d*\.types\)/);
  expect(code).toMatch(/exports\d*\.types = Object\.assign\([^,]*Object\.create\(null\), JSON\.parse\(/);
  const m = { exports: {} as MimeTypes };
  new Function('module', 'exports', 'require', code)(m, m.exports, require);
  return m.exports;
}

describe('mime-types with build-time maps (image bundles)', () => {
  it('answers as the real mime-types for every type and extension of mime-db', async () => {
    const real = require('mime-types') as MimeTypes;
    const db = require('mime-db') as Record<string, { extensions?: string[] }>;
    const m = await bundled();
    expect(m.types).toEqual(real.types);
    expect(m.extensions).toEqual(real.extensions);
    expect(m._extensionConflicts).toEqual(real._extensionConflicts);
    expect(Object.getPrototypeOf(m.types)).toBe(null);
    const exts = new Set<string>();
    for (const [type, e] of Object.entries(db)) {
      expect(m.extension(type)).toBe(real.extension(type));
      expect(m.contentType(type)).toBe(real.contentType(type));
      expect(m.charset(type)).toBe(real.charset(type));
      for (const x of e.extensions ?? []) exts.add(x);
    }
    expect(exts.size).toBeGreaterThan(1000);
    for (const x of [...exts, 'html', 'json', 'css', 'js', 'svg', 'png', 'pqb', 'no-such-ext', '']) {
      for (const q of [x, `.${x}`, `dir/file.${x}`, `FILE.${x.toUpperCase()}`]) {
        expect(m.lookup(q)).toBe(real.lookup(q));
        expect(m.contentType(q)).toBe(real.contentType(q));
      }
    }
  });

  it('refuses a mime-types whose statements changed', () => {
    const real = require('mime-types') as MimeTypes;
    expect(() => patchMimeTypes('exports.types = Object.create(null)\n', real)).toThrow(/expected "exports\.extensions = Object\.create\(null\)" once/);
  });
});
