/**
 * Errors of the configuration store. Validation problems of a configuration
 * document are ConfigValidationError (config/schema.ts) so that every caller
 * sees one error type with field paths; everything else is a StoreError with
 * a stable `code`.
 */
import { PqError } from '../util/errors.js';

export const StoreErrorCode = {
  /** The database was written by a newer firmware (user_version above ours). */
  SCHEMA_NEWER: 'ERR_STORE_SCHEMA_NEWER',
  /** PRAGMA quick_check / integrity_check failed. */
  CORRUPT: 'ERR_STORE_CORRUPT',
  /** The database directory or file is accessible by group/others and cannot be fixed. */
  PERMISSIONS: 'ERR_STORE_PERMISSIONS',
  /** A commit-confirmed revision is pending: confirm or cancel it first. */
  PENDING: 'ERR_STORE_PENDING',
  /** Nothing to confirm / cancel. */
  NOT_PENDING: 'ERR_STORE_NOT_PENDING',
  NOT_FOUND: 'ERR_STORE_NOT_FOUND',
  /** Bad API argument (author, comment, timeout, user name, password policy...). */
  ARGUMENT: 'ERR_STORE_ARGUMENT',
  /** Unique constraint: the user / certificate already exists. */
  EXISTS: 'ERR_STORE_EXISTS',
  /** Wrong current password. */
  AUTH: 'ERR_STORE_AUTH',
  /** The configuration changed between reading and committing (another writer). */
  CONFLICT: 'ERR_STORE_CONFLICT',
  /** Certificate / key material that does not parse or does not match. */
  CERTIFICATE: 'ERR_STORE_CERTIFICATE',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends PqError {
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
