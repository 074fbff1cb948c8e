import type pg from 'pg';
import { latestVersion, SchemaTooNewError, validateMigrations, type Migration } from '../migrations.js';

const createMigrationsTable = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
  )
`;

/** The highest applied version in the current schema, 0 for a fresh one. Creates nothing. */
export async function readPostgresSchemaVersion(client: pg.Pool | pg.PoolClient): Promise<number> {
  const table = await client.query<{ exists: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS exists");
  if (table.rows[0]?.exists !== true) return 0;
  const row = await client.query<{ version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations');
  return row.rows[0]?.version ?? 0;
}

export async function assertPostgresSchemaNotNewer(client: pg.Pool | pg.PoolClient, list: readonly Migration[], location: string): Promise<void> {
  const databaseVersion = await readPostgresSchemaVersion(client);
  const supportedVersion = latestVersion(list);
  if (databaseVersion > supportedVersion) throw new SchemaTooNewError({ databaseVersion, supportedVersion, location });
}

/**
 * Applies the pending migrations, each in its own transaction with its record, while
 * holding an advisory lock (per schema), so that several Chatgate instances starting at
 * once migrate one after the other: the later ones find the work done. Returns the
 * versions it applied.
 */
export async function applyPostgresMigrations(
  pool: pg.Pool,
  list: readonly Migration[],
  location: string,
  now: () => number = Date.now,
): Promise<number[]> {
  validateMigrations(list);
  const client = await pool.connect();
  let broken: Error | undefined;
  const applied: number[] = [];
  try {
    await client.query("SELECT pg_advisory_lock(hashtext('chatgate_migrate:' || COALESCE(current_schema(), '')))");
    try {
      await client.query(createMigrationsTable);
      for (const migration of list) {
        await client.query('BEGIN');
        try {
          await assertPostgresSchemaNotNewer(client, list, location);
          const done = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
          if (done.rowCount === 0) {
            await client.query(migration.postgres);
            await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, now()]);
            applied.push(migration.version);
          }
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          if (error instanceof SchemaTooNewError) throw error;
          const reason = error instanceof Error ? error.message : String(error);
          throw new Error(`Migration ${migration.version} (${migration.name}) failed on ${location} and was rolled back: ${reason}`, { cause: error });
        }
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext('chatgate_migrate:' || COALESCE(current_schema(), '')))");
    }
  } catch (error) {
    if (!(error instanceof Error && (error instanceof SchemaTooNewError || error.message.startsWith('Migration ')))) broken = error as Error;
    throw error;
  } finally {
    client.release(broken);
  }
  return applied;
}
