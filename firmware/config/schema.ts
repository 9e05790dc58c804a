/**
 * The daemon's JSON configuration document (snake_case keys, docs/config.md)
 * → validated DaemonConfig (types.ts).
 *
 * Validation collects every problem before failing: the thrown
 * ConfigValidationError lists each one with the path of the offending field
 * (`tunnels[1].proposals[0]: unknown algorithm 'aes999'`). Unknown keys are
 * errors (typo protection, with a "did you mean" hint). Pre-shared keys are
 * never echoed: no message quotes a PSK value, and as a last line of defence
 * every configured PSK string is scrubbed from all messages.
 *
 * Algorithm, identity and traffic-selector syntax is checked by the engine's
 * own parsers (ikev2/sa/proposal.ts, identity.ts, ts.ts) so the config cannot
 * accept what the engine would reject.
 */
import { parseHealthCheck } from './health-check.js';
import { loadLocalCredentials, type LocalCredentials } from '../auth/peer.js';
import { loadCertificates } from '../auth/certs.js';
import type { Certificate } from '../auth/x509.js';
import type { SignatureScheme } from '../auth/signature.js';
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { AdmissionConfig, DaemonConfig, FragmentationMode, Identity, StartAction, TsConfig, TunnelConfig } from './types.js';
import { ConfigError } from '../util/errors.js';
import { DAEMON_DEFAULTS, DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS, TUNNEL_DEFAULTS, defaultConfigDocument, defaultControlSocket } from './defaults.js';
import { canonicalIp, isWildcard } from '../net/address.js';
import { ipFamily } from '../util/ip.js';
import { parseIdentity } from '../ikev2/sa/identity.js';
import { parseTs, isDynamicTs, resolveDynamicTs } from '../ikev2/sa/ts.js';
import { parseProposal } from '../ikev2/sa/proposal.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';

/** Every validation problem of one document. `path` / `message` describe the first; `errors` has them all. */
export class ConfigValidationError extends ConfigError {
  readonly errors: ConfigError[];
  constructor(errors: ConfigError[]) {
    super(errors[0]?.path ?? '', errors[0] ? errors[0].message.slice(errors[0].path.length + 2) : 'invalid configuration');
    this.errors = errors;
    this.message = `invalid configuration (${errors.length} error${errors.length === 1 ? '' : 's'}):\n` + errors.map((e) => `  ${e.message}`).join('\n');
  }
}

