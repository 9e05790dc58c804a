/**
 * Error classes with stable codes (the undici / js-libp2p idiom): callers branch
 * on `code`, never on message text. Exceptions are for bugs and for typed
 * protocol failures that the engine turns into notifies or silent drops.
 */
export class PqError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Malformed wire input. `offset` is relative to the buffer handed to the parser. */
export class ParseError extends PqError {
  readonly offset: number;
  readonly payloadType: number | undefined;
  constructor(message: string, offset: number, payloadType?: number) {
    super('ERR_PARSE', `${message} (offset ${offset}${payloadType !== undefined ? `, payload ${payloadType}` : ''})`);
    this.offset = offset;
    this.payloadType = payloadType;
  }
}

/** Integrity check / AEAD tag failure: always a silent drop (RFC 7296 §2.21.2). */
export class AuthTagError extends PqError {
  constructor(message = 'integrity check failed') {
    super('ERR_ICV', message);
  }
}

/** A key exchange input failed validation (bad ek/ct length, point not on curve, ...). */
export class KeyExchangeError extends PqError {
  constructor(message: string) {
    super('ERR_KE', message);
  }
}

/** Invalid configuration; `path` names the offending field, e.g. `tunnels[0].proposals`. */
export class ConfigError extends PqError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_CONFIG', `${path}: ${message}`);
    this.path = path;
  }
}

/** Argument validation at a module boundary (noble style: names the argument). */
export function assertBytes(name: string, v: unknown, len?: number): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`);
  if (len !== undefined && v.length !== len) throw new TypeError(`${name}: expected ${len} bytes, got ${v.length}`);
}
