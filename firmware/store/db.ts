/**
 * Opening the store's SQLite database safely.
 *
 * - File mode 0600 and directory mode 0700: the database holds PSKs and
 *   private keys. SQLite creates the -wal and -shm files with the main
 *   file's permissions; they are re-checked here anyway.
 * - journal_mode = WAL with synchronous = FULL: a transaction that returned
 *   has been fsynced into the WAL, so a crash (kill -9, power loss) after
 *   commit keeps it, and a crash before commit leaves no trace of it
 *   (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous).
 * - foreign_keys = ON, a busy timeout for a reader (web UI) opening beside
 *   the daemon, and a quick_check at open so corruption is reported, not
 *   propagated.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { migrate } from './schema.js';
import { StoreError, StoreErrorCode } from './errors.js';

export type Db = Database.Database;

export interface OpenDatabaseOptions {
  /** Migrate to this schema version (tests build old databases); default: newest. */
  targetVersion?: number;
  /** Skip migrations entirely (inspection of an old file). */
  noMigrate?: boolean;
  readonly?: boolean;
}

function ensurePrivateDir(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // mkdir's mode is filtered by the umask
    return;
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new StoreError(StoreErrorCode.PERMISSIONS, `${dir} is not a directory`);
  // Private = nobody else can list it or create, rename or delete entries in it. Search (x) alone is
  // allowed: on the appliance /data holds the database and, below it, the unprivileged web admin's own
  // directory, which that process must be able to reach; the database files themselves are 0600.
  if ((st.mode & 0o066) === 0) return;
  // Tighten our own directory; never touch a shared one (sticky /tmp, someone else's).
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (st.uid === uid && (st.mode & 0o1000) === 0) {
    chmodSync(dir, 0o700);
    return;
  }
  throw new StoreError(StoreErrorCode.PERMISSIONS, `${dir} is accessible by other users (mode ${(st.mode & 0o7777).toString(8)}); the store needs a private directory (0700)`);
}

function tightenFile(path: string): void {
  if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
}

/** Open (creating if needed) the store database at `path` and migrate it. */
export function openDatabase(path: string, opts: OpenDatabaseOptions = {}): Db {
  const file = resolve(path);
  if (!opts.readonly) {
    ensurePrivateDir(dirname(file));
    // Create the file ourselves with 0600 so there is no window with the umask's mode.
    if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
    tightenFile(file);
  }
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  try {
    db.pragma('busy_timeout = 5000');
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    db.pragma('foreign_keys = ON');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new StoreError(StoreErrorCode.CORRUPT, `database ${file} failed quick_check: ${String(check).slice(0, 200)}`);
    if (!opts.readonly && !opts.noMigrate) migrate(db, opts.targetVersion);
    if (!opts.readonly) for (const suffix of ['-wal', '-shm']) tightenFile(file + suffix);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}
