/**
 * Structural diff of two configuration documents, with JSON paths as the
 * validator prints them (`tunnels[1].mss`, `listen`). Tunnels are matched by
 * name, so inserting a tunnel does not report every later tunnel as changed;
 * a change of order among tunnels present on both sides is one `move` entry.
 * Lists (proposals, selectors, listen) compare as whole values.
 *
 * PSKs never appear: documents are compared without them, and a changed key
 * is reported only as `{ path: 'tunnels[i].psk', op: 'change', secret: true }`
 * when the callers' secret references differ.
 */
import { TUNNEL_FIELDS, TOP_FIELDS, stableJson, type ConfigDoc, type TunnelDoc } from './document.js';

export interface DiffEntry {
  path: string;
  op: 'add' | 'remove' | 'change' | 'move';
  /** Tunnel the entry concerns (paths alone are index-based). */
  tunnel?: string;
  before?: unknown;
  after?: unknown;
  /** A secret changed; neither value is included. */
  secret?: true;
}

export interface DiffSide {
  doc: ConfigDoc;
  presets?: Record<string, string>;
  /** Tunnel name → opaque secret reference (ids); compared, never shown. */
  secretRefs?: Record<string, unknown>;
}

function same(a: unknown, b: unknown): boolean {
  return stableJson(a) === stableJson(b);
}

function stripPsk(t: TunnelDoc): TunnelDoc {
  const { psk: _p, ...rest } = t;
  return rest;
}

export function diffDocuments(a: DiffSide | undefined, b: DiffSide): DiffEntry[] {
  const out: DiffEntry[] = [];
  const A = a?.doc;
  const B = b.doc;
  for (const k of TOP_FIELDS) {
    const va = A?.[k];
    const vb = B[k];
    if (same(va, vb)) continue;
    if (va === undefined) out.push({ path: k, op: 'add', after: vb });
    else if (vb === undefined) out.push({ path: k, op: 'remove', before: va });
    else out.push({ path: k, op: 'change', before: va, after: vb });
  }

  const aTunnels = A?.tunnels ?? [];
  const aIndex = new Map(aTunnels.map((t, i) => [t.name, i]));
  const bNames = new Set(B.tunnels.map((t) => t.name));
  aTunnels.forEach((t, i) => {
    if (!bNames.has(t.name)) out.push({ path: `tunnels[${i}]`, op: 'remove', tunnel: t.name, before: stripPsk(t) });
  });
  const commonA = aTunnels.filter((t) => bNames.has(t.name)).map((t) => t.name);
  const commonB = B.tunnels.filter((t) => aIndex.has(t.name)).map((t) => t.name);
  if (!same(commonA, commonB)) out.push({ path: 'tunnels', op: 'move', before: commonA, after: commonB });

  B.tunnels.forEach((tb, j) => {
    const i = aIndex.get(tb.name);
    if (i === undefined) {
      out.push({ path: `tunnels[${j}]`, op: 'add', tunnel: tb.name, after: stripPsk(tb) });
      return;
    }
    const ta = aTunnels[i]!;
    for (const f of TUNNEL_FIELDS) {
      if (f === 'psk') continue;
      const va = ta[f];
      const vb = tb[f];
      if (same(va, vb)) continue;
      const path = `tunnels[${j}].${f}`;
      if (va === undefined) out.push({ path, op: 'add', tunnel: tb.name, after: vb });
      else if (vb === undefined) out.push({ path, op: 'remove', tunnel: tb.name, before: va });
      else out.push({ path, op: 'change', tunnel: tb.name, before: va, after: vb });
    }
    const ra = a?.secretRefs?.[tb.name];
    const rb = b.secretRefs?.[tb.name];
    if (a?.secretRefs && b.secretRefs && !same(ra, rb)) out.push({ path: `tunnels[${j}].psk`, op: 'change', tunnel: tb.name, secret: true });
  });

  const pa = a?.presets ?? {};
  const pb = b.presets ?? {};
  for (const name of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
    if (pa[name] === pb[name]) continue;
    const path = `tunnel_presets.${name}`;
    if (pa[name] === undefined) out.push({ path, op: 'add', tunnel: name, after: pb[name] });
    else if (pb[name] === undefined) out.push({ path, op: 'remove', tunnel: name, before: pa[name] });
    else out.push({ path, op: 'change', tunnel: name, before: pa[name], after: pb[name] });
  }
  return out;
}

const j = (v: unknown) => JSON.stringify(v);

/** One line per entry: `~ tunnels[0].mss: 1360 → 1400`, `+ tunnels[1] (b2): {...}`, `- keylog: "/x"`. */
export function formatDiff(entries: readonly DiffEntry[]): string {
  return entries
    .map((e) => {
      const where = e.tunnel !== undefined && /^tunnels\[\d+\]$/.test(e.path) ? `${e.path} (${e.tunnel})` : e.path;
      switch (e.op) {
        case 'add':
          return `+ ${where}: ${j(e.after)}`;
        case 'remove':
          return `- ${where}: ${j(e.before)}`;
        case 'move':
          return `~ ${where}: order ${j(e.before)} → ${j(e.after)}`;
        case 'change':
          return e.secret ? `~ ${where}: (secret changed)` : `~ ${where}: ${j(e.before)} → ${j(e.after)}`;
      }
    })
    .join('\n');
}