export interface ParseOptions {
  /** Relative paths (control_socket, keylog) are resolved against this directory (the config file's). Default: cwd. */
  baseDir?: string;
  /** Environment for the default control socket path. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

export const CONFIG_VERSION = 1;
const MAX_CONFIG_BYTES = 1024 * 1024;
const MIN_PSK_CHARS = 16;
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Global IKE_SA_INIT admission options (strongSwan charon.* names). */
export const ADMISSION_KEYS = ['cookie_threshold', 'cookie_threshold_ip', 'block_threshold', 'init_limit_half_open', 'half_open_timeout'] as const;
const TOP_KEYS = ['version', 'listen', 'ike_port', 'natt_port', 'control_socket', 'log_level', 'keylog', 'data_plane', 'tunnels', ...ADMISSION_KEYS] as const;
const DATA_PLANES = ['userspace', 'recording'] as const;
const TUNNEL_KEYS = [
  'name', 'enabled', 'local_addr', 'remote_addr', 'remote_port', 'local_id', 'remote_id', 'auth', 'psk', 'proposals',
  'esp_proposals', 'local_ts', 'remote_ts', 'mode', 'inside_addr', 'start_action', 'fragmentation', 'fragment_size',
  'encap', 'rekey_time', 'child_rekey_time', 'dpd_delay', 'replay_window', 'mss', 'mtu',
  'cert', 'key', 'cert_chain', 'ca_certs', 'allowed_schemes', 'full_transcript_auth', 'retransmit_timeout', 'retransmit_tries',
  'child_rekey_bytes', 'child_rekey_packets', 'dpd_action', 'dpd_mode', 'health_check',
] as const;
const SCHEMES = [
  'ecdsa-p256-sha256', 'ecdsa-p256-sha384', 'ecdsa-p256-sha512', 'ecdsa-p384-sha256', 'ecdsa-p384-sha384', 'ecdsa-p384-sha512',
  'ecdsa-p521-sha256', 'ecdsa-p521-sha384', 'ecdsa-p521-sha512', 'rsa-pss-sha256', 'rsa-pss-sha384', 'rsa-pss-sha512',
  'rsa-pkcs1-sha256', 'rsa-pkcs1-sha384', 'rsa-pkcs1-sha512', 'ed25519', 'ml-dsa-65',
] as const;

type Obj = Record<string, unknown>;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** Error collector with typed field readers. Every reader records its own error and returns undefined on failure. */
class Ctx {
  readonly errors: ConfigError[] = [];
  err(path: string, msg: string): undefined {
    this.errors.push(new ConfigError(path, msg));
    return undefined;
  }
  /** Record an error thrown by one of the engine's parsers, re-anchored at `path`. */
  fromThrown(path: string, e: unknown): undefined {
    if (e instanceof ConfigError) {
      const own = e.message.startsWith(e.path + ': ') ? e.message.slice(e.path.length + 2) : e.message;
      return this.err(path, own);
    }
    return this.err(path, e instanceof Error ? e.message : String(e));
  }
  keys(o: Obj, allowed: readonly string[], path: string): void {
    for (const k of Object.keys(o)) {
      if (allowed.includes(k)) continue;
      const near = allowed.filter((a) => editDistance(a, k.toLowerCase()) <= 2).sort((a, b) => editDistance(a, k) - editDistance(b, k))[0];
      this.err(`${path}${path ? '.' : ''}${k.slice(0, 64)}`, `unknown key${near ? ` (did you mean '${near}'?)` : ''}`);
    }
  }
  str(o: Obj, k: string, path: string, opts: { required?: boolean; nonEmpty?: boolean } = {}): string | undefined {
    const v = o[k];
    if (v === undefined) return opts.required ? this.err(path, 'is required') : undefined;
    if (typeof v !== 'string') return this.err(path, `must be a string, got ${typeName(v)}`);
    if (opts.nonEmpty !== false && v.trim() === '') return this.err(path, 'must not be empty');
    return v;
  }
  bool(o: Obj, k: string, path: string): boolean | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') return this.err(path, `must be true or false, got ${typeName(v)}`);
    return v;
  }
  int(o: Obj, k: string, path: string, min: number, max: number, extra = ''): number | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.err(path, `must be an integer, got ${typeof v === 'number' ? v : typeName(v)}`);
    if (v < min || v > max) return this.err(path, `must be between ${min} and ${max}${extra}, got ${v}`);
    return v;
  }
  oneOf<T extends string>(o: Obj, k: string, path: string, values: readonly T[]): T | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      return this.err(path, `must be one of ${values.map((x) => `'${x}'`).join(', ')}, got ${typeof v === 'string' ? `'${v.slice(0, 64)}'` : typeName(v)}`);
    return v as T;
  }
  /** A string or an array of strings (a single string is a one-element list). */
  strList(o: Obj, k: string, path: string): { value: string; path: string }[] | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    const arr = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(arr)) return this.err(path, `must be an array of strings, got ${typeName(v)}`);
    if (arr.length === 0) return this.err(path, 'must not be empty');
    const out: { value: string; path: string }[] = [];
    arr.forEach((x, i) => {
      const p = typeof v === 'string' ? path : `${path}[${i}]`;
      if (typeof x !== 'string') this.err(p, `must be a string, got ${typeName(x)}`);
      else if (x.trim() === '') this.err(p, 'must not be empty');
      else out.push({ value: x.trim(), path: p });
    });
    return out;
  }
  ip(o: Obj, k: string, path: string): string | undefined {
    const v = this.str(o, k, path);
    if (v === undefined) return undefined;
    const c = canonicalIp(v.trim());
    if (c === undefined) return this.err(path, `'${v.slice(0, 64)}' is not an IP address (host names are not supported)`);
    return c;
  }
}

function resolvePath(p: string, baseDir: string | undefined): string {
  return isAbsolute(p) ? p : resolve(baseDir ?? process.cwd(), p);
}

