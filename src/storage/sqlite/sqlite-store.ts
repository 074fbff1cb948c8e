import { migrations as defaultMigrations, type Migration } from '../migrations.js';
import type {
  AuditLogStore,
  KeyStore,
  MetadataStore,
  RequestLogListOptions,
  RequestLogRecord,
  RequestLogStore,
  Store,
} from '../spec.js';
import { openSqliteDatabase, type SqliteConnectionOptions, type SqliteDatabase } from './connection.js';
import { applySqliteMigrations, assertSchemaNotNewer } from './migrate.js';
import { SqliteAuditLogStore } from './sqlite-audit-log-store.js';
import { SqliteKeyStore } from './sqlite-key-store.js';
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
  readonly requestLog: RequestLogStore;
  readonly metadata: MetadataStore;
  readonly keys: KeyStore;
  readonly auditLog: AuditLogStore;
  readonly dialect = 'sqlite' as const;
  private readonly statements: StatementCache;
  private closed = false;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly migrationList: readonly Migration[],
    private readonly location: string,
  ) {
    this.statements = new StatementCache(database);
    this.requestLog = new SqliteRequestLogStore(database, this.statements);
    this.metadata = new SqliteMetadataStore(this.statements);
    this.keys = new SqliteKeyStore(this.statements);
    this.auditLog = new SqliteAuditLogStore(database, this.statements);
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

interface RequestLogRow {
  request_id: string;
  created_at: number;
  method: string;
  path: string;
  model: string | null;
  status: number;
  duration_ms: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  stream: number;
  error_code: string | null;
  key_id: string | null;
  client_ip: string | null;
}

type RequestLogParameters = [
  requestId: string,
  createdAt: number,
  method: string,
  path: string,
  model: string | null,
  status: number,
  durationMs: number,
  promptTokens: number | null,
  completionTokens: number | null,
  stream: number,
  errorCode: string | null,
  keyId: string | null,
  clientIp: string | null,
];

const requestLogColumns =
  'request_id, created_at, method, path, model, status, duration_ms, prompt_tokens, completion_tokens, stream, error_code, key_id, client_ip';

const insertRequestLogSql = `INSERT INTO request_log (${requestLogColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const listNewestSql = `SELECT ${requestLogColumns} FROM request_log ORDER BY created_at DESC, request_id DESC, id DESC LIMIT ?`;
const listBeforeSql =
  `SELECT ${requestLogColumns} FROM request_log WHERE (created_at, request_id) < (?, ?) ` +
  'ORDER BY created_at DESC, request_id DESC, id DESC LIMIT ?';
const countRequestLogSql = 'SELECT COUNT(*) AS count FROM request_log';

function toParameters(record: RequestLogRecord): RequestLogParameters {
  return [
    record.requestId,
    record.createdAt,
    record.method,
    record.path,
    record.model ?? null,
    record.status,
    record.durationMs,
    record.promptTokens ?? null,
    record.completionTokens ?? null,
    record.stream ? 1 : 0,
    record.errorCode ?? null,
    record.keyId ?? null,
    record.clientIp ?? null,
  ];
}

function fromRow(row: RequestLogRow): RequestLogRecord {
  return {
    requestId: row.request_id,
    createdAt: row.created_at,
    method: row.method,
    path: row.path,
    model: row.model,
    status: row.status,
    durationMs: row.duration_ms,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    stream: row.stream === 1,
    errorCode: row.error_code,
    keyId: row.key_id,
    clientIp: row.client_ip,
  };
}

class SqliteRequestLogStore implements RequestLogStore {
  private insertTransaction: ((records: readonly RequestLogRecord[]) => void) | undefined;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly statements: StatementCache,
  ) {}

  async insertMany(records: readonly RequestLogRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (this.insertTransaction === undefined) {
      const insert = this.statements.get<RequestLogParameters>(insertRequestLogSql);
      this.insertTransaction = this.database.transaction((batch: readonly RequestLogRecord[]) => {
        for (const record of batch) insert.run(...toParameters(record));
      });
    }
    this.insertTransaction(records);
  }

  async list(options: RequestLogListOptions): Promise<RequestLogRecord[]> {
    const { limit, before } = options;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
    }
    if (limit === 0) return [];
    const rows =
      before === undefined
        ? this.statements.get<[number], RequestLogRow>(listNewestSql).all(limit)
        : this.statements.get<[number, string, number], RequestLogRow>(listBeforeSql).all(before.createdAt, before.requestId, limit);
    return rows.map(fromRow);
  }

  async count(): Promise<number> {
    const row = this.statements.get<[], { count: number }>(countRequestLogSql).get();
    return row?.count ?? 0;
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
