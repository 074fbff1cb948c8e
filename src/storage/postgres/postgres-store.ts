import type pg from 'pg';
import { migrations as defaultMigrations, SchemaTooNewError, type Migration } from '../migrations.js';
import type { JobQueue } from '../job-records.js';
import type { ResourceStore } from '../resource-records.js';
import { PostgresResourceStore } from './postgres-resource-store.js';
import type { AuditLogStore, FileStore, KeyStore, MetadataStore, Store } from '../spec.js';
import { createPostgresPool, redactDatabaseUrl, type PostgresPoolOptions } from './connection.js';
import { applyPostgresMigrations, assertPostgresSchemaNotNewer } from './migrate.js';
import { PostgresAuditLogStore } from './postgres-audit-log-store.js';
import { PostgresJobQueue } from './postgres-job-queue.js';
import { PostgresKeyStore } from './postgres-key-store.js';
import { PostgresFileStore } from './postgres-file-store.js';
import { PostgresMetadataStore } from './postgres-metadata-store.js';

export interface PostgresStoreOptions extends PostgresPoolOptions {
  /** The schema to migrate to; the shipped list unless a test needs another. */
  migrations?: readonly Migration[];
}

/** The database could not be reached (or refused us): the message names the redacted URL. */
export class DatabaseConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseConnectionError';
  }
}

/**
 * Connects to the PostgreSQL database at `url` (a pool) and returns a Store over it, after
 * checking that it answers and that its schema is not newer than this code
 * (`SchemaTooNewError`). Call `migrate()` before using the stores.
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const list = options.migrations ?? defaultMigrations;
  const pool = createPostgresPool(url, options);
  const location = redactDatabaseUrl(url) + (options.schema === undefined ? '' : ` (schema ${options.schema})`);
  try {
    await assertPostgresSchemaNotNewer(pool, list, location);
  } catch (error) {
    await pool.end().catch(() => undefined);
    if (error instanceof SchemaTooNewError) throw error;
    const reason = error instanceof Error ? error.message || (error as { code?: string }).code || error.name : String(error);
    throw new DatabaseConnectionError(`Cannot connect to the PostgreSQL database at ${location}: ${reason}`, { cause: error });
  }
  return new PostgresStore(pool, list, location);
}

class PostgresStore implements Store {
  readonly metadata: MetadataStore;
  readonly keys: KeyStore;
  readonly auditLog: AuditLogStore;
  readonly jobs: JobQueue;
  readonly files: FileStore;
  readonly resources: ResourceStore;
  readonly dialect = 'postgres' as const;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly migrationList: readonly Migration[],
    private readonly location: string,
  ) {
    this.metadata = new PostgresMetadataStore(pool);
    this.keys = new PostgresKeyStore(pool);
    this.auditLog = new PostgresAuditLogStore(pool);
    this.jobs = new PostgresJobQueue(pool);
    this.files = new PostgresFileStore(pool);
    this.resources = new PostgresResourceStore(pool);
  }

  async migrate(): Promise<void> {
    try {
      await applyPostgresMigrations(this.pool, this.migrationList, this.location);
    } catch (error) {
      if (error instanceof SchemaTooNewError || (error instanceof Error && error.message.startsWith('Migration '))) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new DatabaseConnectionError(`Cannot migrate the PostgreSQL database at ${this.location}: ${reason}`, { cause: error });
    }
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }
}
