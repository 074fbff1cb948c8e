/**
 * The database schema as an ordered list of numbered migrations, one SQL text per
 * dialect, so that the SQLite and Postgres back ends always have the same tables.
 *
 * Rules: versions start at 1 and go up by one; a migration that has shipped is never
 * edited, a change is a new migration; each SQL text may hold several statements and runs
 * in one transaction together with its record in `schema_migrations` (which the runner
 * creates, it is not part of this list).
 *
 * Conventions shared by both dialects: times are integer milliseconds since the Unix
 * epoch (BIGINT in Postgres); row order for paging is `(created_at, request_id)`, with
 * `request_id` compared bytewise (binary in SQLite, `COLLATE "C"` in Postgres).
 */

export interface Migration {
  version: number;
  /** Short snake_case description, recorded with the version. */
  name: string;
  sqlite: string;
  postgres: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'create_metadata',
    sqlite: `
      CREATE TABLE metadata (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
    postgres: `
      CREATE TABLE metadata (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL
      );
    `,
  },
  {
    // No longer written or read since migration 3 (the audit log); the table stays in existing databases.
    version: 2,
    name: 'create_request_log',
    sqlite: `
      CREATE TABLE request_log (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        model TEXT,
        status INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        stream INTEGER NOT NULL CHECK (stream IN (0, 1)),
        error_code TEXT,
        key_id TEXT,
        client_ip TEXT
      );
      CREATE INDEX request_log_created_at_index ON request_log (created_at DESC, request_id DESC, id DESC);
      CREATE INDEX request_log_request_id_index ON request_log (request_id);
    `,
    postgres: `
      CREATE TABLE request_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        request_id TEXT COLLATE "C" NOT NULL,
        created_at BIGINT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        model TEXT,
        status INTEGER NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        stream BOOLEAN NOT NULL,
        error_code TEXT,
        key_id TEXT,
        client_ip TEXT
      );
      CREATE INDEX request_log_created_at_index ON request_log (created_at DESC, request_id DESC, id DESC);
      CREATE INDEX request_log_request_id_index ON request_log (request_id);
    `,
  },
  {
    version: 3,
    name: 'create_api_keys_and_audit_log',
    // api_keys: the indexed columns beside the settings JSON. audit_log: `seq` is assigned by
    // the store (never by the database), `end_user` is AuditRecord.user (`user` is reserved in
    // Postgres). audit_chain_head: one row (id = 1), the chain's last seq and hash; appends lock
    // it, which serializes writers across processes.
    sqlite: `
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL UNIQUE,
        secret_hash TEXT NOT NULL,
        previous_prefix TEXT,
        previous_secret_hash TEXT,
        previous_valid_until INTEGER,
        settings TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
      );
      CREATE INDEX api_keys_previous_prefix_index ON api_keys (previous_prefix);
      CREATE INDEX api_keys_created_at_index ON api_keys (created_at, id);
      CREATE INDEX api_keys_updated_at_index ON api_keys (updated_at);

      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY NOT NULL,
        request_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        model TEXT,
        provider TEXT,
        status INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cached_tokens INTEGER,
        cost_micros INTEGER,
        stream INTEGER NOT NULL CHECK (stream IN (0, 1)),
        cache_hit INTEGER CHECK (cache_hit IN (0, 1)),
        error_code TEXT,
        key_id TEXT,
        end_user TEXT,
        client_ip TEXT,
        request_body TEXT,
        response_body TEXT,
        personal_digest TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        erased_at INTEGER
      );
      CREATE INDEX audit_log_created_at_index ON audit_log (created_at);
      CREATE INDEX audit_log_key_id_index ON audit_log (key_id, created_at);
      CREATE INDEX audit_log_end_user_index ON audit_log (end_user);
      CREATE INDEX audit_log_model_index ON audit_log (model, created_at);

      CREATE TABLE audit_chain_head (
        id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
        last_seq INTEGER NOT NULL,
        last_hash TEXT NOT NULL
      );
      INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, '${'0'.repeat(64)}');
    `,
    postgres: `
      CREATE TABLE api_keys (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT COLLATE "C" NOT NULL UNIQUE,
        secret_hash TEXT NOT NULL,
        previous_prefix TEXT COLLATE "C",
        previous_secret_hash TEXT,
        previous_valid_until BIGINT,
        settings JSONB NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT
      );
      CREATE INDEX api_keys_previous_prefix_index ON api_keys (previous_prefix);
      CREATE INDEX api_keys_created_at_index ON api_keys (created_at, id);
      CREATE INDEX api_keys_updated_at_index ON api_keys (updated_at);

      CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        request_id TEXT COLLATE "C" NOT NULL,
        created_at BIGINT NOT NULL,
        method TEXT NOT NULL,
        path TEXT COLLATE "C" NOT NULL,
        model TEXT COLLATE "C",
        provider TEXT COLLATE "C",
        status INTEGER NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL,
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        cached_tokens BIGINT,
        cost_micros BIGINT,
        stream BOOLEAN NOT NULL,
        cache_hit BOOLEAN,
        error_code TEXT COLLATE "C",
        key_id TEXT COLLATE "C",
        end_user TEXT COLLATE "C",
        client_ip TEXT,
        request_body TEXT,
        response_body TEXT,
        personal_digest TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        erased_at BIGINT
      );
      CREATE INDEX audit_log_created_at_index ON audit_log (created_at);
      CREATE INDEX audit_log_key_id_index ON audit_log (key_id, created_at);
      CREATE INDEX audit_log_end_user_index ON audit_log (end_user);
      CREATE INDEX audit_log_model_index ON audit_log (model, created_at);

      CREATE TABLE audit_chain_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_seq BIGINT NOT NULL,
        last_hash TEXT NOT NULL
      );
      INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, '${'0'.repeat(64)}');
    `,
  },
  {
    // PII found in a request (kinds and counts, never values): `email=2,card=1`. In the hash chain only when set.
    version: 4,
    name: 'add_audit_pii_counts',
    sqlite: `
      ALTER TABLE audit_log ADD COLUMN pii_counts TEXT;
    `,
    postgres: `
      ALTER TABLE audit_log ADD COLUMN pii_counts TEXT COLLATE "C";
    `,
  },
  {
    // Uploaded files (the Files API): metadata only, the bytes are in the blob store under `id`.
    // Listing is per project, by (created_at, id) in either direction, optionally by purpose.
    version: 5,
    name: 'create_files',
    sqlite: `
      CREATE TABLE files (
        id TEXT PRIMARY KEY NOT NULL,
        project TEXT NOT NULL,
        purpose TEXT NOT NULL,
        filename TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX files_project_created_at_index ON files (project, created_at, id);
      CREATE INDEX files_project_purpose_created_at_index ON files (project, purpose, created_at, id);
    `,
    postgres: `
      CREATE TABLE files (
        id TEXT COLLATE "C" PRIMARY KEY,
        project TEXT COLLATE "C" NOT NULL,
        purpose TEXT COLLATE "C" NOT NULL,
        filename TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX files_project_created_at_index ON files (project, created_at, id);
      CREATE INDEX files_project_purpose_created_at_index ON files (project, purpose, created_at, id);
    `,
  },
  {
    // The durable job queue (src/jobs/, docs/architecture.md "Jobs"). jobs: one row per job, leased
    // to a worker (locked_by, locked_until) while running. job_items: the units of work of a job
    // (a batch's requests), each leased on its own; UNIQUE (job_id, item_key) keeps one outcome per item.
    version: 6,
    name: 'create_jobs',
    sqlite: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        priority INTEGER NOT NULL DEFAULT 0,
        run_after INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        locked_by TEXT,
        locked_until INTEGER,
        result TEXT,
        error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX jobs_claim_index ON jobs (state, kind, priority DESC, run_after);
      CREATE INDEX jobs_lease_index ON jobs (state, locked_until);

      CREATE TABLE job_items (
        id INTEGER PRIMARY KEY NOT NULL,
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        item_key TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
        attempt INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        worker TEXT,
        leased_until INTEGER,
        updated_at INTEGER NOT NULL,
        UNIQUE (job_id, item_key)
      );
      CREATE INDEX job_items_claim_index ON job_items (job_id, state, id);
    `,
    postgres: `
      CREATE TABLE jobs (
        id TEXT COLLATE "C" PRIMARY KEY,
        kind TEXT COLLATE "C" NOT NULL,
        payload JSONB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        priority INTEGER NOT NULL DEFAULT 0,
        run_after BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        locked_by TEXT,
        locked_until BIGINT,
        result JSONB,
        error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX jobs_claim_index ON jobs (state, kind, priority DESC, run_after);
      CREATE INDEX jobs_lease_index ON jobs (state, locked_until);

      CREATE TABLE job_items (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        item_key TEXT COLLATE "C" NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
        attempt INTEGER NOT NULL DEFAULT 0,
        result JSONB,
        error TEXT,
        worker TEXT,
        leased_until BIGINT,
        updated_at BIGINT NOT NULL,
        UNIQUE (job_id, item_key)
      );
      CREATE INDEX job_items_claim_index ON job_items (job_id, state, id);
    `,
  },
  {
    // Long-lived API objects other than files: batches and fine-tuning jobs (src/batches/,
    // src/fine-tuning/). One row per object, its OpenAI-shaped state as JSON; `version` makes
    // every update a compare-and-set, so an API process (cancel) and a worker (progress) never
    // overwrite each other's changes. resource_events: an object's event log (fine-tuning events
    // and checkpoints), ordered by seq.
    version: 7,
    name: 'create_resources',
    sqlite: `
      CREATE TABLE resources (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        project TEXT NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
      );
      CREATE INDEX resources_project_index ON resources (kind, project, created_at, id);

      CREATE TABLE resource_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (kind, resource_id, stream, id)
      );
      CREATE INDEX resource_events_index ON resource_events (kind, resource_id, stream, seq);
    `,
    postgres: `
      CREATE TABLE resources (
        kind TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        project TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        data JSONB NOT NULL,
        version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (kind, id)
      );
      CREATE INDEX resources_project_index ON resources (kind, project, created_at, id);

      CREATE TABLE resource_events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT COLLATE "C" NOT NULL,
        resource_id TEXT COLLATE "C" NOT NULL,
        stream TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        data JSONB NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (kind, resource_id, stream, id)
      );
      CREATE INDEX resource_events_index ON resource_events (kind, resource_id, stream, seq);
    `,
  },
];

