import { migrations as defaultMigrations, type Migration } from '../migrations.js';
import type { JobQueue } from '../job-records.js';
import type { ResourceStore } from '../resource-records.js';
import { SqliteResourceStore } from './sqlite-resource-store.js';
import type { AuditLogStore, FileStore, KeyStore, MetadataStore, Store } from '../spec.js';
import { openSqliteDatabase, type SqliteConnectionOptions, type SqliteDatabase } from './connection.js';
import { applySqliteMigrations, assertSchemaNotNewer } from './migrate.js';
import { SqliteAuditLogStore } from './sqlite-audit-log-store.js';
import { SqliteJobQueue } from './sqlite-job-queue.js';
import { SqliteKeyStore } from './sqlite-key-store.js';
import { SqliteFileStore } from './sqlite-file-store.js';
import { StatementCache } from './statement-cache.js';

export interface SqliteStoreOptions extends SqliteConnectionOptions {
  /** The schema to migrate to; the shipped list unless a test needs another. */
  migrations?: readonly Migration[];
}

/**
 * Opens (creating when missing, with its directory) the SQLite database at `path` and
 * returns a Store over it. Throws `SchemaTooNewError` at once when the file was migrated
 * by a newer Chatgate. Call `migrate()` before using the stores.
 *
 * `path` may also be `:memory:` (a private in-memory database, handy in tests).
 */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Store {
  const list = options.migrations ?? defaultMigrations;
  const database = openSqliteDatabase(path, options);
  try {
    assertSchemaNotNewer(database, list, path);
  } catch (error) {
    database.close();
    throw error;
  }
  return new SqliteStore(database, list, path);
}

class SqliteStore implements Store {
  readonly metadata: MetadataStore;
  readonly keys: KeyStore;
  readonly auditLog: AuditLogStore;
  readonly jobs: JobQueue;
  readonly files: FileStore;
  readonly resources: ResourceStore;
  readonly dialect = 'sqlite' as const;
  private readonly statements: StatementCache;
  private closed = false;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly migrationList: readonly Migration[],
    private readonly location: string,
  ) {
    this.statements = new StatementCache(database);
    this.metadata = new SqliteMetadataStore(this.statements);
    this.keys = new SqliteKeyStore(this.statements);
    this.auditLog = new SqliteAuditLogStore(database, this.statements);
    this.jobs = new SqliteJobQueue(database, this.statements);
    this.files = new SqliteFileStore(this.statements);
    this.resources = new SqliteResourceStore(this.statements);
  }

  async migrate(): Promise<void> {
    applySqliteMigrations(this.database, this.migrationList, this.location);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.statements.clear();
    this.database.close();
  }
}

class SqliteMetadataStore implements MetadataStore {
  constructor(private readonly statements: StatementCache) {}

  async get(key: string): Promise<string | null> {
    const row = this.statements.get<[string], { value: string }>('SELECT value FROM metadata WHERE key = ?').get(key);
    return row?.value ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    this.statements
      .get<[string, string, number]>(
        'INSERT INTO metadata (key, value, updated_at) VALUES (?, ?, ?) ' +
          'ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      )
      .run(key, value, Date.now());
  }
}
