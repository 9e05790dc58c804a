/**
 * `pqgate config ...`: the configuration store through the daemon
 * (docs/cli.md "Configuration"). Documents go to the daemon as text, so a
 * JSON syntax error is reported by position and never quoted (it may hold a
 * PSK); validation errors come back with every field path.
 */
import { writeFileSync } from 'node:fs';
import type { ControlResult, RevisionInfo } from './api.js';
import { TUNNEL_BOOL_FIELDS, TUNNEL_INT_FIELDS, TUNNEL_LIST_FIELDS } from '../store/document.js';
import { EXIT_ERROR, EXIT_OK, UsageError, cliActor, flag, intFlag, readInput, withClient, type CliIo, type Parsed } from './cli-args.js';

const INT_FIELDS = new Set<string>([...TUNNEL_INT_FIELDS, 'mtu']);
const BOOL_FIELDS = new Set<string>(TUNNEL_BOOL_FIELDS);
const LIST_FIELDS = new Set<string>([...TUNNEL_LIST_FIELDS, 'ca_certs', 'allowed_schemes']);

/** `key=value` → [key, typed value]: integers, booleans and comma-separated lists by field, strings otherwise. */
export function tunnelField(kv: string): [string, unknown] {
  const eq = kv.indexOf('=');
  if (eq <= 0) throw new UsageError(`--set expects KEY=VALUE, got '${kv.slice(0, 40)}'`);
  const k = kv.slice(0, eq);
  const v = kv.slice(eq + 1);
  if (INT_FIELDS.has(k)) {
    if (!/^-?\d+$/.test(v)) throw new UsageError(`--set ${k}: expects an integer`);
    return [k, Number(v)];
  }
  if (BOOL_FIELDS.has(k)) {
    if (v !== 'true' && v !== 'false') throw new UsageError(`--set ${k}: expects true or false`);
    return [k, v === 'true'];
  }
  if (LIST_FIELDS.has(k)) return [k, v.split(',').map((x) => x.trim()).filter(Boolean)];
  if (k === 'health_check') return [k, healthCheckValue(v)];
  return [k, v];
}

/**
 * `--set health_check=target=10.2.0.1,interval=5,failures=3` (or a JSON
 * object): the daemon's validation then checks every field with its
 * config-file message (docs/config.md).
 */
