import { latestVersion, SchemaTooNewError, validateMigrations, type Migration } from '../migrations.js';
import type { SqliteDatabase } from './connection.js';

const createMigrationsTable = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )
`;

/** The highest applied version, 0 for a fresh database. Reads only; creates nothing. */
export function readSchemaVersion(database: SqliteDatabase): number {
  const table = database
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (table === undefined) return 0;
  const row = database.prepare<[], { version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations').get();
  return row?.version ?? 0;
}

/** Throws `SchemaTooNewError` when the database is ahead of `list`. */
export function assertSchemaNotNewer(database: SqliteDatabase, list: readonly Migration[], location: string): void {
  const databaseVersion = readSchemaVersion(database);
  const supportedVersion = latestVersion(list);
  if (databaseVersion > supportedVersion) {
    throw new SchemaTooNewError({ databaseVersion, supportedVersion, location });
  }
}

/**
 * Applies the migrations of `list` not yet recorded in `schema_migrations`, in order, each
 * in its own immediate transaction together with its record. Taking the write lock first
 * and re-checking inside makes two processes migrating the same file at once safe: the
 * second one finds the work done. Returns the versions it applied.
 */
export function applySqliteMigrations(
  database: SqliteDatabase,
  list: readonly Migration[],
  location: string,
  now: () => number = Date.now,
): number[] {
  validateMigrations(list);
  database.exec(createMigrationsTable);
  const isApplied = database.prepare<[number], { version: number }>('SELECT version FROM schema_migrations WHERE version = ?');
  const record = database.prepare<[number, string, number]>('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const applied: number[] = [];

  for (const migration of list) {
    const applyOne = database.transaction((): boolean => {
      assertSchemaNotNewer(database, list, location);
      if (isApplied.get(migration.version) !== undefined) return false;
      database.exec(migration.sqlite);
      record.run(migration.version, migration.name, now());
      return true;
    });
    try {
      if (applyOne.immediate()) applied.push(migration.version);
    } catch (error) {
      if (error instanceof SchemaTooNewError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Migration ${migration.version} (${migration.name}) failed on ${location} and was rolled back: ${reason}`, {
        cause: error,
      });
    }
  }
  return applied;
}
