/**
 * config-import: the configuration importer's validation
 * (firmware/store/validate.ts: validateDocument for plain documents and
 * backups incl. migration, validatePatch for merge patches), fed with
 * mutated exports of a real ConfigStore. Structure-aware mutators edit the
 * parsed JSON (replace a value with an edge value, delete or add keys,
 * prototype-polluting key names, huge arrays) besides the byte mutations.
 * Only ConfigValidationError is acceptable. Invariant: an accepted document
 * re-validates to the same canonical document (validation is idempotent).
 */
import { validateDocument, validatePatch, type ValidateContext } from '../../firmware/store/validate.js';
import { ConfigValidationError } from '../../firmware/config/schema.js';
import { stableJson, type ConfigDoc } from '../../firmware/store/document.js';
import { isPreset } from '../../firmware/presets/presets.js';
import { loadCorpus } from '../lib/corpus.js';
import { errSig, InvariantError, type FuzzTarget } from '../lib/target.js';
import type { CustomMutator } from '../lib/mutate.js';

const dec = new TextDecoder();
const enc = new TextEncoder();

const vctx: ValidateContext = {
  // Deterministic "stored PSK" answers so the placeholder path is exercised.
  hasStoredPsk: (name) => name.length % 2 === 0,
  isPreset,
};

const EDGE: unknown[] = [
  null, true, false, 0, -1, 1, 65535, 65536, 2 ** 31, 2 ** 53, -0, 1e308, 0.5, '', ' ', 'x'.repeat(300), '0x', '%any', 'dynamic', '0.0.0.0', '::', '255.255.255.255/32',
  '10.0.0.0/8', '2001:db8::/129', 'fqdn:', '@', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'route', 'policy', '\u0000', '\ud800', '../../etc/passwd', [], [[]], {}, { a: 1 }, ['0.0.0.0'],
  '__proto__', 'constructor',
];

function nodes(v: unknown, out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [], depth = 0): typeof out {
  if (depth > 8 || v === null || typeof v !== 'object') return out;
  if (Array.isArray(v))
    v.forEach((x, i) => {
      out.push({ parent: v, key: i });
      nodes(x, out, depth + 1);
    });
  else
    for (const k of Object.keys(v)) {
      out.push({ parent: v as Record<string, unknown>, key: k });
      nodes((v as Record<string, unknown>)[k], out, depth + 1);
    }
  return out;
}

function jsonMutator(edit: (doc: unknown, a: number, b: number) => unknown): CustomMutator {
  return (input, a, b) => {
    let doc: unknown;
    try {
      doc = JSON.parse(dec.decode(input));
    } catch {
      return input;
    }
    return enc.encode(JSON.stringify(edit(doc, a, b)));
  };
}

const structural: CustomMutator[] = [
  jsonMutator((doc, a, b) => {
    const ns = nodes(doc);
    if (!ns.length) return EDGE[b % EDGE.length];
    const n = ns[a % ns.length]!;
    (n.parent as Record<string | number, unknown>)[n.key] = structuredClone(EDGE[b % EDGE.length]);
    return doc;
  }),
  jsonMutator((doc, a) => {
    const ns = nodes(doc);
    if (!ns.length) return doc;
    const n = ns[a % ns.length]!;
    if (Array.isArray(n.parent)) n.parent.splice(n.key as number, 1);
    else delete n.parent[n.key as string];
    return doc;
  }),
  jsonMutator((doc, a, b) => {
    const objs = nodes(doc)
      .map((n) => (n.parent as Record<string | number, unknown>)[n.key])
      .filter((x): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x));
    const target = objs.length ? objs[a % objs.length]! : (doc as Record<string, unknown>);
    if (!target || typeof target !== 'object') return doc;
    const keys = ['__proto__', 'constructor', 'prototype', 'psk', 'name', 'schema_version', 'tunnel_presets', 'version', 'tunnels', 'extra_key', 'auth', 'mode', 'inside_addr'];
    Object.defineProperty(target, keys[b % keys.length]!, { value: structuredClone(EDGE[(b >> 4) % EDGE.length]), enumerable: true, configurable: true, writable: true });
    return doc;
  }),
  jsonMutator((doc, a, b) => {
    const arrs = nodes(doc)
      .map((n) => (n.parent as Record<string | number, unknown>)[n.key])
      .filter((x): x is unknown[] => Array.isArray(x) && x.length > 0);
    if (!arrs.length) return doc;
    const arr = arrs[a % arrs.length]!;
    const times = [1, 2, 8, 1100][b % 4]!;
    for (let i = 0; i < times && arr.length < 1200; i++) arr.push(structuredClone(arr[i % arr.length]));
    return doc;
  }),
];

interface ConfigCtx {
  current: { doc: ConfigDoc; presets: Record<string, string> };
}

export const configImport: FuzzTarget<ConfigCtx> = {
  name: 'config-import',
  description: 'JSON configuration importer: validateDocument (plain, backup + migration) and validatePatch; idempotent canonical form',
  setup() {
    const first = loadCorpus('config-import')[0];
    if (!first) throw new Error('config-import: empty corpus');
    const v = validateDocument(dec.decode(first), vctx);
    return { current: { doc: v.doc, presets: v.presets ?? {} } };
  },
  run(input, ctx) {
    const text = dec.decode(input);
    const sigs: string[] = [];
    try {
      const v = validateDocument(text, vctx);
      const again = validateDocument(JSON.stringify(v.doc), vctx);
      if (stableJson(again.doc) !== stableJson(v.doc)) throw new InvariantError(`re-validating the canonical document changes it:\n${stableJson(v.doc).slice(0, 300)}\n${stableJson(again.doc).slice(0, 300)}`);
      sigs.push(`ok:${v.doc.tunnels.length}`);
    } catch (e) {
      if (!(e instanceof ConfigValidationError)) throw e;
      sigs.push(errSig(e) + (e.errors[0]?.path.replace(/\[\d+\]/g, '[]').slice(0, 40) ?? ''));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return sigs.join('|');
    }
    // The same value as a patch over the first corpus document.
    const patch = parsed && typeof parsed === 'object' && !Array.isArray(parsed) && 'tunnels' in parsed && Array.isArray((parsed as { tunnels: unknown }).tunnels)
      ? { ...(parsed as object), tunnels: Object.fromEntries(((parsed as { tunnels: unknown[] }).tunnels).map((t, i) => [String((t as { name?: unknown })?.name ?? `t${i}`), t])) }
      : parsed;
    try {
      const v = validatePatch(patch, ctx.current, vctx);
      sigs.push(`patch-ok:${v.doc.tunnels.length}`);
    } catch (e) {
      if (!(e instanceof ConfigValidationError)) throw e;
      sigs.push('patch-' + errSig(e));
    }
    return sigs.join('|');
  },
  mutators: structural,
  maxLen: 262144,
};
