import {
  assertKinds,
  assertPositiveInteger,
  assertText,
  emptyCounts,
  itemColumnList,
  itemFromRow,
  jobColumnList,
  jobFromRow,
  JobConflictError,
  jobItemStates,
  jobStates,
  normalizeEnqueue,
  retryDelay,
  toJsonText,
  type EnqueueOptions,
  type FailOptions,
  type ItemRow,
  type Job,
  type JobItem,
  type JobItemState,
  type JobQueue,
  type JobRow,
  type JobState,
} from '../job-records.js';
import type { SqliteDatabase } from './connection.js';
import type { StatementCache } from './statement-cache.js';

const recoverSql =
  "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, " +
  "error = 'lease expired (worker lost)', locked_by = NULL, locked_until = NULL, updated_at = ? " +
  "WHERE state = 'running' AND locked_until < ?";

/**
 * The job queue in SQLite. Claims run in an IMMEDIATE transaction (the write lock is taken
 * before the candidates are read), so several connections or processes on one file never
 * lease the same job or item twice.
 */
export class SqliteJobQueue implements JobQueue {
  constructor(
    private readonly database: SqliteDatabase,
    private readonly statements: StatementCache,
    private readonly now: () => number = Date.now,
  ) {}

  async enqueue(options: EnqueueOptions): Promise<Job> {
    const now = this.now();
    const job = normalizeEnqueue(options, now);
    const insert = this.database.transaction(() => {
      this.statements
        .get<unknown[]>(
          `INSERT INTO jobs (${jobColumnList}) VALUES (?, ?, ?, 'queued', ?, ?, 0, ?, NULL, NULL, NULL, NULL, ?, ?)`,
        )
        .run(job.id, job.kind, job.payload, job.priority, job.runAfter, job.maxAttempts, now, now);
      this.insertItems(job.id, job.items, now);
    });
    try {
      insert.immediate();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new JobConflictError(`A job with id ${job.id} exists`);
      throw error;
    }
    return (await this.get(job.id))!;
  }

  private insertItems(jobId: string, keys: readonly string[], now: number): number {
    const statement = this.statements.get<[string, string, number]>(
      "INSERT INTO job_items (job_id, item_key, state, updated_at) VALUES (?, ?, 'pending', ?) ON CONFLICT (job_id, item_key) DO NOTHING",
    );
    let added = 0;
    for (const key of keys) added += statement.run(jobId, key, now).changes;
    return added;
  }

  async get(id: string): Promise<Job | null> {
    assertText(id, 'id');
    const row = this.statements.get<[string], JobRow>(`SELECT ${jobColumnList} FROM jobs WHERE id = ?`).get(id);
    return row === undefined ? null : jobFromRow(row, true);
  }

  async claim(worker: string, kinds: readonly string[], leaseMs: number, limit: number): Promise<Job[]> {
    assertText(worker, 'worker');
    assertKinds(kinds);
    assertPositiveInteger(leaseMs, 'leaseMs');
    assertPositiveInteger(limit, 'limit', true);
    if (limit === 0 || kinds.length === 0) return [];
    const claim = this.database.transaction((): Job[] => {
      const now = this.now();
      this.statements.get<[number, number]>(recoverSql).run(now, now);
      const marks = kinds.map(() => '?').join(', ');
      const ids = this.statements
        .get<unknown[], { id: string }>(
          `SELECT id FROM jobs WHERE state = 'queued' AND run_after <= ? AND kind IN (${marks}) ` +
            'ORDER BY priority DESC, run_after, created_at, id LIMIT ?',
        )
        .all(now, ...kinds, limit);
      const update = this.statements.get<[string, number, number, string], JobRow>(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = ?, locked_until = ?, updated_at = ? " +
          `WHERE id = ? RETURNING ${jobColumnList}`,
      );
      return ids.map(({ id }) => jobFromRow(update.get(worker, now + leaseMs, now, id)!, true));
    });
    return claim.immediate();
  }

