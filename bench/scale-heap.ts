/**
 * Where the bytes of a pqgate hub go: summarize V8 heap snapshots written by
 * `npm run bench:scale -- --snapshot DIR` (bench/scale-responder.ts writes
 * one before the load, r0, and one after, r1).
 *
 *   node dist/bench/scale-heap.js AFTER.heapsnapshot [BEFORE.heapsnapshot] [--per N] [--top K]
 *
 * Groups heap objects by type and constructor/name (the self sizes V8
 * reports, as Chrome DevTools' "Summary" view) and prints the largest
 * groups, with the difference to BEFORE and the bytes / count per tunnel
 * when --per N (the number of tunnels) is given. Self sizes only: an
 * object's backing store outside the V8 heap (ArrayBuffer contents,
 * OpenSSL contexts) is not in a heap snapshot; bench:scale reports those as
 * `external` and in the RSS.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** A heap snapshot and the layout of its flat node and edge arrays (field strides and offsets). */
function load(path: string) {
  const s = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  return {
    s,
    types: s.snapshot.meta.node_types[0],
    etypes: s.snapshot.meta.edge_types[0],
    w: f.length,
    ew: ef.length,
    iType: f.indexOf('type'),
    iName: f.indexOf('name'),
    iSize: f.indexOf('self_size'),
    iEdges: f.indexOf('edge_count'),
  };
}

/**
 * --retainers NAME: for objects whose constructor/name is NAME, who holds
 * them: `parentType:parentName.edge` with counts and the retained objects'
 * self sizes (the question "which field keeps these Uint8Arrays alive").
 * `--retainers type=T` selects by node type instead (e.g. `type=concatenated string`).
 */
function retainers(path: string, target: string): Map<string, { count: number; size: number }> {
  const { s, types, etypes, w, ew, iType, iName, iSize, iEdges } = load(path);
  const out = new Map<string, { count: number; size: number }>();
  // Each object once, under the first strong reference found (shared objects are not counted per holder).
  const seen = new Set<number>();
  let e = 0;
  for (let i = 0; i < s.nodes.length; i += w) {
    const n = s.nodes[i + iEdges]!;
    const pName = s.strings[s.nodes[i + iName]!] ?? '?';
    const pType = types[s.nodes[i + iType]!]!;
    for (let k = 0; k < n; k++, e += ew) {
      const et = etypes[s.edges[e]!]!;
      if (et === 'weak') continue;
      const to = s.edges[e + 2]!;
      const en = et === 'element' || et === 'hidden' ? `[${et}]` : (s.strings[s.edges[e + 1]!] ?? '?');
      if (target.startsWith('type=') ? types[s.nodes[to + iType]!] !== target.slice(5) : s.strings[s.nodes[to + iName]!] !== target) continue;
      if (en === '__proto__' || seen.has(to)) continue;
      seen.add(to);
      const key = `${pType}:${pName.slice(0, 40)}.${en}`;
      const g = out.get(key) ?? { count: 0, size: 0 };
      g.count++;
      g.size += s.nodes[to + iSize]!;
      out.set(key, g);
    }
  }
  return out;
}

type Groups = Map<string, { count: number; size: number }>;

function groups(path: string): Groups {
  const s = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const out: Groups = new Map();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    let name = s.strings[s.nodes[i + iName]!] ?? '?';
    // Strings and code are named by their content: group them by type only.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'code' || type === 'number' || type === 'hidden') name = '';
    if (name.length > 60) name = name.slice(0, 57) + '...';
    const key = `${type}:${name}`;
    const g = out.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += s.nodes[i + iSize]!;
    out.set(key, g);
  }
  return out;
}

const args = process.argv.slice(2);
const flag = (n: string): string | undefined => {
  const i = args.indexOf(n);
  return i >= 0 ? args[i + 1] : undefined;
};
const files = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--')));
if (files.length === 0) {
  console.error('usage: scale-heap AFTER.heapsnapshot [BEFORE.heapsnapshot] [--per N] [--top K]');
  process.exit(2);
}
/**
 * --stores: off-heap ArrayBuffer backing stores (each also costs a
 * BackingStore and an extension record in malloc), grouped by the field
 * that holds the view on them: `holder.field <- ArrayBuffer <- store`.
 */