/** The schema version this code produces and understands. */
export function latestVersion(list: readonly Migration[] = migrations): number {
  return list.at(-1)?.version ?? 0;
}

/**
 * Throws when the list breaks the rules (versions 1, 2, 3, … in order, names and both
 * SQL texts present). Runners call it before touching a database.
 */
export function validateMigrations(list: readonly Migration[]): void {
  list.forEach((migration, index) => {
    const expected = index + 1;
    if (migration.version !== expected) {
      throw new Error(`Migration #${index} has version ${migration.version}, expected ${expected}: versions must be 1, 2, 3, … in order`);
    }
    if (!/^[a-z0-9_]+$/.test(migration.name)) {
      throw new Error(`Migration ${migration.version} has an invalid name ${JSON.stringify(migration.name)} (use snake_case)`);
    }
    if (migration.sqlite.trim() === '' || migration.postgres.trim() === '') {
      throw new Error(`Migration ${migration.version} (${migration.name}) lacks SQL for a dialect`);
    }
  });
}

/** The database was migrated by a newer Chatgate than this one: refuse rather than guess. */
export class SchemaTooNewError extends Error {
  readonly databaseVersion: number;
  readonly supportedVersion: number;

  constructor(options: { databaseVersion: number; supportedVersion: number; location: string }) {
    super(
      `The database at ${options.location} has schema version ${options.databaseVersion}, ` +
        `newer than the latest this Chatgate knows (${options.supportedVersion}). ` +
        'It was written by a newer Chatgate: upgrade Chatgate, or point it at another database.',
    );
    this.name = 'SchemaTooNewError';
    this.databaseVersion = options.databaseVersion;
    this.supportedVersion = options.supportedVersion;
  }
}
