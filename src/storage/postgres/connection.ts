import pg from 'pg';
import { redactUrl } from '../../util/redact-url.js';

/** The URL with its password (and secret query parameters) replaced by `***`, for messages; the input masked as text when it is no URL. */
export function redactDatabaseUrl(url: string): string {
  return redactUrl(url);
}

/** Checks the URL's form: `postgres://` or `postgresql://`, with a host. */
export function validateDatabaseUrl(url: unknown): asserts url is string {
  if (typeof url !== 'string' || url.trim() === '') throw new TypeError('The database URL must be a non-empty string');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`The database URL ${redactDatabaseUrl(url)} is not a valid URL (expected postgres://user:password@host:5432/database)`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new TypeError(`The database URL ${redactDatabaseUrl(url)} must start with postgres:// or postgresql://`);
  }
}

const INT8_OID = 20;

/** BIGINT as a JS number (times in ms, seq, micro-USD stay below 2^53); refuses to round. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`The database returned ${text}, too large for a JavaScript number`);
  return value;
}

const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PostgresPoolOptions {
  /** Use this schema (search_path) instead of the URL's default; a plain lowercase identifier. */
  schema?: string;
  /** Connections at most. Default 10. */
  max?: number;
  /** How long to wait for a connection. Default 10000 ms. */
  connectionTimeoutMillis?: number;
  /** Told about errors of idle connections (the next query fails anyway). */
  onError?: (error: Error) => void;
}

export function createPostgresPool(url: string, options: PostgresPoolOptions = {}): pg.Pool {
  validateDatabaseUrl(url);
  if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
    throw new TypeError(`The schema name ${JSON.stringify(options.schema)} must be a lowercase identifier (letters, digits, _)`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    types: typeParsers,
    ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (error) => options.onError?.(error));
  return pool;
}

/** Runs `work` in a transaction on one connection; rolls back on any error. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/** `$1, $2, …` rows for a multi-row insert of `rows` rows of `columns` values. */
export function valuesPlaceholders(rows: number, columns: number, cast: (column: number) => string = () => ''): string {
  const groups: string[] = [];
  for (let row = 0; row < rows; row += 1) {
    const items: string[] = [];
    for (let column = 0; column < columns; column += 1) items.push(`$${row * columns + column + 1}${cast(column)}`);
    groups.push(`(${items.join(', ')})`);
  }
  return groups.join(', ');
}

export function isUniqueViolation(error: unknown): error is Error & { constraint?: string; detail?: string } {
  return error instanceof Error && (error as { code?: unknown }).code === '23505';
}
