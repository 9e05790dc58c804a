/**
 * What the pages and the REST API do with the daemon, in one place, so a
 * page and its API twin cannot drift apart. Everything here goes through
 * the control socket; nothing here sees a secret it could leak: documents
 * from the daemon are scrubbed again (defence in depth; the daemon already
 * replaces secrets by "<set>").
 */
import { ControlError } from '../firmware/control/protocol.js';
import { SECRET_PLACEHOLDER, type RevisionInfo } from '../firmware/control/api.js';
import { issuesFromError, isConnectionError, type DaemonApi, type Issue } from './daemon-client.js';
import { buildDashboard, fetchTunnelStatus, type ConfiguredTunnel, type DashboardModel } from './model.js';

type Obj = Record<string, unknown>;

const SECRET_KEYS = /^(psk|password|passphrase|secret|private_?key(_?pem)?|privateKeyPem|token)$/i;

/** Replace the value of every secret-named key by "<set>" (deep copy). */
export function scrubSecrets<T>(v: T): T {
  if (Array.isArray(v)) return v.map(scrubSecrets) as T;
  if (v && typeof v === 'object') {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v as Obj)) out[k] = SECRET_KEYS.test(k) && x !== null && x !== undefined && x !== '' ? SECRET_PLACEHOLDER : scrubSecrets(x);
    return out as T;
  }
  return v;
}

export interface ConfigView {
  revision: number;
  document: Obj & { tunnels: Obj[] };
}

export async function getConfig(d: DaemonApi): Promise<ConfigView> {
  const r = await d.call('config.get', {});
  const doc = scrubSecrets((r.document ?? {}) as Obj);
  const tunnels = Array.isArray(doc.tunnels) ? (doc.tunnels as Obj[]) : [];
  return { revision: r.revision, document: { ...doc, tunnels } };
}

export function configuredTunnels(c: ConfigView): ConfiguredTunnel[] {
  return c.document.tunnels
    .filter((t) => typeof t.name === 'string')
    .map((t) => ({
      name: t.name as string,
      ...(typeof t.enabled === 'boolean' ? { enabled: t.enabled } : {}),
      ...(typeof t.remote_addr === 'string' ? { remote_addr: t.remote_addr } : {}),
    }));
}

export async function dashboard(d: DaemonApi, now = Date.now()): Promise<DashboardModel> {
  try {
    const cfg = await getConfig(d);
    const configured = configuredTunnels(cfg);
    const st = await fetchTunnelStatus(d, configured);
    return buildDashboard(st, configured, now);
  } catch (e) {
    if (!isConnectionError(e)) throw e;
    return {
      generatedAt: now,
      daemon: 'unreachable',
      daemonError: (e as Error).message,
      tunnels: [],
      summary: { up: 0, degraded: 0, down: 0, connecting: 0, disabled: 0 },
    };
  }
}

export async function pending(d: DaemonApi): Promise<RevisionInfo | null> {
  try {
    return (await d.call('config.pending', {})).revision;
  } catch {
    return null;
  }
}

/** A failed change: validation issues (nothing changed) or another refusal. */
export class ChangeRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: Issue[],
  ) {
    super(message);
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  ERR_CONFIG: 422,
  ERR_STORE_PENDING: 409,
  ERR_STORE_NOT_PENDING: 409,
  ERR_STORE_CONFLICT: 409,
  ERR_STORE_EXISTS: 409,
  ERR_STORE_NOT_FOUND: 404,
  ERR_NO_SUCH_TUNNEL: 404,
  ERR_STORE_ARGUMENT: 400,
  ERR_INVALID_PARAMS: 400,
  ERR_STORE_AUTH: 400,
  ERR_STORE_CERTIFICATE: 400,
  ERR_CONNECTION: 503,
  ERR_TIMEOUT: 504,
  ERR_METHOD_NOT_FOUND: 501,
  ERR_STOPPING: 503,
  ERR_PERMISSION: 403,
};

/** A daemon error → HTTP status, code, message and (for validation) issues. */
export function refusal(e: unknown): ChangeRefused {
  if (e instanceof ChangeRefused) return e;
  if (e instanceof ControlError) {
    const issues = issuesFromError(e);
    const message = e.code === 'ERR_METHOD_NOT_FOUND' ? `the daemon does not support this yet (${e.message})` : issues ? `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'})` : e.message;
    return new ChangeRefused(STATUS_BY_CODE[e.code] ?? 500, e.code, message, issues);
  }
  throw e;
}

