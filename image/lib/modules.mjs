// Kernel module selection for the image: resolve module names (as in
// board.json, `-` and `_` alike) and directory prefixes to module files and
// their dependency closure from a modules.dep (made by `depmod -b` on the
// unpacked kernel package), printed dependencies-first: the order a stage-1
// init must insmod them in.
//
//   node modules.mjs MODULES_DEP [--dir kernel/crypto ...] NAME...
//
// Exits non-zero naming any module that is neither in modules.dep nor built in
// (modules.builtin beside it): a typo in a board's module list must fail the
// build rather than the boot.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

const [depFile, ...rest] = process.argv.slice(2);
if (!depFile) {
  console.error('usage: modules.mjs MODULES_DEP [--dir PREFIX ...] NAME...');
  process.exit(2);
}
const norm = (s) => s.replace(/-/g, '_');
const modName = (path) => norm(basename(path).replace(/\.ko(\.(xz|zst|gz))?$/, ''));

/** path -> direct dependencies (paths), in modules.dep order. */
const deps = new Map();
const byName = new Map();
for (const line of readFileSync(depFile, 'utf8').split('\n')) {
  const i = line.indexOf(':');
  if (i < 0) continue;
  const path = line.slice(0, i);
  const d = line.slice(i + 1).trim();
  deps.set(path, d ? d.split(/\s+/) : []);
  byName.set(modName(path), path);
}
const builtinFile = join(dirname(depFile), 'modules.builtin');
const builtin = new Set(existsSync(builtinFile) ? readFileSync(builtinFile, 'utf8').split('\n').filter(Boolean).map(modName) : []);

const wanted = [];
const missing = [];
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--dir') {
    const prefix = rest[++i].replace(/\/?$/, '/');
    const hits = [...deps.keys()].filter((p) => p.startsWith(prefix)).sort();
    if (hits.length === 0) missing.push(prefix);
    wanted.push(...hits);
    continue;
  }
  const n = norm(rest[i]);
  const p = byName.get(n);
  if (p) wanted.push(p);
  else if (!builtin.has(n)) missing.push(rest[i]);
}
if (missing.length) {
  console.error(`unknown kernel modules: ${missing.join(', ')}`);
  process.exit(1);
}

// Depth-first post-order: every module after its dependencies.
const out = [];
const seen = new Set();
const visit = (p) => {
  if (seen.has(p)) return;
  seen.add(p);
  // modules.dep lists the full closure; visiting it keeps the order right anyway.
  for (const d of deps.get(p) ?? []) visit(d);
  out.push(p);
};
for (const p of wanted) visit(p);
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
