/**
 * Last line of defence for "secrets go in, never out" (api.ts): every reply
 * is checked for the running PSKs (as text and as hex) before it leaves the
 * daemon. The methods are written not to return secrets (the store strips
 * them, config.get puts "<set>" in their place); this catches a mistake
 * instead of shipping it. Exempt: `config.export` with includeSecrets (the
 * audited backup) and `keys.export` (session keys, admin socket only).
 * A reply that would leak is replaced by ERR_INTERNAL and logged, without
 * the secret.
 */
import type { TunnelConfig } from '../config/types.js';
import type { MethodHandler } from '../control/server.js';
import { ControlError, ControlErrorCode } from '../control/protocol.js';
import type { Logger } from '../log.js';

function needles(tunnels: readonly TunnelConfig[]): string[] {
  const out = new Set<string>();
  for (const t of tunnels) {
    if (t.auth !== 'psk' || t.psk.length === 0) continue;
    const hex = Buffer.from(t.psk).toString('hex');
    out.add(hex);
    // A text PSK as written (JSON-escaped the way the reply would carry it).
    const text = Buffer.from(t.psk).toString('utf8');
    if (!text.includes('\ufffd')) out.add(JSON.stringify(text).slice(1, -1));
  }
  return [...out].filter((n) => n.length >= 8);
}

function exempt(method: string, params: unknown): boolean {
  if (method === 'keys.export') return true;
  return method === 'config.export' && !!params && typeof params === 'object' && (params as { includeSecrets?: unknown }).includeSecrets === true;
}

export function guardSecrets(methods: Record<string, MethodHandler>, tunnels: () => readonly TunnelConfig[], log: Logger): Record<string, MethodHandler> {
  const out: Record<string, MethodHandler> = {};
  for (const [method, h] of Object.entries(methods)) {
    out[method] = async (params: unknown) => {
      const result = await h(params);
      if (exempt(method, params) || result === undefined) return result;
      const text = JSON.stringify(result);
      const lower = text.toLowerCase();
      for (const n of needles(tunnels())) {
        if (text.includes(n) || lower.includes(n)) {
          log.error('a reply would have carried a secret: withheld (bug)', { method });
          throw new ControlError(ControlErrorCode.INTERNAL, `internal error: the ${method} reply was withheld because it contained a secret`);
        }
      }
      return result;
    };
  }
  return out;
}
