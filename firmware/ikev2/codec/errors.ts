/**
 * Typed codec failures beyond plain ParseError / AuthTagError. Each maps to
 * one engine reaction (RFC 7296 §2.21):
 *   InvalidMajorVersionError        -> INVALID_MAJOR_VERSION (§2.5, §3.1)
 *   UnsupportedCriticalPayloadError -> UNSUPPORTED_CRITICAL_PAYLOAD (§2.5, §3.2)
 *   MessageRuleError                -> INVALID_SYNTAX (§2.21.2/§2.21.3) or a drop
 *   FragmentLimitError              -> silent drop (RFC 7383 §2.6: local limits)
 * The engine branches on `code`, never on the message text.
 */
import { PqError, ParseError, AuthTagError } from '../../util/errors.js';

/** Header fields readable even when the major version is foreign (needed to answer). */
export interface ForeignHeaderInfo {
  spiI: Uint8Array;
  spiR: Uint8Array;
  exchange: number;
  messageId: number;
  response: boolean;
  initiator: boolean;
}

export class InvalidMajorVersionError extends PqError {
  readonly majorVersion: number;
  readonly minorVersion: number;
  readonly header: ForeignHeaderInfo;
  constructor(majorVersion: number, minorVersion: number, header: ForeignHeaderInfo) {
    super('ERR_IKE_MAJOR_VERSION', `unsupported IKE major version ${majorVersion}.${minorVersion}`);
    this.majorVersion = majorVersion;
    this.minorVersion = minorVersion;
    this.header = header;
  }
}

/** An unrecognised payload with the critical bit set (RFC 7296 §2.5). */
export class UnsupportedCriticalPayloadError extends PqError {
  /** Goes into the one-octet notification data of UNSUPPORTED_CRITICAL_PAYLOAD. */
  readonly payloadType: number;
  constructor(payloadType: number) {
    super('ERR_UNSUPPORTED_CRITICAL_PAYLOAD', `unsupported critical payload type ${payloadType}`);
    this.payloadType = payloadType;
  }
}

export type RuleViolation =
  | 'unknown-exchange' // no rule for this exchange type / direction
  | 'must-be-encrypted' // exchange requires SK, message was plain
  | 'must-not-be-encrypted' // IKE_SA_INIT carried SK/SKF
  | 'not-allowed' // payload type not allowed in this message
  | 'not-encrypted' // payload appeared outside SK although it must be protected
  | 'too-many' // more occurrences than allowed
  | 'missing' // mandatory payload absent
  | 'incomplete-group'; // e.g. SA without TSi/TSr

/** The message is well-formed but violates the per-exchange payload rules (rules.ts). */
export class MessageRuleError extends PqError {
  readonly violation: RuleViolation;
  readonly payloadType: number | undefined;
  readonly exchange: number;
  constructor(violation: RuleViolation, exchange: number, payloadType: number | undefined, detail: string) {
    super('ERR_MESSAGE_RULE', detail);
    this.violation = violation;
    this.exchange = exchange;
    this.payloadType = payloadType;
  }
}

/** A fragment set exceeds a local reassembly bound (fragments, bytes). */
export class FragmentLimitError extends PqError {
  readonly limit: 'fragments' | 'bytes';
  constructor(limit: 'fragments' | 'bytes', message: string) {
    super('ERR_FRAGMENT_LIMIT', message);
    this.limit = limit;
  }
}

/** True for every error the codec throws on hostile input (anything else is a bug). */
export function isCodecError(e: unknown): e is ParseError | AuthTagError | InvalidMajorVersionError | UnsupportedCriticalPayloadError | MessageRuleError | FragmentLimitError {
  return (
    e instanceof ParseError ||
    e instanceof AuthTagError ||
    e instanceof InvalidMajorVersionError ||
    e instanceof UnsupportedCriticalPayloadError ||
    e instanceof MessageRuleError ||
    e instanceof FragmentLimitError
  );
}

/**
 * Marks an error raised *after* the integrity check passed (the message is
 * authenticated but malformed inside): the engine answers such a request
 * with INVALID_SYNTAX / UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §2.21.2),
 * where an unauthenticated one is dropped silently.
 */
export function markAuthenticated<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error) (e as Error & { authenticated?: boolean }).authenticated = true;
    throw e;
  }
}

export function isAuthenticatedError(e: unknown): boolean {
  return e instanceof Error && (e as Error & { authenticated?: boolean }).authenticated === true;
}
