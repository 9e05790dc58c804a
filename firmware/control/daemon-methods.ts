/**
 * The control methods a bare Daemon serves when it opens its own control
 * socket (embedding without the appliance layer, e.g. an image launcher
 * that predates it): status, tunnel commands, reload, version. `pqgate
 * daemon` runs the appliance (firmware/appliance/), which serves the whole
 * ControlApi (api.ts) instead; both answer these methods the same way.
 */
import type { Command } from '../ikev2/engine-types.js';
import type { Daemon } from '../daemon.js';
import { packageVersion } from '../appliance/version.js';
import { ControlError, ControlErrorCode } from './protocol.js';
import type { MethodHandler } from './server.js';

/** `params.tunnel` (or `params.name`) as a non-empty string, else ERR_INVALID_PARAMS. */
export function tunnelParam(params: unknown): string {
  const p = params as { tunnel?: unknown; name?: unknown } | null | undefined;
  const t = p && typeof p === 'object' ? (p.tunnel ?? p.name) : undefined;
  if (typeof t !== 'string' || t === '') throw new ControlError(ControlErrorCode.INVALID_PARAMS, 'params.tunnel (string) is required');
  return t;
}

/** ERR_NO_SUCH_TUNNEL naming the configured tunnels. */
export function noSuchTunnel(name: string, configured: string[]): ControlError {
  return new ControlError(ControlErrorCode.NO_SUCH_TUNNEL, `no tunnel named '${name.slice(0, 64)}' (configured: ${configured.join(', ') || 'none'})`);
}

/** The `version` reply (api.ts: version + protocol, plus what `pqgate version` shows). */
export function versionInfo(d: Daemon): Record<string, unknown> {
  return {
    name: 'pqgate',
    version: packageVersion(),
    protocol: 1,
    node: process.version,
    pid: process.pid,
    ...d.uptime(),
    dataPlane: d.dataPlaneName,
    tunnels: d.config.tunnels.map((t) => t.name),
  };
}

/** Run a per-tunnel engine command after checking the name. */
export function tunnelCommand(d: Daemon, kind: Command['kind'], params: unknown): { ok: true; tunnel: string; command: string } {
  d.assertRunning();
  const tunnel = tunnelParam(params);
  if (!d.hasTunnel(tunnel)) throw noSuchTunnel(tunnel, d.config.tunnels.map((t) => t.name));
  // Optional narrowing to one IKE SA (status id) / one Child SA (reqid).
  const p = (params ?? {}) as { sa?: unknown; child?: unknown };
  const num = (v: unknown, name: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ControlError(ControlErrorCode.INVALID_PARAMS, `params.${name} must be a non-negative integer`);
    return v;
  };
  const sa = num(p.sa, 'sa');
  const child = num(p.child, 'child');
  d.command({ kind, tunnel, ...(sa !== undefined ? { sa } : {}), ...(child !== undefined ? { child } : {}) } as Command);
  return { ok: true, tunnel, command: kind };
}

export function basicMethods(d: Daemon): Record<string, MethodHandler> {
  const cmd = (kind: Command['kind']) => (p: unknown) => tunnelCommand(d, kind, p);
  return {
    status: () => d.statusWithCounters(),
    up: cmd('up'),
    down: cmd('down'),
    dpd: cmd('dpd'),
    'rekey-ike': cmd('rekey-ike'),
    'rekey-child': cmd('rekey-child'),
    reload: async () => {
      const r = await d.reload();
      return { tunnels: r.tunnels.length, names: r.tunnels, restartRequired: r.restartRequired };
    },
    version: () => versionInfo(d),
  };
}