function healthCheckValue(v: string): Record<string, unknown> {
  if (v.trim().startsWith('{')) {
    try {
      const o = JSON.parse(v) as unknown;
      if (o && typeof o === 'object' && !Array.isArray(o)) return o as Record<string, unknown>;
    } catch {
      // fall through: reported below without quoting the input
    }
    throw new UsageError('--set health_check: expects a JSON object or target=ADDR[,source=ADDR][,interval=S][,timeout=S][,failures=N]');
  }
  const out: Record<string, unknown> = {};
  for (const part of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set health_check: expects KEY=VALUE pairs separated by commas, got '${part.slice(0, 40)}'`);
    const key = part.slice(0, eq);
    const val = part.slice(eq + 1);
    out[key] = /^(interval|timeout|failures)$/.test(key) && /^\d+$/.test(val) ? Number(val) : val;
  }
  return out;
}

function params(p: Parsed): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of p.multi.get('--param') ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--param expects NAME=VALUE, got '${kv.slice(0, 40)}'`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function changeParams(p: Parsed): { actor: string; comment?: string; confirmTimeoutSec?: number } {
  const comment = flag(p, '--comment');
  const t = intFlag(p, '--confirm-timeout', 1, 7 * 86400);
  return { actor: cliActor(), ...(comment !== undefined ? { comment } : {}), ...(t !== undefined ? { confirmTimeoutSec: t } : {}) };
}

function revisionText(r: RevisionInfo): string {
  if (r.state === 'pending' && r.confirmDeadline)
    return `revision ${r.id} applied, pending confirmation until ${new Date(r.confirmDeadline).toISOString()}: run \`pqgate config confirm\` before then, or it rolls back by itself\n`;
  return `revision ${r.id} ${r.state === 'rolled-back' ? 'rolled back' : 'committed'}\n`;
}

function historyLine(r: RevisionInfo): string {
  const state = r.state === 'pending' ? `pending until ${new Date(r.confirmDeadline ?? 0).toISOString()}` : r.state;
  return `#${r.id}  ${new Date(r.createdAt).toISOString()}  ${r.author}  ${state}${r.comment ? `  ${r.comment}` : ''}\n`;
}

async function tunnelCmd(sub: string | undefined, args: string[], p: Parsed, io: CliIo): Promise<number> {
  if (args.length !== 1) throw new UsageError(`config tunnel ${sub ?? ''} needs exactly one tunnel name`);
  const name = args[0]!;
  const change = changeParams(p);
  if (sub === 'delete') {
    const r = await withClient(p, io, (c) => c.call<{ revision: RevisionInfo }>('config.tunnel.delete', { name, ...change }), 30_000);
    io.out(revisionText(r.revision));
    return EXIT_OK;
  }
  if (sub !== 'add' && sub !== 'set') throw new UsageError('config tunnel needs add, set or delete');
  const tunnel: Record<string, unknown> = { name };
  for (const kv of p.multi.get('--set') ?? []) {
    const [k, v] = tunnelField(kv);
    if (k === 'name') throw new UsageError('--set name: the name is the argument');
    tunnel[k] = v;
  }
  for (const k of p.multi.get('--unset') ?? []) {
    if (sub === 'add') throw new UsageError('--unset is for `config tunnel set`');
    tunnel[k] = null; // JSON merge patch: back to the default
  }
  const pskFile = flag(p, '--psk-file');
  if (pskFile !== undefined) tunnel.psk = (await readInput(pskFile, io)).split(/\r?\n/)[0] ?? '';
  const preset = flag(p, '--preset');
  if (preset !== undefined && sub !== 'add') throw new UsageError('--preset is for `config tunnel add`');
  if (p.multi.has('--param') && preset === undefined) throw new UsageError('--param fills the templates of a --preset');
  const r = await withClient(
    p,
    io,
    async (c) => {
      if (sub === 'add') {
        const doc = await c.call<ControlResult<'config.get'>>('config.get');
        if ((doc.document as { tunnels: { name: string }[] }).tunnels.some((t) => t.name === name)) throw new UsageError(`a tunnel named '${name}' exists: use \`pqgate config tunnel set ${name} ...\``);
      } else {
        const doc = await c.call<ControlResult<'config.get'>>('config.get');
        if (!(doc.document as { tunnels: { name: string }[] }).tunnels.some((t) => t.name === name)) throw new UsageError(`no tunnel named '${name}': use \`pqgate config tunnel add ${name} ...\``);
      }
      return c.call<{ revision: RevisionInfo }>('config.tunnel.put', { tunnel, ...(preset !== undefined ? { preset, params: params(p) } : {}), ...change });
    },
    30_000,
  );
  io.out(revisionText(r.revision));
  return EXIT_OK;
}

export async function cmdConfig(p: Parsed, io: CliIo): Promise<number> {
  const [sub, ...args] = p.positional;
  const json = p.flags.has('--json');
  const noArgs = () => {
    if (args.length) throw new UsageError(`config ${sub}: unexpected argument`);
  };
  switch (sub) {
    case 'get': {
      noArgs();
      const r = await withClient(p, io, (c) => c.call<ControlResult<'config.get'>>('config.get'));
      io.out(JSON.stringify(json ? r : r.document, null, 2) + '\n');
      return EXIT_OK;
    }
    case 'set':
    case 'import': {
      if (args.length !== 1) throw new UsageError(`config ${sub} needs one FILE (- = standard input)`);
      const document = await readInput(args[0]!, io);
      const r = await withClient(p, io, (c) => c.call<{ revision: RevisionInfo }>(`config.${sub}`, { document, ...changeParams(p) }), 30_000);
      io.out(revisionText(r.revision));
      return EXIT_OK;
    }
    case 'validate': {
      if (args.length !== 1) throw new UsageError('config validate needs one FILE (- = standard input)');
      const document = await readInput(args[0]!, io);
      const r = await withClient(p, io, (c) => c.call<ControlResult<'config.validate'>>('config.validate', { document }));
      if (json) io.out(JSON.stringify(r) + '\n');
      else if (r.ok) io.out(`${args[0]}: OK\n`);
      else io.err(`${args[0]}: invalid configuration (${r.issues.length} error${r.issues.length === 1 ? '' : 's'}):\n${r.issues.map((i) => `  ${i.path}: ${i.message}\n`).join('')}`);
      return r.ok ? EXIT_OK : EXIT_ERROR;
    }
    case 'export': {
      noArgs();
      const includeSecrets = p.flags.has('--include-secrets');
      const r = await withClient(p, io, (c) => c.call<ControlResult<'config.export'>>('config.export', { includeSecrets, actor: cliActor() }));
      const text = JSON.stringify(r.document, null, 2) + '\n';
      const out = flag(p, '--out');
      if (out === undefined) io.out(text);
      else {
        writeFileSync(out, text, { mode: 0o600 });
        io.out(`wrote ${out}${includeSecrets ? ' (contains the PSKs: keep it private)' : ''}\n`);
      }
      return EXIT_OK;
    }
    case 'history': {
      noArgs();
      const limit = intFlag(p, '--limit', 1, 1000) ?? 20;
      const rows = await withClient(p, io, (c) => c.call<RevisionInfo[]>('config.history', { limit }));
      io.out(json ? JSON.stringify(rows, null, 2) + '\n' : rows.map(historyLine).join(''));
      return EXIT_OK;
    }
    case 'diff': {
      if (args.length > 2 || args.some((a) => !/^\d+$/.test(a))) throw new UsageError('config diff [FROM [TO]] takes revision numbers');
      const r = await withClient(p, io, async (c) => {
        let from: number;
        let to: number;
        if (args.length === 2) [from, to] = [Number(args[0]), Number(args[1])];
        else {
          const h = await c.call<RevisionInfo[]>('config.history', { limit: 2 });
          to = h[0]!.id;
          from = args.length === 1 ? Number(args[0]) : (h[1]?.id ?? to);
        }
        return { from, to, ...(await c.call<ControlResult<'config.diff'>>('config.diff', { from, to })) };
      });
      io.out(json ? JSON.stringify(r, null, 2) + '\n' : `--- revision ${r.from}\n+++ revision ${r.to}\n${r.text}${r.text.endsWith('\n') || !r.text ? '' : '\n'}`);
      return EXIT_OK;
    }
    case 'rollback': {
      if (args.length !== 1 || !/^\d+$/.test(args[0]!)) throw new UsageError('config rollback needs a revision number');
      const r = await withClient(p, io, (c) => c.call<{ revision: RevisionInfo }>('config.rollback', { revision: Number(args[0]), ...changeParams(p) }), 30_000);
      io.out(revisionText(r.revision));
      return EXIT_OK;
    }
    case 'confirm': {
      noArgs();
      const r = await withClient(p, io, (c) => c.call<{ revision: RevisionInfo }>('config.confirm', { actor: cliActor() }));
      io.out(`revision ${r.revision.id} confirmed\n`);
      return EXIT_OK;
    }
    case 'cancel': {
      noArgs();
      const r = await withClient(p, io, (c) => c.call<{ revision: RevisionInfo }>('config.cancel', { actor: cliActor() }), 30_000);
      io.out(`pending revision cancelled: back to the previous configuration as revision ${r.revision.id}\n`);
      return EXIT_OK;
    }
    case 'pending': {
      noArgs();
      const r = await withClient(p, io, (c) => c.call<ControlResult<'config.pending'>>('config.pending'));
      io.out(json ? JSON.stringify(r) + '\n' : r.revision ? historyLine(r.revision) : 'no revision awaits confirmation\n');
      return EXIT_OK;
    }
    case 'presets': {
      noArgs();
      const rows = await withClient(p, io, (c) => c.call<ControlResult<'config.presets'>>('config.presets'));
      if (json) io.out(JSON.stringify(rows, null, 2) + '\n');
      else
        for (const r of rows)
          io.out(`${r.name}: ${r.title ?? r.description}\n  requires: ${(r.requires ?? []).join(', ') || '-'}${Object.keys(r.params ?? {}).length ? `; --param ${Object.keys(r.params ?? {}).join(', --param ')}` : ''}\n`);
      return EXIT_OK;
    }
    case 'tunnel':
      return tunnelCmd(args[0], args.slice(1), p, io);
  }
  throw new UsageError('config needs get, set, import, export, validate, diff, rollback, confirm, cancel, pending, history, presets or tunnel');
}
