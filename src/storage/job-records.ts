/**
 * The durable job queue's types and the helpers both back ends share (row mapping,
 * validation, backoff). See docs/architecture.md, "Jobs".
 */
import { randomBytes } from 'node:crypto';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobItemState = 'pending' | 'running' | 'succeeded' | 'failed';

export const jobStates: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const jobItemStates: readonly JobItemState[] = ['pending', 'running', 'succeeded', 'failed'];

export interface Job {
  id: string;
  kind: string;
  payload: unknown;
  state: JobState;
  /** Higher first. */
  priority: number;
  /** Not claimed before this time (ms); retries push it out (backoff). */
  runAfter: number;
  /** Claims so far (the running one included). */
  attempts: number;
  maxAttempts: number;
  /** The worker holding the lease while running. */
  lockedBy: string | null;
  /** The lease: past it, another worker may take the job. */
  lockedUntil: number | null;
  result: unknown;
  error: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface EnqueueOptions {
  kind: string;
  payload: unknown;
  /** Default: `job_` + 24 random hex digits. */
  id?: string;
  priority?: number;
  runAfter?: number;
  /** Default 3. */
  maxAttempts?: number;
  /** Work items to create with the job (in the same transaction). */
  items?: readonly string[];
}

export interface JobItem {
  jobId: string;
  itemKey: string;
  state: JobItemState;
  /** Claims so far. */
  attempt: number;
  result: unknown;
  error: string | null;
  worker: string | null;
  leasedUntil: number | null;
  updatedAt: number;
}

export interface FailOptions {
  /** Delay before the next attempt; default `retryDelay(attempts)`. */
  retryDelayMs?: number;
}

export interface JobQueue {
  /** Inserts a queued job (and its items); rejects when the id exists. */
  enqueue(options: EnqueueOptions): Promise<Job>;
  get(id: string): Promise<Job | null>;
  /**
   * Leases up to `limit` claimable jobs of these kinds to `worker` for `leaseMs`: queued ones
   * whose `runAfter` has come, highest priority first. Expired leases are recovered first.
   * Each job goes to one worker only, also across processes.
   */
  claim(worker: string, kinds: readonly string[], leaseMs: number, limit: number): Promise<Job[]>;
  /** Extends the lease; false when the worker no longer holds the job (expired and taken, cancelled). */
  heartbeat(id: string, worker: string, leaseMs: number): Promise<boolean>;
  /** Marks the job succeeded with its result; false when the worker no longer holds it. */
  complete(id: string, worker: string, result: unknown): Promise<boolean>;
  /**
   * Records a failed attempt: queued again after a backoff while attempts < maxAttempts,
   * else failed. False when the worker no longer holds it.
   */
  fail(id: string, worker: string, error: string, options?: FailOptions): Promise<'retry' | 'failed' | false>;
  /** Gives a running job back (queued, the attempt not counted), e.g. on a graceful stop. */
  release(id: string, worker: string): Promise<boolean>;
  /** Cancels a queued or running job (a running worker sees it at its next heartbeat); false when already finished. */
  cancel(id: string): Promise<boolean>;
  /** Running jobs whose lease expired become queued again (or failed, out of attempts); returns how many. */
  recoverExpired(): Promise<number>;
  /** Jobs per state (all kinds, or one). */
  counts(kind?: string): Promise<Record<JobState, number>>;

  /** Adds pending items to a job (keys already there are ignored); returns how many were added. */
  addItems(jobId: string, keys: readonly string[]): Promise<number>;
  /**
   * Leases up to `limit` items of the job to `worker`: pending ones, and running ones whose
   * lease expired (a crashed worker's). Never an item another worker holds a live lease on.
   */
  claimItems(jobId: string, worker: string, limit: number, leaseMs: number): Promise<JobItem[]>;
  /** Extends the worker's leases on these items; returns the keys it still holds. */
  extendItems(jobId: string, worker: string, keys: readonly string[], leaseMs: number): Promise<string[]>;
  /** Records the item's result once: true the first time, false (a no-op) when the item already has an outcome. */
  completeItem(jobId: string, key: string, result: unknown): Promise<boolean>;
  /** Records the item's failure once (same rule as completeItem), with an optional result (what the failure produced). */
  failItem(jobId: string, key: string, error: string, result?: unknown): Promise<boolean>;
  /** Gives the worker's running items of the job back (pending); returns how many. */
  releaseItems(jobId: string, worker: string, keys?: readonly string[]): Promise<number>;
  /** Items in creation order, optionally of one state, after a key (paging). */
  listItems(jobId: string, options?: { state?: JobItemState; limit?: number; afterKey?: string }): Promise<JobItem[]>;
  itemCounts(jobId: string): Promise<Record<JobItemState, number>>;
}

export class JobConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobConflictError';
  }
}

