// Builds native/build/Release/pqtun.node with node-gyp, offline.
//
// node-gyp downloads Node's headers unless told where they are; the headers of
// the running Node are installed beside it (<prefix>/include/node, e.g. the
// Debian/NodeSource package puts them in /usr/include/node), so we pass
// --nodedir=<prefix>. node-gyp itself comes bundled with npm: npm exports its
// path as npm_config_node_gyp to package scripts; otherwise we look beside npm.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const prefix = resolve(dirname(process.execPath), '..');

const gypCandidates = [
  process.env.npm_config_node_gyp,
  join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  join(here, '../node_modules/node-gyp/bin/node-gyp.js'),
].filter((p) => p && existsSync(p));
if (gypCandidates.length === 0) {
  console.error('build:native: node-gyp not found (it ships with npm; set npm_config_node_gyp)');
  process.exit(1);
}

const args = [gypCandidates[0], 'rebuild', '--directory', here];
const nodedir = process.env.npm_config_nodedir || prefix;
if (existsSync(join(nodedir, 'include/node/node_api.h'))) args.push(`--nodedir=${nodedir}`);
else console.error(`build:native: no headers under ${nodedir}/include/node; node-gyp will try to download them`);
if (!process.argv.includes('--verbose')) args.push('--silent');

const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
