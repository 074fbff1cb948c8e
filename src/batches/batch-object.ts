/**
 * A batch as stored (resources table, kind `batch`) and as OpenAI's API shows it. Times in
 * the stored data are Unix seconds, as in the API; `request_counts` is kept up to date by the
 * worker and recomputed from the job's items while the batch runs.
 */
import type { ResourceRecord } from '../storage/resource-records.js';

export const BATCH_KIND = 'batch';

export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

/** Statuses after which nothing changes any more. */
export const FINAL_BATCH_STATUSES: readonly BatchStatus[] = ['failed', 'completed', 'expired', 'cancelled'];

export interface BatchLineError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

/** The stored data of a batch: OpenAI's Batch object minus `object`, `id` and `status`. */
export interface BatchData {
  endpoint: BatchEndpoint;
  input_file_id: string;
  completion_window: string;
  errors: { object: 'list'; data: BatchLineError[] } | null;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: RequestCounts;
  metadata: Record<string, string> | null;
  /** The job running it (the durable queue). */
  job_id: string;
  /** How many lines of the input were invalid (reported in `errors`, written to the error file). */
  invalid_lines?: number;
  [key: string]: unknown;
}

export type BatchRecord = ResourceRecord<BatchData>;

export function asBatch(record: ResourceRecord): BatchRecord {
  return record as unknown as BatchRecord;
}

export function unixSeconds(ms = Date.now()): number {
  return Math.floor(ms / 1000);
}

/** The Batch object of the API. `counts` overrides the stored request counts (live progress). */
export function batchObject(record: BatchRecord, counts?: RequestCounts) {
  const data = record.data;
  return {
    id: record.id,
    object: 'batch' as const,
    endpoint: data.endpoint,
    errors: data.errors,
    input_file_id: data.input_file_id,
    completion_window: data.completion_window,
    status: record.status as BatchStatus,
    output_file_id: data.output_file_id,
    error_file_id: data.error_file_id,
    created_at: data.created_at,
    in_progress_at: data.in_progress_at,
    expires_at: data.expires_at,
    finalizing_at: data.finalizing_at,
    completed_at: data.completed_at,
    failed_at: data.failed_at,
    expired_at: data.expired_at,
    cancelling_at: data.cancelling_at,
    cancelled_at: data.cancelled_at,
    request_counts: counts ?? data.request_counts,
    metadata: data.metadata,
  };
}

/** `24h`, `30m`, `90s`, `2d` → milliseconds; null when not a window. OpenAI accepts only `24h`. */
export function completionWindowMs(window: string): number | null {
  const match = /^([1-9]\d{0,5})([smhd])$/.exec(window);
  if (match === null) return null;
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(match[1]) * unit;
  return ms <= 7 * 86_400_000 ? ms : null;
}