/** "a.b.c.d/n" or "x::y/n" with a prefix that fits the family; returns the canonical text. */
function parseCidr(text: string): string | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const addr = canonicalIp(m[1]!);
  if (addr === undefined) return undefined;
  const bits = ipFamily(addr) === 4 ? 32 : 128;
  const len = Number(m[2]);
  if (len > bits) return undefined;
  return `${addr}/${len}`;
}

function parsePsk(ctx: Ctx, t: Obj, path: string): Uint8Array | undefined {
  const v = t.psk;
  if (v === undefined) return ctx.err(path, 'is required (auth = psk)');
  if (typeof v !== 'string') return ctx.err(path, `must be a string, got ${typeName(v)}`);
  if (/^0x/i.test(v)) {
    const hex = v.slice(2);
    if (hex.length === 0 || hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) return ctx.err(path, "invalid hex after '0x' (value not shown)");
    const b = new Uint8Array(Buffer.from(hex, 'hex'));
    if (b.length < MIN_PSK_CHARS) return ctx.err(path, `too short: a hex PSK needs at least ${MIN_PSK_CHARS} bytes (${MIN_PSK_CHARS * 2} hex digits) (value not shown)`);
    return b;
  }
  if ([...v].length < MIN_PSK_CHARS) return ctx.err(path, `too short: a PSK needs at least ${MIN_PSK_CHARS} characters; use a long random string, e.g. from \`openssl rand -base64 24\` (value not shown)`);
  return new TextEncoder().encode(v);
}

interface TopCtx {
  listenAll4: boolean;
  listenAll6: boolean;
  listen: string[];
}

function parseTsList(ctx: Ctx, list: { value: string; path: string }[], endAddr: string | undefined, which: 'local_addr' | 'remote_addr'): TsConfig[] {
  const out: TsConfig[] = [];
  for (const { value, path } of list) {
    let ts;
    try {
      ts = parseTs(value, path);
    } catch (e) {
      ctx.fromThrown(path, e);
      continue;
    }
    if (isDynamicTs(ts)) {
      if (endAddr === undefined) {
        ctx.err(path, `'dynamic' needs ${which} to be set`);
        continue;
      }
      out.push(resolveDynamicTs(ts, endAddr));
    } else out.push(ts);
  }
  return out;
}

function parseProposals(ctx: Ctx, t: Obj, key: 'proposals' | 'esp_proposals', path: string, kind: 'ike' | 'esp'): string[] | undefined {
  const list = ctx.strList(t, key, path);
  const texts = list ?? (key === 'proposals' ? DEFAULT_IKE_PROPOSALS : DEFAULT_ESP_PROPOSALS).map((value) => ({ value, path }));
  let ok = list !== undefined || t[key] === undefined;
  for (const { value, path: p } of texts) {
    try {
      parseProposal(value, kind, p);
    } catch (e) {
      ok = false;
      ctx.fromThrown(p, e);
    }
  }
  return ok ? texts.map((x) => x.value) : undefined;
}

function parseIdField(ctx: Ctx, t: Obj, key: 'local_id' | 'remote_id', path: string): { id: Identity | undefined; given: boolean } | undefined {
  const v = ctx.str(t, key, path);
  if (v === undefined) return t[key] === undefined ? { id: undefined, given: false } : undefined;
  try {
    return { id: parseIdentity(v, path), given: true };
  } catch (e) {
    return ctx.fromThrown(path, e);
  }
}

/**
 * auth 'pubkey' (RFC 7427 signatures): our certificate + key (+ chain) and
 * the CAs the peer's certificate must chain to, loaded from PEM/DER files
 * (paths relative to the configuration file). Every failure names its field.
 */