export interface TunnelChange {
  actor: string;
  comment?: string;
  confirmTimeoutSec?: number;
}

function changeOpts(c: TunnelChange): { actor: string; comment?: string; confirmTimeoutSec?: number } {
  return { actor: c.actor, ...(c.comment ? { comment: c.comment } : {}), ...(c.confirmTimeoutSec ? { confirmTimeoutSec: c.confirmTimeoutSec } : {}) };
}

export async function putTunnel(d: DaemonApi, tunnel: Obj, opts: TunnelChange & { preset?: string; params?: Record<string, string> }): Promise<RevisionInfo> {
  try {
    const r = await d.call('config.tunnel.put', {
      tunnel,
      ...(opts.preset ? { preset: opts.preset } : {}),
      ...(opts.params && Object.keys(opts.params).length ? { params: opts.params } : {}),
      ...changeOpts(opts),
    });
    return r.revision;
  } catch (e) {
    throw refusal(e);
  }
}

export async function deleteTunnel(d: DaemonApi, name: string, opts: TunnelChange): Promise<RevisionInfo> {
  try {
    return (await d.call('config.tunnel.delete', { name, ...changeOpts(opts) })).revision;
  } catch (e) {
    throw refusal(e);
  }
}

/** Parse a backup file's text; a syntax error is reported by position, never by quoting the text (it may hold PSKs). */
export function parseBackup(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    let where = '';
    if (m) {
      const before = text.slice(0, Number(m[1]));
      where = ` at line ${before.split('\n').length}`;
    }
    throw new ChangeRefused(422, 'ERR_CONFIG', 'the file is not valid JSON', [{ path: '(document)', message: `invalid JSON${where}` }]);
  }
}

/** Restore = validate first (every issue, nothing changed), then import as a new revision. */
export async function restore(d: DaemonApi, text: string, actor: string, comment?: string): Promise<RevisionInfo> {
  const document = parseBackup(text);
  let v;
  try {
    v = await d.call('config.validate', { document });
  } catch (e) {
    throw refusal(e);
  }
  if (!v.ok) throw new ChangeRefused(422, 'ERR_CONFIG', `the backup is not valid (${v.issues.length} problem${v.issues.length === 1 ? '' : 's'}); nothing was changed`, v.issues);
  try {
    return (await d.call('config.import', { document, actor, comment: comment || 'restored from a backup (web admin)' })).revision;
  } catch (e) {
    throw refusal(e);
  }
}

export const SA_ACTIONS = {
  up: { method: 'up', label: 'Initiate', question: 'Initiate tunnel', detail: 'Starts an IKE SA with the peer now.' },
  'rekey-ike': { method: 'rekey-ike', label: 'Rekey IKE SA', question: 'Rekey the IKE SA of', detail: 'Creates a new IKE SA (fresh keys, new ML-KEM exchange) and moves the Child SAs to it.' },
  'rekey-child': { method: 'rekey-child', label: 'Rekey Child SAs', question: 'Rekey the Child SAs of', detail: 'Replaces the ESP keys; traffic keeps flowing.' },
  reset: { method: 'reset', label: 'Reset', question: 'Reset tunnel', detail: 'Deletes the IKE SA with all its Child SAs and establishes it again: traffic stops briefly.' },
  down: { method: 'down', label: 'Delete SAs', question: 'Delete the SAs of', detail: 'Deletes the IKE SA and its Child SAs and stops re-initiating until "Initiate". Traffic through the tunnel stops.' },
} as const;
export type SaAction = keyof typeof SA_ACTIONS;

export function isSaAction(a: string): a is SaAction {
  return Object.prototype.hasOwnProperty.call(SA_ACTIONS, a);
}

export async function saAction(d: DaemonApi, tunnel: string, action: SaAction, actor: string): Promise<void> {
  try {
    await d.call(SA_ACTIONS[action].method, { tunnel, actor });
  } catch (e) {
    throw refusal(e);
  }
}

/** Run a change and turn daemon errors into refusals. */
export async function change<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw refusal(e);
  }
}
