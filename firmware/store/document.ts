/**
 * The configuration document as the store keeps it: the JSON document of
 * docs/config.md in a canonical form, and the backup form that wraps it.
 *
 * Canonical form (what export returns and revisions snapshot):
 *   - keys in the order docs/config.md lists them; `version` always 1;
 *   - fields the user left out stay out (a later firmware's defaults apply);
 *   - "string or string[]" fields are arrays of trimmed strings, as
 *     parseDaemonConfig reads them; `fragmentation: true/false` is "yes"/"no";
 *   - everything else exactly as written.
 * Canonicalisation only runs on documents parseDaemonConfig accepted.
 *
 * Backup form = canonical document + `schema_version` + `tunnel_presets`
 * (store metadata the daemon's own parser does not know, so it is kept out
 * of the plain document). See docs/store.md.
 */

export const CONFIG_DOC_VERSION = 1;

/** Top-level keys besides `version` and `tunnels` (config/schema.ts TOP_KEYS), in document order. */
export const TOP_FIELDS = [
  'listen', 'ike_port', 'natt_port', 'control_socket', 'log_level', 'keylog', 'data_plane',
  'cookie_threshold', 'cookie_threshold_ip', 'block_threshold', 'init_limit_half_open', 'half_open_timeout',
] as const;
/** Top-level admission keys (config/schema.ts ADMISSION_KEYS), kept together in `device_settings.admission` (schema v6). */
export const TOP_ADMISSION_FIELDS = ['cookie_threshold', 'cookie_threshold_ip', 'block_threshold', 'init_limit_half_open', 'half_open_timeout'] as const;
/** Every tunnel key (config/schema.ts TUNNEL_KEYS), in document order. */
export const TUNNEL_FIELDS = [
  'name', 'enabled', 'local_addr', 'remote_addr', 'remote_port', 'local_id', 'remote_id', 'auth', 'psk', 'proposals',
  'esp_proposals', 'local_ts', 'remote_ts', 'mode', 'inside_addr', 'start_action', 'fragmentation', 'fragment_size',
  'encap', 'rekey_time', 'child_rekey_time', 'dpd_delay', 'replay_window', 'mss', 'mtu',
  'cert', 'key', 'cert_chain', 'ca_certs', 'allowed_schemes', 'full_transcript_auth', 'retransmit_timeout', 'retransmit_tries',
  'child_rekey_bytes', 'child_rekey_packets', 'dpd_action', 'dpd_mode', 'health_check',
] as const;
export type TunnelField = (typeof TUNNEL_FIELDS)[number];

export const TUNNEL_LIST_FIELDS = ['proposals', 'esp_proposals', 'local_ts', 'remote_ts'] as const;
export const TUNNEL_BOOL_FIELDS = ['enabled', 'encap'] as const;
export const TUNNEL_INT_FIELDS = ['remote_port', 'fragment_size', 'rekey_time', 'child_rekey_time', 'dpd_delay', 'replay_window', 'mss'] as const;
export const TUNNEL_TEXT_FIELDS = [
  'local_addr', 'remote_addr', 'local_id', 'remote_id', 'auth', 'mode', 'inside_addr', 'start_action', 'fragmentation',
] as const;
/**
 * Tunnel fields kept together in the `tunnels.options` JSON column (schema
 * v4): exactly the JSON values of the canonical document, type-checked by
 * parseDaemonConfig before every write.
 */
export const TUNNEL_OPTION_FIELDS = [
  'mtu', 'cert', 'key', 'cert_chain', 'ca_certs', 'allowed_schemes', 'full_transcript_auth', 'retransmit_timeout', 'retransmit_tries',
  'child_rekey_bytes', 'child_rekey_packets', 'dpd_action', 'dpd_mode',
] as const;
/** Tunnel fields holding a JSON object in a column of their own (schema v5: health_check). */
export const TUNNEL_JSON_FIELDS = ['health_check'] as const;
/** "string or string[]" tunnel fields, canonicalised to arrays of trimmed strings. */
const CANONICAL_LIST_FIELDS: readonly string[] = [...TUNNEL_LIST_FIELDS, 'ca_certs', 'allowed_schemes'];

