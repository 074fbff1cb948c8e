/**
 * OpenAI's Batch API (docs/batches.md): create a batch from an uploaded `batch` file, retrieve,
 * list and cancel. The work happens on the durable job queue (src/batches/batch-job.ts); this
 * module only records the batch and its job. A key sees only its own project's batches.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { BATCH_JOB_KIND, type BatchJobPayload } from '../batches/batch-job.js';
import { asBatch, BATCH_ENDPOINTS, BATCH_KIND, batchObject, completionWindowMs, unixSeconds, type BatchData, type BatchRecord, type RequestCounts } from '../batches/batch-object.js';
import { GatewayError, invalidRequest, notFound } from '../errors/gateway-error.js';
import { checkEndpointAllowed } from '../keys/access-policy.js';
import type { JobQueue } from '../storage/job-records.js';
import { mutateResource, type ResourceStore } from '../storage/resource-records.js';
import type { FileStore } from '../storage/spec.js';
import { randomAlphanumeric } from './ids.js';
import { parseWith, readJsonBody } from './parse-request.js';
import { createWithJob, metadataField, pageOptions, storableBody } from './background-resources.js';

export interface BatchesDependencies {
  resources: ResourceStore;
  queue: JobQueue;
  files: FileStore;
  maxBodyBytes: number;
  /** Called after a batch is created or cancelled: a local worker looks at the queue at once. */
  onChange?: () => void;
}

const createBatchRequest = z
  .object({
    input_file_id: z.string().min(1),
    endpoint: z.enum(BATCH_ENDPOINTS),
    completion_window: z.string(),
    metadata: metadataField,
    output_expires_after: z.unknown().optional(),
  })
  .strict();

const ACTIVE_STATUSES = new Set(['in_progress', 'finalizing', 'cancelling']);

function noSuchBatch(id: string): GatewayError {
  return notFound(`No such Batch object: ${id}`, 'batch_id');
}

export function batchesRoutes(dependencies: BatchesDependencies): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();

  /** The batch object, with live counts while it runs. */
  async function present(batch: BatchRecord) {
    let counts: RequestCounts | undefined;
    if (ACTIVE_STATUSES.has(batch.status) && batch.status !== 'finalizing') {
      const items = await dependencies.queue.itemCounts(batch.data.job_id);
      counts = { total: batch.data.request_counts.total, completed: items.succeeded, failed: items.failed };
    }
    return batchObject(batch, counts);
  }

  routes.post('/', async (context) => {
    const principal = context.get('principal');
    const request = parseWith(createBatchRequest, storableBody(await readJsonBody(context, dependencies.maxBodyBytes)));
    const windowMs = completionWindowMs(request.completion_window);
    if (windowMs === null) {
      throw invalidRequest(
        `Invalid value for 'completion_window': expected '24h' (or another window such as '1h', '30m', up to '7d').`,
        'completion_window',
        'invalid_value',
      );
    }
    // The key must be allowed the endpoint its batch will call.
    checkEndpointAllowed(principal, 'POST', request.endpoint);
    const file = await dependencies.files.get(principal.project, request.input_file_id);
    if (file === null) throw notFound(`No such File object: ${request.input_file_id}`, 'input_file_id');
    if (file.purpose !== 'batch') {
      throw invalidRequest(`The file ${file.id} has purpose '${file.purpose}'; a batch's input file must have purpose 'batch'.`, 'input_file_id', 'invalid_file_purpose');
    }
    const now = Date.now();
    const id = `batch_${randomAlphanumeric(24)}`;
    const jobId = `job_${id}`;
    const data: BatchData = {
      endpoint: request.endpoint,
      input_file_id: file.id,
      completion_window: request.completion_window,
      errors: null,
      output_file_id: null,
      error_file_id: null,
      created_at: unixSeconds(now),
      in_progress_at: null,
      expires_at: unixSeconds(now + windowMs),
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: request.metadata ?? null,
      job_id: jobId,
    };
    const origin = context.req.header('origin') ?? null;
    const payload: BatchJobPayload = { batchId: id, caller: { principal, clientIp: context.get('clientIp') ?? null, origin } };
    const record = await createWithJob(
      dependencies.resources,
      dependencies.queue,
      { kind: BATCH_KIND, id, project: principal.project, status: 'validating', data, createdAt: now, updatedAt: now },
      { kind: BATCH_JOB_KIND, id: jobId, payload, maxAttempts: 10 },
    );
    dependencies.onChange?.();
    return context.json(batchObject(asBatch(record)));
  });

  routes.get('/', async (context) => {
    const { limit, after } = pageOptions(context, 20);
    const records = await dependencies.resources.list({ kind: BATCH_KIND, project: context.get('principal').project, limit: limit + 1, ...(after ? { after } : {}) });
    const page = records.slice(0, limit).map(asBatch);
    return context.json({
      object: 'list',
      data: await Promise.all(page.map(present)),
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: records.length > limit,
    });
  });

  routes.get('/:id', async (context) => {
    const id = context.req.param('id');
    const record = await dependencies.resources.get(BATCH_KIND, id, context.get('principal').project);
    if (record === null) throw noSuchBatch(id);
    return context.json(await present(asBatch(record)));
  });

  routes.post('/:id/cancel', async (context) => {
    const id = context.req.param('id');
    const project = context.get('principal').project;
    if ((await dependencies.resources.get(BATCH_KIND, id, project)) === null) throw noSuchBatch(id);
    let refusedStatus: string | null = null;
    const updated = await mutateResource(dependencies.resources, BATCH_KIND, id, (record) => {
      refusedStatus = null;
      if (record.status === 'cancelling' || record.status === 'cancelled') return null;
      if (record.status !== 'validating' && record.status !== 'in_progress') {
        refusedStatus = record.status;
        return null;
      }
      return { status: 'cancelling', data: { ...record.data, cancelling_at: unixSeconds() } };
    });
    if (updated === null) throw noSuchBatch(id);
    if (refusedStatus !== null) {
      throw new GatewayError({
        status: 409,
        type: 'invalid_request_error',
        code: 'batch_not_cancellable',
        param: null,
        message: `Cannot cancel a batch with status '${refusedStatus}'.`,
      });
    }
    dependencies.onChange?.();
    return context.json(await present(asBatch(updated)));
  });
  return routes;
}
