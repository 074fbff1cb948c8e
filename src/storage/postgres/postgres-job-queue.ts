import type pg from 'pg';
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
import { inTransaction, isUniqueViolation } from './connection.js';

const recoverSql =
  "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, " +
  "error = 'lease expired (worker lost)', locked_by = NULL, locked_until = NULL, updated_at = $1 " +
  "WHERE state = 'running' AND locked_until < $1";

/**
 * The job queue in Postgres. Claims pick their rows with `FOR UPDATE SKIP LOCKED` inside the
 * claiming UPDATE, so any number of processes claim concurrently without waiting on each
 * other and without ever leasing the same job or item twice.
 */
export class PostgresJobQueue implements JobQueue {
  constructor(
    private readonly pool: pg.Pool,
    private readonly now: () => number = Date.now,
  ) {}

  async enqueue(options: EnqueueOptions): Promise<Job> {
    const now = this.now();
    const job = normalizeEnqueue(options, now);
    try {
      return await inTransaction(this.pool, async (client) => {
        const result = await client.query<JobRow>(
          `INSERT INTO jobs (${jobColumnList}) VALUES ($1, $2, $3::jsonb, 'queued', $4, $5, 0, $6, NULL, NULL, NULL, NULL, $7, $7) RETURNING ${jobColumnList}`,
          [job.id, job.kind, job.payload, job.priority, job.runAfter, job.maxAttempts, now],
        );
        await this.insertItems(client, job.id, job.items, now);
        return jobFromRow(result.rows[0]!, false);
      });
    } catch (error) {
      if (isUniqueViolation(error) && error.constraint === 'jobs_pkey') throw new JobConflictError(`A job with id ${job.id} exists`);
      throw error;
    }
  }

  private async insertItems(client: pg.PoolClient | pg.Pool, jobId: string, keys: readonly string[], now: number): Promise<number> {
    let added = 0;
    for (let start = 0; start < keys.length; start += 5_000) {
      const chunk = keys.slice(start, start + 5_000);
      const result = await client.query(
        "INSERT INTO job_items (job_id, item_key, state, updated_at) SELECT $1, key, 'pending', $2 FROM unnest($3::text[]) WITH ORDINALITY AS t(key, n) ORDER BY n " +
          'ON CONFLICT (job_id, item_key) DO NOTHING',
        [jobId, now, chunk],
      );
      added += result.rowCount ?? 0;
    }
    return added;
  }

