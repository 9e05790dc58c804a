/**
 * Tunnel presets as data (firmware/presets/*.json): each is a partial tunnel
 * document for one kind of peer, with a `sources` entry per field saying
 * where the value comes from (/work/shared/spec/vendor-semantics.md and the
 * vendor documents it cites), how sure that is (doc / 3p / gap) and, where
 * sources disagree, a `disagreement` note.
 *
 * applyPreset() merges the user's fields over the preset (the user wins;
 * `null` drops a preset field so the daemon default applies), fills
 * templates such as Cloudflare's `{tunnel_id}.{account_id}.ipsec.cloudflare.com`
 * from params, and validates the result with parseDaemonConfig. Errors
 * carry the field's path within the tunnel (`mss`, `proposals[0]`), or
 * `params.<name>` / `preset` for the preset's own inputs.
 */
import cloudflare from './cloudflare.json' with { type: 'json' };
import cisco8000 from './cisco-8000.json' with { type: 'json' };
import fortios from './fortios.json' with { type: 'json' };
import strongswan from './strongswan.json' with { type: 'json' };
import { ConfigValidationError, parseDaemonConfig } from '../config/schema.js';
import type { TunnelConfig } from '../config/types.js';
import { ConfigError } from '../util/errors.js';
import { canonicalTunnel, TUNNEL_FIELDS, type TunnelDoc } from '../store/document.js';

export interface PresetSource {
  source: string;
  confidence: 'doc' | '3p' | 'gap';
  disagreement?: string;
  note?: string;
}

export interface PresetParam {
  description: string;
  pattern: string;
}

