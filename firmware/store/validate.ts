/**
 * Turning whatever a caller hands the store (a JSON text, a configuration
 * document, a backup of any schema version, or a patch) into a canonical
 * document, or into one ConfigValidationError that lists every problem with
 * its field path. parseDaemonConfig (config/schema.ts) is the authority on
 * the document; the store adds its own checks (backup metadata, patch
 * shape, limits) and reports them in the same list.
 *
 * Tunnels given without `psk` keep the key the store holds for a tunnel of
 * the same name, so a secret-free export can be edited and applied back.
 * Validation never reads stored secrets: such tunnels are validated with a
 * placeholder key (the stored one was validated when it was set).
 */
import { ConfigValidationError, parseDaemonConfig } from '../config/schema.js';
import { ConfigError } from '../util/errors.js';
import { BACKUP_KEYS, TOP_FIELDS, TUNNEL_FIELDS, canonicalDocument, type ConfigDoc } from './document.js';
import { migrateDocument } from './doc-migrations.js';

type Obj = Record<string, unknown>;

export const MAX_TUNNELS = 1024;
/**
 * Keys parseDaemonConfig accepts (config/schema.ts) that the store's schema
 * (document.ts TUNNEL_FIELDS / TOP_FIELDS) cannot hold are refused with
 * their path instead of being lost. Since schema v4 the store holds every
 * key of docs/config.md, so this only fires if the daemon's parser learns a
 * key before the store gets a migration for it.
 */
const STORE_LACKS = 'not held by the configuration store of this firmware yet (use `pqgate daemon --config FILE` for it)';
/** Stands in for a stored PSK during validation; never stored or shown. */
const PLACEHOLDER_PSK = 'stored-psk-placeholder-0123456789';

export interface ValidateContext {
  /** True if the store holds a PSK for a tunnel of this name. */
  hasStoredPsk(name: string): boolean;
  isPreset(name: string): boolean;
}

export interface ValidatedInput {
  doc: ConfigDoc;
  /** Presets given by the input (backups, patches); undefined = not specified. */
  presets: Record<string, string> | undefined;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** JSON text → value; a syntax error is reported by position only (the text may hold a PSK). */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    let where = '';
    if (m) {
      const before = text.slice(0, Number(m[1]));
      where = ` at line ${before.split('\n').length}, column ${Number(m[1]) - before.lastIndexOf('\n')}`;
    }
    throw new ConfigValidationError([new ConfigError('(document)', `invalid JSON${where}`)]);
  }
}

function checkPresets(v: unknown, tunnelNames: Set<string>, ctx: ValidateContext, errors: ConfigError[], path = 'tunnel_presets'): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v)) {
    errors.push(new ConfigError(path, `must be an object mapping tunnel names to preset names, got ${typeName(v)}`));
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [name, preset] of Object.entries(v)) {
    const p = `${path}.${name.slice(0, 64)}`;
    if (typeof preset !== 'string') errors.push(new ConfigError(p, `must be a preset name, got ${typeName(preset)}`));
    else if (!ctx.isPreset(preset)) errors.push(new ConfigError(p, `unknown preset '${preset.slice(0, 64)}'`));
    else if (!tunnelNames.has(name)) errors.push(new ConfigError(p, 'no tunnel of that name in the document'));
    else out[name] = preset;
  }
  return out;
}

/**
 * Validate a plain configuration document (no backup keys) plus optional
 * presets. `extra` carries errors found earlier (backup metadata, patch) so
 * that everything is reported together.
 */
export function validateConfig(plain: unknown, presetsIn: unknown, ctx: ValidateContext, extra: ConfigError[] = []): ValidatedInput {
  const errors = [...extra];
  let parseErrors: ConfigError[] = [];
  let forParse: unknown = plain;
  if (isObj(plain) && Array.isArray(plain.tunnels)) {
    forParse = {
      ...plain,
      tunnels: plain.tunnels.map((t) =>
        // auth pubkey: no PSK at all (a placeholder would be refused as misplaced).
        isObj(t) && t.psk === undefined && t.auth !== 'pubkey' && typeof t.name === 'string' && ctx.hasStoredPsk(t.name) ? { ...t, psk: PLACEHOLDER_PSK } : t,
      ),
    };
  }
  try {
    parseDaemonConfig(forParse);
  } catch (e) {
    if (!(e instanceof ConfigValidationError)) throw e;
    parseErrors = e.errors;
  }
  errors.push(...parseErrors);
  // Settings the daemon's parser accepts but this schema has no column for are refused, not silently dropped.
  if (isObj(plain)) {
    const reported = new Set(parseErrors.map((e) => e.path));
    const lacks = (path: string) => {
      if (!reported.has(path)) errors.push(new ConfigError(path, STORE_LACKS));
    };
    for (const k of Object.keys(plain)) if (k !== 'version' && k !== 'tunnels' && !(TOP_FIELDS as readonly string[]).includes(k)) lacks(k.slice(0, 64));
    if (Array.isArray(plain.tunnels))
      plain.tunnels.forEach((t, i) => {
        if (isObj(t)) for (const k of Object.keys(t)) if (!(TUNNEL_FIELDS as readonly string[]).includes(k)) lacks(`tunnels[${i}].${k.slice(0, 64)}`);
      });
  }
  const names = new Set<string>();
  if (isObj(plain) && Array.isArray(plain.tunnels)) {
    if (plain.tunnels.length > MAX_TUNNELS) errors.push(new ConfigError('tunnels', `at most ${MAX_TUNNELS} tunnels, got ${plain.tunnels.length}`));
    for (const t of plain.tunnels) if (isObj(t) && typeof t.name === 'string') names.add(t.name);
  }
  const presets = checkPresets(presetsIn, names, ctx, errors);
  if (errors.length) throw new ConfigValidationError(errors);
  return { doc: canonicalDocument(plain as Obj), presets };
}

