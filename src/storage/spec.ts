/**
 * The storage ports: what every storage back end (SQLite, Postgres) implements.
 * The interface is asynchronous even though better-sqlite3 is synchronous, so that a
 * network database can implement it unchanged and callers never depend on the back end.
 *
 * A store is created once (in server.ts, from the configuration) and passed to whoever
 * needs it; there is no module-level instance. Call `migrate()` once after opening and
 * `close()` once on shutdown (after the writers that use it have flushed).
 */

/** A small string key/value table for instance-wide facts (instance id, first start, …). */
export interface MetadataStore {
  /** The value, or `null` when the key was never set. */
  get(key: string): Promise<string | null>;
  /** Sets or replaces the value. */
  set(key: string, value: string): Promise<void>;
}

/** Rights and limits of an API key (stored as JSON beside the key's indexed columns). */
export interface ApiKeySettings {
  /** The project the key belongs to: files, batches and fine-tuning jobs are per project. */
  project: string;
  /** May call `/admin` (manage keys, read usage and logs). */
  admin: boolean;
  /** Model names (exact, or a prefix ending in `*`) the key may use; null: all. */
  models: string[] | null;
  /** API paths (exact, or a prefix ending in `*`, e.g. `/v1/chat/*`) the key may call; null: all. */
  endpoints: string[] | null;
  /** Client addresses allowed, as CIDRs or single addresses (IPv4 and IPv6); null: any. */
  ips: string[] | null;
  /** Browser origins (`https://app.example.com`, or `*.example.com` hosts) allowed in Origin / Referer; null: any. */
  origins: string[] | null;
  /** Requests per minute and per day, tokens per minute; absent: unlimited. */
  limits: { rpm?: number; rpd?: number; tpm?: number };
  /** Spend limit in USD per period (calendar period in UTC; `total` never resets). */
  budget: { usd: number; period: 'day' | 'week' | 'month' | 'total' } | null;
  /** Wait up to this many seconds for a rate-limit window instead of refusing at once (0: refuse). */
  queueSeconds: number;
  /** The operator's labels (team, owner, …). */
  metadata: Record<string, string>;
  /** Response cache for this key's requests: 'off' neither reads nor writes it (absent: 'default'). */
  cache?: 'default' | 'off';
  /** Guardrails of this key (docs/guardrails.md): deny patterns added to the model's `deny_input`. */
  guardrails?: { deny_input: string[] };
  /** PII policy of this key's requests, over the model's and the server's (absent: 'default', no override). */
  pii?: 'default' | 'off' | 'mask' | 'pseudonymize' | 'block';
}

/** An API key as stored: never the secret, only its SHA-256 digest. */
export interface ApiKeyRecord {
  /** Public id, `key_` + 16 lowercase letters and digits. */
  id: string;
  name: string;
  /** The visible start of the secret (`sk-cg-` + 8 characters), unique; how keys are looked up. */
  prefix: string;
  /** SHA-256 of the whole secret, lowercase hex. */
  secretHash: string;
  /** After a rotation: the old secret's prefix and digest, valid until `previousValidUntil`. */
  previousPrefix: string | null;
  previousSecretHash: string | null;
  previousValidUntil: number | null;
  settings: ApiKeySettings;
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface KeyListOptions {
  limit: number;
  /** Keys created strictly after this id in listing order (ascending `createdAt`, then `id`); an unknown id gives an empty page. */
  after?: string;
  includeRevoked?: boolean;
}

export interface KeyStore {
  /** Inserts a new key; rejects (KeyConflictError) when the id or prefix exists. */
  create(record: ApiKeyRecord): Promise<void>;
  get(id: string): Promise<ApiKeyRecord | null>;
  /** The key whose current or previous prefix is this one (at most one of each). */
  findByPrefix(prefix: string): Promise<ApiKeyRecord[]>;
  list(options: KeyListOptions): Promise<ApiKeyRecord[]>;
  /** Replaces the stored record with this one (same id); null when there is no such key. */
  update(record: ApiKeyRecord): Promise<ApiKeyRecord | null>;
  /** The largest `updatedAt` of all keys (cheap change detection for caches); 0 without keys. */
  lastChange(): Promise<number>;
}

export class KeyConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyConflictError';
  }
}

/**
 * One audited request: who, what, how it ended, what it cost. `user`, `clientIp` and the
 * bodies are personal data: erasable (GDPR) without breaking the hash chain, because the
 * chain covers their digest (`personalDigest`), not the values themselves.
 */
export interface AuditRecord {
  requestId: string;
  /** Arrival, ms since the Unix epoch. */
  createdAt: number;
  method: string;
  path: string;
  model: string | null;
  /** Which provider (and upstream target) served it, e.g. `openai-compatible:gpt-4.1`. */
  provider: string | null;
  status: number;
  durationMs: number;
  promptTokens: number | null;
  completionTokens: number | null;
  cachedTokens: number | null;
  /** Cost in micro-USD (1e-6 USD), integer; null when unknown (no price). */
  costMicros: number | null;
  stream: boolean;
  cacheHit: boolean | null;
  errorCode: string | null;
  /** `master`, a key id, or `token:<key id>` for a short-lived token. */
  keyId: string | null;
  /** Personal data (erasable): */
  user: string | null;
  clientIp: string | null;
  requestBody: string | null;
  responseBody: string | null;
  /** PII found in the request, kinds and counts (`email=2,card=1`), never values; null when none or not scanned. */
  piiCounts?: string | null;
}

