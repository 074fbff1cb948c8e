/**
 * What the routes of the API's background objects (batches, fine-tuning jobs) share: OpenAI's
 * `metadata` field, `limit` / `after` paging, and creating an object together with the queue
 * job that works on it (the object is removed again if the job cannot be queued).
 */
import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { invalidRequest } from '../errors/gateway-error.js';
import { formatParam, pathOfUnstorableText } from './parse-request.js';
import type { EnqueueOptions, JobQueue } from '../storage/job-records.js';
import type { ResourceRecord, ResourceStore } from '../storage/resource-records.js';

/** OpenAI's `metadata`: at most 16 pairs, keys up to 64 characters, values up to 512. */
export const metadataField = z
  .record(z.string().max(64), z.string().max(512))
  .refine((metadata) => Object.keys(metadata).length <= 16, 'at most 16 key-value pairs')
  .nullable()
  .optional();

/**
 * The body of a create request, refused with 400 when a text in it holds a NUL character or
 * an unpaired surrogate: the object is stored (PostgreSQL refuses such text: a 500 before).
 */
export function storableBody(body: unknown): unknown {
  const path = pathOfUnstorableText(body);
  if (path !== null) {
    const param = JSON.stringify(formatParam(path)).slice(1, -1);
    throw invalidRequest(`Invalid value for '${param}': text must not contain NUL characters (\\u0000) or unpaired surrogates (\\ud800).`, param, 'invalid_value');
  }
  return body;
}

/** `limit` (1–100) and `after` of a list request. */
export function pageOptions(context: Context<AppEnv>, defaultLimit: number): { limit: number; after?: string } {
  const query = context.req.query();
  let limit = defaultLimit;
  if (query.limit !== undefined) {
    limit = Number(query.limit);
    if (!/^\d+$/.test(query.limit) || limit < 1 || limit > 100) throw invalidRequest("Invalid 'limit': expected an integer between 1 and 100.", 'limit', 'invalid_value');
  }
  return { limit, ...(query.after ? { after: query.after } : {}) };
}

/** Stores the object, then queues its job; when the job cannot be queued, the object goes too. */
export async function createWithJob(
  resources: ResourceStore,
  queue: JobQueue,
  record: Omit<ResourceRecord, 'version'>,
  job: EnqueueOptions,
  afterCreate?: () => Promise<void>,
): Promise<ResourceRecord> {
  const created = await resources.create(record);
  try {
    await afterCreate?.();
    await queue.enqueue(job);
  } catch (error) {
    await resources.delete(record.kind, record.id).catch(() => undefined);
    throw error;
  }
  return created;
}