  async get(id: string): Promise<Job | null> {
    assertText(id, 'id');
    const result = await this.pool.query<JobRow>(`SELECT ${jobColumnList} FROM jobs WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? null : jobFromRow(row, false);
  }

  async claim(worker: string, kinds: readonly string[], leaseMs: number, limit: number): Promise<Job[]> {
    assertText(worker, 'worker');
    assertKinds(kinds);
    assertPositiveInteger(leaseMs, 'leaseMs');
    assertPositiveInteger(limit, 'limit', true);
    if (limit === 0 || kinds.length === 0) return [];
    const now = this.now();
    await this.pool.query(recoverSql, [now]);
    // A materialized CTE: the locking pick runs exactly once (an `IN (subquery … LIMIT)` may be
    // re-evaluated by the planner and lease more rows than the limit).
    const result = await this.pool.query<JobRow>(
      'WITH picked AS MATERIALIZED (' +
        "SELECT id FROM jobs WHERE state = 'queued' AND run_after <= $3 AND kind = ANY($4::text[]) " +
        'ORDER BY priority DESC, run_after, created_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) ' +
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, locked_until = $2, updated_at = $3 " +
        `FROM picked WHERE jobs.id = picked.id RETURNING ${jobColumnList.split(', ').map((column) => `jobs.${column}`).join(', ')}`,
      [worker, now + leaseMs, now, kinds, limit],
    );
    return result.rows
      .map((row) => jobFromRow(row, false))
      .sort((a, b) => b.priority - a.priority || a.runAfter - b.runAfter || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  async heartbeat(id: string, worker: string, leaseMs: number): Promise<boolean> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    assertPositiveInteger(leaseMs, 'leaseMs');
    const now = this.now();
    const result = await this.pool.query(
      "UPDATE jobs SET locked_until = $1, updated_at = $2 WHERE id = $3 AND state = 'running' AND locked_by = $4",
      [now + leaseMs, now, id, worker],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async complete(id: string, worker: string, result: unknown): Promise<boolean> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    const update = await this.pool.query(
      "UPDATE jobs SET state = 'succeeded', result = $1::jsonb, error = NULL, locked_by = NULL, locked_until = NULL, updated_at = $2 " +
        "WHERE id = $3 AND state = 'running' AND locked_by = $4",
      [toJsonText(result), this.now(), id, worker],
    );
    return (update.rowCount ?? 0) > 0;
  }

  async fail(id: string, worker: string, error: string, options: FailOptions = {}): Promise<'retry' | 'failed' | false> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    return inTransaction(this.pool, async (client) => {
      const found = await client.query<{ attempts: number; max_attempts: number }>(
        "SELECT attempts, max_attempts FROM jobs WHERE id = $1 AND state = 'running' AND locked_by = $2 FOR UPDATE",
        [id, worker],
      );
      const row = found.rows[0];
      if (row === undefined) return false;
      const now = this.now();
      const retry = row.attempts < row.max_attempts;
      const delay = options.retryDelayMs ?? retryDelay(row.attempts);
      await client.query(
        'UPDATE jobs SET state = $1, run_after = $2, error = $3, locked_by = NULL, locked_until = NULL, updated_at = $4 WHERE id = $5',
        [retry ? 'queued' : 'failed', retry ? now + delay : now, String(error), now, id],
      );
      return retry ? 'retry' : 'failed';
    });
  }

  async release(id: string, worker: string): Promise<boolean> {
    assertText(id, 'id');
    assertText(worker, 'worker');
    const result = await this.pool.query(
      "UPDATE jobs SET state = 'queued', attempts = GREATEST(attempts - 1, 0), locked_by = NULL, locked_until = NULL, updated_at = $1 " +
        "WHERE id = $2 AND state = 'running' AND locked_by = $3",
      [this.now(), id, worker],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async cancel(id: string): Promise<boolean> {
    assertText(id, 'id');
    const result = await this.pool.query(
      "UPDATE jobs SET state = 'cancelled', locked_by = NULL, locked_until = NULL, updated_at = $1 WHERE id = $2 AND state IN ('queued', 'running')",
      [this.now(), id],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async recoverExpired(): Promise<number> {
    const result = await this.pool.query(recoverSql, [this.now()]);
    return result.rowCount ?? 0;
  }

  async counts(kind?: string): Promise<Record<JobState, number>> {
    const counts = emptyCounts(jobStates);
    const result =
      kind === undefined
        ? await this.pool.query<{ state: JobState; count: number }>('SELECT state, COUNT(*) AS count FROM jobs GROUP BY state')
        : await this.pool.query<{ state: JobState; count: number }>('SELECT state, COUNT(*) AS count FROM jobs WHERE kind = $1 GROUP BY state', [kind]);
    for (const row of result.rows) counts[row.state] = row.count;
    return counts;
  }

  async addItems(jobId: string, keys: readonly string[]): Promise<number> {
    assertText(jobId, 'jobId');
    keys.forEach((key, index) => assertText(key, `keys[${index}]`));
    return inTransaction(this.pool, (client) => this.insertItems(client, jobId, keys, this.now()));
  }

  async claimItems(jobId: string, worker: string, limit: number, leaseMs: number): Promise<JobItem[]> {
    assertText(jobId, 'jobId');
    assertText(worker, 'worker');
    assertPositiveInteger(limit, 'limit', true);
    assertPositiveInteger(leaseMs, 'leaseMs');
    if (limit === 0) return [];
    const now = this.now();
    const result = await this.pool.query<ItemRow & { id: number }>(
      // Expired leases first, then pending items: each on job_items_claim_index (job_id, state, id),
      // rather than one OR over both states that reads every item of the job.
      'WITH expired AS MATERIALIZED (' +
        "SELECT id FROM job_items WHERE job_id = $1 AND state = 'running' AND leased_until < $4 ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED), " +
        "pending AS MATERIALIZED (SELECT id FROM job_items WHERE job_id = $1 AND state = 'pending' ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED), " +
        'picked AS MATERIALIZED (SELECT id FROM (SELECT id, 0 AS rank FROM expired UNION ALL SELECT id, 1 AS rank FROM pending) AS candidates ' +
        'ORDER BY rank, id LIMIT $5) ' +
        "UPDATE job_items SET state = 'running', attempt = attempt + 1, worker = $2, leased_until = $3, updated_at = $4 " +
        `FROM picked WHERE job_items.id = picked.id RETURNING job_items.id, ${itemColumnList.split(', ').map((column) => `job_items.${column}`).join(', ')}`,
      [jobId, worker, now + leaseMs, now, limit],
    );
    return result.rows.sort((a, b) => a.id - b.id).map((row) => itemFromRow(row, false));
  }

  async extendItems(jobId: string, worker: string, keys: readonly string[], leaseMs: number): Promise<string[]> {
    assertText(jobId, 'jobId');
    assertText(worker, 'worker');
    assertPositiveInteger(leaseMs, 'leaseMs');
    if (keys.length === 0) return [];
    const now = this.now();
    const result = await this.pool.query<{ item_key: string }>(
      "UPDATE job_items SET leased_until = $1, updated_at = $2 WHERE job_id = $3 AND item_key = ANY($4::text[]) AND state = 'running' AND worker = $5 RETURNING item_key",
      [now + leaseMs, now, jobId, keys, worker],
    );
    return result.rows.map((row) => row.item_key);
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
    const update = await this.pool.query(
      'UPDATE job_items SET state = $1, result = $2::jsonb, error = $3, leased_until = NULL, updated_at = $4 ' +
        "WHERE job_id = $5 AND item_key = $6 AND state IN ('pending', 'running')",
      [state, result, error, this.now(), jobId, key],
    );
    return (update.rowCount ?? 0) > 0;
  }

  async releaseItems(jobId: string, worker: string, keys?: readonly string[]): Promise<number> {
    assertText(jobId, 'jobId');
    assertText(worker, 'worker');
    const base =
      "UPDATE job_items SET state = 'pending', attempt = GREATEST(attempt - 1, 0), worker = NULL, leased_until = NULL, updated_at = $1 " +
      "WHERE job_id = $2 AND state = 'running' AND worker = $3";
    const result =
      keys === undefined
        ? await this.pool.query(base, [this.now(), jobId, worker])
        : await this.pool.query(`${base} AND item_key = ANY($4::text[])`, [this.now(), jobId, worker, keys]);
    return result.rowCount ?? 0;
  }

  async listItems(jobId: string, options: { state?: JobItemState; limit?: number; afterKey?: string } = {}): Promise<JobItem[]> {
    assertText(jobId, 'jobId');
    const limit = options.limit ?? 1_000;
    assertPositiveInteger(limit, 'limit', true);
    const values: unknown[] = [jobId];
    const conditions = ['job_id = $1'];
    if (options.state !== undefined) {
      values.push(options.state);
      conditions.push(`state = $${values.length}`);
    }
    if (options.afterKey !== undefined) {
      values.push(options.afterKey);
      conditions.push(`id > (SELECT id FROM job_items WHERE job_id = $1 AND item_key = $${values.length})`);
    }
    values.push(limit);
    const result = await this.pool.query<ItemRow>(
      `SELECT ${itemColumnList} FROM job_items WHERE ${conditions.join(' AND ')} ORDER BY id LIMIT $${values.length}`,
      values,
    );
    return result.rows.map((row) => itemFromRow(row, false));
  }

  async itemCounts(jobId: string): Promise<Record<JobItemState, number>> {
    assertText(jobId, 'jobId');
    const counts = emptyCounts(jobItemStates);
    const result = await this.pool.query<{ state: JobItemState; count: number }>(
      'SELECT state, COUNT(*) AS count FROM job_items WHERE job_id = $1 GROUP BY state',
      [jobId],
    );
    for (const row of result.rows) counts[row.state] = row.count;
    return counts;
  }
}