  async heartbeat(id: string, worker: string, leaseMs: number): Promise<boolean> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    assertPositiveInteger(leaseMs, 'leaseMs');
    const now = this.now();
    const sql = "UPDATE jobs SET locked_until = ?, updated_at = ? WHERE id = ? AND state = 'running' AND locked_by = ?";
    return this.statements.get<[number, number, string, string]>(sql).run(now + leaseMs, now, id, worker).changes > 0;
  }

  async complete(id: string, worker: string, result: unknown): Promise<boolean> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    const sql =
      "UPDATE jobs SET state = 'succeeded', result = ?, error = NULL, locked_by = NULL, locked_until = NULL, updated_at = ? " +
      "WHERE id = ? AND state = 'running' AND locked_by = ?";
    return this.statements.get<[string, number, string, string]>(sql).run(toJsonText(result), this.now(), id, worker).changes > 0;
  }

  async fail(id: string, worker: string, error: string, options: FailOptions = {}): Promise<'retry' | 'failed' | false> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    const run = this.database.transaction((): 'retry' | 'failed' | false => {
      const row = this.statements
        .get<[string, string], { attempts: number; max_attempts: number }>(
          "SELECT attempts, max_attempts FROM jobs WHERE id = ? AND state = 'running' AND locked_by = ?",
        )
        .get(id, worker);
      if (row === undefined) return false;
      const now = this.now();
      const retry = row.attempts < row.max_attempts;
      const delay = options.retryDelayMs ?? retryDelay(row.attempts);
      this.statements
        .get<[string, number, string, number, string]>(
          'UPDATE jobs SET state = ?, run_after = ?, error = ?, locked_by = NULL, locked_until = NULL, updated_at = ? WHERE id = ?',
        )
        .run(retry ? 'queued' : 'failed', retry ? now + delay : now, String(error), now, id);
      return retry ? 'retry' : 'failed';
    });
    return run.immediate();
  }

  async release(id: string, worker: string): Promise<boolean> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    const sql =
      "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), locked_by = NULL, locked_until = NULL, updated_at = ? " +
      "WHERE id = ? AND state = 'running' AND locked_by = ?";
    return this.statements.get<[number, string, string]>(sql).run(this.now(), id, worker).changes > 0;
  }

  async cancel(id: string): Promise<boolean> {
    assertText(id, 'id');
    const sql =
      "UPDATE jobs SET state = 'cancelled', locked_by = NULL, locked_until = NULL, updated_at = ? WHERE id = ? AND state IN ('queued', 'running')";
    return this.statements.get<[number, string]>(sql).run(this.now(), id).changes > 0;
  }

  async recoverExpired(): Promise<number> {
    const now = this.now();
    return this.statements.get<[number, number]>(recoverSql).run(now, now).changes;
  }

  async counts(kind?: string): Promise<Record<JobState, number>> {
    const counts = emptyCounts(jobStates);
    const rows =
      kind === undefined
        ? this.statements.get<[], { state: JobState; count: number }>('SELECT state, COUNT(*) AS count FROM jobs GROUP BY state').all()
        : this.statements
            .get<[string], { state: JobState; count: number }>('SELECT state, COUNT(*) AS count FROM jobs WHERE kind = ? GROUP BY state')
            .all(kind);
    for (const row of rows) counts[row.state] = row.count;
    return counts;
  }

  async addItems(jobId: string, keys: readonly string[]): Promise<number> {
    assertText(jobId, 'jobId');
    keys.forEach((key, index) => assertText(key, `keys[${index}]`));
    return this.database.transaction(() => this.insertItems(jobId, keys, this.now())).immediate();
  }

  async claimItems(jobId: string, worker: string, limit: number, leaseMs: number): Promise<JobItem[]> {
    assertText(jobId, 'jobId');
    assertText(worker, 'worker');
    assertPositiveInteger(limit, 'limit', true);
    assertPositiveInteger(leaseMs, 'leaseMs');
    if (limit === 0) return [];
    const claim = this.database.transaction((): JobItem[] => {
      const now = this.now();
      // Two queries, each on job_items_claim_index (job_id, state, id): with an OR between the
      // states SQLite scans and sorts every item of the job, on each claim of a 50,000-line batch.
      const ids = this.statements
        .get<[string, number, number], { id: number }>("SELECT id FROM job_items WHERE job_id = ? AND state = 'running' AND leased_until < ? ORDER BY id LIMIT ?")
        .all(jobId, now, limit);
      if (ids.length < limit) {
        ids.push(
          ...this.statements
            .get<[string, number], { id: number }>("SELECT id FROM job_items WHERE job_id = ? AND state = 'pending' ORDER BY id LIMIT ?")
            .all(jobId, limit - ids.length),
        );
      }
      const update = this.statements.get<[string, number, number, number], ItemRow>(
        "UPDATE job_items SET state = 'running', attempt = attempt + 1, worker = ?, leased_until = ?, updated_at = ? " +
          `WHERE id = ? RETURNING ${itemColumnList}`,
      );
      return ids.map(({ id }) => itemFromRow(update.get(worker, now + leaseMs, now, id)!, true));
    });
    return claim.immediate();
  }

  async extendItems(jobId: string, worker: string, keys: readonly string[], leaseMs: number): Promise<string[]> {
    assertText(jobId, 'jobId');
    assertText(worker, 'worker');
    assertPositiveInteger(leaseMs, 'leaseMs');
    const now = this.now();
    const update = this.statements.get<[number, number, string, string, string]>(
      "UPDATE job_items SET leased_until = ?, updated_at = ? WHERE job_id = ? AND item_key = ? AND state = 'running' AND worker = ?",
    );
    return this.database.transaction(() => keys.filter((key) => update.run(now + leaseMs, now, jobId, key, worker).changes > 0))();
  }

  async completeItem(jobId: string, key: string, result: unknown): Promise<boolean> {
    return this.finishItem(jobId, key, 'succeeded', toJsonText(result), null);
  }

  async failItem(jobId: string, key: string, error: string, result?: unknown): Promise<boolean> {
    return this.finishItem(jobId, key, 'failed', result === undefined ? null : toJsonText(result), String(error));
  }

  private async finishItem(jobId: string, key: string, state: JobItemState, result: string | null, error: string | null): Promise<boolean> {
    assertText(jobId, 'jobId');
    assertText(key, 'key');
    const sql =
      'UPDATE job_items SET state = ?, result = ?, error = ?, leased_until = NULL, updated_at = ? ' +
      "WHERE job_id = ? AND item_key = ? AND state IN ('pending', 'running')";
    return this.statements.get<unknown[]>(sql).run(state, result, error, this.now(), jobId, key).changes > 0;
  }

  async releaseItems(jobId: string, worker: string, keys?: readonly string[]): Promise<number> {
    assertText(jobId, 'jobId');
    assertText(worker, 'worker');
    const base =
      "UPDATE job_items SET state = 'pending', attempt = MAX(attempt - 1, 0), worker = NULL, leased_until = NULL, updated_at = ? " +
      "WHERE job_id = ? AND state = 'running' AND worker = ?";
    const now = this.now();
    if (keys === undefined) return this.statements.get<[number, string, string]>(base).run(now, jobId, worker).changes;
    const statement = this.statements.get<[number, string, string, string]>(`${base} AND item_key = ?`);
    return this.database.transaction(() => keys.reduce((sum, key) => sum + statement.run(now, jobId, worker, key).changes, 0))();
  }

  async listItems(jobId: string, options: { state?: JobItemState; limit?: number; afterKey?: string } = {}): Promise<JobItem[]> {
    assertText(jobId, 'jobId');
    const limit = options.limit ?? 1_000;
    assertPositiveInteger(limit, 'limit', true);
    const conditions = ['job_id = ?'];
    const values: unknown[] = [jobId];
    if (options.state !== undefined) {
      conditions.push('state = ?');
      values.push(options.state);
    }
    if (options.afterKey !== undefined) {
      conditions.push('id > (SELECT id FROM job_items WHERE job_id = ? AND item_key = ?)');
      values.push(jobId, options.afterKey);
    }
    const sql = `SELECT ${itemColumnList} FROM job_items WHERE ${conditions.join(' AND ')} ORDER BY id LIMIT ?`;
    return this.statements
      .get<unknown[], ItemRow>(sql)
      .all(...values, limit)
      .map((row) => itemFromRow(row, true));
  }

  async itemCounts(jobId: string): Promise<Record<JobItemState, number>> {
    assertText(jobId, 'jobId');
    const counts = emptyCounts(jobItemStates);
    const rows = this.statements
      .get<[string], { state: JobItemState; count: number }>('SELECT state, COUNT(*) AS count FROM job_items WHERE job_id = ? GROUP BY state')
      .all(jobId);
    for (const row of rows) counts[row.state] = row.count;
    return counts;
  }
}
