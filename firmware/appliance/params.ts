/**
 * Checking control-method parameters (firmware/control/api.ts). Anything a
 * client sends is untrusted: every reader checks the type and answers
 * ERR_INVALID_PARAMS with the parameter's name, never echoing a value that
 * could be a secret.
 */
import { ControlError, ControlErrorCode } from '../control/protocol.js';

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function bad(msg: string): ControlError {
  return new ControlError(ControlErrorCode.INVALID_PARAMS, msg);
}

/** params as an object (absent = {}). */
export function obj(params: unknown): Obj {
  if (params === undefined || params === null) return {};
  if (!isObj(params)) throw bad('params must be an object');
  return params;
}

export function str(p: Obj, k: string, opts: { max?: number } = {}): string {
  const v = p[k];
  if (typeof v !== 'string' || v === '') throw bad(`params.${k} (non-empty string) is required`);
  if (v.length > (opts.max ?? 4096)) throw bad(`params.${k} is longer than ${opts.max ?? 4096} characters`);
  return v;
}

export function optStr(p: Obj, k: string, opts: { max?: number } = {}): string | undefined {
  return p[k] === undefined ? undefined : str(p, k, opts);
}

export function optInt(p: Obj, k: string, min: number, max: number): number | undefined {
  const v = p[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`params.${k} must be an integer between ${min} and ${max}`);
  return v;
}

export function int(p: Obj, k: string, min: number, max: number): number {
  const v = optInt(p, k, min, max);
  if (v === undefined) throw bad(`params.${k} (integer) is required`);
  return v;
}

export function optBool(p: Obj, k: string): boolean | undefined {
  const v = p[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(`params.${k} must be true or false`);
  return v;
}

/** `actor`: who asks (printable, at most 128 characters); required for changes. */
export function actor(p: Obj): string {
  const a = p.actor;
  if (typeof a !== 'string' || a.trim() === '' || a.length > 128 || /[\u0000-\u001f\u007f]/.test(a))
    throw bad('params.actor (who asks: a non-empty printable string of at most 128 characters) is required');
  return a;
}

export function optActor(p: Obj): string | undefined {
  return p.actor === undefined ? undefined : actor(p);
}

/** The change options of config.* methods in the store's form. */
export function changeOpts(p: Obj): { author: string; comment?: string; confirmTimeoutSec?: number } {
  const comment = optStr(p, 'comment', { max: 2000 });
  const confirmTimeoutSec = optInt(p, 'confirmTimeoutSec', 1, 7 * 86400);
  return { author: actor(p), ...(comment !== undefined ? { comment } : {}), ...(confirmTimeoutSec !== undefined ? { confirmTimeoutSec } : {}) };
}

/** A string → string map (preset params). */
export function optStrMap(p: Obj, k: string): Record<string, string> | undefined {
  const v = p[k];
  if (v === undefined) return undefined;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) throw bad(`params.${k} must be an object of strings`);
  return v as Record<string, string>;
}