export interface Preset {
  name: string;
  title: string;
  description: string;
  params: Record<string, PresetParam>;
  /** Fields the user must supply (checked before validation, for a clearer message). */
  requires: string[];
  /** Partial tunnel document; string values may contain {param} templates. */
  tunnel: Record<string, unknown>;
  sources: Record<string, PresetSource>;
  notes: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Structural check of a preset file, so a broken data file fails loudly at load, not at use. */
export function checkPresetData(raw: unknown): Preset {
  const bad = (m: string) => new Error(`preset data: ${m}`);
  if (!isObj(raw) || typeof raw.name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(raw.name)) throw bad('missing or invalid name');
  const n = raw.name;
  for (const k of ['title', 'description'] as const) if (typeof raw[k] !== 'string') throw bad(`${n}: ${k} must be a string`);
  if (!isObj(raw.tunnel) || !isObj(raw.sources) || !isObj(raw.params) || !Array.isArray(raw.requires) || !Array.isArray(raw.notes)) throw bad(`${n}: tunnel, sources, params, requires, notes required`);
  for (const k of Object.keys(raw.tunnel)) {
    if (!(TUNNEL_FIELDS as readonly string[]).includes(k) || k === 'name' || k === 'psk') throw bad(`${n}: tunnel.${k} is not a presettable tunnel field`);
    const s = raw.sources[k];
    if (!isObj(s) || typeof s.source !== 'string' || s.source.length < 10 || !['doc', '3p', 'gap'].includes(s.confidence as string))
      throw bad(`${n}: sources.${k} needs a source text and a confidence (doc, 3p, gap)`);
  }
  for (const k of Object.keys(raw.sources)) if (!(k in raw.tunnel)) throw bad(`${n}: sources.${k} has no tunnel field`);
  for (const [p, d] of Object.entries(raw.params)) if (!isObj(d) || typeof d.pattern !== 'string' || typeof d.description !== 'string') throw bad(`${n}: params.${p} needs description and pattern`);
  return raw as unknown as Preset;
}

const PRESETS: ReadonlyMap<string, Preset> = new Map(
  [cloudflare, cisco8000, fortios, strongswan].map((raw) => {
    const p = checkPresetData(raw);
    return [p.name, p] as const;
  }),
);

export function presetNames(): string[] {
  return [...PRESETS.keys()];
}

export function isPreset(name: string): boolean {
  return PRESETS.has(name);
}

export function getPreset(name: string): Preset | undefined {
  const p = PRESETS.get(name);
  return p ? structuredClone(p) : undefined;
}

export interface ApplyPresetOptions {
  /** Values for the preset's {templates} (Cloudflare: tunnel_id, account_id). */
  params?: Record<string, string>;
  /** The document's listen addresses (local_addr must be covered). Default: 0.0.0.0. */
  listen?: string[];
}

export interface PresetResult {
  preset: string;
  /** Canonical tunnel document (with the PSK given in the overrides). */
  tunnel: TunnelDoc;
  /** The validated engine configuration. */
  config: TunnelConfig;
}

function fillTemplates(v: unknown, params: Record<string, string>, used: Set<string>): unknown {
  if (typeof v === 'string') return v.replace(/\{([a-z_]+)\}/g, (_m, k: string) => (used.add(k), params[k] ?? `{${k}}`));
  if (Array.isArray(v)) return v.map((x) => fillTemplates(x, params, used));
  return v;
}

/** Re-anchor `tunnels[0].x` → `x` (and keep other paths, e.g. `listen`). */
function reanchor(e: ConfigError): ConfigError {
  const m = /^tunnels\[0\]\.?(.*)$/.exec(e.path);
  if (!m) return e;
  const path = m[1] === '' ? '(tunnel)' : m[1]!;
  return new ConfigError(path, e.message.slice(e.path.length + 2));
}

/** Preset ← overrides, validated. Throws ConfigValidationError listing every problem. */
export function applyPreset(name: string, overrides: Record<string, unknown>, opts: ApplyPresetOptions = {}): PresetResult {
  const preset = PRESETS.get(name);
  if (!preset) throw new ConfigValidationError([new ConfigError('preset', `unknown preset '${String(name).slice(0, 64)}' (known: ${presetNames().join(', ')})`)]);
  const errors: ConfigError[] = [];
  if (!isObj(overrides)) throw new ConfigValidationError([new ConfigError('(tunnel)', 'overrides must be an object of tunnel fields')]);
  const params = opts.params ?? {};
  for (const [k, v] of Object.entries(params)) {
    const def = preset.params[k];
    if (!def) errors.push(new ConfigError(`params.${k.slice(0, 64)}`, `preset '${name}' takes no such parameter`));
    else if (typeof v !== 'string' || !new RegExp(def.pattern).test(v)) errors.push(new ConfigError(`params.${k}`, `must match ${def.pattern} (${def.description})`));
  }
  const merged: Obj = {};
  const used = new Set<string>();
  for (const [k, v] of Object.entries(preset.tunnel)) if (!(k in overrides)) merged[k] = fillTemplates(v, params, used);
  for (const [k, v] of Object.entries(overrides)) if (v !== null) merged[k] = v;
  for (const k of used)
    if (params[k] === undefined) errors.push(new ConfigError(`params.${k}`, `is required by preset '${name}' (${preset.params[k]?.description ?? 'template value'}) unless the field using it is given`));
  for (const k of preset.requires) if (merged[k] === undefined) errors.push(new ConfigError(k, `is required by preset '${name}'`));
  // Order the keys as documented, so the stored tunnel reads naturally.
  const ordered: Obj = {};
  for (const k of TUNNEL_FIELDS) if (merged[k] !== undefined) ordered[k] = merged[k];
  for (const k of Object.keys(merged)) if (!(k in ordered)) ordered[k] = merged[k];
  let config: TunnelConfig | undefined;
  try {
    // A disabled tunnel is validated all the same (parseDaemonConfig would skip it).
    const { enabled, ...rest } = ordered;
    const doc = { ...(opts.listen ? { listen: opts.listen } : {}), tunnels: [typeof enabled === 'boolean' ? rest : ordered] };
    config = parseDaemonConfig(doc).tunnels[0];
  } catch (e) {
    if (!(e instanceof ConfigValidationError)) throw e;
    const seen = new Set(errors.map((x) => x.path));
    for (const x of e.errors.map(reanchor)) if (!seen.has(x.path) || !/is required/.test(x.message)) errors.push(x);
  }
  if (errors.length || !config) throw new ConfigValidationError(errors.length ? errors : [new ConfigError('(tunnel)', 'not validated')]);
  return { preset: name, tunnel: canonicalTunnel(ordered), config };
}