function stores(path: string): Map<string, { count: number; size: number }> {
  const { s, types, etypes, w, ew, iType, iName, iSize, iEdges } = load(path);
  // Reverse edges (strong only): to -> [from, edge index].
  const rev = new Map<number, [number, number][]>();
  let e = 0;
  for (let i = 0; i < s.nodes.length; i += w) {
    const n = s.nodes[i + iEdges]!;
    for (let k = 0; k < n; k++, e += ew) {
      if (etypes[s.edges[e]!] === 'weak') continue;
      const to = s.edges[e + 2]!;
      let l = rev.get(to);
      if (!l) rev.set(to, (l = []));
      l.push([i, e]);
    }
  }
  const name = (i: number): string => s.strings[s.nodes[i + iName]!] ?? '?';
  const edgeName = (ei: number): string => {
    const et = etypes[s.edges[ei]!]!;
    return et === 'element' || et === 'hidden' ? `[${et}]` : (s.strings[s.edges[ei + 1]!] ?? '?');
  };
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < s.nodes.length; i += w) {
    if (types[s.nodes[i + iType]!] !== 'native' || !name(i).includes('JSArrayBufferData')) continue;
    const holders: string[] = [];
    for (const [ab] of rev.get(i) ?? []) {
      for (const [view, ve] of rev.get(ab) ?? []) {
        if (name(view) === 'ArrayBuffer') continue;
        const up = (rev.get(view) ?? []).filter(([h]) => types[s.nodes[h + iType]!] !== 'hidden' || true);
        const first = up[0];
        holders.push(first ? `${name(first[0]).slice(0, 30)}.${edgeName(first[1])} <- ${name(view)}.${edgeName(ve)}` : `${name(view)}.${edgeName(ve)}`);
        if (holders.length > 0) break;
      }
      if (holders.length > 0) break;
    }
    const key = holders[0] ?? '(no view)';
    const g = out.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += s.nodes[i + iSize]!;
    out.set(key, g);
  }
  return out;
}

if (args.includes('--stores')) {
  const r = [...stores(files[0]!).entries()].sort((x, y) => y[1].count - x[1].count);
  for (const [k, g] of r.slice(0, Number(flag('--top') ?? '40'))) console.log(`${k.padEnd(80)} ${String(g.count).padStart(8)} ${String(g.size).padStart(10)}`);
  process.exit(0);
}
const rt = flag('--retainers');
if (rt) {
  const r = [...retainers(files[0]!, rt).entries()].sort((x, y) => y[1].count - x[1].count);
  for (const [k, g] of r.slice(0, Number(flag('--top') ?? '40'))) console.log(`${k.padEnd(70)} ${String(g.count).padStart(8)} ${String(g.size).padStart(10)}`);
  process.exit(0);
}
const after = groups(files[0]!);
const before = files[1] ? groups(files[1]) : new Map() as Groups;
const per = Number(flag('--per') ?? '0');
const top = Number(flag('--top') ?? '40');
const rows = [...after.entries()].map(([k, g]) => {
  const b = before.get(k) ?? { count: 0, size: 0 };
  return { k, count: g.count - b.count, size: g.size - b.size };
});
rows.sort((x, y) => y.size - x.size);
const total = rows.reduce((n, r) => n + r.size, 0);
console.log(`heap delta: ${(total / 1048576).toFixed(2)} MiB${per ? `, ${(total / per).toFixed(0)} B per tunnel` : ''}`);
console.log(`${'type:name'.padEnd(64)} ${'count'.padStart(9)} ${'bytes'.padStart(11)}${per ? `${'n/tunnel'.padStart(9)} ${'B/tunnel'.padStart(9)}` : ''}`);
for (const r of rows.slice(0, top)) {
  console.log(`${r.k.padEnd(64)} ${String(r.count).padStart(9)} ${String(r.size).padStart(11)}${per ? `${(r.count / per).toFixed(2).padStart(9)} ${(r.size / per).toFixed(0).padStart(9)}` : ''}`);
}
