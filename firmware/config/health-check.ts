/**
 * `health_check` of a tunnel (docs/config.md): an active ICMP probe through
 * the tunnel. Names follow the brief of issue 6 and FortiOS link-monitor
 * (server → target, srcintf/source-ip → source, interval, probe-timeout →
 * timeout, failtime → failures); seconds like every other pqgate interval.
 */
import type { HealthCheckConfig, TsConfig } from './types.js';
import { ipToBytes } from '../util/ip.js';

/** The subset of schema.ts's validation context this parser uses. */
export interface HealthCheckCtx {
  err(path: string, msg: string): undefined;
  keys(o: Record<string, unknown>, allowed: readonly string[], path: string): void;
  int(o: Record<string, unknown>, k: string, path: string, min: number, max: number, extra?: string): number | undefined;
  ip(o: Record<string, unknown>, k: string, path: string): string | undefined;
}

export const HEALTH_CHECK_KEYS = ['target', 'source', 'interval', 'timeout', 'failures'] as const;
export const HEALTH_CHECK_DEFAULTS = { interval: 10, timeout: 2, failures: 3 } as const;

function inRange(addr: Uint8Array, ts: TsConfig): boolean {
  if (addr.length !== ts.startAddr.length) return false;
  let geStart = true;
  let leEnd = true;
  for (let i = 0; i < addr.length; i++) {
    if (addr[i] !== ts.startAddr[i]) {
      geStart = addr[i]! > ts.startAddr[i]!;
      break;
    }
  }
  for (let i = 0; i < addr.length; i++) {
    if (addr[i] !== ts.endAddr[i]) {
      leEnd = addr[i]! < ts.endAddr[i]!;
      break;
    }
  }
  return geStart && leEnd;
}

/**
 * Validate `t.health_check` (path `P('health_check')`). The target must lie
 * inside the remote traffic selectors (else the probe would not enter the
 * tunnel) and the source, when given, inside the local ones.
 */
export function parseHealthCheck(
  ctx: HealthCheckCtx,
  t: Record<string, unknown>,
  path: string,
  sel: { localTs: TsConfig[] | undefined; remoteTs: TsConfig[] | undefined; insideAddr?: string },
): HealthCheckConfig | undefined {
  const v = t.health_check;
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return ctx.err(path, `must be an object like { "target": "10.0.0.1", "interval": 10 }, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  const o = v as Record<string, unknown>;
  ctx.keys(o, HEALTH_CHECK_KEYS, path);
  const target = o.target === undefined ? ctx.err(`${path}.target`, 'is required') : ctx.ip(o, 'target', `${path}.target`);
  const source = ctx.ip(o, 'source', `${path}.source`);
  const interval = ctx.int(o, 'interval', `${path}.interval`, 1, 3600) ?? HEALTH_CHECK_DEFAULTS.interval;
  const timeout = ctx.int(o, 'timeout', `${path}.timeout`, 1, 60) ?? HEALTH_CHECK_DEFAULTS.timeout;
  const failures = ctx.int(o, 'failures', `${path}.failures`, 1, 100) ?? HEALTH_CHECK_DEFAULTS.failures;
  if (timeout > interval) ctx.err(`${path}.timeout`, `must not exceed interval (${interval} s), got ${timeout}`);
  if (target !== undefined && sel.remoteTs && !sel.remoteTs.some((ts) => inRange(ipToBytes(target), ts)))
    ctx.err(`${path}.target`, `${target} is outside remote_ts (${sel.remoteTs.map((x) => x.text).join(', ')}): the probe would not go through the tunnel`);
  if (source !== undefined && sel.localTs && !sel.localTs.some((ts) => inRange(ipToBytes(source), ts)) && !(sel.insideAddr && sel.insideAddr.split('/')[0] === source))
    ctx.err(`${path}.source`, `${source} is outside local_ts (${sel.localTs.map((x) => x.text).join(', ')}): the reply would not come back through the tunnel`);
  if (target === undefined) return undefined;
  return { target, ...(source !== undefined ? { source } : {}), interval, timeout, failures };
}
