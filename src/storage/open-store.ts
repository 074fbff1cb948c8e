/**
 * Opens the configured store: PostgreSQL when a database URL is set, else the SQLite file.
 */
import { SchemaTooNewError } from './migrations.js';
import type { Store } from './spec.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';

export interface OpenStoreOptions {
  /** `postgres://…` (config `database_url`); when set, the SQLite path is not used. */
  databaseUrl?: string | undefined;
  sqlitePath: string;
  /** Told about errors of idle Postgres connections. */
  onError?: (error: Error) => void;
}

/**
 * Opening failed: the database cannot be reached or read. The message says which one (the
 * URL without its password, or the file) and why; `SchemaTooNewError` passes unchanged.
 */
export class StoreOpenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreOpenError';
  }
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  // The PostgreSQL store (and pg, ~17 MB of RSS) is loaded only for a database URL.
  let postgres: typeof import('./postgres/postgres-store.js') | undefined;
  try {
    if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
      postgres = await import('./postgres/postgres-store.js');
      return await postgres.openPostgresStore(options.databaseUrl, options.onError === undefined ? {} : { onError: options.onError });
    }
    return openSqliteStore(options.sqlitePath);
  } catch (error) {
    if (error instanceof SchemaTooNewError || error instanceof StoreOpenError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const connectionError = postgres !== undefined && error instanceof postgres.DatabaseConnectionError;
    throw new StoreOpenError(connectionError ? message : `Cannot open the store: ${message}`, { cause: error });
  }
}
