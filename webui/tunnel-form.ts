/**
 * The tunnel form: which fields it shows (docs/config.md, "Tunnels"), how a
 * submitted form becomes the `tunnel` object of `config.tunnel.put`, and how
 * a validation issue's path (as the daemon and the CLI print it) finds its
 * field.
 *
 * Values are passed to the daemon as typed as possible but never "fixed":
 * a number field holding "abc" is sent as the string, so the daemon's
 * validator says what the CLI would say ("must be an integer ...").
 *
 * Presets: the form is pre-filled with the preset's values; on submit only
 * the fields the user changed are sent as overrides (a cleared field as
 * null: "drop the preset's value, use the daemon default"), so preset
 * templates such as Cloudflare's local_id are filled by the daemon from the
 * preset parameters rather than sent literally.
 */
import { SECRET_PLACEHOLDER } from '../firmware/control/api.js';
import type { Issue } from './daemon-client.js';

export type FieldKind = 'text' | 'number' | 'list' | 'select' | 'checkbox' | 'password';

export interface FieldDef {
  key: string;
  label: string;
  kind: FieldKind;
  help: string;
  options?: string[];
  group: 'basic' | 'identity' | 'crypto' | 'traffic' | 'timers';
}

export const FIELDS: FieldDef[] = [
  { key: 'name', label: 'Name', kind: 'text', group: 'basic', help: '1–32 of A-Z a-z 0-9 _ . -, starting with a letter or digit' },
  { key: 'enabled', label: 'Enabled', kind: 'checkbox', group: 'basic', help: 'unchecked keeps the tunnel in the configuration without loading it' },
  { key: 'remote_addr', label: 'Peer address', kind: 'text', group: 'basic', help: "the peer's IP address, or %any to only answer" },
  { key: 'remote_port', label: 'Peer IKE port', kind: 'number', group: 'basic', help: 'default 500; 4500 starts on the NAT-T port' },
  { key: 'local_addr', label: 'Local address', kind: 'text', group: 'basic', help: 'our outer address (default: any)' },
  { key: 'local_id', label: 'Local identity', kind: 'text', group: 'identity', help: 'e.g. fqdn:gw.example, 192.0.2.1, keyid:...' },
  { key: 'remote_id', label: 'Peer identity', kind: 'text', group: 'identity', help: 'the identity the peer must authenticate as; %any accepts any' },
  { key: 'auth', label: 'Authentication', kind: 'text', group: 'identity', help: 'psk (pre-shared key)' },
  { key: 'psk', label: 'Pre-shared key', kind: 'password', group: 'identity', help: 'at least 16 characters, or 0x + hex; never shown again' },
  { key: 'proposals', label: 'IKE proposals', kind: 'list', group: 'crypto', help: 'one per line, strongSwan syntax, e.g. aes256gcm16-prfsha384-x25519-ke1_mlkem768' },
  { key: 'esp_proposals', label: 'ESP proposals', kind: 'list', group: 'crypto', help: 'one per line, e.g. aes256gcm16' },
  { key: 'fragmentation', label: 'IKE fragmentation', kind: 'select', options: ['', 'yes', 'accept', 'no'], group: 'crypto', help: 'keep on for ML-KEM (large messages)' },
  { key: 'fragment_size', label: 'Fragment size', kind: 'number', group: 'crypto', help: 'bytes, default 1280' },
  { key: 'encap', label: 'Force UDP encapsulation', kind: 'checkbox', group: 'crypto', help: 'ESP in UDP even without NAT' },
  { key: 'mode', label: 'Mode', kind: 'select', options: ['', 'route', 'policy'], group: 'traffic', help: 'route: tunnel interface; policy: selectors decide' },
  { key: 'local_ts', label: 'Local subnets', kind: 'list', group: 'traffic', help: 'traffic selectors, one per line' },
  { key: 'remote_ts', label: 'Remote subnets', kind: 'list', group: 'traffic', help: 'traffic selectors, one per line' },
  { key: 'inside_addr', label: 'Tunnel interface address', kind: 'text', group: 'traffic', help: 'route mode, e.g. 10.100.0.9/31' },
  { key: 'mss', label: 'TCP MSS clamp', kind: 'number', group: 'traffic', help: '0 = off, else 536–65495 (Cloudflare: 1360)' },
  { key: 'replay_window', label: 'Replay window', kind: 'number', group: 'traffic', help: 'packets; 0 = off (Cloudflare requires 0)' },
  { key: 'start_action', label: 'Start action', kind: 'select', options: ['', 'start', 'trap', 'none'], group: 'timers', help: 'start: keep it up; trap: on traffic; none: only answer' },
  { key: 'rekey_time', label: 'IKE rekey (s)', kind: 'number', group: 'timers', help: 'default 86400; 0 = never' },
  { key: 'child_rekey_time', label: 'Child rekey (s)', kind: 'number', group: 'timers', help: 'default 28800; 0 = never' },
  { key: 'dpd_delay', label: 'Liveness check (s)', kind: 'number', group: 'timers', help: 'after this long without traffic from the peer; 0 = off' },
];

export const GROUPS: [FieldDef['group'], string][] = [
  ['basic', 'Peer'],
  ['identity', 'Authentication'],
  ['crypto', 'Algorithms'],
  ['traffic', 'Traffic'],
  ['timers', 'Timers'],
];