/** One tunnel, snake_case as in docs/config.md. `psk` is absent in every secret-free view. */
export interface TunnelDoc {
  name: string;
  enabled?: boolean;
  local_addr?: string;
  remote_addr?: string;
  remote_port?: number;
  local_id?: string;
  remote_id?: string;
  auth?: string;
  psk?: string;
  proposals?: string[];
  esp_proposals?: string[];
  local_ts?: string[];
  remote_ts?: string[];
  mode?: string;
  inside_addr?: string;
  start_action?: string;
  fragmentation?: string;
  fragment_size?: number;
  encap?: boolean;
  rekey_time?: number;
  child_rekey_time?: number;
  dpd_delay?: number;
  replay_window?: number;
  mss?: number;
  mtu?: number;
  /** File paths (not secrets): the local certificate, its private key, intermediate chain, trusted CAs. */
  cert?: string;
  key?: string;
  cert_chain?: string;
  ca_certs?: string[];
  allowed_schemes?: string[];
  full_transcript_auth?: string;
  retransmit_timeout?: number;
  retransmit_tries?: number;
  child_rekey_bytes?: number;
  child_rekey_packets?: number;
  dpd_action?: string;
  dpd_mode?: string;
  health_check?: { target: string; source?: string; interval?: number; timeout?: number; failures?: number };
}

export interface ConfigDoc {
  version: 1;
  listen?: string[];
  ike_port?: number;
  natt_port?: number;
  control_socket?: string;
  log_level?: string;
  keylog?: string;
  data_plane?: string;
  cookie_threshold?: number;
  cookie_threshold_ip?: number;
  block_threshold?: number;
  init_limit_half_open?: number;
  half_open_timeout?: number;
  tunnels: TunnelDoc[];
}

/** A backup (or revision snapshot): the document plus store metadata. */
export interface BackupDoc extends ConfigDoc {
  schema_version: number;
  /** Tunnel name → preset it was created from (schema ≥ 2). */
  tunnel_presets?: Record<string, string>;
}

/** Keys that only backups carry; stripped before parseDaemonConfig sees the document. */
export const BACKUP_KEYS = ['schema_version', 'tunnel_presets'] as const;

type Obj = Record<string, unknown>;

function list(v: unknown): string[] {
  return (typeof v === 'string' ? [v] : (v as string[])).map((s) => s.trim());
}

/** A validated tunnel object → canonical TunnelDoc. */
export function canonicalTunnel(t: Obj): TunnelDoc {
  const out: Obj = {};
  for (const k of TUNNEL_FIELDS) {
    const v = t[k];
    if (v === undefined) continue;
    if (CANONICAL_LIST_FIELDS.includes(k)) out[k] = list(v);
    else if (k === 'fragmentation' && typeof v === 'boolean') out[k] = v ? 'yes' : 'no';
    else out[k] = v;
  }
  return out as unknown as TunnelDoc;
}

/** A document parseDaemonConfig accepted (backup keys already removed) → canonical form. */
export function canonicalDocument(raw: Obj): ConfigDoc {
  const out: Obj = { version: CONFIG_DOC_VERSION };
  for (const k of TOP_FIELDS) {
    const v = raw[k];
    if (v === undefined) continue;
    out[k] = k === 'listen' ? list(v) : v;
  }
  out.tunnels = Array.isArray(raw.tunnels) ? raw.tunnels.map((t) => canonicalTunnel(t as Obj)) : [];
  return out as unknown as ConfigDoc;
}

/** The tunnel with `psk` set (undefined: left without, e.g. auth pubkey), keys kept in document order. */
export function withPsk(t: TunnelDoc, psk: string | undefined): TunnelDoc {
  const out: Obj = {};
  for (const k of TUNNEL_FIELDS) {
    const v = k === 'psk' ? psk : (t as unknown as Obj)[k];
    if (v !== undefined) out[k] = v;
  }
  return out as unknown as TunnelDoc;
}

/** Deep copy of a document without any PSK. */
export function withoutSecrets<T extends ConfigDoc>(doc: T): T {
  const copy = structuredClone(doc);
  for (const t of copy.tunnels) delete t.psk;
  return copy;
}

/** Canonical document + store metadata → backup form (keys: schema_version first, tunnel_presets last). */
export function toBackup(doc: ConfigDoc, presets: Record<string, string>, schemaVersion: number): BackupDoc {
  const sorted: Record<string, string> = {};
  for (const t of doc.tunnels) if (presets[t.name] !== undefined) sorted[t.name] = presets[t.name]!;
  return { schema_version: schemaVersion, ...structuredClone(doc), tunnel_presets: sorted };
}

/** Split a (current-version) backup into the plain document and its presets. */
export function fromBackup(b: BackupDoc): { doc: ConfigDoc; presets: Record<string, string> } {
  const { schema_version: _v, tunnel_presets, ...doc } = structuredClone(b);
  return { doc: doc as ConfigDoc, presets: tunnel_presets ?? {} };
}

/** Deterministic JSON for comparisons and hashing (canonical docs already have a fixed key order). */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      const o = x as Obj;
      return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
    }
    return x;
  });
}
