/**
 * The storage ports: what every storage back end (SQLite now, Postgres later) implements.
 * The interface is asynchronous even though better-sqlite3 is synchronous, so that a
 * network database can implement it unchanged and callers never depend on the back end.
 *
 * A store is created once (in server.ts, from the configuration) and passed to whoever
 * needs it; there is no module-level instance. Call `migrate()` once after opening and
 * `close()` once on shutdown (after the writers that use it have flushed).
 */

/**
 * One line of the request log: what was asked, of which model, how it ended and how
 * long it took. Never request or response bodies, never keys or other secrets.
 */
export interface RequestLogRecord {
  /** The request's id (`x-request-id`). Not guaranteed unique: a client may send its own. */
  requestId: string;
  /** When the request arrived, in milliseconds since the Unix epoch. */
  createdAt: number;
  method: string;
  /** The URL path without the query string, e.g. `/v1/chat/completions`. */
  path: string;
  /** The model the client asked for, when the request named one. */
  model: string | null;
  /** The HTTP status sent (200 for a stream that later ended with an error frame). */
  status: number;
  /** Time from arrival to the last byte sent, in milliseconds (fractions kept). */
  durationMs: number;
  promptTokens: number | null;
  completionTokens: number | null;
  stream: boolean;
  /** The OpenAI error `code` (or `type` when there is no code) when the request failed. */
  errorCode: string | null;
  /** Which key authenticated the request; `'master'` for the master key. */
  keyId: string | null;
  clientIp: string | null;
}

/**
 * Where a page of the request log starts: the records strictly older than this one, by
 * `(createdAt, requestId)`. Pass the last record of the previous page as it is.
 */
export type RequestLogCursor = Pick<RequestLogRecord, 'createdAt' | 'requestId'>;

export interface RequestLogListOptions {
  /** How many records at most; a non-negative integer (0 gives an empty page). */
  limit: number;
  /** Only records older than this one (exclusive); the newest records when absent. */
  before?: RequestLogCursor;
}

export interface RequestLogStore {
  /** Inserts all records in one transaction: all of them are stored, or none. */
  insertMany(records: readonly RequestLogRecord[]): Promise<void>;
  /** Newest first: by `createdAt`, then `requestId`, both descending. */
  list(options: RequestLogListOptions): Promise<RequestLogRecord[]>;
  count(): Promise<number>;
}

/** A small string key/value table for instance-wide facts (instance id, first start, …). */
export interface MetadataStore {
  /** The value, or `null` when the key was never set. */
  get(key: string): Promise<string | null>;
  /** Sets or replaces the value. */
  set(key: string, value: string): Promise<void>;
}

export interface Store {
  /**
   * Applies pending migrations, each in its own transaction; a no-op when the schema is
   * current. Rejects with `SchemaTooNewError` when the database was migrated by a newer
   * Chatgate.
   */
  migrate(): Promise<void>;
  readonly requestLog: RequestLogStore;
  readonly metadata: MetadataStore;
  /** Closes the connection(s). Idempotent; the store is unusable afterwards. */
  close(): Promise<void>;
}