type Obj = Record<string, unknown>;

/** A stored tunnel / preset value as the form shows it. */
export function displayValue(def: FieldDef, v: unknown): string {
  if (v === undefined || v === null) return '';
  if (def.kind === 'password') return '';
  if (def.kind === 'list') return (Array.isArray(v) ? v : [v]).map(String).join('\n');
  if (typeof v === 'boolean') return v ? 'on' : '';
  return String(v);
}

/** Form text → the value sent to the daemon (undefined = empty). */
function parseValue(def: FieldDef, raw: string | undefined): unknown {
  if (def.kind === 'checkbox') return raw === 'on' || raw === 'true';
  const s = (raw ?? '').trim();
  if (s === '') return undefined;
  if (def.kind === 'number') return /^-?\d+$/.test(s) ? Number(s) : s;
  if (def.kind === 'list')
    return s
      .split(/[\n,]/)
      .map((x) => x.trim())
      .filter(Boolean);
  return def.kind === 'password' ? raw : s;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export interface FormResult {
  name: string;
  tunnel: Obj;
  params: Record<string, string>;
}

/**
 * Form fields → `config.tunnel.put` input. `base` is what the form was
 * pre-filled from: the stored tunnel (edit) or the preset's tunnel (new from
 * preset); only differences are sent, cleared fields as null. Without a base
 * (new, no preset) every non-empty field is sent.
 */
export function formToTunnel(form: Record<string, unknown>, base: Obj | undefined, opts: { isNew: boolean; fixedName?: string }): FormResult {
  const str = (k: string) => (typeof form[k] === 'string' ? (form[k] as string) : undefined);
  const name = opts.fixedName ?? (str('name') ?? '').trim();
  const tunnel: Obj = { name };
  for (const def of FIELDS) {
    if (def.key === 'name') continue;
    if (def.kind === 'checkbox' && form[`has_${def.key}`] === undefined) continue; // field not on the form
    const v = parseValue(def, str(def.key));
    if (def.key === 'psk') {
      // Empty = keep the stored key (edit) / the preset has none (new: the daemon says it is required).
      if (v !== undefined && v !== SECRET_PLACEHOLDER) tunnel.psk = v;
      continue;
    }
    const before = base?.[def.key];
    if (def.kind === 'checkbox') {
      const wasSet = before !== undefined;
      const dflt = def.key === 'enabled';
      if (wasSet ? !same(before, v) : v !== dflt) tunnel[def.key] = v;
      continue;
    }
    if (v === undefined) {
      if (before !== undefined && before !== null) tunnel[def.key] = null;
    } else if (!base || !same(normalize(def, before), v)) tunnel[def.key] = v;
  }
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) if (k.startsWith('param_') && typeof v === 'string' && v.trim() !== '') params[k.slice(6)] = v.trim();
  return { name, tunnel, params };
}

function normalize(def: FieldDef, v: unknown): unknown {
  if (v === undefined || v === null) return undefined;
  if (def.kind === 'list') return Array.isArray(v) ? v.map(String) : [String(v)];
  return v;
}

/** Template parameters of a preset's values ("{tunnel_id}"), for presets that do not describe them. */
export function templateParams(tunnel: Obj): string[] {
  const out = new Set<string>();
  const visit = (v: unknown) => {
    if (typeof v === 'string') for (const m of v.matchAll(/\{([a-z_]+)\}/g)) out.add(m[1]!);
    else if (Array.isArray(v)) v.forEach(visit);
  };
  Object.values(tunnel).forEach(visit);
  return [...out];
}

/**
 * The form field an issue belongs to: `mss`, `proposals[0]`, `tunnels[3].mss`,
 * `patch.tunnels.cf1.mss` → the field key; `params.tunnel_id` → `param_tunnel_id`;
 * anything else (document-level) → undefined.
 */
export function fieldOfIssue(path: string, tunnelName: string): string | undefined {
  let p = path;
  const t = /^tunnels\[\d+\]\.?(.*)$/.exec(p);
  if (t) p = t[1]!;
  const prefix = `patch.tunnels.${tunnelName}`;
  if (p.startsWith(prefix)) p = p.slice(prefix.length).replace(/^\./, '');
  if (p.startsWith('params.')) return `param_${p.slice(7)}`;
  const key = /^([a-z_]+)/.exec(p)?.[1];
  return key && FIELDS.some((f) => f.key === key) ? key : undefined;
}

export function issuesByField(issues: readonly Issue[], tunnelName: string): Map<string, Issue[]> {
  const m = new Map<string, Issue[]>();
  for (const i of issues) {
    const f = fieldOfIssue(i.path, tunnelName) ?? '';
    m.set(f, [...(m.get(f) ?? []), i]);
  }
  return m;
}

/** Default commit-confirmed period of changes made in the web admin. */
export const DEFAULT_TRIAL_SEC = 300;

/** The "apply on trial" fields → confirmTimeoutSec (undefined = apply for good). */
export function trialSeconds(body: Obj): number | undefined | 'invalid' {
  if (body.trial !== 'on' && body.trial !== true) return undefined;
  const s = String(body.trial_sec ?? DEFAULT_TRIAL_SEC).trim();
  const n = Number(s);
  return /^\d+$/.test(s) && n >= 10 && n <= 86400 ? n : 'invalid';
}
