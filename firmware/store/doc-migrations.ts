/**
 * Document-level migrations: a backup (or a revision snapshot) records the
 * schema_version of the firmware that wrote it; restoring it on a newer
 * firmware first lifts the document through each step below, mirroring the
 * SQL migrations of schema.ts. Like those, existing steps are frozen.
 *
 *   1 → 2  v2 introduced per-tunnel presets: v1 backups have no
 *          `tunnel_presets`; it becomes an empty map.
 *   2 → 3  v3 added commit-confirmed metadata to revisions only; the document
 *          is unchanged apart from its schema_version.
 *   3 → 4  v4 can hold every document key (auth pubkey, mtu, data_plane...);
 *          a v3 document never carries them (v3 refused them), so it is
 *          unchanged apart from its schema_version.
 *   4 → 5  v5 added `health_check` (and `dpd_mode`, `dpd_action: hold`); a
 *          v4 document never carries them, so it is unchanged apart from
 *          its schema_version.
 */
import { ConfigError } from '../util/errors.js';
import { SCHEMA_VERSION } from './schema.js';

type Obj = Record<string, unknown>;

export interface DocumentMigration {
  readonly from: number;
  readonly to: number;
  /** Returns a new object; problems are reported with their field path. */
  up(doc: Obj, errors: ConfigError[]): Obj;
}

export const DOCUMENT_MIGRATIONS: readonly DocumentMigration[] = [
  {
    from: 1,
    to: 2,
    up(doc, errors) {
      if (doc.tunnel_presets !== undefined) errors.push(new ConfigError('tunnel_presets', 'not part of a schema_version 1 backup'));
      const { tunnel_presets: _drop, ...rest } = doc;
      return { ...rest, schema_version: 2, tunnel_presets: {} };
    },
  },
  {
    from: 2,
    to: 3,
    up(doc) {
      return { ...doc, schema_version: 3 };
    },
  },
  {
    from: 3,
    to: 4,
    up(doc) {
      return { ...doc, schema_version: 4 };
    },
  },
  {
    from: 4,
    to: 5,
    up(doc) {
      return { ...doc, schema_version: 5 };
    },
  },
  {
    // v6 adds the optional top-level admission keys; older documents have none (= defaults).
    from: 5,
    to: 6,
    up(doc) {
      return { ...doc, schema_version: 6 };
    },
  },
];

/**
 * Bring a backup document to the current schema_version. `errors` receives a
 * problem with schema_version itself (then the document is returned as is,
 * so the rest can still be validated and every error reported at once).
 */
export function migrateDocument(doc: Obj, errors: ConfigError[]): Obj {
  const v = doc.schema_version;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    errors.push(new ConfigError('schema_version', `must be an integer, got ${v === null ? 'null' : typeof v}`));
    return doc;
  }
  if (v > SCHEMA_VERSION) {
    errors.push(new ConfigError('schema_version', `backup from a newer firmware (schema ${v}; this firmware reads up to ${SCHEMA_VERSION})`));
    return doc;
  }
  if (v < 1) {
    errors.push(new ConfigError('schema_version', `must be between 1 and ${SCHEMA_VERSION}, got ${v}`));
    return doc;
  }
  let cur = doc;
  for (const m of DOCUMENT_MIGRATIONS) if ((cur.schema_version as number) === m.from) cur = m.up(cur, errors);
  return cur;
}