/** A full document: plain (docs/config.md) or a backup (has schema_version; migrated first). */
export function validateDocument(input: unknown, ctx: ValidateContext): ValidatedInput {
  const json = typeof input === 'string' ? parseJsonText(input) : input;
  if (!isObj(json) || json.schema_version === undefined) return validateConfig(json, undefined, ctx);
  const errors: ConfigError[] = [];
  const migrated = migrateDocument(json, errors);
  const plain: Obj = {};
  for (const [k, v] of Object.entries(migrated)) if (!(BACKUP_KEYS as readonly string[]).includes(k)) plain[k] = v;
  return validateConfig(plain, migrated.tunnel_presets, ctx, errors);
}

/**
 * A patch: `{ patch: { <top-level key>: value | null, tunnels: { <name>: {fields} | null },
 * tunnel_presets: { <name>: preset | null } } }`. It is a JSON merge patch
 * (RFC 7396) over the document with tunnels keyed by name: null removes a
 * key (the default applies again) or a whole tunnel; a new name appends a
 * tunnel. The result is then validated like any document.
 */
export function validatePatch(
  patchIn: unknown,
  current: { doc: ConfigDoc; presets: Record<string, string> },
  ctx: ValidateContext,
): ValidatedInput {
  const errors: ConfigError[] = [];
  const doc = structuredClone(current.doc) as unknown as Obj;
  const presets: Record<string, string> = { ...current.presets };
  if (!isObj(patchIn)) throw new ConfigValidationError([new ConfigError('patch', `must be an object, got ${typeName(patchIn)}`)]);
  for (const [k, v] of Object.entries(patchIn)) {
    if (k === 'tunnels' || k === 'tunnel_presets') continue;
    if (k === 'version' || (TOP_FIELDS as readonly string[]).includes(k)) {
      if (v === null) delete doc[k];
      else doc[k] = v;
    } else errors.push(new ConfigError(`patch.${k.slice(0, 64)}`, 'unknown key'));
  }
  const tunnels = doc.tunnels as Obj[];
  if (patchIn.tunnels !== undefined) {
    if (!isObj(patchIn.tunnels)) errors.push(new ConfigError('patch.tunnels', `must be an object keyed by tunnel name, got ${typeName(patchIn.tunnels)}`));
    else
      for (const [name, tp] of Object.entries(patchIn.tunnels)) {
        const p = `patch.tunnels.${name.slice(0, 64)}`;
        const idx = tunnels.findIndex((t) => t.name === name);
        if (tp === null) {
          if (idx < 0) errors.push(new ConfigError(p, 'no tunnel of that name to remove'));
          else {
            tunnels.splice(idx, 1);
            delete presets[name];
          }
          continue;
        }
        if (!isObj(tp)) {
          errors.push(new ConfigError(p, `must be an object of tunnel fields or null, got ${typeName(tp)}`));
          continue;
        }
        if (tp.name !== undefined && tp.name !== name) {
          errors.push(new ConfigError(`${p}.name`, 'must equal the key (rename = remove + add)'));
          continue;
        }
        const t: Obj = idx >= 0 ? tunnels[idx]! : { name };
        for (const [f, fv] of Object.entries(tp)) {
          if (fv === null) delete t[f];
          else t[f] = fv;
        }
        if (idx < 0) tunnels.push(t);
      }
  }
  if (patchIn.tunnel_presets !== undefined) {
    if (!isObj(patchIn.tunnel_presets)) errors.push(new ConfigError('patch.tunnel_presets', `must be an object, got ${typeName(patchIn.tunnel_presets)}`));
    else
      for (const [name, p] of Object.entries(patchIn.tunnel_presets)) {
        if (p === null) delete presets[name];
        else (presets as Record<string, unknown>)[name] = p;
      }
  }
  return validateConfig(doc, presets, ctx, errors);
}
