import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

export interface SqliteConnectionOptions {
  /** How long a statement waits for a lock held by another connection. Default 5000. */
  busyTimeoutMs?: number;
}

export const defaultBusyTimeoutMs = 5_000;

/** `:memory:`, the empty path (a private temporary database) and `file:` URIs have no directory to create. */
export function isFileBacked(path: string): boolean {
  return path !== '' && path !== ':memory:' && !path.startsWith('file:');
}

/**
 * Opens a SQLite database configured for a server: WAL journal (readers never block the
 * writer), `synchronous = NORMAL` (durable on checkpoints, safe with WAL), a busy timeout,
 * and foreign keys enforced. Creates the parent directory when missing.
 */
export function openSqliteDatabase(path: string, options: SqliteConnectionOptions = {}): SqliteDatabase {
  const busyTimeoutMs = options.busyTimeoutMs ?? defaultBusyTimeoutMs;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
  }
  let database: SqliteDatabase | undefined;
  try {
    if (isFileBacked(path)) mkdirSync(dirname(resolve(path)), { recursive: true });
    database = new Database(path, { timeout: busyTimeoutMs });
    // The first statement reads the file: a file that is no database fails here.
    database.pragma('journal_mode = WAL');
    database.pragma(`busy_timeout = ${busyTimeoutMs}`);
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    return database;
  } catch (error) {
    database?.close();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot open the SQLite database at ${path}: ${reason}`, { cause: error });
  }
}