export function newJobId(): string {
  return `job_${randomBytes(12).toString('hex')}`;
}

/** Exponential backoff for retries: 1 s, 2 s, 4 s, … at most 5 minutes. */
export function retryDelay(attempts: number): number {
  return Math.min(300_000, 1_000 * 2 ** Math.max(0, attempts - 1));
}

export function assertText(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`);
}

export function assertPositiveInteger(value: unknown, name: string, allowZero = false): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new RangeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${String(value)}`);
  }
}

export interface NormalizedEnqueue {
  id: string;
  kind: string;
  payload: string;
  priority: number;
  runAfter: number;
  maxAttempts: number;
  items: readonly string[];
}

export function normalizeEnqueue(options: EnqueueOptions, now: number): NormalizedEnqueue {
  if (typeof options !== 'object' || options === null) throw new TypeError('enqueue takes an options object');
  assertText(options.kind, 'kind');
  const id = options.id ?? newJobId();
  assertText(id, 'id');
  const priority = options.priority ?? 0;
  if (!Number.isSafeInteger(priority)) throw new RangeError(`priority must be an integer, got ${String(priority)}`);
  const runAfter = options.runAfter ?? now;
  assertPositiveInteger(runAfter, 'runAfter', true);
  const maxAttempts = options.maxAttempts ?? 3;
  assertPositiveInteger(maxAttempts, 'maxAttempts');
  const items = options.items ?? [];
  items.forEach((key, index) => assertText(key, `items[${index}]`));
  return { id, kind: options.kind, payload: JSON.stringify(options.payload ?? null), priority, runAfter, maxAttempts, items };
}

export const jobColumnList =
  'id, kind, payload, state, priority, run_after, attempts, max_attempts, locked_by, locked_until, result, error, created_at, updated_at';
export const itemColumnList = 'job_id, item_key, state, attempt, result, error, worker, leased_until, updated_at';

export interface JobRow {
  id: string;
  kind: string;
  payload: unknown;
  state: JobState;
  priority: number;
  run_after: number;
  attempts: number;
  max_attempts: number;
  locked_by: string | null;
  locked_until: number | null;
  result: unknown;
  error: string | null;
  created_at: number;
  updated_at: number;
}

export interface ItemRow {
  job_id: string;
  item_key: string;
  state: JobItemState;
  attempt: number;
  result: unknown;
  error: string | null;
  worker: string | null;
  leased_until: number | null;
  updated_at: number;
}

/** JSON columns: text in SQLite (parsed here), already parsed JSONB in Postgres. */
function json(value: unknown, parse: boolean): unknown {
  if (value === null || value === undefined) return null;
  return parse ? JSON.parse(value as string) : value;
}

export function jobFromRow(row: JobRow, parseJson: boolean): Job {
  return {
    id: row.id,
    kind: row.kind,
    payload: json(row.payload, parseJson),
    state: row.state,
    priority: row.priority,
    runAfter: row.run_after,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lockedBy: row.locked_by,
    lockedUntil: row.locked_until,
    result: json(row.result, parseJson),
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function itemFromRow(row: ItemRow, parseJson: boolean): JobItem {
  return {
    jobId: row.job_id,
    itemKey: row.item_key,
    state: row.state,
    attempt: row.attempt,
    result: json(row.result, parseJson),
    error: row.error,
    worker: row.worker,
    leasedUntil: row.leased_until,
    updatedAt: row.updated_at,
  };
}

export function emptyCounts<State extends string>(states: readonly State[]): Record<State, number> {
  return Object.fromEntries(states.map((state) => [state, 0])) as Record<State, number>;
}

export function assertKinds(kinds: readonly string[]): void {
  if (!Array.isArray(kinds)) throw new TypeError('kinds must be an array of strings');
  kinds.forEach((kind, index) => assertText(kind, `kinds[${index}]`));
}

export function toJsonText(value: unknown): string {
  return JSON.stringify(value ?? null);
}