function parsePubkey(ctx: Ctx, t: Obj, P: (k: string) => string, baseDir: string | undefined): { localCreds?: LocalCredentials; caCerts?: Certificate[]; allowedSchemes?: SignatureScheme[] } {
  const file = (k: string, v: unknown): Uint8Array | undefined => {
    if (typeof v !== 'string' || v === '') return ctx.err(P(k), `must be a file path, got ${typeName(v)}`);
    try {
      return new Uint8Array(readFileSync(resolvePath(v, baseDir)));
    } catch (e) {
      return ctx.err(P(k), `cannot read ${v}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const out: { localCreds?: LocalCredentials; caCerts?: Certificate[]; allowedSchemes?: SignatureScheme[] } = {};
  if (t.cert === undefined) ctx.err(P('cert'), 'is required (auth = pubkey)');
  if (t.key === undefined) ctx.err(P('key'), 'is required (auth = pubkey)');
  if (t.ca_certs === undefined) ctx.err(P('ca_certs'), 'is required (auth = pubkey): the CA certificates peers must chain to');
  const cert = t.cert !== undefined ? file('cert', t.cert) : undefined;
  const key = t.key !== undefined ? file('key', t.key) : undefined;
  const chain = t.cert_chain !== undefined ? file('cert_chain', t.cert_chain) : undefined;
  if (cert && key) {
    try {
      out.localCreds = loadLocalCredentials({ cert, key, ...(chain ? { chain } : {}) });
    } catch (e) {
      ctx.err(P('key'), `certificate/key: ${(e as Error).message} (key not shown)`);
    }
  }
  if (t.ca_certs !== undefined) {
    const list = ctx.strList(t, 'ca_certs', P('ca_certs'));
    const cas: Certificate[] = [];
    for (const { value, path } of list ?? []) {
      const data = file('ca_certs', value);
      if (!data) continue;
      try {
        cas.push(...loadCertificates(data));
      } catch (e) {
        ctx.err(path, `not a certificate: ${(e as Error).message}`);
      }
    }
    if (list && list.length === 0) ctx.err(P('ca_certs'), 'must name at least one CA certificate');
    out.caCerts = cas;
  }
  if (t.allowed_schemes !== undefined) {
    const list = ctx.strList(t, 'allowed_schemes', P('allowed_schemes'));
    const ok: SignatureScheme[] = [];
    for (const { value, path } of list ?? []) {
      if ((SCHEMES as readonly string[]).includes(value)) ok.push(value as SignatureScheme);
      else ctx.err(path, `unknown signature scheme '${value.slice(0, 40)}' (one of ${SCHEMES.join(', ')})`);
    }
    out.allowedSchemes = ok;
  }
  return out;
}

function parseTunnel(ctx: Ctx, raw: unknown, path: string, top: TopCtx, baseDir?: string): { tunnel?: TunnelConfig; name?: string; enabled: boolean } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    ctx.err(path, `must be an object, got ${typeName(raw)}`);
    return { enabled: false };
  }
  const t = raw as Obj;
  const before = ctx.errors.length;
  const P = (k: string) => `${path}.${k}`;
  ctx.keys(t, TUNNEL_KEYS, path);

  const name = ctx.str(t, 'name', P('name'), { required: true });
  if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(name))
    ctx.err(P('name'), `'${name.slice(0, 64)}' is not a valid tunnel name (1-32 of A-Z a-z 0-9 _ . -, starting with a letter or digit)`);
  const enabled = ctx.bool(t, 'enabled', P('enabled')) ?? TUNNEL_DEFAULTS.enabled;

  let localAddr = ctx.ip(t, 'local_addr', P('local_addr'));
  if (localAddr !== undefined && isWildcard(localAddr)) localAddr = undefined;
  let remoteAddr: string | undefined;
  const ra = t.remote_addr;
  if (typeof ra === 'string' && /^%any6?$/.test(ra.trim())) remoteAddr = undefined;
  else remoteAddr = ctx.ip(t, 'remote_addr', P('remote_addr'));
  if (remoteAddr !== undefined && isWildcard(remoteAddr)) remoteAddr = undefined;
  if (localAddr !== undefined && remoteAddr !== undefined && ipFamily(localAddr) !== ipFamily(remoteAddr))
    ctx.err(P('remote_addr'), `address family differs from local_addr ${localAddr}`);
  if (localAddr !== undefined) {
    const fam = ipFamily(localAddr);
    const covered = top.listen.includes(localAddr) || (fam === 4 ? top.listenAll4 : top.listenAll6);
    if (!covered) ctx.err(P('local_addr'), `${localAddr} is not covered by 'listen' (${top.listen.join(', ')})`);
  }
  const remotePort = ctx.int(t, 'remote_port', P('remote_port'), 1, 65535) ?? TUNNEL_DEFAULTS.remotePort;

  const lid = parseIdField(ctx, t, 'local_id', P('local_id'));
  let localId: Identity | undefined = lid?.id;
  if (lid && !lid.given) {
    if (localAddr !== undefined) localId = parseIdentity(localAddr);
    else ctx.err(P('local_id'), 'is required when local_addr is not set');
  } else if (lid && lid.given && localId === undefined) ctx.err(P('local_id'), 'must be a concrete identity, not %any');
  const rid = parseIdField(ctx, t, 'remote_id', P('remote_id'));
  let remoteId: Identity | undefined = rid?.id;
  if (rid && !rid.given && remoteAddr !== undefined) remoteId = parseIdentity(remoteAddr);

  const auth = ctx.oneOf(t, 'auth', P('auth'), ['psk', 'pubkey'] as const) ?? 'psk';
  const psk = auth === 'psk' ? parsePsk(ctx, t, P('psk')) : new Uint8Array(0);
  if (auth === 'pubkey' && t.psk !== undefined) ctx.err(P('psk'), "not used with auth 'pubkey' (value not shown)");
  if (auth === 'psk') for (const k of ['cert', 'key', 'cert_chain', 'ca_certs', 'allowed_schemes']) if (t[k] !== undefined) ctx.err(P(k), "only used with auth 'pubkey'");
  const pub = auth === 'pubkey' ? parsePubkey(ctx, t, P, baseDir) : {};
  // draft-ietf-ipsecme-ikev2-downgrade-prevention: announce and use full-transcript AUTH ('on'), require it, or not.
  const fullTranscriptAuth = ctx.oneOf(t, 'full_transcript_auth', P('full_transcript_auth'), ['off', 'on', 'required'] as const);

  const ikeProposals = parseProposals(ctx, t, 'proposals', P('proposals'), 'ike');
  const espProposals = parseProposals(ctx, t, 'esp_proposals', P('esp_proposals'), 'esp');

  const lts = ctx.strList(t, 'local_ts', P('local_ts')) ?? (t.local_ts === undefined ? TUNNEL_DEFAULTS.localTs.map((value) => ({ value, path: P('local_ts') })) : []);
  const rts = ctx.strList(t, 'remote_ts', P('remote_ts')) ?? (t.remote_ts === undefined ? TUNNEL_DEFAULTS.remoteTs.map((value) => ({ value, path: P('remote_ts') })) : []);
  const localTs = parseTsList(ctx, lts, localAddr, 'local_addr');
  const remoteTs = parseTsList(ctx, rts, remoteAddr, 'remote_addr');

  const mode = ctx.oneOf(t, 'mode', P('mode'), ['route', 'policy'] as const) ?? TUNNEL_DEFAULTS.mode;
  let insideAddr: string | undefined;
  if (t.inside_addr !== undefined) {
    const s = ctx.str(t, 'inside_addr', P('inside_addr'));
    if (s !== undefined) {
      insideAddr = parseCidr(s);
      if (insideAddr === undefined) ctx.err(P('inside_addr'), `'${s.slice(0, 64)}' is not an address with prefix length (e.g. 10.100.0.9/31)`);
      else if (mode !== 'route') ctx.err(P('inside_addr'), "only valid with mode 'route'");
    }
  }

  const startAction: StartAction = ctx.oneOf(t, 'start_action', P('start_action'), ['none', 'start', 'trap'] as const) ?? (remoteAddr !== undefined ? 'start' : 'none');
  if (startAction !== 'none' && remoteAddr === undefined && t.start_action !== undefined)
    ctx.err(P('start_action'), `'${startAction}' needs remote_addr (a responder-only tunnel cannot initiate)`);

  let fragmentation: FragmentationMode = TUNNEL_DEFAULTS.fragmentation;
  if (typeof t.fragmentation === 'boolean') fragmentation = t.fragmentation ? 'yes' : 'no';
  else fragmentation = ctx.oneOf(t, 'fragmentation', P('fragmentation'), ['yes', 'accept', 'no'] as const) ?? fragmentation;
  const v6 = (remoteAddr ?? localAddr) !== undefined && ipFamily((remoteAddr ?? localAddr)!) === 6;
  const fragmentSize = ctx.int(t, 'fragment_size', P('fragment_size'), v6 ? 1280 : 576, 65535, v6 ? ' (IPv6 minimum MTU is 1280)' : '') ?? TUNNEL_DEFAULTS.fragmentSize;
  const encap = ctx.bool(t, 'encap', P('encap')) ?? TUNNEL_DEFAULTS.encap;

  const lifetime = (k: string, def: number) => {
    const v = ctx.int(t, k, P(k), 0, 31_536_000);
    if (v !== undefined && v !== 0 && v < 10) return ctx.err(P(k), `must be 0 (never) or at least 10 seconds, got ${v}`);
    return v ?? def;
  };
  const rekeyTime = lifetime('rekey_time', TUNNEL_DEFAULTS.rekeyTime);
  const childRekeyTime = lifetime('child_rekey_time', TUNNEL_DEFAULTS.childRekeyTime);
  const dpdDelay = ctx.int(t, 'dpd_delay', P('dpd_delay'), 0, 86400) ?? TUNNEL_DEFAULTS.dpdDelay;
  const dpdAction = ctx.oneOf(t, 'dpd_action', P('dpd_action'), ['clear', 'restart', 'hold'] as const);
  if ((dpdAction === 'restart' || dpdAction === 'hold') && remoteAddr === undefined) ctx.err(P('dpd_action'), `'${dpdAction}' needs remote_addr (a responder-only tunnel cannot initiate)`);
  const dpdMode = ctx.oneOf(t, 'dpd_mode', P('dpd_mode'), ['on-idle', 'periodic'] as const);
  const healthCheck = parseHealthCheck(ctx, t, P('health_check'), { localTs, remoteTs, ...(insideAddr !== undefined ? { insideAddr } : {}) });
  const childRekeyBytes = ctx.int(t, 'child_rekey_bytes', P('child_rekey_bytes'), 0, Number.MAX_SAFE_INTEGER);
  const childRekeyPackets = ctx.int(t, 'child_rekey_packets', P('child_rekey_packets'), 0, 2 ** 32);
  const retransmitTimeout = ctx.int(t, 'retransmit_timeout', P('retransmit_timeout'), 1, 60);
  const retransmitTries = ctx.int(t, 'retransmit_tries', P('retransmit_tries'), 0, 20);
  const replayWindow = ctx.int(t, 'replay_window', P('replay_window'), 0, 4096) ?? TUNNEL_DEFAULTS.replayWindow;
  let mss = ctx.int(t, 'mss', P('mss'), 0, 65495) ?? TUNNEL_DEFAULTS.mss;
  if (mss !== 0 && mss < 536) mss = ctx.err(P('mss'), `must be 0 (off) or at least 536, got ${mss}`) ?? 0;
  // Tunnel interface MTU (userspace data plane TUN; 16384 = its read buffer size).
  const mtu = ctx.int(t, 'mtu', P('mtu'), 576, 16384);

  if (ctx.errors.length !== before || name === undefined || psk === undefined || localId === undefined || !ikeProposals || !espProposals || rekeyTime === undefined || childRekeyTime === undefined)
    return { name, enabled };
  const tunnel: TunnelConfig = {
    name,
    ...(localAddr !== undefined ? { localAddr } : {}),
    ...(remoteAddr !== undefined ? { remoteAddr } : {}),
    remotePort,
    localId,
    ...(remoteId !== undefined ? { remoteId } : {}),
    auth,
    psk,
    ...pub,
    ...(fullTranscriptAuth !== undefined ? { fullTranscriptAuth } : {}),
    ikeProposals,
    espProposals,
    localTs,
    remoteTs,
    mode,
    startAction,
    fragmentation,
    fragmentSize,
    encap,
    rekeyTime,
    childRekeyTime,
    dpdDelay,
    ...(dpdAction !== undefined ? { dpdAction } : {}),
    ...(dpdMode !== undefined ? { dpdMode } : {}),
    ...(healthCheck !== undefined ? { healthCheck } : {}),
    ...(childRekeyBytes ? { childRekeyBytes } : {}),
    ...(childRekeyPackets ? { childRekeyPackets } : {}),
    ...(retransmitTimeout !== undefined ? { retransmitTimeout } : {}),
    ...(retransmitTries !== undefined ? { retransmitTries } : {}),
    replayWindow,
    ...(insideAddr !== undefined ? { insideAddr } : {}),
    mss,
    ...(mtu !== undefined ? { mtu } : {}),
  };
  return { tunnel, name, enabled };
}

/** Collect the PSK strings present in a document (for scrubbing error messages). */
function pskStrings(json: unknown): string[] {
  const out: string[] = [];
  if (json && typeof json === 'object' && Array.isArray((json as Obj).tunnels))
    for (const t of (json as Obj).tunnels as unknown[])
      if (t && typeof t === 'object' && typeof (t as Obj).psk === 'string' && ((t as Obj).psk as string).length >= 4) out.push((t as Obj).psk as string);
  return out;
}

function scrub(errors: ConfigError[], secrets: string[]): ConfigError[] {
  if (secrets.length === 0) return errors;
  return errors.map((e) => {
    let m = e.message.slice(e.path.length + 2);
    let changed = false;
    for (const s of secrets)
      if (m.includes(s)) {
        m = m.split(s).join('[psk]');
        changed = true;
      }
    return changed ? new ConfigError(e.path, m) : e;
  });
}

/** Validate a parsed JSON document. Throws ConfigValidationError listing every problem. */
export function parseDaemonConfig(json: unknown, opts: ParseOptions = {}): DaemonConfig {
  const ctx = new Ctx();
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    ctx.err('(document)', `must be a JSON object, got ${typeName(json)}`);
    throw new ConfigValidationError(ctx.errors);
  }
  const o = json as Obj;
  ctx.keys(o, TOP_KEYS, '');
  if (o.version !== undefined && o.version !== CONFIG_VERSION) ctx.err('version', `unsupported configuration version ${JSON.stringify(o.version)?.slice(0, 20)} (this build reads version ${CONFIG_VERSION})`);

  const listenList = ctx.strList(o, 'listen', 'listen') ?? (o.listen === undefined ? DAEMON_DEFAULTS.listen.map((value) => ({ value, path: 'listen' })) : []);
  const listen: string[] = [];
  for (const { value, path } of listenList) {
    const c = canonicalIp(value);
    if (c === undefined) ctx.err(path, `'${value.slice(0, 64)}' is not an IP address`);
    else if (listen.includes(c)) ctx.err(path, `duplicate address ${c}`);
    else listen.push(c);
  }
  const top: TopCtx = { listen, listenAll4: listen.includes('0.0.0.0'), listenAll6: listen.includes('::') };

  const ikePort = ctx.int(o, 'ike_port', 'ike_port', 0, 65535, ' (0 = ephemeral, for tests)') ?? DAEMON_DEFAULTS.ikePort;
  const nattPort = ctx.int(o, 'natt_port', 'natt_port', 0, 65535, ' (0 = ephemeral, for tests)') ?? DAEMON_DEFAULTS.nattPort;
  if (ikePort !== 0 && ikePort === nattPort) ctx.err('natt_port', `must differ from ike_port (${ikePort})`);

  let controlSocket = defaultControlSocket(opts.env ?? process.env);
  const cs = ctx.str(o, 'control_socket', 'control_socket');
  if (cs !== undefined) controlSocket = resolvePath(cs, opts.baseDir);
  if (Buffer.byteLength(controlSocket) > MAX_SOCKET_PATH) ctx.err('control_socket', `path longer than ${MAX_SOCKET_PATH} bytes (unix socket limit)`);

  const logLevel: LogLevel = ctx.oneOf(o, 'log_level', 'log_level', LOG_LEVELS) ?? DAEMON_DEFAULTS.logLevel;
  const kl = ctx.str(o, 'keylog', 'keylog');
  const keylog = kl !== undefined ? resolvePath(kl, opts.baseDir) : undefined;
  const dataPlane = ctx.oneOf(o, 'data_plane', 'data_plane', DATA_PLANES);
  const admission = parseAdmission(ctx, o);

  const tunnels: TunnelConfig[] = [];
  const rawTunnels = o.tunnels;
  if (rawTunnels !== undefined && !Array.isArray(rawTunnels)) ctx.err('tunnels', `must be an array, got ${typeName(rawTunnels)}`);
  else if (Array.isArray(rawTunnels)) {
    const seen = new Map<string, number>();
    rawTunnels.forEach((raw, i) => {
      const r = parseTunnel(ctx, raw, `tunnels[${i}]`, top, opts.baseDir);
      if (r.name !== undefined) {
        const prev = seen.get(r.name);
        if (prev !== undefined) ctx.err(`tunnels[${i}].name`, `duplicate tunnel name '${r.name}' (also tunnels[${prev}])`);
        else seen.set(r.name, i);
      }
      if (r.tunnel && r.enabled) tunnels.push(r.tunnel);
    });
  }

  if (ctx.errors.length) throw new ConfigValidationError(scrub(ctx.errors, pskStrings(json)));
  return {
    listen,
    ikePort,
    nattPort,
    controlSocket,
    tunnels,
    ...(keylog !== undefined ? { keylog } : {}),
    ...(dataPlane !== undefined ? { dataPlane } : {}),
    ...(admission !== undefined ? { admission } : {}),
    logLevel,
  };
}

/**
 * IKE_SA_INIT admission limits (docs/config.md "DoS protection"; strongSwan
 * charon.* names). Only the keys present are returned: the engine fills in
 * its defaults (firmware/ikev2/admission.ts ADMISSION_DEFAULTS).
 */
function parseAdmission(ctx: Ctx, o: Obj): AdmissionConfig | undefined {
  const out: AdmissionConfig = {};
  const n = (k: (typeof ADMISSION_KEYS)[number], min: number, max: number): number | undefined => ctx.int(o, k, k, min, max);
  const ct = n('cookie_threshold', 0, 1_000_000);
  const cti = n('cookie_threshold_ip', 0, 1_000_000);
  const bt = n('block_threshold', 1, 1_000_000);
  const lim = n('init_limit_half_open', 0, 1_000_000);
  const hot = n('half_open_timeout', 1, 3600);
  if (ct !== undefined) out.cookieThreshold = ct;
  if (cti !== undefined) out.cookieThresholdIp = cti;
  if (bt !== undefined) out.blockThreshold = bt;
  if (lim !== undefined) out.initLimitHalfOpen = lim;
  if (hot !== undefined) out.halfOpenTimeout = hot;
  return Object.keys(out).length ? out : undefined;
}

/** Position in a JSON text → "line L, column C". */
function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `line ${line}, column ${col}`;
}

/** Read, parse and validate a configuration file. Relative paths in it resolve against its directory. */
export function loadConfigFile(path: string, opts: Omit<ParseOptions, 'baseDir'> = {}): DaemonConfig {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError(path, 'not a regular file');
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError(path, `larger than ${MAX_CONFIG_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigValidationError([e]);
    throw new ConfigValidationError([new ConfigError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    const where = m ? ` at ${lineCol(text, Number(m[1]))}` : '';
    // The parser's message may quote a fragment of the text, which could be a PSK: do not include it.
    throw new ConfigValidationError([new ConfigError(path, `invalid JSON${where}`)]);
  }
  return parseDaemonConfig(json, { ...opts, baseDir: dirname(resolve(path)) });
}

/** A warning if the file is readable by group or others (it holds PSKs), else undefined. */
export function configPermissionWarning(path: string): string | undefined {
  try {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) return `${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); it holds pre-shared keys: chmod 600 it`;
  } catch {
    // unreadable: loadConfigFile reports it
  }
  return undefined;
}

/** The embedded default configuration (default-config.json), validated: listen on every address, no tunnels. */
export function defaultConfig(opts: ParseOptions = {}): DaemonConfig {
  return parseDaemonConfig(defaultConfigDocument(), opts);
}