/** An audit record as stored: its place and links in the hash chain. */
export interface StoredAuditRecord extends AuditRecord {
  /** Position in the chain, 1, 2, 3, … (gaps only where retention deleted records). */
  seq: number;
  /** sha256 of the personal fields (see audit-chain.ts), kept when they are erased. */
  personalDigest: string;
  prevHash: string;
  hash: string;
  /** When the personal fields were erased, else null. */
  erasedAt: number | null;
}

export interface AuditFilter {
  /** One request's record(s) (a client may reuse its own `x-request-id`). */
  requestId?: string;
  keyId?: string;
  model?: string;
  user?: string;
  path?: string;
  status?: number;
  /** createdAt >= from, < to (ms). */
  from?: number;
  to?: number;
}

export interface AuditListOptions extends AuditFilter {
  limit: number;
  /** Records with seq < before (newest first paging). */
  before?: number;
}

export type UsageGroup = 'key' | 'model' | 'user' | 'day';

export interface UsageRow {
  key?: string | null;
  model?: string | null;
  user?: string | null;
  /** UTC day, `YYYY-MM-DD`. */
  day?: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  costMicros: number;
}

export interface AuditLogStore {
  /**
   * Appends the records to the chain in one transaction, in order: each gets the next seq,
   * prevHash = the chain head's hash, hash = chainHash(...) (audit-chain.ts). Safe with
   * several writers (processes) on one database: the head is locked for the transaction.
   */
  append(records: readonly AuditRecord[]): Promise<void>;
  /** Newest first (seq descending), filtered. */
  list(options: AuditListOptions): Promise<StoredAuditRecord[]>;
  /** Oldest first: records with seq > afterSeq, for verification and export. */
  scan(afterSeq: number, limit: number, filter?: AuditFilter): Promise<StoredAuditRecord[]>;
  /** Sums over the records in [from, to), grouped. */
  usage(options: { from?: number; to?: number; groupBy: UsageGroup[]; filter?: AuditFilter }): Promise<UsageRow[]>;
  /** Sum of costMicros of a key's records (and its tokens' `token:<key id>`) in [from, to) (budgets after a restart). */
  spendOf(keyId: string, from: number, to: number): Promise<number>;
  /**
   * Retention: deletes the records created before `createdBefore`; returns how many. Only a
   * prefix of the chain is deleted (the records before the first one created at or after
   * `createdBefore`), so that a record recorded late (a long request) never leaves a hole
   * in the chain: such neighbours are kept until a later run.
   */
  deleteOlderThan(createdBefore: number): Promise<number>;
  /** GDPR erasure: nulls user, clientIp and bodies of the user's records (sets erasedAt); returns how many. */
  eraseUser(user: string, erasedAt: number): Promise<number>;
  count(): Promise<number>;
  /** The chain head: the last appended record's seq and hash (seq 0 and the genesis hash when none). */
  head(): Promise<{ seq: number; hash: string }>;
}

/** An uploaded file's metadata (the bytes are in a BlobStore under `id`). */
export interface FileRecord {
  /** `file-` + 24 letters and digits. */
  id: string;
  /** The project of the key that uploaded it; only that project sees it. */
  project: string;
  /** batch | fine-tune | vision | user_data | assistants | evals. */
  purpose: string;
  filename: string;
  bytes: number;
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
}

export interface FileListOptions {
  project: string;
  purpose?: string;
  limit: number;
  /** Files after this id in listing order; an unknown id (or another project's) gives an empty page. */
  after?: string;
  /** By `createdAt`, then `id` (bytewise); default `desc` (newest first). */
  order?: 'asc' | 'desc';
}

export interface FileStore {
  /** Inserts the record; rejects (FileConflictError) when the id exists. */
  create(record: FileRecord): Promise<void>;
  /** The project's file with this id; null for an unknown id or another project's file. */
  get(project: string, id: string): Promise<FileRecord | null>;
  list(options: FileListOptions): Promise<FileRecord[]>;
  /** Deletes the project's file; false when there was none. */
  delete(project: string, id: string): Promise<boolean>;
}

export class FileConflictError extends Error {
  constructor(id: string) {
    super(`A file with id ${JSON.stringify(id)} exists`);
    this.name = 'FileConflictError';
  }
}

export type { EnqueueOptions, Job, JobItem, JobItemState, JobQueue, JobState } from './job-records.js';
import type { JobQueue } from './job-records.js';
import type { ResourceStore } from './resource-records.js';
export type { ResourceEvent, ResourceRecord, ResourceStore } from './resource-records.js';

export interface Store {
  /**
   * Applies pending migrations, each in its own transaction; a no-op when the schema is
   * current. Rejects with `SchemaTooNewError` when the database was migrated by a newer
   * Chatgate.
   */
  migrate(): Promise<void>;
  readonly metadata: MetadataStore;
  readonly keys: KeyStore;
  readonly auditLog: AuditLogStore;
  /** The durable job queue: jobs and their work items (src/jobs/). */
  readonly jobs: JobQueue;
  /** Metadata of uploaded files (the Files API). */
  readonly files: FileStore;
  /** Batches and fine-tuning jobs, with their events. */
  readonly resources: ResourceStore;
  /** `sqlite` or `postgres`. */
  readonly dialect: 'sqlite' | 'postgres';
  /** Closes the connection(s). Idempotent; the store is unusable afterwards. */
  close(): Promise<void>;
}
